//! The `instance_manager` engine's core: turn queue messages into registry rows, complete
//! lifecycle actions, heartbeat this master, and say what happened as Salt bus events.
//!
//! Invariant 2 of docs/architecture.md (durable before deleted) shapes [`poll_once`]: a
//! message is deleted only once its effect is durable; a failure leaves it in the queue for
//! redelivery; a message that can never apply is moved to the dead-letter queue (sent there
//! before it is deleted here), never dropped and never stopping the engine.

mod apply;
mod claims;
mod confirm;
pub mod dead_letters;
mod identity;
mod lifecycle_action;
mod queue;
mod retry;

use std::collections::HashMap;

use futures_util::future::join_all;
use serde::Serialize;

use crate::events;
pub use crate::events::{masters_changed, BusEvent};
pub use apply::{apply_message, resolve_role, MessageOutcome};
pub use claims::{poll_claims, ClaimDesk, ClaimReport};
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
    /// Can never apply.
    pub rejected: usize,
    /// Of those, moved to the dead-letter queue at once; the others stay in the events queue
    /// for the next receive (and in the end its redrive policy).
    pub dead_lettered: usize,
    /// SQS calls made (receives, deletes and visibility changes).
    pub sqs_calls: usize,
    pub events: Vec<BusEvent>,
}

impl PollReport {
    /// Counts the deletes of `applied` messages whose effect is durable. A delete that failed,
    /// entry by entry or as a whole call, loses nothing: the messages come back and change
    /// nothing, and the events of their applies stay in the report to be fired. Dropped with
    /// the error, they would be lost for good: a message applied again moves no row, so it
    /// makes no event the second time.
    fn count_deletes(&mut self, applied: usize, deleted: Result<queue::BatchOutcome>) {
        match deleted {
            Ok(deleted) => {
                for (message_id, why) in &deleted.failed {
                    log::warn!("message {message_id} was applied but not deleted ({why}); it will come back and change nothing");
                }
                self.deleted = deleted.done.len();
                self.delete_failed = deleted.failed.len();
            }
            Err(error) => {
                log::warn!("deleting {applied} applied message(s) failed ({error}); they will come back and change nothing");
                self.delete_failed = applied;
            }
        }
    }
}

/// Receives one batch (long poll of `wait_seconds`), applies its messages concurrently, and
/// deletes exactly those whose effect is durable. The events of what was applied are in the
/// report even when the deletes failed.
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
    let mut refused = Vec::new();
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
                refused.push(message);
            }
        }
    }
    if !refused.is_empty() {
        let moved = dead_letters::move_rejected(clients, queue_url, &refused).await;
        report.dead_lettered = moved.moved;
        report.sqs_calls += moved.sqs_calls;
    }
    if !done.is_empty() {
        report.sqs_calls += done.len().div_ceil(BATCH);
        let deleted = queue::delete(clients, queue_url, &done).await;
        report.count_deletes(done.len(), deleted);
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
    let limit = config.heartbeat_timeout();
    let deadline = tokio::time::Instant::now() + limit;
    let record = registry::record_heartbeat(
        clients,
        config,
        &identity.instance_id,
        &identity.address,
        now,
    );
    let recorded = by_deadline(deadline, limit, "UpdateItem", record).await?;
    let read = registry::read_master_heartbeats(clients, config);
    let rows = by_deadline(deadline, limit, "Query", read).await?;
    let live = registry::live_masters(&rows, now, config.master_stale_after_ms());
    // Drains and peers' judgement by the same deadline: a hung AutoScaling call must not
    // hold back this master's next heartbeat. What was done before the deadline stays done,
    // with its events; the next heartbeat does the rest.
    let mut events = Vec::new();
    let rest = async {
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
            let judged = judge
                .judge_peers(clients, config, &identity.instance_id, &rows, now)
                .await;
            events.extend(judged);
        }
    };
    if tokio::time::timeout_at(deadline, rest).await.is_err() {
        log::warn!(
            "this heartbeat's drains and peer checks took longer than {} s (half of \
             phoenix.master_stale_after) and were cut short; the next heartbeat goes on",
            limit.as_secs_f64()
        );
    }
    Ok(Heartbeat {
        recorded,
        live,
        events,
    })
}

/// `call`'s result, or a retryable DynamoDB error once `deadline` passed (the heartbeat's:
/// `limit`, half of `master_stale_after`, after it began).
async fn by_deadline<T>(
    deadline: tokio::time::Instant,
    limit: std::time::Duration,
    operation: &'static str,
    call: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout_at(deadline, call).await {
        Ok(result) => result,
        Err(_) => Err(crate::Error::Aws {
            service: "dynamodb",
            operation,
            code: None,
            retryable: true,
            message: format!(
                "no answer within {} s, half of phoenix.master_stale_after: this heartbeat is \
                 given up and the next one tries again",
                limit.as_secs_f64()
            ),
        }),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn report_with_an_event() -> PollReport {
        PollReport {
            received: 2,
            events: vec![events::message_ignored("m-1", "no_instance", "no capacity")],
            ..PollReport::default()
        }
    }

    #[test]
    fn a_failed_delete_call_keeps_the_events_of_what_was_applied() {
        let mut report = report_with_an_event();
        report.count_deletes(2, Err(crate::Error::Internal("connection reset".into())));
        assert_eq!((report.deleted, report.delete_failed), (0, 2));
        assert_eq!(
            report.events.len(),
            1,
            "the applied messages' events are still fired"
        );
    }

    #[tokio::test]
    async fn a_heartbeat_call_that_never_answers_is_given_up_at_the_deadline() {
        let limit = std::time::Duration::from_millis(20);
        let deadline = tokio::time::Instant::now() + limit;
        let hung = std::future::pending::<Result<bool>>();
        let error = by_deadline(deadline, limit, "UpdateItem", hung)
            .await
            .expect_err("a hung call is given up");
        assert!(error.is_retryable(), "{error}");
        assert!(error.to_string().contains("UpdateItem"), "{error}");
        // A call that answers in time is passed through.
        let later = tokio::time::Instant::now() + limit;
        let answered = by_deadline(later, limit, "Query", async { Ok(7) }).await;
        assert_eq!(answered.ok(), Some(7));
    }

    #[test]
    fn deletes_refused_entry_by_entry_are_counted_apart() {
        let mut report = report_with_an_event();
        let outcome = queue::BatchOutcome {
            done: vec!["m-1".into()],
            failed: vec![("m-2".into(), "ReceiptHandleIsInvalid".into())],
        };
        report.count_deletes(2, Ok(outcome));
        assert_eq!((report.deleted, report.delete_failed), (1, 1));
        assert_eq!(report.events.len(), 1);
    }
}
