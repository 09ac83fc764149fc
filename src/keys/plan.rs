//! The key-reconcile plan: what one master must do to its minion keys so they agree with the
//! registry.
//!
//! [`plan_key_actions`] is a pure function of the registry, this master's keys and the key
//! policy. It reads nothing and changes nothing; the caller carries the actions out through
//! Salt's wheel key functions and the registry. The rules, per minion id:
//!
//! - Ids listed in [`KeyPolicy::unmanaged`], and ids the registry does not hold, are never
//!   touched, whatever state their keys are in. A pending key of an unknown id stays pending:
//!   the instance may not be registered yet, and the next plan accepts it once it is.
//! - Registry ids that are not EC2 instance ids are ignored (with a warning). Instance ids
//!   hold no glob characters, so no action can ever be widened into a pattern by a key API
//!   that globs.
//! - Terminating or terminated instance: delete each of its keys, in every state (accepted,
//!   pending, rejected, denied).
//! - Live instance (launching or running):
//!   - not pinned yet (only under [`KeyTrust::FirstKey`]): a pending key is pinned and
//!     accepted ([`KeyAction::Pin`] then [`KeyAction::Accept`]); an accepted key that Phoenix
//!     has not pinned (accepted by hand, or a pin write that failed after the accept) is
//!     pinned as it is, and a pending or rejected key beside it with another fingerprint is
//!     deleted; with a rejected key and no accepted one here, nothing is pinned from this
//!     master;
//!   - pinned: a pending key with the pinned fingerprint is accepted; every accepted, pending
//!     or rejected key with another fingerprint is deleted and reported as a mismatch, never
//!     rejected: Salt (3006 to 3008) refuses every key of an id that has a rejected key, so a
//!     rejected impostor's key would lock the genuine minion out of this master;
//!   - pinned, and the pinned key neither accepted here nor pending: the pinned public key is
//!     written as accepted ([`KeyAction::PreSeed`]), so a minion failing over to this master
//!     is accepted at once, and Salt itself files any other key offered for the id as denied;
//!   - the pinned key itself rejected here: someone decided against this instance; other keys
//!     go as above, but nothing is accepted or pre-seeded (`salt-key -d` undoes the
//!     decision);
//!   - the registry's pins and this master's keys disagree in ways no rule settles (two
//!     different pending or accepted keys and no pin, or two registry rows pinning different
//!     keys): nothing is done and a warning is logged, for an operator to decide;
//!   - denied keys are left alone: they are Salt's record of refused keys.
//!
//! Applying a plan and planning again yields no action: the plan is idempotent, and it does not
//! depend on the order of its inputs. It runs in O(n log n).

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::error::quote;
use super::fingerprint::pem_fingerprint;
use crate::lifecycle::InstanceId;

/// An instance's state in the registry (launching, running, terminating, terminated); only
/// launching and running instances are live and may hold an accepted key.
pub use crate::registry::InstanceState as RegistryState;

/// A minion as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryMinion {
    /// The instance id, which is also the minion id.
    pub id: String,
    /// The instance's state.
    pub state: RegistryState,
    /// The key pinned at first acceptance, if any.
    #[serde(default)]
    pub pinned: Option<PinnedKey>,
}

/// The key a minion was first accepted with, as stored in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedKey {
    /// Salt's fingerprint of the key ([`super::pem_fingerprint`]).
    pub fingerprint: String,
    /// The PEM public key, written to masters that have not seen the minion yet.
    pub public_key: String,
}

/// The state of a key on this master, in Salt's words (`salt-key -L`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalKeyState {
    /// Accepted (`minions`).
    Accepted,
    /// Waiting for acceptance (`minions_pre`, "Unaccepted Keys").
    Pending,
    /// Rejected (`minions_rejected`).
    Rejected,
    /// Refused by Salt because the id already had another accepted key (`minions_denied`).
    Denied,
}

impl LocalKeyState {
    /// The key list Salt's wheel `key.*_dict` functions and `key.list_all` use for this state.
    pub fn salt_list(self) -> &'static str {
        match self {
            Self::Accepted => "minions",
            Self::Pending => "minions_pre",
            Self::Rejected => "minions_rejected",
            Self::Denied => "minions_denied",
        }
    }
}

/// One key on this master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalKey {
    /// The minion id the key is filed under.
    pub id: String,
    /// Its state.
    pub state: LocalKeyState,
    /// Salt's fingerprint of the key ([`super::pem_fingerprint`]). A key the caller could not
    /// fingerprint must be left out rather than passed with a made-up value.
    pub fingerprint: String,
}

/// On whose word a minion's key is pinned (`phoenix.keys.trust`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyTrust {
    /// AWS's: a key is pinned only from a claim that carries the instance's identity
    /// document, signed by AWS (`crate::enrolment`), or by an operator naming its
    /// fingerprint. The plan never pins a key it finds on a master.
    #[default]
    IdentityDocument,
    /// The first key offered for a live instance's id is pinned. Unsafe where any other
    /// process in the account can reach a master: it can offer a key first.
    FirstKey,
}

impl KeyTrust {
    /// The setting's value, as an operator writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyTrust::IdentityDocument => "identity_document",
            KeyTrust::FirstKey => "first_key",
        }
    }

    /// The trust an operator's word names, if any.
    pub fn named(name: &str) -> Option<Self> {
        [KeyTrust::IdentityDocument, KeyTrust::FirstKey]
            .into_iter()
            .find(|trust| trust.as_str() == name)
    }
}

/// What the operator told Phoenix about keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPolicy {
    /// Exact minion ids Phoenix never touches, even when the registry knows them.
    #[serde(default)]
    pub unmanaged: BTreeSet<String>,
    /// Whether a key found on a master may be pinned ([`KeyTrust::FirstKey`]) or only a key
    /// a verified claim pinned is accepted.
    #[serde(default)]
    pub trust: KeyTrust,
}

/// Why a key is deleted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DeleteReason {
    /// The registry holds the instance as terminating or terminated.
    Terminated,
    /// The key differs from the pinned one: fire `phoenix/key/mismatch`.
    Mismatch {
        /// The pinned fingerprint.
        pinned: String,
    },
}

/// One step of the plan.
///
/// Serialized with an `action` tag (`delete`, `pin`, `accept`, `pre_seed`) and the fields flat
/// beside it. Within one id, actions come in the order they must be carried out: delete, pin,
/// accept, pre-seed. In particular the pin is written before the key is
/// accepted, so that when the registry refuses the pin (another master pinned another key
/// first) the caller skips the accept.
///
/// Each action names the fingerprint it was planned for. A key can change between the listing
/// and the action (a minion re-authenticating with another key): the caller acts only while the
/// key still has that fingerprint, and otherwise leaves it to the next plan.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum KeyAction {
    /// Delete the key of `id` in `state` (Salt's `key.delete_dict`).
    Delete {
        id: String,
        state: LocalKeyState,
        fingerprint: String,
        #[serde(flatten)]
        reason: DeleteReason,
    },
    /// Record the key of `id` (now in `state`) as its pinned key in the registry, only if the
    /// registry holds no pin yet (a conditional write). The caller reads the public key.
    Pin {
        id: String,
        state: LocalKeyState,
        fingerprint: String,
    },
    /// Accept the pending key of `id`.
    Accept { id: String, fingerprint: String },
    /// Write the pinned public key of `id` as an accepted key on this master.
    PreSeed {
        id: String,
        fingerprint: String,
        public_key: String,
    },
}

impl KeyAction {
    /// The minion id the action is about.
    pub fn id(&self) -> &str {
        match self {
            Self::Delete { id, .. }
            | Self::Pin { id, .. }
            | Self::Accept { id, .. }
            | Self::PreSeed { id, .. } => id,
        }
    }

    /// The serialized `action` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Delete { .. } => "delete",
            Self::Pin { .. } => "pin",
            Self::Accept { .. } => "accept",
            Self::PreSeed { .. } => "pre_seed",
        }
    }

    /// Position of the action within one id: the order it must be carried out in.
    fn rank(&self) -> u8 {
        match self {
            Self::Delete { .. } => 0,
            Self::Pin { .. } => 1,
            Self::Accept { .. } => 2,
            Self::PreSeed { .. } => 3,
        }
    }

    /// The remaining fields, to order actions of the same id and kind deterministically.
    fn detail(&self) -> (Option<LocalKeyState>, &str, Option<&DeleteReason>, &str) {
        match self {
            Self::Delete {
                state,
                fingerprint,
                reason,
                ..
            } => (Some(*state), fingerprint, Some(reason), ""),
            Self::Pin {
                state, fingerprint, ..
            } => (Some(*state), fingerprint, None, ""),
            Self::Accept { fingerprint, .. } => (None, fingerprint, None, ""),
            Self::PreSeed {
                fingerprint,
                public_key,
                ..
            } => (None, fingerprint, None, public_key),
        }
    }
}

impl Ord for KeyAction {
    /// By id, then in the order the actions of one id are carried out, then by the remaining
    /// fields, so the plan is the same whatever order its inputs came in.
    fn cmp(&self, other: &Self) -> Ordering {
        self.id()
            .cmp(other.id())
            .then_with(|| self.rank().cmp(&other.rank()))
            .then_with(|| self.detail().cmp(&other.detail()))
    }
}

impl PartialOrd for KeyAction {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Plans the key actions that bring this master's keys in line with the registry.
///
/// `registry` is every minion the registry holds, `local` every key on this master (each
/// accepted, pending, rejected and denied key once). See the module documentation for the
/// rules. The result is sorted by id, then in the order the actions must be carried out, and
/// holds no duplicates.
pub fn plan_key_actions(
    registry: &[RegistryMinion],
    local: &[LocalKey],
    policy: &KeyPolicy,
) -> Vec<KeyAction> {
    let (known, index) = known_minions(registry, policy);

    // The keys of managed ids, each tagged with its minion's position in `known` and its
    // state, then grouped by both. One hash lookup per key, and a sort on small copied values:
    // the sort follows a key's pointer only to break a tie (the same id and state twice).
    let mut keys: Vec<(usize, LocalKeyState, &LocalKey)> = local
        .iter()
        .filter_map(|key| index.get(key.id.as_str()).map(|&at| (at, key.state, key)))
        .collect();
    keys.sort_unstable_by(|(at_a, state_a, a), (at_b, state_b, b)| {
        (at_a, state_a)
            .cmp(&(at_b, state_b))
            .then_with(|| a.fingerprint.cmp(&b.fingerprint))
    });
    keys.dedup_by(|(at_a, state_a, a), (at_b, state_b, b)| {
        at_a == at_b && state_a == state_b && a.fingerprint == b.fingerprint
    });

    let mut actions = Vec::new();
    let mut rest = keys.as_slice();
    let mut own: Vec<&LocalKey> = Vec::new();
    for (at, minion) in known.iter().enumerate() {
        let count = rest.iter().take_while(|(key_at, ..)| *key_at == at).count();
        let (mine, tail) = rest.split_at(count);
        rest = tail;
        own.clear();
        own.extend(mine.iter().map(|(.., key)| *key));
        plan_minion(minion, &own, policy.trust, &mut actions);
    }

    actions.sort();
    actions.dedup();
    actions
}

/// A registry minion Phoenix manages, its duplicates merged.
struct Known<'a> {
    id: &'a str,
    state: RegistryState,
    pin: Pin<'a>,
}

/// What the registry says about a minion's pin.
#[derive(Clone, Copy)]
enum Pin<'a> {
    None,
    One(&'a PinnedKey),
    /// Several entries for one id pin different keys: nothing can be trusted.
    Conflict,
}

impl<'a> Pin<'a> {
    /// Adds another registry entry's pin. The result does not depend on the order entries
    /// come in.
    fn merge(self, other: Option<&'a PinnedKey>) -> Self {
        match (self, other) {
            (pin, None) => pin,
            (Pin::None, Some(new)) => Pin::One(new),
            (Pin::One(old), Some(new)) if old.fingerprint == new.fingerprint => {
                // Same key: keep the copy whose public key sorts first, so the pre-seeded
                // text does not depend on input order.
                Pin::One(if new.public_key < old.public_key {
                    new
                } else {
                    old
                })
            }
            _ => Pin::Conflict,
        }
    }
}

/// The registry minions the plan may act on (valid instance ids, not unmanaged), and where
/// each id sits in that list.
///
/// The registry holds one row per instance, but the plan must not depend on its input being
/// well formed: duplicate entries merge into the most advanced state (states only move
/// forward), and into one pin unless they pin different keys.
fn known_minions<'a>(
    registry: &'a [RegistryMinion],
    policy: &KeyPolicy,
) -> (Vec<Known<'a>>, HashMap<&'a str, usize>) {
    let mut known: Vec<Known<'a>> = Vec::with_capacity(registry.len());
    let mut index: HashMap<&'a str, usize> = HashMap::with_capacity(registry.len());
    let mut invalid = 0_usize;
    let mut first_invalid = None;
    for minion in registry {
        if policy.unmanaged.contains(&minion.id) {
            continue;
        }
        if minion.id.parse::<InstanceId>().is_err() {
            invalid += 1;
            first_invalid.get_or_insert(minion.id.as_str());
            continue;
        }
        match index
            .get(minion.id.as_str())
            .and_then(|&at| known.get_mut(at))
        {
            Some(seen) => {
                seen.state = seen.state.max(minion.state);
                seen.pin = seen.pin.merge(minion.pinned.as_ref());
            }
            None => {
                index.insert(&minion.id, known.len());
                known.push(Known {
                    id: &minion.id,
                    state: minion.state,
                    pin: Pin::None.merge(minion.pinned.as_ref()),
                });
            }
        }
    }
    if let Some(example) = first_invalid {
        log::warn!(
            "ignored {invalid} registry minion(s) whose id is not an EC2 instance id, e.g. {}",
            quote(example)
        );
    }
    (known, index)
}

/// The actions for one managed minion, given all its keys on this master (sorted by state).
fn plan_minion(
    minion: &Known<'_>,
    keys: &[&LocalKey],
    trust: KeyTrust,
    actions: &mut Vec<KeyAction>,
) {
    if !minion.state.is_live() {
        for key in keys {
            actions.push(delete(key, DeleteReason::Terminated));
        }
        return;
    }
    let in_state = |state| keys.iter().filter(move |key| key.state == state);
    let pin = match minion.pin {
        Pin::Conflict => {
            log::warn!(
                "registry entries for {} pin different keys: leaving its keys alone",
                minion.id
            );
            return;
        }
        Pin::One(pinned) => Some(pinned),
        // Attested enrolment: no key found here is pinned; a claim pins it, and until then
        // the minion's keys stay as they are (pending keys pending).
        Pin::None if trust == KeyTrust::IdentityDocument => return,
        Pin::None => None,
    };

    // The fingerprint every accepted and pending key must have: the registry's pin, else
    // (first acceptance) the key already accepted here, else the one pending key.
    let expected: &str = match pin {
        Some(pinned) => {
            // Every other key but a denied one goes: a pending or rejected key that is not
            // the pin would stand between the genuine minion and this master (Salt refuses
            // every key of an id with a rejected key, and a pending key stops the pre-seed),
            // and once the pinned key is accepted here Salt files any other key offered for
            // the id as denied on its own.
            delete_all_but(keys, &pinned.fingerprint, actions);
            if in_state(LocalKeyState::Rejected).any(|key| key.fingerprint == pinned.fingerprint) {
                // Someone rejected the pinned key itself here: that is a decision about the
                // instance, and `salt-key -d` undoes it (the key report shows it). Nothing is
                // accepted or pre-seeded over it.
                log::debug!("{}: the pinned key is rejected here", minion.id);
                return;
            }
            &pinned.fingerprint
        }
        None => match single_fingerprint(in_state(LocalKeyState::Accepted)) {
            Single::One(key) => {
                actions.push(KeyAction::Pin {
                    id: minion.id.to_owned(),
                    state: LocalKeyState::Accepted,
                    fingerprint: key.fingerprint.clone(),
                });
                // As under a pin (above): a pending or rejected key beside the accepted one
                // with another fingerprint is deleted.
                delete_all_but(keys, &key.fingerprint, actions);
                &key.fingerprint
            }
            Single::Several => {
                log::warn!(
                    "{} has several accepted keys and no pin: leaving its keys alone",
                    minion.id
                );
                return;
            }
            // With a rejected key here, Salt 3008's key store would accept the rejected key
            // in place of the pending one (it reads an id's key from `minions_rejected`
            // first), and Salt refuses the id anyway: the rejection is left to whoever made it.
            Single::Zero if in_state(LocalKeyState::Rejected).next().is_some() => return,
            Single::Zero => match single_fingerprint(in_state(LocalKeyState::Pending)) {
                Single::One(key) => {
                    actions.push(KeyAction::Pin {
                        id: minion.id.to_owned(),
                        state: LocalKeyState::Pending,
                        fingerprint: key.fingerprint.clone(),
                    });
                    &key.fingerprint
                }
                Single::Several => {
                    log::warn!(
                        "{} has several pending keys and no pin: leaving them pending",
                        minion.id
                    );
                    return;
                }
                Single::Zero => return,
            },
        },
    };

    let mut pending_good = false;
    for key in in_state(LocalKeyState::Pending) {
        if key.fingerprint == expected {
            pending_good = true;
            actions.push(KeyAction::Accept {
                id: minion.id.to_owned(),
                fingerprint: key.fingerprint.clone(),
            });
        }
    }

    // Pre-seed when the pinned key will not stand here once the plan is carried out: neither
    // accepted here already nor about to be accepted. Every other key is deleted above, and
    // denied keys do not count: Salt keeps them only as a record of refused keys.
    if let Some(pinned) = pin {
        let good_accepted =
            in_state(LocalKeyState::Accepted).any(|key| key.fingerprint == expected);
        if !good_accepted && !pending_good {
            pre_seed(minion.id, pinned, actions);
        }
    }
}

/// Pre-seeds the pinned key, after checking that the registry's public key really has the
/// pinned fingerprint: a damaged row must not put an unpinned key in `minions`.
fn pre_seed(id: &str, pinned: &PinnedKey, actions: &mut Vec<KeyAction>) {
    match pem_fingerprint(&pinned.public_key) {
        Ok(fingerprint) if fingerprint == pinned.fingerprint => actions.push(KeyAction::PreSeed {
            id: id.to_owned(),
            fingerprint,
            public_key: pinned.public_key.clone(),
        }),
        Ok(fingerprint) => log::warn!(
            "not pre-seeding {id}: the registry's public key has fingerprint {fingerprint}, \
             not the pinned {}",
            quote(&pinned.fingerprint)
        ),
        Err(err) => log::warn!("not pre-seeding {id}: the registry's public key: {err}"),
    }
}

/// Deletes, as a mismatch with `kept`, each of the id's accepted, pending and rejected keys
/// with another fingerprint. Denied keys stay: they are only Salt's record of refusals.
fn delete_all_but(keys: &[&LocalKey], kept: &str, actions: &mut Vec<KeyAction>) {
    for key in keys {
        if key.state != LocalKeyState::Denied && key.fingerprint != kept {
            actions.push(delete(
                key,
                DeleteReason::Mismatch {
                    pinned: kept.to_owned(),
                },
            ));
        }
    }
}

fn delete(key: &LocalKey, reason: DeleteReason) -> KeyAction {
    KeyAction::Delete {
        id: key.id.clone(),
        state: key.state,
        fingerprint: key.fingerprint.clone(),
        reason,
    }
}

enum Single<'a> {
    Zero,
    One(&'a LocalKey),
    /// Keys with different fingerprints.
    Several,
}

/// Whether the keys agree on one fingerprint.
fn single_fingerprint<'a>(mut keys: impl Iterator<Item = &'a &'a LocalKey>) -> Single<'a> {
    let Some(first) = keys.next() else {
        return Single::Zero;
    };
    if keys.all(|key| key.fingerprint == first.fingerprint) {
        Single::One(first)
    } else {
        Single::Several
    }
}
