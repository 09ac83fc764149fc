//! Who this master is: its instance id, address and zone, from `phoenix.master_id` /
//! `phoenix.master_address` where set, else from the EC2 instance metadata (IMDSv2).

use serde::Serialize;

use crate::config::PhoenixConfig;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MasterIdentity {
    pub instance_id: String,
    /// The address minions connect to (the private IPv4 on EC2).
    pub address: String,
    /// The AutoScaling group the master belongs to (the first of `phoenix.master_groups`).
    pub group: String,
    pub availability_zone: Option<String>,
}

pub async fn resolve_identity(config: &PhoenixConfig) -> Result<MasterIdentity> {
    let group =
        config.master_groups.first().cloned().ok_or_else(|| {
            Error::config("phoenix.master_groups", "must name the masters' group")
        })?;
    if let (Some(instance_id), Some(address)) = (&config.master_id, &config.master_address) {
        return Ok(MasterIdentity {
            instance_id: instance_id.clone(),
            address: address.clone(),
            group,
            availability_zone: None,
        });
    }
    let imds = crate::imds::client(None)?;
    let read = |path: &'static str| {
        let imds = imds.clone();
        async move {
            crate::imds::read(&imds, path).await.map_err(|err| {
                Error::config(
                    "phoenix.master_id",
                    format!(
                        "cannot learn this master's identity: {err}; off EC2, set \
                         phoenix.master_id and phoenix.master_address"
                    ),
                )
            })
        }
    };
    let instance_id = match &config.master_id {
        Some(id) => id.clone(),
        None => read("/latest/meta-data/instance-id").await?,
    };
    let address = match &config.master_address {
        Some(address) => address.clone(),
        None => read("/latest/meta-data/local-ipv4").await?,
    };
    let availability_zone = read("/latest/meta-data/placement/availability-zone")
        .await
        .ok();
    Ok(MasterIdentity {
        instance_id,
        address,
        group,
        availability_zone,
    })
}
