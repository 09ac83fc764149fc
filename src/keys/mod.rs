//! Minion keys: Salt's key fingerprint and the registry-driven key-reconcile plan.
//!
//! The key policy (docs/architecture.md, invariant 3): a minion key is accepted only for an
//! exact id that the registry holds as a live instance, and only while its fingerprint
//! matches the one pinned in the registry at first acceptance. Every master plans its own
//! keys against the registry with [`plan_key_actions`] and carries the plan out; nothing here
//! does I/O.
//!
//! Fingerprints are Salt's own ([`pem_fingerprint`]), so what Phoenix logs and pins reads the
//! same as what `salt-call key.finger` reports on the minion.

// Key files and registry rows are untrusted input and the engine must outlive any of them:
// outside tests, this module may not unwrap, index or panic, and clippy holds it to that.
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

mod error;
mod fingerprint;
mod plan;
mod report;
mod store;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod simulate;
#[cfg(test)]
mod tests;

pub use error::KeyError;
pub use fingerprint::{pem_fingerprint, MAX_PEM_BYTES};
pub use plan::{
    plan_key_actions, DeleteReason, KeyAction, KeyPolicy, KeyTrust, LocalKey, LocalKeyState,
    PinnedKey, RegistryMinion, RegistryState,
};
pub use report::{denied_mismatches, key_report, KeyReportRow, KeyStanding};
pub use store::{salt_write_in_flight, KeyStore, StoredKey, KEY_STATES, SALT_WRITE_IN_FLIGHT};
