//! Why a minion key could not be fingerprinted.
//!
//! Key files come from minions, so their content is untrusted: the `Display` text is one line,
//! and anything quoted from the key is escaped and shortened so a hostile key cannot forge log
//! lines.

/// How much of a rejected value an error keeps (in characters).
const KEPT_CHARS: usize = 80;

/// A minion public key Phoenix refuses to fingerprint, and therefore to pin or accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Bigger than any public key Salt writes; not read further.
    #[error("public key is {size} bytes, above the {limit}-byte limit")]
    TooLarge {
        /// Size of the text in bytes.
        size: usize,
        /// The limit, [`super::fingerprint::MAX_PEM_BYTES`].
        limit: usize,
    },

    /// Not PEM armour around a base64 body.
    #[error("public key is not PEM: {reason}")]
    NotPem {
        /// What is wrong, in words.
        reason: String,
    },

    /// A PEM block, but not a public key (for example a private key). Phoenix pins public keys
    /// in the registry, so anything else is refused before it can be stored there.
    #[error("PEM block is {label}, expected a PUBLIC KEY")]
    NotPublicKey {
        /// The block's label, quoted.
        label: String,
    },
}

/// Shortens `value` and quotes it with Rust string escapes, so control characters and line
/// breaks cannot leave the one log line.
pub(crate) fn quote(value: &str) -> String {
    match value.char_indices().nth(KEPT_CHARS) {
        Some((cut, _)) => format!("{:?}...", value.get(..cut).unwrap_or_default()),
        None => format!("{value:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_stay_on_one_short_line() {
        let quoted = quote("BEGIN\nFAKE LOG LINE\r\u{1b}[31m");
        assert!(!quoted.contains('\n') && !quoted.contains('\r') && !quoted.contains('\u{1b}'));
        let long = quote(&"é".repeat(500));
        assert!(long.chars().count() < KEPT_CHARS + 10);
        assert!(long.ends_with("..."));
    }

    #[test]
    fn every_error_reads_as_one_line() {
        let errors = [
            KeyError::TooLarge { size: 9, limit: 1 },
            KeyError::NotPem {
                reason: "no BEGIN line".into(),
            },
            KeyError::NotPublicKey {
                label: quote("RSA PRIVATE KEY"),
            },
        ];
        for err in errors {
            let text = err.to_string();
            assert!(!text.is_empty() && !text.contains('\n'), "{text}");
        }
    }
}
