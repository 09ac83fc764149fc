//! The wall clock, in the unit the registry records times in: milliseconds since the Unix
//! epoch. Read at the edges (the engine, the bindings, the refresher) and passed into the
//! pure logic as `now_ms`, so that every decision can be tested at any time.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the Unix epoch (0 on a clock set before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
