use proptest::prelude::*;

use super::judge::{judge, Hold, Observer, Verdict};
use super::settings::ReplacementSettings;
use crate::registry::{InstanceState, MasterHeartbeat, ReplacementClaim};

const ME: &str = "i-0000000000000000a";
const B: &str = "i-0000000000000000b";
const C: &str = "i-0000000000000000c";
const STALE: i64 = 10_000;
const NOW: i64 = 10_000_000;

fn settings() -> ReplacementSettings {
    ReplacementSettings {
        enabled: true,
        replace_after: 60.0,
        launch_grace: 300.0,
        max_in_flight: 1,
    }
}

/// A master launched an hour ago.
fn master(id: &str, state: InstanceState, beat: Option<i64>) -> MasterHeartbeat {
    MasterHeartbeat {
        launch_ms: Some(NOW - 3_600_000),
        ..MasterHeartbeat::sample(id, state, beat)
    }
}

/// Rows as they stand at NOW: this master fresh, the others with the given heartbeats.
fn rows(others: &[(&str, i64)]) -> Vec<MasterHeartbeat> {
    let mut rows = vec![master(ME, InstanceState::Running, Some(NOW))];
    rows.extend(
        others
            .iter()
            .map(|(id, beat)| master(id, InstanceState::Running, Some(*beat))),
    );
    rows
}

/// An observer that first saw `rows` at monotonic 0 and has watched them since.
fn watched(rows: &[MasterHeartbeat]) -> Observer {
    let mut observer = Observer::default();
    observer.observe(rows, 0);
    observer
}

fn reported(verdicts: &[Verdict]) -> Vec<&str> {
    verdicts
        .iter()
        .filter(|v| matches!(v, Verdict::Report { .. }))
        .map(Verdict::instance_id)
        .collect()
}

#[test]
fn a_master_silent_past_replace_after_is_reported_with_how_long() {
    let rows = rows(&[(B, NOW - 61_000), (C, NOW)]);
    let verdicts = judge(ME, &rows, &watched(&rows), NOW, 61_000, STALE, &settings());
    assert_eq!(
        verdicts,
        vec![Verdict::Report {
            instance_id: B.into(),
            silent_for_ms: 61_000,
            heartbeat_ms: Some(NOW - 61_000),
        }]
    );
}

#[test]
fn silence_is_measured_on_this_masters_clock_not_from_the_heartbeats_time() {
    // B's heartbeat says it is an hour old (its clock, or this one, is off), but this master
    // has watched it stand still for 10 s only.
    let rows = rows(&[(B, NOW - 3_600_000)]);
    let verdicts = judge(ME, &rows, &watched(&rows), NOW, 10_000, STALE, &settings());
    assert_eq!(
        verdicts,
        vec![Verdict::Hold {
            instance_id: B.into(),
            why: Hold::NotYet {
                silent_for_ms: 10_000
            }
        }]
    );
    // A heartbeat that moves starts the silence anew.
    let mut observer = watched(&rows);
    let moved = self::rows(&[(B, NOW - 3_500_000)]);
    observer.observe(&moved, 50_000);
    assert_eq!(observer.silent_for_ms(B, 70_000), 20_000);
}

#[test]
fn a_master_live_by_the_registry_is_never_reported_however_long_it_looked_still() {
    // Its value stood still on this master's clock (this master read a cached row), but
    // the live list's rule says fresh: not reported.
    let rows = rows(&[(B, NOW - 5_000)]);
    assert!(judge(ME, &rows, &watched(&rows), NOW, 600_000, STALE, &settings()).is_empty());
}

#[test]
fn a_reporter_that_is_not_live_itself_judges_nobody() {
    let mut rows = rows(&[(B, NOW - 600_000)]);
    rows[0].heartbeat_ms = Some(NOW - STALE - 1);
    assert!(judge(ME, &rows, &watched(&rows), NOW, 600_000, STALE, &settings()).is_empty());
    // Nor one whose row is missing or retiring.
    let others = &rows[1..];
    assert!(judge(
        ME,
        others,
        &watched(others),
        NOW,
        600_000,
        STALE,
        &settings()
    )
    .is_empty());
    let mut retiring = self::rows(&[(B, NOW - 600_000)]);
    retiring[0].state = Some(InstanceState::Terminating);
    assert!(judge(
        ME,
        &retiring,
        &watched(&retiring),
        NOW,
        600_000,
        STALE,
        &settings()
    )
    .is_empty());
}

#[test]
fn only_running_masters_are_reported_and_never_the_reporter() {
    let mut rows = rows(&[(B, NOW - 600_000), (C, NOW - 600_000)]);
    rows[1].state = Some(InstanceState::Launching);
    rows[2].state = Some(InstanceState::Terminating);
    assert!(judge(ME, &rows, &watched(&rows), NOW, 600_000, STALE, &settings()).is_empty());
}

#[test]
fn a_master_within_its_launch_grace_is_held() {
    let mut rows = rows(&[(B, NOW - 600_000)]);
    rows[1].launch_ms = Some(NOW - 100_000);
    let verdicts = judge(ME, &rows, &watched(&rows), NOW, 600_000, STALE, &settings());
    assert_eq!(
        verdicts,
        vec![Verdict::Hold {
            instance_id: B.into(),
            why: Hold::InLaunchGrace {
                launched_ms_ago: 100_000
            }
        }]
    );
}

#[test]
fn at_most_max_in_flight_longest_silent_first() {
    let rows = rows(&[(B, NOW - 600_000), (C, NOW - 600_000)]);
    let mut observer = Observer::default();
    observer.observe(&rows[..2], 0);
    observer.observe(&rows, 10_000); // C came into view later: silent for less
    let verdicts = judge(ME, &rows, &observer, NOW, 600_000, STALE, &settings());
    assert_eq!(reported(&verdicts), vec![B]);
    assert!(verdicts.contains(&Verdict::Hold {
        instance_id: C.into(),
        why: Hold::InFlightLimit { in_flight: 1 }
    }));
    let two = ReplacementSettings {
        max_in_flight: 2,
        ..settings()
    };
    assert_eq!(
        reported(&judge(ME, &rows, &observer, NOW, 600_000, STALE, &two)),
        vec![B, C]
    );
}

fn claim(by: &str, at_ms: i64, reported_ms: Option<i64>) -> Option<ReplacementClaim> {
    Some(ReplacementClaim {
        by: by.into(),
        at_ms,
        silent_for_ms: 60_000,
        reported_ms,
    })
}

#[test]
fn a_claimed_master_counts_in_flight_until_it_is_terminated() {
    let mut rows = rows(&[(B, NOW - 600_000), (C, NOW - 600_000)]);
    rows[1].replacement = claim(C, NOW - 1_000, Some(NOW - 900));
    let observer = watched(&rows);
    // B was reported (by someone): C waits for B's replacement.
    assert_eq!(
        judge(ME, &rows, &observer, NOW, 600_000, STALE, &settings()),
        vec![Verdict::Hold {
            instance_id: C.into(),
            why: Hold::InFlightLimit { in_flight: 1 }
        }]
    );
    rows[1].state = Some(InstanceState::Terminated);
    assert_eq!(
        reported(&judge(
            ME,
            &rows,
            &observer,
            NOW,
            600_000,
            STALE,
            &settings()
        )),
        vec![C]
    );
}

#[test]
fn a_claim_not_reported_is_retried_by_its_claimer_and_taken_over_only_when_old() {
    let mut rows = rows(&[(B, NOW - 600_000)]);
    let observer = watched(&rows);
    rows[1].replacement = claim(ME, NOW - 1_000, None);
    assert_eq!(
        judge(ME, &rows, &observer, NOW, 600_000, STALE, &settings()),
        vec![Verdict::ReportAgain {
            instance_id: B.into()
        }]
    );
    rows[1].replacement = claim(C, NOW - 1_000, None);
    assert_eq!(
        judge(ME, &rows, &observer, NOW, 600_000, STALE, &settings()),
        vec![Verdict::Hold {
            instance_id: B.into(),
            why: Hold::Claimed { by: C.into() }
        }]
    );
    rows[1].replacement = claim(C, NOW - 60_000, None);
    assert_eq!(
        judge(ME, &rows, &observer, NOW, 600_000, STALE, &settings()),
        vec![Verdict::TakeOver {
            instance_id: B.into(),
            from: C.into(),
            silent_for_ms: 600_000,
            heartbeat_ms: Some(NOW - 600_000),
        }]
    );
}

#[test]
fn disabled_reports_nobody() {
    let rows = rows(&[(B, NOW - 600_000)]);
    let off = ReplacementSettings {
        enabled: false,
        ..settings()
    };
    assert!(judge(ME, &rows, &watched(&rows), NOW, 600_000, STALE, &off).is_empty());
}

fn arb_state() -> impl Strategy<Value = InstanceState> {
    prop::sample::select(InstanceState::ALL.to_vec())
}

prop_compose! {
    fn arb_master(index: usize)(
        state in arb_state(),
        beat_age in prop::option::of(0i64..1_000_000),
        launched_ago in prop::option::of(0i64..1_000_000),
        claimed in prop::option::of((0usize..4, 0i64..200_000, any::<bool>())),
        seen_at in 0i64..1_000_000,
    ) -> (MasterHeartbeat, i64) {
        let ids = [ME, B, C, "i-0000000000000000d"];
        let mut row = master(ids[index], state, beat_age.map(|age| NOW - age));
        row.launch_ms = launched_ago.map(|ago| NOW - ago);
        row.replacement = claimed.and_then(|(by, age, reported)| {
            claim(ids[by], NOW - age, reported.then_some(NOW - age / 2))
        });
        (row, seen_at)
    }
}

proptest! {
    /// Whatever the rows and what this master watched: nothing is reported unless this
    /// master is live; never itself, never a master live by the registry's rule, never one
    /// not running, watched for less than replace_after or in its launch grace, never one
    /// already claimed; and the reported plus those already in flight never exceed
    /// max_in_flight.
    #[test]
    fn the_guards_hold(
        masters in (arb_master(0), arb_master(1), arb_master(2), arb_master(3)),
        max_in_flight in 1u32..4,
        mono in 0i64..2_000_000,
        me_beat_age in 0i64..20_000,
    ) {
        let (mut a, b, c, d) = masters;
        // This master is running, and fresh about half the time (else nothing is judged).
        a.0.state = Some(InstanceState::Running);
        a.0.heartbeat_ms = Some(NOW - me_beat_age);
        let settings = ReplacementSettings { max_in_flight, ..settings() };
        // Each master came into view at its own time: take them in one by one, in that
        // order (observe() forgets rows it is not given, so each call gets all so far).
        let mut all = [a, b, c, d];
        all.sort_by_key(|(_, seen_at)| *seen_at);
        let rows: Vec<MasterHeartbeat> = all.iter().map(|(row, _)| row.clone()).collect();
        let mut observer_all = Observer::default();
        for (k, (_, seen_at)) in all.iter().enumerate() {
            observer_all.observe(&rows[..=k], *seen_at);
        }
        let mono = mono.max(all[3].1);
        let me_row = rows.iter().find(|r| r.instance_id == ME).unwrap();
        let verdicts = judge(ME, &rows, &observer_all, NOW, mono, STALE, &settings);
        let me_live = me_row.is_live(NOW, STALE);
        if !me_live {
            prop_assert!(verdicts.is_empty());
        }
        let in_flight = rows
            .iter()
            .filter(|r| r.replacement.is_some() && r.state != Some(InstanceState::Terminated))
            .count() as u32;
        let mut new_reports = 0u32;
        for verdict in &verdicts {
            let row = rows.iter().find(|r| r.instance_id == verdict.instance_id()).unwrap();
            prop_assert_ne!(verdict.instance_id(), ME);
            prop_assert!(!row.is_live(NOW, STALE));
            prop_assert_eq!(row.state, Some(InstanceState::Running));
            match verdict {
                Verdict::Report { silent_for_ms, .. } => {
                    new_reports += 1;
                    prop_assert!(row.replacement.is_none());
                    prop_assert!(*silent_for_ms >= settings.replace_after_ms());
                    prop_assert_eq!(*silent_for_ms, observer_all.silent_for_ms(&row.instance_id, mono));
                    prop_assert!(row.launch_ms.is_none_or(|l| NOW - l >= settings.launch_grace_ms()));
                }
                Verdict::ReportAgain { .. } => {
                    let claim = row.replacement.as_ref().unwrap();
                    prop_assert_eq!(claim.by.as_str(), ME);
                    prop_assert!(claim.reported_ms.is_none());
                }
                Verdict::TakeOver { from, silent_for_ms, .. } => {
                    let claim = row.replacement.as_ref().unwrap();
                    prop_assert_eq!(&claim.by, from);
                    prop_assert_ne!(from.as_str(), ME);
                    prop_assert!(claim.reported_ms.is_none());
                    prop_assert!(NOW - claim.at_ms >= settings.replace_after_ms());
                    prop_assert!(*silent_for_ms >= settings.replace_after_ms());
                }
                Verdict::Hold { .. } => {}
            }
        }
        prop_assert!(new_reports == 0 || in_flight + new_reports <= max_in_flight);
    }
}
