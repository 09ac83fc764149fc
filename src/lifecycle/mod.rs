//! AutoScaling lifecycle messages, as they arrive on Phoenix's SQS queue.
//!
//! One queue receives everything the master and minion AutoScaling groups say about their
//! instances:
//! - lifecycle hook messages (`EC2_INSTANCE_LAUNCHING`, `EC2_INSTANCE_TERMINATING`), which hold
//!   the instance in a wait state until Phoenix completes the action with the token;
//! - ASG notifications (`EC2_INSTANCE_LAUNCH`, `_TERMINATE`, `_LAUNCH_ERROR`,
//!   `_TERMINATE_ERROR`), which report what already happened;
//! - test messages (`autoscaling:TEST_NOTIFICATION`) that AWS sends when a hook or notification
//!   target is set up.
//!
//! They come directly, wrapped in an SNS envelope, or as EventBridge events.
//! [`parse_message`] accepts every combination and returns one typed [`LifecycleMessage`], or
//! a [`MessageError`] that says why the body can never be applied. Parsing is pure: no I/O, no
//! clock, and it never panics, whatever the body holds. Unknown extra fields are ignored, so new
//! fields AWS adds later do not break the engine.
//!
//! Ordering, duplicates and state transitions are the registry's business; this module only
//! reports what each message says, with its time in milliseconds so the registry can keep the
//! newest.

// The body is untrusted and the engine must outlive any of it: outside tests, this module may
// not unwrap, index or panic, and clippy holds it to that.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod envelope;
mod error;
mod fields;
mod instance_id;
mod metadata;
mod payload;
mod timestamp;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use error::MessageError;
pub use instance_id::{InstanceId, InstanceIdError};
pub(crate) use timestamp::parse_time_ms;

/// The largest body SQS delivers (256 KiB). Anything bigger did not come from SQS and is
/// rejected before it is parsed.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The `Event` AWS uses for test messages, in every delivery shape.
const TEST_NOTIFICATION: &str = "autoscaling:TEST_NOTIFICATION";

/// Parses one SQS message body.
///
/// Recognises the SNS envelope, the EventBridge event and the bare payload, then the payload:
/// lifecycle hook message, ASG notification or test message. The event time is the payload's
/// `Time`; when the payload has none, the SNS `Timestamp` or the EventBridge `time`.
///
/// # Errors
///
/// A [`MessageError`] naming the first problem found. Each one is permanent: the same body
/// fails the same way on every delivery.
pub fn parse_message(body: &str) -> Result<LifecycleMessage, MessageError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(MessageError::TooLarge {
            size: body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    // A byte order mark is not JSON, but some publishers prepend one; it carries no meaning.
    let text = body.strip_prefix('\u{feff}').unwrap_or(body);
    if text
        .trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
        .is_empty()
    {
        return Err(MessageError::EmptyBody);
    }
    let value = serde_json::from_str(text).map_err(|err| MessageError::NotJson {
        reason: err.to_string(),
    })?;
    payload::interpret(&envelope::unwrap(value)?)
}

/// What one queue message says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LifecycleMessage {
    /// An instance event to apply to the registry.
    Instance(InstanceEvent),
    /// AWS test messages (autoscaling:TEST_NOTIFICATION, in every delivery shape): deleted,
    /// never applied.
    Test {
        /// The group the test was sent for, when the message names one.
        group: Option<String>,
        /// How it reached the queue.
        delivery: Delivery,
    },
    /// A launch error for an instance that never existed: AWS sends
    /// `autoscaling:EC2_INSTANCE_LAUNCH_ERROR` with an empty `EC2InstanceId` when EC2 refused
    /// the launch (no capacity, a bad launch template). Nothing to record: deleted with a
    /// warning, never applied.
    FailedLaunch {
        /// The group whose launch failed.
        group: String,
        /// AWS's `StatusMessage` (why the launch failed), when it gives one.
        reason: Option<String>,
        /// How it reached the queue.
        delivery: Delivery,
    },
}

impl LifecycleMessage {
    /// How the message reached the queue.
    pub fn delivery(&self) -> Delivery {
        match self {
            Self::Instance(event) => event.delivery,
            Self::Test { delivery, .. } | Self::FailedLaunch { delivery, .. } => *delivery,
        }
    }

    /// Whether this is a test message, to be deleted without touching the registry.
    pub fn is_test(&self) -> bool {
        matches!(self, Self::Test { .. })
    }

    /// The instance event, unless the message is about no instance (a test message, a
    /// launch that failed before an instance existed).
    pub fn instance_event(&self) -> Option<&InstanceEvent> {
        match self {
            Self::Instance(event) => Some(event),
            Self::Test { .. } | Self::FailedLaunch { .. } => None,
        }
    }
}

/// How a message reached the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// The body is the AutoScaling payload: a lifecycle hook targeting the queue, or an SNS
    /// subscription with raw message delivery.
    Direct,
    /// Inside an SNS envelope: an ASG notification, or a lifecycle hook targeting a topic.
    Sns,
    /// As an EventBridge event from `aws.autoscaling`.
    EventBridge,
}

impl Delivery {
    /// The name used in serialized events and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Sns => "sns",
            Self::EventBridge => "event_bridge",
        }
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to the instance.
///
/// `Launching` and `Terminating` come from lifecycle hooks: the instance waits for Phoenix to
/// complete the action. The others come from ASG notifications and report a finished step.
/// Which registry state each one implies is the registry's decision, not this module's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Lifecycle hook `autoscaling:EC2_INSTANCE_LAUNCHING`: the instance is booting and waits
    /// in `Pending:Wait` for the lifecycle action to be completed.
    Launching,
    /// Notification `autoscaling:EC2_INSTANCE_LAUNCH`: the launch succeeded.
    Launched,
    /// Notification `autoscaling:EC2_INSTANCE_LAUNCH_ERROR`: the launch failed (including a
    /// launch whose lifecycle action was abandoned).
    LaunchFailed,
    /// Lifecycle hook `autoscaling:EC2_INSTANCE_TERMINATING`: the instance is leaving and waits
    /// in `Terminating:Wait` for the lifecycle action to be completed.
    Terminating,
    /// Notification `autoscaling:EC2_INSTANCE_TERMINATE`: the instance is gone.
    Terminated,
    /// Notification `autoscaling:EC2_INSTANCE_TERMINATE_ERROR`: the termination failed.
    TerminateFailed,
}

impl EventKind {
    /// All kinds, in lifecycle order.
    pub const ALL: [EventKind; 6] = [
        Self::Launching,
        Self::Launched,
        Self::LaunchFailed,
        Self::Terminating,
        Self::Terminated,
        Self::TerminateFailed,
    ];

    /// Part of bringing an instance up (hook, success or failure).
    pub fn is_launch(&self) -> bool {
        matches!(self, Self::Launching | Self::Launched | Self::LaunchFailed)
    }

    /// Part of taking an instance down (hook, success or failure).
    pub fn is_termination(&self) -> bool {
        matches!(
            self,
            Self::Terminating | Self::Terminated | Self::TerminateFailed
        )
    }

    /// AutoScaling reports that the launch or termination failed.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::LaunchFailed | Self::TerminateFailed)
    }

    /// Comes from a lifecycle hook, so the message carries a lifecycle action to complete.
    pub fn is_lifecycle_hook(&self) -> bool {
        matches!(self, Self::Launching | Self::Terminating)
    }

    /// The name used in serialized events and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Launching => "launching",
            Self::Launched => "launched",
            Self::LaunchFailed => "launch_failed",
            Self::Terminating => "terminating",
            Self::Terminated => "terminated",
            Self::TerminateFailed => "terminate_failed",
        }
    }

    /// AWS's name, as found in `Event` or `LifecycleTransition`.
    pub fn aws_event(&self) -> &'static str {
        match self {
            Self::Launching => "autoscaling:EC2_INSTANCE_LAUNCHING",
            Self::Launched => "autoscaling:EC2_INSTANCE_LAUNCH",
            Self::LaunchFailed => "autoscaling:EC2_INSTANCE_LAUNCH_ERROR",
            Self::Terminating => "autoscaling:EC2_INSTANCE_TERMINATING",
            Self::Terminated => "autoscaling:EC2_INSTANCE_TERMINATE",
            Self::TerminateFailed => "autoscaling:EC2_INSTANCE_TERMINATE_ERROR",
        }
    }

    /// The EventBridge `detail-type` AutoScaling uses for this event.
    pub fn detail_type(&self) -> &'static str {
        match self {
            Self::Launching => "EC2 Instance-launch Lifecycle Action",
            Self::Launched => "EC2 Instance Launch Successful",
            Self::LaunchFailed => "EC2 Instance Launch Unsuccessful",
            Self::Terminating => "EC2 Instance-terminate Lifecycle Action",
            Self::Terminated => "EC2 Instance Terminate Successful",
            Self::TerminateFailed => "EC2 Instance Terminate Unsuccessful",
        }
    }

    /// The kind AWS's `Event` / `LifecycleTransition` name stands for (exact match).
    pub fn from_aws_event(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.aws_event() == name)
    }

    /// The kind an EventBridge `detail-type` stands for (exact match).
    pub fn from_detail_type(detail_type: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.detail_type() == detail_type)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event about one instance, ready for the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceEvent {
    /// The instance (`EC2InstanceId`).
    pub instance_id: InstanceId,
    /// Its AutoScaling group (`AutoScalingGroupName`).
    pub group: String,
    /// What happened.
    pub kind: EventKind,
    /// When it happened, in milliseconds since the epoch (UTC): the payload's `Time`, else the
    /// EventBridge `time` or the SNS `Timestamp`.
    pub time_ms: i64,
    /// The lifecycle action to complete; present exactly for lifecycle hook messages.
    pub lifecycle: Option<LifecycleAction>,
    /// The role named in the hook's `NotificationMetadata`, if it names one.
    pub metadata_role: Option<Role>,
    /// `Details."Availability Zone"` of ASG notifications.
    pub availability_zone: Option<String>,
    /// How the message reached the queue.
    pub delivery: Delivery,
}

/// What `CompleteLifecycleAction` needs to release an instance from its wait state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleAction {
    /// `LifecycleHookName`.
    pub hook_name: String,
    /// `LifecycleActionToken`.
    pub token: String,
    /// `AutoScalingGroupName`.
    pub group: String,
}

/// The Salt role of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs salt-master (and its own salt-minion).
    Master,
    /// Runs salt-minion only.
    Minion,
}

impl Role {
    /// The name used in serialized events, metadata and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Master => "master",
            Self::Minion => "minion",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
