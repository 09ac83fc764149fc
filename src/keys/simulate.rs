//! Test-only: a tiny model of one master's keys and the registry, to carry a plan out and plan
//! again. Each action does what the caller (`keys.py`) does through Salt's wheel key functions
//! and the registry, including its checks that a key is still what the plan saw, in either of
//! Salt's key layouts ([`Layout`]).

use super::{pem_fingerprint, KeyAction, LocalKey, LocalKeyState, PinnedKey, RegistryMinion};

/// A few well-formed public keys and their fingerprints.
pub struct KeyRing {
    keys: Vec<(String, String)>,
}

impl KeyRing {
    pub fn new(count: usize) -> Self {
        Self {
            keys: (0..count)
                .map(|n| {
                    let pem = pem(n);
                    (pem_fingerprint(&pem).unwrap(), pem)
                })
                .collect(),
        }
    }

    /// The fingerprint of key `n`.
    pub fn finger(&self, n: usize) -> String {
        self.keys[n].0.clone()
    }

    /// The pin a master would record for key `n`.
    pub fn pinned(&self, n: usize) -> PinnedKey {
        PinnedKey {
            fingerprint: self.keys[n].0.clone(),
            public_key: self.keys[n].1.clone(),
        }
    }

    /// The public key with this fingerprint; for a fingerprint the ring does not hold, a text
    /// that is not a key (so the registry row it lands in cannot be pre-seeded).
    fn public_key(&self, fingerprint: &str) -> String {
        self.keys
            .iter()
            .find(|(finger, _)| finger == fingerprint)
            .map_or_else(
                || format!("no key for {fingerprint}"),
                |(_, pem)| pem.clone(),
            )
    }
}

/// A distinct, well-formed PEM public key for each `n`.
pub fn pem(n: usize) -> String {
    format!("-----BEGIN PUBLIC KEY-----\nMIIBIjAN{n:0>56}\nIDAQAB\n-----END PUBLIC KEY-----\n")
}

/// How a master's key store treats the files of one id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Salt 3006 and 3007: one file per id in each of `minions`, `minions_pre` and
    /// `minions_rejected`, each deleted on its own; denied keys kept apart.
    FilePerState,
    /// Salt 3008's `localfs_key`: an id has one key, read from `minions_rejected`, then
    /// `minions_pre`, then `minions`; deleting it in any of those states deletes all three.
    OneKeyPerId,
}

/// The registry and this master's keys.
#[derive(Debug, Clone)]
pub struct World {
    pub registry: Vec<RegistryMinion>,
    pub local: Vec<LocalKey>,
    pub layout: Layout,
}

impl World {
    /// Carries `actions` out, in order. An action whose key is no longer what the plan saw is
    /// skipped, as the caller skips it.
    pub fn apply(&mut self, actions: &[KeyAction], ring: &KeyRing) {
        for action in actions {
            match action {
                KeyAction::Delete {
                    id,
                    state,
                    fingerprint,
                    ..
                } => {
                    if !self.has(id, *state, Some(fingerprint)) {
                        continue;
                    }
                    if self.layout == Layout::OneKeyPerId && *state != LocalKeyState::Denied {
                        for state in [
                            LocalKeyState::Accepted,
                            LocalKeyState::Pending,
                            LocalKeyState::Rejected,
                        ] {
                            self.remove(id, state, None);
                        }
                    } else {
                        self.remove(id, *state, Some(fingerprint));
                    }
                }
                KeyAction::Pin {
                    id, fingerprint, ..
                } => {
                    // A conditional write: only where no pin is recorded yet.
                    for minion in self.registry.iter_mut().filter(|m| m.id == *id) {
                        if minion.pinned.is_none() {
                            minion.pinned = Some(PinnedKey {
                                fingerprint: fingerprint.clone(),
                                public_key: ring.public_key(fingerprint),
                            });
                        }
                    }
                }
                KeyAction::Accept { id, fingerprint } => {
                    // The caller never asks Salt to accept beside a rejected key: Salt 3008
                    // would accept the rejected one.
                    if !self.has(id, LocalKeyState::Pending, Some(fingerprint))
                        || self.has(id, LocalKeyState::Rejected, None)
                    {
                        continue;
                    }
                    self.remove(id, LocalKeyState::Pending, Some(fingerprint));
                    self.remove(id, LocalKeyState::Accepted, None);
                    self.add(id, LocalKeyState::Accepted, fingerprint);
                }
                KeyAction::PreSeed { id, public_key, .. } => {
                    // Never over an accepted key (the store's hard link refuses).
                    if !self.has(id, LocalKeyState::Accepted, None) {
                        let fingerprint = pem_fingerprint(public_key).unwrap();
                        self.add(id, LocalKeyState::Accepted, &fingerprint);
                    }
                }
            }
        }
    }

    fn has(&self, id: &str, state: LocalKeyState, fingerprint: Option<&String>) -> bool {
        self.local.iter().any(|key| is(key, id, state, fingerprint))
    }

    fn remove(&mut self, id: &str, state: LocalKeyState, fingerprint: Option<&String>) {
        self.local.retain(|key| !is(key, id, state, fingerprint));
    }

    fn add(&mut self, id: &str, state: LocalKeyState, fingerprint: &str) {
        self.local.push(LocalKey {
            id: id.to_owned(),
            state,
            fingerprint: fingerprint.to_owned(),
        });
    }
}

/// Whether `key` is `id`'s key in `state` (with `fingerprint`, when given).
fn is(key: &LocalKey, id: &str, state: LocalKeyState, fingerprint: Option<&String>) -> bool {
    key.id == id
        && key.state == state
        && fingerprint.is_none_or(|finger| key.fingerprint == *finger)
}
