//! The `instance_manager` engine's core: turn queue messages into registry rows, complete
//! lifecycle actions, heartbeat this master, and say what happened as Salt bus events.
//!
//! Invariant 2 of docs/architecture.md (durable before deleted) shapes [`poll_once`]: a
//! message is deleted only once its effect is durable; a failure leaves it in the queue for
//! redelivery; a message that can never apply is left for the dead-letter queue (the queue's
//! redrive policy), never deleting it and never stopping the engine.

mod apply;
mod claims;
mod confirm;
mod events;
mod identity;
mod lifecycle_action;
mod queue;
mod retry;

use std::collections::HashMap;

use futures_util::future::join_all;
use serde::Serialize;

pub use apply::{apply_message, resolve_role, MessageOutcome};
pub use claims::{poll_claims, ClaimDesk, ClaimReport};
pub use events::{masters_changed, BusEvent};
pub use identity::{resolve_identity, MasterIdentity};
pub use lifecycle_action::{complete, heartbeat as lifecycle_heartbeat, ActionResult, Completion};
pub use queue::{QueueMessage, BATCH, LONG_POLL_SECONDS};
pub(crate) use retry::RawRetrySettings;
pub use retry::RetrySettings;

use crate::aws::AwsClients;
use crate::clock::now_ms;
use crate::config::PhoenixConfig;
use crate::error::Result;
use crate::lifecycle::{
    self, EventKind, InstanceEvent, InstanceId, LifecycleMessage, MessageError, Role,
};
use crate::registry::{self, LiveMaster};
use crate::replacement::Judge;

/// What one poll of the queue did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PollReport {
    pub received: usize,
    pub deleted: usize,
    /// Applied but not deleted (the batch delete failed for them): they come back and are
    /// applied again, which changes nothing.
    pub delete_failed: usize,
    /// Not applied because of a passing failure: left for redelivery.
    pub retry: usize,
    /// Of those, hidden for their retry delay (`phoenix.retry`); the others come back after
    /// the queue's visibility timeout.
    pub postponed: usize,
    /// Can never apply: left for the dead-letter queue.
    pub rejected: usize,
    /// SQS calls made (receives, deletes and visibility changes).
    pub sqs_calls: usize,
    pub events: Vec<BusEvent>,
}

/// Receives one batch (long poll of `wait_seconds`), applies its messages concurrently, and
/// deletes exactly those whose effect is durable.
pub async fn poll_once(
    clients: &AwsClients,
    config: &PhoenixConfig,
    wait_seconds: i32,
) -> Result<PollReport> {
    let queue_url = config.require_queue_url()?;
    let messages = queue::receive(clients, queue_url, wait_seconds).await?;
    let mut report = PollReport {
        received: messages.len(),
        sqs_calls: 1,
        ..PollReport::default()
    };
    if messages.is_empty() {
        return Ok(report);
    }
    let outcomes = apply_batch(clients, config, &messages).await;
    let mut done = Vec::new();
    let mut again = Vec::new();
    for (message, outcome) in messages.iter().zip(outcomes) {
        match outcome {
            MessageOutcome::Done(events) => {
                done.push(message);
                report.events.extend(events);
            }
            MessageOutcome::Retry(events) => {
                report.retry += 1;
                report.events.extend(events);
                let delay = config
                    .retry
                    .delay_seconds(&message.message_id, message.receive_count);
                again.push((message, delay));
            }
            MessageOutcome::Rejected(event) => {
                report.rejected += 1;
                report.events.push(event);
            }
        }
    }
    if !done.is_empty() {
        report.sqs_calls += done.len().div_ceil(BATCH);
        let deleted = queue::delete(clients, queue_url, &done).await?;
        for (message_id, why) in &deleted.failed {
            log::warn!("message {message_id} was applied but not deleted ({why}); it will come back and change nothing");
        }
        report.deleted = deleted.done.len();
        report.delete_failed = deleted.failed.len();
    }
    if !again.is_empty() {
        report.sqs_calls += again.len().div_ceil(BATCH);
        // Not postponing loses nothing: the message comes back after the queue's
        // visibility timeout instead.
        match queue::postpone(clients, queue_url, &again).await {
            Ok(postponed) => {
                for (message_id, why) in &postponed.failed {
                    log::warn!("message {message_id}: its retry could not be postponed ({why}); it comes back after the queue's visibility timeout");
                }
                for (message, delay) in &again {
                    if postponed.done.contains(&message.message_id) {
                        log::info!(
                            "message {}: received {} times, tried again in {delay} s",
                            message.message_id,
                            message.receive_count
                        );
                    }
                }
                report.postponed = postponed.done.len();
            }
            Err(err) => log::warn!(
                "postponing {} message(s) to retry failed ({err}); they come back after the queue's visibility timeout",
                again.len()
            ),
        }
    }
    Ok(report)
}

/// One message as parsed: what it says, or why it can never apply.
type ParsedMessage = std::result::Result<LifecycleMessage, MessageError>;

/// Applies a batch: different instances concurrently (ten registry writes take the time of
/// one), the messages of one instance one after another, in the order received. Two events
/// of one instance applied at once would race for its row, and the loser's refused write
/// would need a second one. Returns one outcome per message, in the batch's order.
async fn apply_batch(
    clients: &AwsClients,
    config: &PhoenixConfig,
    messages: &[QueueMessage],
) -> Vec<MessageOutcome> {
    // Each message parsed once; which instance each is about (a message that is about no
    // instance, or does not parse, is a group of its own).
    let mut parsed: Vec<_> = messages
        .iter()
        .map(|message| Some(lifecycle::parse_message(&message.body)))
        .collect();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_instance: HashMap<String, usize> = HashMap::new();
    for (at, message) in parsed.iter().enumerate() {
        match message {
            Some(Ok(LifecycleMessage::Instance(event))) => {
                let group = *by_instance
                    .entry(event.instance_id.as_str().to_owned())
                    .or_insert_with(|| {
                        groups.push(Vec::new());
                        groups.len() - 1
                    });
                if let Some(members) = groups.get_mut(group) {
                    members.push(at);
                }
            }
            _ => groups.push(vec![at]),
        }
    }
    // Each group takes its messages' parses with it.
    let work: Vec<Vec<(usize, ParsedMessage)>> = groups
        .into_iter()
        .map(|members| {
            members
                .into_iter()
                .filter_map(|at| Some((at, parsed.get_mut(at)?.take()?)))
                .collect()
        })
        .collect();
    let applied = join_all(work.into_iter().map(|members| async move {
        let mut outcomes = Vec::with_capacity(members.len());
        for (at, parse) in members {
            if let Some(message) = messages.get(at) {
                outcomes.push((
                    at,
                    apply::apply_parsed(clients, config, message, parse).await,
                ));
            }
        }
        outcomes
    }))
    .await;
    let mut ordered: Vec<(usize, MessageOutcome)> = applied.into_iter().flatten().collect();
    ordered.sort_by_key(|(at, _)| *at);
    ordered.into_iter().map(|(_, outcome)| outcome).collect()
}

/// Registers this master as running (an event of its own, at the current time, through
/// the same forward-only write as every other event) and records its first heartbeat.
pub async fn register_master(
    clients: &AwsClients,
    config: &PhoenixConfig,
    identity: &MasterIdentity,
) -> Result<registry::Applied> {
    let applied = register_master_as(clients, config, identity, EventKind::Launched).await?;
    registry::record_heartbeat(
        clients,
        config,
        &identity.instance_id,
        &identity.address,
        now_ms(),
    )
    .await?;
    Ok(applied)
}

/// Registers a booting master as `launching` (from `phoenix master-bootstrap`, before
/// salt-master starts): the registry knows it, its own minion's key can be accepted, and it
/// stays out of the live list (no heartbeat) until its engine registers it as running.
pub async fn register_booting_master(
    clients: &AwsClients,
    config: &PhoenixConfig,
    identity: &MasterIdentity,
) -> Result<registry::Applied> {
    register_master_as(clients, config, identity, EventKind::Launching).await
}

async fn register_master_as(
    clients: &AwsClients,
    config: &PhoenixConfig,
    identity: &MasterIdentity,
    kind: EventKind,
) -> Result<registry::Applied> {
    let instance_id: InstanceId = identity
        .instance_id
        .parse()
        .map_err(|err| crate::Error::config("phoenix.master_id", format!("{err}")))?;
    let event = InstanceEvent {
        instance_id,
        group: identity.group.clone(),
        kind,
        time_ms: now_ms(),
        lifecycle: None,
        metadata_role: Some(Role::Master),
        availability_zone: identity.availability_zone.clone(),
        delivery: crate::lifecycle::Delivery::Direct,
    };
    registry::apply_event(clients, config, Role::Master, &event, None).await
}

/// What one heartbeat found.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    /// Whether this master's heartbeat was recorded (false: its row is gone or retiring).
    pub recorded: bool,
    /// The live masters after it.
    pub live: Vec<LiveMaster>,
    /// `phoenix/instance/<id>/drained` for each terminating master whose drain ended and
    /// whose termination this call let go on.
    pub events: Vec<BusEvent>,
}

/// One heartbeat of this master, then the live master list as it stands after it; and the
/// termination of every master whose drain ended is let go on (CONTINUE). Every engine does
/// this, so a drain ends even when the terminating master is already hung.
///
/// Once its own heartbeat is recorded, this master judges its peers (`judge`): a running
/// master silent past `replacement.replace_after` is reported to AutoScaling, which
/// replaces it.
pub async fn heartbeat(
    clients: &AwsClients,
    config: &PhoenixConfig,
    identity: &MasterIdentity,
    judge: &Judge,
) -> Result<Heartbeat> {
    let now = now_ms();
    let recorded = registry::record_heartbeat(
        clients,
        config,
        &identity.instance_id,
        &identity.address,
        now,
    )
    .await?;
    let rows = registry::read_master_heartbeats(clients, config).await?;
    let live = registry::live_masters(&rows, now, config.master_stale_after_ms());
    let mut events = Vec::new();
    for row in &rows {
        let Some(retiring) = row.retiring.as_ref().filter(|r| r.due_ms <= now) else {
            continue;
        };
        match end_drain(clients, config, &row.instance_id, retiring).await {
            Ok(Some(event)) => events.push(event),
            Ok(None) => {}
            Err(err) => log::warn!(
                "{}: letting its termination go on failed, the next heartbeat retries: {err}",
                row.instance_id
            ),
        }
    }
    if recorded {
        events.extend(
            judge
                .judge_peers(clients, config, &identity.instance_id, &rows, now)
                .await,
        );
    }
    Ok(Heartbeat {
        recorded,
        live,
        events,
    })
}

/// Completes a drained master's termination and forgets the hook; the event only when this
/// call completed it (another engine may have been first).
async fn end_drain(
    clients: &AwsClients,
    config: &PhoenixConfig,
    instance_id: &str,
    retiring: &registry::RetireHook,
) -> Result<Option<BusEvent>> {
    let completion = complete(clients, &retiring.hook, instance_id, ActionResult::Continue).await?;
    registry::clear_retire_hook(clients, config, instance_id).await?;
    if completion != Completion::Completed {
        return Ok(None);
    }
    log::info!(
        "master {instance_id} drained for {} s: its termination goes on (lifecycle action {} \
         completed with CONTINUE)",
        config.master_drain_time,
        retiring.hook.hook_name
    );
    Ok(Some(events::master_drained(
        instance_id,
        &retiring.hook.hook_name,
    )))
}
