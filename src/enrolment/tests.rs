//! Claims signed here with the fixture keys (`fixtures/make_fixtures.py` made them), checked
//! against the fixture certificate configured as an operator would, and against AWS's own.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::PrivateKey;
use serde_json::json;

use super::*;
use crate::config::PhoenixConfig;

/// The stand-in for AWS's key: 1024 bits like AWS's.
const KEY: &str = include_str!("fixtures/identity-key.pem");
/// A self-signed certificate of [`KEY`] that expired on the day AWS's other-regions one did.
const CERT: &str = include_str!("fixtures/identity-cert.pem");
/// A key that is not AWS's.
const OTHER_KEY: &str = include_str!("fixtures/other-key.pem");

pub(super) const ACCOUNT: &str = "123456789012";
pub(super) const REGION: &str = "us-east-1";
pub(super) const INSTANCE: &str = "i-0a1b2c3d4e5f60001";
pub(super) const LAUNCHED: &str = "2026-11-21T10:00:00Z";
/// [`LAUNCHED`] in milliseconds.
pub(super) const LAUNCHED_MS: i64 = 1_795_255_200_000;
/// A minute after the launch: a first boot's claim.
pub(super) const NOW_MS: i64 = LAUNCHED_MS + 60_000;
const WINDOW_MS: i64 = 900_000;

fn private_key(pem: &str) -> PrivateKey {
    let base64: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    PrivateKey::from_pkcs8_der(&STANDARD.decode(base64).unwrap()).unwrap()
}

/// The base64 RSASSA-PKCS1-v1_5 SHA-256 signature of `document` by `key_pem`, as IMDS serves it.
pub(super) fn sign_with(key_pem: &str, document: &[u8]) -> String {
    let signature = SigningKey::<sha2::Sha256>::new(private_key(key_pem)).sign(document);
    STANDARD.encode(signature.to_vec())
}

pub(super) fn sign(document: &[u8]) -> String {
    sign_with(KEY, document)
}

/// A document in IMDS's layout: keys in order, two-space indent, `" : "`.
pub(super) fn document_of(instance: &str, account: &str, region: &str, pending: &str) -> String {
    format!(
        r#"{{
  "accountId" : "{account}",
  "architecture" : "x86_64",
  "availabilityZone" : "{region}a",
  "billingProducts" : null,
  "devpayProductCodes" : null,
  "marketplaceProductCodes" : null,
  "imageId" : "ami-0abcdef1234567890",
  "instanceId" : "{instance}",
  "instanceType" : "t3.micro",
  "kernelId" : null,
  "pendingTime" : "{pending}",
  "privateIp" : "10.0.1.23",
  "ramdiskId" : null,
  "region" : "{region}",
  "version" : "2017-09-30"
}}"#
    )
}

pub(super) fn document() -> String {
    document_of(INSTANCE, ACCOUNT, REGION, LAUNCHED)
}

/// A claim for [`INSTANCE`] of `document`, signed by the stand-in for AWS.
pub(super) fn claim_of(document: &str) -> IdentityClaim {
    IdentityClaim {
        instance_id: INSTANCE.into(),
        document: document.as_bytes().to_vec(),
        signature: sign(document.as_bytes()),
    }
}

/// AWS's certificates and the fixture certificate, configured for `regions`.
fn certificates_for(regions: &[&str]) -> IdentityCertificates {
    let configured: Vec<_> = regions
        .iter()
        .flat_map(|region| {
            IdentityCertificate::parse_pem(CERT, "lab", Serves::Region((*region).into())).unwrap()
        })
        .collect();
    IdentityCertificates::new(&configured).unwrap()
}

/// The lab's setup: the fixture certificate serves the cluster's region.
pub(super) fn certificates() -> IdentityCertificates {
    certificates_for(&[REGION])
}

pub(super) fn policy() -> EnrolmentPolicy {
    EnrolmentPolicy {
        account_id: ACCOUNT.into(),
        region: REGION.into(),
        window_ms: WINDOW_MS,
    }
}

pub(super) fn verify(claim: &IdentityClaim) -> Result<AttestedInstance, ClaimRefusal> {
    verify_claim(claim, &certificates(), &policy(), NOW_MS)
}

#[test]
fn a_claim_aws_signed_for_this_instance_is_accepted() {
    let attested = verify(&claim_of(&document())).unwrap();
    assert_eq!(attested.document.instance_id, INSTANCE);
    assert_eq!(attested.document.account_id, ACCOUNT);
    assert_eq!(attested.document.region, REGION);
    assert_eq!(attested.document.private_ip.as_deref(), Some("10.0.1.23"));
    assert_eq!(attested.launched_ms, LAUNCHED_MS);
    assert_eq!(attested.certificate, "lab");
}

#[test]
fn an_expired_certificate_still_verifies() {
    // AWS signs with keys whose certificates expired; the fixture's expired too.
    let certificates = certificates();
    let lab = certificates.for_region(REGION).pop().unwrap();
    assert!(lab.not_after.starts_with("2024-06-05"), "{}", lab.not_after);
    assert!(verify(&claim_of(&document())).is_ok());
}

#[test]
fn a_signature_in_lines_with_a_final_break_is_accepted() {
    let mut claim = claim_of(&document());
    let lines: Vec<&str> = claim
        .signature
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap())
        .collect();
    claim.signature = format!("{}\n", lines.join("\n"));
    assert!(verify(&claim).is_ok());
}

#[test]
fn a_document_whose_whitespace_changed_after_signing_is_refused() {
    let signed = claim_of(&document());
    let text = document();
    let reserialised =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&text).unwrap())
            .unwrap();
    let compact =
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&text).unwrap()).unwrap();
    for changed in [
        format!("{text}\n"),
        format!(" {text}"),
        text.replace(" : ", ": "),
        text.replace("  ", "    "),
        text.replace('\n', "\r\n"),
        reserialised,
        compact,
    ] {
        assert_ne!(changed, text);
        // Every variant still parses to the same fields: only the signature tells them apart.
        let fields: serde_json::Value = serde_json::from_str(&changed).unwrap();
        assert_eq!(
            fields,
            serde_json::from_str::<serde_json::Value>(&text).unwrap()
        );
        let claim = IdentityClaim {
            document: changed.into_bytes(),
            ..signed.clone()
        };
        assert!(
            matches!(verify(&claim), Err(ClaimRefusal::BadSignature { .. })),
            "{:?}",
            String::from_utf8_lossy(&claim.document)
        );
    }
}

#[test]
fn a_signature_of_another_key_is_refused() {
    let text = document();
    let claim = IdentityClaim {
        signature: sign_with(OTHER_KEY, text.as_bytes()),
        ..claim_of(&text)
    };
    let refusal = verify(&claim).unwrap_err();
    assert!(
        matches!(&refusal, ClaimRefusal::BadSignature { certificates, .. }
            if certificates == "AWS's other-regions certificate, lab"),
        "{refusal}"
    );
}

#[test]
fn a_signature_of_another_document_is_refused() {
    let other = document_of("i-0a1b2c3d4e5f60002", ACCOUNT, REGION, LAUNCHED);
    let claim = IdentityClaim {
        signature: sign(other.as_bytes()),
        ..claim_of(&document())
    };
    assert!(matches!(
        verify(&claim),
        Err(ClaimRefusal::BadSignature { .. })
    ));
}

#[test]
fn a_document_of_another_instance_is_refused() {
    let other = document_of("i-0a1b2c3d4e5f60002", ACCOUNT, REGION, LAUNCHED);
    assert_eq!(
        verify(&claim_of(&other)),
        Err(ClaimRefusal::WrongInstance {
            claimed: "\"i-0a1b2c3d4e5f60001\"".into(),
            document: "\"i-0a1b2c3d4e5f60002\"".into(),
        })
    );
    // An id that differs only in case or padding is another id.
    for claimed in ["I-0A1B2C3D4E5F60001", " i-0a1b2c3d4e5f60001", ""] {
        let claim = IdentityClaim {
            instance_id: claimed.into(),
            ..claim_of(&document())
        };
        assert!(
            matches!(verify(&claim), Err(ClaimRefusal::WrongInstance { .. })),
            "{claimed:?}"
        );
    }
}

#[test]
fn another_account_is_refused() {
    let other = document_of(INSTANCE, "210987654321", REGION, LAUNCHED);
    let refusal = verify(&claim_of(&other)).unwrap_err();
    assert_eq!(
        refusal,
        ClaimRefusal::WrongAccount {
            expected: ACCOUNT.into(),
            document: "\"210987654321\"".into(),
        }
    );
    assert_eq!(
        refusal.to_string(),
        "the instance is in account \"210987654321\", not in the cluster's account 123456789012"
    );
}

#[test]
fn another_region_is_refused_after_its_signature_verifies() {
    let other = document_of(INSTANCE, ACCOUNT, "eu-west-1", LAUNCHED);
    let certificates = certificates_for(&[REGION, "eu-west-1"]);
    assert_eq!(
        verify_claim(&claim_of(&other), &certificates, &policy(), NOW_MS),
        Err(ClaimRefusal::WrongRegion {
            expected: REGION.into(),
            document: "\"eu-west-1\"".into(),
        })
    );
    // Without a certificate of that region's key, the signature fails first.
    assert!(matches!(
        verify(&claim_of(&other)),
        Err(ClaimRefusal::BadSignature { .. })
    ));
}

#[test]
fn a_region_with_a_key_of_its_own_needs_its_certificate() {
    let jakarta = document_of(INSTANCE, ACCOUNT, "ap-southeast-3", LAUNCHED);
    let refusal = verify(&claim_of(&jakarta)).unwrap_err();
    assert_eq!(
        refusal,
        ClaimRefusal::UnknownRegion {
            region: "\"ap-southeast-3\"".into()
        }
    );
    assert!(refusal
        .to_string()
        .contains("phoenix.keys.identity_certificates"));
    let policy = EnrolmentPolicy {
        region: "ap-southeast-3".into(),
        ..policy()
    };
    let certificates = certificates_for(&["ap-southeast-3"]);
    assert!(verify_claim(&claim_of(&jakarta), &certificates, &policy, NOW_MS).is_ok());
}

#[test]
fn aws_certificates_alone_do_not_verify_the_stand_in_key() {
    let certificates = IdentityCertificates::new(&[]).unwrap();
    let refusal =
        verify_claim(&claim_of(&document()), &certificates, &policy(), NOW_MS).unwrap_err();
    assert_eq!(
        refusal,
        ClaimRefusal::BadSignature {
            region: "\"us-east-1\"".into(),
            certificates: "AWS's other-regions certificate".into(),
        }
    );
}

#[test]
fn the_launch_must_fall_in_the_window() {
    let claim = claim_of(&document());
    let at = |now_ms| verify_claim(&claim, &certificates(), &policy(), now_ms);
    assert!(at(LAUNCHED_MS).is_ok());
    assert!(at(LAUNCHED_MS + WINDOW_MS).is_ok());
    assert_eq!(
        at(LAUNCHED_MS + WINDOW_MS + 1),
        Err(ClaimRefusal::TooOld {
            pending: format!("{LAUNCHED:?}"),
            age_secs: 900,
            window_secs: 900,
        })
    );
    assert!(matches!(
        at(LAUNCHED_MS + 30 * 24 * 3600 * 1000),
        Err(ClaimRefusal::TooOld {
            age_secs: 2_592_000,
            ..
        })
    ));
    // A launch slightly ahead of this master's clock is drift; far ahead, a wrong clock.
    assert!(at(LAUNCHED_MS - CLOCK_SKEW_MS).is_ok());
    assert_eq!(
        at(LAUNCHED_MS - CLOCK_SKEW_MS - 1000),
        Err(ClaimRefusal::PendingInFuture {
            pending: format!("{LAUNCHED:?}"),
            ahead_secs: 301,
            skew_secs: 300,
        })
    );
    // Extreme clocks neither overflow nor accept.
    assert!(at(i64::MAX).is_err());
    assert!(at(i64::MIN).is_err());
}

#[test]
fn a_signed_document_that_is_not_an_identity_document_is_malformed() {
    for text in [
        "not json".to_owned(),
        r#"{"region" : "us-east-1"}"#.to_owned(),
        document().replace(LAUNCHED, "yesterday"),
        document().replace(
            r#""instanceId" : "i-0a1b2c3d4e5f60001""#,
            r#""instanceId" : 7"#,
        ),
        format!("[{}]", document()),
    ] {
        let refusal = verify(&claim_of(&text)).unwrap_err();
        assert!(
            matches!(refusal, ClaimRefusal::Malformed { .. }),
            "{text:?}: {refusal}"
        );
    }
}

#[test]
fn oversized_parts_are_refused_before_they_are_read() {
    let mut claim = claim_of(&document());
    claim.document = vec![b' '; MAX_DOCUMENT_BYTES + 1];
    assert_eq!(
        verify(&claim),
        Err(ClaimRefusal::TooLarge {
            part: "document",
            size: MAX_DOCUMENT_BYTES + 1,
            limit: MAX_DOCUMENT_BYTES,
        })
    );
    let mut claim = claim_of(&document());
    claim.signature = "A".repeat(MAX_SIGNATURE_BYTES + 4);
    assert!(matches!(
        verify(&claim),
        Err(ClaimRefusal::TooLarge {
            part: "signature",
            ..
        })
    ));
}

#[test]
fn a_signature_that_is_not_one_is_refused() {
    let mut claim = claim_of(&document());
    claim.signature = "not base64!".into();
    assert_eq!(verify(&claim), Err(ClaimRefusal::SignatureNotBase64));
    for short in ["", "AAAA"] {
        claim.signature = short.into();
        assert!(
            matches!(verify(&claim), Err(ClaimRefusal::BadSignature { .. })),
            "{short:?}"
        );
    }
}

#[test]
fn a_hostile_claim_cannot_forge_log_lines() {
    let claim = IdentityClaim {
        instance_id: "i-0\n2026-11-21 [salt.master][INFO] accepted".into(),
        ..claim_of(&document())
    };
    let text = verify(&claim).unwrap_err().to_string();
    assert!(!text.contains('\n'), "{text}");
    let region = r#"{"region" : "us-east-1\nforged"}"#;
    let text = verify(&claim_of(region)).unwrap_err().to_string();
    assert!(!text.contains('\n'), "{text}");
}

#[test]
fn the_configured_certificate_and_window_verify_claims() {
    let config = PhoenixConfig::from_json(
        &json!({
            "cluster": "prod",
            "keys": {
                "identity_certificates": {REGION: CERT},
                "enrolment_window": 120,
            },
        })
        .to_string(),
    )
    .unwrap();
    let certificates = IdentityCertificates::new(&config.keys.identity_certificates).unwrap();
    let policy = EnrolmentPolicy {
        window_ms: config.keys.enrolment_window_ms(),
        ..policy()
    };
    let claim = claim_of(&document());
    let attested = verify_claim(&claim, &certificates, &policy, NOW_MS).unwrap();
    assert_eq!(
        attested.certificate,
        "phoenix.keys.identity_certificates.us-east-1"
    );
    assert!(matches!(
        verify_claim(&claim, &certificates, &policy, LAUNCHED_MS + 121_000),
        Err(ClaimRefusal::TooOld {
            window_secs: 120,
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------
// A claim as it travels on the claim queue
// ---------------------------------------------------------------------------------------

const MINION_KEY: &str = include_str!("../keys/fixtures/minion-2048.pub");

#[test]
fn a_claim_message_carries_the_documents_exact_bytes_and_the_key() {
    // Whitespace and a trailing newline are part of what AWS signed: they must survive.
    let document = format!("{}\n", document());
    let signature = sign(document.as_bytes());
    let body = KeyClaim::message(INSTANCE, document.as_bytes(), &signature, MINION_KEY);
    let claim = KeyClaim::parse(&body).unwrap();
    assert_eq!(claim.identity.document, document.as_bytes());
    assert_eq!(claim.identity.signature, signature);
    assert_eq!(claim.identity.instance_id, INSTANCE);
    assert_eq!(claim.public_key, MINION_KEY);
    assert_eq!(
        claim.fingerprint,
        crate::keys::pem_fingerprint(MINION_KEY).unwrap()
    );
    let attested = verify_claim(&claim.identity, &certificates(), &policy(), NOW_MS).unwrap();
    assert_eq!(attested.document.instance_id, INSTANCE);
}

#[test]
fn a_message_that_is_not_a_claim_is_refused_before_anything_is_verified() {
    let document = document();
    let signature = sign(document.as_bytes());
    let good: serde_json::Value = serde_json::from_str(&KeyClaim::message(
        INSTANCE,
        document.as_bytes(),
        &signature,
        MINION_KEY,
    ))
    .unwrap();
    let with = |field: &str, value: serde_json::Value| {
        let mut body = good.clone();
        body[field] = value;
        body.to_string()
    };
    let private_key = KEY;
    for (body, kind) in [
        ("not json".to_owned(), "not_a_claim"),
        ("[]".to_owned(), "not_a_claim"),
        (
            with("format", json!("phoenix-identity-claim/2")),
            "not_a_claim",
        ),
        (with("document", json!("%%% not base64")), "not_a_claim"),
        (with("instance_id", json!(7)), "not_a_claim"),
        (with("extra", json!("field")), "not_a_claim"),
        (with("public_key", json!("not a key")), "bad_public_key"),
        // A private key must never be pinned into the registry.
        (with("public_key", json!(private_key)), "bad_public_key"),
        (
            with("document", json!("A".repeat(MAX_CLAIM_BYTES))),
            "too_large",
        ),
    ] {
        let refusal = KeyClaim::parse(&body).unwrap_err();
        assert_eq!(refusal.kind(), kind, "{refusal}");
        assert!(!refusal.to_string().contains('\n'));
    }
}

#[test]
fn the_engines_own_document_gives_account_and_region_on_its_signature_alone() {
    // Launched long ago: the window is for claims, not for a master's own document.
    let document = document_of(INSTANCE, ACCOUNT, REGION, "2020-01-01T00:00:00Z");
    let (own, certificate) = verify_signed_document(
        document.as_bytes(),
        &sign(document.as_bytes()),
        &certificates(),
    )
    .unwrap();
    assert_eq!(
        (own.account_id.as_str(), own.region.as_str()),
        (ACCOUNT, REGION)
    );
    assert!(!certificate.is_empty());
    let forged = verify_signed_document(
        document.as_bytes(),
        &sign_with(OTHER_KEY, document.as_bytes()),
        &certificates(),
    )
    .unwrap_err();
    assert_eq!(forged.kind(), "bad_signature");
}
