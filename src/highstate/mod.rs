//! Every new minion's first highstate: run once across all masters, retried with backoff,
//! recorded in the minion's registry row, and (with `highstate_gating`) what lets
//! AutoScaling put the instance in service (docs/architecture.md, flow A: a minion launches).
//!
//! The record lives in the instance's row (attribute `first_highstate`) and moves through
//! conditional writes only: an attempt starts with a write conditional on the record read
//! before it ([`claim`]), so one master wins when several see the minion start, and ends
//! with a write conditional on its job id ([`finish`]), so a return and a timeout of the same
//! attempt never both count. Salt runs the job; the Python runner publishes it and the
//! engine hands its return here. Each master's engine also sweeps the registry
//! ([`sweep`]): attempts past their timeout, retries that are due, lifecycle actions to
//! keep alive or to complete.

mod outcome;
mod progress;
mod record;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use serde::Serialize;

pub use outcome::{summarize, AttemptOutcome};
pub use progress::{
    decide_claim, finished, lifecycle_result, plan_sweep, started, ClaimMode, Skip, SweepAction,
};
pub use record::{FailedState, HighstateRecord, Status, MAX_FAILED_STATES};

use crate::aws::AwsClients;
use crate::config::PhoenixConfig;
use crate::engine::{self, ActionResult, Completion};
use crate::error::Result;
use crate::events::{self, BusEvent};
use crate::lifecycle::LifecycleAction;
use crate::lifecycle::Role;
use crate::registry::{self, InstanceRecord, MasterHeartbeat};

/// An instance's row, looked up by id: minions first, then masters (a master's own minion
/// has its master's id, and its row is the master's).
pub async fn find(
    clients: &AwsClients,
    config: &PhoenixConfig,
    instance_id: &str,
) -> Result<Option<(Role, InstanceRecord)>> {
    for role in [Role::Minion, Role::Master] {
        if let Some(row) = registry::get(clients, config, role, instance_id).await? {
            return Ok(Some((role, row)));
        }
    }
    Ok(None)
}

/// What a request for an attempt came to.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimReport {
    pub minion_id: String,
    pub mode: ClaimMode,
    /// Whether this caller won the attempt and must now publish `jid`.
    pub claimed: bool,
    pub attempt: Option<u32>,
    pub jid: String,
    /// Why no attempt starts, when none does.
    pub skip: Option<Skip>,
    pub reason: Option<String>,
    /// The record as it stands after the call.
    pub record: Option<HighstateRecord>,
    pub events: Vec<BusEvent>,
}

/// Starts attempt (`mode`) of `minion_id`'s first highstate as job `jid` of `master`, if
/// no one else runs it and it is due. The caller publishes the job only when `claimed`.
pub async fn claim(
    clients: &AwsClients,
    config: &PhoenixConfig,
    minion_id: &str,
    master: &str,
    jid: &str,
    mode: ClaimMode,
    now_ms: i64,
) -> Result<ClaimReport> {
    let mut report = ClaimReport {
        minion_id: minion_id.to_owned(),
        mode,
        claimed: false,
        attempt: None,
        jid: jid.to_owned(),
        skip: None,
        reason: None,
        record: None,
        events: Vec::new(),
    };
    let found = find(clients, config, minion_id).await?;
    let (role, current) = match &found {
        Some((role, row)) if row.state.is_live() => (*role, row.first_highstate.as_ref()),
        _ => {
            report.skip = Some(Skip::NotLive);
            report.reason = Some(Skip::NotLive.describe(None));
            return Ok(report);
        }
    };
    report.record = current.cloned();
    let attempt = match decide_claim(current, true, mode, now_ms) {
        Ok(attempt) => attempt,
        Err(skip) => {
            report.reason = Some(skip.describe(current));
            report.skip = Some(skip);
            return Ok(report);
        }
    };
    let record = started(
        current,
        attempt,
        mode,
        master,
        jid,
        now_ms,
        &config.highstate,
    );
    if !registry::write_highstate(clients, config, role, minion_id, current, &record, true).await? {
        // Someone moved the record since it was read: say what it holds now.
        let now = find(clients, config, minion_id).await?;
        let record = now
            .as_ref()
            .and_then(|(_, row)| row.first_highstate.clone());
        let live = now.as_ref().is_some_and(|(_, row)| row.state.is_live());
        let skip = decide_claim(record.as_ref(), live, mode, now_ms)
            .err()
            .unwrap_or(Skip::Running);
        report.reason = Some(format!(
            "another master moved the record first: {}",
            skip.describe(record.as_ref())
        ));
        report.skip = Some(skip);
        report.record = record;
        return Ok(report);
    }
    log::info!("{minion_id}: first highstate attempt {attempt} started as job {jid} ({mode:?})");
    report.claimed = true;
    report.attempt = Some(attempt);
    report.events.push(events::highstate_started(
        minion_id,
        attempt,
        config.highstate.attempts,
        jid,
        master,
        record.rerun,
    ));
    report.record = Some(record);
    Ok(report)
}

/// What recording an attempt's end came to.
#[derive(Debug, Clone, Serialize)]
pub struct FinishReport {
    pub minion_id: String,
    pub jid: String,
    /// Whether this call recorded it (false: not the running attempt's job, or recorded
    /// already).
    pub recorded: bool,
    pub reason: Option<String>,
    pub record: Option<HighstateRecord>,
    /// `continue` or `abandon` when the launch lifecycle action was completed.
    pub lifecycle: Option<String>,
    pub events: Vec<BusEvent>,
}

/// Records the end of `minion_id`'s running attempt, job `jid`, with `outcome`; completes
/// the launch lifecycle action when the first highstate is done and the launch waits for it.
/// A job that is not the running attempt (an operator's own `state.apply`, a return that
/// comes after its timeout was recorded) changes nothing.
pub async fn finish(
    clients: &AwsClients,
    config: &PhoenixConfig,
    minion_id: &str,
    jid: &str,
    outcome: &AttemptOutcome,
    now_ms: i64,
) -> Result<FinishReport> {
    let mut report = FinishReport {
        minion_id: minion_id.to_owned(),
        jid: jid.to_owned(),
        recorded: false,
        reason: None,
        record: None,
        lifecycle: None,
        events: Vec::new(),
    };
    let Some((role, row)) = find(clients, config, minion_id).await? else {
        report.reason = Some("the registry holds no instance with this id".to_owned());
        return Ok(report);
    };
    let current = match &row.first_highstate {
        Some(record) if record.status == Status::Running && record.jid == jid => record,
        other => {
            report.reason = Some(format!(
                "job {jid} is not the running first-highstate attempt ({})",
                match other {
                    Some(record) => format!("{} of job {}", record.status.as_str(), record.jid),
                    None => "no first highstate recorded".to_owned(),
                }
            ));
            report.record = other.clone();
            return Ok(report);
        }
    };
    let record = finished(current, outcome, now_ms, &config.highstate);
    if !registry::write_highstate(
        clients,
        config,
        role,
        minion_id,
        Some(current),
        &record,
        false,
    )
    .await?
    {
        report.reason = Some(format!("job {jid} was recorded by another master first"));
        return Ok(report);
    }
    report.recorded = true;
    let summary = outcome.summary();
    match record.status {
        Status::Succeeded => log::info!(
            "{minion_id}: first highstate succeeded (attempt {}, job {jid}): {summary}",
            record.attempt
        ),
        Status::Retrying => log::warn!(
            "{minion_id}: first highstate attempt {} of {} failed (job {jid}): {summary}; \
             retrying in {:.0} s",
            record.attempt,
            config.highstate.attempts,
            (record.next_attempt_ms.unwrap_or(now_ms) - now_ms) as f64 / 1000.0
        ),
        _ => log::error!(
            "{minion_id}: first highstate failed for good after attempt {} (job {jid}): {summary}",
            record.attempt
        ),
    }
    if let (Some(hook), Some(result)) = (&row.launch_hook, lifecycle_result(record.status)) {
        match settle_launch(clients, config, role, minion_id, hook, result).await {
            Ok(()) => report.lifecycle = Some(result.as_str().to_ascii_lowercase()),
            // The sweep completes it later: the record says the launch still waits.
            Err(err) => log::warn!(
                "{minion_id}: completing the launch with {} failed, a sweep will retry: {err}",
                result.as_str()
            ),
        }
    }
    report.events.push(events::highstate_ended(
        minion_id,
        &record,
        outcome,
        report.lifecycle.as_deref(),
        now_ms,
    ));
    report.record = Some(record);
    Ok(report)
}

/// Completes a launch that waited for the first highstate, then forgets its hook.
async fn settle_launch(
    clients: &AwsClients,
    config: &PhoenixConfig,
    role: Role,
    instance_id: &str,
    hook: &LifecycleAction,
    result: ActionResult,
) -> Result<()> {
    let completion = engine::complete(clients, hook, instance_id, result).await?;
    log::info!(
        "{instance_id}: launch lifecycle action {} completed with {} ({completion:?})",
        hook.hook_name,
        result.as_str()
    );
    registry::clear_launch_hook(clients, config, role, instance_id).await
}

/// What one sweep did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepReport {
    /// Instances whose next attempt is due: the caller starts it if the minion answers it.
    pub retry_due: Vec<String>,
    pub timed_out: Vec<String>,
    /// (instance, `continue` | `abandon`)
    pub completed: Vec<(String, String)>,
    pub heartbeats: usize,
    /// Steps that failed (logged); the next sweep tries them again.
    pub failures: usize,
    pub events: Vec<BusEvent>,
}

/// One sweep of the registry by master `me`. `last_heartbeat_ms` is the sweeper's memory
/// of the heartbeats it sent, kept between sweeps.
pub async fn sweep(
    clients: &AwsClients,
    config: &PhoenixConfig,
    me: &str,
    last_heartbeat_ms: &mut HashMap<String, i64>,
    now_ms: i64,
) -> Result<SweepReport> {
    let mut rows = registry::list(clients, config, Role::Minion, now_ms).await?;
    let masters = registry::list(clients, config, Role::Master, now_ms).await?;
    let live: HashSet<String> = masters
        .iter()
        .filter(|row| {
            MasterHeartbeat {
                instance_id: row.instance_id.clone(),
                address: row.address.clone(),
                state: Some(row.state),
                heartbeat_ms: row.heartbeat_ms,
                expires_at: row.expires_at,
                retiring: None,
                launch_ms: None,
                replacement: None,
            }
            .is_live(now_ms, config.master_stale_after_ms())
        })
        .map(|row| row.instance_id.clone())
        .collect();
    let roles: HashMap<String, Role> = rows
        .iter()
        .map(|row| (row.instance_id.clone(), Role::Minion))
        .chain(
            masters
                .iter()
                .map(|row| (row.instance_id.clone(), Role::Master)),
        )
        .collect();
    rows.extend(masters);
    // Forget instances that no longer wait.
    last_heartbeat_ms.retain(|id, _| {
        rows.iter()
            .any(|row| &row.instance_id == id && row.launch_hook.is_some())
    });
    let mut report = SweepReport::default();
    for action in plan_sweep(
        &rows,
        me,
        &live,
        last_heartbeat_ms,
        now_ms,
        &config.highstate,
    ) {
        match action {
            SweepAction::RetryDue { instance_id } => report.retry_due.push(instance_id),
            SweepAction::TimedOut {
                instance_id,
                record,
            } => {
                let outcome = AttemptOutcome::error(format!(
                    "no return from job {} within phoenix.highstate.timeout ({} s)",
                    record.jid, config.highstate.timeout
                ));
                match finish(clients, config, &instance_id, &record.jid, &outcome, now_ms).await {
                    Ok(finished) => {
                        if finished.recorded {
                            report.timed_out.push(instance_id.clone());
                        }
                        if let Some(result) = finished.lifecycle.clone() {
                            report.completed.push((instance_id, result));
                        }
                        report.events.extend(finished.events);
                    }
                    Err(err) => {
                        report.failures += 1;
                        log::warn!("{instance_id}: recording the timed-out attempt failed: {err}");
                    }
                }
            }
            SweepAction::Complete {
                instance_id,
                hook,
                result,
            } => {
                let role = roles.get(&instance_id).copied().unwrap_or(Role::Minion);
                match settle_launch(clients, config, role, &instance_id, &hook, result).await {
                    Ok(()) => report
                        .completed
                        .push((instance_id, result.as_str().to_ascii_lowercase())),
                    Err(err) => {
                        report.failures += 1;
                        log::warn!(
                            "{instance_id}: completing the launch with {} failed: {err}",
                            result.as_str()
                        );
                    }
                }
            }
            SweepAction::Heartbeat { instance_id, hook } => {
                match engine::lifecycle_heartbeat(clients, &hook, &instance_id).await {
                    Ok(Completion::Completed) => {
                        report.heartbeats += 1;
                        last_heartbeat_ms.insert(instance_id, now_ms);
                    }
                    Ok(Completion::AlreadyOver) => {
                        // AutoScaling stopped waiting (the hook timed out): nothing to keep
                        // alive or to complete any more.
                        log::warn!(
                            "{instance_id}: AutoScaling no longer waits for its launch \
                             (hook {} timed out?); forgetting the hook",
                            hook.hook_name
                        );
                        let role = roles.get(&instance_id).copied().unwrap_or(Role::Minion);
                        if let Err(err) =
                            registry::clear_launch_hook(clients, config, role, &instance_id).await
                        {
                            report.failures += 1;
                            log::warn!("{instance_id}: forgetting the hook failed: {err}");
                        }
                    }
                    Err(err) => {
                        report.failures += 1;
                        log::warn!("{instance_id}: lifecycle heartbeat failed: {err}");
                    }
                }
            }
        }
    }
    Ok(report)
}
