//! `phoenix.sns`: SNS push delivery (notifications POSTed to salt-api's webhook).

use regex_lite::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// SNS's own certificate hosts in every AWS partition: `sns.<region>.amazonaws.com`, and
/// `.amazonaws.com.cn` in China.
pub const DEFAULT_CERT_HOST: &str = r"^sns\.[a-zA-Z0-9-]{3,}\.amazonaws\.com(\.cn)?$";
/// SNS retries an HTTP(S) delivery for up to an hour with its longest retry policy.
pub const DEFAULT_MAX_AGE: f64 = 3600.0;
/// A message stamped this far in the future is still accepted (clocks drift).
pub const CLOCK_SKEW_MS: i64 = 300_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnsSettings {
    /// The TopicArns whose messages are acted on (exact ARNs). Empty: SNS push is off.
    pub topics: Vec<String>,
    /// Anchored patterns a SigningCertURL's or SubscribeURL's host must match (`host:port`
    /// when the URL names a port other than 443).
    pub cert_hosts: Vec<String>,
    /// Seconds after its Timestamp that a message is still accepted.
    pub max_age: f64,
    /// PEM bundle of the CAs trusted when fetching certificates and confirming
    /// subscriptions; unset: the system's trust store.
    pub ca_bundle: Option<String>,
}

impl SnsSettings {
    /// The compiled `cert_hosts` (validated when the config was read).
    pub fn host_patterns(&self) -> Vec<Regex> {
        self.cert_hosts
            .iter()
            .filter_map(|pattern| Regex::new(pattern).ok())
            .collect()
    }

    pub fn max_age_ms(&self) -> i64 {
        (self.max_age * 1000.0) as i64
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSnsSettings {
    topics: Option<Vec<String>>,
    cert_hosts: Option<Vec<String>>,
    max_age: Option<f64>,
    ca_bundle: Option<String>,
}

impl RawSnsSettings {
    pub(crate) fn validate(self) -> Result<SnsSettings> {
        let topics = self.topics.unwrap_or_default();
        let arn =
            Regex::new(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
                .map_err(|err| Error::Internal(format!("topic ARN pattern: {err}")))?;
        for topic in &topics {
            if !arn.is_match(topic) {
                return Err(Error::config(
                    "phoenix.sns.topics",
                    format!(
                        "{topic:?} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)"
                    ),
                ));
            }
        }
        let cert_hosts = self
            .cert_hosts
            .unwrap_or_else(|| vec![DEFAULT_CERT_HOST.to_owned()]);
        if cert_hosts.is_empty() {
            return Err(Error::config(
                "phoenix.sns.cert_hosts",
                "must list at least one host pattern",
            ));
        }
        for pattern in &cert_hosts {
            // An unanchored pattern would let `sns.us-east-1.amazonaws.com.evil.example` in.
            if !pattern.starts_with('^') || !pattern.ends_with('$') {
                return Err(Error::config(
                    "phoenix.sns.cert_hosts",
                    format!("{pattern:?} must be anchored: start with ^ and end with $"),
                ));
            }
            Regex::new(pattern).map_err(|err| {
                Error::config("phoenix.sns.cert_hosts", format!("{pattern:?}: {err}"))
            })?;
        }
        let max_age = self.max_age.unwrap_or(DEFAULT_MAX_AGE);
        if !(max_age.is_finite() && (60.0..=86400.0).contains(&max_age)) {
            return Err(Error::config(
                "phoenix.sns.max_age",
                format!("{max_age} is out of range: between 60 and 86400 seconds"),
            ));
        }
        if let Some(path) = &self.ca_bundle {
            if !path.starts_with('/') {
                return Err(Error::config(
                    "phoenix.sns.ca_bundle",
                    format!("{path:?} must be an absolute path"),
                ));
            }
        }
        Ok(SnsSettings {
            topics,
            cert_hosts,
            max_age,
            ca_bundle: self.ca_bundle,
        })
    }
}
