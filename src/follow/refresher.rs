//! The beacon's background refresher: reads the live masters every
//! `phoenix.beacon.refresh_interval` and leaves the result in a [`SnapshotSlot`], where the
//! beacon finds it without waiting.
//!
//! A read is one projected Query of the masters table (paginated, which 20 masters never
//! need). Only a read that completed, every page of it, makes a snapshot; a failed read
//! leaves the previous snapshot in place, so the follower never acts on it.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::Serialize;

use super::spread::point_in;
use crate::aws::AwsClients;
use crate::clock::now_ms;
use crate::config::PhoenixConfig;
use crate::error::Error;
use crate::registry::{self, LiveMaster};

/// One complete read of the live masters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// Counts the snapshots of one slot: a new number is a new read.
    pub seq: u64,
    /// Live masters, sorted by instance id.
    pub masters: Vec<LiveMaster>,
    /// Wall-clock time of the read, in milliseconds since the epoch.
    pub read_at_ms: i64,
}

/// How the refresher is doing, for status output and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RefreshHealth {
    pub reads: u64,
    pub failures: u64,
    /// Failed reads since the last good one.
    pub failing_for: u64,
    pub last_error: Option<String>,
}

/// Where the refresher leaves its snapshots.
#[derive(Debug, Default)]
pub struct SnapshotSlot {
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    latest: Option<Arc<Snapshot>>,
    health: RefreshHealth,
}

/// A read that has not completed after this long is abandoned and counts as failed. The
/// SDK's own timeouts (`phoenix.aws`) allow 90 s, sized for the engine's long polls; a
/// minion that waited that long on a registry that stopped answering would also be that
/// late to notice a master leaving, once it answers again.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A failure is logged when it starts, when its message changes, and then every this many
/// reads, so a registry that is down for an hour is a few log lines, not hundreds.
const LOG_EVERY_FAILURES: u64 = 30;

impl SnapshotSlot {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        // The state is replaced whole under the lock, so a poisoned lock holds a whole value.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The latest snapshot, if a read ever completed.
    pub fn latest(&self) -> Option<Arc<Snapshot>> {
        self.lock().latest.clone()
    }

    pub fn health(&self) -> RefreshHealth {
        self.lock().health.clone()
    }

    /// Records a complete read.
    pub fn publish(&self, masters: Vec<LiveMaster>, read_at_ms: i64) {
        let mut state = self.lock();
        let health = &mut state.health;
        if health.failing_for > 0 {
            log::info!(
                "the registry answers again after {} failed reads of the live masters",
                health.failing_for
            );
        }
        health.reads += 1;
        health.failing_for = 0;
        state.latest = Some(Arc::new(Snapshot {
            seq: health.reads,
            masters,
            read_at_ms,
        }));
    }

    /// Records a failed read; the previous snapshot stays.
    pub fn fail(&self, error: &Error) {
        let mut state = self.lock();
        let health = &mut state.health;
        let message = error.to_string();
        health.failures += 1;
        health.failing_for += 1;
        let new_message = health.last_error.as_ref() != Some(&message);
        if health.failing_for == 1
            || new_message
            || health.failing_for.is_multiple_of(LOG_EVERY_FAILURES)
        {
            log::warn!(
                "reading the live masters failed ({} in a row); keeping the master list as it \
                 is: {message}",
                health.failing_for
            );
        }
        health.last_error = Some(message);
    }
}

/// The refresher: reads now, then every `refresh_interval` give or take 10% (each minion
/// its own point, so a fleet does not read in step), until the slot is dropped.
pub async fn run(slot: Weak<SnapshotSlot>, config: PhoenixConfig, minion_id: String) {
    let interval_ms = config.beacon.refresh_interval().as_millis() as u64;
    let mut clients: Option<AwsClients> = None;
    let mut round: u64 = 0;
    loop {
        let Some(live_slot) = slot.upgrade() else {
            log::debug!("{minion_id}: master list refresher stopped");
            return;
        };
        if clients.is_none() {
            match AwsClients::load(&config).await {
                Ok(loaded) => clients = Some(loaded),
                Err(err) => live_slot.fail(&err),
            }
        }
        if let Some(clients) = &clients {
            let read = registry::read_live_masters(clients, &config);
            match tokio::time::timeout(READ_TIMEOUT, read).await {
                Ok(Ok(masters)) => live_slot.publish(masters, now_ms()),
                Ok(Err(err)) => live_slot.fail(&err),
                Err(_) => live_slot.fail(&Error::Aws {
                    service: "dynamodb",
                    operation: "Query",
                    code: None,
                    retryable: true,
                    message: format!("no answer within {} s", READ_TIMEOUT.as_secs()),
                }),
            }
        }
        drop(live_slot);
        round += 1;
        let spread = point_in(
            interval_ms / 5,
            &minion_id,
            "refresh",
            &[&round.to_string()],
        );
        let pause = interval_ms - interval_ms / 10 + spread;
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}
