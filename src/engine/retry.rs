//! `phoenix.retry`: when a lifecycle message that failed on a passing error is tried again.
//!
//! SQS counts every receive, and the queue's redrive policy moves a message to the
//! dead-letter queue once it was received `MaxReceiveCount` times. A message left to come
//! back after the queue's visibility timeout (120 s) would be dead-lettered after ten
//! minutes of a DynamoDB or AutoScaling outage, and a lost termination leaves a dead
//! instance's key accepted everywhere. So a message that failed for a passing reason is
//! hidden for longer each time (ChangeMessageVisibility): `first_delay`, doubling up to
//! `max_delay`, each jittered down by up to a quarter so that the messages of one outage do
//! not all come back at once. With the defaults and the data stack's `MaxReceiveCount` of
//! 15, a message stays in the queue through at least six hours of failures before it is
//! dead-lettered (tested below against the template).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::follow::point_in;

pub const DEFAULT_FIRST_DELAY: f64 = 30.0;
pub const DEFAULT_MAX_DELAY: f64 = 3600.0;
/// The longest visibility timeout SQS accepts.
pub const SQS_MAX_VISIBILITY_SECONDS: f64 = 43_200.0;
/// A delay is jittered down by up to this share of itself.
const JITTER: f64 = 0.25;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrySettings {
    /// Seconds a message that failed for a passing reason is hidden after its first failure.
    pub first_delay: f64,
    /// The longest it is hidden after a failure (the delay doubles up to this).
    pub max_delay: f64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            first_delay: DEFAULT_FIRST_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
        }
    }
}

impl RetrySettings {
    /// Seconds to hide `message_id` after its `receive_count`-th receive failed: doubling
    /// from `first_delay` to `max_delay`, jittered down by up to a quarter (the same for the
    /// same message and count, so that a test can know it).
    pub fn delay_seconds(&self, message_id: &str, receive_count: u32) -> i32 {
        let doublings = receive_count.saturating_sub(1).min(30);
        let full = (self.first_delay * f64::from(1u32 << doublings)).min(self.max_delay);
        let count = receive_count.to_string();
        let point = point_in(1000, message_id, "retry", &[&count]) as f64 / 1000.0;
        (full * (1.0 - JITTER * point)).round().max(0.0) as i32
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetrySettings {
    first_delay: Option<f64>,
    max_delay: Option<f64>,
}

impl RawRetrySettings {
    pub(crate) fn validate(self) -> Result<RetrySettings> {
        let first_delay = self.first_delay.unwrap_or(DEFAULT_FIRST_DELAY);
        let max_delay = self.max_delay.unwrap_or(DEFAULT_MAX_DELAY);
        for (key, value) in [
            ("phoenix.retry.first_delay", first_delay),
            ("phoenix.retry.max_delay", max_delay),
        ] {
            if !(value.is_finite() && (1.0..=SQS_MAX_VISIBILITY_SECONDS).contains(&value)) {
                return Err(Error::config(
                    key,
                    format!(
                        "{value} is out of range: between 1 and {SQS_MAX_VISIBILITY_SECONDS} s \
                         (the longest visibility timeout SQS accepts)"
                    ),
                ));
            }
        }
        if max_delay < first_delay {
            return Err(Error::config(
                "phoenix.retry.max_delay",
                format!(
                    "{max_delay} s is shorter than phoenix.retry.first_delay ({first_delay} s)"
                ),
            ));
        }
        Ok(RetrySettings {
            first_delay,
            max_delay,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The outage the defaults ride out with the data stack's `MaxReceiveCount`.
    const OUTAGE_RIDDEN_OUT_SECONDS: u64 = 6 * 3600;

    /// The data stack's `MaxReceiveCount` default, read from the template itself.
    fn template_max_receive_count() -> u32 {
        let template = include_str!("../../cfn/phoenix-data.yaml");
        let at = template
            .find("  MaxReceiveCount:\n")
            .expect("the data template has a MaxReceiveCount parameter");
        let default = template[at..]
            .lines()
            .find_map(|line| line.trim().strip_prefix("Default: "))
            .expect("MaxReceiveCount has a default");
        default.parse().expect("a number")
    }

    #[test]
    fn the_delay_doubles_up_to_the_cap_and_is_jittered_down_by_a_quarter_at_most() {
        let settings = RetrySettings::default();
        for count in 1..=20u32 {
            let full = (30.0 * 2f64.powi(count as i32 - 1)).min(3600.0);
            let delay = f64::from(settings.delay_seconds("m-1", count));
            assert!(
                delay <= full && delay >= full * 0.75 - 0.5,
                "{count}: {delay}"
            );
            assert_eq!(delay as i32, settings.delay_seconds("m-1", count));
        }
        // Messages of one outage come back spread out, not at once.
        let spread: std::collections::HashSet<i32> = (0..50)
            .map(|i| settings.delay_seconds(&format!("m-{i}"), 8))
            .collect();
        assert!(spread.len() > 10, "{spread:?}");
    }

    #[test]
    fn the_defaults_ride_out_six_hours_before_the_dead_letter_queue() {
        let settings = RetrySettings::default();
        let receives = template_max_receive_count();
        // The shortest the jitter can make it: the message is hidden after each of its
        // `receives` failed receives, then moved at the next one.
        for message in ["a", "b", "c", "d"] {
            let hidden: u64 = (1..=receives)
                .map(|count| settings.delay_seconds(message, count) as u64)
                .sum();
            assert!(
                hidden >= OUTAGE_RIDDEN_OUT_SECONDS,
                "{message}: {hidden} s with MaxReceiveCount {receives}"
            );
        }
    }

    #[test]
    fn settings_are_checked() {
        let raw = |first: f64, max: f64| RawRetrySettings {
            first_delay: Some(first),
            max_delay: Some(max),
        };
        assert!(raw(5.0, 60.0).validate().is_ok());
        for (first, max, key) in [
            (0.0, 60.0, "phoenix.retry.first_delay"),
            (30.0, 50_000.0, "phoenix.retry.max_delay"),
            (60.0, 30.0, "phoenix.retry.max_delay"),
            (f64::NAN, 60.0, "phoenix.retry.first_delay"),
        ] {
            match raw(first, max).validate() {
                Err(Error::Config { key: got, .. }) => assert_eq!(got, key),
                other => panic!("{first}/{max}: {other:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn a_delay_never_shrinks_from_one_failure_to_the_next_beyond_the_jitter(
            id in "[a-z0-9-]{1,40}", count in 1u32..40,
        ) {
            let settings = RetrySettings::default();
            let now = f64::from(settings.delay_seconds(&id, count));
            let next = f64::from(settings.delay_seconds(&id, count + 1));
            prop_assert!(next >= now * 0.75 - 1.0);
            prop_assert!(next <= SQS_MAX_VISIBILITY_SECONDS);
        }
    }
}
