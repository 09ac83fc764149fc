//! The Phoenix minion drop-in, e.g. `/etc/salt/minion.d/phoenix-masters.conf`.
//!
//! It carries the minion's master list, in the minion's own order (see
//! [`ordering`](crate::ordering)), and the settings that make Salt use that list: every master
//! at once (`master_type: str`, the default) or one at a time (`failover`)
//! ([`DropInSettings`]). The beacon and `phoenix minion-config` rewrite it
//! through [`update`] when the live masters change; Salt reads it as YAML when the minion
//! starts (a changed list needs a minion restart).
//!
//! The guards of docs/architecture.md, invariant 4 (the drop-in is never written empty) live
//! here, so that every writer gets them:
//! - an empty master list is never written ([`render`] refuses it);
//! - a file that Phoenix does not own is never touched: ownership is the first line, which
//!   starts with [`OWNERSHIP_MARKER`];
//! - a Phoenix file that cannot be read back is an error, never an empty list, and is not
//!   overwritten;
//! - every write replaces the file atomically ([`write_atomically`]).
//!
//! Salt merges `minion.d/*.conf` in name order after the main config file, a later file
//! winning, so the drop-in's name decides whether an operator's own file can override it.

mod quote;
mod read;
mod render;
mod settings;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use read::read_masters;
// For test stand-ins of `update` that must drop repeats exactly as it does.
#[cfg(test)]
pub(crate) use render::unique_in_order;
pub use render::{render, OWNERSHIP_MARKER};
pub use settings::{DropInSettings, MasterType, SETTINGS_KEY};

use crate::error::Result;

/// Mode of the drop-in: like any config file, readable by all, written by its owner.
pub const DROP_IN_MODE: u32 = 0o644;

/// Replaces the drop-in at `path` with `contents` atomically, mode 0644
/// ([`crate::files::write_atomically`]).
pub fn write_atomically(path: &Path, contents: &str) -> Result<()> {
    crate::files::write_atomically(path, contents, DROP_IN_MODE)
}

/// What [`update`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropInChange {
    /// The drop-in already said exactly this; it was not touched. `masters` is the list it
    /// carries.
    Unchanged { masters: Vec<String> },
    /// The drop-in was (re)written. `old` is the list it carried before, `None` when there
    /// was no file; it equals `new` when only the settings changed.
    Written {
        old: Option<Vec<String>>,
        new: Vec<String>,
    },
}

/// Makes the drop-in at `path` carry `masters` (in this order, repeats dropped) and
/// `settings`, writing only when its text would change.
///
/// Nothing is written when the list is empty or holds an entry that cannot be an address,
/// when the settings are invalid, when the file at `path` is not Phoenix's, or when it is
/// Phoenix's but cannot be read back: see [`render`] and [`read_masters`] for the errors.
///
/// The caller decides what a rewrite means (the beacon restarts the minion); `Unchanged`
/// only says the file is right, not that the running minion has loaded it.
pub fn update(path: &Path, masters: &[String], settings: &DropInSettings) -> Result<DropInChange> {
    // Render first: a refused list or setting must fail before the file is even read.
    let contents = render(masters, settings)?;
    let new = render::unique_in_order(masters);
    let existing = read::read_existing(path)?;
    if let Some(existing) = &existing {
        if existing.text == contents {
            return Ok(DropInChange::Unchanged { masters: new });
        }
    }
    write_atomically(path, &contents)?;
    let old = existing.map(|existing| existing.masters);
    log::info!(
        "{}: master list {} -> {:?}",
        path.display(),
        old.as_ref()
            .map_or_else(|| "(no file)".to_owned(), |old| format!("{old:?}")),
        new
    );
    Ok(DropInChange::Written { old, new })
}
