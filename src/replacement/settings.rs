//! `phoenix.replacement`: when the live masters ask AutoScaling to replace a peer that
//! stopped serving.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A master silent this long is reported (two minutes: long enough that a salt-master
/// restarted by its service manager, or a short network blip, is not replaced).
pub const DEFAULT_REPLACE_AFTER: f64 = 120.0;
/// AutoScaling's own default HealthCheckGracePeriod for groups made in the console.
pub const DEFAULT_LAUNCH_GRACE: f64 = 300.0;
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplacementSettings {
    /// Report stale masters at all. Off: the masters' group relies on its own health check.
    pub enabled: bool,
    /// Seconds a running master's heartbeat must stand still, as the reporting master's own
    /// clock measures it, before it is reported to AutoScaling as Unhealthy.
    pub replace_after: f64,
    /// Seconds after a master's launch during which it is never reported: the masters'
    /// group's HealthCheckGracePeriod.
    pub launch_grace: f64,
    /// The most masters of the cluster reported and not yet terminated at once.
    pub max_in_flight: u32,
}

impl ReplacementSettings {
    pub fn replace_after_ms(&self) -> i64 {
        (self.replace_after * 1000.0) as i64
    }

    pub fn launch_grace_ms(&self) -> i64 {
        (self.launch_grace * 1000.0) as i64
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReplacementSettings {
    enabled: Option<bool>,
    replace_after: Option<f64>,
    launch_grace: Option<f64>,
    max_in_flight: Option<u32>,
}

impl RawReplacementSettings {
    /// `master_stale_after`: a master is reported only once it has also left the live list,
    /// so `replace_after` may not be shorter.
    pub(crate) fn validate(self, master_stale_after: f64) -> Result<ReplacementSettings> {
        let replace_after = self.replace_after.unwrap_or(DEFAULT_REPLACE_AFTER);
        if !(replace_after.is_finite() && (master_stale_after..=86_400.0).contains(&replace_after))
        {
            return Err(Error::config(
                "phoenix.replacement.replace_after",
                format!(
                    "{replace_after} is out of range: between phoenix.master_stale_after \
                     ({master_stale_after} s) and 86400 s; a master is reported only once it has \
                     left the live list"
                ),
            ));
        }
        let launch_grace = self.launch_grace.unwrap_or(DEFAULT_LAUNCH_GRACE);
        if !(launch_grace.is_finite() && (0.0..=86_400.0).contains(&launch_grace)) {
            return Err(Error::config(
                "phoenix.replacement.launch_grace",
                format!("{launch_grace} is out of range: between 0 and 86400 s"),
            ));
        }
        let max_in_flight = self.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        if !(1..=10).contains(&max_in_flight) {
            return Err(Error::config(
                "phoenix.replacement.max_in_flight",
                format!("{max_in_flight} is out of range: between 1 and 10"),
            ));
        }
        Ok(ReplacementSettings {
            enabled: self.enabled.unwrap_or(true),
            replace_after,
            launch_grace,
            max_in_flight,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::PhoenixConfig;
    use crate::error::Error;

    fn config(replacement: &str) -> crate::error::Result<PhoenixConfig> {
        PhoenixConfig::from_json(&format!(
            r#"{{"cluster": "prod", "master_stale_after": 30, "replacement": {replacement}}}"#
        ))
    }

    fn bad_key(replacement: &str) -> String {
        match config(replacement) {
            Err(Error::Config { key, .. }) => key,
            other => panic!("{replacement}: {other:?}"),
        }
    }

    #[test]
    fn defaults_and_bad_values_name_their_key() {
        let settings = config("{}").unwrap().replacement;
        assert!(settings.enabled);
        assert_eq!(settings.replace_after_ms(), 120_000);
        assert_eq!(settings.launch_grace_ms(), 300_000);
        assert_eq!(settings.max_in_flight, 1);
        let set = config(
            r#"{"enabled": false, "replace_after": 30, "launch_grace": 0, "max_in_flight": 2}"#,
        )
        .unwrap()
        .replacement;
        assert_eq!(
            (
                set.enabled,
                set.replace_after,
                set.launch_grace,
                set.max_in_flight
            ),
            (false, 30.0, 0.0, 2)
        );
        // Never before the master left the live list.
        assert_eq!(
            bad_key(r#"{"replace_after": 29}"#),
            "phoenix.replacement.replace_after"
        );
        assert_eq!(
            bad_key(r#"{"launch_grace": -1}"#),
            "phoenix.replacement.launch_grace"
        );
        assert_eq!(
            bad_key(r#"{"max_in_flight": 0}"#),
            "phoenix.replacement.max_in_flight"
        );
        assert_eq!(
            bad_key(r#"{"replace_afer": 60}"#),
            "phoenix.replacement.replace_afer"
        );
    }
}
