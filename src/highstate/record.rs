//! A minion's first-highstate record. The registry keeps it in the minion's row and owns
//! its encoding (`registry/highstate.rs`).

use serde::{Deserialize, Serialize};

/// Where a first highstate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// An attempt runs: `master` published `jid` and waits for its return.
    Running,
    /// An attempt failed and another one is due at `next_attempt_ms`.
    Retrying,
    /// Done: the highstate succeeded.
    Succeeded,
    /// Done: the last attempt failed.
    Failed,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Running,
        Status::Retrying,
        Status::Succeeded,
        Status::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Retrying => "retrying",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// No attempt runs or waits: nothing happens until an operator reruns it.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed)
    }
}

/// One state that failed, as much of it as an operator needs to start looking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedState {
    /// The state's ID in the SLS.
    pub id: String,
    /// The state function, like `pkg.installed`.
    pub function: String,
    pub name: String,
    /// The start of the state's comment.
    pub comment: String,
}

/// The first highstate of one minion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HighstateRecord {
    pub status: Status,
    /// The attempt that runs or ran last, from 1.
    pub attempt: u32,
    /// The master (instance id) that ran the attempt.
    pub master: String,
    /// The Salt job of the attempt.
    pub jid: String,
    pub started_ms: i64,
    /// When a running attempt counts as failed if no return came.
    pub deadline_ms: i64,
    pub finished_ms: Option<i64>,
    /// When the next attempt is due (status `retrying`).
    pub next_attempt_ms: Option<i64>,
    /// States in the last finished attempt's return.
    pub states: u32,
    /// States that changed something in the last finished attempt.
    pub changed: u32,
    /// How many states failed in the last finished attempt.
    pub failed_count: u32,
    /// The first of them, in the order they ran (at most [`MAX_FAILED_STATES`]).
    pub failed_states: Vec<FailedState>,
    /// Why the last attempt failed when no state did (the SLS did not render, the minion
    /// never returned, the job could not be published).
    pub error: Option<String>,
    /// Whether an operator asked for this run (`highstate_runner.rerun`).
    pub rerun: bool,
}

/// The most failed states a record lists; `failed_count` has them all.
pub const MAX_FAILED_STATES: usize = 10;

#[cfg(test)]
impl HighstateRecord {
    /// A record for tests: attempt `attempt` of master a001's job, in `status` (a retry due
    /// at 20 s when it is `Retrying`).
    pub(crate) fn sample(status: Status, attempt: u32) -> Self {
        Self {
            status,
            attempt,
            master: "i-0000000000000a001".into(),
            jid: "20261122000000000001".into(),
            started_ms: 1_000,
            deadline_ms: 61_000,
            finished_ms: None,
            next_attempt_ms: (status == Status::Retrying).then_some(20_000),
            states: 0,
            changed: 0,
            failed_count: 0,
            failed_states: Vec::new(),
            error: None,
            rerun: false,
        }
    }
}
