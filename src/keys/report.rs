//! What an operator sees of a master's keys: each key beside what the registry says about its
//! id (`salt-run key_runner.list`), and the keys that claim a pinned id with another key.

use std::collections::HashMap;

use serde::Serialize;

use super::plan::{KeyPolicy, LocalKey, LocalKeyState, RegistryMinion, RegistryState};

/// How a key stands against the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStanding {
    /// Listed in `phoenix.keys.unmanaged`: Phoenix never touches it.
    Unmanaged,
    /// The registry does not hold the id (yet): a pending key waits.
    Unregistered,
    /// The registry holds the id but has pinned no key for it yet.
    Unpinned,
    /// The key is the pinned one.
    Pinned,
    /// The registry pins another key for this id.
    Mismatch,
}

/// One key on this master, beside the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyReportRow {
    pub id: String,
    pub key_state: LocalKeyState,
    pub fingerprint: String,
    /// The instance's state in the registry, when it holds the id.
    pub registry_state: Option<RegistryState>,
    /// The pinned fingerprint, when there is one.
    pub pinned: Option<String>,
    pub standing: KeyStanding,
}

/// Every local key with its standing, sorted by id then key state. Where the registry holds
/// an id twice, the most advanced state counts, as in the plan.
pub fn key_report(
    registry: &[RegistryMinion],
    local: &[LocalKey],
    policy: &KeyPolicy,
) -> Vec<KeyReportRow> {
    let mut by_id: HashMap<&str, &RegistryMinion> = HashMap::with_capacity(registry.len());
    for minion in registry {
        by_id
            .entry(minion.id.as_str())
            .and_modify(|seen| {
                if minion.state > seen.state {
                    *seen = minion;
                }
            })
            .or_insert(minion);
    }
    let mut rows: Vec<KeyReportRow> = local
        .iter()
        .map(|key| {
            let minion = by_id.get(key.id.as_str()).copied();
            let pinned = minion
                .and_then(|m| m.pinned.as_ref())
                .map(|pin| pin.fingerprint.clone());
            let standing = if policy.unmanaged.contains(&key.id) {
                KeyStanding::Unmanaged
            } else {
                match (minion, &pinned) {
                    (None, _) => KeyStanding::Unregistered,
                    (Some(_), None) => KeyStanding::Unpinned,
                    (Some(_), Some(pin)) if *pin == key.fingerprint => KeyStanding::Pinned,
                    (Some(_), Some(_)) => KeyStanding::Mismatch,
                }
            };
            KeyReportRow {
                id: key.id.clone(),
                key_state: key.state,
                fingerprint: key.fingerprint.clone(),
                registry_state: minion.map(|m| m.state),
                pinned,
                standing,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.id, a.key_state, &a.fingerprint).cmp(&(&b.id, b.key_state, &b.fingerprint))
    });
    rows
}

/// Denied keys that claim a live, pinned id with another key: Salt refused them on its own
/// (the id already had an accepted key), and the operator should hear about it as a
/// `phoenix/key/mismatch`. The plan leaves denied keys alone, so this is the only place they
/// are reported.
pub fn denied_mismatches(rows: &[KeyReportRow]) -> impl Iterator<Item = &KeyReportRow> {
    rows.iter().filter(|row| {
        row.key_state == LocalKeyState::Denied
            && row.standing == KeyStanding::Mismatch
            && row.registry_state.is_some_and(RegistryState::is_live)
    })
}

#[cfg(test)]
mod tests {
    use super::super::simulate::KeyRing;
    use super::*;

    const ID: &str = "i-0123456789abcdef0";

    fn key(id: &str, state: LocalKeyState, fingerprint: String) -> LocalKey {
        LocalKey {
            id: id.to_owned(),
            state,
            fingerprint,
        }
    }

    #[test]
    fn each_key_gets_its_standing() {
        let ring = KeyRing::new(3);
        let registry = vec![
            RegistryMinion {
                id: ID.to_owned(),
                state: RegistryState::Running,
                pinned: Some(ring.pinned(0)),
            },
            RegistryMinion {
                id: "i-aaaaaaaa".to_owned(),
                state: RegistryState::Launching,
                pinned: None,
            },
        ];
        let local = vec![
            key(ID, LocalKeyState::Accepted, ring.finger(0)),
            key(ID, LocalKeyState::Denied, ring.finger(1)),
            key("i-aaaaaaaa", LocalKeyState::Pending, ring.finger(2)),
            key("i-bbbbbbbb", LocalKeyState::Pending, ring.finger(2)),
            key("bastion", LocalKeyState::Accepted, ring.finger(2)),
        ];
        let policy = KeyPolicy {
            unmanaged: ["bastion".to_owned()].into(),
            ..KeyPolicy::default()
        };
        let rows = key_report(&registry, &local, &policy);
        let standings: Vec<(&str, KeyStanding)> =
            rows.iter().map(|r| (r.id.as_str(), r.standing)).collect();
        assert_eq!(
            standings,
            vec![
                ("bastion", KeyStanding::Unmanaged),
                ("i-0123456789abcdef0", KeyStanding::Pinned),
                ("i-0123456789abcdef0", KeyStanding::Mismatch),
                ("i-aaaaaaaa", KeyStanding::Unpinned),
                ("i-bbbbbbbb", KeyStanding::Unregistered),
            ]
        );
        let denied: Vec<&KeyReportRow> = denied_mismatches(&rows).collect();
        assert_eq!(denied.len(), 1);
        assert_eq!(denied[0].fingerprint, ring.finger(1));
        assert_eq!(denied[0].pinned.as_deref(), Some(ring.finger(0).as_str()));
    }

    #[test]
    fn a_terminated_id_raises_no_mismatch() {
        let ring = KeyRing::new(2);
        let registry = vec![RegistryMinion {
            id: ID.to_owned(),
            state: RegistryState::Terminated,
            pinned: Some(ring.pinned(0)),
        }];
        let local = vec![key(ID, LocalKeyState::Denied, ring.finger(1))];
        let rows = key_report(&registry, &local, &KeyPolicy::default());
        assert_eq!(rows[0].standing, KeyStanding::Mismatch);
        assert_eq!(denied_mismatches(&rows).count(), 0);
    }
}
