//! The live master list: what minions follow and what `phoenix/masters/changed` carries.
//!
//! A master is live while it is `running` and its heartbeat is fresh (docs/architecture.md,
//! invariant 6). Reading the list is one Query of a few small attributes, so a fleet of
//! minions can afford it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use super::instances::{RetireHook, RETIRE_HOOK};
use super::replacement::{ReplacementClaim, REPLACEMENT};
use super::state::InstanceState;
use super::{CLUSTER_KEY, EXPIRES_AT, INSTANCE_KEY};
use crate::aws::{AwsClients, AwsResultExt};
use crate::config::PhoenixConfig;
use crate::error::Result;

/// One master as the live list shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct LiveMaster {
    pub instance_id: String,
    pub address: String,
}

/// Every master row in a form cheap to read: the live list is derived from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MasterHeartbeat {
    pub instance_id: String,
    pub address: Option<String>,
    pub state: Option<InstanceState>,
    pub heartbeat_ms: Option<i64>,
    pub expires_at: Option<i64>,
    /// A terminating master's lifecycle action, waiting for the master to drain.
    pub retiring: Option<RetireHook>,
    /// When it launched (its launch hook's time, else its registration as running).
    pub launch_ms: Option<i64>,
    /// A live master took on reporting it to AutoScaling as Unhealthy.
    pub replacement: Option<ReplacementClaim>,
}

impl MasterHeartbeat {
    /// Live: running, with an address, a heartbeat no older than `stale_after_ms`, and not
    /// expired.
    pub fn is_live(&self, now_ms: i64, stale_after_ms: i64) -> bool {
        self.state == Some(InstanceState::Running)
            && self.address.is_some()
            && self
                .heartbeat_ms
                .is_some_and(|beat| now_ms.saturating_sub(beat) <= stale_after_ms)
            && self
                .expires_at
                .is_none_or(|at| at.saturating_mul(1000) > now_ms)
    }
}

/// The live masters, sorted by instance id. A master whose heartbeat is older than
/// `phoenix.master_stale_after` is left out.
pub fn live_masters(rows: &[MasterHeartbeat], now_ms: i64, stale_after_ms: i64) -> Vec<LiveMaster> {
    let mut live: Vec<LiveMaster> = rows
        .iter()
        .filter(|row| row.is_live(now_ms, stale_after_ms))
        .filter_map(|row| {
            Some(LiveMaster {
                instance_id: row.instance_id.clone(),
                address: row.address.clone()?,
            })
        })
        .collect();
    live.sort();
    live
}

/// The live masters now, at this host's clock: every master row, then the live ones.
pub async fn read_live_masters(
    clients: &AwsClients,
    config: &PhoenixConfig,
) -> Result<Vec<LiveMaster>> {
    let rows = read_master_heartbeats(clients, config).await?;
    Ok(live_masters(
        &rows,
        crate::clock::now_ms(),
        config.master_stale_after_ms(),
    ))
}

/// Reads every master row of the cluster with one Query (paginated past 1 MB, which 20
/// masters never reach), projecting only what the live list needs.
pub async fn read_master_heartbeats(
    clients: &AwsClients,
    config: &PhoenixConfig,
) -> Result<Vec<MasterHeartbeat>> {
    let mut rows = Vec::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let page = clients
            .dynamodb
            .query()
            .table_name(&config.masters_table)
            .key_condition_expression("#cluster = :cluster")
            // The retire hook and the replacement claim are there only while a master leaves:
            // minions read no more.
            .projection_expression(
                "#id, #address, #state, #beat, #expires, #retire, #launching, #launched, #claim",
            )
            .expression_attribute_names("#cluster", CLUSTER_KEY)
            .expression_attribute_names("#id", INSTANCE_KEY)
            .expression_attribute_names("#address", "address")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#beat", "heartbeat_ms")
            .expression_attribute_names("#expires", EXPIRES_AT)
            .expression_attribute_names("#retire", RETIRE_HOOK)
            .expression_attribute_names("#launching", "launching_ms")
            .expression_attribute_names("#launched", "launched_ms")
            .expression_attribute_names("#claim", REPLACEMENT)
            .expression_attribute_values(":cluster", AttributeValue::S(config.cluster.clone()))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .aws_context("dynamodb", "Query")?;
        for item in page.items.unwrap_or_default() {
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
            let number = |name: &str| {
                item.get(name)
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<i64>().ok())
            };
            let Some(instance_id) = text(INSTANCE_KEY) else {
                continue;
            };
            rows.push(MasterHeartbeat {
                instance_id,
                address: text("address"),
                state: text("state").as_deref().and_then(InstanceState::parse),
                heartbeat_ms: number("heartbeat_ms"),
                expires_at: number(EXPIRES_AT),
                retiring: item.get(RETIRE_HOOK).and_then(RetireHook::from_attribute),
                launch_ms: number("launching_ms").or_else(|| number("launched_ms")),
                replacement: item
                    .get(REPLACEMENT)
                    .and_then(ReplacementClaim::from_attribute),
            });
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => break,
        }
    }
    Ok(rows)
}

#[cfg(test)]
impl MasterHeartbeat {
    /// A row for tests: `id` in `state` with heartbeat `beat`, at an address made from it.
    pub(crate) fn sample(id: &str, state: InstanceState, beat: Option<i64>) -> Self {
        Self {
            instance_id: id.to_owned(),
            address: Some(format!("10.0.0.{}", id.len())),
            state: Some(state),
            heartbeat_ms: beat,
            expires_at: None,
            retiring: None,
            launch_ms: None,
            replacement: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, state: InstanceState, beat: Option<i64>) -> MasterHeartbeat {
        MasterHeartbeat::sample(id, state, beat)
    }

    #[test]
    fn only_running_masters_with_fresh_heartbeats_are_live() {
        let rows = vec![
            row("i-b", InstanceState::Running, Some(9_000)),
            row("i-a", InstanceState::Running, Some(10_000)),
            row("i-stale", InstanceState::Running, Some(1_000)),
            row("i-launching", InstanceState::Launching, Some(10_000)),
            row("i-retiring", InstanceState::Terminating, Some(10_000)),
            row("i-silent", InstanceState::Running, None),
        ];
        let live = live_masters(&rows, 10_000, 5_000);
        let ids: Vec<&str> = live.iter().map(|m| m.instance_id.as_str()).collect();
        assert_eq!(ids, ["i-a", "i-b"]);
    }

    #[test]
    fn a_master_without_an_address_is_not_live() {
        let mut master = row("i-a", InstanceState::Running, Some(10_000));
        master.address = None;
        assert!(live_masters(&[master], 10_000, 5_000).is_empty());
    }
}
