//! Phoenix: SaltStack high availability on AWS.
//!
//! The domain modules know nothing about Python; the `bindings` module (feature `python`,
//! turned on by maturin) exposes them as `phoenix_salt._core`.

pub mod aws;
pub mod claimant;
pub mod clock;
pub mod config;
pub mod dropin;
pub mod engine;
pub mod enrolment;
pub mod error;
pub mod events;
pub mod files;
pub mod follow;
pub mod highstate;
pub mod imds;
pub mod key_manager;
pub mod keys;
pub mod lifecycle;
pub mod master_key;
pub mod ordering;
pub mod process;
pub mod registry;
pub mod replacement;
pub mod sns;

#[cfg(feature = "python")]
mod bindings;

pub use error::{Error, Result};
