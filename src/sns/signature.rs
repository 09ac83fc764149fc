//! The signature check: the signing certificate's RSA key against the string to sign,
//! SHA1withRSA for SignatureVersion 1, SHA256withRSA for 2.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::PublicKey;
use x509_cert::der::{DecodePem, Encode};
use x509_cert::Certificate;

use super::message::{SignatureVersion, SnsMessage};
use super::rejection::SnsRejection;

/// The RSA key of a PEM certificate that is valid at `now_secs` (Unix seconds).
pub fn certificate_key(cert_pem: &str, now_secs: u64) -> Result<PublicKey, SnsRejection> {
    let bad = |reason: String| SnsRejection::BadCertificate(reason);
    let cert = Certificate::from_pem(cert_pem.as_bytes())
        .map_err(|err| bad(format!("not a PEM certificate ({err})")))?;
    let tbs = cert.tbs_certificate();
    let validity = tbs.validity();
    let not_before = validity.not_before.to_unix_duration().as_secs();
    let not_after = validity.not_after.to_unix_duration().as_secs();
    if now_secs < not_before || now_secs > not_after {
        return Err(bad(format!(
            "valid from {} to {} only",
            validity.not_before, validity.not_after
        )));
    }
    let spki = tbs
        .subject_public_key_info()
        .to_der()
        .map_err(|err| bad(format!("unreadable public key ({err})")))?;
    PublicKey::from_public_key_der(&spki).map_err(|err| bad(format!("not an RSA key ({err})")))
}

/// Checks the message's signature with `key`.
pub fn verify_signature(message: &SnsMessage, key: &PublicKey) -> Result<(), SnsRejection> {
    let bad = || SnsRejection::BadSignature(message.message_id.clone());
    let text = message.string_to_sign()?;
    let raw = STANDARD
        .decode(message.signature.trim())
        .map_err(|_| bad())?;
    let signature = Signature::try_from(raw.as_slice()).map_err(|_| bad())?;
    let verified = match message.signature_version()? {
        SignatureVersion::V1 => {
            VerifyingKey::<sha1::Sha1>::new(key.clone()).verify(text.as_bytes(), &signature)
        }
        SignatureVersion::V2 => {
            VerifyingKey::<sha2::Sha256>::new(key.clone()).verify(text.as_bytes(), &signature)
        }
    };
    verified.map_err(|_| bad())
}
