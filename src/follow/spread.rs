//! Where one minion falls in a window of time, so a fleet spreads its restarts and reads.
//!
//! The point is a stable hash of the minion id and what the wait is about (the new master
//! list, the read number), not a random draw: minions that see the same change pick
//! different points, evenly over the window, and the same minion always picks the same one,
//! which keeps the decisions reproducible in tests.

use xxhash_rust::xxh3::Xxh3Default;

/// Starts every hashed record; distinct from the master weights of `ordering`.
const SPREAD_TAG: &[u8] = b"phoenix-spread-v1\0";

/// A point in `0..=window_ms` for `minion_id`, `purpose` and `parts`.
pub fn point_in(window_ms: u64, minion_id: &str, purpose: &str, parts: &[&str]) -> u64 {
    if window_ms == 0 {
        return 0;
    }
    let mut hasher = Xxh3Default::new();
    hasher.update(SPREAD_TAG);
    for part in [minion_id, purpose].iter().chain(parts) {
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.digest() % (window_ms + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_stay_in_the_window_and_spread_over_it() {
        let window = 300_000;
        let mut buckets = [0usize; 10];
        for n in 0..10_000 {
            let point = point_in(window, &format!("i-{n:017x}"), "restart", &["10.0.0.1"]);
            assert!(point <= window);
            buckets[(point * 10 / (window + 1)) as usize] += 1;
        }
        // 1,000 expected per tenth; 15% covers about five standard deviations.
        for (tenth, count) in buckets.iter().enumerate() {
            assert!((850..=1150).contains(count), "tenth {tenth}: {count}");
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_point_and_other_inputs_another() {
        let a = point_in(60_000, "i-0a", "restart", &["10.0.0.1", "10.0.0.2"]);
        assert_eq!(
            a,
            point_in(60_000, "i-0a", "restart", &["10.0.0.1", "10.0.0.2"])
        );
        assert_ne!(
            a,
            point_in(60_000, "i-0a", "restart", &["10.0.0.2", "10.0.0.1"])
        );
        assert_ne!(
            a,
            point_in(60_000, "i-0b", "restart", &["10.0.0.1", "10.0.0.2"])
        );
        assert_eq!(point_in(0, "i-0a", "restart", &[]), 0);
    }
}
