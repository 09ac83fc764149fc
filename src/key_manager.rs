//! One master's key manager: reads the registry and this master's key store, applies the
//! operator's key settings, and plans with [`crate::keys::plan_key_actions`]. It also pins
//! keys in the registry and pre-seeds pinned keys. Accepting, rejecting and deleting a key go
//! through Salt's wheel key functions, which only the Python side can call.

use std::collections::HashMap;

use serde::Serialize;

use crate::aws::autoscaling;
use crate::aws::AwsClients;
use crate::config::PhoenixConfig;
use crate::error::Result;
use crate::keys::{
    self, KeyAction, KeyPolicy, KeyReportRow, KeyStore, LocalKey, LocalKeyState, RegistryMinion,
    StoredKey,
};
use crate::lifecycle::Role;
use crate::registry::{self, InstanceRecord, PinOutcome};

/// One planned action, with what the caller needs to carry it out: for a pin, the table the
/// instance lives in and the public key to record; for an accept or a pre-seed, the table
/// (to record that this master holds the key).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedAction {
    #[serde(flatten)]
    pub action: KeyAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// The plan and the key report for this master.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyPlan {
    pub actions: Vec<PlannedAction>,
    /// Every key here with its standing against the registry.
    pub keys: Vec<KeyReportRow>,
    /// Denied keys that claim a live, pinned id with another key.
    pub mismatches: Vec<KeyReportRow>,
    /// Ids whose key would have been accepted but that the stricter checks refused, each with
    /// the reason.
    pub held: Vec<HeldKey>,
    /// Registry instances the plan considered.
    pub registry_instances: usize,
}

/// A key left pending by `phoenix.keys.require_group` or `phoenix.keys.verify_autoscaling`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldKey {
    pub id: String,
    pub reason: String,
}

pub struct KeyManager {
    config: PhoenixConfig,
    store: KeyStore,
}

impl KeyManager {
    pub fn new(config: PhoenixConfig, store: KeyStore) -> Self {
        Self { config, store }
    }

    pub fn store(&self) -> &KeyStore {
        &self.store
    }

    fn policy(&self) -> KeyPolicy {
        KeyPolicy {
            unmanaged: self.config.keys.unmanaged.iter().cloned().collect(),
            trust: self.config.keys.trust,
        }
    }

    /// Plans this master's keys: all of them, or only those of `only` (one registry read per
    /// table instead of a Query of the whole cluster).
    pub async fn plan(&self, clients: &AwsClients, only: Option<&str>) -> Result<KeyPlan> {
        let (rows, stored) = match only {
            None => {
                let now = crate::clock::now_ms();
                let mut rows = registry::list(clients, &self.config, Role::Minion, now).await?;
                rows.extend(registry::list(clients, &self.config, Role::Master, now).await?);
                (rows, self.store.list()?)
            }
            Some(id) => {
                let mut rows = Vec::new();
                for role in [Role::Minion, Role::Master] {
                    rows.extend(registry::get(clients, &self.config, role, id).await?);
                }
                (rows, self.store.get(id)?)
            }
        };
        let policy = self.policy();
        let roles: HashMap<&str, Role> = rows
            .iter()
            .map(|row| (row.instance_id.as_str(), row.role))
            .collect();
        let all: Vec<RegistryMinion> = rows.iter().map(registry::registry_minion).collect();
        let mut held = Vec::new();
        let registry = self.eligible(&rows, &all, &mut held);
        let local: Vec<LocalKey> = stored.iter().map(|stored| stored.key.clone()).collect();
        let mut actions = keys::plan_key_actions(&registry, &local, &policy);
        if self.config.keys.verify_autoscaling {
            self.verify_with_autoscaling(clients, &mut actions, &mut held)
                .await;
        }
        let public_keys: HashMap<(&str, LocalKeyState), &StoredKey> = stored
            .iter()
            .map(|stored| ((stored.key.id.as_str(), stored.key.state), stored))
            .collect();
        let actions = actions
            .into_iter()
            .map(|action| {
                let (role, public_key) = match &action {
                    KeyAction::Pin {
                        id,
                        state,
                        fingerprint,
                    } => (
                        roles.get(id.as_str()).copied(),
                        public_keys
                            .get(&(id.as_str(), *state))
                            .filter(|stored| stored.key.fingerprint == *fingerprint)
                            .map(|stored| stored.public_key.clone()),
                    ),
                    // Who records that this master holds the key needs its table.
                    KeyAction::Accept { id, .. } | KeyAction::PreSeed { id, .. } => {
                        (roles.get(id.as_str()).copied(), None)
                    }
                    _ => (None, None),
                };
                PlannedAction {
                    action,
                    role,
                    public_key,
                }
            })
            .collect();
        // The report shows every registry row, the stricter checks aside.
        let report = keys::key_report(&all, &local, &policy);
        let mismatches = keys::denied_mismatches(&report).cloned().collect();
        Ok(KeyPlan {
            actions,
            keys: report,
            mismatches,
            held,
            registry_instances: rows.len(),
        })
    }

    /// The registry rows the plan may accept keys for. With `require_group`, a live instance
    /// whose group is not configured and whose key is not pinned yet is left out, so its key
    /// stays pending; rows already pinned, and rows on their way out, are kept so their keys
    /// are still pre-seeded and deleted.
    fn eligible(
        &self,
        rows: &[InstanceRecord],
        all: &[RegistryMinion],
        held: &mut Vec<HeldKey>,
    ) -> Vec<RegistryMinion> {
        let groups = self.config.configured_groups();
        rows.iter()
            .zip(all)
            .filter(|(row, _)| {
                let outside = self.config.keys.require_group
                    && row.state.is_live()
                    && row.key.is_none()
                    && !row.group.as_deref().is_some_and(|g| groups.contains(g));
                if outside {
                    held.push(HeldKey {
                        id: row.instance_id.clone(),
                        reason: format!(
                            "its AutoScaling group {:?} is not in phoenix.master_groups or \
                             phoenix.minion_groups (phoenix.keys.require_group)",
                            row.group.as_deref().unwrap_or("(none recorded)")
                        ),
                    });
                }
                !outside
            })
            .map(|(_, minion)| minion.clone())
            .collect()
    }

    /// Drops the pin and accept of every id AutoScaling does not list in a configured group as
    /// pending or in service. When AutoScaling cannot be asked, nothing is accepted this round
    /// (the keys stay pending and the next round asks again); deletions and pre-seeds go on.
    async fn verify_with_autoscaling(
        &self,
        clients: &AwsClients,
        actions: &mut Vec<KeyAction>,
        held: &mut Vec<HeldKey>,
    ) {
        let candidates: Vec<String> = actions
            .iter()
            .filter(|action| matches!(action, KeyAction::Pin { .. }))
            .map(|action| action.id().to_owned())
            .collect();
        if candidates.is_empty() {
            return;
        }
        let groups = self.config.configured_groups();
        let refused: HashMap<&str, String> =
            match autoscaling::describe_instances(clients, &candidates).await {
                Ok(listed) => candidates
                    .iter()
                    .filter_map(|id| {
                        autoscaling::doubt_about_key(listed.get(id), &groups)
                            .map(|why| (id.as_str(), why))
                    })
                    .collect(),
                Err(err) => candidates
                    .iter()
                    .map(|id| {
                        (
                            id.as_str(),
                            format!("AutoScaling could not be asked: {err}"),
                        )
                    })
                    .collect(),
            };
        for (id, reason) in &refused {
            held.push(HeldKey {
                id: (*id).to_owned(),
                reason: reason.clone(),
            });
        }
        actions.retain(|action| {
            !(matches!(action, KeyAction::Pin { .. } | KeyAction::Accept { .. })
                && refused.contains_key(action.id()))
        });
    }

    /// Pins a key in the registry (see [`registry::pin_key`]).
    pub async fn pin(
        &self,
        clients: &AwsClients,
        role: Role,
        id: &str,
        fingerprint: &str,
        public_key: &str,
        pinned_by: &str,
    ) -> Result<PinOutcome> {
        registry::pin_key(
            clients,
            &self.config,
            role,
            id,
            fingerprint,
            public_key,
            pinned_by,
            crate::clock::now_ms(),
        )
        .await
    }

    /// Records that `master` holds `id`'s pinned key as accepted (see
    /// [`registry::record_seeded`]).
    pub async fn record_seeded(
        &self,
        clients: &AwsClients,
        role: Role,
        id: &str,
        fingerprint: &str,
        master: &str,
    ) -> Result<bool> {
        registry::record_seeded(clients, &self.config, role, id, fingerprint, master).await
    }
}
