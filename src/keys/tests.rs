//! One case per rule of the key-reconcile plan.

use serde_json::json;

use super::simulate::{KeyRing, Layout, World};
use super::*;

use LocalKeyState::{Accepted, Denied, Pending, Rejected};
use RegistryState::{Launching, Running, Terminated, Terminating};

const A: &str = "i-0a1b2c3d";
const B: &str = "i-0123456789abcdef0";
const C: &str = "i-ffffffff";

fn ring() -> KeyRing {
    KeyRing::new(4)
}

fn minion(id: &str, state: RegistryState, pinned: Option<PinnedKey>) -> RegistryMinion {
    RegistryMinion {
        id: id.to_owned(),
        state,
        pinned,
    }
}

fn key(id: &str, state: LocalKeyState, fingerprint: &str) -> LocalKey {
    LocalKey {
        id: id.to_owned(),
        state,
        fingerprint: fingerprint.to_owned(),
    }
}

fn plan(registry: &[RegistryMinion], local: &[LocalKey]) -> Vec<KeyAction> {
    plan_key_actions(registry, local, &first_key())
}

/// The policy that pins the first key offered: most of these tests are about what the plan
/// does with keys found on a master.
fn first_key() -> KeyPolicy {
    KeyPolicy {
        trust: KeyTrust::FirstKey,
        ..KeyPolicy::default()
    }
}

fn unmanaged(ids: &[&str]) -> KeyPolicy {
    KeyPolicy {
        unmanaged: ids.iter().map(|id| (*id).to_owned()).collect(),
        trust: KeyTrust::FirstKey,
    }
}

/// Carries the plan out and checks that planning again has nothing left to do.
fn assert_settles(registry: &[RegistryMinion], local: &[LocalKey], policy: &KeyPolicy) {
    let ring = ring();
    let mut world = World {
        registry: registry.to_vec(),
        local: local.to_vec(),
        layout: Layout::FilePerState,
    };
    world.apply(&plan_key_actions(registry, local, policy), &ring);
    assert_eq!(
        plan_key_actions(&world.registry, &world.local, policy),
        vec![]
    );
}

fn accept(id: &str, fingerprint: &str) -> KeyAction {
    KeyAction::Accept {
        id: id.to_owned(),
        fingerprint: fingerprint.to_owned(),
    }
}

fn pin(id: &str, state: LocalKeyState, fingerprint: &str) -> KeyAction {
    KeyAction::Pin {
        id: id.to_owned(),
        state,
        fingerprint: fingerprint.to_owned(),
    }
}

fn delete(id: &str, state: LocalKeyState, fingerprint: &str, reason: DeleteReason) -> KeyAction {
    KeyAction::Delete {
        id: id.to_owned(),
        state,
        fingerprint: fingerprint.to_owned(),
        reason,
    }
}

fn mismatch(pinned: &str) -> DeleteReason {
    DeleteReason::Mismatch {
        pinned: pinned.to_owned(),
    }
}

fn pre_seed(id: &str, ring: &KeyRing, n: usize) -> KeyAction {
    KeyAction::PreSeed {
        id: id.to_owned(),
        fingerprint: ring.finger(n),
        public_key: ring.pinned(n).public_key,
    }
}

#[test]
fn first_pending_key_of_a_live_instance_is_pinned_then_accepted() {
    let r = ring();
    for state in [Launching, Running] {
        let registry = [minion(A, state, None)];
        let local = [key(A, Pending, &r.finger(0))];
        assert_eq!(
            plan(&registry, &local),
            vec![pin(A, Pending, &r.finger(0)), accept(A, &r.finger(0))]
        );
        assert_settles(&registry, &local, &first_key());
    }
}

#[test]
fn with_identity_document_trust_no_key_found_on_a_master_is_ever_pinned() {
    let r = ring();
    let attested = KeyPolicy::default();
    assert_eq!(attested.trust, KeyTrust::IdentityDocument);
    for state in [Launching, Running] {
        // Neither a pending nor an accepted key of an unpinned live instance: they stay.
        for local_state in [Pending, Accepted] {
            let registry = [minion(A, state, None)];
            let local = [key(A, local_state, &r.finger(0))];
            assert_eq!(plan_key_actions(&registry, &local, &attested), vec![]);
        }
        // Once a claim pinned the key, it is accepted, and pre-seeded where missing.
        let registry = [minion(A, state, Some(r.pinned(0)))];
        assert_eq!(
            plan_key_actions(&registry, &[key(A, Pending, &r.finger(0))], &attested),
            vec![accept(A, &r.finger(0))]
        );
        assert_eq!(
            plan_key_actions(&registry, &[], &attested),
            vec![pre_seed(A, &r, 0)]
        );
        // Another key than the claimed one is refused as under first_key.
        assert_eq!(
            plan_key_actions(&registry, &[key(A, Accepted, &r.finger(1))], &attested),
            vec![
                delete(A, Accepted, &r.finger(1), mismatch(&r.finger(0))),
                pre_seed(A, &r, 0)
            ]
        );
    }
    // Terminated instances' keys go, whoever pinned them.
    let registry = [minion(A, Terminated, None)];
    assert_eq!(
        plan_key_actions(&registry, &[key(A, Pending, &r.finger(0))], &attested),
        vec![delete(A, Pending, &r.finger(0), DeleteReason::Terminated)]
    );
}

#[test]
fn pending_key_of_an_unknown_id_stays_pending() {
    let r = ring();
    let local = [key(A, Pending, &r.finger(0))];
    assert_eq!(plan(&[], &local), vec![]);
    assert_eq!(plan(&[minion(B, Running, None)], &local), vec![]);
    // Once the registry learns the id, the next plan accepts it with no manual step.
    assert_eq!(plan(&[minion(A, Launching, None)], &local).len(), 2);
}

#[test]
fn ids_are_matched_exactly() {
    let r = ring();
    let registry = [minion(A, Running, None), minion(B, Terminated, None)];
    let local: Vec<LocalKey> = [
        "I-0A1B2C3D",
        "i-0a1b2c3d ",
        " i-0a1b2c3d",
        "i-0a1b2c3",
        "i-0a1b2c3d4",
        "i-0a1b2c3*",
        "i-0a1b2c3?",
        "i-0123456789abcdef",
        "i-0123456789abcdef0.example",
        "*",
    ]
    .iter()
    .flat_map(|id| {
        [
            key(id, Pending, &r.finger(0)),
            key(id, Accepted, &r.finger(1)),
        ]
    })
    .collect();
    assert_eq!(plan(&registry, &local), vec![]);
}

#[test]
fn registry_ids_that_are_not_instance_ids_are_ignored() {
    let r = ring();
    for id in [
        "web01",
        "i-*",
        "i-0a1b2c3?",
        "*",
        "",
        "I-0A1B2C3D",
        "i-0a1b2c3d\n",
    ] {
        let registry = [minion(id, Running, Some(r.pinned(0)))];
        let local = [key(id, Pending, &r.finger(0))];
        assert_eq!(plan(&registry, &local), vec![], "{id:?}");
        let registry = [minion(id, Terminated, None)];
        assert_eq!(plan(&registry, &local), vec![], "{id:?}");
    }
}

#[test]
fn pending_key_with_the_pinned_fingerprint_is_accepted() {
    let r = ring();
    let registry = [minion(A, Running, Some(r.pinned(0)))];
    let local = [key(A, Pending, &r.finger(0))];
    assert_eq!(plan(&registry, &local), vec![accept(A, &r.finger(0))]);
    assert_settles(&registry, &local, &first_key());
}

#[test]
fn pending_key_with_another_fingerprint_is_deleted_and_the_pinned_key_pre_seeded() {
    let r = ring();
    let registry = [minion(A, Running, Some(r.pinned(0)))];
    let local = [key(A, Pending, &r.finger(1))];
    let expected = vec![
        delete(A, Pending, &r.finger(1), mismatch(&r.finger(0))),
        pre_seed(A, &r, 0),
    ];
    assert_eq!(plan(&registry, &local), expected);
    assert_eq!(
        plan_key_actions(&registry, &local, &KeyPolicy::default()),
        expected
    );
    assert_settles(&registry, &local, &first_key());
}

#[test]
fn a_squatters_key_offered_before_the_pin_does_not_lock_the_genuine_minion_out() {
    // Another process offers a key for a new instance's id before the instance's claim pins
    // its own key: the key waits, unpinned. Once the pin lands, the squatter's key goes and
    // the genuine key is accepted here, on either of Salt's key layouts, without a rejected
    // key that would make Salt refuse the genuine minion.
    let r = ring();
    let attested = KeyPolicy::default();
    let squatter = [key(A, Pending, &r.finger(2))];
    assert_eq!(
        plan_key_actions(&[minion(A, Launching, None)], &squatter, &attested),
        vec![]
    );
    let registry = [minion(A, Launching, Some(r.pinned(0)))];
    for layout in [Layout::FilePerState, Layout::OneKeyPerId] {
        let mut world = World {
            registry: registry.to_vec(),
            local: squatter.to_vec(),
            layout,
        };
        world.apply(&plan_key_actions(&registry, &squatter, &attested), &r);
        assert_eq!(
            world.local,
            vec![key(A, Accepted, &r.finger(0))],
            "{layout:?}"
        );
        assert_eq!(
            plan_key_actions(&world.registry, &world.local, &attested),
            vec![]
        );
    }
    // A squatter's key an operator (or an older Phoenix) rejected goes the same way.
    let rejected = [key(A, Rejected, &r.finger(2))];
    assert_eq!(
        plan_key_actions(&registry, &rejected, &attested),
        vec![
            delete(A, Rejected, &r.finger(2), mismatch(&r.finger(0))),
            pre_seed(A, &r, 0),
        ]
    );
}

#[test]
fn accepted_key_with_another_fingerprint_is_replaced_by_the_pinned_key() {
    let r = ring();
    let registry = [minion(A, Running, Some(r.pinned(0)))];
    let local = [key(A, Accepted, &r.finger(1))];
    assert_eq!(
        plan(&registry, &local),
        vec![
            delete(A, Accepted, &r.finger(1), mismatch(&r.finger(0))),
            pre_seed(A, &r, 0),
        ]
    );
    assert_settles(&registry, &local, &first_key());
}

#[test]
fn a_wrong_accepted_key_goes_even_when_the_pinned_key_cannot_be_pre_seeded() {
    let r = ring();
    let damaged = PinnedKey {
        fingerprint: r.finger(0),
        public_key: r.pinned(2).public_key,
    };
    for pinned in [
        damaged,
        PinnedKey {
            fingerprint: r.finger(0),
            public_key: "not a key".into(),
        },
    ] {
        let registry = [minion(A, Running, Some(pinned))];
        let local = [key(A, Accepted, &r.finger(1))];
        assert_eq!(
            plan(&registry, &local),
            vec![delete(A, Accepted, &r.finger(1), mismatch(&r.finger(0)))]
        );
        assert_settles(&registry, &local, &first_key());
    }
}

#[test]
fn accepted_key_with_the_pinned_fingerprint_is_left_alone() {
    let r = ring();
    let registry = [minion(A, Running, Some(r.pinned(0)))];
    assert_eq!(plan(&registry, &[key(A, Accepted, &r.finger(0))]), vec![]);
}

#[test]
fn accepted_key_without_a_pin_is_pinned_as_it_is() {
    let r = ring();
    let registry = [minion(A, Running, None)];
    let local = [key(A, Accepted, &r.finger(2))];
    assert_eq!(
        plan(&registry, &local),
        vec![pin(A, Accepted, &r.finger(2))]
    );
    assert_settles(&registry, &local, &first_key());
}

#[test]
fn a_wrong_pending_key_beside_the_right_accepted_one_is_deleted_not_rejected() {
    // A rejected key would shadow the good accepted key in Salt 3006/3007.
    let r = ring();
    let registry = [minion(A, Running, Some(r.pinned(0)))];
    let local = [
        key(A, Accepted, &r.finger(0)),
        key(A, Pending, &r.finger(1)),
    ];
    assert_eq!(
        plan(&registry, &local),
        vec![delete(A, Pending, &r.finger(1), mismatch(&r.finger(0)))]
    );
    // The same when the accepted key is about to be pinned.
    let registry = [minion(A, Running, None)];
    assert_eq!(
        plan(&registry, &local),
        vec![
            delete(A, Pending, &r.finger(1), mismatch(&r.finger(0))),
            pin(A, Accepted, &r.finger(0)),
        ]
    );
    assert_settles(&registry, &local, &first_key());
}

#[test]
fn terminated_and_terminating_instances_lose_every_key() {
    let r = ring();
    for state in [Terminating, Terminated] {
        for pinned in [None, Some(r.pinned(0))] {
            let registry = [minion(A, state, pinned)];
            let local = [
                key(A, Accepted, &r.finger(0)),
                key(A, Pending, &r.finger(1)),
                key(A, Rejected, &r.finger(2)),
                key(A, Denied, &r.finger(3)),
                key(A, Denied, &r.finger(1)),
            ];
            let mut expected: Vec<KeyAction> = local
                .iter()
                .map(|k| delete(A, k.state, &k.fingerprint, DeleteReason::Terminated))
                .collect();
            expected.sort();
            assert_eq!(plan(&registry, &local), expected);
            assert_eq!(expected.len(), 5);
            assert_settles(&registry, &local, &first_key());
            // Nothing to delete, and nothing pre-seeded for an instance that is leaving.
            assert_eq!(plan(&registry, &[]), vec![]);
        }
    }
}

#[test]
fn denied_keys_of_live_instances_are_left_alone() {
    let r = ring();
    for pinned in [None, Some(r.pinned(0))] {
        let registry = [minion(A, Running, pinned)];
        for n in 0..2 {
            let local = [key(A, Accepted, &r.finger(0)), key(A, Denied, &r.finger(n))];
            let actions = plan(&registry, &local);
            assert!(
                actions
                    .iter()
                    .all(|action| matches!(action, KeyAction::Pin { .. })),
                "{actions:?}"
            );
        }
    }
}

#[test]
fn a_rejected_key_that_is_not_the_pin_is_deleted() {
    // Salt refuses every key of an id with a rejected key, the pinned one included.
    let r = ring();
    let registry = [minion(A, Running, Some(r.pinned(0)))];
    let local = [
        key(A, Accepted, &r.finger(0)),
        key(A, Rejected, &r.finger(1)),
    ];
    assert_eq!(
        plan(&registry, &local),
        vec![delete(A, Rejected, &r.finger(1), mismatch(&r.finger(0)))]
    );
    assert_settles(&registry, &local, &first_key());
}

#[test]
fn a_rejected_pinned_key_leaves_the_minion_to_whoever_rejected_it() {
    let r = ring();
    let registry = [minion(A, Running, Some(r.pinned(0)))];
    let local = [
        key(A, Rejected, &r.finger(0)),
        key(A, Pending, &r.finger(0)),
        key(A, Accepted, &r.finger(1)),
    ];
    // The key that is not the pin goes; the pinned one is neither accepted nor pre-seeded.
    assert_eq!(
        plan(&registry, &local),
        vec![delete(A, Accepted, &r.finger(1), mismatch(&r.finger(0)))]
    );
    assert_settles(&registry, &local, &first_key());
}

#[test]
fn without_a_pin_a_rejected_key_stops_the_first_key_from_being_pinned() {
    // Salt 3008 would accept the rejected key in place of the pending one.
    let r = ring();
    let registry = [minion(A, Running, None)];
    for n in 0..2 {
        let local = [
            key(A, Pending, &r.finger(0)),
            key(A, Rejected, &r.finger(n)),
        ];
        assert_eq!(plan(&registry, &local), vec![]);
    }
    // An accepted key is pinned as it is (nothing is asked of Salt's accept), and a rejected
    // key beside it goes as it would under the pin.
    let local = [
        key(A, Accepted, &r.finger(0)),
        key(A, Rejected, &r.finger(1)),
    ];
    assert_eq!(
        plan(&registry, &local),
        vec![
            delete(A, Rejected, &r.finger(1), mismatch(&r.finger(0))),
            pin(A, Accepted, &r.finger(0)),
        ]
    );
    assert_settles(&registry, &local, &first_key());
}

#[test]
fn pinned_live_minion_without_a_key_here_is_pre_seeded() {
    let r = ring();
    for state in [Launching, Running] {
        let registry = [minion(A, state, Some(r.pinned(3)))];
        assert_eq!(plan(&registry, &[]), vec![pre_seed(A, &r, 3)]);
        assert_settles(&registry, &[], &first_key());
        // Denied keys are only Salt's record of refusals: they do not stop the pre-seed.
        let denied = [key(A, Denied, &r.finger(1))];
        assert_eq!(plan(&registry, &denied), vec![pre_seed(A, &r, 3)]);
        // The pinned key rejected here is someone's decision: no pre-seed over it.
        let rejected = [key(A, Rejected, &r.finger(3))];
        assert_eq!(plan(&registry, &rejected), vec![]);
    }
    // No pin, nothing to pre-seed.
    assert_eq!(plan(&[minion(A, Running, None)], &[]), vec![]);
}

#[test]
fn unmanaged_ids_are_never_touched() {
    let r = ring();
    let policy = unmanaged(&[A, "salt-master-local"]);
    let all_states = |id: &str| {
        [Accepted, Pending, Rejected, Denied]
            .into_iter()
            .enumerate()
            .map(|(n, state)| key(id, state, &r.finger(n)))
            .collect::<Vec<_>>()
    };
    for state in [Launching, Running, Terminating, Terminated] {
        for pinned in [None, Some(r.pinned(1))] {
            let registry = [minion(A, state, pinned)];
            assert_eq!(plan_key_actions(&registry, &all_states(A), &policy), vec![]);
            assert_eq!(plan_key_actions(&registry, &[], &policy), vec![]);
        }
    }
    let local = all_states("salt-master-local");
    assert_eq!(
        plan_key_actions(&[minion(A, Running, None)], &local, &policy),
        vec![]
    );
}

#[test]
fn keys_outside_the_registry_are_never_touched() {
    let r = ring();
    let local: Vec<LocalKey> = [A, "web01", "salt-master-local"]
        .iter()
        .flat_map(|id| {
            [Accepted, Pending, Rejected, Denied]
                .into_iter()
                .map(|state| key(id, state, &r.finger(0)))
        })
        .collect();
    assert_eq!(plan(&[minion(B, Terminated, None)], &local), vec![]);
}

#[test]
fn disagreeing_keys_without_a_pin_are_left_for_an_operator() {
    let r = ring();
    let registry = [minion(A, Running, None)];
    let pending = [key(A, Pending, &r.finger(0)), key(A, Pending, &r.finger(1))];
    assert_eq!(plan(&registry, &pending), vec![]);
    let accepted = [
        key(A, Accepted, &r.finger(0)),
        key(A, Accepted, &r.finger(1)),
        key(A, Pending, &r.finger(1)),
    ];
    assert_eq!(plan(&registry, &accepted), vec![]);
}

#[test]
fn duplicate_registry_entries_merge_safely() {
    let r = ring();
    // States only move forward: any terminated entry wins.
    let registry = [
        minion(A, Running, Some(r.pinned(0))),
        minion(A, Terminated, None),
    ];
    let local = [key(A, Accepted, &r.finger(0))];
    assert_eq!(
        plan(&registry, &local),
        vec![delete(A, Accepted, &r.finger(0), DeleteReason::Terminated)]
    );
    // The same pin twice, or a pin and no pin: one pin.
    let registry = [
        minion(A, Launching, None),
        minion(A, Running, Some(r.pinned(0))),
        minion(A, Running, Some(r.pinned(0))),
    ];
    assert_eq!(plan(&registry, &[]), vec![pre_seed(A, &r, 0)]);
    // Two different pins: nothing can be trusted, nothing is done.
    let registry = [
        minion(A, Running, Some(r.pinned(0))),
        minion(A, Running, Some(r.pinned(1))),
    ];
    let local = [
        key(A, Pending, &r.finger(0)),
        key(A, Accepted, &r.finger(1)),
    ];
    assert_eq!(plan(&registry, &local), vec![]);
}

#[test]
fn duplicate_local_keys_give_one_action() {
    let r = ring();
    let registry = [minion(A, Running, Some(r.pinned(0)))];
    let local = [key(A, Pending, &r.finger(0)), key(A, Pending, &r.finger(0))];
    assert_eq!(plan(&registry, &local), vec![accept(A, &r.finger(0))]);
}

#[test]
fn plan_is_sorted_by_id_then_in_the_order_to_carry_it_out() {
    let r = ring();
    let registry = [
        minion(C, Terminated, None),
        minion(B, Running, None),
        minion(A, Running, Some(r.pinned(0))),
    ];
    let local = [
        key(C, Pending, &r.finger(0)),
        key(B, Pending, &r.finger(1)),
        key(A, Accepted, &r.finger(1)),
        key(C, Accepted, &r.finger(0)),
    ];
    assert_eq!(
        plan(&registry, &local),
        vec![
            pin(B, Pending, &r.finger(1)),
            accept(B, &r.finger(1)),
            delete(A, Accepted, &r.finger(1), mismatch(&r.finger(0))),
            pre_seed(A, &r, 0),
            delete(C, Accepted, &r.finger(0), DeleteReason::Terminated),
            delete(C, Pending, &r.finger(0), DeleteReason::Terminated),
        ]
    );
}

#[test]
fn actions_serialize_with_an_action_tag_and_flat_fields() {
    let actions = [
        delete(A, Accepted, "f1", mismatch("p")),
        delete(A, Denied, "f2", DeleteReason::Terminated),
        pin(A, Pending, "f1"),
        accept(A, "f1"),
        KeyAction::PreSeed {
            id: A.into(),
            fingerprint: "p".into(),
            public_key: "PEM".into(),
        },
    ];
    assert_eq!(
        serde_json::to_value(&actions).unwrap(),
        json!([
            {"action": "delete", "id": A, "state": "accepted", "fingerprint": "f1",
             "reason": "mismatch", "pinned": "p"},
            {"action": "delete", "id": A, "state": "denied", "fingerprint": "f2",
             "reason": "terminated"},
            {"action": "pin", "id": A, "state": "pending", "fingerprint": "f1"},
            {"action": "accept", "id": A, "fingerprint": "f1"},
            {"action": "pre_seed", "id": A, "fingerprint": "p", "public_key": "PEM"},
        ])
    );
    for action in &actions {
        assert_eq!(
            serde_json::to_value(action).unwrap()["action"],
            action.kind()
        );
        assert_eq!(action.id(), A);
    }
}

#[test]
fn inputs_deserialize_from_the_registry_and_salt_words() {
    let registry: Vec<RegistryMinion> = serde_json::from_value(json!([
        {"id": A, "state": "launching"},
        {"id": B, "state": "running", "pinned": null},
        {"id": C, "state": "terminated",
         "pinned": {"fingerprint": "f", "public_key": "PEM"}},
    ]))
    .unwrap();
    assert_eq!(registry[0].state, Launching);
    assert_eq!(registry[1].pinned, None);
    assert_eq!(registry[2].pinned.as_ref().unwrap().fingerprint, "f");
    let local: Vec<LocalKey> = serde_json::from_value(json!([
        {"id": A, "state": "accepted", "fingerprint": "f"},
        {"id": A, "state": "denied", "fingerprint": "g"},
    ]))
    .unwrap();
    assert_eq!(local[1].state, Denied);
    assert!(serde_json::from_value::<LocalKey>(
        json!({"id": A, "state": "unaccepted", "fingerprint": "f"})
    )
    .is_err());
    assert!(serde_json::from_value::<RegistryMinion>(json!({"id": A, "state": "gone"})).is_err());
    assert_eq!(Pending.salt_list(), "minions_pre");
    assert_eq!(
        [Accepted, Rejected, Denied].map(LocalKeyState::salt_list),
        ["minions", "minions_rejected", "minions_denied"]
    );
}

#[test]
fn a_trust_is_named_as_serde_writes_it_and_read_back_from_that_name() {
    for trust in [KeyTrust::IdentityDocument, KeyTrust::FirstKey] {
        assert_eq!(json!(trust), json!(trust.as_str()));
        assert_eq!(KeyTrust::named(trust.as_str()), Some(trust));
    }
    assert_eq!(KeyTrust::named("first-key"), None);
}
