//! A minion's first-highstate record in its row: its encoding (attribute `first_highstate`,
//! a map), and writing it, always conditional on the record the writer read, so two masters
//! that race for one attempt, or one attempt's return and its timeout, never both win.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::instances::{is_condition_failed, n, not_past_running, s, table_for, NOT_PAST_RUNNING};
use super::{CLUSTER_KEY, INSTANCE_KEY};
use crate::aws::{AwsClients, AwsResultExt};
use crate::config::PhoenixConfig;
use crate::error::Result;
use crate::highstate::{FailedState, HighstateRecord, Status};
use crate::lifecycle::Role;

/// Replaces `expected` (None: no record yet) by `record` in `instance_id`'s row. Returns
/// false when the row holds something else now (another master was first) or, with
/// `require_live`, is no longer live.
pub async fn write_highstate(
    clients: &AwsClients,
    config: &PhoenixConfig,
    role: Role,
    instance_id: &str,
    expected: Option<&HighstateRecord>,
    record: &HighstateRecord,
    require_live: bool,
) -> Result<bool> {
    let mut conditions = vec![format!("attribute_exists({INSTANCE_KEY})")];
    let mut request = clients
        .dynamodb
        .update_item()
        .table_name(table_for(config, role))
        .key(CLUSTER_KEY, AttributeValue::S(config.cluster.clone()))
        .key(INSTANCE_KEY, AttributeValue::S(instance_id.to_owned()))
        .update_expression("SET #record = :record")
        .expression_attribute_names("#record", RECORD_ATTRIBUTE)
        .expression_attribute_values(":record", record_to_attribute(record));
    if require_live {
        conditions.push(NOT_PAST_RUNNING.to_owned());
        let (name, value) = not_past_running();
        request = request.expression_attribute_values(name, value);
    }
    match expected {
        None => conditions.push("attribute_not_exists(#record)".to_owned()),
        Some(old) => {
            // Status, attempt and job together name one step of one record.
            conditions.push(
                "#record.#status = :old_status AND #record.attempt = :old_attempt \
                 AND #record.jid = :old_jid"
                    .to_owned(),
            );
            request = request
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(
                    ":old_status",
                    AttributeValue::S(old.status.as_str().into()),
                )
                .expression_attribute_values(
                    ":old_attempt",
                    AttributeValue::N(old.attempt.to_string()),
                )
                .expression_attribute_values(":old_jid", AttributeValue::S(old.jid.clone()));
        }
    }
    let result = request
        .condition_expression(conditions.join(" AND "))
        .send()
        .await
        .aws_context("dynamodb", "UpdateItem");
    match result {
        Ok(_) => Ok(true),
        Err(err) if is_condition_failed(&err) => Ok(false),
        Err(err) => Err(err),
    }
}

/// The row attribute that holds a minion's first-highstate record.
pub const RECORD_ATTRIBUTE: &str = "first_highstate";

/// The record as the row's attribute (a map).
pub(super) fn record_to_attribute(record: &HighstateRecord) -> AttributeValue {
    let mut map = HashMap::from([
        ("status".to_owned(), s(record.status.as_str())),
        ("attempt".to_owned(), n(record.attempt)),
        ("master".to_owned(), s(&record.master)),
        ("jid".to_owned(), s(&record.jid)),
        ("started_ms".to_owned(), n(record.started_ms)),
        ("deadline_ms".to_owned(), n(record.deadline_ms)),
        ("states".to_owned(), n(record.states)),
        ("changed".to_owned(), n(record.changed)),
        ("failed_count".to_owned(), n(record.failed_count)),
        ("rerun".to_owned(), AttributeValue::Bool(record.rerun)),
        (
            "failed_states".to_owned(),
            AttributeValue::L(
                record
                    .failed_states
                    .iter()
                    .map(|state| {
                        AttributeValue::M(HashMap::from([
                            ("id".to_owned(), s(&state.id)),
                            ("function".to_owned(), s(&state.function)),
                            ("name".to_owned(), s(&state.name)),
                            ("comment".to_owned(), s(&state.comment)),
                        ]))
                    })
                    .collect(),
            ),
        ),
    ]);
    if let Some(at) = record.finished_ms {
        map.insert("finished_ms".to_owned(), n(at));
    }
    if let Some(at) = record.next_attempt_ms {
        map.insert("next_attempt_ms".to_owned(), n(at));
    }
    if let Some(error) = &record.error {
        map.insert("error".to_owned(), s(error));
    }
    AttributeValue::M(map)
}

/// The record in a row's attribute; `None` for a value that is not one (logged by the
/// caller as an unreadable row).
pub(super) fn record_from_attribute(value: &AttributeValue) -> Option<HighstateRecord> {
    let map = value.as_m().ok()?;
    let text = |name: &str| map.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| {
        map.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
    };
    let count = |name: &str| {
        number(name)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or_default()
    };
    let failed_states = map
        .get("failed_states")
        .and_then(|v| v.as_l().ok())
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    let state = item.as_m().ok()?;
                    let field = |name: &str| {
                        state
                            .get(name)
                            .and_then(|v| v.as_s().ok())
                            .cloned()
                            .unwrap_or_default()
                    };
                    Some(FailedState {
                        id: field("id"),
                        function: field("function"),
                        name: field("name"),
                        comment: field("comment"),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Some(HighstateRecord {
        status: Status::parse(&text("status")?)?,
        attempt: u32::try_from(number("attempt")?).ok()?,
        master: text("master").unwrap_or_default(),
        jid: text("jid").unwrap_or_default(),
        started_ms: number("started_ms").unwrap_or_default(),
        deadline_ms: number("deadline_ms").unwrap_or_default(),
        finished_ms: number("finished_ms"),
        next_attempt_ms: number("next_attempt_ms"),
        states: count("states"),
        changed: count("changed"),
        failed_count: count("failed_count"),
        failed_states,
        error: text("error"),
        rerun: map
            .get("rerun")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_the_round_trip_through_its_attribute() {
        let mut full = HighstateRecord::sample(Status::Failed, 3);
        full.finished_ms = Some(99);
        full.error = Some("no return".into());
        full.failed_states = vec![FailedState {
            id: "a".into(),
            function: "cmd.run".into(),
            name: "false".into(),
            comment: "c".into(),
        }];
        full.failed_count = 7;
        full.rerun = true;
        for record in [
            full,
            HighstateRecord::sample(Status::Retrying, 1),
            HighstateRecord::sample(Status::Running, 2),
        ] {
            assert_eq!(
                record_from_attribute(&record_to_attribute(&record)),
                Some(record)
            );
        }
        assert_eq!(record_from_attribute(&s("x")), None);
    }
}
