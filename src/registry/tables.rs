//! Creating and inspecting the registry tables. Production tables come from `cfn/`; this is
//! the same schema for development against an emulator (`phoenix tables create`).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification,
};
use serde::Serialize;

use super::{CLUSTER_KEY, EXPIRES_AT, INSTANCE_KEY};
use crate::aws::{AwsClients, AwsResultExt};
use crate::config::PhoenixConfig;
use crate::error::{Error, Result};

/// What one registry table must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub name: String,
}

impl TableSpec {
    pub fn registry_tables(config: &PhoenixConfig) -> [TableSpec; 2] {
        [
            TableSpec {
                name: config.masters_table.clone(),
            },
            TableSpec {
                name: config.minions_table.clone(),
            },
        ]
    }

    fn expected_keys() -> Vec<(String, String)> {
        vec![
            (CLUSTER_KEY.to_owned(), "HASH".to_owned()),
            (INSTANCE_KEY.to_owned(), "RANGE".to_owned()),
        ]
    }
}

/// What DescribeTable says of a table, in plain values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableDescription {
    pub name: String,
    pub status: String,
    /// (attribute, HASH | RANGE)
    pub key_schema: Vec<(String, String)>,
    pub item_count: i64,
}

/// Creates both registry tables if they are missing, waits until they are ACTIVE, and
/// enables the TTL attribute. An existing table with the right key schema is left as it
/// is; one with another schema is a conflict, never altered. Returns, per table, whether
/// it was created now.
pub async fn create_tables(
    clients: &AwsClients,
    config: &PhoenixConfig,
) -> Result<Vec<(String, bool)>> {
    let mut outcome = Vec::new();
    for spec in TableSpec::registry_tables(config) {
        let created = create_table(clients, &spec).await?;
        wait_active(clients, &spec.name).await?;
        enable_ttl(clients, &spec.name).await?;
        outcome.push((spec.name, created));
    }
    Ok(outcome)
}

async fn create_table(clients: &AwsClients, spec: &TableSpec) -> Result<bool> {
    match describe_table(clients, &spec.name).await {
        Ok(existing) => {
            if existing.key_schema != TableSpec::expected_keys() {
                return Err(Error::Conflict(format!(
                    "table {} exists with key schema {:?}; the registry needs {:?}",
                    spec.name,
                    existing.key_schema,
                    TableSpec::expected_keys()
                )));
            }
            return Ok(false);
        }
        Err(Error::NotFound { .. }) => {}
        Err(other) => return Err(other),
    }
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let request = clients
        .dynamodb
        .create_table()
        .table_name(&spec.name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(CLUSTER_KEY).map_err(build_error)?)
        .attribute_definitions(attribute(INSTANCE_KEY).map_err(build_error)?)
        .key_schema(key(CLUSTER_KEY, KeyType::Hash).map_err(build_error)?)
        .key_schema(key(INSTANCE_KEY, KeyType::Range).map_err(build_error)?);
    match request.send().await.aws_context("dynamodb", "CreateTable") {
        Ok(_) => Ok(true),
        // Another process created it between our describe and create.
        Err(Error::Aws {
            code: Some(code), ..
        }) if code == "ResourceInUseException" => Ok(false),
        Err(other) => Err(other),
    }
}

async fn wait_active(clients: &AwsClients, name: &str) -> Result<()> {
    for _ in 0..120 {
        if describe_table(clients, name).await?.status == TableStatus::Active.as_str() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(Error::Aws {
        service: "dynamodb",
        operation: "DescribeTable",
        code: None,
        message: format!("table {name} did not become ACTIVE within 60 s"),
        retryable: true,
    })
}

async fn enable_ttl(clients: &AwsClients, name: &str) -> Result<()> {
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(EXPIRES_AT)
        .enabled(true)
        .build()
        .map_err(build_error)?;
    let result = clients
        .dynamodb
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(spec)
        .send()
        .await
        .aws_context("dynamodb", "UpdateTimeToLive");
    match result {
        Ok(_) => Ok(()),
        // DynamoDB refuses to "enable" a TTL that is already enabled.
        Err(Error::Aws {
            code: Some(code),
            message,
            ..
        }) if code == "ValidationException" && message.contains("already enabled") => Ok(()),
        Err(other) => Err(other),
    }
}

/// DescribeTable in plain values. A missing table is [`Error::NotFound`].
pub async fn describe_table(clients: &AwsClients, name: &str) -> Result<TableDescription> {
    let output = clients
        .dynamodb
        .describe_table()
        .table_name(name)
        .send()
        .await
        .aws_context("dynamodb", "DescribeTable")?;
    let table = output
        .table
        .ok_or_else(|| Error::Internal(format!("DescribeTable {name} returned no table")))?;
    Ok(TableDescription {
        name: table.table_name.unwrap_or_else(|| name.to_owned()),
        status: table
            .table_status
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        key_schema: table
            .key_schema
            .unwrap_or_default()
            .into_iter()
            .map(|k| (k.attribute_name, k.key_type.as_str().to_owned()))
            .collect(),
        item_count: table.item_count.unwrap_or_default(),
    })
}

fn build_error(err: aws_sdk_dynamodb::error::BuildError) -> Error {
    Error::Internal(format!("building a DynamoDB request: {err}"))
}
