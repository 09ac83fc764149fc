//! Reads the AutoScaling payload itself: notification, lifecycle hook message or test message.

use serde_json::Value;

use super::envelope::{EnvelopeTime, Unwrapped};
use super::error::MessageError;
use super::fields::Fields;
use super::instance_id::InstanceId;
use super::metadata::role_from_metadata;
use super::timestamp::parse_time_ms;
use super::{EventKind, InstanceEvent, LifecycleAction, LifecycleMessage, TEST_NOTIFICATION};

/// Turns an unwrapped payload into a message.
///
/// The event is named by `LifecycleTransition` (hooks) or `Event` (notifications, tests), never
/// by the human-readable `Subject`. When both are present the transition wins, because only a
/// hook message carries the token that must be completed. An EventBridge detail that names
/// neither (AutoScaling's notification events) is named by the event's `detail-type`.
pub(super) fn interpret(unwrapped: &Unwrapped) -> Result<LifecycleMessage, MessageError> {
    let fields = unwrapped.fields();
    let delivery = unwrapped.delivery;
    let transition = fields.opt_str("LifecycleTransition")?;
    let event = fields.opt_str("Event")?;

    if transition == Some(TEST_NOTIFICATION) || event == Some(TEST_NOTIFICATION) {
        return Ok(LifecycleMessage::Test {
            group: test_group(&fields),
            delivery,
        });
    }

    let kind = match (transition.or(event), unwrapped.detail_type.as_deref()) {
        (Some(name), _) => {
            EventKind::from_aws_event(name).ok_or_else(|| MessageError::unknown_event(name))?
        }
        (None, Some(detail_type)) => EventKind::from_detail_type(detail_type)
            .ok_or_else(|| MessageError::unknown_event(detail_type))?,
        (None, None) if unwrapped.has_payload_markers() => {
            return Err(MessageError::missing(fields.path("Event")))
        }
        (None, None) => return Err(MessageError::UnknownShape),
    };

    let instance_id = fields.req_str("EC2InstanceId")?;
    if instance_id.is_empty() && kind == EventKind::LaunchFailed {
        return Ok(LifecycleMessage::FailedLaunch {
            group: fields.req_name("AutoScalingGroupName")?.to_owned(),
            reason: fields
                .opt_str("StatusMessage")?
                .filter(|reason| !reason.is_empty())
                .map(str::to_owned),
            delivery,
        });
    }
    let instance_id = InstanceId::new(instance_id)?;
    let group = fields.req_name("AutoScalingGroupName")?.to_owned();
    let time_ms = event_time(&fields, unwrapped.envelope_time.as_ref())?;
    let lifecycle = if kind.is_lifecycle_hook() {
        Some(LifecycleAction {
            hook_name: fields.req_name("LifecycleHookName")?.to_owned(),
            token: fields.req_name("LifecycleActionToken")?.to_owned(),
            group: group.clone(),
        })
    } else {
        None
    };
    let metadata_role = fields
        .get("NotificationMetadata")
        .and_then(role_from_metadata);
    let availability_zone = match fields.opt_object("Details")? {
        Some(details) => details
            .opt_str("Availability Zone")?
            .filter(|zone| !zone.is_empty())
            .map(str::to_owned),
        None => None,
    };

    Ok(LifecycleMessage::Instance(InstanceEvent {
        instance_id,
        group,
        kind,
        time_ms,
        lifecycle,
        metadata_role,
        availability_zone,
        delivery,
    }))
}

/// The group a test message names, if it names one. A test message is deleted whatever it
/// holds, so a malformed group is no reason to reject it.
fn test_group(fields: &Fields<'_>) -> Option<String> {
    fields
        .get("AutoScalingGroupName")
        .and_then(Value::as_str)
        .filter(|group| !group.is_empty())
        .map(str::to_owned)
}

/// The event time: the payload's `Time` when it has one (the time AutoScaling acted), otherwise
/// the envelope's time (SNS `Timestamp`, EventBridge `time`). A payload `Time` that is present
/// but unreadable is an error; it is not silently replaced by the envelope's.
fn event_time(fields: &Fields<'_>, envelope: Option<&EnvelopeTime>) -> Result<i64, MessageError> {
    if let Some(text) = fields.opt_str("Time")? {
        return parse_time_ms(fields.path("Time"), text);
    }
    match envelope {
        None => Err(MessageError::missing(fields.path("Time"))),
        Some(EnvelopeTime { field, value }) => match value {
            None | Some(Value::Null) => Err(MessageError::missing((*field).to_owned())),
            Some(Value::String(text)) => parse_time_ms((*field).to_owned(), text),
            Some(_) => Err(MessageError::wrong_type((*field).to_owned(), "a string")),
        },
    }
}
