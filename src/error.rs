//! The one error type of the Rust core. The binding layer maps each variant to one Python
//! exception class (see `bindings::errors`), so callers branch on classes, never on strings.

use std::path::PathBuf;

/// Everything that can go wrong in Phoenix's core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `phoenix:` setting is missing, mistyped or out of range. `key` is the dotted path
    /// an operator would edit, e.g. `phoenix.heartbeat_interval`.
    #[error("{key}: {reason}")]
    Config { key: String, reason: String },

    /// An AWS call failed. `retryable` is true for throttling, timeouts and connection
    /// failures, which the SDK already retried with backoff before giving up.
    #[error("{service} {operation} failed: {}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
    Aws {
        service: &'static str,
        operation: &'static str,
        code: Option<String>,
        message: String,
        retryable: bool,
    },

    /// A resource the call needs does not exist (an AWS table, a registry row, a secret).
    /// `what` reads as a whole sentence: "table X not found".
    #[error("{what}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    NotFound { what: String, code: Option<String> },

    /// The world is not in the state the call expected and Phoenix refuses to overwrite it
    /// (a table with another key schema, a newer registry row, another key pair).
    #[error("conflict: {0}")]
    Conflict(String),

    /// A queue message that can never be applied (malformed, unknown shape, bad id).
    #[error("bad message: {0}")]
    Message(#[from] crate::lifecycle::MessageError),

    /// An SNS push message that Phoenix refuses (unverified, stale, not allowed).
    #[error("SNS message refused: {0}")]
    Sns(#[from] crate::sns::SnsRejection),

    /// An identity claim that Phoenix will not let pin a key (a claim's own fault, or an
    /// identity document that does not verify).
    #[error("identity claim refused: {0}")]
    Claim(#[from] crate::enrolment::ClaimRefusal),

    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A bug: a task panicked or an invariant broke. Never caused by input.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn config(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// Whether trying the same call again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Aws {
                retryable: true,
                ..
            }
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
