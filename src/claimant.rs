//! An instance's side of attested enrolment: read its identity document and AWS's signature
//! from IMDS and send them, with the public key to pin, to the claim queue.

use serde::Serialize;

use crate::aws::AwsClients;
use crate::config::PhoenixConfig;
use crate::enrolment::{ClaimRefusal, IdentityDocument, KeyClaim};
use crate::error::{Error, Result};
use crate::keys::pem_fingerprint;
use crate::lifecycle::Role;
use crate::registry;

/// What was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentClaim {
    /// The instance the claim speaks for (the document's).
    pub instance_id: String,
    /// Salt's fingerprint of the key it asks to pin.
    pub fingerprint: String,
    /// The claim's SQS message id.
    pub message_id: String,
}

/// Sends this instance's claim for `public_key` as `minion_id`. The document must be that
/// instance's: a minion whose id is not its instance id could never enrol, so that is an
/// error here, not a refusal on a master later. `imds_endpoint` overrides where IMDS is.
pub async fn send_claim(
    clients: &AwsClients,
    config: &PhoenixConfig,
    minion_id: &str,
    public_key: &str,
    imds_endpoint: Option<&str>,
) -> Result<SentClaim> {
    let queue_url = config.keys.require_claim_queue_url()?;
    let fingerprint = pem_fingerprint(public_key).map_err(|err| ClaimRefusal::BadPublicKey {
        reason: err.to_string(),
    })?;
    let client = crate::imds::client(imds_endpoint)?;
    let (document, signature) = crate::imds::identity_document(&client).await?;
    let instance_id = IdentityDocument::parse(document.as_bytes())?.instance_id;
    if instance_id != minion_id {
        return Err(Error::config(
            "id",
            format!(
                "the minion id is {minion_id:?} but this is instance {instance_id}: Phoenix \
                 accepts a minion's key only when its id is its instance id"
            ),
        ));
    }
    let body = KeyClaim::message(&instance_id, document.as_bytes(), &signature, public_key);
    let message_id = crate::aws::sqs::send(clients, queue_url, &body).await?;
    Ok(SentClaim {
        instance_id,
        fingerprint,
        message_id,
    })
}

/// Where an instance's enrolment stands, as it waits before salt-minion starts: the pinned
/// fingerprint, and the live masters that do not hold the key as accepted yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnrolmentStatus {
    /// The registry's pin, if any.
    pub pinned: Option<String>,
    /// Live masters that hold the pinned key as accepted.
    pub seeded: Vec<String>,
    /// Live masters that do not yet.
    pub waiting_for: Vec<String>,
}

/// Reads `minion_id`'s pin and the masters that hold it (its row in the minions' table,
/// else the masters': a master's own minion), against the live masters.
pub async fn enrolment_status(
    clients: &AwsClients,
    config: &PhoenixConfig,
    minion_id: &str,
) -> Result<EnrolmentStatus> {
    let mut enrolment = None;
    for role in [Role::Minion, Role::Master] {
        enrolment = registry::read_enrolment(clients, config, role, minion_id).await?;
        if enrolment.is_some() {
            break;
        }
    }
    let enrolment = enrolment.unwrap_or_default();
    let live = registry::read_live_masters(clients, config).await?;
    let (seeded, waiting_for) = live
        .into_iter()
        .map(|master| master.instance_id)
        .partition(|id| enrolment.seeded_on.contains(id));
    Ok(EnrolmentStatus {
        pinned: enrolment.pinned,
        seeded,
        waiting_for,
    })
}
