//! Quoting master addresses for the drop-in, and reading them back.
//!
//! Everything Phoenix writes is plain ASCII: PyYAML, which Salt uses, rejects a file that
//! contains certain raw characters anywhere, comments included (DEL, C1 controls, U+FFFE...),
//! so every character outside printable ASCII is escaped, in the body and in the header.

use std::fmt::Write as _;

/// `value` as a YAML double-quoted scalar: `"` and `\` escaped, printable ASCII as is,
/// anything else as `\uXXXX` or, beyond the Basic Multilingual Plane, `\UXXXXXXXX` (YAML
/// has no surrogate pairs, PyYAML would decode them as two lone surrogates).
pub(crate) fn yaml_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08X}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// The inverse of [`yaml_quoted`] for exactly the forms it writes; `None` for anything else.
pub(crate) fn yaml_unquoted(quoted: &str) -> Option<String> {
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                'u' => out.push(hex_char(&mut chars, 4)?),
                'U' => out.push(hex_char(&mut chars, 8)?),
                _ => return None,
            },
            // An unescaped quote would have ended the scalar early.
            '"' => return None,
            ' '..='~' => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}

fn hex_char(chars: &mut std::str::Chars<'_>, digits: usize) -> Option<char> {
    let mut code = 0u32;
    for _ in 0..digits {
        code = code * 16 + chars.next()?.to_digit(16)?;
    }
    char::from_u32(code)
}

/// `values` as a one-line JSON array of ASCII-only strings (non-ASCII as `\uXXXX`, with
/// surrogate pairs beyond the Basic Multilingual Plane, as JSON has it).
pub(crate) fn json_ascii_list(values: &[String]) -> String {
    let mut out = String::from("[");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in value.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                ' '..='~' => out.push(c),
                c => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        let _ = write!(out, "\\u{unit:04x}");
                    }
                }
            }
        }
        out.push('"');
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(yaml_quoted("10.0.1.5"), r#""10.0.1.5""#);
        assert_eq!(yaml_quoted(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(yaml_quoted("m\u{e4}ster\u{7f}"), r#""m\u00E4ster\u007F""#);
        assert_eq!(yaml_quoted("\u{1F600}"), r#""\U0001F600""#);
        assert_eq!(
            json_ascii_list(&["\u{1F600}".into(), "x\"".into()]),
            r#"["\ud83d\ude00","x\""]"#
        );
        assert_eq!(json_ascii_list(&[]), "[]");
    }

    #[test]
    fn unquoting_refuses_what_yaml_quoted_never_writes() {
        for bad in [
            "",
            "\"",
            "abc",
            "\"abc",
            "\"a\"b\"",
            "\"\\n\"",
            "\"\\u12\"",
            "\"\\uD800\"",
            "\"\\U00110000\"",
            "\"tab\there\"",
            "\"\u{e4}\"",
        ] {
            assert_eq!(yaml_unquoted(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn yaml_round_trip(value in "\\PC*|.*") {
            let quoted = yaml_quoted(&value);
            prop_assert!(quoted.bytes().all(|b| (b' '..=b'~').contains(&b)));
            prop_assert_eq!(yaml_unquoted(&quoted), Some(value));
        }

        #[test]
        fn json_round_trip(values in proptest::collection::vec("\\PC*|.*", 0..5)) {
            let line = json_ascii_list(&values);
            prop_assert!(line.bytes().all(|b| (b' '..=b'~').contains(&b)));
            let parsed: Vec<String> = serde_json::from_str(&line).map_err(|e| {
                TestCaseError::fail(format!("{line}: {e}"))
            })?;
            prop_assert_eq!(parsed, values);
        }
    }
}
