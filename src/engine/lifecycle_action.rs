//! Completing AutoScaling lifecycle actions.

use crate::aws::{AwsClients, AwsResultExt};
use crate::error::{Error, Result};
use crate::lifecycle::LifecycleAction;

/// How a lifecycle action ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionResult {
    /// Let the instance go on (into service, or on to termination).
    Continue,
    /// Give up on the instance: a launch is rolled back.
    Abandon,
}

impl ActionResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionResult::Continue => "CONTINUE",
            ActionResult::Abandon => "ABANDON",
        }
    }
}

/// Whether the call did it, or found it already over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Completed,
    /// "No active Lifecycle Action found": a duplicate message, another master, or a timed
    /// out action. Either way there is nothing left to complete.
    AlreadyOver,
}

/// Completes the lifecycle action of `instance_id` held by `hook` with `result`.
pub async fn complete(
    clients: &AwsClients,
    hook: &LifecycleAction,
    instance_id: &str,
    result: ActionResult,
) -> Result<Completion> {
    let outcome = clients
        .autoscaling
        .complete_lifecycle_action()
        .auto_scaling_group_name(&hook.group)
        .lifecycle_hook_name(&hook.hook_name)
        .lifecycle_action_token(&hook.token)
        .instance_id(instance_id)
        .lifecycle_action_result(result.as_str())
        .send()
        .await
        .aws_context("autoscaling", "CompleteLifecycleAction");
    match outcome {
        Ok(_) => Ok(Completion::Completed),
        Err(err) if is_already_over(&err) => Ok(Completion::AlreadyOver),
        Err(err) => Err(err),
    }
}

/// Keeps the lifecycle action of `instance_id` held by `hook` waiting for another
/// HeartbeatTimeout. `AlreadyOver` when AutoScaling no longer waits for it.
pub async fn heartbeat(
    clients: &AwsClients,
    hook: &LifecycleAction,
    instance_id: &str,
) -> Result<Completion> {
    let outcome = clients
        .autoscaling
        .record_lifecycle_action_heartbeat()
        .auto_scaling_group_name(&hook.group)
        .lifecycle_hook_name(&hook.hook_name)
        .lifecycle_action_token(&hook.token)
        .instance_id(instance_id)
        .send()
        .await
        .aws_context("autoscaling", "RecordLifecycleActionHeartbeat");
    match outcome {
        Ok(_) => Ok(Completion::Completed),
        Err(err) if is_already_over(&err) => Ok(Completion::AlreadyOver),
        Err(err) => Err(err),
    }
}

fn is_already_over(err: &Error) -> bool {
    matches!(
        err,
        Error::Aws { code: Some(code), message, .. }
            if code == "ValidationError" && message.contains("No active Lifecycle Action")
    )
}
