//! `phoenix_salt._core.SnsReceiver`: SNS push messages checked, verified and applied
//! through the engine's own path. Python fetches the certificate (over TLS, from the URL
//! this checked) and confirms subscriptions.

use pyo3::prelude::*;

use super::access::AwsAccess;
use super::config::Config;
use super::convert::to_python;
use super::wait::wait;
use crate::engine::{self, MessageOutcome, QueueMessage};
use crate::error::Error;
use crate::sns;

#[pyclass(frozen, module = "phoenix_salt._core")]
pub struct SnsReceiver {
    access: AwsAccess,
}

#[pymethods]
impl SnsReceiver {
    /// Needs `phoenix.sns.topics`: without an allowlist every message would be refused.
    #[new]
    fn new(config: &Config) -> PyResult<Self> {
        if config.inner.sns.topics.is_empty() {
            return Err(Error::config(
                "phoenix.sns.topics",
                "lists no topic: SNS push delivery is off until it names the topics to accept",
            )
            .into());
        }
        Ok(Self {
            access: AwsAccess::new(config.inner.clone()),
        })
    }

    /// Everything that needs no certificate. Returns {"type", "message_id", "topic_arn",
    /// "cert_url"}; raises MessageError (with `reason`) for a refused message.
    fn check<'py>(&self, py: Python<'py>, body: &str) -> PyResult<Bound<'py, PyAny>> {
        let checked = sns::check(body, &self.access.config.sns, crate::clock::now_ms())
            .map_err(Error::from)?;
        to_python(
            py,
            &serde_json::json!({
                "type": checked.kind.as_str(),
                "message_id": checked.message.message_id,
                "topic_arn": checked.message.topic_arn,
                "cert_url": checked.cert_url.as_str(),
            }),
        )
    }

    /// Checks and verifies `body` against `cert_pem` (fetched from the checked
    /// `cert_url`); a Notification is then applied as the engine applies a queue message.
    /// Returns {"type", "message_id", "topic_arn", "subscribe_url", "outcome", "events"}:
    /// outcome is "done", "retry" (an AWS error: nothing lost, try again) or "rejected"
    /// (verified, but not an AutoScaling message Phoenix can apply), and None for
    /// confirmations.
    fn receive<'py>(
        &self,
        py: Python<'py>,
        body: String,
        cert_pem: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let now = crate::clock::now_ms();
        let checked = sns::check(&body, &self.access.config.sns, now).map_err(Error::from)?;
        let verified = sns::verify(&checked, cert_pem, now).map_err(Error::from)?;
        let (outcome, events) = if checked.kind == sns::MessageType::Notification {
            let clients = self.access.clients(py)?;
            let config = self.access.config.clone();
            let message = QueueMessage {
                message_id: format!("sns:{}", verified.message_id),
                receipt_handle: String::new(),
                body,
                receive_count: 1,
            };
            let outcome = wait(py, async move {
                Ok(engine::apply_message(&clients, &config, &message).await)
            })?;
            match outcome {
                MessageOutcome::Done(events) => (Some("done"), events),
                MessageOutcome::Retry(events) => (Some("retry"), events),
                MessageOutcome::Rejected(event) => (Some("rejected"), vec![event]),
            }
        } else {
            (None, Vec::new())
        };
        to_python(
            py,
            &serde_json::json!({
                "type": verified.kind,
                "message_id": verified.message_id,
                "topic_arn": verified.topic_arn,
                "subscribe_url": verified.subscribe_url,
                "outcome": outcome,
                "events": events,
            }),
        )
    }

    /// `phoenix.sns.ca_bundle`: the CAs trusted for fetching certificates and confirming.
    #[getter]
    fn ca_bundle(&self) -> Option<String> {
        self.access.config.sns.ca_bundle.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "<phoenix_salt SnsReceiver topics={:?}>",
            self.access.config.sns.topics
        )
    }
}
