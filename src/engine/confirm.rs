//! A live master leaves the registry only on AutoScaling's word.
//!
//! A lifecycle message is a registry write, and a termination drops a master from the live
//! list that every minion follows. The queue's policy lets only the stack's topic and the
//! lifecycle hook role send (cfn/phoenix-data.yaml); behind that, a message that ends a
//! master whose heartbeat is fresh is checked with AutoScaling (DescribeAutoScalingInstances)
//! before it is recorded: AutoScaling lists an instance it terminates as `Terminating*`, or
//! no longer lists it. A master that stopped heartbeating needs no such check: it has left
//! the live list already, and its replacement must not wait on AutoScaling.

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
