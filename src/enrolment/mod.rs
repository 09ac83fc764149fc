//! Attested enrolment: a minion key is accepted on AWS's word, not on a first come.
//!
//! At first boot an instance reads its identity document and AWS's RSA signature of it from
//! IMDS and sends them in a claim, with the id it speaks for. [`verify_claim`] decides whether
//! AWS vouches for that claim: the signature (RSASSA-PKCS1-v1_5, SHA-256, over the document's
//! exact bytes) verifies with the key of a certificate that serves the document's region
//! ([`IdentityCertificates`]: AWS's, bundled, and the operator's), and the document is the
//! claimed instance's, in the cluster's account and region, launched within the enrolment
//! window. Each refusal is its own [`ClaimRefusal`].
//!
//! What the signature does not cover: the minion's key. A document and its signature are
//! the same for the instance's whole life and say nothing about which key the claim pins, so
//! anyone holding them can make a claim for that instance with another key. Only processes on
//! the instance can read them from IMDS; the channel that carries claims must not let anyone
//! else read them either, and the first valid claim pins the key once.
//!
//! Nothing here reads a clock or does I/O: the caller passes `now`.

// Claims are untrusted input and the engine must outlive any of them: outside tests, this
// module may not unwrap, index or panic, and clippy holds it to that.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod certificates;
mod claim;
mod document;
mod message;
mod refusal;
mod regions;
mod signature;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use certificates::{IdentityCertificate, IdentityCertificates, Serves};
pub use claim::{
    verify_claim, verify_signed_document, AttestedInstance, EnrolmentPolicy, IdentityClaim,
    CLOCK_SKEW_MS, MAX_DOCUMENT_BYTES, MAX_SIGNATURE_BYTES,
};
pub use document::IdentityDocument;
pub use message::{KeyClaim, CLAIM_FORMAT, MAX_CLAIM_BYTES};
pub use refusal::ClaimRefusal;
pub(crate) use refusal::{quote_within, shorten};
pub use regions::{is_region_name, REGIONS_WITH_THEIR_OWN_CERTIFICATE};
