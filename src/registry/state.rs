//! The life of an instance in the registry and how each AutoScaling event moves it.
//!
//! States only move forward (docs/architecture.md, invariant 1): launching -> running ->
//! terminating -> terminated. Each event implies one state; the registry keeps the furthest
//! state seen and, among the events that imply it, the newest time. Both are maxima, so any
//! order of any set of events, with any duplicates, ends in the same row.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::lifecycle::EventKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    Launching,
    Running,
    Terminating,
    Terminated,
}

impl InstanceState {
    pub const ALL: [InstanceState; 4] = [
        InstanceState::Launching,
        InstanceState::Running,
        InstanceState::Terminating,
        InstanceState::Terminated,
    ];

    /// Position in the forward-only order, stored next to the state so DynamoDB can compare.
    pub fn rank(self) -> u8 {
        match self {
            InstanceState::Launching => 0,
            InstanceState::Running => 1,
            InstanceState::Terminating => 2,
            InstanceState::Terminated => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Launching => "launching",
            InstanceState::Running => "running",
            InstanceState::Terminating => "terminating",
            InstanceState::Terminated => "terminated",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        InstanceState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Launching or running: the instance exists and may hold an accepted key.
    pub fn is_live(self) -> bool {
        matches!(self, InstanceState::Launching | InstanceState::Running)
    }

    /// The state an AutoScaling event implies.
    pub fn implied_by(kind: EventKind) -> Self {
        match kind {
            EventKind::Launching => InstanceState::Launching,
            // The launch notification comes once the instance is in service.
            EventKind::Launched => InstanceState::Running,
            // A failed termination does not bring an instance back: it stays on its way out.
            EventKind::Terminating | EventKind::TerminateFailed => InstanceState::Terminating,
            // A failed launch ends with AutoScaling terminating the instance.
            EventKind::Terminated | EventKind::LaunchFailed => InstanceState::Terminated,
        }
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an event at (`state`, `time_ms`) moves a row currently at (`current`,
/// `current_ms`) forward: a further state, or the same state at a later time.
pub fn moves_forward(
    current: Option<(InstanceState, i64)>,
    state: InstanceState,
    time_ms: i64,
) -> bool {
    match current {
        None => true,
        Some((current, current_ms)) => {
            state.rank() > current.rank() || (state == current && time_ms > current_ms)
        }
    }
}

/// The attribute that records when an event of `kind` happened (one per kind, so recording
/// it is the same whatever order the events arrive in).
pub fn event_time_attribute(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Launching => "launching_ms",
        EventKind::Launched => "launched_ms",
        EventKind::LaunchFailed => "launch_failed_ms",
        EventKind::Terminating => "terminating_ms",
        EventKind::Terminated => "terminated_ms",
        EventKind::TerminateFailed => "terminate_failed_ms",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn states_only_move_forward() {
        assert!(moves_forward(None, InstanceState::Terminated, 0));
        assert!(moves_forward(
            Some((InstanceState::Launching, 10)),
            InstanceState::Running,
            5
        ));
        assert!(!moves_forward(
            Some((InstanceState::Terminated, 10)),
            InstanceState::Launching,
            50
        ));
        assert!(moves_forward(
            Some((InstanceState::Running, 10)),
            InstanceState::Running,
            11
        ));
        assert!(!moves_forward(
            Some((InstanceState::Running, 10)),
            InstanceState::Running,
            10
        ));
    }

    #[test]
    fn every_state_round_trips_through_its_name() {
        for state in InstanceState::ALL {
            assert_eq!(InstanceState::parse(state.as_str()), Some(state));
        }
        assert_eq!(InstanceState::parse("gone"), None);
    }

    fn event() -> impl Strategy<Value = (InstanceState, i64)> {
        (0usize..4, 0i64..5).prop_map(|(s, t)| (InstanceState::ALL[s], t))
    }

    proptest! {
        /// Folding events with `moves_forward` gives the same row for every order and any
        /// duplicates: the registry's conditional writes rely on this.
        #[test]
        fn any_order_with_duplicates_ends_in_the_same_state(
            events in proptest::collection::vec(event(), 1..12),
            seed in any::<u64>(),
        ) {
            let fold = |events: &[(InstanceState, i64)]| {
                events.iter().fold(None, |row, &(state, time)| {
                    if moves_forward(row, state, time) { Some((state, time)) } else { row }
                })
            };
            let expected = fold(&events);
            let mut shuffled: Vec<_> = events.iter().chain(events.iter()).copied().collect();
            // A deterministic shuffle from the seed.
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(fold(&shuffled), expected);
        }
    }
}
