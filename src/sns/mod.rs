//! SNS push delivery: AutoScaling notifications that SNS POSTs to salt-api's webhook,
//! verified before anything acts on them.
//!
//! Two steps, so that a master fetches nothing for a message it would refuse anyway:
//! [`check`] does everything that needs no certificate (shape, type, signature version,
//! topic allowlist, freshness, the certificate and subscribe URLs); the caller fetches the
//! checked certificate URL over TLS; [`verify`] checks the certificate and the signature.
//! A verified Notification is the same SNS envelope that SNS delivers to SQS, so it goes
//! through the engine's own apply path.

pub mod message;
pub mod rejection;
pub mod settings;
pub mod signature;
pub mod urls;

#[cfg(test)]
mod tests;

use serde::Serialize;
use url::Url;

pub use message::{MessageType, SignatureVersion, SnsMessage};
pub use rejection::SnsRejection;
pub use settings::SnsSettings;
use settings::CLOCK_SKEW_MS;
use urls::{check_url, UrlField};

/// A message that passed every check but the signature.
#[derive(Debug, Clone)]
pub struct Checked {
    pub message: SnsMessage,
    pub kind: MessageType,
    pub cert_url: Url,
    /// A confirmation's SubscribeURL, checked like the certificate's.
    pub subscribe_url: Option<Url>,
}

/// A message whose signature verified.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message_id: String,
    pub topic_arn: String,
    pub subscribe_url: Option<String>,
}

/// Everything that can be checked before the certificate is fetched.
pub fn check(body: &str, settings: &SnsSettings, now_ms: i64) -> Result<Checked, SnsRejection> {
    let message = SnsMessage::parse(body)?;
    let kind = message.message_type()?;
    message.signature_version()?;
    if !settings.topics.contains(&message.topic_arn) {
        return Err(SnsRejection::TopicNotAllowed(message.topic_arn.clone()));
    }
    let published = crate::lifecycle::parse_time_ms("Timestamp".into(), &message.timestamp)
        .map_err(|err| SnsRejection::Malformed(err.to_string()))?;
    let age = now_ms - published;
    if age > settings.max_age_ms() || age < -CLOCK_SKEW_MS {
        return Err(SnsRejection::Stale {
            message_id: message.message_id.clone(),
            timestamp: message.timestamp.clone(),
            window: format!(
                "{} s before to {} s after now",
                settings.max_age,
                CLOCK_SKEW_MS / 1000
            ),
        });
    }
    let hosts = settings.host_patterns();
    let cert_url = check_url(UrlField::SigningCertUrl, &message.signing_cert_url, &hosts)?;
    let subscribe_url = match (kind, &message.subscribe_url) {
        (MessageType::Notification, _) => None,
        (_, Some(url)) => Some(check_url(UrlField::SubscribeUrl, url, &hosts)?),
        (_, None) => {
            return Err(SnsRejection::Malformed(format!(
                "{} without SubscribeURL",
                kind.as_str()
            )))
        }
    };
    Ok(Checked {
        message,
        kind,
        cert_url,
        subscribe_url,
    })
}

/// The signature of a checked message against the PEM certificate fetched from its
/// `cert_url`.
pub fn verify(checked: &Checked, cert_pem: &str, now_ms: i64) -> Result<Verified, SnsRejection> {
    let now_secs = u64::try_from(now_ms / 1000).unwrap_or(0);
    let key = signature::certificate_key(cert_pem, now_secs)?;
    signature::verify_signature(&checked.message, &key)?;
    Ok(Verified {
        kind: checked.kind.as_str(),
        message_id: checked.message.message_id.clone(),
        topic_arn: checked.message.topic_arn.clone(),
        subscribe_url: checked.subscribe_url.as_ref().map(Url::to_string),
    })
}
