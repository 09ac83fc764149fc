//! Why an SNS push message was refused. Each reason has a stable kind for logs, events and
//! the Python `MessageError.reason`.

/// An SNS message that Phoenix will not act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsRejection {
    /// Not JSON, not an object, or a required field missing or of the wrong type.
    #[error("not an SNS message: {0}")]
    Malformed(String),
    /// A `Type` other than Notification, SubscriptionConfirmation, UnsubscribeConfirmation.
    #[error("SNS message type {0:?} is not one Phoenix handles")]
    UnknownType(String),
    /// A `SignatureVersion` other than 1 (SHA1withRSA) or 2 (SHA256withRSA).
    #[error("SNS SignatureVersion {0:?} is not supported (1 or 2)")]
    UnsupportedSignatureVersion(String),
    /// A topic that is not in `phoenix.sns.topics`.
    #[error("topic {0} is not in phoenix.sns.topics")]
    TopicNotAllowed(String),
    /// A `Timestamp` outside the freshness window: a replay, or a clock far off.
    #[error("message {message_id} was published at {timestamp}, outside the {window} accepted (phoenix.sns.max_age)")]
    Stale {
        message_id: String,
        timestamp: String,
        window: String,
    },
    /// A `SigningCertURL` or `SubscribeURL` that is not https on an SNS host.
    #[error("{field} {url:?} refused: {reason}")]
    UrlRefused {
        field: &'static str,
        url: String,
        reason: String,
    },
    /// The signing certificate could not be read, is not RSA, or is outside its validity.
    #[error("signing certificate refused: {0}")]
    BadCertificate(String),
    /// The signature does not verify against the certificate's key.
    #[error("signature of message {0} does not verify")]
    BadSignature(String),
}

impl SnsRejection {
    /// The reason's machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            SnsRejection::Malformed(_) => "malformed",
            SnsRejection::UnknownType(_) => "unknown_type",
            SnsRejection::UnsupportedSignatureVersion(_) => "unsupported_signature_version",
            SnsRejection::TopicNotAllowed(_) => "topic_not_allowed",
            SnsRejection::Stale { .. } => "stale",
            SnsRejection::UrlRefused { .. } => "url_refused",
            SnsRejection::BadCertificate(_) => "bad_certificate",
            SnsRejection::BadSignature(_) => "bad_signature",
        }
    }
}
