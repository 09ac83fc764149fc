//! A master's replacement claim: the record, in the stale master's own row, that one live
//! master took on reporting it to AutoScaling (attribute `replacement`, a map).
//!
//! The claim is what makes the report happen once, from one engine: it is written by a
//! transaction that succeeds only while the target is still running with the very heartbeat
//! the judge saw, the claimer's own heartbeat is fresh in the table (DynamoDB, not the
//! claimer's opinion of itself, decides whether it may judge), and no other row gained a
//! claim since the judge read them (so two masters judging at once cannot exceed
//! `replacement.max_in_flight` between them).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};
use serde::Serialize;

use super::instances::{n, not_past_running, s, NOT_PAST_RUNNING};
use super::{CLUSTER_KEY, INSTANCE_KEY};
use crate::aws::{AwsClients, AwsResultExt};
use crate::config::PhoenixConfig;
use crate::error::{Error, Result};

/// The row attribute.
pub const REPLACEMENT: &str = "replacement";
/// DynamoDB's limit on the items of one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;

/// Who took on reporting a master, and whether the report was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplacementClaim {
    /// The reporting master's instance id.
    pub by: String,
    /// When the claim was written (the claimer's clock, ms).
    pub at_ms: i64,
    /// How long the target's heartbeat had stood still, as the claimer measured it.
    pub silent_for_ms: i64,
    /// When AutoScaling accepted the report; unset while the call is still to be made.
    pub reported_ms: Option<i64>,
}

impl ReplacementClaim {
    pub(crate) fn from_attribute(value: &AttributeValue) -> Option<Self> {
        let map = value.as_m().ok()?;
        let number = |name: &str| map.get(name)?.as_n().ok()?.parse::<i64>().ok();
        Some(Self {
            by: map.get("by")?.as_s().ok()?.clone(),
            at_ms: number("at_ms")?,
            silent_for_ms: number("silent_for_ms").unwrap_or_default(),
            reported_ms: number("reported_ms"),
        })
    }

    fn to_attribute(&self) -> AttributeValue {
        let mut map = HashMap::from([
            ("by".to_owned(), AttributeValue::S(self.by.clone())),
            ("at_ms".to_owned(), n(self.at_ms)),
            ("silent_for_ms".to_owned(), n(self.silent_for_ms)),
        ]);
        if let Some(reported) = self.reported_ms {
            map.insert("reported_ms".to_owned(), n(reported));
        }
        AttributeValue::M(map)
    }
}

/// What a claim must still find true when it is written.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    /// The master to be reported.
    pub target: &'a str,
    /// Its heartbeat as the judge read it (None: it never beat).
    pub target_heartbeat_ms: Option<i64>,
    /// The claim to write.
    pub claim: ReplacementClaim,
    /// Taking over a claim this master made and never reported (it is gone).
    pub takes_over_from: Option<&'a str>,
    /// The claimer's heartbeat must be at least this recent in the table.
    pub claimer_fresh_since_ms: i64,
    /// Rows that held no claim when the judge read them: they must hold none still.
    pub unclaimed: Vec<&'a str>,
}

/// Writes the claim. `Ok(false)` when the table no longer allows it (the target beat again
/// or left `running`, someone else claimed it or another master, or the claimer's own
/// heartbeat is no longer fresh): nothing was written.
pub async fn claim_replacement(
    clients: &AwsClients,
    config: &PhoenixConfig,
    request: &ClaimRequest<'_>,
) -> Result<bool> {
    let table = &config.masters_table;
    let key = |id: &str| {
        HashMap::from([
            (CLUSTER_KEY.to_owned(), s(&config.cluster)),
            (INSTANCE_KEY.to_owned(), s(id)),
        ])
    };
    let (running_name, running) = not_past_running();
    let mut values = HashMap::from([
        (":claim".to_owned(), request.claim.to_attribute()),
        (running_name.to_owned(), running.clone()),
    ]);
    let mut condition = "state_rank = :running".to_owned();
    match request.target_heartbeat_ms {
        Some(beat) => {
            condition.push_str(" AND heartbeat_ms = :beat");
            values.insert(":beat".to_owned(), n(beat));
        }
        None => condition.push_str(" AND attribute_not_exists(heartbeat_ms)"),
    }
    match request.takes_over_from {
        Some(previous) => {
            condition.push_str(
                " AND #replacement.#by = :previous AND attribute_not_exists(#replacement.reported_ms)",
            );
            values.insert(":previous".to_owned(), s(previous));
        }
        None => condition.push_str(" AND attribute_not_exists(#replacement)"),
    }
    let mut names = HashMap::from([("#replacement".to_owned(), REPLACEMENT.to_owned())]);
    if request.takes_over_from.is_some() {
        names.insert("#by".to_owned(), "by".to_owned());
    }
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key(request.target)))
        .update_expression("SET #replacement = :claim")
        .condition_expression(condition)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .build()
        .map_err(|err| Error::Internal(format!("replacement claim: {err}")))?;
    let claimer = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(key(&request.claim.by)))
        .condition_expression(format!("{NOT_PAST_RUNNING} AND heartbeat_ms >= :fresh"))
        .expression_attribute_values(running_name, running)
        .expression_attribute_values(":fresh", n(request.claimer_fresh_since_ms))
        .build()
        .map_err(|err| Error::Internal(format!("replacement claim: {err}")))?;
    let mut items = vec![
        TransactWriteItem::builder().update(update).build(),
        TransactWriteItem::builder()
            .condition_check(claimer)
            .build(),
    ];
    for other in &request.unclaimed {
        if items.len() == MAX_TRANSACTION_ITEMS {
            log::warn!(
                "more than {} masters: the replacement claim checks only the first {} others",
                MAX_TRANSACTION_ITEMS - 2,
                MAX_TRANSACTION_ITEMS - 2
            );
            break;
        }
        let check = ConditionCheck::builder()
            .table_name(table)
            .set_key(Some(key(other)))
            .condition_expression("attribute_not_exists(#replacement)")
            .expression_attribute_names("#replacement", REPLACEMENT)
            .build()
            .map_err(|err| Error::Internal(format!("replacement claim: {err}")))?;
        items.push(TransactWriteItem::builder().condition_check(check).build());
    }
    let outcome = clients
        .dynamodb
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
        .aws_context("dynamodb", "TransactWriteItems");
    match outcome {
        Ok(_) => Ok(true),
        Err(Error::Aws {
            code: Some(code), ..
        }) if code == "TransactionCanceledException" => Ok(false),
        Err(err) => Err(err),
    }
}

/// Records that AutoScaling accepted the report of `target` (only the claimer's own claim).
pub async fn mark_reported(
    clients: &AwsClients,
    config: &PhoenixConfig,
    target: &str,
    by: &str,
    now_ms: i64,
) -> Result<()> {
    let result = clients
        .dynamodb
        .update_item()
        .table_name(&config.masters_table)
        .key(CLUSTER_KEY, s(&config.cluster))
        .key(INSTANCE_KEY, s(target))
        .update_expression("SET #replacement.reported_ms = :now")
        .condition_expression("#replacement.#by = :by")
        .expression_attribute_names("#replacement", REPLACEMENT)
        .expression_attribute_names("#by", "by")
        .expression_attribute_values(":now", n(now_ms))
        .expression_attribute_values(":by", s(by))
        .send()
        .await
        .aws_context("dynamodb", "UpdateItem");
    match result {
        Ok(_) => Ok(()),
        // The row expired or was claimed over: the report itself was made all the same.
        Err(err) if super::instances::is_condition_failed(&err) => Ok(()),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_reads_back_as_written() {
        let mut claim = ReplacementClaim {
            by: "i-0aaaaaaaaaaaaaaaa".into(),
            at_ms: 1_000,
            silent_for_ms: 125_000,
            reported_ms: None,
        };
        assert_eq!(
            ReplacementClaim::from_attribute(&claim.to_attribute()),
            Some(claim.clone())
        );
        claim.reported_ms = Some(2_000);
        assert_eq!(
            ReplacementClaim::from_attribute(&claim.to_attribute()),
            Some(claim)
        );
        assert_eq!(ReplacementClaim::from_attribute(&s("garbage")), None);
    }
}
