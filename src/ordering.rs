//! The order in which a minion tries the live masters (docs/architecture.md, invariant 8:
//! the master order is frozen).
//!
//! Every minion ranks the masters by rendezvous (highest-random-weight) hashing: each
//! (minion, master) pair gets a weight from a stable hash, and the minion lists the masters
//! by weight, highest first. With `master_type: failover` a minion connects to the first
//! reachable master of its list, so, with no coordination and no shared state:
//! - minions spread evenly over the masters;
//! - when a master leaves, only the minions whose first master it was move, and they spread
//!   evenly over the others: every other minion keeps its order, minus the departed master;
//! - when a master joins, it takes about 1/N of the minions, from every other master alike.
//!
//! The weight must be the same on every minion, in every release and on every platform: a
//! different weight would move most minions to another master at once, a fleet-wide restart
//! wave on upgrade. So it is XXH3-64 (a specified hash whose output is frozen and identical on
//! every platform; not Rust's `DefaultHasher`, which may change between releases) over a fixed,
//! versioned encoding of both ids, and golden vectors in the tests pin both.

use std::collections::HashSet;

use xxhash_rust::xxh3::Xxh3Default;

/// Starts every hashed record. A new encoding would need a new tag, and would move minions.
const WEIGHT_ENCODING_TAG: &[u8] = b"phoenix-master-weight-v1\0";

/// The rendezvous weight of `master_id` for `minion_id`: XXH3-64 (seed 0) of
/// `"phoenix-master-weight-v1\0"`, then each id as its byte length (u64, little endian)
/// followed by its UTF-8 bytes, minion first.
///
/// The length prefixes make the encoding unambiguous, so ("ab", "c") and ("a", "bc") are
/// different pairs whatever bytes the ids contain.
pub fn master_weight(minion_id: &str, master_id: &str) -> u64 {
    let mut hasher = Xxh3Default::new();
    hasher.update(WEIGHT_ENCODING_TAG);
    hasher.update(&(minion_id.len() as u64).to_le_bytes());
    hasher.update(minion_id.as_bytes());
    hasher.update(&(master_id.len() as u64).to_le_bytes());
    hasher.update(master_id.as_bytes());
    hasher.digest()
}

/// The masters in the order `minion_id` should try them.
///
/// - Masters are ranked by [`master_weight`], highest first; equal weights (a 2^-64 chance)
///   are ranked by master id, so the order is total and never depends on the input order.
/// - A master listed more than once counts once.
/// - `own_master` is the master a minion runs beside (a master's own minion): when it is in
///   the list it goes first, so that minion talks to the master on its own host; the others
///   follow in weight order. When it is not in the list it is ignored.
///
/// The ids hashed are whatever the caller passes; pass the masters' stable ids (instance
/// ids), not addresses, so a master that changes its address does not reshuffle minions. Use
/// [`order_masters_by`] to order richer records (id and address) in one pass.
pub fn order_masters<'a>(
    minion_id: &str,
    masters: &'a [String],
    own_master: Option<&str>,
) -> Vec<&'a str> {
    order_masters_by(minion_id, masters, String::as_str, own_master)
        .into_iter()
        .map(String::as_str)
        .collect()
}

/// [`order_masters`] over any records, ranked by the id that `master_id` reads from each.
///
/// Records that share an id count once: the first of them in `masters` is kept. The result
/// does not depend on the input order, except for which of such duplicates is kept.
pub fn order_masters_by<'a, T, F>(
    minion_id: &str,
    masters: &'a [T],
    master_id: F,
    own_master: Option<&str>,
) -> Vec<&'a T>
where
    F: Fn(&'a T) -> &'a str,
{
    let mut seen = HashSet::with_capacity(masters.len());
    let mut ranked: Vec<(u64, &'a str, &'a T)> = Vec::with_capacity(masters.len());
    for master in masters {
        let id = master_id(master);
        if seen.insert(id) {
            ranked.push((master_weight(minion_id, id), id, master));
        }
    }
    ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    if let Some(own) = own_master {
        if let Some(position) = ranked.iter().position(|(_, id, _)| *id == own) {
            // Rotating the prefix keeps the remaining masters in weight order.
            ranked[..=position].rotate_right(1);
        }
    }
    ranked.into_iter().map(|(_, _, master)| master).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;

    const MINIONS: usize = 1_000;

    /// splitmix64: a fixed, well-mixed sequence, so the fleets below are the same on every
    /// run and independent of the hash under test.
    fn splitmix64(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `count` ids shaped like EC2 instance ids: `i-` and 17 hex digits.
    fn instance_ids(seed: u64, count: usize) -> Vec<String> {
        let mut state = seed;
        (0..count)
            .map(|_| {
                let high = splitmix64(&mut state) & 0xF;
                let low = splitmix64(&mut state);
                format!("i-{high:x}{low:016x}")
            })
            .collect()
    }

    fn first_master<'a>(minion: &str, masters: &'a [String]) -> &'a str {
        order_masters(minion, masters, None)[0]
    }

    fn first_places(minions: &[String], masters: &[String]) -> BTreeMap<String, usize> {
        let mut counts: BTreeMap<String, usize> = masters.iter().map(|m| (m.clone(), 0)).collect();
        for minion in minions {
            *counts
                .entry(first_master(minion, masters).to_owned())
                .or_default() += 1;
        }
        counts
    }

    #[test]
    fn ids_look_like_instance_ids() {
        for id in instance_ids(7, 50) {
            assert_eq!(id.len(), 19, "{id}");
            assert!(id.starts_with("i-"));
            assert!(id[2..].chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        }
    }

    /// The fleets are fixed, so this passes or fails the same way on every run. At 1,000
    /// minions the 15% bound is partly sampling noise (a share's standard deviation is 5-8%
    /// of it), so a random fleet of 7 masters would miss it about one time in four; the
    /// larger fleet below shows that the hash itself is even.
    #[test]
    fn each_master_gets_an_even_share_of_first_places() {
        let minions = instance_ids(1, MINIONS);
        for k in 3..=7 {
            let masters = instance_ids(100 + k as u64, k);
            let even = MINIONS as f64 / k as f64;
            for (master, count) in first_places(&minions, &masters) {
                let deviation = (count as f64 - even).abs() / even;
                assert!(
                    deviation <= 0.15,
                    "K={k}: {master} is first for {count} minions, even share {even:.1}"
                );
            }
        }
    }

    /// 20,000 minions: within 5% of an even share, about three standard deviations.
    #[test]
    fn shares_are_even_on_a_large_fleet() {
        let minions = instance_ids(6, 20_000);
        for k in 3..=7 {
            let masters = instance_ids(600 + k as u64, k);
            let even = minions.len() as f64 / k as f64;
            for (master, count) in first_places(&minions, &masters) {
                let deviation = (count as f64 - even).abs() / even;
                assert!(
                    deviation <= 0.05,
                    "K={k}: {master} first for {count}, even {even:.0}"
                );
            }
        }
    }

    #[test]
    fn removing_a_master_moves_only_its_minions_and_spreads_them() {
        let minions = instance_ids(2, MINIONS);
        for k in 3..=7 {
            let masters = instance_ids(200 + k as u64, k);
            for gone in &masters {
                let rest: Vec<String> = masters.iter().filter(|m| *m != gone).cloned().collect();
                let mut moved_to: BTreeMap<&str, usize> = BTreeMap::new();
                for minion in &minions {
                    let before = order_masters(minion, &masters, None);
                    let after = order_masters(minion, &rest, None);
                    // The stronger property: the others keep their relative order.
                    let expected: Vec<&str> =
                        before.iter().copied().filter(|m| *m != gone).collect();
                    assert_eq!(after, expected, "K={k}, {minion} without {gone}");
                    if before[0] == gone {
                        *moved_to.entry(after[0]).or_default() += 1;
                    } else {
                        assert_eq!(after[0], before[0], "K={k}: {minion} moved needlessly");
                    }
                }
                let moved: usize = moved_to.values().sum();
                let even = moved as f64 / (k - 1) as f64;
                for master in &rest {
                    let got = moved_to.get(master.as_str()).copied().unwrap_or(0) as f64;
                    assert!(
                        got >= 0.4 * even && got <= 1.6 * even,
                        "K={k}: {master} took {got} of the {moved} minions of {gone}"
                    );
                }
            }
        }
    }

    #[test]
    fn adding_a_master_moves_about_one_nth_of_first_places() {
        let minions = instance_ids(3, MINIONS);
        for k in 3..=7 {
            let masters = instance_ids(300 + k as u64, k + 1);
            let (before, new_master) = masters.split_at(k);
            let new_master = new_master[0].as_str();
            let n = (k + 1) as f64;
            let mut moved = 0usize;
            for minion in &minions {
                let old_first = first_master(minion, before);
                let new_first = first_master(minion, &masters);
                if old_first != new_first {
                    // A minion only ever moves to the newcomer.
                    assert_eq!(new_first, new_master, "K={k}: {minion}");
                    moved += 1;
                }
            }
            let share = moved as f64 / MINIONS as f64;
            assert!(
                share >= 0.5 / n && share <= 1.5 / n,
                "K={k}: adding a master moved {moved} of {MINIONS} minions"
            );
        }
    }

    #[test]
    fn own_master_goes_first_and_the_rest_keep_their_order() {
        let masters = instance_ids(4, 5);
        for minion in instance_ids(5, 50) {
            let plain = order_masters(&minion, &masters, None);
            for own in &masters {
                let ordered = order_masters(&minion, &masters, Some(own));
                assert_eq!(ordered[0], own);
                let rest: Vec<&str> = plain.iter().copied().filter(|m| m != own).collect();
                assert_eq!(&ordered[1..], &rest[..]);
            }
            assert_eq!(order_masters(&minion, &masters, Some("i-absent")), plain);
        }
    }

    #[test]
    fn duplicates_count_once_and_empty_input_gives_empty_order() {
        let masters: Vec<String> = ["b", "a", "b", "c", "a"].map(String::from).to_vec();
        let ordered = order_masters("i-0123456789abcdef0", &masters, Some("b"));
        assert_eq!(ordered.len(), 3);
        assert_eq!(ordered[0], "b");
        assert!(order_masters("m", &[], Some("x")).is_empty());
        assert!(order_masters("", &["".to_owned()], None) == vec![""]);
    }

    #[test]
    fn the_encoding_separates_the_two_ids() {
        assert_ne!(master_weight("ab", "c"), master_weight("a", "bc"));
        assert_ne!(master_weight("a", "b"), master_weight("b", "a"));
        assert_ne!(master_weight("", "ab"), master_weight("ab", ""));
    }

    #[test]
    fn ordering_records_by_id() {
        let records = vec![
            ("i-0aaaaaaaaaaaaaaaa", "10.0.1.10"),
            ("i-0bbbbbbbbbbbbbbbb", "10.0.2.20"),
            ("i-0cccccccccccccccc", "10.0.3.30"),
        ];
        let ids: Vec<String> = records.iter().map(|r| r.0.to_owned()).collect();
        let by_id = order_masters("i-0123456789abcdef0", &ids, None);
        let by_record = order_masters_by("i-0123456789abcdef0", &records, |r| r.0, None);
        let record_ids: Vec<&str> = by_record.iter().map(|r| r.0).collect();
        assert_eq!(by_id, record_ids);
    }

    /// Weights pinned to the published XXH3-64 algorithm: these values were cross-checked
    /// against the reference `xxhsum -H3` over the encoded bytes. If this test fails, the
    /// weight changed and every fleet would reshuffle on upgrade: do not update the numbers.
    #[test]
    fn golden_weights() {
        let long_master = "m".repeat(300);
        let cases: [(&str, &str, u64); 5] = [
            ("", "", 0x3bd0_e347_8595_dd47),
            (
                "i-0123456789abcdef0",
                "i-0fedcba9876543210",
                0x3ef4_d116_0891_3450,
            ),
            ("web-01.example.com", "10.0.1.5", 0x19a4_e3de_3826_75b3),
            ("minion", "m\u{e4}ster", 0x828d_c19e_b412_27e0),
            // Over 240 bytes: XXH3's long-input path.
            ("i-0123456789abcdef0", &long_master, 0x10bb_9bbf_f982_7a73),
        ];
        for (minion, master, expected) in cases {
            assert_eq!(
                master_weight(minion, master),
                expected,
                "weight of ({minion:?}, {master:?})"
            );
        }
    }

    /// Whole orders pinned, for the same reason as [`golden_weights`].
    #[test]
    fn golden_orders() {
        let masters: Vec<String> = [
            "i-0a1b2c3d4e5f60718",
            "i-0b2c3d4e5f6071829",
            "i-0c3d4e5f607182930",
            "i-0d4e5f60718293a41",
            "i-0e5f60718293a4b52",
        ]
        .map(String::from)
        .to_vec();
        let cases: [(&str, [&str; 5]); 3] = [
            (
                "i-00123456789abcdef",
                [
                    "i-0b2c3d4e5f6071829",
                    "i-0d4e5f60718293a41",
                    "i-0e5f60718293a4b52",
                    "i-0a1b2c3d4e5f60718",
                    "i-0c3d4e5f607182930",
                ],
            ),
            (
                "i-0feedfacecafebeef",
                [
                    "i-0a1b2c3d4e5f60718",
                    "i-0b2c3d4e5f6071829",
                    "i-0e5f60718293a4b52",
                    "i-0c3d4e5f607182930",
                    "i-0d4e5f60718293a41",
                ],
            ),
            (
                "web-01.example.com",
                [
                    "i-0b2c3d4e5f6071829",
                    "i-0c3d4e5f607182930",
                    "i-0e5f60718293a4b52",
                    "i-0a1b2c3d4e5f60718",
                    "i-0d4e5f60718293a41",
                ],
            ),
        ];
        for (minion, expected) in cases {
            assert_eq!(order_masters(minion, &masters, None), expected, "{minion}");
        }
    }

    fn master_lists() -> impl Strategy<Value = Vec<String>> {
        // Small alphabets make duplicates likely; the strings need not be instance ids.
        proptest::collection::vec("[a-d]{0,3}|i-[0-9a-f]{17}|\\PC{0,12}", 0..12)
    }

    proptest! {
        #[test]
        fn the_order_is_a_permutation_of_the_distinct_masters(
            minion in "\\PC{0,24}",
            masters in master_lists(),
        ) {
            let ordered = order_masters(&minion, &masters, None);
            let distinct: BTreeSet<&str> = masters.iter().map(String::as_str).collect();
            prop_assert_eq!(ordered.len(), distinct.len());
            prop_assert_eq!(ordered.iter().copied().collect::<BTreeSet<_>>(), distinct);
        }

        #[test]
        fn input_order_does_not_matter(
            minion in "\\PC{0,24}",
            (masters, shuffled) in master_lists()
                .prop_flat_map(|m| (Just(m.clone()), Just(m).prop_shuffle())),
            own_index in any::<prop::sample::Index>(),
        ) {
            let own = if masters.is_empty() {
                None
            } else {
                Some(masters[own_index.index(masters.len())].as_str())
            };
            prop_assert_eq!(
                order_masters(&minion, &masters, own),
                order_masters(&minion, &shuffled, own)
            );
        }

        #[test]
        fn the_order_follows_the_weights(
            minion in "\\PC{0,24}",
            masters in master_lists(),
        ) {
            let ordered = order_masters(&minion, &masters, None);
            for pair in ordered.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                let (wa, wb) = (master_weight(&minion, a), master_weight(&minion, b));
                prop_assert!(wa > wb || (wa == wb && a < b), "{} before {}", a, b);
            }
        }
    }
}
