//! SNS verification against messages signed here with the fixture key
//! (`fixtures/make_fixtures.py` made it and its certificates).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::PrivateKey;
use serde_json::{json, Value};

use super::*;
use crate::config::PhoenixConfig;

const KEY: &str = include_str!("fixtures/signing-key.pem");
const CERT: &str = include_str!("fixtures/signing-cert.pem");
const EXPIRED_CERT: &str = include_str!("fixtures/expired-cert.pem");
const OTHER_CERT: &str = include_str!("fixtures/other-cert.pem");
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:phoenix-prod-asg-events";
const CERT_URL: &str =
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000.pem";
/// 2026-11-21T10:00:01.123Z, the messages' Timestamp.
const PUBLISHED_MS: i64 = 1_795_255_201_123;

fn settings() -> SnsSettings {
    let config = PhoenixConfig::from_json(&format!(
        r#"{{"cluster": "prod", "sns": {{"topics": ["{TOPIC}"]}}}}"#
    ))
    .unwrap();
    config.sns
}

fn private_key() -> PrivateKey {
    let base64: String = KEY
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    PrivateKey::from_pkcs8_der(&STANDARD.decode(base64).unwrap()).unwrap()
}

fn notification(subject: Option<&str>) -> Value {
    let mut message = json!({
        "Type": "Notification",
        "MessageId": "6f0a1a6e-3c1d-5c8e-9f0e-000000000001",
        "TopicArn": TOPIC,
        "Message": "{\"Event\":\"autoscaling:EC2_INSTANCE_LAUNCH\",\"EC2InstanceId\":\"i-0a1b2c3d4e5f60001\"}",
        "Timestamp": "2026-11-21T10:00:01.123Z",
        "SignatureVersion": "2",
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    });
    if let Some(subject) = subject {
        message["Subject"] = json!(subject);
    }
    message
}

fn confirmation() -> Value {
    json!({
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c01f235d0e717736",
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe to the topic. To confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=2336412f",
        "Timestamp": "2026-11-21T10:00:01.123Z",
        "SignatureVersion": "1",
        "SigningCertURL": CERT_URL,
    })
}

/// Signs `message` as SNS does for its SignatureVersion.
fn signed(mut message: Value) -> String {
    let mut unsigned = message.clone();
    unsigned["Signature"] = json!("");
    let parsed: SnsMessage = serde_json::from_value(unsigned).unwrap();
    let text = parsed.string_to_sign().unwrap();
    let key = private_key();
    let signature = match message["SignatureVersion"].as_str().unwrap() {
        "1" => SigningKey::<sha1::Sha1>::new(key)
            .sign(text.as_bytes())
            .to_vec(),
        _ => SigningKey::<sha2::Sha256>::new(key)
            .sign(text.as_bytes())
            .to_vec(),
    };
    message["Signature"] = json!(STANDARD.encode(signature));
    message.to_string()
}

/// Both steps, as a master runs them, with `cert` as what the checked URL served.
fn receive(body: &str, cert: &str, now_ms: i64) -> Result<Verified, SnsRejection> {
    let checked = check(body, &settings(), now_ms)?;
    verify(&checked, cert, now_ms)
}

fn edited(body: &str, field: &str, value: Value) -> String {
    let mut message: Value = serde_json::from_str(body).unwrap();
    message[field] = value;
    message.to_string()
}

#[test]
fn a_v2_notification_verifies() {
    let body = signed(notification(Some(
        "Auto Scaling: launch for group \"phoenix-minions\"",
    )));
    let checked = check(&body, &settings(), PUBLISHED_MS).unwrap();
    assert_eq!(checked.kind, MessageType::Notification);
    assert_eq!(checked.cert_url.as_str(), CERT_URL);
    let verified = verify(&checked, CERT, PUBLISHED_MS).unwrap();
    assert_eq!(verified.kind, "Notification");
    assert_eq!(verified.topic_arn, TOPIC);
    assert_eq!(verified.subscribe_url, None);
}

#[test]
fn a_v1_subscription_confirmation_verifies_and_gives_its_checked_url() {
    let body = signed(confirmation());
    let verified = receive(&body, CERT, PUBLISHED_MS).unwrap();
    assert_eq!(verified.kind, "SubscriptionConfirmation");
    assert_eq!(
        verified.subscribe_url.as_deref(),
        Some("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=2336412f")
    );
}

#[test]
fn a_notification_without_subject_is_signed_without_it() {
    let body = signed(notification(None));
    assert!(receive(&body, CERT, PUBLISHED_MS).is_ok());
    // The signed text has no Subject line; adding one afterwards breaks the signature.
    let with_subject = edited(&body, "Subject", json!("added"));
    assert!(matches!(
        receive(&with_subject, CERT, PUBLISHED_MS),
        Err(SnsRejection::BadSignature(_))
    ));
    // A Subject that was signed cannot be dropped either.
    let body = signed(notification(Some("signed")));
    let mut message: Value = serde_json::from_str(&body).unwrap();
    message.as_object_mut().unwrap().remove("Subject");
    assert!(matches!(
        receive(&message.to_string(), CERT, PUBLISHED_MS),
        Err(SnsRejection::BadSignature(_))
    ));
}

#[test]
fn every_signed_field_is_covered() {
    let body = signed(notification(Some("subject")));
    for field in ["Message", "MessageId", "Subject", "Timestamp"] {
        let mut message: Value = serde_json::from_str(&body).unwrap();
        let value = message[field].as_str().unwrap().to_owned();
        // Same shape, one character different (the Timestamp stays a valid, fresh time).
        let changed = if field == "Timestamp" {
            value.replace(".123Z", ".124Z")
        } else {
            format!("{value}x")
        };
        message[field] = json!(changed);
        assert!(
            matches!(
                receive(&message.to_string(), CERT, PUBLISHED_MS),
                Err(SnsRejection::BadSignature(_))
            ),
            "{field}"
        );
    }
    let body = signed(confirmation());
    for field in ["Token", "SubscribeURL"] {
        let tampered = edited(
            &body,
            field,
            json!(format!(
                "{}0",
                serde_json::from_str::<Value>(&body).unwrap()[field]
                    .as_str()
                    .unwrap()
            )),
        );
        assert!(
            matches!(
                receive(&tampered, CERT, PUBLISHED_MS),
                Err(SnsRejection::BadSignature(_))
            ),
            "{field}"
        );
    }
}

#[test]
fn a_signature_of_one_version_does_not_pass_as_the_other() {
    let body = signed(notification(Some("s")));
    let relabelled = edited(&body, "SignatureVersion", json!("1"));
    assert!(matches!(
        receive(&relabelled, CERT, PUBLISHED_MS),
        Err(SnsRejection::BadSignature(_))
    ));
}

#[test]
fn the_certificate_must_be_the_signers_and_valid_now() {
    let body = signed(notification(Some("s")));
    assert!(matches!(
        receive(&body, OTHER_CERT, PUBLISHED_MS),
        Err(SnsRejection::BadSignature(_))
    ));
    assert!(matches!(
        receive(&body, EXPIRED_CERT, PUBLISHED_MS),
        Err(SnsRejection::BadCertificate(reason)) if reason.contains("valid from")
    ));
    assert!(matches!(
        receive(
            &body,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            PUBLISHED_MS
        ),
        Err(SnsRejection::BadCertificate(_))
    ));
}

#[test]
fn a_wrong_topic_is_refused_before_anything_is_fetched() {
    let body = signed(edited_value(
        notification(None),
        "TopicArn",
        "arn:aws:sns:us-east-1:123456789012:other",
    ));
    let refused = check(&body, &settings(), PUBLISHED_MS).unwrap_err();
    assert_eq!(refused.kind(), "topic_not_allowed");
}

fn edited_value(mut message: Value, field: &str, value: &str) -> Value {
    message[field] = json!(value);
    message
}

#[test]
fn certificate_urls_off_sns_hosts_are_refused() {
    for url in [
        "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/cert.pem",
        "http://sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
        "https://user@sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com/cert.txt",
        "https://sns.us-east-1.amazonaws.com/cert.pem?x=1",
        "https://54.239.0.1/cert.pem",
        "https://sns.x.amazonaws.com/cert.pem",
        "not a url",
    ] {
        let body = signed(edited_value(notification(None), "SigningCertURL", url));
        let refused = check(&body, &settings(), PUBLISHED_MS).unwrap_err();
        assert_eq!(refused.kind(), "url_refused", "{url}");
    }
    // Every partition's SNS host passes.
    for url in [
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem",
        "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-1.pem",
    ] {
        let body = signed(edited_value(notification(None), "SigningCertURL", url));
        assert!(check(&body, &settings(), PUBLISHED_MS).is_ok(), "{url}");
    }
}

#[test]
fn another_port_passes_only_a_pattern_that_names_it() {
    let url = "https://sns.test.invalid:8443/cert.pem";
    let body = signed(edited_value(notification(None), "SigningCertURL", url));
    let mut local = settings();
    local.cert_hosts = vec![r"^sns\.test\.invalid$".to_owned()];
    assert_eq!(
        check(&body, &local, PUBLISHED_MS).unwrap_err().kind(),
        "url_refused"
    );
    local.cert_hosts = vec![r"^sns\.test\.invalid:[0-9]+$".to_owned()];
    assert!(check(&body, &local, PUBLISHED_MS).is_ok());
}

#[test]
fn a_subscribe_url_off_sns_hosts_is_refused() {
    let body = signed(edited_value(
        confirmation(),
        "SubscribeURL",
        "https://evil.example/?Action=ConfirmSubscription",
    ));
    assert_eq!(
        check(&body, &settings(), PUBLISHED_MS).unwrap_err().kind(),
        "url_refused"
    );
}

#[test]
fn only_fresh_messages_are_accepted() {
    let body = signed(notification(None));
    let max_age_ms = settings().max_age_ms();
    assert!(check(&body, &settings(), PUBLISHED_MS + max_age_ms).is_ok());
    assert_eq!(
        check(&body, &settings(), PUBLISHED_MS + max_age_ms + 1)
            .unwrap_err()
            .kind(),
        "stale"
    );
    // Published "in the future": a little is clock drift, a lot is not.
    assert!(check(&body, &settings(), PUBLISHED_MS - 60_000).is_ok());
    assert_eq!(
        check(&body, &settings(), PUBLISHED_MS - 600_000)
            .unwrap_err()
            .kind(),
        "stale"
    );
}

#[test]
fn bad_shapes_are_refused_with_their_kind() {
    let ok = notification(None);
    let cases: Vec<(String, &str)> = vec![
        ("".into(), "malformed"),
        ("not json".into(), "malformed"),
        ("[]".into(), "malformed"),
        (json!({"Type": "Notification"}).to_string(), "malformed"),
        (
            edited(&signed(ok.clone()), "Message", json!({"an": "object"})),
            "malformed",
        ),
        (
            edited(&signed(ok.clone()), "Timestamp", json!("yesterday")),
            "malformed",
        ),
        (
            edited(&signed(ok.clone()), "Type", json!("Surprise")),
            "unknown_type",
        ),
        (
            edited(&signed(ok.clone()), "SignatureVersion", json!("3")),
            "unsupported_signature_version",
        ),
    ];
    for (body, kind) in cases {
        assert_eq!(
            check(&body, &settings(), PUBLISHED_MS).unwrap_err().kind(),
            kind,
            "{body}"
        );
    }
    let mut unconfirmable = confirmation();
    unconfirmable
        .as_object_mut()
        .unwrap()
        .remove("SubscribeURL");
    assert_eq!(
        check(
            &signed_without_check(unconfirmable),
            &settings(),
            PUBLISHED_MS
        )
        .unwrap_err()
        .kind(),
        "malformed"
    );
}

/// A body with a placeholder signature, for shapes that cannot be signed.
fn signed_without_check(mut message: Value) -> String {
    message["Signature"] = json!("AAAA");
    message.to_string()
}

#[test]
fn the_settings_refuse_loose_patterns_and_bad_topics() {
    let read =
        |sns: &str| PhoenixConfig::from_json(&format!(r#"{{"cluster": "t", "sns": {sns}}}"#));
    let error = read(r#"{"cert_hosts": ["sns\\.[a-z0-9-]+\\.amazonaws\\.com"]}"#).unwrap_err();
    assert!(
        error.to_string().contains("phoenix.sns.cert_hosts"),
        "{error}"
    );
    assert!(error.to_string().contains("anchored"), "{error}");
    let error = read(r#"{"topics": ["phoenix-events"]}"#).unwrap_err();
    assert!(error.to_string().contains("phoenix.sns.topics"), "{error}");
    let error = read(r#"{"max_age": 5}"#).unwrap_err();
    assert!(error.to_string().contains("phoenix.sns.max_age"), "{error}");
    let error = read(r#"{"ca_bundle": "certs.pem"}"#).unwrap_err();
    assert!(
        error.to_string().contains("phoenix.sns.ca_bundle"),
        "{error}"
    );
    let defaults = read("{}").unwrap().sns;
    assert!(defaults.topics.is_empty());
    assert_eq!(
        defaults.cert_hosts,
        vec![settings::DEFAULT_CERT_HOST.to_owned()]
    );
    assert_eq!(defaults.max_age, 3600.0);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Any body at all: a verdict, never a panic.
        #[test]
        fn any_body_gets_a_verdict(body in ".{0,400}") {
            let _ = check(&body, &settings(), PUBLISHED_MS);
        }

        /// Any change to the Message of a signed notification is caught.
        #[test]
        fn a_changed_message_never_verifies(message in ".{0,200}") {
            let body = signed(notification(Some("s")));
            let original: Value = serde_json::from_str(&body).unwrap();
            prop_assume!(original["Message"].as_str() != Some(message.as_str()));
            let tampered = edited(&body, "Message", json!(message));
            prop_assert!(matches!(
                receive(&tampered, CERT, PUBLISHED_MS),
                Err(SnsRejection::BadSignature(_))
            ));
        }
    }
}
