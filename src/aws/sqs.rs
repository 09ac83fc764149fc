//! Sending to an SQS queue: an instance's identity claim, a dead letter sent back to the
//! events queue.

use super::{AwsClients, AwsResultExt};
use crate::error::Result;

/// Sends `body` to `queue_url`; the message id SQS gave it.
pub async fn send(clients: &AwsClients, queue_url: &str, body: &str) -> Result<String> {
    let sent = clients
        .sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .send()
        .await
        .aws_context("sqs", "SendMessage")?;
    Ok(sent.message_id.unwrap_or_default())
}
