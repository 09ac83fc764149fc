//! A live master leaves the registry only on AutoScaling's word.
//!
//! A lifecycle message is a registry write, and a termination drops a master from the live
//! list that every minion follows. The queue's policy lets only the stack's topic and the
//! lifecycle hook role send (cfn/phoenix-data.yaml); behind that, a message that ends a
//! master whose heartbeat is fresh is checked with AutoScaling (DescribeAutoScalingInstances)
//! before it is recorded: AutoScaling lists an instance it terminates as `Terminating*`, or
//! no longer lists it. A master that stopped heartbeating needs no such check: it has left
//! the live list already, and its replacement must not wait on AutoScaling.
//!
//! A terminated instance never comes back to life either. Its row stays as a tombstone for
//! `terminated_ttl` after the termination, and the registry's forward-only writes keep any
//! later launch message from moving it back. Once the row has expired, nothing would: so a
//! launch event older than the tombstone lives (a message redriven from the dead-letter queue,
//! or delivered very late) is recorded only if AutoScaling still runs the instance.

use crate::aws::{autoscaling, AwsClients};
use crate::config::PhoenixConfig;
use crate::error::Result;
use crate::lifecycle::{InstanceEvent, Role};
use crate::registry::{self, InstanceState};

/// Why `event` (for a master) must not be recorded, or None when it may: it does not end
/// the master, the master is not live, or AutoScaling confirms it leaves. An error means
/// the check could not be made (the message is tried again later).
pub(super) async fn refuse_unconfirmed_end(
    clients: &AwsClients,
    config: &PhoenixConfig,
    event: &InstanceEvent,
    now_ms: i64,
) -> Result<Option<String>> {
    if InstanceState::implied_by(event.kind) < InstanceState::Terminating {
        return Ok(None);
    }
    let id = event.instance_id.as_str();
    let Some(row) = registry::get(clients, config, Role::Master, id).await? else {
        return Ok(None);
    };
    let Some(age_ms) = row
        .heartbeat_ms
        .map(|beat| now_ms.saturating_sub(beat))
        .filter(|age| {
            row.state == InstanceState::Running && *age <= config.master_stale_after_ms()
        })
    else {
        return Ok(None);
    };
    let listed = autoscaling::describe_instances(clients, &[id.to_owned()]).await?;
    Ok(listed
        .get(id)
        .filter(|instance| instance.stays())
        .map(|instance| {
            format!(
                "{} of master {} not recorded: its last heartbeat was {:.1} s ago and \
                 AutoScaling lists it {} in group {}, not terminating; the message did not come \
                 from AutoScaling",
                event.kind,
                id,
                age_ms as f64 / 1000.0,
                instance.lifecycle_state,
                instance.group
            )
        }))
}

/// Whether `event` may be about an instance whose tombstone has expired: a launch older
/// than `terminated_ttl`. Younger launches need no check: a termination of the same
/// instance comes after its launch, and its tombstone outlives the launch by at least
/// `terminated_ttl`.
pub(super) fn may_outlive_its_tombstone(
    config: &PhoenixConfig,
    event: &InstanceEvent,
    now_ms: i64,
) -> bool {
    let launch = InstanceState::implied_by(event.kind) <= InstanceState::Running;
    let ttl_ms = i64::try_from(config.terminated_ttl)
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    launch && now_ms.saturating_sub(event.time_ms) > ttl_ms
}

/// Why a launch `event` older than the tombstones must not be recorded (AutoScaling does not
/// run the instance, launching or in service), or None when it may. An error means the check
/// could not be made (the message is tried again later).
pub(super) async fn refuse_expired_launch(
    clients: &AwsClients,
    config: &PhoenixConfig,
    event: &InstanceEvent,
    now_ms: i64,
) -> Result<Option<String>> {
    if !may_outlive_its_tombstone(config, event, now_ms) {
        return Ok(None);
    }
    let id = event.instance_id.as_str();
    let listed = autoscaling::describe_instances(clients, &[id.to_owned()]).await?;
    let instance = listed.get(id);
    if instance.is_some_and(autoscaling::GroupInstance::is_launching_or_in_service) {
        return Ok(None);
    }
    let says = instance.map_or_else(
        || "does not list it".to_owned(),
        |instance| {
            format!(
                "lists it {} in group {}",
                instance.lifecycle_state, instance.group
            )
        },
    );
    Ok(Some(format!(
        "{} of {id} not recorded: it happened {:.1} days ago, longer than a terminated \
         instance's record is kept (phoenix.terminated_ttl, {} s), and AutoScaling {says}; a \
         redriven or late message must not bring an ended instance back",
        event.kind,
        now_ms.saturating_sub(event.time_ms) as f64 / 86_400_000.0,
        config.terminated_ttl
    )))
}
