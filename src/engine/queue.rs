//! The SQS queue the lifecycle hooks and notifications feed: long-poll receives and batch
//! deletes that report each entry's outcome.

use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry,
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName,
};

use crate::aws::{AwsClients, AwsResultExt};
use crate::error::{Error, Result};

/// The most messages one ReceiveMessage and one DeleteMessageBatch can carry.
pub const BATCH: usize = 10;
/// The longest long poll SQS allows: an idle engine makes three receives a minute.
pub const LONG_POLL_SECONDS: i32 = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    /// How often SQS has handed this message out, this time included.
    pub receive_count: u32,
}

/// Receives up to [`BATCH`] messages, waiting up to `wait_seconds` for the first one.
pub async fn receive(
    clients: &AwsClients,
    queue_url: &str,
    wait_seconds: i32,
) -> Result<Vec<QueueMessage>> {
    let output = clients
        .sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(BATCH as i32)
        .wait_time_seconds(wait_seconds)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .aws_context("sqs", "ReceiveMessage")?;
    Ok(output
        .messages
        .unwrap_or_default()
        .into_iter()
        .filter_map(|message| {
            let receive_count = message
                .attributes
                .as_ref()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|count| count.parse().ok())
                .unwrap_or(1);
            Some(QueueMessage {
                message_id: message.message_id?,
                receipt_handle: message.receipt_handle?,
                body: message.body.unwrap_or_default(),
                receive_count,
            })
        })
        .collect())
}

/// What a batch call (delete, postpone) did, entry by entry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Message ids the call took.
    pub done: Vec<String>,
    /// (message id, why) for the entries it refused.
    pub failed: Vec<(String, String)>,
}

impl BatchOutcome {
    /// Takes one batch call's answer: the entry ids it carried out and the entries it
    /// refused (an entry's id is its position in `chunk`).
    fn take(
        &mut self,
        chunk: &[&QueueMessage],
        done: impl IntoIterator<Item = String>,
        failed: Vec<BatchResultErrorEntry>,
    ) {
        let message = |id: &str| id.parse::<usize>().ok().and_then(|i| chunk.get(i));
        for id in done {
            if let Some(message) = message(&id) {
                self.done.push(message.message_id.clone());
            }
        }
        for entry in failed {
            if let Some(message) = message(&entry.id) {
                let why = format!("{}: {}", entry.code, entry.message.unwrap_or_default());
                self.failed.push((message.message_id.clone(), why));
            }
        }
    }
}

/// Hides each message for its delay in seconds (ChangeMessageVisibility, in batches of
/// ten), so that a message that failed for a passing reason comes back later, not sooner
/// (`retry.rs`). An entry refused here comes back after the queue's visibility timeout.
pub async fn postpone(
    clients: &AwsClients,
    queue_url: &str,
    messages: &[(&QueueMessage, i32)],
) -> Result<BatchOutcome> {
    let mut outcome = BatchOutcome::default();
    for chunk in messages.chunks(BATCH) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, (message, delay))| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&message.receipt_handle)
                    .visibility_timeout(*delay)
                    .build()
                    .map_err(|err| Error::Internal(format!("building a visibility entry: {err}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let output = clients
            .sqs
            .change_message_visibility_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .aws_context("sqs", "ChangeMessageVisibilityBatch")?;
        let messages: Vec<&QueueMessage> = chunk.iter().map(|(message, _)| *message).collect();
        outcome.take(
            &messages,
            output.successful.into_iter().map(|entry| entry.id),
            output.failed,
        );
    }
    Ok(outcome)
}

/// Deletes `messages` in batches of ten, checking every entry: a batch call can succeed
/// while single entries fail.
pub async fn delete(
    clients: &AwsClients,
    queue_url: &str,
    messages: &[&QueueMessage],
) -> Result<BatchOutcome> {
    let mut outcome = BatchOutcome::default();
    for chunk in messages.chunks(BATCH) {
        // Entry ids only need to be unique in the batch: the position is.
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, message)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&message.receipt_handle)
                    .build()
                    .map_err(|err| Error::Internal(format!("building a delete entry: {err}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let output = clients
            .sqs
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .aws_context("sqs", "DeleteMessageBatch")?;
        outcome.take(
            chunk,
            output.successful.into_iter().map(|entry| entry.id),
            output.failed,
        );
    }
    Ok(outcome)
}
