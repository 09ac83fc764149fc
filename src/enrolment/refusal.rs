//! Why a claim was refused.
//!
//! Claims come from instances, so anything they carry is untrusted: the `Display` text is one
//! line for an operator reading Salt's log, and every value copied from a claim is quoted,
//! escaped and shortened so a hostile claim cannot forge log lines or flood the log. Each
//! reason has a stable [`ClaimRefusal::kind`] for events and metrics.

/// How much of a refused value a refusal keeps (in characters).
const KEPT_CHARS: usize = 80;

/// A claim that Phoenix will not let pin a minion key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimRefusal {
    /// The document or the signature is bigger than any AWS serves; it was not read further.
    #[error("the claim's {part} is {size} bytes, above the {limit}-byte limit")]
    TooLarge {
        /// `document` or `signature`.
        part: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },

    /// The document is not an instance identity document: not JSON, not an object, or a field
    /// Phoenix checks is missing or of the wrong type.
    #[error("the claim's document is not an instance identity document: {reason}")]
    Malformed {
        /// What is wrong, with any quoted value shortened.
        reason: String,
    },

    /// The signature is not base64.
    #[error("the claim's signature is not base64")]
    SignatureNotBase64,

    /// No certificate is known for the document's region: AWS signs that region's documents
    /// with a key of its own, which the operator has to add.
    #[error(
        "no certificate verifies identity documents of region {region}: AWS signs them with a \
         certificate of that region's own; add it to phoenix.keys.identity_certificates"
    )]
    UnknownRegion {
        /// The document's region, quoted.
        region: String,
    },

    /// The signature does not verify over the document's exact bytes with any certificate of
    /// the document's region: a forged or edited document, or a signature of another key.
    #[error(
        "the signature does not verify the document with {certificates} (region {region}): \
         forged or edited, or AWS signs this region with a certificate not in \
         phoenix.keys.identity_certificates"
    )]
    BadSignature {
        /// The document's region, quoted.
        region: String,
        /// The certificates tried, named.
        certificates: String,
    },

    /// AWS signed the document of another instance than the one the claim speaks for.
    #[error("the claim is for instance {claimed} but the document is instance {document}'s")]
    WrongInstance {
        /// The instance id the claim speaks for, quoted.
        claimed: String,
        /// The document's `instanceId`, quoted.
        document: String,
    },

    /// The instance belongs to another AWS account than the cluster's.
    #[error("the instance is in account {document}, not in the cluster's account {expected}")]
    WrongAccount {
        /// The cluster's account.
        expected: String,
        /// The document's `accountId`, quoted.
        document: String,
    },

    /// The instance runs in another region than the cluster's.
    #[error("the instance is in region {document}, not in the cluster's region {expected}")]
    WrongRegion {
        /// The cluster's region.
        expected: String,
        /// The document's `region`, quoted.
        document: String,
    },

    /// The instance launched longer ago than the enrolment window: a late claim, or an old
    /// document replayed.
    #[error(
        "the instance launched at {pending}, {age_secs} s ago, outside the {window_secs} s \
         enrolment window (phoenix.keys.enrolment_window)"
    )]
    TooOld {
        /// The document's `pendingTime`, quoted.
        pending: String,
        /// Seconds between the launch and now.
        age_secs: i64,
        /// The window, in seconds.
        window_secs: i64,
    },

    /// The instance's launch time is further ahead of this master's clock than clocks drift:
    /// one of the clocks is wrong.
    #[error(
        "the instance launched at {pending}, {ahead_secs} s ahead of this master's clock (more \
         than the {skew_secs} s clocks may drift): check this master's clock"
    )]
    PendingInFuture {
        /// The document's `pendingTime`, quoted.
        pending: String,
        /// Seconds the launch is ahead of now.
        ahead_secs: i64,
        /// The drift allowed, in seconds.
        skew_secs: i64,
    },

    /// The message is not a claim: not JSON, not of this format, or a field missing.
    #[error("the message is not an identity claim: {reason}")]
    NotAClaim {
        /// What is wrong, with any quoted value shortened.
        reason: String,
    },

    /// The key the claim asks to pin is not a public key Salt would fingerprint.
    #[error("the claim's public key is unusable: {reason}")]
    BadPublicKey {
        /// What is wrong with it.
        reason: String,
    },

    /// AWS vouches for the instance, but the registry does not hold it as a live instance
    /// of a configured group (after waiting for its launch to be recorded, or because it
    /// is leaving).
    #[error("the registry holds no live instance {instance} in a configured group: {reason}")]
    NotInRegistry {
        /// The instance id, quoted.
        instance: String,
        /// What the registry holds instead.
        reason: String,
    },

    /// With `keys.verify_autoscaling`, AutoScaling does not list the instance in a
    /// configured group as launching or in service.
    #[error("AutoScaling does not back instance {instance}: {reason}")]
    NotInAutoScaling {
        /// The instance id, quoted.
        instance: String,
        /// What AutoScaling says instead.
        reason: String,
    },

    /// The instance already has another key pinned: the first valid claim pins it once.
    #[error("instance {instance} already has key {pinned} pinned; the claim offers {offered}")]
    PinnedOther {
        /// The instance id, quoted.
        instance: String,
        /// The pinned fingerprint.
        pinned: String,
        /// The fingerprint the claim offers.
        offered: String,
    },
}

impl ClaimRefusal {
    /// The reason's machine-readable kind, for events and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ClaimRefusal::TooLarge { .. } => "too_large",
            ClaimRefusal::Malformed { .. } => "malformed",
            ClaimRefusal::SignatureNotBase64 => "signature_not_base64",
            ClaimRefusal::UnknownRegion { .. } => "unknown_region",
            ClaimRefusal::BadSignature { .. } => "bad_signature",
            ClaimRefusal::WrongInstance { .. } => "wrong_instance",
            ClaimRefusal::WrongAccount { .. } => "wrong_account",
            ClaimRefusal::WrongRegion { .. } => "wrong_region",
            ClaimRefusal::TooOld { .. } => "too_old",
            ClaimRefusal::PendingInFuture { .. } => "pending_in_future",
            ClaimRefusal::NotAClaim { .. } => "not_a_claim",
            ClaimRefusal::BadPublicKey { .. } => "bad_public_key",
            ClaimRefusal::NotInRegistry { .. } => "not_in_registry",
            ClaimRefusal::NotInAutoScaling { .. } => "not_in_autoscaling",
            ClaimRefusal::PinnedOther { .. } => "pinned_other",
        }
    }

    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        ClaimRefusal::Malformed {
            reason: shorten(&reason.into(), 4 * KEPT_CHARS),
        }
    }

    pub(crate) fn not_a_claim(reason: impl Into<String>) -> Self {
        ClaimRefusal::NotAClaim {
            reason: shorten(&reason.into(), 4 * KEPT_CHARS),
        }
    }
}

/// Shortens `value` and quotes it with Rust string escapes, so control characters and line
/// breaks cannot leave the one log line.
pub(crate) fn quote(value: &str) -> String {
    quote_within(value, KEPT_CHARS)
}

/// [`quote`], keeping at most `kept` characters.
pub(crate) fn quote_within(value: &str, kept: usize) -> String {
    format!("{:?}", shorten(value, kept))
}

/// Keeps at most `kept` characters of `value`, marking the cut.
pub(crate) fn shorten(value: &str, kept: usize) -> String {
    match value.char_indices().nth(kept) {
        Some((cut, _)) => format!("{}...", value.get(..cut).unwrap_or_default()),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<ClaimRefusal> {
        vec![
            ClaimRefusal::TooLarge {
                part: "document",
                size: 9,
                limit: 1,
            },
            ClaimRefusal::malformed("expected value at line 1 column 1"),
            ClaimRefusal::SignatureNotBase64,
            ClaimRefusal::UnknownRegion {
                region: quote("ap-southeast-3"),
            },
            ClaimRefusal::BadSignature {
                region: quote("us-east-1"),
                certificates: "AWS's other-regions certificate".into(),
            },
            ClaimRefusal::WrongInstance {
                claimed: quote("i-0a1b2c3d4e5f60001"),
                document: quote("i-0a1b2c3d4e5f60002"),
            },
            ClaimRefusal::WrongAccount {
                expected: "123456789012".into(),
                document: quote("210987654321"),
            },
            ClaimRefusal::WrongRegion {
                expected: "us-east-1".into(),
                document: quote("eu-west-1"),
            },
            ClaimRefusal::TooOld {
                pending: quote("2026-11-21T10:00:00Z"),
                age_secs: 901,
                window_secs: 900,
            },
            ClaimRefusal::PendingInFuture {
                pending: quote("2026-11-21T10:00:00Z"),
                ahead_secs: 400,
                skew_secs: 300,
            },
            ClaimRefusal::not_a_claim("expected value at line 1 column 1"),
            ClaimRefusal::BadPublicKey {
                reason: "public key is not PEM: no BEGIN line".into(),
            },
            ClaimRefusal::NotInRegistry {
                instance: quote("i-0a1b2c3d4e5f60001"),
                reason: "it is terminating".into(),
            },
            ClaimRefusal::NotInAutoScaling {
                instance: quote("i-0a1b2c3d4e5f60001"),
                reason: "AutoScaling says its lifecycle state is Terminating:Wait".into(),
            },
            ClaimRefusal::PinnedOther {
                instance: quote("i-0a1b2c3d4e5f60001"),
                pinned: "aa:bb".into(),
                offered: "cc:dd".into(),
            },
        ]
    }

    #[test]
    fn every_refusal_reads_as_one_line_with_its_own_kind() {
        let all = every_kind();
        let mut kinds: Vec<_> = all.iter().map(ClaimRefusal::kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), all.len());
        for refusal in all {
            let text = refusal.to_string();
            assert!(!text.is_empty() && !text.contains('\n'), "{text}");
        }
    }

    #[test]
    fn quoted_values_stay_on_one_short_line() {
        let quoted = quote("i-0\nFAKE LOG LINE\r\u{1b}[31m");
        assert!(!quoted.contains('\n') && !quoted.contains('\r') && !quoted.contains('\u{1b}'));
        let long = quote(&"é".repeat(500));
        assert!(long.chars().count() < KEPT_CHARS + 10);
        assert!(long.ends_with("...\""));
        let reason = ClaimRefusal::malformed("x".repeat(10_000)).to_string();
        assert!(reason.len() < 500, "{reason}");
    }
}
