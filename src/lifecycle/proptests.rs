//! Property tests: no body makes the parser panic, and every well-formed message, in every
//! delivery shape, parses back to exactly the event it was built from.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::tests::{edit, Part, SAMPLES};
use super::*;

/// Strings that steer generated JSON into the parser's interesting branches.
const INTERESTING_STRINGS: [&str; 22] = [
    "",
    "Notification",
    "SubscriptionConfirmation",
    "aws.autoscaling",
    "autoscaling:TEST_NOTIFICATION",
    "autoscaling:EC2_INSTANCE_LAUNCHING",
    "autoscaling:EC2_INSTANCE_TERMINATING",
    "autoscaling:EC2_INSTANCE_LAUNCH",
    "autoscaling:EC2_INSTANCE_TERMINATE",
    "autoscaling:EC2_INSTANCE_LAUNCH_ERROR",
    "autoscaling:EC2_INSTANCE_TERMINATE_ERROR",
    "EC2 Instance Launch Successful",
    "EC2 Instance-terminate Lifecycle Action",
    "i-0a1b2c3d4e5f60001",
    "i-0a1b2c3d",
    "2026-11-21T10:00:00.500Z",
    "2026-11-21T15:00:00Z",
    "phoenix-minions",
    "master",
    "{\"role\": \"minion\"}",
    "{\"Event\": \"autoscaling:EC2_INSTANCE_LAUNCH\", \"EC2InstanceId\": \"i-0a1b2c3d\"}",
    "{",
];

/// Keys the parser reads, so generated objects actually reach its field checks.
const KNOWN_KEYS: [&str; 20] = [
    "Type",
    "Message",
    "TopicArn",
    "Timestamp",
    "detail-type",
    "detail",
    "source",
    "time",
    "Event",
    "LifecycleTransition",
    "EC2InstanceId",
    "AutoScalingGroupName",
    "LifecycleHookName",
    "LifecycleActionToken",
    "NotificationMetadata",
    "Time",
    "Details",
    "Availability Zone",
    "role",
    "Subject",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(INTERESTING_STRINGS.to_vec()).prop_map(String::from),
        any::<String>(),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KNOWN_KEYS.to_vec()).prop_map(String::from),
        1 => "\\PC{0,12}",
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ]
}

/// Any JSON value, a few levels deep, biased towards the keys and strings the parser knows.
fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..10)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// A flat object of known keys and leaves: reaches the payload checks far more often than
/// [`json_value`] does.
fn payload_like() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            prop::sample::select(KNOWN_KEYS.to_vec()).prop_map(String::from),
            prop_oneof![4 => json_leaf(), 1 => json_value()],
        ),
        0..16,
    )
    .prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
}

/// The parser's contract on any input: no panic, and an error is one readable line.
fn check_total(body: &str) -> Result<(), TestCaseError> {
    match parse_message(body) {
        Ok(LifecycleMessage::Instance(event)) => {
            prop_assert_eq!(event.lifecycle.is_some(), event.kind.is_lifecycle_hook());
            prop_assert!(!event.group.is_empty());
            if let Some(action) = &event.lifecycle {
                prop_assert_eq!(&action.group, &event.group);
                prop_assert!(!action.hook_name.is_empty() && !action.token.is_empty());
            }
        }
        Ok(LifecycleMessage::Test { .. }) => {}
        // Only a launch error may name no instance, and it still names its group.
        Ok(LifecycleMessage::FailedLaunch { group, reason, .. }) => {
            prop_assert!(!group.is_empty());
            prop_assert!(reason.as_deref() != Some(""));
        }
        Err(err) => {
            let text = err.to_string();
            prop_assert!(!text.is_empty() && !text.contains('\n'), "{}", text);
        }
    }
    Ok(())
}

/// How a mutation changes one field.
#[derive(Debug, Clone)]
enum Mutation {
    Delete,
    Replace(Value),
}

fn mutation() -> impl Strategy<Value = (Part, prop::sample::Index, Mutation)> {
    (
        prop_oneof![Just(Part::Envelope), Just(Part::Payload)],
        any::<prop::sample::Index>(),
        prop_oneof![
            Just(Mutation::Delete),
            json_value().prop_map(Mutation::Replace),
        ],
    )
}

fn apply(body: &str, (part, index, mutation): &(Part, prop::sample::Index, Mutation)) -> String {
    edit(body, *part, |map| {
        let keys: Vec<String> = map.keys().cloned().collect();
        if keys.is_empty() {
            return;
        }
        let key = index.get(&keys).clone();
        match mutation {
            Mutation::Delete => {
                map.remove(&key);
            }
            Mutation::Replace(value) => {
                map.insert(key, value.clone());
            }
        }
    })
}

// ---- generated valid messages ----

/// How the generated hook message spells its metadata.
#[derive(Debug, Clone)]
enum Metadata {
    Absent,
    Json(Role),
    Bare(Role),
    Other(String),
}

#[derive(Debug, Clone)]
struct Generated {
    instance_id: String,
    group: String,
    kind: EventKind,
    time_ms: i64,
    envelope_ms: i64,
    hook_name: String,
    token: String,
    metadata: Metadata,
    availability_zone: Option<String>,
    delivery: Delivery,
    time_in_payload: bool,
    event_in_eventbridge_detail: bool,
}

/// RFC 3339 can write years 0000 to 9999.
const FIRST_MS: i64 = -62_167_219_200_000;
const LAST_MS: i64 = 253_402_300_799_999;

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Master), Just(Role::Minion)]
}

fn generated() -> impl Strategy<Value = Generated> {
    let ids = prop_oneof!["[0-9a-f]{8}", "[0-9a-f]{17}"].prop_map(|hex| format!("i-{hex}"));
    let metadata = prop_oneof![
        Just(Metadata::Absent),
        role().prop_map(Metadata::Json),
        role().prop_map(Metadata::Bare),
        // Prefixed so it can never spell a role by chance.
        "\\PC{0,20}".prop_map(|text| Metadata::Other(format!("x-{text}"))),
    ];
    let delivery = prop_oneof![
        Just(Delivery::Direct),
        Just(Delivery::Sns),
        Just(Delivery::EventBridge)
    ];
    (
        (
            ids,
            "\\PC{1,40}",
            prop::sample::select(EventKind::ALL.to_vec()),
            FIRST_MS..=LAST_MS,
            FIRST_MS..=LAST_MS,
        ),
        (
            "[A-Za-z0-9_.-]{1,40}",
            "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            metadata,
            prop::option::of("[a-z]{2}-[a-z]{4,9}-[1-4][a-f]"),
            delivery,
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (instance_id, group, kind, time_ms, envelope_ms),
                (hook_name, token, metadata, zone, delivery, time_in_payload, event_in_detail),
            )| Generated {
                instance_id,
                group,
                kind,
                time_ms,
                envelope_ms,
                hook_name,
                token,
                metadata,
                availability_zone: zone,
                delivery,
                // A direct message has no envelope time to fall back on.
                time_in_payload: time_in_payload || delivery == Delivery::Direct,
                event_in_eventbridge_detail: event_in_detail,
            },
        )
}

fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("ms in range")
        .format(&Rfc3339)
        .expect("years 0000 to 9999 format")
}

/// EventBridge writes whole seconds.
fn whole_seconds(ms: i64) -> i64 {
    ms.div_euclid(1000) * 1000
}

impl Generated {
    fn payload(&self) -> Map<String, Value> {
        let mut payload = Map::new();
        payload.insert("EC2InstanceId".into(), json!(self.instance_id));
        payload.insert("AutoScalingGroupName".into(), json!(self.group));
        payload.insert("AccountId".into(), json!("123456789012"));
        payload.insert("Service".into(), json!("AWS Auto Scaling"));
        if self.time_in_payload {
            payload.insert("Time".into(), json!(rfc3339(self.time_ms)));
        }
        if self.kind.is_lifecycle_hook() {
            payload.insert("LifecycleTransition".into(), json!(self.kind.aws_event()));
            payload.insert("LifecycleHookName".into(), json!(self.hook_name));
            payload.insert("LifecycleActionToken".into(), json!(self.token));
            let metadata = match &self.metadata {
                Metadata::Absent => None,
                Metadata::Json(role) => Some(json!({"cluster": "prod", "role": role}).to_string()),
                Metadata::Bare(role) => Some(role.to_string()),
                Metadata::Other(text) => Some(text.clone()),
            };
            if let Some(metadata) = metadata {
                payload.insert("NotificationMetadata".into(), json!(metadata));
            }
        } else {
            let named_by_detail_type =
                self.delivery == Delivery::EventBridge && !self.event_in_eventbridge_detail;
            if !named_by_detail_type {
                payload.insert("Event".into(), json!(self.kind.aws_event()));
            }
            payload.insert("StatusCode".into(), json!("InProgress"));
            let mut details = Map::new();
            details.insert("Subnet ID".into(), json!("subnet-0a1b2c3d4e5f60718"));
            if let Some(zone) = &self.availability_zone {
                details.insert("Availability Zone".into(), json!(zone));
            }
            payload.insert("Details".into(), Value::Object(details));
        }
        payload
    }

    fn body(&self) -> String {
        let payload = self.payload();
        match self.delivery {
            Delivery::Direct => Value::Object(payload).to_string(),
            Delivery::Sns => json!({
                "Type": "Notification",
                "MessageId": "6f0a1a6e-3c1d-5c8e-9f0e-000000000001",
                "TopicArn": "arn:aws:sns:us-east-1:123456789012:phoenix-asg-events",
                // Deliberately misleading: the parser must not read it.
                "Subject": "Auto Scaling: test notification",
                "Message": Value::Object(payload).to_string(),
                "Timestamp": rfc3339(self.envelope_ms),
                "SignatureVersion": "2",
                "Signature": "PLACEHOLDER",
            })
            .to_string(),
            Delivery::EventBridge => json!({
                "version": "0",
                "id": "c3d4e5f6-0000-4000-8000-00000000d001",
                "detail-type": self.kind.detail_type(),
                "source": "aws.autoscaling",
                "account": "123456789012",
                "time": rfc3339(whole_seconds(self.envelope_ms)),
                "region": "us-east-1",
                "resources": [],
                "detail": payload,
            })
            .to_string(),
        }
    }

    fn expected(&self) -> LifecycleMessage {
        let hook = self.kind.is_lifecycle_hook();
        let time_ms = match (self.time_in_payload, self.delivery) {
            (true, _) => self.time_ms,
            (false, Delivery::EventBridge) => whole_seconds(self.envelope_ms),
            (false, _) => self.envelope_ms,
        };
        LifecycleMessage::Instance(InstanceEvent {
            instance_id: self.instance_id.parse().expect("generated id is valid"),
            group: self.group.clone(),
            kind: self.kind,
            time_ms,
            lifecycle: hook.then(|| LifecycleAction {
                hook_name: self.hook_name.clone(),
                token: self.token.clone(),
                group: self.group.clone(),
            }),
            metadata_role: match self.metadata {
                Metadata::Json(role) | Metadata::Bare(role) if hook => Some(role),
                _ => None,
            },
            availability_zone: if hook {
                None
            } else {
                self.availability_zone.clone()
            },
            delivery: self.delivery,
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_never_panic(body in any::<String>()) {
        check_total(&body)?;
    }

    #[test]
    fn arbitrary_json_never_panics(value in prop_oneof![json_value(), payload_like()]) {
        check_total(&value.to_string())?;
    }

    #[test]
    fn arbitrary_json_inside_each_envelope_never_panics(
        payload in prop_oneof![json_value(), payload_like()],
        time in json_leaf(),
        detail_type in text(),
    ) {
        check_total(&json!({
            "Type": "Notification",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
            "Message": payload.to_string(),
            "Timestamp": time.clone(),
        }).to_string())?;
        check_total(&json!({
            "detail-type": detail_type,
            "source": "aws.autoscaling",
            "time": time,
            "detail": payload,
        }).to_string())?;
    }

    #[test]
    fn mutated_samples_never_panic(
        sample in prop::sample::select(SAMPLES.to_vec()),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let mut body = sample.1.to_owned();
        for mutation in &mutations {
            body = apply(&body, mutation);
        }
        check_total(&body)?;
    }

    #[test]
    fn truncated_samples_never_panic(
        sample in prop::sample::select(SAMPLES.to_vec()),
        cut in any::<prop::sample::Index>(),
    ) {
        let body = sample.1;
        let boundaries: Vec<usize> = body.char_indices().map(|(i, _)| i).collect();
        let at = *cut.get(&boundaries);
        check_total(body.get(..at).unwrap_or_default())?;
    }

    #[test]
    fn generated_messages_round_trip(message in generated()) {
        let body = message.body();
        let parsed = parse_message(&body);
        prop_assert_eq!(parsed.as_ref(), Ok(&message.expected()), "{}", body);
        // And the event survives the trip over Salt's event bus as JSON.
        if let Ok(parsed) = parsed {
            let wire = serde_json::to_string(&parsed).expect("serializable");
            let back: LifecycleMessage = serde_json::from_str(&wire).expect("deserializable");
            prop_assert_eq!(back, parsed);
        }
    }
}
