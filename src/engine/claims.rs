//! The claim desk: identity claims taken off the claim queue, verified in the core, and the
//! first valid one for an instance pinned in the registry (docs/keys.md, "Attested
//! enrolment").
//!
//! Every master's engine long-polls the claim queue; SQS hands each claim to one of them,
//! and the registry's conditional write makes the first valid claim for an id the only one
//! that pins. A claim that can never pin (bad signature, another instance's document, a key
//! already pinned) is deleted and reported; one AWS vouches for whose launch the registry has
//! not recorded yet, or that met an AWS error, stays on the queue and comes back
//! [`CLAIM_RETRY_SECONDS`] later, until its enrolment window closes.

use std::sync::Mutex;

use serde::Serialize;

use super::queue::{self, QueueMessage};
use crate::aws::{autoscaling, AwsClients};
use crate::config::PhoenixConfig;
use crate::enrolment::{
    quote_within, shorten, verify_claim, verify_signed_document, ClaimRefusal, EnrolmentPolicy,
    IdentityCertificates, KeyClaim,
};
use crate::error::{Error, Result};
use crate::events::{self, BusEvent};
use crate::lifecycle::Role;
use crate::registry::{self, InstanceRecord, PinOutcome};

/// At most this many refusals are reported (logged at warning and fired) per
/// [`REFUSAL_WINDOW_MS`]; the rest are counted and the count goes with the next report. A
/// flood of garbage claims costs one verification each, not a flood of log lines and events.
const REFUSALS_REPORTED: u64 = 20;
const REFUSAL_WINDOW_MS: i64 = 60_000;
/// How much of a claimed id an event carries (the id is untrusted).
const ID_CHARS: usize = 64;
/// Seconds before a claim that could not be settled (its launch not recorded yet, an AWS
/// error) is judged again. Short: a minion boots seconds after its launch is announced, and
/// only claims AWS vouches for, within their enrolment window, ever come back.
pub const CLAIM_RETRY_SECONDS: i32 = 3;

/// What an engine needs to judge claims: the certificates, and the cluster's account,
/// region and enrolment window.
pub struct ClaimDesk {
    certificates: IdentityCertificates,
    policy: EnrolmentPolicy,
    budget: Mutex<RefusalBudget>,
}

impl ClaimDesk {
    /// The cluster's account and region are `phoenix.keys.account_id` and `phoenix.region`
    /// where set, else those of this master's own identity document, verified like a claim's
    /// document (a master never trusts unsigned metadata for them).
    pub async fn open(config: &PhoenixConfig) -> Result<Self> {
        let certificates = IdentityCertificates::new(&config.keys.identity_certificates)?;
        let (account_id, region) = match (&config.keys.account_id, &config.region) {
            (Some(account), Some(region)) => (account.clone(), region.clone()),
            (account, region) => {
                let client = crate::imds::client(None)?;
                let (document, signature) =
                    crate::imds::identity_document(&client)
                        .await
                        .map_err(|err| {
                            Error::config(
                                "phoenix.keys.account_id",
                                format!(
                                    "cannot learn the cluster's account and region from this \
                                 master's identity document ({err}); off EC2, set \
                                 phoenix.keys.account_id and phoenix.region"
                                ),
                            )
                        })?;
                let (own, _) =
                    verify_signed_document(document.as_bytes(), &signature, &certificates)
                        .map_err(|refusal| {
                            Error::config(
                                "phoenix.keys.identity_certificates",
                                format!("this master's own identity document: {refusal}"),
                            )
                        })?;
                (
                    account.clone().unwrap_or(own.account_id),
                    region.clone().unwrap_or(own.region),
                )
            }
        };
        log::info!(
            "attested enrolment: claims for account {account_id}, region {region}, within {} s \
             of launch",
            config.keys.enrolment_window
        );
        Ok(Self {
            certificates,
            policy: EnrolmentPolicy {
                account_id,
                region,
                window_ms: config.keys.enrolment_window_ms(),
            },
            budget: Mutex::new(RefusalBudget::default()),
        })
    }

    /// The account, region and window claims are checked against.
    pub fn policy(&self) -> &EnrolmentPolicy {
        &self.policy
    }
}

/// What one poll of the claim queue did.
#[derive(Debug, Default, Serialize)]
pub struct ClaimReport {
    /// Claims received.
    pub received: usize,
    /// Ids whose key this poll pinned, or found pinned with the claimed key: the engine
    /// reconciles their keys at once.
    pub pinned: Vec<String>,
    /// Claims refused for good (deleted).
    pub refused: usize,
    /// Claims left on the queue to be tried again.
    pub retry: usize,
    /// Deletes SQS refused (those claims come back and are judged again).
    pub delete_failed: usize,
    /// The events to fire.
    pub events: Vec<BusEvent>,
}

/// How one claim was judged.
enum Judgement {
    /// This claim pinned the key (`fresh`), or the same key was pinned already.
    Pinned {
        id: String,
        role: Role,
        fingerprint: String,
        certificate: String,
        fresh: bool,
    },
    Refused {
        id: Option<String>,
        fingerprint: Option<String>,
        refusal: ClaimRefusal,
    },
    /// Not decidable now (the launch not recorded yet, an AWS error): try again later.
    Retry { id: String, why: String },
}

/// Long-polls the claim queue once (up to `wait_seconds`), judges what arrived, pins the
/// first valid claim of each instance, deletes every claim that is settled.
pub async fn poll_claims(
    clients: &AwsClients,
    config: &PhoenixConfig,
    desk: &ClaimDesk,
    master: &str,
    wait_seconds: i32,
) -> Result<ClaimReport> {
    let queue_url = config.keys.require_claim_queue_url()?;
    let messages = queue::receive(clients, queue_url, wait_seconds).await?;
    let mut report = ClaimReport {
        received: messages.len(),
        ..ClaimReport::default()
    };
    let mut settled: Vec<&QueueMessage> = Vec::new();
    let mut again: Vec<(&QueueMessage, i32)> = Vec::new();
    for message in &messages {
        let now_ms = crate::clock::now_ms();
        match judge(clients, config, desk, master, message, now_ms).await {
            Judgement::Pinned {
                id,
                role,
                fingerprint,
                certificate,
                fresh,
            } => {
                if fresh {
                    log::info!(
                        "pinned key {fingerprint} for {id} on its identity document \
                         ({certificate})"
                    );
                    report.events.push(events::key_pinned(
                        &id,
                        role,
                        &fingerprint,
                        master,
                        &certificate,
                    ));
                } else {
                    log::debug!("claim for {id}: key {fingerprint} was pinned already");
                }
                report.pinned.push(id);
                settled.push(message);
            }
            Judgement::Refused {
                id,
                fingerprint,
                refusal,
            } => {
                report.refused += 1;
                settled.push(message);
                let budget = desk
                    .budget
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .spend(now_ms);
                if let Some(suppressed) = budget {
                    log::warn!(
                        "refused the identity claim of message {} for {}: {refusal}{}",
                        message.message_id,
                        id.as_deref().map_or("no id".into(), quote),
                        if suppressed > 0 {
                            format!(" ({suppressed} more refused before, not reported)")
                        } else {
                            String::new()
                        }
                    );
                    let id = id.as_deref().map(|id| shorten(id, ID_CHARS));
                    report.events.push(events::claim_refused(
                        id.as_deref(),
                        fingerprint.as_deref(),
                        &refusal,
                        suppressed,
                    ));
                }
            }
            Judgement::Retry { id, why } => {
                report.retry += 1;
                again.push((message, CLAIM_RETRY_SECONDS));
                // Said once per claim; it comes back every few seconds until it is settled
                // or its enrolment window closes (then refused, at warning).
                if message.receive_count <= 1 {
                    log::info!("identity claim for {id}: {why}; trying it again every {CLAIM_RETRY_SECONDS} s");
                } else {
                    log::debug!("identity claim for {id}: {why}; trying it again");
                }
            }
        }
    }
    let deleted = queue::delete(clients, queue_url, &settled).await?;
    for (message_id, why) in &deleted.failed {
        log::warn!(
            "could not delete claim {message_id} (it comes back and is judged again): {why}"
        );
    }
    report.delete_failed = deleted.failed.len();
    // A claim whose visibility could not be shortened comes back after the queue's own
    // visibility timeout instead: later, not lost.
    if let Err(err) = queue::postpone(clients, queue_url, &again).await {
        log::debug!("could not bring claims back sooner: {err}");
    }
    Ok(report)
}

async fn judge(
    clients: &AwsClients,
    config: &PhoenixConfig,
    desk: &ClaimDesk,
    master: &str,
    message: &QueueMessage,
    now_ms: i64,
) -> Judgement {
    let claim = match KeyClaim::parse(&message.body) {
        Ok(claim) => claim,
        Err(refusal) => {
            return Judgement::Refused {
                id: None,
                fingerprint: None,
                refusal,
            }
        }
    };
    let refused = |refusal| Judgement::Refused {
        id: Some(claim.identity.instance_id.clone()),
        fingerprint: Some(claim.fingerprint.clone()),
        refusal,
    };
    let attested = match verify_claim(&claim.identity, &desk.certificates, &desk.policy, now_ms) {
        Ok(attested) => attested,
        Err(refusal) => return refused(refusal),
    };
    // From here on the id is one AWS vouches for.
    let id = attested.document.instance_id;
    let (role, record) = match find(clients, config, &id).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return Judgement::Retry {
                id,
                why: "the registry has not recorded its launch yet".into(),
            }
        }
        Err(err) => {
            return Judgement::Retry {
                id,
                why: format!("reading the registry failed: {err}"),
            }
        }
    };
    if let Some(reason) = not_enrollable(config, role, &record) {
        return refused(ClaimRefusal::NotInRegistry {
            instance: quote(&id),
            reason,
        });
    }
    if config.keys.verify_autoscaling {
        let groups = config.configured_groups();
        match autoscaling::describe_instances(clients, std::slice::from_ref(&id)).await {
            Ok(listed) => {
                if let Some(reason) = autoscaling::doubt_about_key(listed.get(&id), &groups) {
                    return refused(ClaimRefusal::NotInAutoScaling {
                        instance: quote(&id),
                        reason,
                    });
                }
            }
            Err(err) => {
                return Judgement::Retry {
                    id,
                    why: format!("AutoScaling could not be asked: {err}"),
                }
            }
        }
    }
    let pinned = registry::pin_key(
        clients,
        config,
        role,
        &id,
        &claim.fingerprint,
        &claim.public_key,
        master,
        now_ms,
    )
    .await;
    match pinned {
        Ok(PinOutcome::Pinned | PinOutcome::AlreadyPinned) => Judgement::Pinned {
            fresh: matches!(pinned, Ok(PinOutcome::Pinned)),
            id,
            role,
            fingerprint: claim.fingerprint,
            certificate: attested.certificate,
        },
        Ok(PinOutcome::PinnedOther { fingerprint }) => refused(ClaimRefusal::PinnedOther {
            instance: quote(&id),
            pinned: fingerprint,
            offered: claim.fingerprint.clone(),
        }),
        Ok(PinOutcome::NotLive) => refused(ClaimRefusal::NotInRegistry {
            instance: quote(&id),
            reason: "it left the live instances while the claim was judged".into(),
        }),
        Err(err) => Judgement::Retry {
            id,
            why: format!("pinning failed: {err}"),
        },
    }
}

/// The instance's row: a minion's, else a master's (a master's own minion claims too).
async fn find(
    clients: &AwsClients,
    config: &PhoenixConfig,
    id: &str,
) -> Result<Option<(Role, InstanceRecord)>> {
    for role in [Role::Minion, Role::Master] {
        if let Some(record) = registry::get(clients, config, role, id).await? {
            return Ok(Some((role, record)));
        }
    }
    Ok(None)
}

/// Why a recorded instance may not enrol, if it may not: it is leaving, or it is not in a
/// group of the cluster's.
fn not_enrollable(config: &PhoenixConfig, role: Role, record: &InstanceRecord) -> Option<String> {
    if !record.state.is_live() {
        return Some(format!("it is {}", record.state.as_str()));
    }
    let groups = match role {
        Role::Master => &config.master_groups,
        Role::Minion => &config.minion_groups,
    };
    match &record.group {
        Some(group) if groups.contains(group) => None,
        Some(group) => Some(format!(
            "its AutoScaling group {} is not one of the cluster's {} groups",
            quote(group),
            role.as_str()
        )),
        None => Some("its row names no AutoScaling group".into()),
    }
}

/// Reports at most [`REFUSALS_REPORTED`] refusals a window.
#[derive(Debug, Default)]
struct RefusalBudget {
    window_start_ms: i64,
    reported: u64,
    suppressed: u64,
}

impl RefusalBudget {
    /// `Some(refusals suppressed since the last report)` when this refusal is reported,
    /// `None` when it is only counted.
    fn spend(&mut self, now_ms: i64) -> Option<u64> {
        if now_ms.saturating_sub(self.window_start_ms) >= REFUSAL_WINDOW_MS {
            self.window_start_ms = now_ms;
            self.reported = 0;
        }
        if self.reported >= REFUSALS_REPORTED {
            self.suppressed += 1;
            return None;
        }
        self.reported += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// A claimed (untrusted) id or group for a log line or a refusal: shortened, escaped.
fn quote(value: &str) -> String {
    quote_within(value, ID_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_refusals_is_reported_a_bounded_number_of_times_a_minute() {
        let mut budget = RefusalBudget::default();
        let start = 1_000_000;
        let reported = (0..1000)
            .filter(|n| budget.spend(start + n).is_some())
            .count();
        assert_eq!(reported as u64, REFUSALS_REPORTED);
        // The next window's first report carries the count of those left out.
        assert_eq!(
            budget.spend(start + REFUSAL_WINDOW_MS),
            Some(1000 - REFUSALS_REPORTED)
        );
        assert_eq!(budget.spend(start + REFUSAL_WINDOW_MS + 1), Some(0));
    }

    #[test]
    fn claimed_ids_are_shortened_and_quoted_for_the_log() {
        let quoted = quote(&format!("i-0\n{}", "x".repeat(500)));
        assert!(!quoted.contains('\n'));
        assert!(quoted.len() < ID_CHARS + 10, "{quoted}");
    }
}
