//! Minion keys pinned in the registry: the public key an instance was first accepted with,
//! recorded once by whichever master accepted it first, and pre-seeded by every other master.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use super::instances::{
    get, is_condition_failed, not_past_running, table_for, InstanceRecord, NOT_PAST_RUNNING,
};
use super::{CLUSTER_KEY, INSTANCE_KEY};
use crate::aws::{AwsClients, AwsResultExt};
use crate::config::PhoenixConfig;
use crate::error::Result;
use crate::keys::{PinnedKey, RegistryMinion};
use crate::lifecycle::Role;

/// The row attribute holding the pin (`key` is a DynamoDB reserved word).
pub const KEY_ATTRIBUTE: &str = "minion_key";

/// A pinned key as stored in an instance's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyPin {
    /// Salt's fingerprint of the key.
    pub fingerprint: String,
    /// The PEM public key (left out of status output: the fingerprint identifies it).
    #[serde(skip)]
    pub public_key: String,
    /// When it was pinned (epoch milliseconds).
    pub pinned_ms: i64,
    /// The master that pinned it.
    pub pinned_by: String,
}

impl KeyPin {
    pub(crate) fn from_attribute(value: &AttributeValue) -> Option<Self> {
        let map = value.as_m().ok()?;
        let text = |name: &str| map.get(name).and_then(|v| v.as_s().ok()).cloned();
        Some(Self {
            fingerprint: text("fingerprint")?,
            public_key: text("public_key")?,
            pinned_ms: map
                .get("pinned_ms")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or_default(),
            pinned_by: text("pinned_by").unwrap_or_default(),
        })
    }
}

/// What a pin attempt found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PinOutcome {
    /// This call recorded the pin.
    Pinned,
    /// The same key was already pinned (by this or another master).
    AlreadyPinned,
    /// Another key is pinned for this id: the key at hand must not be accepted.
    PinnedOther { fingerprint: String },
    /// The registry does not hold the instance, or no longer as live.
    NotLive,
}

/// Pins `public_key` (with `fingerprint`) for a live instance that has no pin yet. One
/// conditional write; when it is refused, one consistent read says why.
#[allow(clippy::too_many_arguments)]
pub async fn pin_key(
    clients: &AwsClients,
    config: &PhoenixConfig,
    role: Role,
    instance_id: &str,
    fingerprint: &str,
    public_key: &str,
    pinned_by: &str,
    now_ms: i64,
) -> Result<PinOutcome> {
    let pin = AttributeValue::M(HashMap::from([
        (
            "fingerprint".to_owned(),
            AttributeValue::S(fingerprint.into()),
        ),
        (
            "public_key".to_owned(),
            AttributeValue::S(public_key.into()),
        ),
        (
            "pinned_ms".to_owned(),
            AttributeValue::N(now_ms.to_string()),
        ),
        ("pinned_by".to_owned(), AttributeValue::S(pinned_by.into())),
    ]));
    let running = not_past_running();
    let result = clients
        .dynamodb
        .update_item()
        .table_name(table_for(config, role))
        .key(CLUSTER_KEY, AttributeValue::S(config.cluster.clone()))
        .key(INSTANCE_KEY, AttributeValue::S(instance_id.into()))
        .update_expression(format!("SET {KEY_ATTRIBUTE} = :pin"))
        .condition_expression(format!(
            "attribute_exists({INSTANCE_KEY}) AND attribute_not_exists({KEY_ATTRIBUTE}) \
             AND {NOT_PAST_RUNNING}"
        ))
        .expression_attribute_values(":pin", pin)
        .expression_attribute_values(running.0, running.1)
        .send()
        .await
        .aws_context("dynamodb", "UpdateItem");
    match result {
        Ok(_) => return Ok(PinOutcome::Pinned),
        Err(err) if is_condition_failed(&err) => {}
        Err(err) => return Err(err),
    }
    let record = get(clients, config, role, instance_id).await?;
    Ok(match record {
        Some(InstanceRecord { key: Some(pin), .. }) if pin.fingerprint == fingerprint => {
            PinOutcome::AlreadyPinned
        }
        Some(InstanceRecord { key: Some(pin), .. }) => PinOutcome::PinnedOther {
            fingerprint: pin.fingerprint,
        },
        _ => PinOutcome::NotLive,
    })
}

/// A registry row as the key plan sees it.
pub fn registry_minion(record: &InstanceRecord) -> RegistryMinion {
    RegistryMinion {
        id: record.instance_id.clone(),
        state: record.state,
        pinned: record.key.as_ref().map(|pin| PinnedKey {
            fingerprint: pin.fingerprint.clone(),
            public_key: pin.public_key.clone(),
        }),
    }
}
