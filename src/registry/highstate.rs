//! Writing a first-highstate record: always conditional on the record the writer read, so
//! two masters that race for one attempt, or one attempt's return and its timeout, never
//! both win.

use aws_sdk_dynamodb::types::AttributeValue;

use super::instances::{is_condition_failed, not_past_running, table_for, NOT_PAST_RUNNING};
use super::{CLUSTER_KEY, INSTANCE_KEY};
use crate::aws::{AwsClients, AwsResultExt};
use crate::config::PhoenixConfig;
use crate::error::Result;
use crate::highstate::{HighstateRecord, RECORD_ATTRIBUTE};
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
        .expression_attribute_values(":record", record.to_attribute());
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
