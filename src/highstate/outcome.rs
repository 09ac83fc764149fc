//! What one attempt's Salt job return says: succeeded or not, and which states failed.
//!
//! `state.apply` returns, per state, a dict keyed `<module>_|-<id>_|-<name>_|-<function>`
//! with `result` (true, false, or null in test mode), `comment`, `changes`, `__id__` and
//! `__run_num__`. A run that cannot even compile returns a list of error strings instead,
//! and a function that is not there returns a string. Salt sets `retcode` 0 for success,
//! 2 when a state failed and 1 for an error before any state ran.

use serde_json::Value;

use super::record::{FailedState, MAX_FAILED_STATES};

/// The most characters of a comment or error kept in the registry.
const MAX_TEXT: usize = 300;

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttemptOutcome {
    pub succeeded: bool,
    pub states: u32,
    pub changed: u32,
    pub failed_count: u32,
    pub failed_states: Vec<FailedState>,
    pub error: Option<String>,
}

impl AttemptOutcome {
    /// An attempt that ended without a state return: never published, or no return in time.
    pub fn error(error: impl Into<String>) -> Self {
        AttemptOutcome {
            error: Some(shorten(&error.into(), MAX_TEXT)),
            ..AttemptOutcome::default()
        }
    }

    /// One line for logs and events.
    pub fn summary(&self) -> String {
        if self.succeeded {
            return format!("{} states, {} changed", self.states, self.changed);
        }
        if let Some(error) = &self.error {
            return error.clone();
        }
        let names: Vec<&str> = self.failed_states.iter().map(|f| f.id.as_str()).collect();
        format!(
            "{} of {} states failed: {}",
            self.failed_count,
            self.states,
            names.join(", ")
        )
    }
}

/// Reads the data of a `salt/job/<jid>/ret/<minion>` event for `state.apply`.
pub fn summarize(data: &Value) -> AttemptOutcome {
    let retcode = data.get("retcode").and_then(Value::as_i64);
    match data.get("return") {
        Some(Value::Object(states)) => {
            let mut outcome = AttemptOutcome::default();
            let mut failed: Vec<(i64, FailedState)> = Vec::new();
            for (key, state) in states {
                let Some(state) = state.as_object() else {
                    continue;
                };
                outcome.states += 1;
                if state
                    .get("changes")
                    .and_then(Value::as_object)
                    .is_some_and(|changes| !changes.is_empty())
                {
                    outcome.changed += 1;
                }
                if state.get("result") == Some(&Value::Bool(false)) {
                    outcome.failed_count += 1;
                    let run_num = state
                        .get("__run_num__")
                        .and_then(Value::as_i64)
                        .unwrap_or(i64::MAX);
                    failed.push((run_num, failed_state(key, state)));
                }
            }
            failed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
            outcome.failed_states = failed
                .into_iter()
                .take(MAX_FAILED_STATES)
                .map(|(_, state)| state)
                .collect();
            outcome.succeeded = outcome.failed_count == 0 && retcode.is_none_or(|code| code == 0);
            if !outcome.succeeded && outcome.failed_count == 0 {
                outcome.error = Some(format!(
                    "the state run returned retcode {} with no failed state",
                    retcode.unwrap_or_default()
                ));
            }
            outcome
        }
        Some(Value::Array(errors)) => {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| match e {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .collect();
            AttemptOutcome::error(format!(
                "the highstate did not compile: {}",
                lines.join("; ")
            ))
        }
        Some(Value::String(text)) => AttemptOutcome::error(format!("state.apply: {text}")),
        Some(other) => AttemptOutcome::error(format!("state.apply returned {other}")),
        None => AttemptOutcome::error("the job return carries no return"),
    }
}

fn failed_state(key: &str, state: &serde_json::Map<String, Value>) -> FailedState {
    // `<module>_|-<id>_|-<name>_|-<function>`
    let parts: Vec<&str> = key.split("_|-").collect();
    let text = |name: &str| state.get(name).and_then(Value::as_str).map(str::to_owned);
    let comment = match state.get("comment") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(lines)) => lines
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    FailedState {
        id: text("__id__")
            .or_else(|| parts.get(1).map(|p| (*p).to_owned()))
            .unwrap_or_default(),
        function: match (parts.first(), parts.get(3)) {
            (Some(module), Some(function)) if parts.len() == 4 => format!("{module}.{function}"),
            _ => String::new(),
        },
        name: text("name")
            .or_else(|| parts.get(2).map(|p| (*p).to_owned()))
            .unwrap_or_default(),
        comment: shorten(comment.trim(), MAX_TEXT),
    }
}

/// At most `max` characters, cut at a character boundary, with an ellipsis when cut.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
