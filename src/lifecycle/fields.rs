//! Typed reads of fields from one JSON object, each failure naming the field the way an
//! operator would look for it in the message (`Message.EC2InstanceId`, `detail.Time`).

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::error::MessageError;

/// A JSON object plus the path prefix its fields are reported under.
///
/// A `null` value counts as absent: AWS never sends `null` for these fields, and treating it
/// as missing gives the clearer error.
pub(super) struct Fields<'a> {
    map: &'a Map<String, Value>,
    prefix: Cow<'static, str>,
}

impl<'a> Fields<'a> {
    pub(super) fn new(map: &'a Map<String, Value>, prefix: &'static str) -> Self {
        Self {
            map,
            prefix: Cow::Borrowed(prefix),
        }
    }

    /// The full name of `key` for error messages.
    pub(super) fn path(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    pub(super) fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|value| !value.is_null())
    }

    /// A string field that may be absent.
    pub(super) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, MessageError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(MessageError::wrong_type(self.path(key), "a string")),
        }
    }

    /// A string field that must be present.
    pub(super) fn req_str(&self, key: &str) -> Result<&'a str, MessageError> {
        self.opt_str(key)?
            .ok_or_else(|| MessageError::missing(self.path(key)))
    }

    /// A string field that must be present and not empty: a name or a token.
    pub(super) fn req_name(&self, key: &str) -> Result<&'a str, MessageError> {
        let text = self.req_str(key)?;
        if text.is_empty() {
            Err(MessageError::EmptyField {
                field: self.path(key),
            })
        } else {
            Ok(text)
        }
    }

    /// An object field that may be absent.
    pub(super) fn opt_object(&self, key: &str) -> Result<Option<Fields<'a>>, MessageError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Fields {
                map,
                prefix: Cow::Owned(format!("{}{}.", self.prefix, key)),
            })),
            Some(_) => Err(MessageError::wrong_type(self.path(key), "an object")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn reads_and_names_fields_with_their_prefix() {
        let map = object(json!({"a": "x", "n": 1, "z": null, "e": "", "o": {"k": "v"}}));
        let fields = Fields::new(&map, "Message.");
        assert_eq!(fields.req_str("a"), Ok("x"));
        assert_eq!(fields.opt_str("missing"), Ok(None));
        assert_eq!(fields.opt_str("z"), Ok(None));
        assert!(!fields.contains("z"));
        assert_eq!(
            fields.req_str("z"),
            Err(MessageError::missing("Message.z".into()))
        );
        assert_eq!(
            fields.req_str("n"),
            Err(MessageError::wrong_type("Message.n".into(), "a string"))
        );
        assert_eq!(
            fields.req_name("e"),
            Err(MessageError::EmptyField {
                field: "Message.e".into()
            })
        );
        let nested = fields.opt_object("o").unwrap().unwrap();
        assert_eq!(nested.req_str("k"), Ok("v"));
        assert_eq!(nested.path("k"), "Message.o.k");
        assert_eq!(
            fields.opt_object("a").err(),
            Some(MessageError::wrong_type("Message.a".into(), "an object"))
        );
    }
}
