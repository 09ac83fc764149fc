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
/// The row attribute listing the masters that hold the pinned key as accepted (a string
/// set): a booting minion waits until it covers every live master, so that no master ever
/// holds its key as pending.
pub const SEEDED_ATTRIBUTE: &str = "seeded_on";

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

/// Records that `master` holds `instance_id`'s pinned key as accepted. Conditional on the
/// row still pinning `fingerprint`; returns false (nothing recorded) when it does not.
pub async fn record_seeded(
    clients: &AwsClients,
    config: &PhoenixConfig,
    role: Role,
    instance_id: &str,
    fingerprint: &str,
    master: &str,
) -> Result<bool> {
    let result = clients
        .dynamodb
        .update_item()
        .table_name(table_for(config, role))
        .key(CLUSTER_KEY, AttributeValue::S(config.cluster.clone()))
        .key(INSTANCE_KEY, AttributeValue::S(instance_id.into()))
        .update_expression(format!("ADD {SEEDED_ATTRIBUTE} :master"))
        .condition_expression(format!("{KEY_ATTRIBUTE}.fingerprint = :fingerprint"))
        .expression_attribute_values(":master", AttributeValue::Ss(vec![master.into()]))
        .expression_attribute_values(":fingerprint", AttributeValue::S(fingerprint.into()))
        .send()
        .await
        .aws_context("dynamodb", "UpdateItem");
    match result {
        Ok(_) => Ok(true),
        Err(err) if is_condition_failed(&err) => Ok(false),
        Err(err) => Err(err),
    }
}

/// How far an instance's enrolment got, as the instance itself may read it: the pinned
/// fingerprint and the masters that hold it as accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Enrolment {
    pub pinned: Option<String>,
    pub seeded_on: Vec<String>,
}

/// `instance_id`'s enrolment, read with a projection of the pin's fingerprint and the
/// seeded set only (the minions' role may read nothing else of a row). None: no row.
pub async fn read_enrolment(
    clients: &AwsClients,
    config: &PhoenixConfig,
    role: Role,
    instance_id: &str,
) -> Result<Option<Enrolment>> {
    let output = clients
        .dynamodb
        .get_item()
        .table_name(table_for(config, role))
        .key(CLUSTER_KEY, AttributeValue::S(config.cluster.clone()))
        .key(INSTANCE_KEY, AttributeValue::S(instance_id.into()))
        .projection_expression(format!(
            "{INSTANCE_KEY}, {KEY_ATTRIBUTE}.fingerprint, {SEEDED_ATTRIBUTE}"
        ))
        .consistent_read(true)
        .send()
        .await
        .aws_context("dynamodb", "GetItem")?;
    Ok(output.item.map(|item| Enrolment {
        pinned: item
            .get(KEY_ATTRIBUTE)
            .and_then(|pin| pin.as_m().ok())
            .and_then(|pin| pin.get("fingerprint"))
            .and_then(|fingerprint| fingerprint.as_s().ok())
            .cloned(),
        seeded_on: item
            .get(SEEDED_ATTRIBUTE)
            .and_then(|set| set.as_ss().ok())
            .cloned()
            .unwrap_or_default(),
    }))
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
