//! What AutoScaling says about instances: the group and lifecycle state it lists each in.
//! AutoScaling's word is what the stricter key check (`keys.verify_autoscaling`) and the
//! confirmation of a live master's termination rest on.

use std::collections::{HashMap, HashSet};

use super::{AwsClients, AwsResultExt};
use crate::error::Result;

/// DescribeAutoScalingInstances takes at most this many ids per call.
const IDS_PER_CALL: usize = 50;

/// An instance as AutoScaling lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInstance {
    pub group: String,
    /// `Pending`, `Pending:Wait`, `InService`, `Terminating:Wait`, `Standby`...
    pub lifecycle_state: String,
}

impl GroupInstance {
    /// Launching or serving: `Pending*` or `InService`.
    pub fn is_launching_or_in_service(&self) -> bool {
        self.lifecycle_state.starts_with("Pending") || self.lifecycle_state == "InService"
    }

    /// Staying in its group: launching, in service, or in or out of standby. Not on its way
    /// out (`Terminating*`, `Terminated`, `Detaching`, `Detached`).
    pub fn stays(&self) -> bool {
        self.is_launching_or_in_service()
            || self.lifecycle_state.contains("Standby")
            || self.lifecycle_state.starts_with("Warmed")
    }
}

/// Why AutoScaling's word does not back a key for an instance it lists as `listed` (None:
/// it does not list it), given the cluster's `groups`; None when it does: in a configured
/// group, launching or in service (`phoenix.keys.verify_autoscaling`).
pub fn doubt_about_key(listed: Option<&GroupInstance>, groups: &HashSet<&str>) -> Option<String> {
    match listed {
        None => {
            Some("AutoScaling does not know the instance (phoenix.keys.verify_autoscaling)".into())
        }
        Some(instance) if !groups.contains(instance.group.as_str()) => Some(format!(
            "AutoScaling lists it in group {:?}, not a configured one",
            instance.group
        )),
        Some(instance) if !instance.is_launching_or_in_service() => Some(format!(
            "AutoScaling says its lifecycle state is {}",
            instance.lifecycle_state
        )),
        Some(_) => None,
    }
}

/// The instances of `ids` that AutoScaling lists, by id (an id it does not list is in no
/// group any more, or never was). One call per 50 ids.
pub async fn describe_instances(
    clients: &AwsClients,
    ids: &[String],
) -> Result<HashMap<String, GroupInstance>> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(IDS_PER_CALL) {
        let output = clients
            .autoscaling
            .describe_auto_scaling_instances()
            .set_instance_ids(Some(chunk.to_vec()))
            .send()
            .await
            .aws_context("autoscaling", "DescribeAutoScalingInstances")?;
        for instance in output.auto_scaling_instances.unwrap_or_default() {
            found.insert(
                instance.instance_id.unwrap_or_default(),
                GroupInstance {
                    group: instance.auto_scaling_group_name.unwrap_or_default(),
                    lifecycle_state: instance.lifecycle_state.unwrap_or_default(),
                },
            );
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::{doubt_about_key, GroupInstance};

    fn at(state: &str) -> GroupInstance {
        GroupInstance {
            group: "g".to_owned(),
            lifecycle_state: state.to_owned(),
        }
    }

    #[test]
    fn which_lifecycle_states_stay_in_the_group() {
        for state in ["Pending", "Pending:Wait", "Pending:Proceed", "InService"] {
            assert!(
                at(state).is_launching_or_in_service() && at(state).stays(),
                "{state}"
            );
        }
        for state in ["Standby", "EnteringStandby", "Warmed:Running"] {
            assert!(
                !at(state).is_launching_or_in_service() && at(state).stays(),
                "{state}"
            );
        }
        for state in [
            "Terminating",
            "Terminating:Wait",
            "Terminating:Proceed",
            "Terminated",
            "Detaching",
            "Detached",
        ] {
            assert!(!at(state).stays(), "{state}");
        }
    }

    #[test]
    fn a_key_is_backed_only_in_a_configured_group_while_launching_or_in_service() {
        let groups: HashSet<&str> = ["g"].into();
        let listed = |group: &str, state: &str| GroupInstance {
            group: group.to_owned(),
            lifecycle_state: state.to_owned(),
        };
        assert_eq!(
            doubt_about_key(Some(&listed("g", "Pending:Wait")), &groups),
            None
        );
        assert_eq!(
            doubt_about_key(Some(&listed("g", "InService")), &groups),
            None
        );
        let other = doubt_about_key(Some(&listed("other", "InService")), &groups).unwrap();
        assert!(other.contains("\"other\", not a configured one"), "{other}");
        let leaving = doubt_about_key(Some(&listed("g", "Terminating:Wait")), &groups).unwrap();
        assert!(leaving.contains("Terminating:Wait"), "{leaving}");
        assert!(doubt_about_key(None, &groups)
            .unwrap()
            .contains("does not know"));
    }
}
