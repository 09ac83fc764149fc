//! The beacon's decisions: when to rewrite the drop-in and when to restart salt-minion.
//!
//! Salt reads its master list only when salt-minion starts, so following the masters means
//! two things: keeping the drop-in right (cheap, done on every change) and restarting the
//! minion (disruptive, done only when the running minion needs it).
//!
//! A `failover` minion is connected to one master:
//! - its current master left the live list: restart now, within `restart_jitter`;
//! - it is connected to no master and its list is out of date: restart the same way;
//! - another live master is now first in its order (a master joined, or Salt failed over
//!   by itself and its first master is live again): restart within `restart_splay`, after
//!   at least `master_stale_after`, so that a master Salt just left because it died has
//!   time to drop out of the registry first;
//! - anything else (a master it does not use joined or left): rewrite the drop-in only; the
//!   running minion picks the new list up at its next restart.
//!
//! A `str` minion is connected to every master it loaded, so a master leaving costs it
//! nothing while another one it loaded is live:
//! - none of the masters it loaded is live: restart now, within `restart_jitter`;
//! - a live master is missing from what it loaded (a master joined; until the restart,
//!   `salt '*'` on that master does not reach this minion): restart within `restart_splay`;
//! - its first master is no longer first (it left, or the minion's own master is back):
//!   restart within `restart_splay`, since Salt runs a str minion's beacons and `salt-call`
//!   through its first master;
//! - anything else (a master that is not its first left): rewrite the drop-in only.
//!
//! A restart is announced one check before it is carried out, so the event that says why
//! reaches the master before the minion goes down. No minion restarts twice for the same
//! list, and restarts are at least `min_restart_interval` apart.

use serde::Serialize;

use super::ordered_addresses;
use super::refresher::Snapshot;
use super::spread::point_in;
use crate::config::PhoenixConfig;
use crate::dropin::{DropInChange, MasterType};
use crate::error::Result;

/// The timing knobs, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub restart_jitter_ms: u64,
    pub restart_splay_ms: u64,
    pub min_restart_interval_ms: i64,
    /// How long a master that stopped may still look live: `phoenix.master_stale_after`.
    pub master_stale_after_ms: i64,
}

impl Timing {
    pub fn from_config(config: &PhoenixConfig) -> Self {
        let ms = |seconds: f64| (seconds * 1000.0) as i64;
        Timing {
            restart_jitter_ms: ms(config.beacon.restart_jitter) as u64,
            restart_splay_ms: ms(config.beacon.restart_splay) as u64,
            min_restart_interval_ms: ms(config.beacon.min_restart_interval),
            master_stale_after_ms: config.master_stale_after_ms(),
        }
    }
}

/// What the running salt-minion uses, from its own options.
#[derive(Debug, Clone, Copy)]
pub struct Running<'a> {
    /// `failover`: the master it is connected to; `None` while it is connected to none.
    /// `str`: its first master.
    pub master: Option<&'a str>,
    /// The master list it loaded when it started (`str`: empty when that is not known).
    pub masters: &'a [String],
}

/// Why a restart is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartReason {
    /// The master the minion is connected to left the live list.
    CurrentMasterLeft,
    /// The minion is connected to no master and its list is out of date.
    NotConnected,
    /// Another live master is first in this minion's order.
    BetterMaster,
    /// A live master is missing from the list a `str` minion loaded: it joined since.
    MasterJoined,
    /// None of the masters a `str` minion loaded is live.
    EveryMasterLeft,
}

impl RestartReason {
    fn urgent(self) -> bool {
        !matches!(
            self,
            RestartReason::BetterMaster | RestartReason::MasterJoined
        )
    }
}

/// A restart to carry out now: run the restart command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestartOrder {
    pub reason: RestartReason,
    /// The list the drop-in carries, which the restarted minion will load.
    pub masters: Vec<String>,
}

/// What the beacon reports; `tag` is appended to the beacon's event tag
/// (`salt/beacon/<minion>/master_list/<tag>`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "tag", rename_all = "snake_case")]
pub enum FollowEvent {
    /// The drop-in was rewritten.
    Changed {
        /// The list it carried before (`None`: there was no drop-in).
        old: Option<Vec<String>>,
        new: Vec<String>,
        added: Vec<String>,
        removed: Vec<String>,
        /// Why the minion will restart, or `None` when the running minion needs no restart.
        restart: Option<RestartReason>,
        /// Seconds until that restart.
        restart_in: Option<f64>,
    },
    /// The minion restarts now (the command runs on the next check).
    Restart {
        reason: RestartReason,
        /// The master it was connected to.
        master: Option<String>,
        masters: Vec<String>,
    },
    /// Something stops the beacon from doing its job; reported once until it changes.
    Problem { error: String },
}

/// The result of one check.
#[derive(Debug, Default, PartialEq)]
pub struct CheckOutcome {
    pub events: Vec<FollowEvent>,
    pub restart: Option<RestartOrder>,
}

/// How long a restart may take before the beacon says it did not happen: systemd gives a
/// stopping unit 90 s (`TimeoutStopSec`) before it kills it, and a salt-minion connected
/// to a hung master can sit through much of that on SIGTERM.
const RESTART_TAKES_EFFECT_MS: i64 = 120_000;

#[derive(Debug, Clone)]
struct Pending {
    masters: Vec<String>,
    reason: RestartReason,
    due_ms: i64,
}

/// One minion's follower. Times are milliseconds on any monotonic clock the caller keeps.
#[derive(Debug)]
pub struct Follower {
    minion_id: String,
    own_master: Option<String>,
    master_type: MasterType,
    timing: Timing,
    /// The snapshot last looked at.
    seen_seq: Option<u64>,
    /// The list the drop-in carries, as last written or confirmed; restarts aim at it.
    desired: Option<Vec<String>>,
    pending: Option<Pending>,
    announced: Option<RestartOrder>,
    last_restart_ms: Option<i64>,
    /// The list of the last restart handed out: never restart twice for one list.
    restarted_for: Option<Vec<String>>,
    /// The problem last reported, so that one problem is one event, not one a second.
    problem: Option<String>,
    /// Whether "restarted, but still on the old list" was reported for `restarted_for`.
    stuck_reported: bool,
}

impl Follower {
    /// `own_master`: the instance id of the master this minion runs beside, if any; it is
    /// put first when live. `master_type`: what the drop-in makes the minion do with its list.
    pub fn new(
        minion_id: String,
        own_master: Option<String>,
        master_type: MasterType,
        timing: Timing,
    ) -> Self {
        Follower {
            minion_id,
            own_master,
            master_type,
            timing,
            seen_seq: None,
            desired: None,
            pending: None,
            announced: None,
            last_restart_ms: None,
            restarted_for: None,
            problem: None,
            stuck_reported: false,
        }
    }

    /// One beacon check. `write` makes the drop-in carry a list (normally
    /// [`crate::dropin::update`]); it is called only when a new snapshot arrived.
    pub fn check(
        &mut self,
        snapshot: Option<&Snapshot>,
        running: Running<'_>,
        now_ms: i64,
        write: &mut dyn FnMut(&[String]) -> Result<DropInChange>,
    ) -> CheckOutcome {
        let mut outcome = CheckOutcome::default();
        // Announced on the previous check: the event is on its way, carry it out now.
        if let Some(order) = self.announced.take() {
            outcome.restart = Some(order);
            return outcome;
        }
        let mut changed = None;
        if let Some(snapshot) = snapshot.filter(|s| Some(s.seq) != self.seen_seq) {
            self.seen_seq = Some(snapshot.seq);
            changed = self.observe(snapshot, write, &mut outcome.events);
        }
        self.plan(running, now_ms, &mut outcome.events);
        if let Some(FollowEvent::Changed {
            restart,
            restart_in,
            ..
        }) = changed.as_mut()
        {
            if let Some(pending) = &self.pending {
                *restart = Some(pending.reason);
                *restart_in = Some((pending.due_ms - now_ms).max(0) as f64 / 1000.0);
            }
        }
        if let Some(event) = changed {
            outcome.events.insert(0, event);
        }
        if let Some(event) = self.fire(running, now_ms) {
            outcome.events.push(event);
        }
        outcome
    }

    /// The restart command handed out by [`check`](Self::check) failed: the next attempt
    /// for the same list may come after `min_restart_interval`.
    pub fn restart_failed(&mut self, error: &str) -> FollowEvent {
        self.restarted_for = None;
        let error = format!("the restart command failed: {error}");
        log::error!("{error}");
        self.problem = Some(error.clone());
        FollowEvent::Problem { error }
    }

    /// Looks at a new snapshot: rewrites the drop-in when its list drifted.
    fn observe(
        &mut self,
        snapshot: &Snapshot,
        write: &mut dyn FnMut(&[String]) -> Result<DropInChange>,
        events: &mut Vec<FollowEvent>,
    ) -> Option<FollowEvent> {
        if snapshot.masters.is_empty() {
            self.report(
                events,
                "the registry lists no live master: keeping the current master list".to_owned(),
            );
            return None;
        }
        let order = ordered_addresses(
            &self.minion_id,
            &snapshot.masters,
            self.own_master.as_deref(),
        );
        match write(&order) {
            Ok(DropInChange::Unchanged { masters }) => {
                self.problem = None;
                self.desired = Some(masters);
                None
            }
            Ok(DropInChange::Written { old, new }) => {
                self.problem = None;
                self.desired = Some(new.clone());
                let before = old.clone().unwrap_or_default();
                Some(FollowEvent::Changed {
                    added: new
                        .iter()
                        .filter(|m| !before.contains(m))
                        .cloned()
                        .collect(),
                    removed: before
                        .iter()
                        .filter(|m| !new.contains(m))
                        .cloned()
                        .collect(),
                    old,
                    new,
                    restart: None,
                    restart_in: None,
                })
            }
            Err(err) => {
                // The list was not written, so nothing is restarted towards it.
                self.report(events, format!("the master list was not written: {err}"));
                None
            }
        }
    }

    /// Schedules, keeps or cancels the restart that the running minion needs.
    fn plan(&mut self, running: Running<'_>, now_ms: i64, events: &mut Vec<FollowEvent>) {
        let Some(desired) = &self.desired else {
            return;
        };
        let Some(reason) = restart_needed(self.master_type, desired, running) else {
            self.stuck_reported = false;
            if let Some(pending) = self.pending.take() {
                log::info!(
                    "{}: the restart for {:?} is no longer needed",
                    self.minion_id,
                    pending.masters
                );
            }
            return;
        };
        if self.restarted_for.as_ref() == Some(desired) {
            // Restarted for this list already, and the minion still runs the old one.
            self.pending = None;
            let asked_ms = self.last_restart_ms.unwrap_or(now_ms);
            if now_ms - asked_ms < RESTART_TAKES_EFFECT_MS {
                // The restart command returns at once (`systemctl --no-block`); the old
                // process runs on until it has stopped, which can take a while.
                return;
            }
            if std::mem::replace(&mut self.stuck_reported, true) {
                return;
            }
            let error = format!(
                "salt-minion was restarted to load {desired:?} but still uses {:?} \
                 (connected to {}): check phoenix.beacon.restart_command",
                running.masters,
                running.master.unwrap_or("no master"),
            );
            log::error!("{}: {error}", self.minion_id);
            events.push(FollowEvent::Problem { error });
            return;
        }
        let window = if reason.urgent() {
            self.timing.restart_jitter_ms
        } else {
            self.timing.restart_splay_ms
        };
        let parts: Vec<&str> = desired.iter().map(String::as_str).collect();
        let mut due_ms = now_ms + point_in(window, &self.minion_id, "restart", &parts) as i64;
        if !reason.urgent() {
            due_ms += self.timing.master_stale_after_ms;
        }
        if let Some(last) = self.last_restart_ms {
            due_ms = due_ms.max(last + self.timing.min_restart_interval_ms);
        }
        match &mut self.pending {
            Some(pending) if pending.masters == *desired => {
                // Keep the point already chosen; a more urgent reason only brings it forward.
                if reason.urgent() && !pending.reason.urgent() {
                    pending.reason = reason;
                    pending.due_ms = pending.due_ms.min(due_ms);
                }
            }
            _ => {
                self.pending = Some(Pending {
                    masters: desired.clone(),
                    reason,
                    due_ms,
                });
            }
        }
    }

    /// Announces the pending restart once it is due.
    fn fire(&mut self, running: Running<'_>, now_ms: i64) -> Option<FollowEvent> {
        if self.pending.as_ref()?.due_ms > now_ms {
            return None;
        }
        let pending = self.pending.take()?;
        log::warn!(
            "{}: restarting salt-minion ({:?}): connected to {}, master list {:?} -> {:?}",
            self.minion_id,
            pending.reason,
            running.master.unwrap_or("no master"),
            running.masters,
            pending.masters
        );
        self.last_restart_ms = Some(now_ms);
        self.restarted_for = Some(pending.masters.clone());
        self.stuck_reported = false;
        self.announced = Some(RestartOrder {
            reason: pending.reason,
            masters: pending.masters.clone(),
        });
        Some(FollowEvent::Restart {
            reason: pending.reason,
            master: running.master.map(str::to_owned),
            masters: pending.masters,
        })
    }

    fn report(&mut self, events: &mut Vec<FollowEvent>, error: String) {
        if self.problem.as_ref() == Some(&error) {
            return;
        }
        log::warn!("{}: {error}", self.minion_id);
        self.problem = Some(error.clone());
        events.push(FollowEvent::Problem { error });
    }
}

/// Why the running minion must restart to follow `desired`, if it must.
pub(super) fn restart_needed(
    master_type: MasterType,
    desired: &[String],
    running: Running<'_>,
) -> Option<RestartReason> {
    let first = desired.first()?;
    if master_type == MasterType::Str {
        let loaded = running.masters;
        return if !loaded.iter().any(|m| desired.contains(m)) {
            Some(RestartReason::EveryMasterLeft)
        } else if desired.iter().any(|m| !loaded.contains(m)) {
            Some(RestartReason::MasterJoined)
        } else if loaded.first() != Some(first) {
            Some(RestartReason::BetterMaster)
        } else {
            None
        };
    }
    match running.master {
        Some(current) if !desired.iter().any(|m| m == current) => {
            Some(RestartReason::CurrentMasterLeft)
        }
        Some(current) if current != first => Some(RestartReason::BetterMaster),
        Some(_) => None,
        None if running.masters != desired => Some(RestartReason::NotConnected),
        None => None,
    }
}
