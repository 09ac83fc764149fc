//! The Salt failover settings the drop-in carries besides the master list.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where these settings live in the `phoenix:` block; validation errors name
/// `<SETTINGS_KEY>.<option>` so the operator knows which line to fix.
pub const SETTINGS_KEY: &str = "phoenix.drop_in";

/// How a minion uses the masters it lists: Salt's `master_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MasterType {
    /// Connected to every live master at once (Salt's "hot" multi-master): an operator on any
    /// master reaches every minion, and a master that dies or hangs costs no failover at all,
    /// the other connections keep serving. The default: it is what makes `salt '*'` on any
    /// master mean the whole fleet.
    #[default]
    Str,
    /// Connected to one master at a time, the first of its rendezvous order that answers:
    /// each master carries only its share of the minions, but `salt '*'` on a master reaches
    /// only the minions on it, and a hung master's minions move only when Phoenix restarts
    /// them.
    Failover,
}

impl MasterType {
    /// The value Salt reads.
    pub fn as_str(self) -> &'static str {
        match self {
            MasterType::Str => "str",
            MasterType::Failover => "failover",
        }
    }
}

/// The Salt minion options Phoenix writes next to the master list.
///
/// `random_master: false` is always written and is not a setting: in both master types the
/// order of the list is this minion's rendezvous order (in `failover` the order it tries the
/// masters; in `str` the first is where its beacons run and where `salt-call` goes), which a
/// shuffled list would undo.
///
/// The defaults aim at fast failover. With them, a master whose host is gone is noticed by
/// Salt itself within about `master_alive_interval` + the keepalive bound (30 + 3 x 10 s) on an
/// open connection, and a dead master in the list costs a (re)starting minion at most
/// `auth_timeout` x `auth_tries` = 15 s before it tries the next one. A master that is hung but
/// keeps its sockets open is what Phoenix's registry heartbeat and beacon cover.
///
/// Deserializes from a map with any subset of the fields (the rest take their defaults);
/// unknown fields are an error, so a typo never falls back to a default silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DropInSettings {
    /// Where the drop-in lives. `None`: `minion.d/phoenix-masters.conf` beside the minion's
    /// config file (the caller knows where that is). Not written into the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `master_type`: `str` (every master at once, the default) or `failover`.
    pub master_type: MasterType,
    /// `master_port`: the masters' request server port (their `ret_port`). Salt's default 4506.
    pub master_port: u16,
    /// `publish_port`: the masters' publish port. `None` leaves it out, so Salt uses its
    /// default (4505).
    pub publish_port: Option<u16>,
    /// `master_alive_interval`, seconds: how often the minion checks that its master is still
    /// connected and fails over when it is not. Salt's default 0 schedules no check at all, so
    /// failover would never happen; Phoenix writes 10.
    pub master_alive_interval: u32,
    /// `master_tries`: how many passes over the master list a (re)starting minion makes
    /// before giving up; -1 is unlimited. Phoenix writes -1 so a minion that starts while every
    /// master is being replaced keeps trying instead of giving up (Salt's default is 1).
    pub master_tries: i32,
    /// `master_failback`: whether a minion returns to the first master of its list when that
    /// master comes back. Off by default: when the master list changes the beacon rewrites
    /// this file and restarts the minion anyway, and failback pings would add load.
    pub master_failback: bool,
    /// `master_failback_interval`, seconds between failback checks; written only when
    /// `master_failback` is on (Salt's default 0 would leave the check unscheduled).
    pub master_failback_interval: u32,
    /// `retry_dns`, seconds to wait before resolving a master's name again after a failure.
    /// Phoenix writes 0: the list comes from the registry, and a minion must move on rather
    /// than wait on a name that does not resolve (Salt's default is 30).
    pub retry_dns: u32,
    /// `auth_timeout`, seconds one authentication attempt with a master may take. Salt's
    /// current default is 5; written so the timing does not depend on the Salt release.
    pub auth_timeout: u32,
    /// `auth_tries`: timed-out authentication attempts with one master before the minion
    /// moves on. Phoenix writes 3 (Salt's default is 7): a dead master then costs 15 s, not 35.
    pub auth_tries: u32,
    /// `tcp_keepalive`: TCP keepalive on the minion's connections to the master, so a
    /// connection to a vanished host breaks instead of staying ESTABLISHED for hours.
    pub tcp_keepalive: bool,
    /// `tcp_keepalive_idle`, seconds of silence before the first probe (Salt's default 300).
    pub tcp_keepalive_idle: u32,
    /// `tcp_keepalive_cnt`: unanswered probes before the connection counts as dead
    /// (Salt's default is the OS's, 9 on Linux).
    pub tcp_keepalive_cnt: u32,
    /// `tcp_keepalive_intvl`, seconds between probes (Salt's default is the OS's, 75 on Linux).
    pub tcp_keepalive_intvl: u32,
}

impl Default for DropInSettings {
    fn default() -> Self {
        DropInSettings {
            path: None,
            master_type: MasterType::default(),
            master_port: 4506,
            publish_port: None,
            master_alive_interval: 10,
            master_tries: -1,
            master_failback: false,
            master_failback_interval: 30,
            retry_dns: 0,
            auth_timeout: 5,
            auth_tries: 3,
            tcp_keepalive: true,
            tcp_keepalive_idle: 30,
            tcp_keepalive_cnt: 3,
            tcp_keepalive_intvl: 10,
        }
    }
}

impl DropInSettings {
    /// Refuses values Salt would accept but that break failover or mean nothing.
    pub fn validate(&self) -> Result<()> {
        fn invalid(option: &str, reason: &str) -> Error {
            Error::config(format!("{SETTINGS_KEY}.{option}"), reason)
        }
        if let Some(path) = &self.path {
            check_path(path).map_err(|reason| invalid("path", &reason))?;
        }
        if self.master_port == 0 {
            return Err(invalid("master_port", "must be a port number (1-65535)"));
        }
        if self.publish_port == Some(0) {
            return Err(invalid("publish_port", "must be a port number (1-65535)"));
        }
        if self.master_alive_interval == 0 {
            return Err(invalid(
                "master_alive_interval",
                "must be at least 1 second: 0 turns Salt's failover check off",
            ));
        }
        if self.master_tries == 0 || self.master_tries < -1 {
            return Err(invalid(
                "master_tries",
                "must be -1 (keep trying) or at least 1",
            ));
        }
        if self.master_failback && self.master_type != MasterType::Failover {
            return Err(invalid(
                "master_failback",
                "only means something with master_type failover: a str minion is connected \
                 to every master",
            ));
        }
        if self.master_failback && self.master_failback_interval == 0 {
            return Err(invalid(
                "master_failback_interval",
                "must be at least 1 second when master_failback is on",
            ));
        }
        if self.auth_timeout == 0 {
            return Err(invalid("auth_timeout", "must be at least 1 second"));
        }
        if self.auth_tries == 0 {
            return Err(invalid("auth_tries", "must be at least 1"));
        }
        if self.tcp_keepalive {
            for (option, value) in [
                ("tcp_keepalive_idle", self.tcp_keepalive_idle),
                ("tcp_keepalive_cnt", self.tcp_keepalive_cnt),
                ("tcp_keepalive_intvl", self.tcp_keepalive_intvl),
            ] {
                if value == 0 {
                    return Err(invalid(
                        option,
                        "must be at least 1 when tcp_keepalive is on",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Why `path` cannot be the drop-in, if it cannot. Salt includes only `minion.d/*.conf`
/// (its `default_include`), and Phoenix's temporary files are hidden, so a hidden name or
/// another extension would be a drop-in that Salt never reads.
fn check_path(path: &str) -> std::result::Result<(), String> {
    let as_path = std::path::Path::new(path);
    if !as_path.is_absolute() {
        return Err(format!("{path:?} must be an absolute path"));
    }
    let name = as_path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    if name.starts_with('.') || !name.ends_with(".conf") || name.len() <= ".conf".len() {
        return Err(format!(
            "{path:?} must name a visible *.conf file: Salt includes only minion.d/*.conf"
        ));
    }
    Ok(())
}
