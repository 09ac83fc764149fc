//! Takes the AutoScaling payload out of whatever carried it to the queue.
//!
//! Three shapes reach the queue:
//! - **SNS** (`Type` + `Message`): ASG notifications, and lifecycle hooks whose target is a
//!   topic. The payload is a JSON *string* in `Message`; the envelope's `Timestamp` is when SNS
//!   accepted it.
//! - **EventBridge** (`detail-type` + `source` + `detail`): the payload is the `detail` object;
//!   the event's `time` is the only time it carries. Notification events carry no `Event` in
//!   their detail, so the `detail-type` is kept to name the event.
//! - **Direct**: a lifecycle hook whose target is the queue itself, or an SNS subscription with
//!   raw message delivery; the body is the payload.
//!
//! The shape is recognised by the envelope's own keys, which never occur in an AutoScaling
//! payload (payload keys are CamelCase, EventBridge keys lower-case, SNS keys are checked as a
//! pair).

use serde_json::{Map, Value};

use super::error::MessageError;
use super::fields::Fields;
use super::Delivery;

/// The only EventBridge source Phoenix accepts.
const AUTOSCALING_SOURCE: &str = "aws.autoscaling";

/// Keys of which at least one occurs in every AutoScaling payload Phoenix handles. A payload
/// with none of them is some other JSON, and is reported as such rather than as a payload
/// missing its `Event`.
const PAYLOAD_MARKERS: [&str; 6] = [
    "Event",
    "LifecycleTransition",
    "EC2InstanceId",
    "AutoScalingGroupName",
    "LifecycleHookName",
    "LifecycleActionToken",
];

/// The time an envelope offers for payloads that have none: the field's name and its raw value,
/// checked only if it is actually needed.
pub(super) struct EnvelopeTime {
    pub field: &'static str,
    pub value: Option<Value>,
}

/// The payload, taken out of its envelope.
pub(super) struct Unwrapped {
    pub delivery: Delivery,
    pub payload: Map<String, Value>,
    /// Prefix that names payload fields in errors (`Message.`, `detail.`, or nothing).
    pub prefix: &'static str,
    pub envelope_time: Option<EnvelopeTime>,
    /// EventBridge `detail-type`, which names the event when the detail does not.
    pub detail_type: Option<String>,
}

impl Unwrapped {
    pub(super) fn fields(&self) -> Fields<'_> {
        Fields::new(&self.payload, self.prefix)
    }

    /// Whether the payload looks like AutoScaling's at all.
    pub(super) fn has_payload_markers(&self) -> bool {
        let fields = self.fields();
        PAYLOAD_MARKERS.iter().any(|key| fields.contains(key))
    }
}

/// Recognises the delivery shape of a parsed body and takes the payload out.
pub(super) fn unwrap(body: Value) -> Result<Unwrapped, MessageError> {
    let Value::Object(root) = body else {
        return Err(MessageError::UnknownShape);
    };
    if root.contains_key("Type") && (root.contains_key("Message") || root.contains_key("TopicArn"))
    {
        from_sns(root)
    } else if root.contains_key("detail-type") || root.contains_key("detail") {
        from_eventbridge(root)
    } else {
        Ok(Unwrapped {
            delivery: Delivery::Direct,
            payload: root,
            prefix: "",
            envelope_time: None,
            detail_type: None,
        })
    }
}

fn from_sns(mut root: Map<String, Value>) -> Result<Unwrapped, MessageError> {
    let envelope = Fields::new(&root, "");
    let kind = envelope.req_str("Type")?;
    if kind != "Notification" {
        return Err(MessageError::unexpected_sns_type(kind));
    }
    let text = envelope.req_str("Message")?;
    let payload = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(payload)) => payload,
        Ok(_) => {
            return Err(MessageError::wrong_type(
                "Message".into(),
                "a string holding a JSON object",
            ))
        }
        Err(err) => {
            return Err(MessageError::EmbeddedNotJson {
                field: "Message".into(),
                reason: err.to_string(),
            })
        }
    };
    let envelope_time = Some(EnvelopeTime {
        field: "Timestamp",
        value: root.remove("Timestamp"),
    });
    Ok(Unwrapped {
        delivery: Delivery::Sns,
        payload,
        prefix: "Message.",
        envelope_time,
        detail_type: None,
    })
}

fn from_eventbridge(mut root: Map<String, Value>) -> Result<Unwrapped, MessageError> {
    let envelope = Fields::new(&root, "");
    let source = envelope.req_str("source")?;
    if source != AUTOSCALING_SOURCE {
        return Err(MessageError::unexpected_source(source));
    }
    let detail_type = envelope.req_str("detail-type")?.to_owned();
    let payload = match root.remove("detail") {
        Some(Value::Object(detail)) => detail,
        None | Some(Value::Null) => return Err(MessageError::missing("detail".into())),
        Some(_) => return Err(MessageError::wrong_type("detail".into(), "an object")),
    };
    let envelope_time = Some(EnvelopeTime {
        field: "time",
        value: root.remove("time"),
    });
    Ok(Unwrapped {
        delivery: Delivery::EventBridge,
        payload,
        prefix: "detail.",
        envelope_time,
        detail_type: Some(detail_type),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shape(body: Value) -> Result<(Delivery, &'static str), MessageError> {
        unwrap(body).map(|u| (u.delivery, u.prefix))
    }

    #[test]
    fn recognises_the_three_shapes() {
        let sns = json!({"Type": "Notification", "Message": "{\"Event\": \"x\"}", "TopicArn": "t"});
        assert_eq!(shape(sns), Ok((Delivery::Sns, "Message.")));
        let eventbridge = json!({"detail-type": "x", "source": "aws.autoscaling", "detail": {}});
        assert_eq!(shape(eventbridge), Ok((Delivery::EventBridge, "detail.")));
        let direct = json!({"Event": "x"});
        assert_eq!(shape(direct), Ok((Delivery::Direct, "")));
    }

    #[test]
    fn non_objects_have_no_shape() {
        for body in [json!([]), json!("text"), json!(1), json!(null), json!(true)] {
            assert_eq!(shape(body).err(), Some(MessageError::UnknownShape));
        }
    }

    #[test]
    fn sns_envelope_errors() {
        let confirm = json!({"Type": "SubscriptionConfirmation", "Message": "You have chosen", "TopicArn": "t"});
        assert_eq!(
            shape(confirm).err(),
            Some(MessageError::unexpected_sns_type(
                "SubscriptionConfirmation"
            ))
        );
        let no_message = json!({"Type": "Notification", "TopicArn": "t"});
        assert_eq!(
            shape(no_message).err(),
            Some(MessageError::missing("Message".into()))
        );
        let object_message = json!({"Type": "Notification", "Message": {"Event": "x"}});
        assert_eq!(
            shape(object_message).err(),
            Some(MessageError::wrong_type("Message".into(), "a string"))
        );
        let array_message = json!({"Type": "Notification", "Message": "[1]"});
        assert_eq!(
            shape(array_message).err(),
            Some(MessageError::wrong_type(
                "Message".into(),
                "a string holding a JSON object"
            ))
        );
        let text_message = json!({"Type": "Notification", "Message": "hello"});
        assert!(matches!(
            shape(text_message),
            Err(MessageError::EmbeddedNotJson { ref field, .. }) if field == "Message"
        ));
        let numeric_type = json!({"Type": 1, "Message": "{}"});
        assert_eq!(
            shape(numeric_type).err(),
            Some(MessageError::wrong_type("Type".into(), "a string"))
        );
    }

    #[test]
    fn eventbridge_envelope_errors() {
        let other_source = json!({"detail-type": "x", "source": "aws.ec2", "detail": {}});
        assert_eq!(
            shape(other_source).err(),
            Some(MessageError::unexpected_source("aws.ec2"))
        );
        let no_source = json!({"detail-type": "x", "detail": {}});
        assert_eq!(
            shape(no_source).err(),
            Some(MessageError::missing("source".into()))
        );
        let no_type = json!({"source": "aws.autoscaling", "detail": {}});
        assert_eq!(
            shape(no_type).err(),
            Some(MessageError::missing("detail-type".into()))
        );
        let no_detail = json!({"detail-type": "x", "source": "aws.autoscaling"});
        assert_eq!(
            shape(no_detail).err(),
            Some(MessageError::missing("detail".into()))
        );
        let string_detail =
            json!({"detail-type": "x", "source": "aws.autoscaling", "detail": "{}"});
        assert_eq!(
            shape(string_detail).err(),
            Some(MessageError::wrong_type("detail".into(), "an object"))
        );
    }

    #[test]
    fn payload_markers() {
        let Ok(unwrapped) = unwrap(json!({"Type": "Notification", "Message": "{\"x\": 1}"})) else {
            panic!("envelope is valid");
        };
        assert!(!unwrapped.has_payload_markers());
        let Ok(unwrapped) = unwrap(json!({"EC2InstanceId": "i-0a1b2c3d"})) else {
            panic!("direct is always valid");
        };
        assert!(unwrapped.has_payload_markers());
    }
}
