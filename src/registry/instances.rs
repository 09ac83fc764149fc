//! Reading and writing instance rows.
//!
//! Every write that comes from an AutoScaling event is conditional on the event moving the
//! row forward (see `state.rs`), so an older or duplicate event never overwrites a newer one.
//! The facts an event carries (group, zone, per-kind event time) are recorded whatever the
//! order: they are the same in every copy of an event, so recording them is idempotent.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use serde::Serialize;

use super::highstate::{record_from_attribute, RECORD_ATTRIBUTE};
use super::keys::{KeyPin, KEY_ATTRIBUTE};
use super::state::{event_time_attribute, InstanceState};
use super::{CLUSTER_KEY, EXPIRES_AT, INSTANCE_KEY};
use crate::aws::{AwsClients, AwsResultExt};
use crate::config::PhoenixConfig;
use crate::error::{Error, Result};
use crate::highstate::HighstateRecord;
use crate::lifecycle::{InstanceEvent, LifecycleAction, Role};

/// What applying one event did to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// The row moved to the state the event implies.
    Moved,
    /// The row was already as far or further: only the event's facts were recorded.
    AlreadyNewer,
}

/// One row of the registry, as readers see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceRecord {
    pub instance_id: String,
    pub role: Role,
    pub state: InstanceState,
    pub group: Option<String>,
    pub availability_zone: Option<String>,
    pub address: Option<String>,
    /// Time of the event that set the current state.
    pub event_ms: i64,
    pub launch_ms: Option<i64>,
    pub heartbeat_ms: Option<i64>,
    pub expires_at: Option<i64>,
    /// The launch lifecycle action still open for this instance, when one is.
    pub launch_hook: Option<LifecycleAction>,
    /// A terminating master's lifecycle action, completed once its minions had time to
    /// leave it.
    pub retire_hook: Option<RetireHook>,
    /// The minion key pinned at first acceptance.
    pub key: Option<KeyPin>,
    /// The instance's first highstate, once one was started.
    pub first_highstate: Option<HighstateRecord>,
}

/// A lifecycle action kept in a row for whoever completes it later, as a map.
fn action_to_map(action: &LifecycleAction) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("hook_name".to_owned(), s(&action.hook_name)),
        ("token".to_owned(), s(&action.token)),
        ("group".to_owned(), s(&action.group)),
    ])
}

/// The lifecycle action a row keeps (`launch_hook`, or the action in `retire_hook`).
pub(crate) fn action_from_attribute(value: &AttributeValue) -> Option<LifecycleAction> {
    let map = value.as_m().ok()?;
    let field = |name: &str| map.get(name).and_then(|v| v.as_s().ok()).cloned();
    Some(LifecycleAction {
        hook_name: field("hook_name")?,
        token: field("token")?,
        group: field("group")?,
    })
}

/// A terminating master's TERMINATING lifecycle action, due for completion at `due_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetireHook {
    pub hook: LifecycleAction,
    pub due_ms: i64,
}

impl RetireHook {
    pub(crate) fn from_attribute(value: &AttributeValue) -> Option<Self> {
        let due_ms = value
            .as_m()
            .ok()?
            .get("due_ms")?
            .as_n()
            .ok()?
            .parse()
            .ok()?;
        Some(RetireHook {
            hook: action_from_attribute(value)?,
            due_ms,
        })
    }
}

/// The row attribute of a launch kept open (minions, with highstate gating).
pub const LAUNCH_HOOK: &str = "launch_hook";
/// The row attribute of a master's termination kept open while it drains.
pub const RETIRE_HOOK: &str = "retire_hook";

/// A lifecycle action the engine does not complete at once: it is kept in the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptHook {
    /// A minion's launch, completed by its first highstate.
    Launch,
    /// A master's termination, completed at `due_ms` by any master's engine.
    Retire { due_ms: i64 },
}

impl KeptHook {
    fn attribute(self) -> &'static str {
        match self {
            KeptHook::Launch => LAUNCH_HOOK,
            KeptHook::Retire { .. } => RETIRE_HOOK,
        }
    }
}

impl InstanceRecord {
    /// Whether DynamoDB's TTL has passed for this row (TTL deletion lags by up to days, so
    /// readers must ignore expired rows themselves).
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at
            .is_some_and(|at| at.saturating_mul(1000) <= now_ms)
    }
}

/// The table a role's rows live in.
pub fn table_for(config: &PhoenixConfig, role: Role) -> &str {
    match role {
        Role::Master => &config.masters_table,
        Role::Minion => &config.minions_table,
    }
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The condition that a row is launching or running, not on its way out: what every write
/// that only a live instance's row may take (a heartbeat, a key pin, a first-highstate
/// record, a replacement claimer) says. Its placeholder and value: [`not_past_running`].
pub(super) const NOT_PAST_RUNNING: &str = "state_rank <= :running";

/// `(":running", running's rank)`, the value [`NOT_PAST_RUNNING`] refers to.
pub(super) fn not_past_running() -> (&'static str, AttributeValue) {
    (":running", n(InstanceState::Running.rank()))
}

/// Records `event` for an instance of `role`. The state moves only forward; the event's
/// facts are recorded in every case. Idempotent: applying the same event again changes
/// nothing.
///
/// `kept`: keep the event's lifecycle action in the row, for whoever completes it later
/// (a minion's first highstate, with gating on; any engine, once a terminating master
/// drained). Where the engine completes the action at once, the row does not need it, and
/// not writing it saves a write to clear it.
pub async fn apply_event(
    clients: &AwsClients,
    config: &PhoenixConfig,
    role: Role,
    event: &InstanceEvent,
    kept: Option<KeptHook>,
) -> Result<Applied> {
    let state = InstanceState::implied_by(event.kind);
    let table = table_for(config, role);
    let mut facts = vec![
        "#role = :role".to_owned(),
        "#group = if_not_exists(#group, :group)".to_owned(),
        format!("{} = :event_time", event_time_attribute(event.kind)),
    ];
    let mut values: HashMap<String, AttributeValue> = HashMap::from([
        (":role".to_owned(), s(role.as_str())),
        (":group".to_owned(), s(&event.group)),
        (":event_time".to_owned(), n(event.time_ms)),
    ]);
    let mut names: HashMap<String, String> = HashMap::from([
        ("#role".to_owned(), "role".to_owned()),
        ("#group".to_owned(), "group".to_owned()),
    ]);
    if let Some(az) = &event.availability_zone {
        facts.push("availability_zone = if_not_exists(availability_zone, :az)".to_owned());
        values.insert(":az".to_owned(), s(az));
    }
    let hook = match (kept, &event.lifecycle) {
        (Some(kept), Some(action)) => Some((kept, action)),
        _ => None,
    };
    if let Some((kept, action)) = hook {
        let mut map = action_to_map(action);
        if let KeptHook::Retire { due_ms } = kept {
            map.insert("due_ms".to_owned(), n(due_ms));
        }
        // The first copy of the event sets it: a redelivery does not push the drain back.
        let attribute = kept.attribute();
        facts.push(format!("{attribute} = if_not_exists({attribute}, :hook)"));
        values.insert(":hook".to_owned(), AttributeValue::M(map));
    }
    let hook_attribute = hook.map(|(kept, _)| kept.attribute());

    // First try: the facts and the state move together, in one conditional write.
    let mut moving = facts.clone();
    moving.push("#state = :state".to_owned());
    moving.push("state_rank = :rank".to_owned());
    moving.push("event_ms = :event_time".to_owned());
    let mut moving_values = values.clone();
    moving_values.insert(":state".to_owned(), s(state.as_str()));
    moving_values.insert(":rank".to_owned(), n(state.rank()));
    if state == InstanceState::Terminated {
        moving.push(format!("{EXPIRES_AT} = :expires"));
        moving_values.insert(
            ":expires".to_owned(),
            n(event.time_ms.div_euclid(1000) + config.terminated_ttl as i64),
        );
    }
    let mut moving_names = names.clone();
    moving_names.insert("#state".to_owned(), "state".to_owned());
    let condition = "attribute_not_exists(state_rank) OR state_rank < :rank \
                     OR (state_rank = :rank AND event_ms < :event_time)";
    let result = clients
        .dynamodb
        .update_item()
        .table_name(table)
        .key(CLUSTER_KEY, s(&config.cluster))
        .key(INSTANCE_KEY, s(event.instance_id.as_str()))
        .update_expression(format!("SET {}", moving.join(", ")))
        .condition_expression(condition)
        .set_expression_attribute_names(Some(moving_names))
        .set_expression_attribute_values(Some(moving_values))
        // A refused write returns the row as it stands, so a duplicate costs one call.
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(_) => return Ok(Applied::Moved),
        Err(SdkError::ServiceError(failure)) => match failure.err() {
            UpdateItemError::ConditionalCheckFailedException(refused) => {
                if refused
                    .item()
                    .is_some_and(|row| holds_facts(row, role, event, hook_attribute))
                {
                    return Ok(Applied::AlreadyNewer);
                }
            }
            _ => return Err(SdkError::ServiceError(failure)).aws_context("dynamodb", "UpdateItem"),
        },
        Err(err) => return Err(err).aws_context("dynamodb", "UpdateItem"),
    }

    // The row is already further: record only the facts (unconditional, idempotent).
    names.retain(|k, _| k != "#state");
    clients
        .dynamodb
        .update_item()
        .table_name(table)
        .key(CLUSTER_KEY, s(&config.cluster))
        .key(INSTANCE_KEY, s(event.instance_id.as_str()))
        .update_expression(format!("SET {}", facts.join(", ")))
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .send()
        .await
        .aws_context("dynamodb", "UpdateItem")?;
    Ok(Applied::AlreadyNewer)
}

/// Whether a row already holds every fact `event` would record (a duplicate, or an event
/// applied before), so the facts-only write can be skipped.
fn holds_facts(
    row: &HashMap<String, AttributeValue>,
    role: Role,
    event: &InstanceEvent,
    hook_attribute: Option<&str>,
) -> bool {
    let text = |name: &str| {
        row.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    };
    text("role") == Some(role.as_str())
        && text("group").is_some()
        && row
            .get(event_time_attribute(event.kind))
            .and_then(|v| v.as_n().ok())
            .is_some_and(|time| *time == event.time_ms.to_string())
        && (event.availability_zone.is_none() || text("availability_zone").is_some())
        && hook_attribute.is_none_or(|attribute| row.contains_key(attribute))
}

/// Forgets the open launch lifecycle action of an instance once it has been completed.
pub async fn clear_launch_hook(
    clients: &AwsClients,
    config: &PhoenixConfig,
    role: Role,
    instance_id: &str,
) -> Result<()> {
    clear_hook(clients, config, role, instance_id, LAUNCH_HOOK).await
}

/// Forgets a master's termination lifecycle action once it has been completed.
pub async fn clear_retire_hook(
    clients: &AwsClients,
    config: &PhoenixConfig,
    instance_id: &str,
) -> Result<()> {
    clear_hook(clients, config, Role::Master, instance_id, RETIRE_HOOK).await
}

async fn clear_hook(
    clients: &AwsClients,
    config: &PhoenixConfig,
    role: Role,
    instance_id: &str,
    attribute: &str,
) -> Result<()> {
    let result = clients
        .dynamodb
        .update_item()
        .table_name(table_for(config, role))
        .key(CLUSTER_KEY, s(&config.cluster))
        .key(INSTANCE_KEY, s(instance_id))
        .update_expression(format!("REMOVE {attribute}"))
        // Never create a row just to remove an attribute from it.
        .condition_expression("attribute_exists(instance_id)")
        .send()
        .await
        .aws_context("dynamodb", "UpdateItem");
    match result {
        Err(err) if !is_condition_failed(&err) => Err(err),
        _ => Ok(()),
    }
}

/// Records a master's heartbeat and address. Only a master that is already registered and
/// not on its way out is refreshed, so a late heartbeat never revives a retiring master.
pub async fn record_heartbeat(
    clients: &AwsClients,
    config: &PhoenixConfig,
    instance_id: &str,
    address: &str,
    now_ms: i64,
) -> Result<bool> {
    let running = not_past_running();
    let result = clients
        .dynamodb
        .update_item()
        .table_name(&config.masters_table)
        .key(CLUSTER_KEY, s(&config.cluster))
        .key(INSTANCE_KEY, s(instance_id))
        .update_expression("SET heartbeat_ms = :now, address = :address")
        .condition_expression(format!(
            "attribute_exists(instance_id) AND {NOT_PAST_RUNNING}"
        ))
        .expression_attribute_values(":now", n(now_ms))
        .expression_attribute_values(":address", s(address))
        .expression_attribute_values(running.0, running.1)
        .send()
        .await
        .aws_context("dynamodb", "UpdateItem");
    match result {
        Ok(_) => Ok(true),
        Err(err) if is_condition_failed(&err) => Ok(false),
        Err(err) => Err(err),
    }
}

/// Every row of one role in this cluster (one paginated Query). Expired rows are left out.
pub async fn list(
    clients: &AwsClients,
    config: &PhoenixConfig,
    role: Role,
    now_ms: i64,
) -> Result<Vec<InstanceRecord>> {
    let mut records = Vec::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let page = clients
            .dynamodb
            .query()
            .table_name(table_for(config, role))
            .key_condition_expression("#cluster = :cluster")
            .expression_attribute_names("#cluster", CLUSTER_KEY)
            .expression_attribute_values(":cluster", s(&config.cluster))
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .aws_context("dynamodb", "Query")?;
        for item in page.items.unwrap_or_default() {
            match record_from_item(role, &item) {
                Ok(record) if !record.is_expired(now_ms) => records.push(record),
                Ok(_) => {}
                Err(err) => log::warn!("skipping an unreadable registry row: {err}"),
            }
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => break,
        }
    }
    Ok(records)
}

/// One row, or None.
pub async fn get(
    clients: &AwsClients,
    config: &PhoenixConfig,
    role: Role,
    instance_id: &str,
) -> Result<Option<InstanceRecord>> {
    let output = clients
        .dynamodb
        .get_item()
        .table_name(table_for(config, role))
        .key(CLUSTER_KEY, s(&config.cluster))
        .key(INSTANCE_KEY, s(instance_id))
        .consistent_read(true)
        .send()
        .await
        .aws_context("dynamodb", "GetItem")?;
    output
        .item
        .map(|item| record_from_item(role, &item))
        .transpose()
}

pub(crate) fn is_condition_failed(err: &Error) -> bool {
    matches!(err, Error::Aws { code: Some(code), .. } if code == "ConditionalCheckFailedException")
}

fn record_from_item(role: Role, item: &HashMap<String, AttributeValue>) -> Result<InstanceRecord> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
    };
    let instance_id = text(INSTANCE_KEY)
        .ok_or_else(|| Error::Internal("registry row without instance_id".into()))?;
    let state = text("state")
        .as_deref()
        .and_then(InstanceState::parse)
        .ok_or_else(|| Error::Internal(format!("registry row {instance_id} has no valid state")))?;
    let launch_hook = item.get(LAUNCH_HOOK).and_then(action_from_attribute);
    let retire_hook = item.get(RETIRE_HOOK).and_then(RetireHook::from_attribute);
    Ok(InstanceRecord {
        role,
        state,
        group: text("group"),
        availability_zone: text("availability_zone"),
        address: text("address"),
        event_ms: number("event_ms").unwrap_or_default(),
        launch_ms: number("launching_ms").or_else(|| number("launched_ms")),
        heartbeat_ms: number("heartbeat_ms"),
        expires_at: number(EXPIRES_AT),
        launch_hook,
        retire_hook,
        key: item.get(KEY_ATTRIBUTE).and_then(KeyPin::from_attribute),
        // An unreadable record must not hide the row (its key would be left unmanaged);
        // writes of the record stay conditional on what they read, so none overwrites it.
        first_highstate: item.get(RECORD_ATTRIBUTE).and_then(|value| {
            let record = record_from_attribute(value);
            if record.is_none() {
                log::warn!("registry row {instance_id} has an unreadable {RECORD_ATTRIBUTE}");
            }
            record
        }),
        instance_id,
    })
}
