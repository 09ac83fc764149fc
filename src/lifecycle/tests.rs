//! The sample catalogue (one AWS message per file in `fixtures/`) and every error reason,
//! through the public entry point.

use serde_json::{json, Map, Value};

use super::*;

/// Every sample, by file name. A new sample dropped into `fixtures/` fails
/// `every_fixture_is_in_the_catalogue` until it is added here with its expected value.
pub(super) const SAMPLES: [(&str, &str); 9] = [
    (
        "asg-launch-error-via-sns.json",
        include_str!("fixtures/asg-launch-error-via-sns.json"),
    ),
    (
        "asg-launch-via-sns.json",
        include_str!("fixtures/asg-launch-via-sns.json"),
    ),
    (
        "asg-terminate-via-sns.json",
        include_str!("fixtures/asg-terminate-via-sns.json"),
    ),
    (
        "asg-test-notification-via-sns.json",
        include_str!("fixtures/asg-test-notification-via-sns.json"),
    ),
    (
        "lifecycle-launching-direct.json",
        include_str!("fixtures/lifecycle-launching-direct.json"),
    ),
    (
        "lifecycle-launching-eventbridge.json",
        include_str!("fixtures/lifecycle-launching-eventbridge.json"),
    ),
    (
        "lifecycle-terminating-direct.json",
        include_str!("fixtures/lifecycle-terminating-direct.json"),
    ),
    (
        "lifecycle-terminating-via-sns.json",
        include_str!("fixtures/lifecycle-terminating-via-sns.json"),
    ),
    (
        "lifecycle-test-direct.json",
        include_str!("fixtures/lifecycle-test-direct.json"),
    ),
];

pub(super) fn sample(name: &str) -> &'static str {
    SAMPLES
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, body)| *body)
        .unwrap_or_else(|| panic!("no sample {name}"))
}

/// Where an edit applies: the envelope (the whole body) or the AutoScaling payload inside it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Part {
    Envelope,
    Payload,
}

/// Parses `body`, applies `edit` to the chosen part (re-encoding an SNS `Message` string) and
/// renders the body again. A `Message` that an earlier edit left without a JSON object inside
/// is kept as it is.
pub(super) fn edit(body: &str, part: Part, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut root: Value = serde_json::from_str(body).expect("body is JSON");
    let map = root.as_object_mut().expect("body is an object");
    match part {
        Part::Envelope => edit(map),
        Part::Payload => {
            if let Some(Value::String(message)) = map.get_mut("Message") {
                if let Ok(Value::Object(mut inner)) = serde_json::from_str(message) {
                    edit(&mut inner);
                    *message = Value::Object(inner).to_string();
                }
            } else if let Some(Value::Object(detail)) = map.get_mut("detail") {
                edit(detail);
            } else {
                edit(map);
            }
        }
    }
    root.to_string()
}

fn id(text: &str) -> InstanceId {
    text.parse().expect("test id is valid")
}

fn instance(body: &str) -> InstanceEvent {
    match parse_message(body) {
        Ok(LifecycleMessage::Instance(event)) => event,
        other => panic!("expected an instance event, got {other:?}"),
    }
}

fn error(body: &str) -> MessageError {
    match parse_message(body) {
        Err(err) => err,
        Ok(message) => panic!("expected an error, got {message:?}"),
    }
}

fn expected(name: &str) -> LifecycleMessage {
    let notification = |instance_id: &str, kind, time_ms| {
        LifecycleMessage::Instance(InstanceEvent {
            instance_id: id(instance_id),
            group: "phoenix-minions".into(),
            kind,
            time_ms,
            lifecycle: None,
            metadata_role: None,
            availability_zone: Some("us-east-1a".into()),
            delivery: Delivery::Sns,
        })
    };
    let hook = |instance_id: &str,
                group: &str,
                kind,
                time_ms,
                hook_name: &str,
                token: &str,
                metadata_role,
                delivery| {
        LifecycleMessage::Instance(InstanceEvent {
            instance_id: id(instance_id),
            group: group.into(),
            kind,
            time_ms,
            lifecycle: Some(LifecycleAction {
                hook_name: hook_name.into(),
                token: token.into(),
                group: group.into(),
            }),
            metadata_role,
            availability_zone: None,
            delivery,
        })
    };
    match name {
        "asg-launch-error-via-sns.json" => notification(
            "i-0a1b2c3d4e5f60009",
            EventKind::LaunchFailed,
            1_795_255_200_500,
        ),
        "asg-launch-via-sns.json" => notification(
            "i-0a1b2c3d4e5f60001",
            EventKind::Launched,
            1_795_255_200_500,
        ),
        "asg-terminate-via-sns.json" => notification(
            "i-0a1b2c3d4e5f60001",
            EventKind::Terminated,
            1_795_258_805_000,
        ),
        "asg-test-notification-via-sns.json" => LifecycleMessage::Test {
            group: Some("phoenix-minions".into()),
            delivery: Delivery::Sns,
        },
        "lifecycle-launching-direct.json" => hook(
            "i-0f1e2d3c4b5a60002",
            "phoenix-masters",
            EventKind::Launching,
            1_795_255_500_000,
            "phoenix-launch",
            "3f6e1d2c-0000-4000-8000-00000000c001",
            Some(Role::Master),
            Delivery::Direct,
        ),
        "lifecycle-launching-eventbridge.json" => hook(
            "i-0a1b2c3d4e5f60004",
            "phoenix-minions",
            EventKind::Launching,
            1_795_273_200_000,
            "phoenix-launch",
            "3f6e1d2c-0000-4000-8000-00000000c004",
            Some(Role::Minion),
            Delivery::EventBridge,
        ),
        "lifecycle-terminating-direct.json" => hook(
            "i-0f1e2d3c4b5a60002",
            "phoenix-masters",
            EventKind::Terminating,
            1_795_266_300_000,
            "phoenix-terminate",
            "3f6e1d2c-0000-4000-8000-00000000c002",
            Some(Role::Master),
            Delivery::Direct,
        ),
        "lifecycle-terminating-via-sns.json" => hook(
            "i-0a1b2c3d4e5f60003",
            "phoenix-minions",
            EventKind::Terminating,
            1_795_269_600_000,
            "phoenix-terminate",
            "3f6e1d2c-0000-4000-8000-00000000c003",
            None,
            Delivery::Sns,
        ),
        "lifecycle-test-direct.json" => LifecycleMessage::Test {
            group: Some("phoenix-masters".into()),
            delivery: Delivery::Direct,
        },
        other => panic!("no expected value for {other}"),
    }
}

// ---- the sample catalogue ----

#[test]
fn every_sample_parses_to_its_expected_message() {
    for (name, body) in SAMPLES {
        assert_eq!(parse_message(body), Ok(expected(name)), "{name}");
    }
}

#[test]
fn every_fixture_is_in_the_catalogue() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lifecycle/fixtures");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures folder exists")
        .map(|entry| entry.expect("readable entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = SAMPLES.iter().map(|(name, _)| (*name).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn samples_serialize_as_salt_event_data() {
    let message = parse_message(sample("lifecycle-launching-direct.json")).unwrap();
    assert_eq!(
        serde_json::to_value(&message).unwrap(),
        json!({
            "type": "instance",
            "instance_id": "i-0f1e2d3c4b5a60002",
            "group": "phoenix-masters",
            "kind": "launching",
            "time_ms": 1_795_255_500_000_i64,
            "lifecycle": {
                "hook_name": "phoenix-launch",
                "token": "3f6e1d2c-0000-4000-8000-00000000c001",
                "group": "phoenix-masters",
            },
            "metadata_role": "master",
            "availability_zone": null,
            "delivery": "direct",
        })
    );
    let test = parse_message(sample("lifecycle-launching-eventbridge.json")).unwrap();
    assert_eq!(
        serde_json::to_value(&test).unwrap()["delivery"],
        json!("event_bridge")
    );
    let test = parse_message(sample("asg-test-notification-via-sns.json")).unwrap();
    assert_eq!(
        serde_json::to_value(&test).unwrap(),
        json!({"type": "test", "group": "phoenix-minions", "delivery": "sns"})
    );
    for (_, body) in SAMPLES {
        let message = parse_message(body).unwrap();
        let text = serde_json::to_string(&message).unwrap();
        assert_eq!(
            serde_json::from_str::<LifecycleMessage>(&text).unwrap(),
            message
        );
    }
}

#[test]
fn message_helpers() {
    let test = parse_message(sample("lifecycle-test-direct.json")).unwrap();
    assert!(test.is_test());
    assert_eq!(test.delivery(), Delivery::Direct);
    assert_eq!(test.instance_event(), None);
    let event = parse_message(sample("asg-launch-via-sns.json")).unwrap();
    assert!(!event.is_test());
    assert_eq!(event.delivery(), Delivery::Sns);
    assert_eq!(
        event.instance_event().map(|e| e.kind),
        Some(EventKind::Launched)
    );
}

#[test]
fn event_kind_helpers() {
    use EventKind::*;
    let launch: Vec<_> = EventKind::ALL
        .into_iter()
        .filter(|k| k.is_launch())
        .collect();
    assert_eq!(launch, [Launching, Launched, LaunchFailed]);
    let termination: Vec<_> = EventKind::ALL
        .into_iter()
        .filter(|k| k.is_termination())
        .collect();
    assert_eq!(termination, [Terminating, Terminated, TerminateFailed]);
    let failure: Vec<_> = EventKind::ALL
        .into_iter()
        .filter(|k| k.is_failure())
        .collect();
    assert_eq!(failure, [LaunchFailed, TerminateFailed]);
    let hooks: Vec<_> = EventKind::ALL
        .into_iter()
        .filter(|k| k.is_lifecycle_hook())
        .collect();
    assert_eq!(hooks, [Launching, Terminating]);
    for kind in EventKind::ALL {
        assert_eq!(EventKind::from_aws_event(kind.aws_event()), Some(kind));
        assert_eq!(EventKind::from_detail_type(kind.detail_type()), Some(kind));
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.to_string()));
    }
    assert_eq!(
        EventKind::from_aws_event("autoscaling:TEST_NOTIFICATION"),
        None
    );
    assert_eq!(Role::Master.to_string(), "master");
    assert_eq!(Delivery::EventBridge.to_string(), "event_bridge");
}

// ---- shapes and fallbacks ----

#[test]
fn unknown_extra_fields_are_ignored_everywhere() {
    for (name, body) in SAMPLES {
        let body = edit(body, Part::Envelope, |map| {
            map.insert("ExtraEnvelopeField".into(), json!({"nested": [1, 2, 3]}));
        });
        let body = edit(&body, Part::Payload, |map| {
            map.insert("ExtraPayloadField".into(), json!(["x", null, 1.5]));
            map.insert("Subject".into(), json!(42));
        });
        assert_eq!(parse_message(&body), Ok(expected(name)), "{name}");
    }
}

#[test]
fn sns_timestamp_is_the_fallback_when_the_payload_has_no_time() {
    let body = edit(
        sample("lifecycle-terminating-via-sns.json"),
        Part::Payload,
        |map| {
            map.remove("Time");
        },
    );
    assert_eq!(instance(&body).time_ms, 1_795_255_201_123);
}

#[test]
fn payload_time_wins_over_the_envelope_time() {
    let body = edit(
        sample("lifecycle-launching-eventbridge.json"),
        Part::Payload,
        |map| {
            map.insert("Time".into(), json!("2026-11-21T10:00:00.500Z"));
        },
    );
    assert_eq!(instance(&body).time_ms, 1_795_255_200_500);
}

#[test]
fn subject_is_never_used() {
    // A subject that says "termination" on a launch changes nothing.
    let body = edit(sample("asg-launch-via-sns.json"), Part::Envelope, |map| {
        map.insert(
            "Subject".into(),
            json!("Auto Scaling: termination for group \"phoenix-minions\""),
        );
    });
    assert_eq!(instance(&body).kind, EventKind::Launched);
    let body = edit(sample("asg-launch-via-sns.json"), Part::Envelope, |map| {
        map.remove("Subject");
    });
    assert_eq!(instance(&body).kind, EventKind::Launched);
}

#[test]
fn eventbridge_notifications_are_named_by_detail_type() {
    for kind in [
        EventKind::Launched,
        EventKind::LaunchFailed,
        EventKind::Terminated,
        EventKind::TerminateFailed,
    ] {
        let body = json!({
            "version": "0",
            "id": "c3d4e5f6-0000-4000-8000-00000000d002",
            "detail-type": kind.detail_type(),
            "source": "aws.autoscaling",
            "account": "123456789012",
            "time": "2026-11-21T15:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {
                "StatusCode": "InProgress",
                "AutoScalingGroupName": "phoenix-minions",
                "Details": {"Availability Zone": "us-east-1b", "Subnet ID": "subnet-1"},
                "EC2InstanceId": "i-0a1b2c3d4e5f60005",
                "StartTime": "2026-11-21T14:59:00.000Z",
                "EndTime": "2026-11-21T15:00:00.000Z",
            }
        });
        let event = instance(&body.to_string());
        assert_eq!(event.kind, kind);
        assert_eq!(event.delivery, Delivery::EventBridge);
        assert_eq!(event.availability_zone.as_deref(), Some("us-east-1b"));
        assert_eq!(event.lifecycle, None);
        assert_eq!(event.time_ms, 1_795_273_200_000);
    }
}

#[test]
fn test_messages_in_every_shape() {
    let eventbridge = json!({
        "detail-type": "EC2 Instance Launch Successful",
        "source": "aws.autoscaling",
        "time": "2026-11-21T15:00:00Z",
        "detail": {"Event": "autoscaling:TEST_NOTIFICATION", "AutoScalingGroupName": "g"}
    });
    assert_eq!(
        parse_message(&eventbridge.to_string()),
        Ok(LifecycleMessage::Test {
            group: Some("g".into()),
            delivery: Delivery::EventBridge
        })
    );
    // A lifecycle-style test (transition field), without a group, and with a malformed one.
    let direct = json!({"LifecycleTransition": "autoscaling:TEST_NOTIFICATION"});
    assert_eq!(
        parse_message(&direct.to_string()),
        Ok(LifecycleMessage::Test {
            group: None,
            delivery: Delivery::Direct
        })
    );
    let odd_group = json!({"Event": "autoscaling:TEST_NOTIFICATION", "AutoScalingGroupName": 7});
    assert_eq!(
        parse_message(&odd_group.to_string()),
        Ok(LifecycleMessage::Test {
            group: None,
            delivery: Delivery::Direct
        })
    );
    // Raw SNS delivery: the test payload arrives bare.
    let message = serde_json::from_str::<Value>(sample("asg-test-notification-via-sns.json"))
        .unwrap()["Message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        parse_message(&message),
        Ok(LifecycleMessage::Test {
            group: Some("phoenix-minions".into()),
            delivery: Delivery::Direct
        })
    );
}

#[test]
fn raw_sns_delivery_of_a_notification_is_direct() {
    let message = serde_json::from_str::<Value>(sample("asg-launch-via-sns.json")).unwrap()
        ["Message"]
        .as_str()
        .unwrap()
        .to_owned();
    let event = instance(&message);
    assert_eq!(event.delivery, Delivery::Direct);
    assert_eq!(event.kind, EventKind::Launched);
}

#[test]
fn metadata_without_a_role_is_not_an_error() {
    for metadata in [
        json!("prod cluster"),
        json!("{broken"),
        json!(17),
        json!(""),
    ] {
        let body = edit(
            sample("lifecycle-launching-direct.json"),
            Part::Payload,
            |map| {
                map.insert("NotificationMetadata".into(), metadata.clone());
            },
        );
        assert_eq!(instance(&body).metadata_role, None, "{metadata}");
    }
    let body = edit(
        sample("lifecycle-launching-direct.json"),
        Part::Payload,
        |map| {
            map.insert("NotificationMetadata".into(), json!("minion"));
        },
    );
    assert_eq!(instance(&body).metadata_role, Some(Role::Minion));
}

#[test]
fn null_fields_count_as_absent() {
    let body = edit(
        sample("lifecycle-terminating-via-sns.json"),
        Part::Payload,
        |map| {
            map.insert("Time".into(), Value::Null);
            map.insert("NotificationMetadata".into(), Value::Null);
            map.insert("Details".into(), Value::Null);
        },
    );
    let event = instance(&body);
    assert_eq!(event.time_ms, 1_795_255_201_123);
    assert_eq!(event.availability_zone, None);
}

#[test]
fn body_at_the_size_limit_is_parsed() {
    let body = sample("lifecycle-launching-direct.json");
    let padded = format!("{body}{}", " ".repeat(MAX_BODY_BYTES - body.len()));
    assert_eq!(padded.len(), MAX_BODY_BYTES);
    assert_eq!(
        parse_message(&padded),
        Ok(expected("lifecycle-launching-direct.json"))
    );
}

#[test]
fn byte_order_mark_is_ignored() {
    let body = format!("\u{feff}{}", sample("lifecycle-test-direct.json"));
    assert_eq!(
        parse_message(&body),
        Ok(expected("lifecycle-test-direct.json"))
    );
}

// ---- every error reason ----

#[test]
fn empty_body() {
    for body in ["", " ", "\n\t\r ", "\u{feff}", "\u{feff}  "] {
        assert_eq!(error(body), MessageError::EmptyBody, "{body:?}");
    }
}

#[test]
fn too_large_without_parsing() {
    // Not even JSON: the size is checked first.
    let body = "x".repeat(MAX_BODY_BYTES + 1);
    assert_eq!(
        error(&body),
        MessageError::TooLarge {
            size: MAX_BODY_BYTES + 1,
            limit: MAX_BODY_BYTES
        }
    );
    let sample_body = sample("lifecycle-launching-direct.json");
    let padded = format!(
        "{sample_body}{}",
        " ".repeat(MAX_BODY_BYTES + 1 - sample_body.len())
    );
    assert!(matches!(error(&padded), MessageError::TooLarge { .. }));
}

#[test]
fn not_json() {
    for body in [
        "{",
        "hello",
        "{\"a\": 1} trailing",
        "\u{a0}",
        "{'single': 'quotes'}",
    ] {
        assert!(
            matches!(error(body), MessageError::NotJson { .. }),
            "{body:?}"
        );
    }
}

#[test]
fn sns_message_not_json() {
    let body = edit(sample("asg-launch-via-sns.json"), Part::Envelope, |map| {
        map.insert("Message".into(), json!("Launching a new EC2 instance"));
    });
    assert!(matches!(
        error(&body),
        MessageError::EmbeddedNotJson { field, .. } if field == "Message"
    ));
}

#[test]
fn unknown_shape() {
    for body in [
        "[]",
        "42",
        "\"text\"",
        "null",
        "{}",
        r#"{"foo": 1}"#,
        r#"{"Type": "Notification", "Message": "{}"}"#,
        r#"{"Records": [{"eventSource": "aws:s3"}]}"#,
    ] {
        assert_eq!(error(body), MessageError::UnknownShape, "{body}");
    }
}

#[test]
fn unexpected_sns_type() {
    let body = edit(sample("asg-launch-via-sns.json"), Part::Envelope, |map| {
        map.insert("Type".into(), json!("SubscriptionConfirmation"));
    });
    assert_eq!(
        error(&body),
        MessageError::UnexpectedSnsType {
            value: "\"SubscriptionConfirmation\"".into()
        }
    );
}

#[test]
fn unexpected_source() {
    let body = edit(
        sample("lifecycle-launching-eventbridge.json"),
        Part::Envelope,
        |map| {
            map.insert("source".into(), json!("aws.ec2"));
        },
    );
    assert_eq!(
        error(&body),
        MessageError::UnexpectedSource {
            value: "\"aws.ec2\"".into()
        }
    );
}

#[test]
fn missing_fields_are_named_with_their_envelope_prefix() {
    let cases = [
        (
            "lifecycle-launching-direct.json",
            "EC2InstanceId",
            "EC2InstanceId",
        ),
        (
            "lifecycle-launching-direct.json",
            "AutoScalingGroupName",
            "AutoScalingGroupName",
        ),
        (
            "lifecycle-launching-direct.json",
            "LifecycleHookName",
            "LifecycleHookName",
        ),
        (
            "lifecycle-launching-direct.json",
            "LifecycleActionToken",
            "LifecycleActionToken",
        ),
        ("lifecycle-launching-direct.json", "Time", "Time"),
        (
            "lifecycle-terminating-via-sns.json",
            "EC2InstanceId",
            "Message.EC2InstanceId",
        ),
        (
            "lifecycle-terminating-via-sns.json",
            "LifecycleActionToken",
            "Message.LifecycleActionToken",
        ),
        ("asg-launch-via-sns.json", "Event", "Message.Event"),
        (
            "asg-terminate-via-sns.json",
            "AutoScalingGroupName",
            "Message.AutoScalingGroupName",
        ),
        (
            "lifecycle-launching-eventbridge.json",
            "EC2InstanceId",
            "detail.EC2InstanceId",
        ),
        (
            "lifecycle-launching-eventbridge.json",
            "LifecycleHookName",
            "detail.LifecycleHookName",
        ),
    ];
    for (name, removed, reported) in cases {
        let body = edit(sample(name), Part::Payload, |map| {
            map.remove(removed);
        });
        assert_eq!(
            error(&body),
            MessageError::MissingField {
                field: reported.into()
            },
            "{name} without {removed}"
        );
    }
}

#[test]
fn missing_envelope_fields() {
    let cases = [
        ("asg-launch-via-sns.json", "Message", "Message"),
        ("lifecycle-launching-eventbridge.json", "detail", "detail"),
        ("lifecycle-launching-eventbridge.json", "source", "source"),
        ("lifecycle-launching-eventbridge.json", "time", "time"),
    ];
    for (name, removed, reported) in cases {
        let body = edit(sample(name), Part::Envelope, |map| {
            map.remove(removed);
        });
        assert_eq!(
            error(&body),
            MessageError::MissingField {
                field: reported.into()
            },
            "{name} without {removed}"
        );
    }
    // No time anywhere in an SNS message.
    let body = edit(sample("asg-launch-via-sns.json"), Part::Payload, |map| {
        map.remove("Time");
    });
    let body = edit(&body, Part::Envelope, |map| {
        map.remove("Timestamp");
    });
    assert_eq!(
        error(&body),
        MessageError::MissingField {
            field: "Timestamp".into()
        }
    );
}

#[test]
fn wrong_types() {
    let cases = [
        (
            "lifecycle-launching-direct.json",
            Part::Payload,
            "EC2InstanceId",
            json!(12345),
            "EC2InstanceId",
            "a string",
        ),
        (
            "lifecycle-launching-direct.json",
            Part::Payload,
            "Time",
            json!(1_795_255_500_000_i64),
            "Time",
            "a string",
        ),
        (
            "lifecycle-launching-direct.json",
            Part::Payload,
            "LifecycleTransition",
            json!(["x"]),
            "LifecycleTransition",
            "a string",
        ),
        (
            "lifecycle-launching-direct.json",
            Part::Payload,
            "LifecycleActionToken",
            json!({}),
            "LifecycleActionToken",
            "a string",
        ),
        (
            "asg-launch-via-sns.json",
            Part::Payload,
            "Event",
            json!(true),
            "Message.Event",
            "a string",
        ),
        (
            "asg-launch-via-sns.json",
            Part::Payload,
            "Details",
            json!("us-east-1a"),
            "Message.Details",
            "an object",
        ),
        (
            "asg-launch-via-sns.json",
            Part::Payload,
            "Details",
            json!({"Availability Zone": 1}),
            "Message.Details.Availability Zone",
            "a string",
        ),
        (
            "asg-launch-via-sns.json",
            Part::Envelope,
            "Message",
            json!({"Event": "x"}),
            "Message",
            "a string",
        ),
        (
            "asg-launch-via-sns.json",
            Part::Envelope,
            "Message",
            json!("[1, 2]"),
            "Message",
            "a string holding a JSON object",
        ),
        (
            "asg-launch-via-sns.json",
            Part::Envelope,
            "Type",
            json!(1),
            "Type",
            "a string",
        ),
        (
            "lifecycle-launching-eventbridge.json",
            Part::Envelope,
            "detail",
            json!([]),
            "detail",
            "an object",
        ),
        (
            "lifecycle-launching-eventbridge.json",
            Part::Envelope,
            "time",
            json!(0),
            "time",
            "a string",
        ),
        (
            "lifecycle-launching-eventbridge.json",
            Part::Envelope,
            "detail-type",
            json!(0),
            "detail-type",
            "a string",
        ),
        (
            "lifecycle-launching-eventbridge.json",
            Part::Payload,
            "AutoScalingGroupName",
            json!(["g"]),
            "detail.AutoScalingGroupName",
            "a string",
        ),
    ];
    for (name, part, key, value, field, expected) in cases {
        let body = edit(sample(name), part, |map| {
            map.insert(key.into(), value.clone());
        });
        assert_eq!(
            error(&body),
            MessageError::WrongType {
                field: field.into(),
                expected
            },
            "{name}: {key} = {value}"
        );
    }
    // The SNS timestamp only matters when the payload has no time.
    let body = edit(sample("asg-launch-via-sns.json"), Part::Envelope, |map| {
        map.insert("Timestamp".into(), json!(5));
    });
    assert!(parse_message(&body).is_ok());
}

#[test]
fn empty_names() {
    for key in [
        "AutoScalingGroupName",
        "LifecycleHookName",
        "LifecycleActionToken",
    ] {
        let body = edit(
            sample("lifecycle-terminating-direct.json"),
            Part::Payload,
            |map| {
                map.insert(key.into(), json!(""));
            },
        );
        assert_eq!(error(&body), MessageError::EmptyField { field: key.into() });
    }
}

#[test]
fn invalid_instance_id() {
    for bad in [
        "i-0A1B2C3D4E5F60001",
        "i-123",
        "",
        "i-0a1b2c3d4e5f60001*",
        "mi-0a1b2c3d",
    ] {
        let body = edit(sample("asg-launch-via-sns.json"), Part::Payload, |map| {
            map.insert("EC2InstanceId".into(), json!(bad));
        });
        assert_eq!(
            error(&body),
            MessageError::InvalidInstanceId {
                value: format!("{bad:?}")
            }
        );
    }
}

#[test]
fn a_launch_error_without_an_instance_is_a_failed_launch() {
    // AWS's launch error when EC2 refused the launch: no instance, its id empty.
    let body = edit(
        sample("asg-launch-error-via-sns.json"),
        Part::Payload,
        |map| {
            map.insert("EC2InstanceId".into(), json!(""));
            map.insert(
                "StatusMessage".into(),
                json!("We currently do not have sufficient t3.small capacity"),
            );
        },
    );
    let parsed = parse_message(&body).expect("a failed launch parses");
    assert_eq!(
        parsed,
        LifecycleMessage::FailedLaunch {
            group: "phoenix-minions".into(),
            reason: Some("We currently do not have sufficient t3.small capacity".into()),
            delivery: Delivery::Sns,
        }
    );
    assert_eq!(parsed.instance_event(), None);
    assert_eq!(parsed.delivery(), Delivery::Sns);
    // Without a StatusMessage it is still a failed launch; it still needs its group.
    let bare = edit(
        sample("asg-launch-error-via-sns.json"),
        Part::Payload,
        |map| {
            map.insert("EC2InstanceId".into(), json!(""));
            map.remove("StatusMessage");
        },
    );
    assert!(matches!(
        parse_message(&bare),
        Ok(LifecycleMessage::FailedLaunch { reason: None, .. })
    ));
    let no_group = edit(
        sample("asg-launch-error-via-sns.json"),
        Part::Payload,
        |map| {
            map.insert("EC2InstanceId".into(), json!(""));
            map.remove("AutoScalingGroupName");
        },
    );
    assert_eq!(
        error(&no_group),
        MessageError::missing("Message.AutoScalingGroupName".into())
    );
    // The same in EventBridge's shape.
    let eventbridge = json!({
        "detail-type": EventKind::LaunchFailed.detail_type(),
        "source": "aws.autoscaling",
        "time": "2026-11-21T15:00:00Z",
        "detail": {"AutoScalingGroupName": "phoenix-minions", "EC2InstanceId": ""}
    });
    assert!(matches!(
        parse_message(&eventbridge.to_string()),
        Ok(LifecycleMessage::FailedLaunch {
            delivery: Delivery::EventBridge,
            ..
        })
    ));
    // Only a launch error may name no instance: any other event with an empty id is refused.
    for name in ["asg-launch-via-sns.json", "asg-terminate-via-sns.json"] {
        let body = edit(sample(name), Part::Payload, |map| {
            map.insert("EC2InstanceId".into(), json!(""));
        });
        assert_eq!(
            error(&body),
            MessageError::InvalidInstanceId {
                value: "\"\"".into()
            },
            "{name}"
        );
    }
    // A launch error whose id is missing altogether is refused, not taken for a failed launch.
    let missing = edit(
        sample("asg-launch-error-via-sns.json"),
        Part::Payload,
        |map| {
            map.remove("EC2InstanceId");
        },
    );
    assert_eq!(
        error(&missing),
        MessageError::missing("Message.EC2InstanceId".into())
    );
}

#[test]
fn invalid_time() {
    let body = edit(sample("asg-launch-via-sns.json"), Part::Payload, |map| {
        map.insert("Time".into(), json!("21/11/2026 10:00"));
    });
    // The SNS Timestamp is valid, but a broken payload time is not papered over.
    assert_eq!(
        error(&body),
        MessageError::InvalidTime {
            field: "Message.Time".into(),
            value: "\"21/11/2026 10:00\"".into()
        }
    );
    let body = edit(
        sample("lifecycle-launching-eventbridge.json"),
        Part::Envelope,
        |map| {
            map.insert("time".into(), json!("2026-11-21T15:00:00"));
        },
    );
    assert_eq!(
        error(&body),
        MessageError::InvalidTime {
            field: "time".into(),
            value: "\"2026-11-21T15:00:00\"".into()
        }
    );
    let body = edit(
        sample("lifecycle-terminating-via-sns.json"),
        Part::Payload,
        |map| {
            map.remove("Time");
        },
    );
    let body = edit(&body, Part::Envelope, |map| {
        map.insert("Timestamp".into(), json!("soon"));
    });
    assert_eq!(
        error(&body),
        MessageError::InvalidTime {
            field: "Timestamp".into(),
            value: "\"soon\"".into()
        }
    );
}

#[test]
fn unknown_event() {
    let body = edit(sample("asg-launch-via-sns.json"), Part::Payload, |map| {
        map.insert("Event".into(), json!("autoscaling:EC2_INSTANCE_REBOOT"));
    });
    assert_eq!(
        error(&body),
        MessageError::UnknownEvent {
            value: "\"autoscaling:EC2_INSTANCE_REBOOT\"".into()
        }
    );
    let body = edit(
        sample("lifecycle-launching-direct.json"),
        Part::Payload,
        |map| {
            map.insert(
                "LifecycleTransition".into(),
                json!("autoscaling:EC2_INSTANCE_LAUNCHING "),
            );
        },
    );
    assert!(matches!(error(&body), MessageError::UnknownEvent { .. }));
    let refresh = json!({
        "detail-type": "EC2 Auto Scaling Instance Refresh Started",
        "source": "aws.autoscaling",
        "time": "2026-11-21T15:00:00Z",
        "detail": {"InstanceRefreshId": "x", "AutoScalingGroupName": "g"}
    });
    assert_eq!(
        error(&refresh.to_string()),
        MessageError::UnknownEvent {
            value: "\"EC2 Auto Scaling Instance Refresh Started\"".into()
        }
    );
}

#[test]
fn hook_fields_are_required_whichever_field_names_the_hook() {
    // A hook transition in `Event` still needs its token.
    let body = json!({
        "Event": "autoscaling:EC2_INSTANCE_LAUNCHING",
        "EC2InstanceId": "i-0a1b2c3d",
        "AutoScalingGroupName": "g",
        "LifecycleHookName": "h",
        "Time": "2026-11-21T15:00:00Z"
    });
    assert_eq!(
        error(&body.to_string()),
        MessageError::MissingField {
            field: "LifecycleActionToken".into()
        }
    );
}

#[test]
fn transition_wins_over_event() {
    let body = edit(
        sample("lifecycle-terminating-direct.json"),
        Part::Payload,
        |map| {
            map.insert("Event".into(), json!("autoscaling:EC2_INSTANCE_LAUNCH"));
        },
    );
    let event = instance(&body);
    assert_eq!(event.kind, EventKind::Terminating);
    assert!(event.lifecycle.is_some());
}

#[test]
fn errors_display_on_one_line_even_for_hostile_values() {
    let body = edit(sample("asg-launch-via-sns.json"), Part::Payload, |map| {
        map.insert(
            "EC2InstanceId".into(),
            json!(format!("i-x\nERROR forged line{}", "y".repeat(5000))),
        );
    });
    let text = error(&body).to_string();
    assert!(!text.contains('\n'));
    assert!(text.len() < 300, "{}", text.len());
}
