//! `phoenix minion-config`: the drop-in written once, before salt-minion first starts, from
//! the same read, order and writer as the beacon's.

use std::path::Path;

use super::ordered_addresses;
use crate::aws::AwsClients;
use crate::config::PhoenixConfig;
use crate::dropin::{self, DropInChange};
use crate::error::{Error, Result};
use crate::registry::{self, LiveMaster};

/// Reads the live masters and makes the drop-in at `path` carry them in `minion_id`'s
/// order, `own_master` (the master this minion runs beside) first while it is live.
///
/// `starting_master`: the master that is starting on this host, at its first boot. It is
/// not live in the registry yet (its engine registers it once salt-master runs), but its
/// own minion must list it, first; without it the first master of a cluster would wait for
/// itself.
///
/// [`Error::NotFound`] when there is no master at all to write (the masters are not up yet:
/// try again), and the drop-in errors of [`dropin::update`].
pub async fn write_minion_config(
    clients: &AwsClients,
    config: &PhoenixConfig,
    minion_id: &str,
    own_master: Option<&str>,
    starting_master: Option<&LiveMaster>,
    path: &Path,
) -> Result<DropInChange> {
    let mut live = registry::read_live_masters(clients, config).await?;
    let mut own_master = own_master;
    if let Some(starting) = starting_master {
        live.retain(|master| master.instance_id != starting.instance_id);
        live.push(starting.clone());
        own_master = Some(&starting.instance_id);
    }
    if live.is_empty() {
        return Err(Error::NotFound {
            what: format!(
                "no live master in the registry of cluster {:?} (table {}): the masters are \
                 not up yet, or their heartbeats are older than {} s",
                config.cluster, config.masters_table, config.master_stale_after
            ),
            code: None,
        });
    }
    let order = ordered_addresses(minion_id, &live, own_master);
    dropin::update(path, &order, &config.drop_in)
}
