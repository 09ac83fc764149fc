//! Every `phoenix/...` event Phoenix puts on a master's Salt event bus: each tag and its
//! fields are built here and nowhere else. The Rust core returns them for the Python side to
//! fire; what Python fires of its own (an operator's pin, a key mismatch, a reconcile, a
//! refused SNS push) it builds through `phoenix_salt._core`, which exposes the builders
//! below, and the reactor wiring takes its tag pattern from here too. docs/engine.md lists
//! the events for operators.

use serde::Serialize;
use serde_json::{json, Value};

use crate::highstate::{AttemptOutcome, HighstateRecord};
use crate::lifecycle::{InstanceEvent, Role};
use crate::registry::{Applied, InstanceState, LiveMaster};

/// What every instance event's tag begins with: `phoenix/instance/<id>/<what>`.
pub const INSTANCE_TAG_PREFIX: &str = "phoenix/instance/";
/// The tags of every terminated instance, in Salt's glob form (the reactor's wiring).
pub const INSTANCE_TERMINATED_TAGS: &str = "phoenix/instance/*/terminated";
/// The most actions one `phoenix/key/reconciled` event lists; its counts cover the rest. A
/// new master pre-seeding a whole fleet would otherwise put thousands on the bus at once.
pub const RECONCILED_ACTIONS_MAX: usize = 100;
/// Tags two builders share: a queue message's and an SNS push's rejection, and a pin on an
/// identity claim's or an operator's word.
const MESSAGE_REJECTED: &str = "phoenix/message/rejected";
const KEY_PINNED: &str = "phoenix/key/pinned";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BusEvent {
    pub tag: String,
    pub data: Value,
}

fn instance_tag(instance_id: &str, what: &str) -> String {
    format!("{INSTANCE_TAG_PREFIX}{instance_id}/{what}")
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
        tag: instance_tag(event.instance_id.as_str(), what),
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
        tag: instance_tag(instance_id, "drained"),
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
        tag: MESSAGE_REJECTED.to_owned(),
        data: json!({
            "message_id": message_id,
            "receive_count": receive_count,
            "reason": reason,
            "error": error,
        }),
    }
}

/// `phoenix/message/rejected` for a message SNS pushed to salt-api and Phoenix refused;
/// `message_id` is the message's own, when it had one.
pub fn push_rejected(message_id: Option<&str>, reason: &str, error: &str) -> BusEvent {
    BusEvent {
        tag: MESSAGE_REJECTED.to_owned(),
        data: json!({
            "message_id": message_id,
            "delivery": "sns_push",
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
        tag: KEY_PINNED.to_owned(),
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

/// `phoenix/key/pinned` on an operator's word (`salt-run key_runner.accept`), not on a
/// verified identity claim: `pinned_by` names who.
pub fn key_pinned_by_operator(
    instance_id: &str,
    role: &str,
    fingerprint: &str,
    pinned_by: &str,
) -> BusEvent {
    BusEvent {
        tag: KEY_PINNED.to_owned(),
        data: json!({
            "id": instance_id,
            "role": role,
            "fingerprint": fingerprint,
            "pinned_by": pinned_by,
            "trust": "operator",
        }),
    }
}

/// `phoenix/key/mismatch`: a key in `key_state` claims an id the registry pinned to another
/// key (`pinned`); `action` is what this master did about it.
pub fn key_mismatch(
    instance_id: &str,
    key_state: &str,
    fingerprint: &str,
    pinned: &str,
    action: &str,
    master: &str,
) -> BusEvent {
    BusEvent {
        tag: "phoenix/key/mismatch".to_owned(),
        data: json!({
            "id": instance_id,
            "key_state": key_state,
            "fingerprint": fingerprint,
            "pinned": pinned,
            "action": action,
            "master": master,
        }),
    }
}

/// `phoenix/key/reconciled`: the key actions a reconcile carried out on `master` (the first
/// `RECONCILED_ACTIONS_MAX` of `done`, and how many were left out) with the counts of all.
pub fn key_reconciled(master: &str, mut done: Vec<Value>, counts: Value) -> BusEvent {
    let left_out = done.len().saturating_sub(RECONCILED_ACTIONS_MAX);
    done.truncate(RECONCILED_ACTIONS_MAX);
    let mut data = json!({ "master": master, "actions": done, "counts": counts });
    if left_out > 0 {
        data["actions_left_out"] = json!(left_out);
    }
    BusEvent {
        tag: "phoenix/key/reconciled".to_owned(),
        data,
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

/// `phoenix/instance/<id>/unhealthy`: this engine (`reported_by`) reported the silent master
/// `instance_id` to AutoScaling, which terminates and replaces it.
pub fn master_unhealthy(
    instance_id: &str,
    reported_by: &str,
    silent_for_ms: Option<i64>,
    replace_after_s: f64,
) -> BusEvent {
    BusEvent {
        tag: instance_tag(instance_id, "unhealthy"),
        data: json!({
            "instance_id": instance_id,
            "role": "master",
            "reported_by": reported_by,
            "silent_for_s": silent_for_ms.map(|ms| ms as f64 / 1000.0),
            "replace_after_s": replace_after_s,
        }),
    }
}

/// `phoenix/highstate/<id>/started`: attempt `attempt` of `attempts` of a minion's first
/// highstate runs as job `jid` of `master`.
pub fn highstate_started(
    minion_id: &str,
    attempt: u32,
    attempts: u32,
    jid: &str,
    master: &str,
    rerun: bool,
) -> BusEvent {
    BusEvent {
        tag: format!("phoenix/highstate/{minion_id}/started"),
        data: json!({
            "minion_id": minion_id,
            "attempt": attempt,
            "attempts": attempts,
            "jid": jid,
            "master": master,
            "rerun": rerun,
        }),
    }
}

/// `phoenix/highstate/<id>/<status>` (succeeded, retrying, failed): how an attempt ended,
/// and `lifecycle`, the launch's completion when this attempt settled it.
pub fn highstate_ended(
    minion_id: &str,
    record: &HighstateRecord,
    outcome: &AttemptOutcome,
    lifecycle: Option<&str>,
    now_ms: i64,
) -> BusEvent {
    BusEvent {
        tag: format!("phoenix/highstate/{minion_id}/{}", record.status.as_str()),
        data: json!({
            "minion_id": minion_id,
            "attempt": record.attempt,
            "jid": record.jid,
            "master": record.master,
            "summary": outcome.summary(),
            "states": record.states,
            "changed": record.changed,
            "failed_count": record.failed_count,
            "failed_states": record.failed_states,
            "error": record.error,
            "duration_s": (now_ms - record.started_ms) as f64 / 1000.0,
            "next_attempt_in": record.next_attempt_ms.map(|at| (at - now_ms) as f64 / 1000.0),
            "lifecycle": lifecycle,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconciled_event_lists_at_most_the_limit_and_says_how_many_it_left_out() {
        let actions = |n: usize| (0..n).map(|i| json!({ "id": format!("i-{i}") })).collect();
        let full = key_reconciled("i-m", actions(RECONCILED_ACTIONS_MAX), json!({}));
        assert_eq!(full.tag, "phoenix/key/reconciled");
        assert_eq!(
            full.data["actions"].as_array().unwrap().len(),
            RECONCILED_ACTIONS_MAX
        );
        assert!(full.data.get("actions_left_out").is_none());

        let over = key_reconciled("i-m", actions(RECONCILED_ACTIONS_MAX + 7), json!({"a": 1}));
        let listed = over.data["actions"].as_array().unwrap();
        assert_eq!(listed.len(), RECONCILED_ACTIONS_MAX);
        assert_eq!(listed[0]["id"], "i-0");
        assert_eq!(over.data["actions_left_out"], 7);
        assert_eq!(over.data["counts"], json!({"a": 1}));
    }

    #[test]
    fn the_reactors_pattern_matches_the_tag_a_termination_fires_and_no_other() {
        let (before, after) = INSTANCE_TERMINATED_TAGS.split_once('*').unwrap();
        let matches = |tag: &str| {
            tag.strip_prefix(before)
                .and_then(|rest| rest.strip_suffix(after))
                .is_some_and(|id| !id.is_empty() && !id.contains('/'))
        };
        assert!(matches(&instance_tag("i-0abc", "terminated")));
        for what in ["launched", "drained", "unhealthy"] {
            assert!(!matches(&instance_tag("i-0abc", what)), "{what}");
        }
        assert!(master_unhealthy("i-1", "i-2", None, 20.0)
            .tag
            .starts_with(INSTANCE_TAG_PREFIX));
        assert!(master_drained("i-1", "hook")
            .tag
            .starts_with(INSTANCE_TAG_PREFIX));
    }

    #[test]
    fn a_refused_push_says_it_came_by_sns_and_keeps_a_missing_message_id_null() {
        let event = push_rejected(None, "invalid", "not JSON");
        assert_eq!(event.tag, "phoenix/message/rejected");
        assert_eq!(
            event.data,
            json!({"message_id": null, "delivery": "sns_push", "reason": "invalid", "error": "not JSON"})
        );
    }
}
