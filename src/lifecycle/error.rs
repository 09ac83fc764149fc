//! Why a queue message could not be turned into an event.
//!
//! Every reason is permanent: the same body will fail the same way on every delivery, so the
//! engine can leave such a message to the queue's redrive policy (dead-letter queue) instead of
//! retrying it. The `Display` text is one line, meant for an operator reading Salt's log; any
//! text copied from the message is quoted, escaped and shortened so a hostile body cannot
//! forge log lines or flood the log.

use serde::Serialize;

use super::instance_id::InstanceIdError;

/// How much of a rejected value an error keeps (in characters).
const KEPT_CHARS: usize = 80;

/// Why a queue message could not be parsed.
///
/// Field names are the names AWS uses, prefixed with the envelope part they sit in:
/// `Message.` for the payload inside an SNS envelope, `detail.` inside an EventBridge event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum MessageError {
    /// The body is empty or only whitespace.
    #[error("message body is empty")]
    EmptyBody,

    /// The body is bigger than SQS allows; it was not parsed.
    #[error("message body is {size} bytes, above the {limit}-byte SQS message limit")]
    TooLarge {
        /// Size of the body in bytes.
        size: usize,
        /// The limit, [`super::MAX_BODY_BYTES`].
        limit: usize,
    },

    /// The body is not JSON.
    #[error("message body is not JSON: {reason}")]
    NotJson {
        /// The JSON parser's complaint, with line and column.
        reason: String,
    },

    /// The SNS envelope's `Message` string does not hold JSON.
    #[error("`{field}` of the SNS envelope is not JSON: {reason}")]
    EmbeddedNotJson {
        /// The envelope field, `Message`.
        field: String,
        /// The JSON parser's complaint, with line and column.
        reason: String,
    },

    /// Valid JSON, but neither an AutoScaling notification, a lifecycle hook message, an SNS
    /// envelope nor an EventBridge event.
    #[error(
        "message is JSON but not an AutoScaling notification, lifecycle hook message, \
         SNS envelope or EventBridge event"
    )]
    UnknownShape,

    /// An SNS envelope of a type other than `Notification` (for example a
    /// `SubscriptionConfirmation` that needs an operator to confirm the subscription).
    #[error("SNS message of type {value}, only \"Notification\" carries AutoScaling events")]
    UnexpectedSnsType {
        /// The envelope's `Type`, quoted.
        value: String,
    },

    /// An EventBridge event that does not come from AutoScaling: the rule feeding the queue
    /// matches more than it should.
    #[error("EventBridge event from source {value}, expected \"aws.autoscaling\"")]
    UnexpectedSource {
        /// The event's `source`, quoted.
        value: String,
    },

    /// A field the event cannot do without is absent (or `null`).
    #[error("required field `{field}` is missing")]
    MissingField {
        /// The field, with its envelope prefix.
        field: String,
    },

    /// A field is present but holds the wrong kind of JSON value.
    #[error("field `{field}` should be {expected}")]
    WrongType {
        /// The field, with its envelope prefix.
        field: String,
        /// What it should hold, e.g. "a string".
        expected: &'static str,
    },

    /// A field that names something (group, hook, token) is an empty string.
    #[error("field `{field}` is empty")]
    EmptyField {
        /// The field, with its envelope prefix.
        field: String,
    },

    /// `EC2InstanceId` is not an EC2 instance id.
    #[error(
        "{value} is not an EC2 instance id (expected i- followed by 8 or 17 lower-case hex digits)"
    )]
    InvalidInstanceId {
        /// The rejected id, quoted.
        value: String,
    },

    /// A time field is not an RFC 3339 date-time.
    #[error("field `{field}` holds {value}, which is not an RFC 3339 time")]
    InvalidTime {
        /// The field, with its envelope prefix.
        field: String,
        /// The rejected text, quoted.
        value: String,
    },

    /// The `Event`, `LifecycleTransition` or EventBridge `detail-type` names something Phoenix
    /// does not handle (for example a warm pool or instance refresh event).
    #[error("unknown AutoScaling event {value}")]
    UnknownEvent {
        /// The event name, quoted.
        value: String,
    },
}

impl MessageError {
    /// The reason in one snake_case word, as carried by events and exceptions.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageError::EmptyBody => "empty_body",
            MessageError::TooLarge { .. } => "too_large",
            MessageError::NotJson { .. } => "not_json",
            MessageError::EmbeddedNotJson { .. } => "embedded_not_json",
            MessageError::UnknownShape => "unknown_shape",
            MessageError::UnexpectedSnsType { .. } => "unexpected_sns_type",
            MessageError::UnexpectedSource { .. } => "unexpected_source",
            MessageError::MissingField { .. } => "missing_field",
            MessageError::WrongType { .. } => "wrong_type",
            MessageError::EmptyField { .. } => "empty_field",
            MessageError::InvalidInstanceId { .. } => "invalid_instance_id",
            MessageError::InvalidTime { .. } => "invalid_time",
            MessageError::UnknownEvent { .. } => "unknown_event",
        }
    }

    pub(super) fn missing(field: String) -> Self {
        Self::MissingField { field }
    }

    pub(super) fn wrong_type(field: String, expected: &'static str) -> Self {
        Self::WrongType { field, expected }
    }

    pub(super) fn invalid_time(field: String, value: &str) -> Self {
        Self::InvalidTime {
            field,
            value: quote(value),
        }
    }

    pub(super) fn unknown_event(value: &str) -> Self {
        Self::UnknownEvent {
            value: quote(value),
        }
    }

    pub(super) fn unexpected_sns_type(value: &str) -> Self {
        Self::UnexpectedSnsType {
            value: quote(value),
        }
    }

    pub(super) fn unexpected_source(value: &str) -> Self {
        Self::UnexpectedSource {
            value: quote(value),
        }
    }
}

impl From<InstanceIdError> for MessageError {
    fn from(err: InstanceIdError) -> Self {
        Self::InvalidInstanceId {
            value: format!("{:?}", err.value),
        }
    }
}

/// Keeps at most [`KEPT_CHARS`] characters of `value`, marking the cut.
pub(super) fn shorten(value: &str) -> String {
    match value.char_indices().nth(KEPT_CHARS) {
        Some((cut, _)) => format!("{}...", value.get(..cut).unwrap_or_default()),
        None => value.to_owned(),
    }
}

/// Shortens `value` and quotes it with Rust string escapes, so control characters and line
/// breaks cannot leave the one log line.
pub(super) fn quote(value: &str) -> String {
    format!("{:?}", shorten(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_is_the_serialised_tag() {
        let samples = [
            MessageError::EmptyBody,
            MessageError::TooLarge { size: 1, limit: 0 },
            MessageError::NotJson { reason: "x".into() },
            MessageError::EmbeddedNotJson {
                field: "Message".into(),
                reason: "x".into(),
            },
            MessageError::UnknownShape,
            MessageError::unexpected_sns_type("SubscriptionConfirmation"),
            MessageError::unexpected_source("aws.ec2"),
            MessageError::missing("EC2InstanceId".into()),
            MessageError::wrong_type("Time".into(), "a string"),
            MessageError::EmptyField { field: "x".into() },
            MessageError::InvalidInstanceId {
                value: "i-x".into(),
            },
            MessageError::invalid_time("Time".into(), "yesterday"),
            MessageError::unknown_event("autoscaling:EC2_INSTANCE_WARMED"),
        ];
        for error in samples {
            let tagged = serde_json::to_value(&error).unwrap();
            assert_eq!(tagged["error"], error.kind(), "{error:?}");
        }
    }

    #[test]
    fn shorten_cuts_on_character_boundaries() {
        assert_eq!(shorten("short"), "short");
        let long = "é".repeat(200);
        let cut = shorten(&long);
        assert_eq!(cut.chars().count(), KEPT_CHARS + 3);
        assert!(cut.ends_with("..."));
        let exact = "a".repeat(KEPT_CHARS);
        assert_eq!(shorten(&exact), exact);
    }

    #[test]
    fn quoted_values_stay_on_one_line() {
        let err = MessageError::unknown_event("autoscaling:X\nFAKE LOG LINE\r\u{1b}[31m");
        let text = err.to_string();
        assert!(!text.contains('\n') && !text.contains('\r') && !text.contains('\u{1b}'));
        assert!(text.contains("\\n"));
    }

    #[test]
    fn every_reason_has_a_one_line_display() {
        let all = [
            MessageError::EmptyBody,
            MessageError::TooLarge {
                size: 262_145,
                limit: 262_144,
            },
            MessageError::NotJson {
                reason: "expected value at line 1 column 1".into(),
            },
            MessageError::EmbeddedNotJson {
                field: "Message".into(),
                reason: "EOF while parsing".into(),
            },
            MessageError::UnknownShape,
            MessageError::unexpected_sns_type("SubscriptionConfirmation"),
            MessageError::unexpected_source("aws.ec2"),
            MessageError::missing("Message.EC2InstanceId".into()),
            MessageError::wrong_type("detail".into(), "an object"),
            MessageError::EmptyField {
                field: "AutoScalingGroupName".into(),
            },
            InstanceIdError {
                value: "i-x".into(),
            }
            .into(),
            MessageError::invalid_time("Time".into(), "yesterday"),
            MessageError::unknown_event("autoscaling:EC2_INSTANCE_REBOOT"),
        ];
        for err in all {
            let text = err.to_string();
            assert!(!text.is_empty() && !text.contains('\n'), "{text}");
        }
    }

    #[test]
    fn serializes_with_an_error_tag() {
        let json = serde_json::to_value(MessageError::missing("Time".into())).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": "missing_field", "field": "Time"})
        );
        let json = serde_json::to_value(MessageError::EmptyBody).unwrap();
        assert_eq!(json, serde_json::json!({"error": "empty_body"}));
    }
}
