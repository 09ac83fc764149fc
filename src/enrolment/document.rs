//! The instance identity document: the JSON that IMDS serves at
//! `/latest/dynamic/instance-identity/document`.
//!
//! AWS signs the document's bytes exactly as served, pretty-printed, whitespace included, so
//! the claim carries those bytes and they are only ever read here, never re-serialised.
//! Fields Phoenix checks are required; the others are kept when they are strings and
//! otherwise ignored, so that a genuine document AWS extends or changes is never refused for
//! a field nothing depends on.

use serde::{Deserialize, Deserializer, Serialize};

use super::refusal::{quote, ClaimRefusal};
use super::regions::is_region_name;

/// The fields of an identity document that Phoenix reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityDocument {
    /// The AWS account the instance runs in.
    pub account_id: String,
    /// The instance's id, which is also its minion id.
    pub instance_id: String,
    /// The region the instance runs in.
    pub region: String,
    /// When the instance launched (ISO 8601, UTC, e.g. `2026-11-21T10:00:00Z`).
    pub pending_time: String,
    #[serde(default, deserialize_with = "string_or_none")]
    pub availability_zone: Option<String>,
    #[serde(default, deserialize_with = "string_or_none")]
    pub instance_type: Option<String>,
    #[serde(default, deserialize_with = "string_or_none")]
    pub image_id: Option<String>,
    #[serde(default, deserialize_with = "string_or_none")]
    pub architecture: Option<String>,
    #[serde(default, deserialize_with = "string_or_none")]
    pub private_ip: Option<String>,
    /// The document format's version (`2017-09-30`).
    #[serde(default, deserialize_with = "string_or_none")]
    pub version: Option<String>,
}

impl IdentityDocument {
    /// Reads a document whose signature verified.
    pub fn parse(document: &[u8]) -> Result<Self, ClaimRefusal> {
        expect_object(document)?;
        serde_json::from_slice(document).map_err(|err| ClaimRefusal::malformed(err.to_string()))
    }

    /// When the instance launched, in milliseconds since the epoch (UTC).
    pub fn pending_ms(&self) -> Result<i64, ClaimRefusal> {
        crate::lifecycle::parse_time_ms("pendingTime".into(), &self.pending_time)
            .map_err(|err| ClaimRefusal::malformed(err.to_string()))
    }
}

/// The region a document names, read before its signature is checked, to choose the
/// certificate that checks it. Nothing else of an unverified document is believed.
pub(crate) fn claimed_region(document: &[u8]) -> Result<String, ClaimRefusal> {
    #[derive(Deserialize)]
    struct RegionOnly {
        region: String,
    }
    expect_object(document)?;
    let RegionOnly { region } =
        serde_json::from_slice(document).map_err(|err| ClaimRefusal::malformed(err.to_string()))?;
    if !is_region_name(&region) {
        return Err(ClaimRefusal::malformed(format!(
            "region {} is not an AWS region name",
            quote(&region)
        )));
    }
    Ok(region)
}

/// serde reads a struct from a JSON list too, by position: a document is an object.
fn expect_object(document: &[u8]) -> Result<(), ClaimRefusal> {
    match document.trim_ascii_start().first() {
        Some(b'{') => Ok(()),
        Some(_) => Err(ClaimRefusal::malformed("not a JSON object")),
        None => Err(ClaimRefusal::malformed("empty")),
    }
}

/// A field that is a string in every document seen, kept when it still is.
fn string_or_none<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(text) => Some(text),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document in the layout IMDS serves (the EC2 User Guide's example's values): keys in
    /// order, two-space indent, `" : "` between key and value, no final line break.
    const AWS_EXAMPLE: &str = r#"{
  "accountId" : "123456789012",
  "architecture" : "x86_64",
  "availabilityZone" : "us-west-2b",
  "billingProducts" : null,
  "devpayProductCodes" : null,
  "marketplaceProductCodes" : [ "1abc2defghijklm3nopqrs4tu" ],
  "imageId" : "ami-5fb8c835",
  "instanceId" : "i-1234567890abcdef0",
  "instanceType" : "t2.micro",
  "kernelId" : null,
  "pendingTime" : "2016-11-19T16:32:11Z",
  "privateIp" : "10.158.112.84",
  "ramdiskId" : null,
  "region" : "us-west-2",
  "version" : "2017-09-30"
}"#;

    #[test]
    fn reads_aws_example() {
        let document = IdentityDocument::parse(AWS_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(document.account_id, "123456789012");
        assert_eq!(document.instance_id, "i-1234567890abcdef0");
        assert_eq!(document.region, "us-west-2");
        assert_eq!(document.availability_zone.as_deref(), Some("us-west-2b"));
        assert_eq!(document.private_ip.as_deref(), Some("10.158.112.84"));
        assert_eq!(document.pending_ms(), Ok(1_479_573_131_000));
        assert_eq!(
            claimed_region(AWS_EXAMPLE.as_bytes()),
            Ok("us-west-2".into())
        );
    }

    #[test]
    fn fields_nothing_checks_may_change_shape() {
        let changed = AWS_EXAMPLE
            .replace(r#""10.158.112.84""#, "null")
            .replace(r#""t2.micro""#, r#"{"family": "t2"}"#)
            .replace(r#""kernelId" : null"#, r#""kernelId" : "aki-1""#)
            .replace(r#""version" : "2017-09-30""#, r#""newField" : [1, 2]"#);
        let document = IdentityDocument::parse(changed.as_bytes()).unwrap();
        assert_eq!(document.private_ip, None);
        assert_eq!(document.instance_type, None);
        assert_eq!(document.version, None);
    }

    #[test]
    fn refuses_what_is_not_a_document() {
        for text in [
            "",
            "  ",
            "[\"123456789012\", \"i-1\", \"us-east-1\", \"2016-11-19T16:32:11Z\"]",
            "not json",
            "{\"region\": \"us-east-1\"",
            "{\"accountId\": \"1\", \"instanceId\": \"i-1\", \"region\": \"us-east-1\"}",
            "{\"accountId\": 1, \"instanceId\": \"i-1\", \"region\": \"us-east-1\", \"pendingTime\": \"x\"}",
        ] {
            assert!(
                matches!(
                    IdentityDocument::parse(text.as_bytes()),
                    Err(ClaimRefusal::Malformed { .. })
                ),
                "{text:?}"
            );
        }
        let duplicate = AWS_EXAMPLE.replace(r#""kernelId""#, r#""region""#);
        assert!(IdentityDocument::parse(duplicate.as_bytes()).is_err());
        assert!(claimed_region(duplicate.as_bytes()).is_err());
    }

    #[test]
    fn the_region_read_before_the_signature_must_look_like_one() {
        for region in ["", "US-EAST-1", "us-east-1\n", "../../etc"] {
            let text = format!("{{\"region\": {}}}", serde_json::json!(region));
            assert!(
                matches!(
                    claimed_region(text.as_bytes()),
                    Err(ClaimRefusal::Malformed { .. })
                ),
                "{region:?}"
            );
        }
        assert!(claimed_region(b"{}").is_err());
        assert!(claimed_region(b"{\"region\": 1}").is_err());
    }

    #[test]
    fn a_bad_pending_time_is_malformed() {
        let bad = AWS_EXAMPLE.replace("2016-11-19T16:32:11Z", "yesterday");
        let document = IdentityDocument::parse(bad.as_bytes()).unwrap();
        assert!(matches!(
            document.pending_ms(),
            Err(ClaimRefusal::Malformed { .. })
        ));
    }
}
