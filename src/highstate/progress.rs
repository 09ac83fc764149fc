//! The first highstate's decisions, without I/O: who may start an attempt, what an
//! attempt's end makes of the record, and what a master's periodic sweep has to do.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::outcome::AttemptOutcome;
use super::record::{HighstateRecord, Status};
use crate::config::HighstateSettings;
use crate::engine::ActionResult;
use crate::lifecycle::LifecycleAction;
use crate::registry::InstanceRecord;

/// Why an attempt is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimMode {
    /// The minion (re)started: run it if it never ran.
    First,
    /// A master's sweep found a retry due.
    Retry,
    /// An operator asked for it again, whatever happened before.
    Rerun,
}

/// Why no attempt starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// The registry holds no live instance with this id.
    NotLive,
    /// The first highstate succeeded already.
    Succeeded,
    /// It failed for good; only a rerun starts it again.
    Failed,
    /// An attempt runs (or ran out of time and waits for a sweep to record it).
    Running,
    /// The next attempt is not due yet.
    RetryNotDue,
}

impl Skip {
    /// One line for operators.
    pub fn describe(&self, record: Option<&HighstateRecord>) -> String {
        let Some(record) = record else {
            return "the registry holds no live instance with this id".to_owned();
        };
        match self {
            Skip::NotLive => "the registry holds no live instance with this id".to_owned(),
            Skip::Succeeded => format!(
                "its first highstate succeeded already (attempt {}, job {}, master {})",
                record.attempt, record.jid, record.master
            ),
            Skip::Failed => format!(
                "its first highstate failed for good after attempt {} (job {}); \
                 highstate_runner.rerun starts it again",
                record.attempt, record.jid
            ),
            Skip::Running => format!(
                "attempt {} runs as job {} on master {}",
                record.attempt, record.jid, record.master
            ),
            Skip::RetryNotDue => format!(
                "attempt {} is due at {} ms (epoch)",
                record.attempt + 1,
                record.next_attempt_ms.unwrap_or_default()
            ),
        }
    }
}

/// The attempt that `mode` may start now, or why none starts.
pub fn decide_claim(
    current: Option<&HighstateRecord>,
    live: bool,
    mode: ClaimMode,
    now_ms: i64,
) -> Result<u32, Skip> {
    if !live {
        return Err(Skip::NotLive);
    }
    let Some(current) = current else {
        return Ok(1);
    };
    match (current.status, mode) {
        // A running attempt is never started twice; one past its deadline is recorded as
        // failed by a sweep first, then retried (an operator's rerun may take it over).
        (Status::Running, ClaimMode::Rerun) if now_ms > current.deadline_ms => Ok(1),
        (Status::Running, _) => Err(Skip::Running),
        (_, ClaimMode::Rerun) => Ok(1),
        (Status::Succeeded, _) => Err(Skip::Succeeded),
        (Status::Failed, _) => Err(Skip::Failed),
        (Status::Retrying, _) if current.next_attempt_ms.is_none_or(|at| at <= now_ms) => {
            Ok(current.attempt + 1)
        }
        (Status::Retrying, _) => Err(Skip::RetryNotDue),
    }
}

/// The record of attempt `attempt`, started now by `master` as job `jid`.
pub fn started(
    previous: Option<&HighstateRecord>,
    attempt: u32,
    mode: ClaimMode,
    master: &str,
    jid: &str,
    now_ms: i64,
    settings: &HighstateSettings,
) -> HighstateRecord {
    HighstateRecord {
        status: Status::Running,
        attempt,
        master: master.to_owned(),
        jid: jid.to_owned(),
        started_ms: now_ms,
        deadline_ms: now_ms + settings.timeout_ms(),
        finished_ms: None,
        next_attempt_ms: None,
        states: 0,
        changed: 0,
        failed_count: 0,
        failed_states: Vec::new(),
        error: None,
        // A retry of a rerun is still part of that rerun.
        rerun: mode == ClaimMode::Rerun || (attempt > 1 && previous.is_some_and(|p| p.rerun)),
    }
}

/// The record once the running attempt in `current` ended with `outcome`.
pub fn finished(
    current: &HighstateRecord,
    outcome: &AttemptOutcome,
    now_ms: i64,
    settings: &HighstateSettings,
) -> HighstateRecord {
    let (status, next_attempt_ms) = if outcome.succeeded {
        (Status::Succeeded, None)
    } else if current.attempt < settings.attempts {
        (
            Status::Retrying,
            Some(now_ms + settings.retry_delay_ms(current.attempt + 1)),
        )
    } else {
        (Status::Failed, None)
    };
    HighstateRecord {
        status,
        finished_ms: Some(now_ms),
        next_attempt_ms,
        states: outcome.states,
        changed: outcome.changed,
        failed_count: outcome.failed_count,
        failed_states: outcome.failed_states.clone(),
        error: outcome.error.clone(),
        ..current.clone()
    }
}

/// How a launch lifecycle action ends once the first highstate is done.
pub fn lifecycle_result(status: Status) -> Option<ActionResult> {
    match status {
        Status::Succeeded => Some(ActionResult::Continue),
        Status::Failed => Some(ActionResult::Abandon),
        Status::Running | Status::Retrying => None,
    }
}

/// One thing a master's sweep does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepAction {
    /// The running attempt got no return before its deadline: record it as failed.
    TimedOut {
        instance_id: String,
        record: HighstateRecord,
    },
    /// A retry is due: start it if the minion answers this master.
    RetryDue { instance_id: String },
    /// The first highstate is done and the launch still waits: complete it.
    Complete {
        instance_id: String,
        hook: LifecycleAction,
        result: ActionResult,
    },
    /// The launch waits for an attempt that runs or is due: keep its hook alive.
    Heartbeat {
        instance_id: String,
        hook: LifecycleAction,
    },
}

/// What this master's sweep does for `rows` (live instances of either role).
/// `last_heartbeat_ms`: when this master last heartbeat each instance's launch.
pub fn plan_sweep(
    rows: &[InstanceRecord],
    me: &str,
    live_masters: &HashSet<String>,
    last_heartbeat_ms: &HashMap<String, i64>,
    now_ms: i64,
    settings: &HighstateSettings,
) -> Vec<SweepAction> {
    let heartbeat_every = (settings.lifecycle_heartbeat_interval * 1000.0) as i64;
    let mut actions = Vec::new();
    for row in rows.iter().filter(|row| row.state.is_live()) {
        let Some(record) = &row.first_highstate else {
            continue;
        };
        let instance_id = row.instance_id.clone();
        match record.status {
            Status::Running if now_ms > record.deadline_ms => {
                actions.push(SweepAction::TimedOut {
                    instance_id: instance_id.clone(),
                    record: record.clone(),
                });
            }
            Status::Retrying if record.next_attempt_ms.is_none_or(|at| at <= now_ms) => {
                actions.push(SweepAction::RetryDue {
                    instance_id: instance_id.clone(),
                });
            }
            _ => {}
        }
        let Some(hook) = &row.launch_hook else {
            continue;
        };
        if let Some(result) = lifecycle_result(record.status) {
            actions.push(SweepAction::Complete {
                instance_id,
                hook: hook.clone(),
                result,
            });
            continue;
        }
        // The master of the attempt keeps the launch alive; any master does once it is gone.
        let mine = record.master == me || !live_masters.contains(&record.master);
        let due = last_heartbeat_ms
            .get(&row.instance_id)
            .is_none_or(|last| now_ms - last >= heartbeat_every);
        if mine && due {
            actions.push(SweepAction::Heartbeat {
                instance_id,
                hook: hook.clone(),
            });
        }
    }
    actions
}
