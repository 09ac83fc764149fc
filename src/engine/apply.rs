//! Applying one queue message: parse, decide the role, write the registry, complete the
//! lifecycle action when it is due.

use super::confirm;
use super::lifecycle_action::{self, ActionResult};
use super::queue::QueueMessage;
use crate::aws::AwsClients;
use crate::config::PhoenixConfig;
use crate::events::{self, BusEvent};
use crate::lifecycle::{self, EventKind, InstanceEvent, LifecycleMessage, MessageError, Role};
use crate::registry::{self, KeptHook};

/// What became of one message.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageOutcome {
    /// Its effect is durable: delete it.
    Done(Vec<BusEvent>),
    /// A passing failure (AWS error, throttling): keep it for redelivery.
    Retry(Vec<BusEvent>),
    /// It can never apply: leave it for the dead-letter queue.
    Rejected(BusEvent),
}

/// The role of the instance an event is about: from the configured groups, else from the
/// hook's NotificationMetadata. None: not an instance of this cluster's groups.
pub fn resolve_role(config: &PhoenixConfig, event: &InstanceEvent) -> Option<Role> {
    let by_group = if config.master_groups.contains(&event.group) {
        Some(Role::Master)
    } else if config.minion_groups.contains(&event.group) {
        Some(Role::Minion)
    } else {
        None
    };
    if let (Some(group_role), Some(metadata_role)) = (by_group, event.metadata_role) {
        if group_role != metadata_role {
            log::warn!(
                "{}: group {} makes it a {group_role} but the hook's metadata says {metadata_role}; \
                 the configured group wins",
                event.instance_id,
                event.group
            );
        }
    }
    by_group.or(event.metadata_role)
}

/// Applies one message body (from the queue, or pushed by SNS over HTTPS): the same path
/// whatever the delivery.
pub async fn apply_message(
    clients: &AwsClients,
    config: &PhoenixConfig,
    message: &QueueMessage,
) -> MessageOutcome {
    apply_parsed(
        clients,
        config,
        message,
        lifecycle::parse_message(&message.body),
    )
    .await
}

/// What a message is before any AWS call is made for it: an event to apply (with its
/// instance's role), or why it is not applied. The engine and the dead-letter queue's
/// redrive (`dead_letters.rs`) judge a message by this same check.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Checked {
    Apply(Role, InstanceEvent),
    /// AutoScaling's test message (any shape): deleted, logged at info.
    Test {
        group: Option<String>,
        delivery: crate::lifecycle::Delivery,
    },
    /// Can never apply, and nobody needs it: deleted with a warning.
    Ignore {
        reason: &'static str,
        detail: String,
    },
    /// Can never apply: moved to the dead-letter queue.
    Reject {
        reason: &'static str,
        error: String,
    },
}

pub(super) fn check(
    config: &PhoenixConfig,
    parsed: Result<LifecycleMessage, MessageError>,
) -> Checked {
    let event = match parsed {
        Ok(LifecycleMessage::Test { group, delivery }) => return Checked::Test { group, delivery },
        Ok(LifecycleMessage::FailedLaunch { group, reason, .. }) => {
            return Checked::Ignore {
                reason: "no_instance",
                detail: format!(
                    "a launch in group {group} failed before an instance existed (no instance \
                     id): {}",
                    reason.as_deref().unwrap_or("AWS gave no reason")
                ),
            }
        }
        Ok(LifecycleMessage::Instance(event)) => event,
        Err(error) => {
            return Checked::Reject {
                reason: error.kind(),
                error: error.to_string(),
            }
        }
    };
    match resolve_role(config, &event) {
        Some(role) => Checked::Apply(role, event),
        // A group the operator removed from the configuration (or never configured): the
        // message can never apply, and left for the dead-letter queue it would only keep the
        // queue's alarm ringing. Deleted, with a warning and an event that name the group.
        None => Checked::Ignore {
            reason: "unknown_group",
            detail: format!(
                "instance {} of group {} is in no configured group (phoenix.master_groups \
                 {:?}, phoenix.minion_groups {:?}) and its hook metadata names no role; if this \
                 cluster runs that group, add it to one of them",
                event.instance_id, event.group, config.master_groups, config.minion_groups
            ),
        },
    }
}

/// Applies `message`, which parsed as `parsed` (a batch parses each message once, to group
/// them by instance, and hands that on).
pub(super) async fn apply_parsed(
    clients: &AwsClients,
    config: &PhoenixConfig,
    message: &QueueMessage,
    parsed: Result<LifecycleMessage, MessageError>,
) -> MessageOutcome {
    let id = &message.message_id;
    let (role, event) = match check(config, parsed) {
        Checked::Apply(role, event) => (role, event),
        Checked::Test { group, delivery } => {
            log::info!(
                "message {id}: AutoScaling test notification from group {} ({delivery}); deleting it",
                group.as_deref().unwrap_or("?")
            );
            return MessageOutcome::Done(Vec::new());
        }
        Checked::Ignore { reason, detail } => return ignored(message, reason, &detail),
        Checked::Reject { reason, error } => return rejected(message, reason, &error),
    };
    let now_ms = crate::clock::now_ms();
    match confirm::refuse_expired_launch(clients, config, &event, now_ms).await {
        Ok(None) => {}
        Ok(Some(why)) => return ignored(message, "expired_instance", &why),
        Err(error) => {
            log::warn!(
                "message {id}: {} of {}, older than phoenix.terminated_ttl, could not be \
                 checked with AutoScaling (the masters' role needs \
                 autoscaling:DescribeAutoScalingInstances), it will be retried: {error}",
                event.kind,
                event.instance_id
            );
            return MessageOutcome::Retry(Vec::new());
        }
    }
    if role == Role::Master {
        match confirm::refuse_unconfirmed_end(clients, config, &event, now_ms).await {
            Ok(None) => {}
            Ok(Some(why)) => return rejected(message, "unconfirmed_termination", &why),
            Err(error) => {
                log::warn!(
                    "message {id}: {} of live master {} could not be confirmed with \
                     AutoScaling (the masters' role needs \
                     autoscaling:DescribeAutoScalingInstances), it will be retried: {error}",
                    event.kind,
                    event.instance_id
                );
                return MessageOutcome::Retry(Vec::new());
            }
        }
    }
    let kept = kept_hook(config, role, &event, now_ms);
    let applied = match registry::apply_event(clients, config, role, &event, kept).await {
        Ok(applied) => applied,
        Err(error) => {
            log::warn!(
                "message {id}: recording {} of {} failed, it will be retried: {error}",
                event.kind,
                event.instance_id
            );
            return MessageOutcome::Retry(Vec::new());
        }
    };
    log::info!(
        "message {id}: {} of {} {} (group {}, {}): {}",
        event.kind,
        role,
        event.instance_id,
        event.group,
        event.delivery,
        match applied {
            registry::Applied::Moved => "recorded",
            registry::Applied::AlreadyNewer => "the registry already holds a newer state",
        }
    );
    let changed: Vec<BusEvent> = events::instance_changed(role, &event, applied)
        .into_iter()
        .collect();

    if let Err(error) = complete_if_due(clients, config, role, &event).await {
        log::warn!(
            "message {id}: completing the lifecycle action of {} failed, it will be retried: {error}",
            event.instance_id
        );
        return MessageOutcome::Retry(changed);
    }
    MessageOutcome::Done(changed)
}

/// A message that can never apply and needs nobody: deleted, with a warning and a
/// `phoenix/message/ignored` event.
fn ignored(message: &QueueMessage, reason: &str, detail: &str) -> MessageOutcome {
    log::warn!(
        "message {} ignored and deleted: {detail}",
        message.message_id
    );
    MessageOutcome::Done(vec![events::message_ignored(
        &message.message_id,
        reason,
        detail,
    )])
}

/// A message that can never apply, for `reason`: said in the log and in a
/// `phoenix/message/rejected` event; the poll moves it to the dead-letter queue.
fn rejected(message: &QueueMessage, reason: &str, error: &str) -> MessageOutcome {
    log::error!(
        "message {} rejected (received {} times; it goes to the dead-letter queue): {error}",
        message.message_id,
        message.receive_count
    );
    MessageOutcome::Rejected(events::message_rejected(
        &message.message_id,
        message.receive_count,
        reason,
        error,
    ))
}

/// Whether the engine completes this event's lifecycle action at once: masters' launches;
/// minions' launches without highstate gating (the first highstate completes them
/// otherwise); minions' terminations; masters' terminations without a drain time (with one,
/// any engine completes it once the master has drained).
fn completion_due(config: &PhoenixConfig, role: Role, event: &InstanceEvent) -> bool {
    event.lifecycle.is_some()
        && match (event.kind, role) {
            (EventKind::Launching, Role::Master) => true,
            (EventKind::Launching, Role::Minion) => !config.highstate_gating,
            (EventKind::Terminating, Role::Minion) => true,
            (EventKind::Terminating, Role::Master) => config.master_drain_ms() == 0,
            _ => false,
        }
}

/// The lifecycle action the row keeps for later, when the engine does not complete it now.
fn kept_hook(
    config: &PhoenixConfig,
    role: Role,
    event: &InstanceEvent,
    now_ms: i64,
) -> Option<KeptHook> {
    if event.lifecycle.is_none() || completion_due(config, role, event) {
        return None;
    }
    match event.kind {
        EventKind::Launching => Some(KeptHook::Launch),
        // The drain counts from when the registry took the master out of the live list, so
        // a message that waited in the queue does not shorten it.
        EventKind::Terminating => Some(KeptHook::Retire {
            due_ms: now_ms + config.master_drain_ms(),
        }),
        _ => None,
    }
}

/// Completes a hook's lifecycle action when nothing else will ([`completion_due`]).
async fn complete_if_due(
    clients: &AwsClients,
    config: &PhoenixConfig,
    role: Role,
    event: &InstanceEvent,
) -> crate::Result<()> {
    let Some(action) = &event.lifecycle else {
        return Ok(());
    };
    if !completion_due(config, role, event) {
        return Ok(());
    }
    let completion = lifecycle_action::complete(
        clients,
        action,
        event.instance_id.as_str(),
        ActionResult::Continue,
    )
    .await?;
    log::info!(
        "{}: lifecycle action {} completed with CONTINUE ({completion:?})",
        event.instance_id,
        action.hook_name
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{Delivery, LifecycleAction};

    fn event(kind: EventKind) -> InstanceEvent {
        InstanceEvent {
            instance_id: "i-0123456789abcdef0".parse().unwrap(),
            group: "g".into(),
            kind,
            time_ms: 1_000,
            lifecycle: Some(LifecycleAction {
                hook_name: "h".into(),
                token: "t".into(),
                group: "g".into(),
            }),
            metadata_role: None,
            availability_zone: None,
            delivery: Delivery::Direct,
        }
    }

    fn config(extra: &str) -> PhoenixConfig {
        PhoenixConfig::from_json(&format!(r#"{{"cluster": "t"{extra}}}"#)).unwrap()
    }

    #[test]
    fn who_completes_which_lifecycle_action() {
        let plain = config("");
        let gated = config(r#", "highstate_gating": true"#);
        let no_drain = config(r#", "master_drain_time": 0"#);
        let launching = event(EventKind::Launching);
        let terminating = event(EventKind::Terminating);
        // Completed at once by the engine: nothing kept.
        assert_eq!(kept_hook(&plain, Role::Master, &launching, 5), None);
        assert_eq!(kept_hook(&plain, Role::Minion, &launching, 5), None);
        assert_eq!(kept_hook(&plain, Role::Minion, &terminating, 5), None);
        assert_eq!(kept_hook(&no_drain, Role::Master, &terminating, 5), None);
        // Kept for the first highstate, and for the end of a master's drain.
        assert_eq!(
            kept_hook(&gated, Role::Minion, &launching, 5),
            Some(KeptHook::Launch)
        );
        assert_eq!(kept_hook(&gated, Role::Master, &launching, 5), None);
        assert_eq!(
            kept_hook(&plain, Role::Master, &terminating, 5),
            Some(KeptHook::Retire { due_ms: 5 + 30_000 })
        );
        // A notification (no lifecycle action) keeps nothing.
        let mut notification = event(EventKind::Terminating);
        notification.lifecycle = None;
        assert_eq!(kept_hook(&plain, Role::Master, &notification, 5), None);
    }

    #[test]
    fn only_a_launch_older_than_the_tombstones_is_checked_with_autoscaling() {
        let config = config(r#", "terminated_ttl": 3600"#);
        let hour_ms = 3_600_000;
        for kind in EventKind::ALL {
            let old = event(kind);
            let checked = confirm::may_outlive_its_tombstone(&config, &old, 1_000 + hour_ms + 1);
            let launch = matches!(kind, EventKind::Launching | EventKind::Launched);
            assert_eq!(checked, launch, "{kind}");
            // At the tombstone's age or younger, a launch is recorded as before.
            assert!(!confirm::may_outlive_its_tombstone(
                &config,
                &old,
                1_000 + hour_ms
            ));
        }
        // A clock that runs behind the event's makes it young, never old.
        assert!(!confirm::may_outlive_its_tombstone(
            &config,
            &event(EventKind::Launching),
            0
        ));
    }
}
