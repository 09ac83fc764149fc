//! The instance's role, read from a lifecycle hook's `NotificationMetadata`.
//!
//! The metadata is free text the operator chose when creating the hook. Phoenix's own templates
//! put JSON such as `{"role": "master"}` there, but an operator may write just `master`, or
//! anything else for their own tooling. Metadata that says nothing Phoenix understands is
//! therefore not an error: the role is simply unknown and the registry falls back to what it
//! knows about the group.

use serde_json::Value;

use super::Role;

/// Reads the role from the metadata value, if it names one.
///
/// Accepted forms, with the role word matched ignoring ASCII case and surrounding whitespace:
/// - a string holding a JSON object with a string `"role"` member;
/// - a string holding just the role word (`master`, `minion`), bare or as a JSON string;
/// - an object with a `"role"` member (not what AWS sends, but unambiguous).
pub(super) fn role_from_metadata(metadata: &Value) -> Option<Role> {
    let role = match metadata {
        Value::String(text) => role_from_text(text),
        Value::Object(map) => map.get("role").and_then(Value::as_str).and_then(role_word),
        _ => None,
    };
    if role.is_none() {
        log::debug!("NotificationMetadata names no Phoenix role; leaving the role unknown");
    }
    role
}

fn role_from_text(text: &str) -> Option<Role> {
    if let Some(role) = role_word(text) {
        return Some(role);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map.get("role").and_then(Value::as_str).and_then(role_word),
        Ok(Value::String(inner)) => role_word(&inner),
        _ => None,
    }
}

fn role_word(word: &str) -> Option<Role> {
    let word = word.trim();
    if word.eq_ignore_ascii_case("master") {
        Some(Role::Master)
    } else if word.eq_ignore_ascii_case("minion") {
        Some(Role::Minion)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from_text(text: &str) -> Option<Role> {
        role_from_metadata(&Value::String(text.into()))
    }

    #[test]
    fn json_object_with_role() {
        assert_eq!(
            from_text(r#"{"cluster": "prod", "role": "master"}"#),
            Some(Role::Master)
        );
        assert_eq!(from_text(r#"{"role":"minion"}"#), Some(Role::Minion));
        assert_eq!(from_text(r#" {"role": " Minion "} "#), Some(Role::Minion));
    }

    #[test]
    fn bare_words() {
        assert_eq!(from_text("master"), Some(Role::Master));
        assert_eq!(from_text("  MINION\n"), Some(Role::Minion));
        assert_eq!(from_text(r#""master""#), Some(Role::Master));
    }

    #[test]
    fn anything_else_is_unknown_not_an_error() {
        for text in [
            "",
            "masters",
            "salt-master",
            "{",
            r#"{"role": "syndic"}"#,
            r#"{"role": 1}"#,
            r#"{"Role": "master"}"#,
            r#"["master"]"#,
            "null",
            "42",
        ] {
            assert_eq!(from_text(text), None, "{text:?}");
        }
        assert_eq!(role_from_metadata(&json!(7)), None);
        assert_eq!(role_from_metadata(&json!(["master"])), None);
    }

    #[test]
    fn object_value() {
        assert_eq!(
            role_from_metadata(&json!({"role": "master"})),
            Some(Role::Master)
        );
    }
}
