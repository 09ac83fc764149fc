//! A minion's first-highstate record, as its registry row keeps it (attribute
//! `first_highstate`, a map).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

/// The row attribute that holds the record.
pub const RECORD_ATTRIBUTE: &str = "first_highstate";

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

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl HighstateRecord {
    pub fn to_attribute(&self) -> AttributeValue {
        let mut map = HashMap::from([
            ("status".to_owned(), s(self.status.as_str())),
            ("attempt".to_owned(), n(self.attempt)),
            ("master".to_owned(), s(&self.master)),
            ("jid".to_owned(), s(&self.jid)),
            ("started_ms".to_owned(), n(self.started_ms)),
            ("deadline_ms".to_owned(), n(self.deadline_ms)),
            ("states".to_owned(), n(self.states)),
            ("changed".to_owned(), n(self.changed)),
            ("failed_count".to_owned(), n(self.failed_count)),
            ("rerun".to_owned(), AttributeValue::Bool(self.rerun)),
            (
                "failed_states".to_owned(),
                AttributeValue::L(
                    self.failed_states
                        .iter()
                        .map(|state| {
                            AttributeValue::M(HashMap::from([
                                ("id".to_owned(), s(&state.id)),
                                ("function".to_owned(), s(&state.function)),
                                ("name".to_owned(), s(&state.name)),
                                ("comment".to_owned(), s(&state.comment)),
                            ]))
                        })
                        .collect(),
                ),
            ),
        ]);
        if let Some(at) = self.finished_ms {
            map.insert("finished_ms".to_owned(), n(at));
        }
        if let Some(at) = self.next_attempt_ms {
            map.insert("next_attempt_ms".to_owned(), n(at));
        }
        if let Some(error) = &self.error {
            map.insert("error".to_owned(), s(error));
        }
        AttributeValue::M(map)
    }

    /// The record in a row's attribute; `None` for a value that is not one (logged by the
    /// caller as an unreadable row).
    pub fn from_attribute(value: &AttributeValue) -> Option<Self> {
        let map = value.as_m().ok()?;
        let text = |name: &str| map.get(name).and_then(|v| v.as_s().ok()).cloned();
        let number = |name: &str| {
            map.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
        };
        let count = |name: &str| {
            number(name)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or_default()
        };
        let failed_states = map
            .get("failed_states")
            .and_then(|v| v.as_l().ok())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| {
                        let state = item.as_m().ok()?;
                        let field = |name: &str| {
                            state
                                .get(name)
                                .and_then(|v| v.as_s().ok())
                                .cloned()
                                .unwrap_or_default()
                        };
                        Some(FailedState {
                            id: field("id"),
                            function: field("function"),
                            name: field("name"),
                            comment: field("comment"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            status: Status::parse(&text("status")?)?,
            attempt: u32::try_from(number("attempt")?).ok()?,
            master: text("master").unwrap_or_default(),
            jid: text("jid").unwrap_or_default(),
            started_ms: number("started_ms").unwrap_or_default(),
            deadline_ms: number("deadline_ms").unwrap_or_default(),
            finished_ms: number("finished_ms"),
            next_attempt_ms: number("next_attempt_ms"),
            states: count("states"),
            changed: count("changed"),
            failed_count: count("failed_count"),
            failed_states,
            error: text("error"),
            rerun: map
                .get("rerun")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
        })
    }
}
