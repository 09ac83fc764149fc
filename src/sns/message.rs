//! The SNS HTTP(S) delivery body and the exact string SNS signs for it.

use serde::Deserialize;

use super::rejection::SnsRejection;

/// What an SNS message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Notification => "Notification",
            MessageType::SubscriptionConfirmation => "SubscriptionConfirmation",
            MessageType::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }
}

/// How the message was signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureVersion {
    /// SHA1withRSA.
    V1,
    /// SHA256withRSA.
    V2,
}

/// An SNS message as SNS POSTs it to an HTTP(S) endpoint. Fields SNS may add later are
/// ignored; every field that is signed is a string.
#[derive(Debug, Clone, Deserialize)]
pub struct SnsMessage {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "MessageId")]
    pub message_id: String,
    #[serde(rename = "TopicArn")]
    pub topic_arn: String,
    #[serde(rename = "Subject", default)]
    pub subject: Option<String>,
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "Timestamp")]
    pub timestamp: String,
    #[serde(rename = "SignatureVersion")]
    pub signature_version: String,
    #[serde(rename = "Signature")]
    pub signature: String,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
    #[serde(rename = "SubscribeURL", default)]
    pub subscribe_url: Option<String>,
    #[serde(rename = "Token", default)]
    pub token: Option<String>,
}

impl SnsMessage {
    /// Reads a body; anything that is not an SNS message with every signed field a string
    /// is [`SnsRejection::Malformed`].
    pub fn parse(body: &str) -> Result<Self, SnsRejection> {
        serde_json::from_str(body).map_err(|err| SnsRejection::Malformed(err.to_string()))
    }

    pub fn message_type(&self) -> Result<MessageType, SnsRejection> {
        match self.kind.as_str() {
            "Notification" => Ok(MessageType::Notification),
            "SubscriptionConfirmation" => Ok(MessageType::SubscriptionConfirmation),
            "UnsubscribeConfirmation" => Ok(MessageType::UnsubscribeConfirmation),
            other => Err(SnsRejection::UnknownType(other.to_owned())),
        }
    }

    pub fn signature_version(&self) -> Result<SignatureVersion, SnsRejection> {
        match self.signature_version.as_str() {
            "1" => Ok(SignatureVersion::V1),
            "2" => Ok(SignatureVersion::V2),
            other => Err(SnsRejection::UnsupportedSignatureVersion(other.to_owned())),
        }
    }

    /// The exact text SNS signed: `name\nvalue\n` for each signed field, in SNS's order.
    /// A Notification's Subject is signed only when the message has one; a confirmation's
    /// SubscribeURL and Token must be there.
    pub fn string_to_sign(&self) -> Result<String, SnsRejection> {
        let fields: Vec<(&str, &str)> = match self.message_type()? {
            MessageType::Notification => {
                let mut fields = vec![("Message", &*self.message), ("MessageId", &self.message_id)];
                if let Some(subject) = &self.subject {
                    fields.push(("Subject", subject));
                }
                fields.extend([
                    ("Timestamp", &*self.timestamp),
                    ("TopicArn", &self.topic_arn),
                    ("Type", &self.kind),
                ]);
                fields
            }
            MessageType::SubscriptionConfirmation | MessageType::UnsubscribeConfirmation => vec![
                ("Message", &*self.message),
                ("MessageId", &self.message_id),
                (
                    "SubscribeURL",
                    self.required(&self.subscribe_url, "SubscribeURL")?,
                ),
                ("Timestamp", &self.timestamp),
                ("Token", self.required(&self.token, "Token")?),
                ("TopicArn", &self.topic_arn),
                ("Type", &self.kind),
            ],
        };
        Ok(fields
            .iter()
            .map(|(name, value)| format!("{name}\n{value}\n"))
            .collect())
    }

    fn required<'a>(&self, value: &'a Option<String>, name: &str) -> Result<&'a str, SnsRejection> {
        value
            .as_deref()
            .ok_or_else(|| SnsRejection::Malformed(format!("{} without {name}", self.kind)))
    }
}
