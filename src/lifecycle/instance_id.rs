//! The EC2 instance id, checked once at the edge so the rest of Phoenix can trust it.
//!
//! Instance ids double as minion ids, and a minion key is accepted only for an exact id the
//! registry holds. Validating the form here keeps ids with glob characters, whitespace or
//! upper-case variants out of the registry entirely: two spellings of one instance can never
//! both exist.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

/// An EC2 instance id: `i-` followed by 8 (older instances) or 17 lower-case hex digits.
///
/// The id is kept exactly as AWS spells it; nothing is trimmed or case-folded, because ids are
/// matched exactly everywhere else (registry keys, minion keys).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct InstanceId(String);

/// A string that is not an EC2 instance id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not an EC2 instance id (expected i- followed by 8 or 17 lower-case hex digits)"
)]
pub struct InstanceIdError {
    /// The rejected text, shortened if it was long.
    pub value: String,
}

impl InstanceId {
    /// Checks `value` and wraps it.
    ///
    /// # Errors
    ///
    /// [`InstanceIdError`] when `value` is not `i-` followed by 8 or 17 lower-case hex digits.
    pub fn new(value: impl Into<String>) -> Result<Self, InstanceIdError> {
        let value = value.into();
        if is_instance_id(&value) {
            Ok(Self(value))
        } else {
            Err(InstanceIdError {
                value: super::error::shorten(&value),
            })
        }
    }

    /// The id as AWS spells it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Gives the id back as a plain string.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// `^i-([0-9a-f]{8}|[0-9a-f]{17})$`, without pulling in a regex engine.
fn is_instance_id(value: &str) -> bool {
    match value.strip_prefix("i-") {
        Some(hex) => {
            (hex.len() == 8 || hex.len() == 17)
                && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        }
        None => false,
    }
}

impl FromStr for InstanceId {
    type Err = InstanceIdError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::new(value)
    }
}

impl TryFrom<String> for InstanceId {
    type Error = InstanceIdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl TryFrom<&str> for InstanceId {
    type Error = InstanceIdError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<InstanceId> for String {
    fn from(id: InstanceId) -> Self {
        id.0
    }
}

impl AsRef<str> for InstanceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Serialized as the bare id string, the form Salt events and the registry use.
impl Serialize for InstanceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_both_id_lengths() {
        for id in [
            "i-0a1b2c3d",
            "i-0a1b2c3d4e5f60001",
            "i-00000000",
            "i-ffffffffffffffff0",
        ] {
            let parsed: InstanceId = id.parse().unwrap();
            assert_eq!(parsed.as_str(), id);
            assert_eq!(parsed.to_string(), id);
            assert_eq!(parsed.as_ref(), id);
        }
    }

    #[test]
    fn rejects_everything_else() {
        for id in [
            "",
            "i-",
            "i-0a1b2c3",
            "i-0a1b2c3d4",
            "i-0a1b2c3d4e5f6000",
            "i-0a1b2c3d4e5f600011",
            "i-0A1B2C3D4E5F60001",
            "I-0a1b2c3d4e5f60001",
            " i-0a1b2c3d4e5f60001",
            "i-0a1b2c3d4e5f60001 ",
            "i-0a1b2c3d4e5f6000*",
            "i-0a1b2c3g",
            "x-0a1b2c3d",
            "i_0a1b2c3d",
            "i-0a1b2c3d\n",
            "i-ａ1b2c3d4",
        ] {
            let err = id.parse::<InstanceId>().unwrap_err();
            assert_eq!(err.value, id, "{id:?}");
        }
    }

    #[test]
    fn long_rejected_values_are_shortened_in_the_error() {
        let junk = "x".repeat(10_000);
        let err = InstanceId::new(junk).unwrap_err();
        assert!(err.value.len() < 200);
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn serde_uses_the_bare_string_and_validates_on_the_way_in() {
        let id: InstanceId = "i-0a1b2c3d4e5f60001".parse().unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"i-0a1b2c3d4e5f60001\""
        );
        let back: InstanceId = serde_json::from_str("\"i-0a1b2c3d4e5f60001\"").unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<InstanceId>("\"i-nothex00\"").is_err());
        assert!(serde_json::from_str::<InstanceId>("42").is_err());
    }

    #[test]
    fn conversions() {
        let id = InstanceId::try_from("i-0a1b2c3d").unwrap();
        let owned = InstanceId::try_from(String::from("i-0a1b2c3d")).unwrap();
        assert_eq!(id, owned);
        assert_eq!(String::from(id.clone()), "i-0a1b2c3d");
        assert_eq!(id.into_string(), "i-0a1b2c3d");
    }

    proptest! {
        #[test]
        fn valid_ids_round_trip(hex in "[0-9a-f]{8}|[0-9a-f]{17}") {
            let text = format!("i-{hex}");
            let id: InstanceId = text.parse().unwrap();
            prop_assert_eq!(id.as_str(), text.as_str());
        }

        #[test]
        fn arbitrary_text_never_panics_and_agrees_with_the_pattern(text in "\\PC{0,24}|i-[0-9a-fA-F]{0,20}") {
            let bytes = text.as_bytes();
            let expected = bytes.len() >= 2
                && &bytes[..2] == b"i-"
                && (bytes.len() == 10 || bytes.len() == 19)
                && bytes[2..].iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
            prop_assert_eq!(text.parse::<InstanceId>().is_ok(), expected);
        }
    }
}
