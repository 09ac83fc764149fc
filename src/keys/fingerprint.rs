//! The fingerprint of a minion's public key, in Salt's own form.
//!
//! Salt fingerprints the *text* of a PEM file, not the DER key inside it: the SHA-256 of the
//! base64 body lines, each with its line break, after dropping blank lines and the
//! `-----BEGIN`/`-----END` armour lines and turning CRLF into LF; printed as lower-case hex
//! pairs joined by `:`. That is what `salt-key -f <id>` prints on Salt 3006 and 3007, what
//! `salt-call key.finger` prints on a minion on every version, and what the `master_finger`
//! minion setting holds.
//!
//! Salt 3008.3's `salt-key -f` is the exception: it reads keys through its key cache and
//! hashes the whole text, armour and final line break included, so the same key prints a
//! different fingerprint depending on whether its file ends with a newline (Salt fixed this
//! after 3008.3; the fixtures record both values for one key). Phoenix pins the body form
//! because a pin must not change when a master rewrites the same key with other line endings
//! or without the final newline, and must agree with what the minion itself reports.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::error::{quote, KeyError};

/// The largest PEM text Phoenix fingerprints. A 16384-bit RSA public key is under 3 KiB; a
/// minion key file above this limit is not a key, and is refused before it is hashed.
pub const MAX_PEM_BYTES: usize = 64 * 1024;

/// Salt's fingerprint (`hash_type: sha256`) of a PEM public key, e.g. `"b0:89:2f:...:1a"`
/// (32 hex pairs).
///
/// `pem` is the whole key file as Salt stores it (in `minions_pre/<id>`, `minions/<id>`, ...).
///
/// # Errors
///
/// [`KeyError`] when the text is larger than [`MAX_PEM_BYTES`], is not one PEM block with a
/// base64 body, or holds something other than a public key (a private key is refused so it can
/// never be pinned into the registry). Salt itself would fingerprint any text; Phoenix only
/// pins real public keys.
pub fn pem_fingerprint(pem: &str) -> Result<String, KeyError> {
    if pem.len() > MAX_PEM_BYTES {
        return Err(KeyError::TooLarge {
            size: pem.len(),
            limit: MAX_PEM_BYTES,
        });
    }
    // Salt reads the file in binary mode and splits it after each b"\n", keeping the break;
    // a line counts as blank when it holds nothing but ASCII whitespace (Python's
    // bytes.strip()).
    let mut lines = pem
        .split_inclusive('\n')
        .filter(|line| !trim_ascii_whitespace(line).is_empty());
    let begin = lines.next().ok_or_else(|| not_pem("the text is empty"))?;
    let label = armour_label(begin, "-----BEGIN ")
        .ok_or_else(|| not_pem("the first line is not a -----BEGIN ...----- line"))?;
    if !label.ends_with("PUBLIC KEY") {
        return Err(KeyError::NotPublicKey {
            label: quote(label),
        });
    }

    let mut hasher = Sha256::new();
    let mut body_lines = 0_usize;
    let mut end = None;
    for line in lines {
        if let Some(previous) = end.replace(line) {
            // Not the last line: part of the body.
            hash_body_line(&mut hasher, previous)?;
            body_lines += 1;
        }
    }
    let end = end.ok_or_else(|| not_pem("there is no -----END ...----- line"))?;
    if armour_label(end, "-----END ") != Some(label) {
        return Err(not_pem(
            "the last line is not the -----END ...----- line of the BEGIN label",
        ));
    }
    if body_lines == 0 {
        return Err(not_pem("the base64 body is empty"));
    }
    Ok(colon_hex(&hasher.finalize()))
}

/// Adds one body line (with its line break) to the hash, as Salt does, after checking that it
/// holds base64 only.
fn hash_body_line(hasher: &mut Sha256, line: &str) -> Result<(), KeyError> {
    let content = trim_ascii_whitespace(line);
    if !content
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return Err(not_pem(
            "a body line holds something other than base64 (an encrypted or malformed key)",
        ));
    }
    // Salt replaces "\r\n" with "\n" in the joined body. A body line always ends with "\n"
    // (a later line follows it), so that is the same as fixing each line's ending here; a
    // lone "\r" elsewhere stays, as it does for Salt.
    match line.strip_suffix("\r\n") {
        Some(text) => {
            hasher.update(text.as_bytes());
            hasher.update(b"\n");
        }
        None => hasher.update(line.as_bytes()),
    }
    Ok(())
}

/// The label of an armour line such as `-----BEGIN PUBLIC KEY-----`, surrounding whitespace
/// ignored.
fn armour_label<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let label = trim_ascii_whitespace(line)
        .strip_prefix(prefix)?
        .strip_suffix("-----")?;
    (!label.is_empty() && !label.contains('-')).then_some(label)
}

/// Python's `bytes.strip()`: space, \t, \n, \r, \x0b and \x0c. (`str::trim` would also strip
/// Unicode spaces, which Salt keeps.)
fn trim_ascii_whitespace(text: &str) -> &str {
    text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'))
}

/// `ab:cd:...`: lower-case hex pairs joined by colons, Salt's format.
fn colon_hex(digest: &[u8]) -> String {
    let mut out = String::with_capacity(digest.len() * 3);
    for (index, byte) in digest.iter().enumerate() {
        if index > 0 {
            out.push(':');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn not_pem(reason: &str) -> KeyError {
    KeyError::NotPem {
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    /// One key of `fixtures/`, with the fingerprints Salt computed for it.
    #[derive(Deserialize)]
    struct Fixture {
        file: String,
        /// `salt.utils.crypt.pem_finger(path)` on Salt 3008.3, the body form.
        pem_finger: String,
        /// What Salt 3008.3's `salt-key -F` printed for the file, where recorded.
        #[serde(default)]
        salt_key_3008_3: Option<String>,
    }

    fn fixtures() -> Vec<(Fixture, String)> {
        let index: Vec<Fixture> =
            serde_json::from_str(include_str!("fixtures/fingerprints.json")).unwrap();
        index
            .into_iter()
            .map(|fixture| {
                let path = format!(
                    "{}/src/keys/fixtures/{}",
                    env!("CARGO_MANIFEST_DIR"),
                    fixture.file
                );
                let pem = std::fs::read_to_string(&path).unwrap();
                (fixture, pem)
            })
            .collect()
    }

    #[test]
    fn matches_salts_own_fingerprints() {
        let all = fixtures();
        assert!(all.len() >= 5);
        for (fixture, pem) in all {
            assert_eq!(
                pem_fingerprint(&pem).unwrap(),
                fixture.pem_finger,
                "{}",
                fixture.file
            );
        }
    }

    #[test]
    fn differs_from_salt_3008_3_salt_key_on_purpose() {
        // Salt 3008.3's salt-key hashes the whole text; the body form is the stable one.
        let recorded: Vec<_> = fixtures()
            .into_iter()
            .filter_map(|(fixture, pem)| fixture.salt_key_3008_3.map(|raw| (raw, pem)))
            .collect();
        assert!(!recorded.is_empty());
        for (raw, pem) in recorded {
            assert_ne!(pem_fingerprint(&pem).unwrap(), raw);
        }
    }

    #[test]
    fn line_endings_and_blank_lines_do_not_change_the_fingerprint() {
        let (_, pem) = fixtures().into_iter().next().unwrap();
        let expected = pem_fingerprint(&pem).unwrap();
        let variants = [
            pem.trim_end().to_owned(),
            format!("{pem}\n\n"),
            format!("\n  \n{pem}"),
            pem.replace('\n', "\r\n"),
            pem.replace('\n', "\n\n"),
            format!("  {}", pem.replacen("-----END", "   -----END", 1)),
        ];
        for variant in variants {
            assert_eq!(pem_fingerprint(&variant).unwrap(), expected, "{variant:?}");
        }
    }

    #[test]
    fn known_value_of_a_tiny_block() {
        // sha256(b"AAAA\n") computed independently with hashlib.
        let pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert_eq!(
            pem_fingerprint(pem).unwrap(),
            "46:77:94:2d:fa:3e:74:b5:de:a7:48:46:61:a2:48:5b:\
             b7:3b:a4:22:eb:72:d3:11:fd:b3:93:72:c0:19:c6:15"
        );
    }

    #[test]
    fn refuses_what_is_not_a_public_key() {
        // (text, whether the refusal is for not being a public key rather than not PEM)
        let cases = [
            ("", false),
            ("\n \n", false),
            ("just text\n", false),
            ("-----BEGIN PUBLIC KEY-----\n", false),
            ("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n", false),
            ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n", false),
            ("-----BEGIN PUBLIC KEY-----\nAA AA\n-----END PUBLIC KEY-----\n", false),
            ("-----BEGIN PUBLIC KEY-----\nAAAA\nPUBLIC KEY-----\n", false),
            (
                "-----BEGIN PUBLIC KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END PUBLIC KEY-----",
                false,
            ),
            ("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", true),
            ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", true),
        ];
        for (pem, not_public) in cases {
            let err = pem_fingerprint(pem).unwrap_err();
            if not_public {
                assert!(
                    matches!(err, KeyError::NotPublicKey { .. }),
                    "{pem:?}: {err}"
                );
            } else {
                assert!(matches!(err, KeyError::NotPem { .. }), "{pem:?}: {err}");
            }
        }
        let huge = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            "A".repeat(MAX_PEM_BYTES)
        );
        assert!(matches!(
            pem_fingerprint(&huge),
            Err(KeyError::TooLarge { .. })
        ));
    }

    #[test]
    fn accepts_the_pkcs1_label_older_keys_use() {
        let pem = "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n";
        assert_eq!(
            pem_fingerprint(pem).unwrap(),
            pem_fingerprint("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").unwrap()
        );
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,200}|(-----BEGIN [A-Z ]{0,12}-----\r?\n)?([A-Za-z0-9+/= \t\r]{0,70}\n){0,5}(-----END [A-Z ]{0,12}-----)?") {
            let _ = pem_fingerprint(&text);
        }

        #[test]
        fn well_formed_blocks_always_fingerprint(body in prop::collection::vec("[A-Za-z0-9+/]{1,64}", 1..12)) {
            let pem = format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", body.join("\n"));
            let finger = pem_fingerprint(&pem).unwrap();
            prop_assert_eq!(finger.len(), 95);
            prop_assert!(finger.split(':').all(|pair| pair.len() == 2
                && pair.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))));
        }
    }
}
