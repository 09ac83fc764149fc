//! Which peers a live master reports to AutoScaling: a pure function of the master rows,
//! what this master has seen of their heartbeats, and the settings.
//!
//! Staleness here does not rest on two hosts' clocks agreeing. A peer is silent for as long
//! as *this* master has watched its `heartbeat_ms` value stand still, on this master's own
//! monotonic clock ([`Observer`]); the wall-clock rule of the live list (`is_live`) must say
//! stale too. A master that just started has watched nobody for long, so it reports nobody
//! for `replace_after`: its own start is a grace period.

use std::collections::HashMap;

use serde::Serialize;

use super::settings::ReplacementSettings;
use crate::registry::{InstanceState, MasterHeartbeat};

/// What this master has seen of each master's heartbeat, on its own monotonic clock (ms).
#[derive(Debug, Default, Clone)]
pub struct Observer {
    seen: HashMap<String, Seen>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    beat: Option<i64>,
    since_ms: i64,
}

impl Observer {
    /// Takes in one read of every master row at monotonic time `mono_ms`: a heartbeat value
    /// not seen before starts that master's silence anew; rows gone are forgotten.
    pub fn observe(&mut self, rows: &[MasterHeartbeat], mono_ms: i64) {
        self.seen
            .retain(|id, _| rows.iter().any(|row| &row.instance_id == id));
        for row in rows {
            let unchanged = self
                .seen
                .get(&row.instance_id)
                .is_some_and(|seen| seen.beat == row.heartbeat_ms);
            if !unchanged {
                self.seen.insert(
                    row.instance_id.clone(),
                    Seen {
                        beat: row.heartbeat_ms,
                        since_ms: mono_ms,
                    },
                );
            }
        }
    }

    /// How long `instance_id`'s heartbeat has stood still as this master watched it (0 for a
    /// master not observed yet).
    pub fn silent_for_ms(&self, instance_id: &str, mono_ms: i64) -> i64 {
        self.seen
            .get(instance_id)
            .map_or(0, |seen| mono_ms.saturating_sub(seen.since_ms).max(0))
    }
}

/// What the judge says of one master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Claim it and report it to AutoScaling.
    Report {
        instance_id: String,
        silent_for_ms: i64,
        heartbeat_ms: Option<i64>,
    },
    /// This master claimed it but the report did not go through: make the call again.
    ReportAgain { instance_id: String },
    /// Another master claimed it `replace_after` ago and never reported it (that master is
    /// most likely gone too): take the claim over and report it.
    TakeOver {
        instance_id: String,
        from: String,
        silent_for_ms: i64,
        heartbeat_ms: Option<i64>,
    },
    /// Silent, but not reported (yet), and why.
    Hold { instance_id: String, why: Hold },
}

impl Verdict {
    pub fn instance_id(&self) -> &str {
        match self {
            Self::Report { instance_id, .. }
            | Self::ReportAgain { instance_id }
            | Self::TakeOver { instance_id, .. }
            | Self::Hold { instance_id, .. } => instance_id,
        }
    }
}

/// Why a silent master is not reported now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Hold {
    /// Silent for less than `replace_after` as this master watched it.
    NotYet { silent_for_ms: i64 },
    /// Launched less than `launch_grace` ago.
    InLaunchGrace { launched_ms_ago: i64 },
    /// Another master claimed it and is reporting it.
    Claimed { by: String },
    /// `max_in_flight` masters are reported and not yet gone.
    InFlightLimit { in_flight: u32 },
}

/// Every silent peer of `me` and what to do about it. Nothing at all unless `me` is live
/// itself by the same rule every reader applies (running, with a fresh heartbeat), so a
/// master that cannot reach the registry, or whose own heartbeat stopped, judges nobody.
///
/// Never reported: `me`; a master that is not `running` (a launching one is AutoScaling's
/// launch hook's business, a terminating one is leaving); a master live by the registry's
/// rule (so the last live master never is); one silent for less than `replace_after` on
/// this master's clock; one launched less than `launch_grace` ago; one already claimed;
/// more than `max_in_flight` at once, counting claimed masters not yet terminated. The
/// longest silent go first.
pub fn judge(
    me: &str,
    rows: &[MasterHeartbeat],
    observer: &Observer,
    now_ms: i64,
    mono_ms: i64,
    stale_after_ms: i64,
    settings: &ReplacementSettings,
) -> Vec<Verdict> {
    if !settings.enabled
        || !rows
            .iter()
            .any(|row| row.instance_id == me && row.is_live(now_ms, stale_after_ms))
    {
        return Vec::new();
    }
    let mut in_flight = rows
        .iter()
        .filter(|row| row.replacement.is_some() && row.state != Some(InstanceState::Terminated))
        .count() as u32;
    let mut verdicts = Vec::new();
    let mut due: Vec<(&MasterHeartbeat, i64)> = Vec::new();
    for row in rows {
        if row.instance_id == me
            || row.state != Some(InstanceState::Running)
            || row.is_live(now_ms, stale_after_ms)
        {
            continue;
        }
        let id = row.instance_id.clone();
        let silent_for_ms = observer.silent_for_ms(&row.instance_id, mono_ms);
        if let Some(claim) = &row.replacement {
            if claim.reported_ms.is_some() {
                continue; // reported: AutoScaling acts on it
            }
            if claim.by == me {
                verdicts.push(Verdict::ReportAgain { instance_id: id });
            } else if now_ms.saturating_sub(claim.at_ms) >= settings.replace_after_ms()
                && silent_for_ms >= settings.replace_after_ms()
            {
                verdicts.push(Verdict::TakeOver {
                    instance_id: id,
                    from: claim.by.clone(),
                    silent_for_ms,
                    heartbeat_ms: row.heartbeat_ms,
                });
            } else {
                verdicts.push(Verdict::Hold {
                    instance_id: id,
                    why: Hold::Claimed {
                        by: claim.by.clone(),
                    },
                });
            }
            continue;
        }
        if silent_for_ms < settings.replace_after_ms() {
            verdicts.push(Verdict::Hold {
                instance_id: id,
                why: Hold::NotYet { silent_for_ms },
            });
            continue;
        }
        if let Some(launched) = row.launch_ms {
            let ago = now_ms.saturating_sub(launched);
            if ago < settings.launch_grace_ms() {
                verdicts.push(Verdict::Hold {
                    instance_id: id,
                    why: Hold::InLaunchGrace {
                        launched_ms_ago: ago,
                    },
                });
                continue;
            }
        }
        due.push((row, silent_for_ms));
    }
    due.sort_by(|(a, a_silent), (b, b_silent)| {
        b_silent
            .cmp(a_silent)
            .then_with(|| a.instance_id.cmp(&b.instance_id))
    });
    for (row, silent_for_ms) in due {
        if in_flight >= settings.max_in_flight {
            verdicts.push(Verdict::Hold {
                instance_id: row.instance_id.clone(),
                why: Hold::InFlightLimit { in_flight },
            });
            continue;
        }
        in_flight += 1;
        verdicts.push(Verdict::Report {
            instance_id: row.instance_id.clone(),
            silent_for_ms,
            heartbeat_ms: row.heartbeat_ms,
        });
    }
    verdicts
}
