//! The instance registry in DynamoDB: one table of masters and one of minions, both keyed by
//! (cluster, instance id), so reading one cluster's masters is a single Query.

mod highstate;
mod instances;
mod keys;
mod masters;
mod replacement;
mod state;
mod tables;

pub use highstate::write_highstate;
pub use instances::{
    apply_event, clear_launch_hook, clear_retire_hook, get, list, record_heartbeat, table_for,
    Applied, InstanceRecord, KeptHook, RetireHook,
};
pub use keys::{
    pin_key, read_enrolment, record_seeded, registry_minion, Enrolment, KeyPin, PinOutcome,
    KEY_ATTRIBUTE, SEEDED_ATTRIBUTE,
};
pub use masters::{
    live_masters, read_live_masters, read_master_heartbeats, LiveMaster, MasterHeartbeat,
};
pub use replacement::{
    claim_replacement, mark_reported, ClaimRequest, ReplacementClaim, REPLACEMENT,
};
pub use state::{event_time_attribute, moves_forward, InstanceState};
pub use tables::{create_tables, describe_table, TableDescription, TableSpec};

/// Partition key: the cluster name.
pub const CLUSTER_KEY: &str = "cluster";
/// Sort key: the EC2 instance id (which is also the minion id).
pub const INSTANCE_KEY: &str = "instance_id";
/// Epoch seconds after which DynamoDB may delete a terminated instance's row.
pub const EXPIRES_AT: &str = "expires_at";
