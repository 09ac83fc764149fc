//! A master that stops serving is replaced by AutoScaling, on the live masters' word.
//!
//! The masters' group's own EC2 health check sees a healthy instance when salt-master hangs,
//! deadlocks, fills its disk or loses its path to DynamoDB. Every live master's engine
//! therefore judges its peers at each heartbeat ([`judge`]): a running master whose heartbeat
//! stood still for `replacement.replace_after` is reported with
//! `SetInstanceHealth(Unhealthy)`, and AutoScaling terminates it (through the terminating
//! lifecycle hook, so it drains) and launches a replacement, which boots through
//! `phoenix master-bootstrap`. One engine reports each master, once: it first writes a claim
//! into the silent master's row ([`crate::registry::claim_replacement`]), which DynamoDB
//! grants to one claimer only, and only while the claimer's own heartbeat is fresh.
//! docs/masters.md explains the judgement and its guards.

mod judge;
pub mod settings;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub use judge::{judge, Hold, Observer, Verdict};
pub use settings::ReplacementSettings;

use crate::aws::{AwsClients, AwsResultExt};
use crate::config::PhoenixConfig;
use crate::error::Result;
use crate::events::{self, BusEvent};
use crate::registry::{self, ClaimRequest, MasterHeartbeat, ReplacementClaim};

/// A report AutoScaling refused is tried again after this long, doubling up to
/// [`RETRY_MAX_MS`].
const RETRY_FIRST_MS: i64 = 30_000;
const RETRY_MAX_MS: i64 = 600_000;

/// What one master's engine keeps between heartbeats for judging its peers.
#[derive(Debug)]
pub struct Judge {
    origin: Instant,
    state: Mutex<JudgeState>,
}

#[derive(Debug, Default)]
struct JudgeState {
    observer: Observer,
    /// Per reported master: failed calls so far, and when to try again (monotonic ms).
    retries: HashMap<String, (u32, i64)>,
    /// What was last said of each held master, so a hold is logged when it changes only.
    said: HashMap<String, Hold>,
}

impl Default for Judge {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            state: Mutex::new(JudgeState::default()),
        }
    }
}

impl Judge {
    fn mono_ms(&self) -> i64 {
        i64::try_from(self.origin.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Judges the master rows just read (this master `me` having just recorded its
    /// heartbeat) and carries the verdicts out. Returns the events to fire. A failure is
    /// logged and tried again at a later heartbeat; it never fails the heartbeat.
    pub async fn judge_peers(
        &self,
        clients: &AwsClients,
        config: &PhoenixConfig,
        me: &str,
        rows: &[MasterHeartbeat],
        now_ms: i64,
    ) -> Vec<BusEvent> {
        let mono_ms = self.mono_ms();
        let verdicts = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.observer.observe(rows, mono_ms);
            let verdicts = judge(
                me,
                rows,
                &state.observer,
                now_ms,
                mono_ms,
                config.master_stale_after_ms(),
                &config.replacement,
            );
            let held: HashMap<String, Hold> = verdicts
                .iter()
                .filter_map(|v| match v {
                    Verdict::Hold { instance_id, why } => Some((instance_id.clone(), why.clone())),
                    _ => None,
                })
                .collect();
            for (id, why) in &held {
                let changed = state.said.get(id).is_none_or(|before| {
                    std::mem::discriminant(before) != std::mem::discriminant(why)
                });
                if changed && !matches!(why, Hold::NotYet { .. }) {
                    log::info!(
                        "master {id} is silent but not reported to AutoScaling: {}",
                        describe(why)
                    );
                }
            }
            state.said = held;
            verdicts
        };
        let mut events = Vec::new();
        for verdict in verdicts {
            let outcome = match &verdict {
                Verdict::Hold { .. } => continue,
                Verdict::ReportAgain { instance_id } => {
                    if !self.retry_due(instance_id, mono_ms) {
                        continue;
                    }
                    self.report(clients, config, me, instance_id, None, now_ms)
                        .await
                }
                Verdict::Report {
                    instance_id,
                    silent_for_ms,
                    heartbeat_ms,
                }
                | Verdict::TakeOver {
                    instance_id,
                    silent_for_ms,
                    heartbeat_ms,
                    ..
                } => {
                    let from = match &verdict {
                        Verdict::TakeOver { from, .. } => Some(from.as_str()),
                        _ => None,
                    };
                    let claim = ClaimRequest {
                        target: instance_id,
                        target_heartbeat_ms: *heartbeat_ms,
                        claim: ReplacementClaim {
                            by: me.to_owned(),
                            at_ms: now_ms,
                            silent_for_ms: *silent_for_ms,
                            reported_ms: None,
                        },
                        takes_over_from: from,
                        claimer_fresh_since_ms: now_ms - config.master_stale_after_ms(),
                        unclaimed: rows
                            .iter()
                            .filter(|row| {
                                row.replacement.is_none()
                                    && row.instance_id != *instance_id
                                    && row.instance_id != me
                                    && row
                                        .state
                                        .is_some_and(|s| s <= registry::InstanceState::Running)
                            })
                            .map(|row| row.instance_id.as_str())
                            .collect(),
                    };
                    match registry::claim_replacement(clients, config, &claim).await {
                        Ok(true) => {
                            log::warn!(
                                "master {instance_id}: no heartbeat for {} s (replacement.\
                                 replace_after is {} s){}: reporting it to AutoScaling as \
                                 Unhealthy so that it is replaced",
                                silent_for_ms / 1000,
                                config.replacement.replace_after,
                                from.map(|f| format!(
                                    ", taking over the claim of {f}, which never reported it"
                                ))
                                .unwrap_or_default(),
                            );
                            self.report(
                                clients,
                                config,
                                me,
                                instance_id,
                                Some(*silent_for_ms),
                                now_ms,
                            )
                            .await
                        }
                        Ok(false) => {
                            log::info!(
                                "master {instance_id}: not reported by this master: it beat \
                                 again, another master claimed it or another one first, or \
                                 this master's own heartbeat is not fresh in the registry"
                            );
                            Ok(None)
                        }
                        Err(err) => Err(err),
                    }
                }
            };
            match outcome {
                Ok(Some(event)) => events.push(event),
                Ok(None) => {}
                Err(err) => {
                    let wait_ms = self.failed(verdict.instance_id(), mono_ms);
                    log::warn!(
                        "master {}: reporting it to AutoScaling failed, tried again in {} s: {err}",
                        verdict.instance_id(),
                        wait_ms / 1000
                    );
                }
            }
        }
        events
    }

    /// `SetInstanceHealth(Unhealthy)` for a master this engine holds the claim of, then the
    /// claim marked reported and the event.
    async fn report(
        &self,
        clients: &AwsClients,
        config: &PhoenixConfig,
        me: &str,
        instance_id: &str,
        silent_for_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<Option<BusEvent>> {
        set_unhealthy(clients, instance_id).await?;
        registry::mark_reported(clients, config, instance_id, me, now_ms).await?;
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retries
            .remove(instance_id);
        log::warn!(
            "master {instance_id} reported to AutoScaling as Unhealthy: it will be terminated \
             (its terminating hook lets it drain) and replaced"
        );
        Ok(Some(events::master_unhealthy(
            instance_id,
            me,
            silent_for_ms,
            config.replacement.replace_after,
        )))
    }

    fn retry_due(&self, instance_id: &str, mono_ms: i64) -> bool {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .retries
            .get(instance_id)
            .is_none_or(|(_, at)| mono_ms >= *at)
    }

    /// Records a failed report; returns how long until the next try.
    fn failed(&self, instance_id: &str, mono_ms: i64) -> i64 {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let failures = state.retries.get(instance_id).map_or(0, |(n, _)| *n) + 1;
        let wait_ms = (RETRY_FIRST_MS << (failures - 1).min(10)).min(RETRY_MAX_MS);
        state
            .retries
            .insert(instance_id.to_owned(), (failures, mono_ms + wait_ms));
        wait_ms
    }
}

fn describe(why: &Hold) -> String {
    match why {
        Hold::NotYet { silent_for_ms } => format!("silent for {} s only", silent_for_ms / 1000),
        Hold::InLaunchGrace { launched_ms_ago } => format!(
            "launched {} s ago, within replacement.launch_grace",
            launched_ms_ago / 1000
        ),
        Hold::Claimed { by } => format!("master {by} is reporting it"),
        Hold::InFlightLimit { in_flight } => format!(
            "{in_flight} master(s) already reported and not yet replaced \
             (replacement.max_in_flight)"
        ),
    }
}

/// Tells AutoScaling the instance is unhealthy. The grace period is respected, as a health
/// check's own verdict would be.
async fn set_unhealthy(clients: &AwsClients, instance_id: &str) -> Result<()> {
    clients
        .autoscaling
        .set_instance_health()
        .instance_id(instance_id)
        .health_status("Unhealthy")
        .should_respect_grace_period(true)
        .send()
        .await
        .aws_context("autoscaling", "SetInstanceHealth")?;
    Ok(())
}
