//! Generated registries and key sets against the key policy (docs/architecture.md,
//! invariant 3).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::simulate::{KeyRing, Layout, World};
use super::*;
use crate::lifecycle::InstanceId;

/// Ids the generators draw from, so registry and keys overlap often. The last ones are not
/// instance ids, or are near misses of one.
const IDS: [&str; 9] = [
    "i-0a1b2c3d",
    "i-0123456789abcdef0",
    "i-ffffffff",
    "i-00000000",
    "i-0a1b2c3e",
    "web01",
    "I-0A1B2C3D",
    "i-0a1b2c3*",
    "i-0a1b2c3d ",
];
const RING: usize = 4;

fn ring() -> KeyRing {
    KeyRing::new(RING)
}

fn id() -> impl Strategy<Value = String> {
    prop::sample::select(&IDS[..]).prop_map(str::to_owned)
}

fn registry_state() -> impl Strategy<Value = RegistryState> {
    prop::sample::select(
        &[
            RegistryState::Launching,
            RegistryState::Running,
            RegistryState::Terminating,
            RegistryState::Terminated,
        ][..],
    )
}

fn local_state() -> impl Strategy<Value = LocalKeyState> {
    prop::sample::select(
        &[
            LocalKeyState::Accepted,
            LocalKeyState::Pending,
            LocalKeyState::Rejected,
            LocalKeyState::Denied,
        ][..],
    )
}

/// No pin, a good pin, or a damaged one (a public key that does not match the fingerprint).
fn pinned() -> impl Strategy<Value = Option<PinnedKey>> {
    prop_oneof![
        2 => Just(None),
        3 => (0..RING).prop_map(|n| Some(ring().pinned(n))),
        1 => (0..RING, 0..RING).prop_map(|(n, m)| {
            let ring = ring();
            Some(PinnedKey {
                fingerprint: ring.finger(n),
                public_key: if n == m { "junk".into() } else { ring.pinned(m).public_key },
            })
        }),
    ]
}

fn registry() -> impl Strategy<Value = Vec<RegistryMinion>> {
    prop::collection::vec(
        (id(), registry_state(), pinned()).prop_map(|(id, state, pinned)| RegistryMinion {
            id,
            state,
            pinned,
        }),
        0..10,
    )
}

fn local() -> impl Strategy<Value = Vec<LocalKey>> {
    let fingerprint = prop_oneof![
        5 => (0..RING).prop_map(|n| ring().finger(n)),
        1 => Just("not a fingerprint".to_owned()),
    ];
    prop::collection::vec(
        (id(), local_state(), fingerprint).prop_map(|(id, state, fingerprint)| LocalKey {
            id,
            state,
            fingerprint,
        }),
        0..16,
    )
}

fn policy() -> impl Strategy<Value = KeyPolicy> {
    (
        prop::sample::subsequence(&IDS[..], 0..3),
        prop::sample::select(vec![KeyTrust::IdentityDocument, KeyTrust::FirstKey]),
    )
        .prop_map(|(ids, trust)| KeyPolicy {
            unmanaged: ids.into_iter().map(str::to_owned).collect(),
            trust,
        })
}

/// The test's own idea of a live instance, independent of the code under test.
fn live(state: RegistryState) -> bool {
    matches!(state, RegistryState::Launching | RegistryState::Running)
}

/// What the registry says about each id the plan may act on: the most advanced state and
/// the distinct pinned fingerprints.
fn managed(
    registry: &[RegistryMinion],
    policy: &KeyPolicy,
) -> BTreeMap<String, (RegistryState, BTreeSet<String>)> {
    let mut view: BTreeMap<String, (RegistryState, BTreeSet<String>)> = BTreeMap::new();
    for minion in registry {
        if policy.unmanaged.contains(&minion.id) || minion.id.parse::<InstanceId>().is_err() {
            continue;
        }
        let entry = view
            .entry(minion.id.clone())
            .or_insert((minion.state, BTreeSet::new()));
        entry.0 = entry.0.max(minion.state);
        if let Some(pin) = &minion.pinned {
            entry.1.insert(pin.fingerprint.clone());
        }
    }
    view
}

proptest! {
    #[test]
    fn acts_only_on_managed_registry_ids_and_accepts_only_live_ones(
        registry in registry(), local in local(), policy in policy(),
    ) {
        let view = managed(&registry, &policy);
        for action in plan_key_actions(&registry, &local, &policy) {
            let Some((state, pins)) = view.get(action.id()) else {
                return Err(TestCaseError::fail(format!("{action:?} outside the managed registry")));
            };
            prop_assert!(!policy.unmanaged.contains(action.id()));
            match &action {
                KeyAction::Accept { fingerprint, .. }
                | KeyAction::Pin { fingerprint, .. }
                | KeyAction::PreSeed { fingerprint, .. } => {
                    prop_assert!(live(*state), "{action:?} for a {state:?} instance");
                    prop_assert!(pins.len() <= 1);
                    if let Some(pin) = pins.first() {
                        prop_assert_eq!(fingerprint, pin);
                        prop_assert!(!matches!(action, KeyAction::Pin { .. }), "{:?}", action);
                    }
                }
                KeyAction::Delete { reason: DeleteReason::Terminated, .. } => {
                    prop_assert!(!live(*state));
                }
                KeyAction::Delete { reason: DeleteReason::Mismatch { pinned }, fingerprint, .. } => {
                    prop_assert!(live(*state));
                    prop_assert_ne!(fingerprint, pinned);
                }
            }
        }
    }

    #[test]
    fn every_key_of_a_leaving_instance_is_deleted_and_nothing_else_happens_to_it(
        registry in registry(), local in local(), policy in policy(),
    ) {
        let view = managed(&registry, &policy);
        let actions = plan_key_actions(&registry, &local, &policy);
        for key in &local {
            let Some((state, _)) = view.get(&key.id) else { continue };
            if live(*state) {
                continue;
            }
            prop_assert!(actions.contains(&KeyAction::Delete {
                id: key.id.clone(),
                state: key.state,
                fingerprint: key.fingerprint.clone(),
                reason: DeleteReason::Terminated,
            }), "{key:?} kept: {actions:?}");
        }
        for action in &actions {
            if let Some((state, _)) = view.get(action.id()) {
                prop_assert!(live(*state) || matches!(action, KeyAction::Delete { .. }), "{:?}", action);
            }
        }
    }

    #[test]
    fn carrying_the_plan_out_settles_and_upholds_the_key_policy(
        registry in registry(), local in local(), policy in policy(),
    ) {
        let ring = ring();
        let mut world = World { registry, local, layout: Layout::FilePerState };
        let actions = plan_key_actions(&world.registry, &world.local, &policy);
        world.apply(&actions, &ring);
        let again = plan_key_actions(&world.registry, &world.local, &policy);
        prop_assert_eq!(again, vec![], "after {:?}", actions);

        let view = managed(&world.registry, &policy);
        for key in &world.local {
            let Some((state, pins)) = view.get(&key.id) else { continue };
            prop_assert!(live(*state), "{key:?} left for a {state:?} instance");
            if key.state == LocalKeyState::Accepted && pins.len() == 1 {
                prop_assert_eq!(Some(&key.fingerprint), pins.first(), "{:?}", key);
            }
        }
    }

    #[test]
    fn a_pinned_minion_is_never_locked_out_whatever_keys_were_offered_before(
        registry in registry(), local in local(), policy in policy(),
        one_key_per_id in any::<bool>(),
    ) {
        // Salt 3008's store deletes all of an id's keys at once, which can undo an accept
        // planned in the same round; the caller plans those ids again at once (keys.py), as
        // the second round here does.
        let layout = if one_key_per_id { Layout::OneKeyPerId } else { Layout::FilePerState };
        let ring = ring();
        let before = local.clone();
        let mut world = World { registry, local, layout };
        for _ in 0..2 {
            let actions = plan_key_actions(&world.registry, &world.local, &policy);
            world.apply(&actions, &ring);
        }
        prop_assert_eq!(plan_key_actions(&world.registry, &world.local, &policy), vec![]);

        for (id, (state, pins)) in managed(&world.registry, &policy) {
            let Some(pinned) = pins.first().filter(|_| pins.len() == 1) else { continue };
            let pre_seedable = world.registry.iter().filter(|m| m.id == id).all(|m| {
                m.pinned.as_ref().is_none_or(|pin| pem_fingerprint(&pin.public_key).ok().as_ref() == Some(&pin.fingerprint))
            });
            // Someone rejected the pinned key itself: the one case left to a person.
            let refused = before.iter().any(|key| {
                key.id == id && key.state == LocalKeyState::Rejected && key.fingerprint == *pinned
            });
            if !live(state) || !pre_seedable || refused {
                continue;
            }
            let keys: Vec<&LocalKey> = world.local.iter().filter(|key| key.id == id).collect();
            prop_assert!(
                keys.iter().any(|key| key.state == LocalKeyState::Accepted && key.fingerprint == *pinned),
                "{id}: pinned key {pinned} not accepted; keys {keys:?}, before {before:?}"
            );
            prop_assert!(
                keys.iter().all(|key| key.state == LocalKeyState::Denied || key.fingerprint == *pinned),
                "{id}: a key other than the pin stands: {keys:?}"
            );
        }
    }

    #[test]
    fn plan_does_not_depend_on_input_order_and_is_sorted(
        (registry, shuffled_registry) in registry().prop_flat_map(|r| (Just(r.clone()), Just(r).prop_shuffle())),
        (local, shuffled_local) in local().prop_flat_map(|l| (Just(l.clone()), Just(l).prop_shuffle())),
        policy in policy(),
    ) {
        let plan = plan_key_actions(&registry, &local, &policy);
        prop_assert_eq!(&plan, &plan_key_actions(&shuffled_registry, &shuffled_local, &policy));
        prop_assert!(plan.windows(2).all(|pair| pair[0] < pair[1]), "{:?}", plan);
    }

    #[test]
    fn never_panics_on_arbitrary_text(
        registry in prop::collection::vec(("\\PC{0,20}", registry_state(), prop::option::of(("\\PC{0,20}", "\\PC{0,80}"))), 0..8),
        local in prop::collection::vec(("\\PC{0,20}", local_state(), "\\PC{0,20}"), 0..8),
        unmanaged in prop::collection::btree_set("\\PC{0,20}", 0..3),
    ) {
        let registry: Vec<RegistryMinion> = registry
            .into_iter()
            .map(|(id, state, pinned)| RegistryMinion {
                id,
                state,
                pinned: pinned.map(|(fingerprint, public_key)| PinnedKey { fingerprint, public_key }),
            })
            .collect();
        let local: Vec<LocalKey> = local
            .into_iter()
            .map(|(id, state, fingerprint)| LocalKey { id, state, fingerprint })
            .collect();
        for trust in [KeyTrust::IdentityDocument, KeyTrust::FirstKey] {
            let _ = plan_key_actions(&registry, &local, &KeyPolicy { unmanaged: unmanaged.clone(), trust });
        }
    }
}
