//! A minion following the live masters: what the `master_list` beacon and
//! `phoenix minion-config` do with the registry (docs/architecture.md, flow B, steps 2 to 5:
//! minions follow the live masters).
//!
//! - [`refresher`] reads the live masters in the background, so the beacon, which runs in
//!   the minion's main loop every second, never waits on AWS.
//! - [`Follower`] decides, from the latest snapshot and what the running salt-minion uses,
//!   whether to rewrite the drop-in and when to restart the minion. It does no I/O of its
//!   own: the drop-in write is passed in, the restart is handed back to the caller.
//! - [`first_boot`] writes the drop-in once, before salt-minion first starts.
//!
//! The guards of docs/architecture.md, invariant 4 (the drop-in is never written empty) hold
//! by construction: only a complete, successful read makes a snapshot (a failed or partial
//! read leaves the previous one in place and decides nothing), an empty live list is never
//! written (the follower skips it and the drop-in refuses it), and every write goes through
//! [`crate::dropin::update`].

mod decide;
pub mod first_boot;
pub mod refresher;
mod spread;

#[cfg(test)]
mod tests;

pub use decide::{
    CheckOutcome, FollowEvent, Follower, RestartOrder, RestartReason, Running, Timing,
};
pub use refresher::{Snapshot, SnapshotSlot};
pub use spread::point_in;

use crate::ordering::order_masters_by;
use crate::registry::LiveMaster;

/// The master addresses in the order `minion_id` should try them: rendezvous order of the
/// masters' instance ids (docs/architecture.md, invariant 8), `own_master` first when it is
/// live.
pub fn ordered_addresses(
    minion_id: &str,
    masters: &[LiveMaster],
    own_master: Option<&str>,
) -> Vec<String> {
    order_masters_by(
        minion_id,
        masters,
        |master| master.instance_id.as_str(),
        own_master,
    )
    .into_iter()
    .map(|master| master.address.clone())
    .collect()
}
