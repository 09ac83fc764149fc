//! The events queue's dead-letter queue: the engine moves the messages it rejects there at
//! once ([`move_rejected`]); for an operator (`phoenix dlq`), what is in it and why, and
//! moving messages back to the events queue through the engine's own checks.
//!
//! The dead-letter queue is found from the events queue's redrive policy, so nothing more
//! needs configuring. Each message is judged as the engine judges it before any AWS call
//! (`apply::check`): one the engine would apply (or delete as not needed) goes back to the
//! events queue, where the engine makes its remaining checks; one it would reject again
//! stays, with the reason. Listing hides the messages it reads for a moment and then shows
//! them again at once (visibility 0), so a listing leaves the queue as it was.

use aws_sdk_sqs::types::QueueAttributeName;
use serde::Serialize;

use super::apply::{self, Checked};
use super::queue::{self, QueueMessage, BATCH};
use crate::aws::{sqs, AwsClients, AwsResultExt};
use crate::config::PhoenixConfig;
use crate::error::{Error, Result};
use crate::lifecycle;

/// What the engine would make of a dead-lettered message, judged without AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The engine would apply it (after its checks against AWS): a redrive sends it back.
    Applies {
        event: String,
        role: String,
        instance_id: String,
        group: String,
        time_ms: i64,
    },
    /// The engine would delete it without applying it (a test message, a launch without an
    /// instance, an unconfigured group): a redrive sends it back too, and the engine deletes
    /// it with its warning.
    Ignored { reason: String, detail: String },
    /// It can never apply: a redrive leaves it where it is.
    Refused { reason: String, error: String },
}

impl Verdict {
    /// Judges `body` as the engine would, before any AWS call.
    pub fn of(config: &PhoenixConfig, body: &str) -> Self {
        match apply::check(config, lifecycle::parse_message(body)) {
            Checked::Apply(role, event) => Verdict::Applies {
                event: event.kind.to_string(),
                role: role.to_string(),
                instance_id: event.instance_id.as_str().to_owned(),
                group: event.group,
                time_ms: event.time_ms,
            },
            Checked::Test { group, .. } => Verdict::Ignored {
                reason: "test_notification".to_owned(),
                detail: format!(
                    "an AutoScaling test notification from group {}",
                    group.as_deref().unwrap_or("?")
                ),
            },
            Checked::Ignore { reason, detail } => Verdict::Ignored {
                reason: reason.to_owned(),
                detail,
            },
            Checked::Reject { reason, error } => Verdict::Refused {
                reason: reason.to_owned(),
                error,
            },
        }
    }

    /// Whether a redrive sends it back to the events queue.
    pub fn goes_back(&self) -> bool {
        !matches!(self, Verdict::Refused { .. })
    }
}

/// One message of the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub message_id: String,
    /// How often it was received, in the events queue and here.
    pub receive_count: u32,
    pub body: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// A message a redrive could not move, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotMoved {
    pub message_id: String,
    pub error: String,
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Redrive {
    /// The dead-letter queue it read.
    pub dead_letter_queue_url: String,
    /// Sent back to the events queue and deleted here, by message id (in the dead-letter
    /// queue; the events queue gives each a new one).
    pub moved: Vec<String>,
    /// Left here: they can never apply.
    pub kept: Vec<DeadLetter>,
    /// Not moved because a call failed; they stay here.
    pub failed: Vec<NotMoved>,
    /// Judged only, nothing moved (`--dry-run`): `moved` lists what would have been.
    pub dry_run: bool,
}

/// The dead-letter queue of `events_queue_url`, from its redrive policy.
pub async fn dead_letter_queue_url(clients: &AwsClients, events_queue_url: &str) -> Result<String> {
    let attributes = clients
        .sqs
        .get_queue_attributes()
        .queue_url(events_queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .aws_context("sqs", "GetQueueAttributes")?;
    let policy = attributes
        .attributes
        .and_then(|mut all| all.remove(&QueueAttributeName::RedrivePolicy))
        .ok_or_else(|| Error::NotFound {
            what: format!(
                "queue {events_queue_url} has no redrive policy, so no dead-letter queue"
            ),
            code: None,
        })?;
    let target = serde_json::from_str::<serde_json::Value>(&policy)
        .ok()
        .and_then(|policy| {
            policy
                .get("deadLetterTargetArn")?
                .as_str()
                .map(str::to_owned)
        })
        .ok_or_else(|| {
            Error::Internal(format!(
                "a redrive policy without deadLetterTargetArn: {policy}"
            ))
        })?;
    // arn:aws:sqs:<region>:<account>:<name>
    let mut parts = target.rsplitn(3, ':');
    let (Some(name), Some(account)) = (parts.next(), parts.next()) else {
        return Err(Error::Internal(format!("not a queue ARN: {target}")));
    };
    let url = clients
        .sqs
        .get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send()
        .await
        .aws_context("sqs", "GetQueueUrl")?;
    url.queue_url
        .ok_or_else(|| Error::Internal(format!("GetQueueUrl gave no URL for {target}")))
}

/// Up to `max` messages of the dead-letter queue, each with the engine's verdict. They are
/// visible again when this returns.
pub async fn list(
    clients: &AwsClients,
    config: &PhoenixConfig,
    max: usize,
) -> Result<(String, Vec<DeadLetter>)> {
    let dead_letter_queue = dead_letter_queue_url(clients, config.require_queue_url()?).await?;
    let messages = read(clients, &dead_letter_queue, max).await?;
    show_again(
        clients,
        &dead_letter_queue,
        &messages.iter().collect::<Vec<_>>(),
    )
    .await?;
    let letters = messages
        .into_iter()
        .map(|message| dead_letter(config, message))
        .collect();
    Ok((dead_letter_queue, letters))
}

/// Sends every message the engine would not reject back to the events queue (and deletes it
/// here), up to `max` of them; the others stay, visible again. `dry_run`: judge only.
pub async fn redrive(
    clients: &AwsClients,
    config: &PhoenixConfig,
    max: usize,
    dry_run: bool,
) -> Result<Redrive> {
    let events_queue = config.require_queue_url()?;
    let dead_letter_queue = dead_letter_queue_url(clients, events_queue).await?;
    let messages = read(clients, &dead_letter_queue, max).await?;
    let mut report = Redrive {
        dead_letter_queue_url: dead_letter_queue.clone(),
        dry_run,
        ..Redrive::default()
    };
    let mut stay = Vec::new();
    let mut sent = Vec::new();
    for message in &messages {
        let letter = dead_letter(config, message.clone());
        if !letter.verdict.goes_back() {
            log::info!(
                "dead letter {} stays: {:?}",
                letter.message_id,
                letter.verdict
            );
            report.kept.push(letter);
            stay.push(message);
        } else if dry_run {
            report.moved.push(letter.message_id);
            stay.push(message);
        } else {
            match sqs::send(clients, events_queue, &message.body).await {
                Ok(_) => sent.push(message),
                Err(error) => {
                    report.failed.push(NotMoved {
                        message_id: message.message_id.clone(),
                        error: error.to_string(),
                    });
                    stay.push(message);
                }
            }
        }
    }
    if !sent.is_empty() {
        // A copy whose delete failed stays here too: sent twice, it is applied once (every
        // registry write is idempotent) and the next redrive sends it again harmlessly.
        match queue::delete(clients, &dead_letter_queue, &sent).await {
            Ok(deleted) => {
                report.moved.extend(deleted.done);
                report.failed.extend(
                    deleted
                        .failed
                        .into_iter()
                        .map(|(message_id, error)| NotMoved { message_id, error }),
                );
            }
            Err(error) => report.failed.extend(sent.iter().map(|message| NotMoved {
                message_id: message.message_id.clone(),
                error: format!("sent back, but not deleted here: {error}"),
            })),
        }
    }
    show_again(clients, &dead_letter_queue, &stay).await?;
    Ok(report)
}

fn dead_letter(config: &PhoenixConfig, message: QueueMessage) -> DeadLetter {
    DeadLetter {
        verdict: Verdict::of(config, &message.body),
        message_id: message.message_id,
        receive_count: message.receive_count,
        body: message.body,
    }
}

/// What moving rejected messages to the dead-letter queue did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Moved {
    /// In the dead-letter queue and gone from the events queue.
    pub moved: usize,
    /// SQS calls made.
    pub sqs_calls: usize,
}

/// Moves messages the engine rejected (they can never apply) to the dead-letter queue at
/// once: sent there, then deleted from the events queue.
///
/// Left to the events queue's redrive policy, a rejected message would come back for hours
/// (`maxReceiveCount` is sized so that a 6-hour outage dead-letters nothing) before anyone
/// heard of it. Sent by the engine, it is counted in the dead-letter queue's
/// `NumberOfMessagesSent`, which the data stack's `events-rejected` alarm watches: SQS counts
/// there only what is sent to a queue, not what a redrive policy moves into it, so that alarm
/// means "rejected" and the `events-dead-lettered` one means "in the dead-letter queue".
///
/// Nothing is lost on a failure: a message that could not be sent stays in the events queue
/// (its next receive rejects it again, and in the end the redrive policy moves it); one sent
/// but not deleted comes back and is sent again (one copy more in the dead-letter queue).
pub(super) async fn move_rejected(
    clients: &AwsClients,
    events_queue_url: &str,
    messages: &[&QueueMessage],
) -> Moved {
    // Rejections are rare, so the dead-letter queue is looked up each time rather than kept:
    // two calls (GetQueueAttributes for the redrive policy, then GetQueueUrl).
    let mut report = Moved {
        sqs_calls: 2,
        ..Moved::default()
    };
    let dead_letter_queue = match dead_letter_queue_url(clients, events_queue_url).await {
        Ok(url) => url,
        Err(error) => {
            log::warn!(
                "{} rejected message(s) stay in the events queue, for its redrive policy: the \
                 dead-letter queue is not known ({error})",
                messages.len()
            );
            return report;
        }
    };
    let mut sent = Vec::with_capacity(messages.len());
    for message in messages {
        report.sqs_calls += 1;
        match sqs::send(clients, &dead_letter_queue, &message.body).await {
            Ok(_) => sent.push(*message),
            Err(error) => log::warn!(
                "rejected message {} stays in the events queue: sending it to the dead-letter \
                 queue failed ({error})",
                message.message_id
            ),
        }
    }
    if sent.is_empty() {
        return report;
    }
    report.sqs_calls += sent.len().div_ceil(BATCH);
    match queue::delete(clients, events_queue_url, &sent).await {
        Ok(deleted) => {
            for (message_id, why) in &deleted.failed {
                log::warn!(
                    "rejected message {message_id} is in the dead-letter queue but was not \
                     deleted from the events queue ({why}): it comes back and is moved again"
                );
            }
            report.moved = deleted.done.len();
        }
        Err(error) => log::warn!(
            "{} rejected message(s) are in the dead-letter queue but were not deleted from the \
             events queue ({error}): they come back and are moved again",
            sent.len()
        ),
    }
    report
}

/// Receives until the queue gives nothing new or `max` messages are read; each stays hidden
/// (the queue's visibility timeout) until it is shown again or deleted. A message received
/// again (its visibility ran out meanwhile) is kept once, with its newest receipt handle:
/// the one that still works.
async fn read(clients: &AwsClients, queue_url: &str, max: usize) -> Result<Vec<QueueMessage>> {
    let mut messages: Vec<QueueMessage> = Vec::new();
    while messages.len() < max {
        // A one-second long poll asks every SQS server; a short poll may miss messages.
        let batch = queue::receive(clients, queue_url, 1).await?;
        let before = messages.len();
        let mut beyond = Vec::new();
        for message in batch {
            if let Some(known) = messages
                .iter_mut()
                .find(|known| known.message_id == message.message_id)
            {
                *known = message;
            } else if messages.len() < max {
                messages.push(message);
            } else {
                beyond.push(message);
            }
        }
        show_again(clients, queue_url, &beyond.iter().collect::<Vec<_>>()).await?;
        if messages.len() == before {
            break;
        }
    }
    Ok(messages)
}

/// Makes `messages` visible again at once.
async fn show_again(
    clients: &AwsClients,
    queue_url: &str,
    messages: &[&QueueMessage],
) -> Result<()> {
    let now: Vec<(&QueueMessage, i32)> = messages.iter().map(|message| (*message, 0)).collect();
    for chunk in now.chunks(BATCH) {
        let shown = queue::postpone(clients, queue_url, chunk).await?;
        for (message_id, why) in shown.failed {
            log::warn!(
                "dead letter {message_id} stays hidden for the queue's visibility timeout: {why}"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PhoenixConfig {
        PhoenixConfig::from_json(
            r#"{"cluster": "t", "minion_groups": ["phoenix-minions"], "master_groups": ["m"]}"#,
        )
        .unwrap()
    }

    const LAUNCH: &str = include_str!("../lifecycle/fixtures/asg-launch-via-sns.json");
    const TEST: &str = include_str!("../lifecycle/fixtures/asg-test-notification-via-sns.json");

    #[test]
    fn each_message_is_judged_as_the_engine_judges_it() {
        let config = config();
        match Verdict::of(&config, LAUNCH) {
            Verdict::Applies { role, group, .. } => {
                assert_eq!(
                    (role.as_str(), group.as_str()),
                    ("minion", "phoenix-minions")
                );
            }
            other => panic!("a launch of a configured group applies, not {other:?}"),
        }
        let test = Verdict::of(&config, TEST);
        assert!(matches!(&test, Verdict::Ignored { reason, .. } if reason == "test_notification"));
        let elsewhere =
            PhoenixConfig::from_json(r#"{"cluster": "t", "minion_groups": ["x"]}"#).unwrap();
        let unknown = Verdict::of(&elsewhere, LAUNCH);
        assert!(matches!(&unknown, Verdict::Ignored { reason, .. } if reason == "unknown_group"));
        let poison = Verdict::of(&config, "{not json");
        assert!(matches!(&poison, Verdict::Refused { reason, .. } if reason == "not_json"));
        // Only what can never apply stays.
        assert!(
            Verdict::of(&config, LAUNCH).goes_back() && test.goes_back() && unknown.goes_back()
        );
        assert!(!poison.goes_back());
    }
}
