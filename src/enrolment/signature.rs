//! The signature check: RSASSA-PKCS1-v1_5 with SHA-256 over the document's exact bytes,
//! against the keys of the certificates that serve the document's region.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rsa::pkcs1v15::Signature;

use super::certificates::IdentityCertificate;
use super::refusal::{quote, ClaimRefusal};

/// The signature's bytes from its base64 text. IMDS may break the text into lines, and a
/// claim may carry it with a final line break: ASCII whitespace is dropped, nothing else.
pub(crate) fn decode_signature(text: &str) -> Result<Vec<u8>, ClaimRefusal> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(compact)
        .map_err(|_| ClaimRefusal::SignatureNotBase64)
}

/// The certificate whose key signed exactly `document`, among `certificates` (those of
/// `region`).
pub(crate) fn verify_document<'a>(
    document: &[u8],
    signature: &[u8],
    region: &str,
    certificates: &[&'a IdentityCertificate],
) -> Result<&'a IdentityCertificate, ClaimRefusal> {
    let refused = || ClaimRefusal::BadSignature {
        region: quote(region),
        certificates: certificates
            .iter()
            .map(|certificate| certificate.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    };
    let signature = Signature::try_from(signature).map_err(|_| refused())?;
    certificates
        .iter()
        .copied()
        .find(|certificate| certificate.verifies(document, &signature))
        .ok_or_else(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_lines_and_a_final_break_are_read() {
        let bytes: Vec<u8> = (0..=255).collect();
        let text = STANDARD.encode(&bytes);
        let broken: String = text
            .as_bytes()
            .chunks(64)
            .map(|line| format!("{}\n", std::str::from_utf8(line).unwrap()))
            .collect();
        assert_eq!(decode_signature(&broken).unwrap(), bytes);
        assert_eq!(decode_signature(&format!(" {text}\r\n")).unwrap(), bytes);
    }

    #[test]
    fn what_is_not_base64_is_refused() {
        for text in ["not base64!", "AAA", "-_-_", "AAAA\u{a0}"] {
            assert_eq!(
                decode_signature(text),
                Err(ClaimRefusal::SignatureNotBase64),
                "{text:?}"
            );
        }
    }
}
