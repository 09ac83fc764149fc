//! The text of the drop-in.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::quote::{json_ascii_list, yaml_quoted};
use super::settings::{DropInSettings, MasterType};
use crate::error::{Error, Result};

/// The first line of every drop-in Phoenix writes starts with this. A file at the drop-in's
/// path whose first line does not is the operator's, and Phoenix never touches it.
pub const OWNERSHIP_MARKER: &str = "# Managed by Phoenix (phoenix-salt)";

/// The header line that repeats the master list as one JSON array, so that reading it back
/// does not need a YAML parser, and a hand edit of the list below shows as a mismatch.
pub(crate) const MASTERS_LINE_PREFIX: &str = "# phoenix-masters: ";

/// The drop-in text for `masters`, in the order given, with `settings`.
///
/// The same inputs always give the same bytes, so an unchanged list never rewrites the file.
/// A master listed twice is written once, at its first place (two registry rows can share an
/// address for a while when a replacement master reuses a private IP).
///
/// Errors: [`Error::Conflict`] for an empty list (a minion with no master cannot be
/// managed; never written, docs/architecture.md invariant 4) or an entry that cannot be a
/// master address (empty, blank, surrounded by whitespace, or holding control characters: a
/// registry row Phoenix refuses to act on); [`Error::Config`] for invalid settings.
pub fn render(masters: &[String], settings: &DropInSettings) -> Result<String> {
    settings.validate()?;
    let masters = unique_in_order(masters);
    check_masters(&masters).map_err(Error::Conflict)?;

    let mut text = String::with_capacity(512 + 32 * masters.len());
    // Writing to a String cannot fail; `let _` keeps that out of the error paths.
    let _ = writeln!(
        text,
        "{OWNERSHIP_MARKER}: do not edit; Phoenix rewrites this file when the live masters change."
    );
    let _ = writeln!(
        text,
        "# Put your own minion settings in another file of minion.d."
    );
    let _ = writeln!(text, "{MASTERS_LINE_PREFIX}{}", json_ascii_list(&masters));
    text.push_str("master:\n");
    for master in &masters {
        let _ = writeln!(text, "  - {}", yaml_quoted(master));
    }
    let _ = writeln!(text, "master_type: {}", settings.master_type.as_str());
    text.push_str("random_master: false\n");
    if settings.master_type == MasterType::Str {
        // Salt runs a str minion's beacons only in its connection to the first master, and
        // only once that connection is up: without this, a minion whose first master died
        // before it started would never run the beacon that moves it off that master.
        text.push_str("beacons_before_connect: true\n");
    }
    let _ = writeln!(text, "retry_dns: {}", settings.retry_dns);
    let _ = writeln!(text, "master_port: {}", settings.master_port);
    if let Some(port) = settings.publish_port {
        let _ = writeln!(text, "publish_port: {port}");
    }
    let _ = writeln!(
        text,
        "master_alive_interval: {}",
        settings.master_alive_interval
    );
    let _ = writeln!(text, "master_tries: {}", settings.master_tries);
    if settings.master_type == MasterType::Failover {
        let _ = writeln!(text, "master_failback: {}", settings.master_failback);
    }
    if settings.master_failback {
        let _ = writeln!(
            text,
            "master_failback_interval: {}",
            settings.master_failback_interval
        );
    }
    let _ = writeln!(text, "auth_timeout: {}", settings.auth_timeout);
    let _ = writeln!(text, "auth_tries: {}", settings.auth_tries);
    let _ = writeln!(text, "tcp_keepalive: {}", settings.tcp_keepalive);
    if settings.tcp_keepalive {
        let _ = writeln!(text, "tcp_keepalive_idle: {}", settings.tcp_keepalive_idle);
        let _ = writeln!(text, "tcp_keepalive_cnt: {}", settings.tcp_keepalive_cnt);
        let _ = writeln!(
            text,
            "tcp_keepalive_intvl: {}",
            settings.tcp_keepalive_intvl
        );
    }
    Ok(text)
}

/// `masters` without repeats, each at its first place.
pub(crate) fn unique_in_order(masters: &[String]) -> Vec<String> {
    let mut seen = HashSet::with_capacity(masters.len());
    masters
        .iter()
        .filter(|m| seen.insert(m.as_str()))
        .cloned()
        .collect()
}

/// Why `masters` cannot be written, if it cannot.
pub(crate) fn check_masters(masters: &[String]) -> Result<(), String> {
    if masters.is_empty() {
        return Err(
            "refusing to write an empty master list: a minion with no master cannot be managed"
                .to_owned(),
        );
    }
    for master in masters {
        let reason = if master.trim().is_empty() {
            Some("it is empty")
        } else if master.trim() != master {
            Some("it starts or ends with whitespace")
        } else if master.chars().any(char::is_control) {
            Some("it contains a control character")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(format!(
                "refusing to write master {master:?}: {reason}, it cannot be a master address"
            ));
        }
    }
    Ok(())
}
