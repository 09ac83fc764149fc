//! A claim and its verification: the one decision of attested enrolment that needs no I/O.

use serde::Serialize;

use super::certificates::IdentityCertificates;
use super::document::{claimed_region, IdentityDocument};
use super::refusal::{quote, ClaimRefusal};
use super::signature::{decode_signature, verify_document};

/// The largest document read. IMDS serves well under 1 KiB; the limit keeps the work a
/// flood of claims costs bounded, whatever they carry.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024;
/// The longest signature text read: the base64 of a 4096-bit signature, with line breaks,
/// fits several times over.
pub const MAX_SIGNATURE_BYTES: usize = 4 * 1024;
/// How far ahead of this master's clock a launch time may be: clocks drift.
pub const CLOCK_SKEW_MS: i64 = 300_000;

/// What an instance sends to have its minion key accepted: the identity document and
/// signature it read from IMDS, and the instance it speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityClaim {
    /// The instance (and minion) id the claim is for.
    pub instance_id: String,
    /// The document's bytes exactly as IMDS served them.
    pub document: Vec<u8>,
    /// The base64 RSA signature IMDS served with it.
    pub signature: String,
}

/// What a claim must match besides AWS's signature: the cluster's account and region, and
/// how soon after its launch an instance must enrol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentPolicy {
    /// The AWS account the cluster's instances run in.
    pub account_id: String,
    /// The region the cluster runs in.
    pub region: String,
    /// Milliseconds after an instance's launch (the document's `pendingTime`) during which
    /// its claim is accepted (`phoenix.keys.enrolment_window`).
    pub window_ms: i64,
}

/// A claim that passed every check: AWS vouches for the instance it speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttestedInstance {
    /// The verified document.
    pub document: IdentityDocument,
    /// The instance's launch time, in milliseconds since the epoch (UTC).
    pub launched_ms: i64,
    /// The name of the certificate whose key verified the signature.
    pub certificate: String,
}

/// Checks a claim: AWS's signature over the document's exact bytes with a certificate of the
/// document's region, then that the document is the claimed instance's, in the cluster's
/// account and region, launched within the enrolment window before `now_ms`.
///
/// The work is bounded whatever the claim holds: two size checks, two JSON reads of at most
/// [`MAX_DOCUMENT_BYTES`], and one RSA public-key operation per certificate of the region.
///
/// # Errors
///
/// The first [`ClaimRefusal`] that applies, checked in that order. Only the region is read
/// from the document before its signature verifies, so every later refusal speaks of a
/// document AWS signed.
pub fn verify_claim(
    claim: &IdentityClaim,
    certificates: &IdentityCertificates,
    policy: &EnrolmentPolicy,
    now_ms: i64,
) -> Result<AttestedInstance, ClaimRefusal> {
    let (document, certificate) =
        verify_signed_document(&claim.document, &claim.signature, certificates)?;
    if document.instance_id != claim.instance_id {
        return Err(ClaimRefusal::WrongInstance {
            claimed: quote(&claim.instance_id),
            document: quote(&document.instance_id),
        });
    }
    if document.account_id != policy.account_id {
        return Err(ClaimRefusal::WrongAccount {
            expected: policy.account_id.clone(),
            document: quote(&document.account_id),
        });
    }
    if document.region != policy.region {
        return Err(ClaimRefusal::WrongRegion {
            expected: policy.region.clone(),
            document: quote(&document.region),
        });
    }
    let launched_ms = document.pending_ms()?;
    let age_ms = now_ms.saturating_sub(launched_ms);
    if age_ms > policy.window_ms {
        return Err(ClaimRefusal::TooOld {
            pending: quote(&document.pending_time),
            age_secs: age_ms / 1000,
            window_secs: policy.window_ms / 1000,
        });
    }
    if age_ms < -CLOCK_SKEW_MS {
        return Err(ClaimRefusal::PendingInFuture {
            pending: quote(&document.pending_time),
            ahead_secs: age_ms.saturating_neg() / 1000,
            skew_secs: CLOCK_SKEW_MS / 1000,
        });
    }
    Ok(AttestedInstance {
        document,
        launched_ms,
        certificate,
    })
}

/// Checks AWS's signature over a document's exact bytes with a certificate of the document's
/// region, and reads the document. Nothing about whose document it is: [`verify_claim`]
/// adds that for claims; an engine uses this alone on its own document, to learn the
/// cluster's account and region from AWS's word. Returns the document and the name of the
/// certificate that verified it.
///
/// # Errors
///
/// [`ClaimRefusal::TooLarge`], [`ClaimRefusal::SignatureNotBase64`],
/// [`ClaimRefusal::Malformed`], [`ClaimRefusal::UnknownRegion`] or
/// [`ClaimRefusal::BadSignature`].
pub fn verify_signed_document(
    document: &[u8],
    signature: &str,
    certificates: &IdentityCertificates,
) -> Result<(IdentityDocument, String), ClaimRefusal> {
    check_size("document", document.len(), MAX_DOCUMENT_BYTES)?;
    check_size("signature", signature.len(), MAX_SIGNATURE_BYTES)?;
    let signature = decode_signature(signature)?;
    let region = claimed_region(document)?;
    let candidates = certificates.for_region(&region);
    if candidates.is_empty() {
        return Err(ClaimRefusal::UnknownRegion {
            region: quote(&region),
        });
    }
    let certificate = verify_document(document, &signature, &region, &candidates)?;
    Ok((IdentityDocument::parse(document)?, certificate.name.clone()))
}

fn check_size(part: &'static str, size: usize, limit: usize) -> Result<(), ClaimRefusal> {
    if size > limit {
        return Err(ClaimRefusal::TooLarge { part, size, limit });
    }
    Ok(())
}
