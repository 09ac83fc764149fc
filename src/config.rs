//! The `phoenix:` block of the master and minion configuration, read by every component.
//!
//! Parsing is strict: an unknown key is an error (a typo must not silently fall back to a
//! default), and every error names the dotted key an operator has to fix.

use std::collections::{BTreeMap, HashSet};
use std::io::Read as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::dropin::DropInSettings;
use crate::enrolment::{is_region_name, IdentityCertificate, Serves};
use crate::error::{Error, Result};
pub use crate::keys::KeyTrust;

/// The validated configuration, with every default filled in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhoenixConfig {
    /// Name of the Phoenix cluster; the partition key of every registry row.
    pub cluster: String,
    /// AWS region; `None` means the SDK's standard chain (AWS_REGION, profile, IMDS).
    pub region: Option<String>,
    /// DynamoDB table of the masters.
    pub masters_table: String,
    /// DynamoDB table of the minions.
    pub minions_table: String,
    /// SQS queue fed by the lifecycle hooks and notifications; the engine needs it.
    pub queue_url: Option<String>,
    /// Secrets Manager id of the masters' shared key pair.
    pub master_key_secret: String,
    /// AutoScaling groups whose instances are masters.
    pub master_groups: Vec<String>,
    /// AutoScaling groups whose instances are minions.
    pub minion_groups: Vec<String>,
    /// Concurrent long polls of the events queue in each master's engine: while one batch
    /// is being applied, the next is already being received.
    pub pollers: u32,
    /// Seconds between two heartbeats of a master.
    pub heartbeat_interval: f64,
    /// Seconds after the last heartbeat when a master leaves the live list.
    pub master_stale_after: f64,
    /// Seconds salt-master's request server has to answer the ping that comes before each
    /// heartbeat: a master that does not serve is not heartbeated.
    pub serve_timeout: f64,
    /// Seconds a terminated instance's row is kept before DynamoDB expires it.
    pub terminated_ttl: u64,
    /// This master's instance id, where there is no EC2 instance metadata to ask.
    pub master_id: Option<String>,
    /// The address minions use to reach this master, where there is no instance metadata.
    pub master_address: Option<String>,
    /// Seconds a terminating master's lifecycle action waits after the master left the live
    /// list, so that its minions move to other masters before it goes (0: at once).
    pub master_drain_time: f64,
    /// Complete a new minion's launch lifecycle action only once its first highstate
    /// succeeded (ABANDON after the last failed attempt).
    pub highstate_gating: bool,
    /// How Phoenix talks to AWS.
    pub aws: AwsSettings,
    /// How the masters manage minion keys.
    pub keys: KeySettings,
    /// The Salt options the minion drop-in carries (how the minion uses its masters, and
    /// how it reaches them), and where it lives.
    pub drop_in: DropInSettings,
    /// How a minion's `master_list` beacon follows the live masters.
    pub beacon: BeaconSettings,
    /// How the masters run every new minion's first highstate.
    pub highstate: HighstateSettings,
    /// SNS push delivery through salt-api's webhook.
    pub sns: crate::sns::SnsSettings,
    /// When the live masters report a silent peer to AutoScaling.
    pub replacement: crate::replacement::ReplacementSettings,
    /// When a lifecycle message that failed on a passing error is tried again.
    pub retry: crate::engine::RetrySettings,
}

/// The first highstate's knobs (`phoenix.highstate`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HighstateSettings {
    /// Attempts of a first highstate, the first one included, before it is recorded as
    /// failed for good.
    pub attempts: u32,
    /// Seconds before the second attempt; each later attempt waits twice as long.
    pub retry_delay: f64,
    /// Seconds: the longest wait between two attempts.
    pub retry_max_delay: f64,
    /// Seconds an attempt may run without a return before it counts as failed.
    pub timeout: f64,
    /// Seconds between two sweeps of the registry by each master's engine: due retries,
    /// attempts past their timeout, lifecycle heartbeats and completions left to do.
    pub check_interval: f64,
    /// Seconds between two heartbeats of a launch lifecycle action that waits for a first
    /// highstate (with `highstate_gating`); well below the hook's HeartbeatTimeout.
    pub lifecycle_heartbeat_interval: f64,
}

impl HighstateSettings {
    /// Milliseconds to wait before attempt `next` (2, 3, ...): `retry_delay` doubled for
    /// each attempt after the second, at most `retry_max_delay`.
    pub fn retry_delay_ms(&self, next: u32) -> i64 {
        let doublings = next.saturating_sub(2).min(30);
        let seconds = (self.retry_delay * f64::from(1u32 << doublings)).min(self.retry_max_delay);
        (seconds * 1000.0) as i64
    }

    pub fn timeout_ms(&self) -> i64 {
        (self.timeout * 1000.0) as i64
    }
}

/// The minion key policy's knobs (`phoenix.keys`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeySettings {
    /// Seconds between two full key reconciles of a master against the registry.
    pub reconcile_interval: f64,
    /// Exact minion ids whose keys Phoenix never touches.
    pub unmanaged: Vec<String>,
    /// Accept a key only when the registry row's AutoScaling group is one of
    /// `master_groups` or `minion_groups`.
    pub require_group: bool,
    /// Accept a key only when AutoScaling's DescribeAutoScalingInstances says the instance is
    /// in a configured group and not leaving it.
    pub verify_autoscaling: bool,
    /// Certificates whose keys verify instance identity documents, besides AWS's own that
    /// Phoenix bundles: a mapping of region to PEM text or to the absolute path of a PEM file
    /// (one certificate or several), read when the configuration is. For a region whose
    /// documents AWS signs with a certificate of its own that Phoenix does not bundle (such
    /// as ap-southeast-3), a certificate AWS publishes later, or a lab's own signer. Each
    /// serves the region it is listed under, beside AWS's certificate for that region.
    pub identity_certificates: Vec<IdentityCertificate>,
    /// Seconds after an instance's launch (its identity document's pendingTime) during which
    /// a claim for it is accepted: long enough for a slow first boot, short enough that a
    /// document read later no longer enrols anything.
    pub enrolment_window: f64,
    /// On whose word a minion's key is pinned (`phoenix.keys.trust`).
    pub trust: KeyTrust,
    /// The SQS queue instances send their identity claims to
    /// (`phoenix.keys.claim_queue_url`): the engine needs it with `identity_document` trust,
    /// and so does `phoenix minion-config` to claim a key.
    pub claim_queue_url: Option<String>,
    /// The cluster's AWS account (`phoenix.keys.account_id`): a claim's document must be of
    /// it. Unset, an engine takes it from its own identity document, verified as claims are.
    pub account_id: Option<String>,
}

impl KeySettings {
    pub fn reconcile_interval(&self) -> Duration {
        Duration::from_secs_f64(self.reconcile_interval)
    }

    /// `enrolment_window` in milliseconds, as identity documents' times are compared.
    pub fn enrolment_window_ms(&self) -> i64 {
        (self.enrolment_window * 1000.0) as i64
    }

    /// The claim queue, or an error naming the setting to fix.
    pub fn require_claim_queue_url(&self) -> Result<&str> {
        self.claim_queue_url.as_deref().ok_or_else(|| {
            Error::config(
                "phoenix.keys.claim_queue_url",
                "must be set (the ClaimQueueUrl output of the data stack) with \
                 phoenix.keys.trust: identity_document",
            )
        })
    }
}

/// How a minion follows the live masters (`phoenix.beacon`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BeaconSettings {
    /// Seconds between two reads of the live masters by the beacon's background refresher.
    pub refresh_interval: f64,
    /// The command (an argv list) that restarts salt-minion; `None` means Salt's own
    /// `service.restart <restart_service>` with `no_block=True`.
    pub restart_command: Option<Vec<String>>,
    /// The service that the default restart restarts.
    pub restart_service: String,
    /// Seconds: the most a restart waits when the minion's current master left the live
    /// list (each minion picks its own point in this window).
    pub restart_jitter: f64,
    /// Seconds: the window over which minions that merely have a better master spread
    /// their restarts.
    pub restart_splay: f64,
    /// Seconds: the least time between two restarts of one minion.
    pub min_restart_interval: f64,
}

impl BeaconSettings {
    pub fn refresh_interval(&self) -> Duration {
        Duration::from_secs_f64(self.refresh_interval)
    }
}

/// Timeouts and retries of every AWS client Phoenix builds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AwsSettings {
    /// Seconds to establish a TCP/TLS connection.
    pub connect_timeout: f64,
    /// Seconds one attempt of a call may take; above the 20 s SQS long poll.
    pub attempt_timeout: f64,
    /// Seconds a call may take across all its retries.
    pub operation_timeout: f64,
    /// Attempts per call, the first one included (the SDK's standard retry mode).
    pub max_attempts: u32,
}

impl AwsSettings {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.connect_timeout)
    }
    pub fn attempt_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.attempt_timeout)
    }
    pub fn operation_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.operation_timeout)
    }
}

/// The longest SQS long poll; an attempt timeout must leave room above it.
pub const SQS_LONG_POLL_SECONDS: f64 = 20.0;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    cluster: Option<String>,
    region: Option<String>,
    masters_table: Option<String>,
    minions_table: Option<String>,
    queue_url: Option<String>,
    master_key_secret: Option<String>,
    master_groups: Option<Vec<String>>,
    minion_groups: Option<Vec<String>>,
    heartbeat_interval: Option<f64>,
    pollers: Option<u32>,
    master_stale_after: Option<f64>,
    serve_timeout: Option<f64>,
    terminated_ttl: Option<u64>,
    highstate_gating: Option<bool>,
    master_drain_time: Option<f64>,
    master_id: Option<String>,
    master_address: Option<String>,
    #[serde(default)]
    aws: RawAwsSettings,
    #[serde(default)]
    keys: RawKeySettings,
    #[serde(default)]
    drop_in: DropInSettings,
    #[serde(default)]
    beacon: RawBeaconSettings,
    #[serde(default)]
    highstate: RawHighstateSettings,
    #[serde(default)]
    sns: crate::sns::settings::RawSnsSettings,
    #[serde(default)]
    replacement: crate::replacement::settings::RawReplacementSettings,
    #[serde(default)]
    retry: crate::engine::RawRetrySettings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHighstateSettings {
    attempts: Option<u32>,
    retry_delay: Option<f64>,
    retry_max_delay: Option<f64>,
    timeout: Option<f64>,
    check_interval: Option<f64>,
    lifecycle_heartbeat_interval: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBeaconSettings {
    refresh_interval: Option<f64>,
    restart_command: Option<Vec<String>>,
    restart_service: Option<String>,
    restart_jitter: Option<f64>,
    restart_splay: Option<f64>,
    min_restart_interval: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeySettings {
    reconcile_interval: Option<f64>,
    unmanaged: Option<Vec<String>>,
    require_group: Option<bool>,
    verify_autoscaling: Option<bool>,
    identity_certificates: Option<BTreeMap<String, String>>,
    enrolment_window: Option<f64>,
    trust: Option<KeyTrust>,
    claim_queue_url: Option<String>,
    account_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAwsSettings {
    connect_timeout: Option<f64>,
    attempt_timeout: Option<f64>,
    operation_timeout: Option<f64>,
    max_attempts: Option<u32>,
}

pub mod defaults {
    pub const HEARTBEAT_INTERVAL: f64 = 5.0;
    pub const POLLERS: u32 = 2;
    pub const MASTER_STALE_AFTER: f64 = 30.0;
    pub const SERVE_TIMEOUT: f64 = 5.0;
    pub const TERMINATED_TTL: u64 = 7 * 24 * 3600;
    pub const CONNECT_TIMEOUT: f64 = 3.0;
    pub const ATTEMPT_TIMEOUT: f64 = 30.0;
    pub const OPERATION_TIMEOUT: f64 = 90.0;
    pub const MAX_ATTEMPTS: u32 = 5;
    pub const KEY_RECONCILE_INTERVAL: f64 = 10.0;
    pub const BEACON_REFRESH_INTERVAL: f64 = 10.0;
    pub const RESTART_SERVICE: &str = "salt-minion";
    pub const RESTART_JITTER: f64 = 5.0;
    pub const RESTART_SPLAY: f64 = 300.0;
    pub const MIN_RESTART_INTERVAL: f64 = 60.0;
    pub const MASTER_DRAIN_TIME: f64 = 30.0;
    pub const HIGHSTATE_ATTEMPTS: u32 = 3;
    pub const HIGHSTATE_RETRY_DELAY: f64 = 60.0;
    pub const HIGHSTATE_RETRY_MAX_DELAY: f64 = 900.0;
    pub const HIGHSTATE_TIMEOUT: f64 = 3600.0;
    pub const HIGHSTATE_CHECK_INTERVAL: f64 = 30.0;
    pub const LIFECYCLE_HEARTBEAT_INTERVAL: f64 = 300.0;
    pub const ENROLMENT_WINDOW: f64 = 900.0;
}

impl PhoenixConfig {
    /// Parses and validates the `phoenix:` block given as JSON (the Python side serialises
    /// Salt's `opts["phoenix"]`).
    pub fn from_json(json: &str) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|err| Error::config("phoenix", format!("not a valid document: {err}")))?;
        // serde would also read a struct from a list, by position: refuse anything but a
        // mapping here, so a list gets an error that says so.
        if !value.is_object() {
            return Err(Error::config(
                "phoenix",
                format!("must be a mapping of settings, not {}", json_kind(&value)),
            ));
        }
        let raw: RawConfig = serde_path_to_error::deserialize(value).map_err(|err| {
            let path = err.path().to_string();
            let key = if path == "." || path.is_empty() {
                "phoenix".to_owned()
            } else {
                format!("phoenix.{path}")
            };
            Error::config(key, err.into_inner().to_string())
        })?;
        raw.validate()
    }

    /// The queue URL, which only the engine needs.
    pub fn require_queue_url(&self) -> Result<&str> {
        self.queue_url.as_deref().ok_or_else(|| {
            Error::config(
                "phoenix.queue_url",
                "required by the instance_manager engine: the URL of the SQS queue fed by the \
                 AutoScaling lifecycle hooks and notifications",
            )
        })
    }

    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs_f64(self.heartbeat_interval)
    }

    pub fn master_stale_after(&self) -> Duration {
        Duration::from_secs_f64(self.master_stale_after)
    }

    /// `master_drain_time` in milliseconds, as the retire hook's due time is recorded.
    pub fn master_drain_ms(&self) -> i64 {
        (self.master_drain_time * 1000.0) as i64
    }

    /// How long one heartbeat may take, its AWS calls and their retries included: half of
    /// `master_stale_after`. A heartbeat written later than that is half stale already, and a
    /// call left to the SDK's own operation timeout (`aws.operation_timeout`, 90 s) would
    /// hold back the next heartbeat past `master_stale_after` and drop a healthy master from
    /// the live list for the length of one slow call.
    pub fn heartbeat_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.master_stale_after / 2.0)
    }

    /// `master_stale_after` in milliseconds, as heartbeats are recorded.
    pub fn master_stale_after_ms(&self) -> i64 {
        (self.master_stale_after * 1000.0) as i64
    }

    /// The cluster's AutoScaling groups, masters' and minions'.
    pub fn configured_groups(&self) -> HashSet<&str> {
        self.master_groups
            .iter()
            .chain(&self.minion_groups)
            .map(String::as_str)
            .collect()
    }
}

impl RawConfig {
    fn validate(self) -> Result<PhoenixConfig> {
        let cluster = self.cluster.ok_or_else(|| {
            Error::config(
                "phoenix.cluster",
                "required: the name of this Phoenix cluster (lowercase letters, digits, '-')",
            )
        })?;
        check_cluster_name(&cluster)?;
        if let Some(region) = &self.region {
            check_region(region)?;
        }
        let masters_table = self
            .masters_table
            .unwrap_or_else(|| format!("phoenix-{cluster}-masters"));
        check_table_name("phoenix.masters_table", &masters_table)?;
        let minions_table = self
            .minions_table
            .unwrap_or_else(|| format!("phoenix-{cluster}-minions"));
        check_table_name("phoenix.minions_table", &minions_table)?;
        if masters_table == minions_table {
            return Err(Error::config(
                "phoenix.minions_table",
                format!("must differ from phoenix.masters_table ({masters_table})"),
            ));
        }
        let queue_url = self
            .queue_url
            .map(|url| check_queue_url("phoenix.queue_url", url))
            .transpose()?;
        let master_key_secret = self
            .master_key_secret
            .unwrap_or_else(|| format!("phoenix/{cluster}/master-key"));
        if master_key_secret.is_empty() || master_key_secret.len() > 512 {
            return Err(Error::config(
                "phoenix.master_key_secret",
                "must be a Secrets Manager name or ARN of 1 to 512 characters",
            ));
        }
        let master_groups = self
            .master_groups
            .unwrap_or_else(|| vec![format!("phoenix-{cluster}-masters")]);
        check_groups("phoenix.master_groups", &master_groups)?;
        let minion_groups = self
            .minion_groups
            .unwrap_or_else(|| vec![format!("phoenix-{cluster}-minions")]);
        check_groups("phoenix.minion_groups", &minion_groups)?;
        if let Some(shared) = master_groups.iter().find(|g| minion_groups.contains(g)) {
            return Err(Error::config(
                "phoenix.minion_groups",
                format!(
                    "group {shared:?} is also in phoenix.master_groups: an instance has one role"
                ),
            ));
        }

        let pollers = self.pollers.unwrap_or(defaults::POLLERS);
        if !(1..=10).contains(&pollers) {
            return Err(Error::config(
                "phoenix.pollers",
                format!("{pollers} is out of range: between 1 and 10"),
            ));
        }
        let heartbeat_interval = self
            .heartbeat_interval
            .unwrap_or(defaults::HEARTBEAT_INTERVAL);
        check_range("phoenix.heartbeat_interval", heartbeat_interval, 1.0, 300.0)?;
        let master_stale_after = self
            .master_stale_after
            .unwrap_or(defaults::MASTER_STALE_AFTER);
        check_range(
            "phoenix.master_stale_after",
            master_stale_after,
            3.0,
            3600.0,
        )?;
        if master_stale_after < 2.0 * heartbeat_interval {
            return Err(Error::config(
                "phoenix.master_stale_after",
                format!(
                    "{master_stale_after} s is less than two heartbeats \
                     (phoenix.heartbeat_interval is {heartbeat_interval} s): one late heartbeat \
                     would drop a healthy master"
                ),
            ));
        }
        let serve_timeout =
            serve_timeout(self.serve_timeout, heartbeat_interval, master_stale_after)?;
        if let Some(id) = &self.master_id {
            if id.parse::<crate::lifecycle::InstanceId>().is_err() {
                return Err(Error::config(
                    "phoenix.master_id",
                    format!("{id:?} is not an EC2 instance id (i- and 8 or 17 hex digits)"),
                ));
            }
        }
        if self
            .master_address
            .as_deref()
            .is_some_and(|a| a.trim().is_empty())
        {
            return Err(Error::config("phoenix.master_address", "must not be empty"));
        }
        let terminated_ttl = self.terminated_ttl.unwrap_or(defaults::TERMINATED_TTL);
        if !(60..=366 * 24 * 3600).contains(&terminated_ttl) {
            return Err(Error::config(
                "phoenix.terminated_ttl",
                format!("{terminated_ttl} is out of range: between 60 s and 366 days"),
            ));
        }

        let master_drain_time = self
            .master_drain_time
            .unwrap_or(defaults::MASTER_DRAIN_TIME);
        check_range("phoenix.master_drain_time", master_drain_time, 0.0, 3600.0)?;

        Ok(PhoenixConfig {
            cluster,
            region: self.region,
            masters_table,
            minions_table,
            queue_url,
            master_key_secret,
            master_groups,
            minion_groups,
            pollers,
            heartbeat_interval,
            master_stale_after,
            serve_timeout,
            terminated_ttl,
            highstate_gating: self.highstate_gating.unwrap_or(false),
            master_drain_time,
            master_id: self.master_id,
            master_address: self.master_address,
            aws: self.aws.validate()?,
            keys: self.keys.validate()?,
            drop_in: {
                self.drop_in.validate()?;
                self.drop_in
            },
            beacon: self.beacon.validate()?,
            highstate: self.highstate.validate()?,
            sns: self.sns.validate()?,
            replacement: self.replacement.validate(master_stale_after)?,
            retry: self.retry.validate()?,
        })
    }
}

impl RawHighstateSettings {
    fn validate(self) -> Result<HighstateSettings> {
        let attempts = self.attempts.unwrap_or(defaults::HIGHSTATE_ATTEMPTS);
        if !(1..=20).contains(&attempts) {
            return Err(Error::config(
                "phoenix.highstate.attempts",
                format!("{attempts} is out of range: between 1 and 20"),
            ));
        }
        let retry_delay = self.retry_delay.unwrap_or(defaults::HIGHSTATE_RETRY_DELAY);
        check_range("phoenix.highstate.retry_delay", retry_delay, 0.0, 86400.0)?;
        let retry_max_delay = self
            .retry_max_delay
            .unwrap_or(defaults::HIGHSTATE_RETRY_MAX_DELAY.max(retry_delay));
        check_range(
            "phoenix.highstate.retry_max_delay",
            retry_max_delay,
            retry_delay,
            86400.0,
        )?;
        let timeout = self.timeout.unwrap_or(defaults::HIGHSTATE_TIMEOUT);
        check_range("phoenix.highstate.timeout", timeout, 5.0, 86400.0)?;
        let check_interval = self
            .check_interval
            .unwrap_or(defaults::HIGHSTATE_CHECK_INTERVAL);
        check_range(
            "phoenix.highstate.check_interval",
            check_interval,
            1.0,
            3600.0,
        )?;
        let lifecycle_heartbeat_interval = self
            .lifecycle_heartbeat_interval
            .unwrap_or(defaults::LIFECYCLE_HEARTBEAT_INTERVAL);
        // AutoScaling's HeartbeatTimeout is at least 30 s: a heartbeat every 30 s or more often
        // keeps any hook alive, one per second is plenty.
        check_range(
            "phoenix.highstate.lifecycle_heartbeat_interval",
            lifecycle_heartbeat_interval,
            1.0,
            3600.0,
        )?;
        Ok(HighstateSettings {
            attempts,
            retry_delay,
            retry_max_delay,
            timeout,
            check_interval,
            lifecycle_heartbeat_interval,
        })
    }
}

impl RawKeySettings {
    fn validate(self) -> Result<KeySettings> {
        let reconcile_interval = self
            .reconcile_interval
            .unwrap_or(defaults::KEY_RECONCILE_INTERVAL);
        check_range(
            "phoenix.keys.reconcile_interval",
            reconcile_interval,
            1.0,
            3600.0,
        )?;
        let unmanaged = self.unmanaged.unwrap_or_default();
        for id in &unmanaged {
            // Ids are matched exactly; a pattern here would silently match nothing.
            if id.trim().is_empty() || id.contains(['*', '?', '[', ']']) {
                return Err(Error::config(
                    "phoenix.keys.unmanaged",
                    format!("{id:?} is not a minion id: list exact ids, not patterns"),
                ));
            }
        }
        let enrolment_window = self.enrolment_window.unwrap_or(defaults::ENROLMENT_WINDOW);
        check_range(
            "phoenix.keys.enrolment_window",
            enrolment_window,
            60.0,
            86400.0,
        )?;
        Ok(KeySettings {
            reconcile_interval,
            unmanaged,
            require_group: self.require_group.unwrap_or(false),
            verify_autoscaling: self.verify_autoscaling.unwrap_or(false),
            identity_certificates: identity_certificates(
                self.identity_certificates.unwrap_or_default(),
            )?,
            enrolment_window,
            trust: self.trust.unwrap_or(KeyTrust::IdentityDocument),
            claim_queue_url: self
                .claim_queue_url
                .map(|url| check_queue_url("phoenix.keys.claim_queue_url", url))
                .transpose()?,
            account_id: self.account_id.map(check_account_id).transpose()?,
        })
    }
}

/// An AWS account id: twelve digits.
fn check_account_id(account: String) -> Result<String> {
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(account)
    } else {
        Err(Error::config(
            "phoenix.keys.account_id",
            format!("{account:?} is not an AWS account id (twelve digits)"),
        ))
    }
}

/// The largest certificate file read for `phoenix.keys.identity_certificates`; AWS's are
/// about 1 KiB each.
const MAX_CERTIFICATE_FILE_BYTES: u64 = 256 * 1024;

/// `phoenix.keys.identity_certificates`, each region's entry read and parsed now, so that a
/// missing file or a bad certificate stops the component at start with the key to fix, not
/// at the first claim.
fn identity_certificates(configured: BTreeMap<String, String>) -> Result<Vec<IdentityCertificate>> {
    let mut certificates = Vec::new();
    for (region, value) in configured {
        if !is_region_name(&region) {
            return Err(Error::config(
                "phoenix.keys.identity_certificates",
                format!("{region:?} is not an AWS region name (like ap-southeast-3)"),
            ));
        }
        let key = format!("phoenix.keys.identity_certificates.{region}");
        let (pem, name) = if value.trim_start().starts_with("-----BEGIN") {
            (value, key.clone())
        } else if value.starts_with('/') {
            (read_certificate_file(&key, &value)?, value)
        } else {
            return Err(Error::config(
                key,
                "must be PEM text (-----BEGIN CERTIFICATE-----...) or the absolute path of a \
                 PEM file",
            ));
        };
        let parsed = IdentityCertificate::parse_pem(&pem, &name, Serves::Region(region))
            .map_err(|reason| Error::config(&key, reason))?;
        certificates.extend(parsed);
    }
    Ok(certificates)
}

fn read_certificate_file(key: &str, path: &str) -> Result<String> {
    let unreadable = |err: std::io::Error| Error::config(key, format!("cannot read {path}: {err}"));
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| {
            file.take(MAX_CERTIFICATE_FILE_BYTES + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_CERTIFICATE_FILE_BYTES {
        return Err(Error::config(
            key,
            format!(
                "{path} is larger than {MAX_CERTIFICATE_FILE_BYTES} bytes: not a certificate file"
            ),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| Error::config(key, format!("{path} is not text: not a PEM file")))
}

impl RawBeaconSettings {
    fn validate(self) -> Result<BeaconSettings> {
        let refresh_interval = self
            .refresh_interval
            .unwrap_or(defaults::BEACON_REFRESH_INTERVAL);
        check_range(
            "phoenix.beacon.refresh_interval",
            refresh_interval,
            1.0,
            3600.0,
        )?;
        if let Some(command) = &self.restart_command {
            if command
                .first()
                .is_none_or(|program| program.trim().is_empty())
            {
                return Err(Error::config(
                    "phoenix.beacon.restart_command",
                    "must be a list whose first item is the program to run, like \
                     [systemctl, --no-block, restart, salt-minion]; leave it out for Salt's \
                     own service.restart",
                ));
            }
        }
        let restart_service = self
            .restart_service
            .unwrap_or_else(|| defaults::RESTART_SERVICE.to_owned());
        if restart_service.trim().is_empty() {
            return Err(Error::config(
                "phoenix.beacon.restart_service",
                "must name the salt-minion service",
            ));
        }
        let restart_jitter = self.restart_jitter.unwrap_or(defaults::RESTART_JITTER);
        check_range("phoenix.beacon.restart_jitter", restart_jitter, 0.0, 300.0)?;
        let restart_splay = self.restart_splay.unwrap_or(defaults::RESTART_SPLAY);
        check_range("phoenix.beacon.restart_splay", restart_splay, 0.0, 86400.0)?;
        let min_restart_interval = self
            .min_restart_interval
            .unwrap_or(defaults::MIN_RESTART_INTERVAL);
        check_range(
            "phoenix.beacon.min_restart_interval",
            min_restart_interval,
            0.0,
            86400.0,
        )?;
        Ok(BeaconSettings {
            refresh_interval,
            restart_command: self.restart_command,
            restart_service,
            restart_jitter,
            restart_splay,
            min_restart_interval,
        })
    }
}

impl RawAwsSettings {
    fn validate(self) -> Result<AwsSettings> {
        let connect_timeout = self.connect_timeout.unwrap_or(defaults::CONNECT_TIMEOUT);
        check_range("phoenix.aws.connect_timeout", connect_timeout, 0.1, 60.0)?;
        let attempt_timeout = self.attempt_timeout.unwrap_or(defaults::ATTEMPT_TIMEOUT);
        check_range("phoenix.aws.attempt_timeout", attempt_timeout, 1.0, 600.0)?;
        if attempt_timeout <= SQS_LONG_POLL_SECONDS + 2.0 {
            return Err(Error::config(
                "phoenix.aws.attempt_timeout",
                format!(
                    "{attempt_timeout} s does not leave room for the {SQS_LONG_POLL_SECONDS} s SQS \
                     long poll: use more than {} s",
                    SQS_LONG_POLL_SECONDS + 2.0
                ),
            ));
        }
        let operation_timeout = self
            .operation_timeout
            .unwrap_or(defaults::OPERATION_TIMEOUT);
        check_range(
            "phoenix.aws.operation_timeout",
            operation_timeout,
            1.0,
            3600.0,
        )?;
        if operation_timeout < attempt_timeout {
            return Err(Error::config(
                "phoenix.aws.operation_timeout",
                format!("{operation_timeout} s is shorter than one attempt ({attempt_timeout} s)"),
            ));
        }
        let max_attempts = self.max_attempts.unwrap_or(defaults::MAX_ATTEMPTS);
        if !(1..=20).contains(&max_attempts) {
            return Err(Error::config(
                "phoenix.aws.max_attempts",
                format!("{max_attempts} is out of range: between 1 and 20"),
            ));
        }
        Ok(AwsSettings {
            connect_timeout,
            attempt_timeout,
            operation_timeout,
            max_attempts,
        })
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

fn check_cluster_name(name: &str) -> Result<()> {
    let valid = (1..=31).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if valid {
        Ok(())
    } else {
        Err(Error::config(
            "phoenix.cluster",
            format!("{name:?} is not a cluster name: 1 to 31 lowercase letters, digits or '-', not starting with '-'"),
        ))
    }
}

fn check_region(region: &str) -> Result<()> {
    if is_region_name(region) {
        Ok(())
    } else {
        Err(Error::config(
            "phoenix.region",
            format!("{region:?} is not an AWS region name (like us-east-1)"),
        ))
    }
}

fn check_table_name(key: &str, name: &str) -> Result<()> {
    let valid = (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if valid {
        Ok(())
    } else {
        Err(Error::config(
            key,
            format!("{name:?} is not a DynamoDB table name: 3 to 255 of a-z A-Z 0-9 _ - ."),
        ))
    }
}

fn check_queue_url(key: &str, url: String) -> Result<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if rest.split('/').filter(|s| !s.is_empty()).count() >= 3 => Ok(url),
        _ => Err(Error::config(
            key,
            format!("{url:?} is not an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)"),
        )),
    }
}

fn check_groups(key: &str, groups: &[String]) -> Result<()> {
    if groups.is_empty() {
        return Err(Error::config(
            key,
            "must name at least one AutoScaling group",
        ));
    }
    for group in groups {
        if group.is_empty() || group.len() > 255 {
            return Err(Error::config(
                key,
                format!("{group:?} is not an AutoScaling group name (1 to 255 characters)"),
            ));
        }
    }
    Ok(())
}

/// `phoenix.serve_timeout`, checked against the heartbeat's timings: a master that serves
/// must stay in the live list even when its ping takes the whole timeout, so one interval
/// and one timeout fit within `master_stale_after`. Unset, it is 5 s, or less where the
/// timings are tighter (half of what `master_stale_after` leaves after one interval).
fn serve_timeout(
    configured: Option<f64>,
    heartbeat_interval: f64,
    master_stale_after: f64,
) -> Result<f64> {
    let room = master_stale_after - heartbeat_interval;
    let Some(timeout) = configured else {
        return Ok(defaults::SERVE_TIMEOUT.min(room / 2.0));
    };
    check_range("phoenix.serve_timeout", timeout, 0.1, 300.0)?;
    if timeout >= room {
        return Err(Error::config(
            "phoenix.serve_timeout",
            format!(
                "{timeout} s leaves no room: one heartbeat interval ({heartbeat_interval} s) \
                 and one ping timeout must fit within phoenix.master_stale_after \
                 ({master_stale_after} s), or a master that serves would drop out of the \
                 live list"
            ),
        ));
    }
    Ok(timeout)
}

fn check_range(key: &str, value: f64, min: f64, max: f64) -> Result<()> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::config(
            key,
            format!("{value} is out of range: between {min} and {max} seconds"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_key(json: &str) -> String {
        match PhoenixConfig::from_json(json) {
            Err(Error::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_follow_the_cluster_name() {
        let config = PhoenixConfig::from_json(r#"{"cluster": "prod"}"#).unwrap();
        assert_eq!(config.masters_table, "phoenix-prod-masters");
        assert_eq!(config.minions_table, "phoenix-prod-minions");
        assert_eq!(config.master_key_secret, "phoenix/prod/master-key");
        assert_eq!(config.master_groups, vec!["phoenix-prod-masters"]);
        assert_eq!(config.minion_groups, vec!["phoenix-prod-minions"]);
        assert_eq!(config.heartbeat_interval, defaults::HEARTBEAT_INTERVAL);
        assert_eq!(config.serve_timeout, defaults::SERVE_TIMEOUT);
        assert_eq!(config.aws.max_attempts, defaults::MAX_ATTEMPTS);
        assert!(config.aws.attempt_timeout > SQS_LONG_POLL_SECONDS);
        assert_eq!(config.region, None);
        assert_eq!(
            config.keys.reconcile_interval,
            defaults::KEY_RECONCILE_INTERVAL
        );
        assert!(config.keys.unmanaged.is_empty());
        assert!(!config.keys.require_group && !config.keys.verify_autoscaling);
    }

    #[test]
    fn the_serve_timeout_fits_between_two_heartbeats_and_staleness() {
        let tight = PhoenixConfig::from_json(
            r#"{"cluster": "p", "heartbeat_interval": 1, "master_stale_after": 4}"#,
        )
        .unwrap();
        assert_eq!(tight.serve_timeout, 1.5);
        let set = PhoenixConfig::from_json(r#"{"cluster": "p", "serve_timeout": 20}"#).unwrap();
        assert_eq!(set.serve_timeout, 20.0);
        for bad in [r#""serve_timeout": 25"#, r#""serve_timeout": 0"#] {
            assert_eq!(
                err_key(&format!(r#"{{"cluster": "p", {bad}}}"#)),
                "phoenix.serve_timeout"
            );
        }
    }

    #[test]
    fn key_settings_are_checked() {
        assert_eq!(
            err_key(r#"{"cluster": "p", "keys": {"unmanaged": ["web-*"]}}"#),
            "phoenix.keys.unmanaged"
        );
        assert_eq!(
            err_key(r#"{"cluster": "p", "keys": {"reconcile_interval": 0}}"#),
            "phoenix.keys.reconcile_interval"
        );
        assert_eq!(
            err_key(r#"{"cluster": "p", "keys": {"accept_all": true}}"#),
            "phoenix.keys.accept_all"
        );
        let config = PhoenixConfig::from_json(
            r#"{"cluster": "p", "keys": {"unmanaged": ["bastion"], "require_group": true}}"#,
        )
        .unwrap();
        assert_eq!(config.keys.unmanaged, vec!["bastion"]);
        assert!(config.keys.require_group);
    }

    #[test]
    fn identity_certificates_are_read_from_text_or_file_and_checked() {
        const CERT: &str = include_str!("enrolment/fixtures/identity-cert.pem");
        let with = |entries: serde_json::Value| {
            PhoenixConfig::from_json(
                &serde_json::json!({"cluster": "p", "keys": {"identity_certificates": entries}})
                    .to_string(),
            )
        };
        let config = PhoenixConfig::from_json(r#"{"cluster": "p"}"#).unwrap();
        assert!(config.keys.identity_certificates.is_empty());
        assert_eq!(config.keys.enrolment_window, defaults::ENROLMENT_WINDOW);
        assert_eq!(config.keys.enrolment_window_ms(), 900_000);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jakarta.pem");
        std::fs::write(&file, format!("{CERT}{CERT}")).unwrap();
        let path = file.to_str().unwrap();
        let config = with(serde_json::json!({"us-east-1": CERT, "ap-southeast-3": path})).unwrap();
        let read: Vec<_> = config
            .keys
            .identity_certificates
            .iter()
            .map(|c| (c.name.clone(), c.serves.clone()))
            .collect();
        let jakarta = Serves::Region("ap-southeast-3".into());
        assert_eq!(
            read,
            [
                (format!("{path} #1"), jakarta.clone()),
                (format!("{path} #2"), jakarta),
                (
                    "phoenix.keys.identity_certificates.us-east-1".to_owned(),
                    Serves::Region("us-east-1".into())
                ),
            ]
        );

        let ec = include_str!("enrolment/fixtures/ec-cert.pem");
        let missing = dir.path().join("missing.pem");
        let not_text = dir.path().join("binary.pem");
        std::fs::write(&not_text, [0xff, 0xfe, 0x00]).unwrap();
        for (entries, key) in [
            (
                serde_json::json!({"us-east-1": "jakarta.pem"}),
                "phoenix.keys.identity_certificates.us-east-1",
            ),
            (
                serde_json::json!({"us-east-1": missing.to_str().unwrap()}),
                "phoenix.keys.identity_certificates.us-east-1",
            ),
            (
                serde_json::json!({"us-east-1": not_text.to_str().unwrap()}),
                "phoenix.keys.identity_certificates.us-east-1",
            ),
            (
                serde_json::json!({"eu-west-1": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}),
                "phoenix.keys.identity_certificates.eu-west-1",
            ),
            (
                serde_json::json!({"eu-west-1": ec}),
                "phoenix.keys.identity_certificates.eu-west-1",
            ),
            (
                serde_json::json!({"Jakarta": CERT}),
                "phoenix.keys.identity_certificates",
            ),
            (
                serde_json::json!({"eu-west-1": 7}),
                "phoenix.keys.identity_certificates.eu-west-1",
            ),
            (
                serde_json::json!([CERT]),
                "phoenix.keys.identity_certificates",
            ),
        ] {
            match with(entries.clone()) {
                Err(Error::Config { key: got, .. }) => assert_eq!(got, key, "{entries}"),
                other => panic!("{entries}: expected a config error, got {other:?}"),
            }
        }
        assert_eq!(
            err_key(r#"{"cluster": "p", "keys": {"enrolment_window": 10}}"#),
            "phoenix.keys.enrolment_window"
        );
    }

    #[test]
    fn each_bad_value_names_its_key() {
        assert_eq!(err_key(r#"{}"#), "phoenix.cluster");
        assert_eq!(err_key(r#"{"cluster": "Prod"}"#), "phoenix.cluster");
        assert_eq!(
            err_key(r#"{"cluster": "p", "heartbeat_interval": "5"}"#),
            "phoenix.heartbeat_interval"
        );
        assert_eq!(
            err_key(r#"{"cluster": "p", "heartbeat_interval": 0}"#),
            "phoenix.heartbeat_interval"
        );
        assert_eq!(
            err_key(r#"{"cluster": "p", "master_stale_after": 6}"#),
            "phoenix.master_stale_after"
        );
        assert_eq!(
            err_key(r#"{"cluster": "p", "region": "mars"}"#),
            "phoenix.region"
        );
        assert_eq!(
            err_key(r#"{"cluster": "p", "queue_url": "sqs"}"#),
            "phoenix.queue_url"
        );
        assert_eq!(
            err_key(r#"{"cluster": "p", "masters_table": "x"}"#),
            "phoenix.masters_table"
        );
        assert_eq!(
            err_key(r#"{"cluster": "p", "minion_groups": []}"#),
            "phoenix.minion_groups"
        );
        assert_eq!(
            err_key(r#"{"cluster": "p", "aws": {"attempt_timeout": 20}}"#),
            "phoenix.aws.attempt_timeout"
        );
        assert_eq!(
            err_key(r#"{"cluster": "p", "aws": {"max_attempts": -1}}"#),
            "phoenix.aws.max_attempts"
        );
        assert_eq!(err_key(r#"[1, 2]"#), "phoenix");
    }

    #[test]
    fn an_unknown_key_is_an_error_that_names_it() {
        match PhoenixConfig::from_json(r#"{"cluster": "p", "heartbeat_intervall": 5}"#) {
            Err(Error::Config { key, reason }) => {
                assert_eq!(key, "phoenix.heartbeat_intervall");
                assert!(reason.contains("unknown field"), "{reason}");
            }
            other => panic!("expected a config error, got {other:?}"),
        }
        assert_eq!(
            err_key(r#"{"cluster": "p", "aws": {"retries": 3}}"#),
            "phoenix.aws.retries"
        );
    }

    #[test]
    fn the_engine_requires_a_queue_url() {
        let config = PhoenixConfig::from_json(r#"{"cluster": "p"}"#).unwrap();
        assert!(
            matches!(config.require_queue_url(), Err(Error::Config { key, .. }) if key == "phoenix.queue_url")
        );
    }

    #[test]
    fn pollers_default_to_two_and_stay_in_range() {
        let config = PhoenixConfig::from_json(r#"{"cluster": "p"}"#).unwrap();
        assert_eq!(config.pollers, 2);
        assert_eq!(
            err_key(r#"{"cluster": "p", "pollers": 0}"#),
            "phoenix.pollers"
        );
        assert_eq!(
            err_key(r#"{"cluster": "p", "pollers": 11}"#),
            "phoenix.pollers"
        );
        let one = PhoenixConfig::from_json(r#"{"cluster": "p", "pollers": 1}"#).unwrap();
        assert_eq!(one.pollers, 1);
    }

    #[test]
    fn one_group_cannot_hold_both_roles() {
        let json = r#"{"cluster": "p", "master_groups": ["g"], "minion_groups": ["g"]}"#;
        assert_eq!(err_key(json), "phoenix.minion_groups");
    }

    #[test]
    fn the_first_highstate_has_defaults_and_names_its_bad_keys() {
        let config = PhoenixConfig::from_json(r#"{"cluster": "p"}"#).unwrap();
        assert_eq!(config.highstate.attempts, defaults::HIGHSTATE_ATTEMPTS);
        assert_eq!(config.highstate.retry_delay_ms(2), 60_000);
        assert_eq!(config.highstate.retry_delay_ms(3), 120_000);
        assert_eq!(config.highstate.retry_delay_ms(30), 900_000);
        assert_eq!(config.highstate.timeout_ms(), 3_600_000);
        // A retry delay above the default cap raises the cap with it.
        let slow =
            PhoenixConfig::from_json(r#"{"cluster": "p", "highstate": {"retry_delay": 1200}}"#)
                .unwrap();
        assert_eq!(slow.highstate.retry_delay_ms(4), 1_200_000);
        for (json, key) in [
            (
                r#"{"highstate": {"attempts": 0}}"#,
                "phoenix.highstate.attempts",
            ),
            (
                r#"{"highstate": {"retry_delay": -1}}"#,
                "phoenix.highstate.retry_delay",
            ),
            (
                r#"{"highstate": {"retry_delay": 60, "retry_max_delay": 30}}"#,
                "phoenix.highstate.retry_max_delay",
            ),
            (
                r#"{"highstate": {"timeout": 1}}"#,
                "phoenix.highstate.timeout",
            ),
            (
                r#"{"highstate": {"check_interval": 0}}"#,
                "phoenix.highstate.check_interval",
            ),
            (
                r#"{"highstate": {"retries": 3}}"#,
                "phoenix.highstate.retries",
            ),
        ] {
            let json = json.replacen('{', r#"{"cluster": "p", "#, 1);
            assert_eq!(err_key(&json), key, "{json}");
        }
    }

    #[test]
    fn the_beacon_and_drop_in_have_defaults_and_name_their_bad_keys() {
        let config = PhoenixConfig::from_json(r#"{"cluster": "p"}"#).unwrap();
        assert_eq!(
            config.beacon.refresh_interval,
            defaults::BEACON_REFRESH_INTERVAL
        );
        assert_eq!(config.beacon.restart_command, None);
        assert_eq!(config.beacon.restart_service, "salt-minion");
        assert_eq!(config.drop_in, DropInSettings::default());

        let config = PhoenixConfig::from_json(
            r#"{"cluster": "p", "beacon": {"restart_command": ["systemctl", "restart", "salt-minion"], "restart_splay": 0},
                "drop_in": {"path": "/etc/salt/minion.d/masters.conf", "master_port": 14506}}"#,
        )
        .unwrap();
        assert_eq!(
            config.beacon.restart_command.as_ref().unwrap()[0],
            "systemctl"
        );
        assert_eq!(config.beacon.restart_splay, 0.0);
        assert_eq!(config.drop_in.master_port, 14506);

        for (json, key) in [
            (r#"{"beacon": {"refresh": 5}}"#, "phoenix.beacon.refresh"),
            (
                r#"{"beacon": {"refresh_interval": 0.5}}"#,
                "phoenix.beacon.refresh_interval",
            ),
            (
                r#"{"beacon": {"restart_command": []}}"#,
                "phoenix.beacon.restart_command",
            ),
            (
                r#"{"beacon": {"restart_command": [" "]}}"#,
                "phoenix.beacon.restart_command",
            ),
            (
                r#"{"beacon": {"restart_service": ""}}"#,
                "phoenix.beacon.restart_service",
            ),
            (
                r#"{"beacon": {"restart_jitter": 301}}"#,
                "phoenix.beacon.restart_jitter",
            ),
            (
                r#"{"beacon": {"min_restart_interval": -1}}"#,
                "phoenix.beacon.min_restart_interval",
            ),
            (
                r#"{"drop_in": {"master_alive_interval": 0}}"#,
                "phoenix.drop_in.master_alive_interval",
            ),
            (
                r#"{"drop_in": {"path": "minion.d/x.conf"}}"#,
                "phoenix.drop_in.path",
            ),
            (
                r#"{"drop_in": {"path": "/etc/salt/minion.d/.x.conf"}}"#,
                "phoenix.drop_in.path",
            ),
            (
                r#"{"drop_in": {"path": "/etc/salt/minion.d/x.yaml"}}"#,
                "phoenix.drop_in.path",
            ),
            (
                r#"{"drop_in": {"masters": ["a"]}}"#,
                "phoenix.drop_in.masters",
            ),
        ] {
            let json = json.replacen('{', r#"{"cluster": "p", "#, 1);
            assert_eq!(err_key(&json), key, "{json}");
        }
    }
}
