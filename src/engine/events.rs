//! The events Phoenix puts on the master's Salt event bus. The core builds them; the
//! engine's Python shim fires them.

use serde::Serialize;
use serde_json::{json, Value};

use crate::lifecycle::{InstanceEvent, Role};
use crate::registry::{Applied, InstanceState, LiveMaster};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BusEvent {
    pub tag: String,
    pub data: Value,
}

/// `phoenix/instance/<id>/launched` or `.../terminated`, when an event moved a row into a
/// launch or termination state.
pub fn instance_changed(role: Role, event: &InstanceEvent, applied: Applied) -> Option<BusEvent> {
    if applied != Applied::Moved {
        return None;
    }
    let state = InstanceState::implied_by(event.kind);
    let what = match state {
        InstanceState::Launching | InstanceState::Running => "launched",
        InstanceState::Terminating | InstanceState::Terminated => "terminated",
    };
    Some(BusEvent {
        tag: format!("phoenix/instance/{}/{what}", event.instance_id),
        data: json!({
            "instance_id": event.instance_id.as_str(),
            "role": role.as_str(),
            "group": event.group,
            "state": state.as_str(),
            "event": event.kind.as_str(),
            "time_ms": event.time_ms,
            "delivery": event.delivery.as_str(),
        }),
    })
}

/// `phoenix/masters/changed`: the live master list moved.
pub fn masters_changed(previous: &[LiveMaster], masters: &[LiveMaster]) -> BusEvent {
    BusEvent {
        tag: "phoenix/masters/changed".to_owned(),
        data: json!({ "masters": masters, "previous": previous }),
    }
}

/// `phoenix/instance/<id>/drained`: a terminating master had its drain time, and its
/// termination goes on.
pub fn master_drained(instance_id: &str, hook_name: &str) -> BusEvent {
    BusEvent {
        tag: format!("phoenix/instance/{instance_id}/drained"),
        data: json!({
            "instance_id": instance_id,
            "role": "master",
            "lifecycle_hook": hook_name,
            "lifecycle": "continue",
        }),
    }
}

/// `phoenix/message/rejected`: a message that can never be applied.
pub fn message_rejected(
    message_id: &str,
    receive_count: u32,
    reason: &str,
    error: &str,
) -> BusEvent {
    BusEvent {
        tag: "phoenix/message/rejected".to_owned(),
        data: json!({
            "message_id": message_id,
            "receive_count": receive_count,
            "reason": reason,
            "error": error,
        }),
    }
}

/// `phoenix/message/ignored`: a message that can never apply but that nobody needs (a launch
/// that failed before an instance existed, an event of a group this cluster does not
/// configure): deleted, not left for the dead-letter queue.
pub fn message_ignored(message_id: &str, reason: &str, detail: &str) -> BusEvent {
    BusEvent {
        tag: "phoenix/message/ignored".to_owned(),
        data: json!({
            "message_id": message_id,
            "reason": reason,
            "detail": detail,
        }),
    }
}

/// `phoenix/key/pinned`: a verified identity claim pinned a minion's key (attested
/// enrolment); every master now accepts only that key for the id.
pub fn key_pinned(
    instance_id: &str,
    role: Role,
    fingerprint: &str,
    master: &str,
    certificate: &str,
) -> BusEvent {
    BusEvent {
        tag: "phoenix/key/pinned".to_owned(),
        data: json!({
            "id": instance_id,
            "role": role.as_str(),
            "fingerprint": fingerprint,
            "pinned_by": master,
            "trust": "identity_document",
            "certificate": certificate,
        }),
    }
}

/// `phoenix/key/claim_refused`: an identity claim that pins nothing. `id` is what the claim
/// said it was for (untrusted, so in the data, never in the tag); `suppressed` counts the
/// refusals not reported since the last event, when many come at once.
pub fn claim_refused(
    id: Option<&str>,
    fingerprint: Option<&str>,
    refusal: &crate::enrolment::ClaimRefusal,
    suppressed: u64,
) -> BusEvent {
    BusEvent {
        tag: "phoenix/key/claim_refused".to_owned(),
        data: json!({
            "id": id,
            "fingerprint": fingerprint,
            "reason": refusal.kind(),
            "error": refusal.to_string(),
            "suppressed": suppressed,
        }),
    }
}
