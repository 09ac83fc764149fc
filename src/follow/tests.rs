use std::collections::BTreeMap;

use proptest::prelude::*;
use tempfile::TempDir;

use super::*;
use crate::dropin::{self, DropInChange, DropInSettings, MasterType};
use crate::error::Error;

const TIMING: Timing = Timing {
    restart_jitter_ms: 5_000,
    restart_splay_ms: 300_000,
    min_restart_interval_ms: 60_000,
    master_stale_after_ms: 30_000,
};

fn master(n: u32) -> LiveMaster {
    LiveMaster {
        instance_id: format!("i-{n:017x}"),
        address: format!("10.0.0.{n}"),
    }
}

/// The addresses of the masters `live` in `minion_id`'s order.
fn order_of(minion_id: &str, live: &[u32]) -> Vec<String> {
    ordered_addresses(
        minion_id,
        &live.iter().map(|n| master(*n)).collect::<Vec<_>>(),
        None,
    )
}

/// The number of the master at `address` (its last octet).
fn number_of(address: &str) -> u32 {
    address.rsplit('.').next().unwrap().parse().unwrap()
}

/// The masters of `live` but the one at `address`.
fn all_but(live: &[u32], address: &str) -> Vec<u32> {
    let gone = number_of(address);
    live.iter().copied().filter(|n| *n != gone).collect()
}

fn snapshot(seq: u64, masters: &[u32]) -> Snapshot {
    Snapshot {
        seq,
        masters: masters.iter().map(|n| master(*n)).collect(),
        read_at_ms: 0,
    }
}

/// An in-memory drop-in with `dropin::update`'s answers.
#[derive(Default)]
struct Disk {
    list: Option<Vec<String>>,
    writes: Vec<Vec<String>>,
    fail_with: Option<String>,
}

impl Disk {
    fn with(list: Vec<String>) -> Self {
        Disk {
            list: Some(list),
            ..Disk::default()
        }
    }

    fn write(&mut self, masters: &[String]) -> crate::Result<DropInChange> {
        assert!(!masters.is_empty(), "an empty list reached the writer");
        if let Some(reason) = &self.fail_with {
            return Err(Error::Conflict(reason.clone()));
        }
        let new = crate::dropin::unique_in_order(masters);
        if self.list.as_ref() == Some(&new) {
            return Ok(DropInChange::Unchanged { masters: new });
        }
        self.writes.push(new.clone());
        let old = self.list.replace(new.clone());
        Ok(DropInChange::Written { old, new })
    }
}

struct Minion {
    follower: Follower,
    disk: Disk,
    /// What the running salt-minion loaded and is connected to.
    running_list: Vec<String>,
    connected: Option<String>,
}

impl Minion {
    /// A failover minion that runs the order of `masters` and is connected to its first
    /// master.
    fn settled(id: &str, masters: &[u32]) -> Self {
        Self::running(id, masters, MasterType::Failover)
    }

    /// A str minion that runs the order of `masters`, connected to all of them; Salt shows
    /// the beacon its first master.
    fn hot(id: &str, masters: &[u32]) -> Self {
        Self::running(id, masters, MasterType::Str)
    }

    fn running(id: &str, masters: &[u32], master_type: MasterType) -> Self {
        let list = order_of(id, masters);
        Minion {
            follower: Follower::new(id.to_owned(), None, master_type, TIMING),
            disk: Disk::with(list.clone()),
            connected: list.first().cloned(),
            running_list: list,
        }
    }

    fn check(&mut self, snapshot: Option<&Snapshot>, now_ms: i64) -> CheckOutcome {
        let disk = &mut self.disk;
        self.follower.check(
            snapshot,
            Running {
                master: self.connected.as_deref(),
                masters: &self.running_list,
            },
            now_ms,
            &mut |masters| disk.write(masters),
        )
    }

    /// What a restart does: the minion loads the drop-in and connects to its first master.
    fn restart(&mut self) {
        self.running_list = self.disk.list.clone().unwrap();
        self.connected = self.running_list.first().cloned();
    }
}

fn restart_events(outcome: &CheckOutcome) -> Vec<RestartReason> {
    outcome
        .events
        .iter()
        .filter_map(|event| match event {
            FollowEvent::Restart { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

/// Checks every second from `from_ms` until a restart order comes out, or `until_ms`.
fn run_until_restart(
    minion: &mut Minion,
    snapshot: &Snapshot,
    from_ms: i64,
    until_ms: i64,
) -> Option<(i64, RestartOrder)> {
    let mut now = from_ms;
    while now <= until_ms {
        if let Some(order) = minion.check(Some(snapshot), now).restart {
            return Some((now, order));
        }
        now += 1_000;
    }
    None
}

#[test]
fn a_settled_minion_does_nothing() {
    let mut minion = Minion::settled("i-0aaa", &[1, 2, 3]);
    for now in 0..100 {
        let outcome = minion.check(
            Some(&snapshot(1 + now as u64 / 10, &[3, 2, 1])),
            now * 1_000,
        );
        assert_eq!(outcome, CheckOutcome::default());
    }
    assert!(minion.disk.writes.is_empty());
}

#[test]
fn nothing_happens_before_the_first_read() {
    let mut minion = Minion::settled("i-0aaa", &[1, 2]);
    minion.connected = Some("10.9.9.9".to_owned());
    assert_eq!(minion.check(None, 0), CheckOutcome::default());
    assert_eq!(minion.check(None, 600_000), CheckOutcome::default());
}

#[test]
fn current_master_leaving_rewrites_and_restarts_within_the_jitter() {
    let mut minion = Minion::settled("i-0aaa", &[1, 2, 3]);
    minion.check(Some(&snapshot(1, &[1, 2, 3])), 0);
    let current = minion.connected.clone().unwrap();
    let after = snapshot(2, &all_but(&[1, 2, 3], &current));

    let outcome = minion.check(Some(&after), 1_000);
    match &outcome.events[0] {
        FollowEvent::Changed {
            old,
            new,
            removed,
            added,
            restart,
            restart_in,
        } => {
            assert_eq!(old.as_ref(), Some(&minion.running_list));
            assert_eq!(removed, &vec![current.clone()]);
            assert!(added.is_empty());
            assert_eq!(new.len(), 2);
            assert_eq!(*restart, Some(RestartReason::CurrentMasterLeft));
            assert!(restart_in.unwrap() <= 5.0, "{restart_in:?}");
        }
        other => panic!("expected a change event, got {other:?}"),
    }
    let (at, order) = run_until_restart(&mut minion, &after, 1_000, 20_000).unwrap();
    assert!(at <= 1_000 + 5_000 + 1_000, "restarted at {at}");
    assert_eq!(order.reason, RestartReason::CurrentMasterLeft);
    assert_eq!(Some(&order.masters), minion.disk.list.as_ref());
    minion.restart();
    for now in (at + 1_000..at + 600_000).step_by(1_000) {
        let outcome = minion.check(Some(&after), now);
        assert!(
            outcome.restart.is_none() && outcome.events.is_empty(),
            "{outcome:?}"
        );
    }
}

#[test]
fn the_restart_is_announced_one_check_before_it_runs() {
    let mut minion = Minion::settled("i-0aaa", &[1, 2]);
    minion.check(Some(&snapshot(1, &[1, 2])), 0);
    minion.connected = Some("10.0.0.99".to_owned());
    let snap = snapshot(1, &[1, 2]);
    let mut now = 1_000;
    let announced_at = loop {
        let outcome = minion.check(Some(&snap), now);
        assert!(outcome.restart.is_none(), "restart before its announcement");
        if restart_events(&outcome) == [RestartReason::CurrentMasterLeft] {
            break now;
        }
        now += 1_000;
        assert!(now < 10_000, "no announcement");
    };
    let outcome = minion.check(Some(&snap), announced_at + 1_000);
    assert!(outcome.events.is_empty());
    assert_eq!(
        outcome.restart.map(|o| o.reason),
        Some(RestartReason::CurrentMasterLeft)
    );
}

/// A master that, joining masters 1 and 2, comes first for `minion_id` (or not).
fn joining_master(minion_id: &str, first: bool) -> u32 {
    (3..100)
        .find(|n| {
            let order = ordered_addresses(minion_id, &[master(1), master(2), master(*n)], None);
            (order[0] == master(*n).address) == first
        })
        .unwrap()
}

#[test]
fn a_master_joining_behind_the_first_rewrites_without_restart() {
    let id = "i-0aaa";
    let mut minion = Minion::settled(id, &[1, 2]);
    minion.check(Some(&snapshot(1, &[1, 2])), 0);
    let joining = joining_master(id, false);
    let after = snapshot(2, &[1, 2, joining]);
    let outcome = minion.check(Some(&after), 1_000);
    assert!(matches!(
        &outcome.events[..],
        [FollowEvent::Changed { restart: None, restart_in: None, added, .. }] if added == &vec![master(joining).address]
    ));
    assert!(run_until_restart(&mut minion, &after, 2_000, 3_600_000).is_none());
}

#[test]
fn a_master_joining_first_restarts_within_the_splay_after_the_staleness_bound() {
    let id = "i-0aaa";
    let mut minion = Minion::settled(id, &[1, 2]);
    minion.check(Some(&snapshot(1, &[1, 2])), 0);
    let joining = joining_master(id, true);
    let after = snapshot(2, &[1, 2, joining]);
    let (at, order) = run_until_restart(&mut minion, &after, 1_000, 3_600_000).unwrap();
    assert_eq!(order.reason, RestartReason::BetterMaster);
    assert!(
        (1_000 + 30_000..=1_000 + 30_000 + 300_000 + 2_000).contains(&at),
        "{at}"
    );
}

#[test]
fn a_pending_move_is_cancelled_when_the_minion_gets_there_by_itself() {
    let id = "i-0aaa";
    let mut minion = Minion::settled(id, &[1, 2]);
    minion.check(Some(&snapshot(1, &[1, 2])), 0);
    // Salt failed over to the second master on its own.
    minion.connected = Some(minion.running_list[1].clone());
    let snap = snapshot(1, &[1, 2]);
    minion.check(Some(&snap), 1_000);
    // ...and came back before the restart was due.
    minion.connected = Some(minion.running_list[0].clone());
    assert!(run_until_restart(&mut minion, &snap, 2_000, 3_600_000).is_none());
}

#[test]
fn restarts_are_rate_limited() {
    let mut minion = Minion::settled("i-0aaa", &[1, 2, 3, 4]);
    minion.check(Some(&snapshot(1, &[1, 2, 3, 4])), 0);
    let mut live = vec![1, 2, 3, 4];
    let mut seq = 1;
    let mut restarts = Vec::new();
    let mut now = 1_000;
    // Whichever master the minion uses dies, three times in a row, right after it connects.
    for _ in 0..3 {
        let current = minion.connected.clone().unwrap();
        live.retain(|n| master(*n).address != current);
        seq += 1;
        let snap = snapshot(seq, &live);
        let (at, _) = run_until_restart(&mut minion, &snap, now, now + 600_000).unwrap();
        restarts.push(at);
        minion.restart();
        now = at + 1_000;
    }
    for pair in restarts.windows(2) {
        assert!(pair[1] - pair[0] >= 60_000, "{restarts:?}");
    }
}

#[test]
fn a_failed_restart_is_tried_again_after_the_interval() {
    let mut minion = Minion::settled("i-0aaa", &[1, 2]);
    minion.connected = Some("10.0.0.99".to_owned());
    let snap = snapshot(1, &[1, 2]);
    let (at, _) = run_until_restart(&mut minion, &snap, 0, 60_000).unwrap();
    let event = minion.follower.restart_failed("exit status 1");
    assert!(matches!(event, FollowEvent::Problem { error } if error.contains("exit status 1")));
    let (again, _) = run_until_restart(&mut minion, &snap, at + 1_000, at + 600_000).unwrap();
    assert!(again - at >= 60_000, "{at} {again}");
}

#[test]
fn a_restart_that_changed_nothing_is_reported_once_and_not_repeated() {
    let mut minion = Minion::settled("i-0aaa", &[1, 2]);
    minion.connected = Some("10.0.0.99".to_owned());
    let snap = snapshot(1, &[1, 2]);
    let (at, _) = run_until_restart(&mut minion, &snap, 0, 60_000).unwrap();
    // The command "worked" but the minion still runs the old list.
    let mut problems = Vec::new();
    for now in (at + 1_000..at + 3_600_000).step_by(1_000) {
        let outcome = minion.check(Some(&snap), now);
        assert!(outcome.restart.is_none());
        let stuck = outcome
            .events
            .iter()
            .filter(|e| matches!(e, FollowEvent::Problem { error } if error.contains("restart_command")))
            .count();
        problems.extend(std::iter::repeat_n(now, stuck));
    }
    // Once, and only after the old process had two minutes to stop (a restart through
    // the service manager returns before the old process is gone), counted from the
    // restart's announcement one beacon run before `at`.
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0] - (at - 1_000) >= 120_000,
        "reported {} ms after the restart",
        problems[0] - at
    );
}

#[test]
fn an_empty_live_list_writes_nothing_and_is_reported_once() {
    let mut minion = Minion::settled("i-0aaa", &[1, 2]);
    for seq in 1..5 {
        let outcome = minion.check(Some(&snapshot(seq, &[])), seq as i64 * 10_000);
        assert!(outcome.restart.is_none());
        assert_eq!(outcome.events.len(), usize::from(seq == 1), "{outcome:?}");
    }
    assert!(minion.disk.writes.is_empty());
}

#[test]
fn a_refused_write_restarts_nothing() {
    let mut minion = Minion::settled("i-0aaa", &[1, 2]);
    minion.disk.fail_with = Some("not managed by Phoenix".to_owned());
    let current = minion.connected.clone().unwrap();
    let live: Vec<u32> = [1, 2, 3]
        .into_iter()
        .filter(|n| master(*n).address != current)
        .collect();
    let snap = snapshot(1, &live);
    let outcome = minion.check(Some(&snap), 0);
    assert!(
        matches!(&outcome.events[..], [FollowEvent::Problem { error }] if error.contains("not managed"))
    );
    assert!(run_until_restart(&mut minion, &snap, 1_000, 600_000).is_none());
}

#[test]
fn own_master_goes_first() {
    let masters = [master(1), master(2), master(3)];
    for own in &masters {
        let order = ordered_addresses("i-0aaa", &masters, Some(&own.instance_id));
        assert_eq!(order[0], own.address);
    }
}

/// A fleet of 1,000 minions over 5 masters loses one: exactly the minions it served
/// restart, each within the jitter; none of the others restarts at all.
#[test]
fn only_the_minions_of_a_departed_master_restart() {
    let all = [1, 2, 3, 4, 5];
    let mut fleet: Vec<Minion> = (0..1_000)
        .map(|n| Minion::settled(&format!("i-{n:017x}"), &all))
        .collect();
    let before = snapshot(1, &all);
    for minion in &mut fleet {
        minion.check(Some(&before), 0);
    }
    let after = snapshot(2, &[1, 2, 4, 5]);
    let mut restarted: BTreeMap<bool, usize> = BTreeMap::new();
    for minion in &mut fleet {
        let served = minion.connected.as_deref() == Some(master(3).address.as_str());
        let restart = run_until_restart(minion, &after, 1_000, 1_000 + 600_000);
        assert_eq!(restart.is_some(), served);
        if let Some((at, order)) = &restart {
            assert!(*at <= 1_000 + 5_000 + 1_000);
            assert_eq!(order.reason, RestartReason::CurrentMasterLeft);
        }
        *restarted.entry(served).or_default() += usize::from(restart.is_some());
    }
    // About a fifth of the fleet: the even share of rendezvous ordering.
    assert!((150..=250).contains(&restarted[&true]), "{restarted:?}");
}

#[test]
fn the_real_drop_in_is_written_and_read_back() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("phoenix-masters.conf");
    let settings = DropInSettings::default();
    let mut follower = Follower::new("i-0aaa".to_owned(), None, MasterType::Failover, TIMING);
    let outcome = follower.check(
        Some(&snapshot(1, &[1, 2])),
        Running {
            master: Some("salt.example.com"),
            masters: &["salt.example.com".to_owned()],
        },
        0,
        &mut |masters| dropin::update(&path, masters, &settings),
    );
    let written = dropin::read_masters(&path).unwrap().unwrap();
    assert_eq!(
        written,
        ordered_addresses("i-0aaa", &[master(1), master(2)], None)
    );
    assert!(matches!(
        &outcome.events[0],
        FollowEvent::Changed {
            old: None,
            restart: Some(RestartReason::CurrentMasterLeft),
            ..
        }
    ));
}

/// One step of a random history: the live masters change, Salt moves the minion, the
/// minion restarts, or the restart command fails.
#[test]
fn a_str_minion_stays_up_when_a_master_behind_its_first_leaves() {
    let mut minion = Minion::hot("i-0aaa", &[1, 2, 3]);
    minion.check(Some(&snapshot(1, &[1, 2, 3])), 0);
    let behind = minion.running_list[1].clone();
    let live = all_but(&[1, 2, 3], &behind);
    let after = snapshot(2, &live);
    let outcome = minion.check(Some(&after), 1_000);
    match &outcome.events[..] {
        [FollowEvent::Changed {
            removed, restart, ..
        }] => {
            assert_eq!(removed, &vec![behind.clone()]);
            assert_eq!(*restart, None);
        }
        other => panic!("expected one change event, got {other:?}"),
    }
    // Its other connections serve: it never restarts for this.
    assert_eq!(run_until_restart(&mut minion, &after, 2_000, 900_000), None);
    assert_eq!(
        minion.disk.list.as_ref().unwrap(),
        &order_of("i-0aaa", &live)
    );
}

#[test]
fn a_str_minion_restarts_within_the_splay_to_connect_to_a_master_that_joined() {
    for id in ["i-0aaa", "i-0bbb", "i-0ccc", "i-0ddd"] {
        let mut minion = Minion::hot(id, &[1, 2]);
        minion.check(Some(&snapshot(1, &[1, 2])), 0);
        let after = snapshot(2, &[1, 2, 3]);
        let outcome = minion.check(Some(&after), 1_000);
        let reason = match &outcome.events[0] {
            FollowEvent::Changed { restart, .. } => restart.unwrap(),
            other => panic!("expected a change event, got {other:?}"),
        };
        // Joining first also means its first master is no longer first: either way the
        // restart is not urgent.
        assert!(
            matches!(
                reason,
                RestartReason::MasterJoined | RestartReason::BetterMaster
            ),
            "{reason:?}"
        );
        let (at, order) = run_until_restart(&mut minion, &after, 1_000, 400_000).unwrap();
        assert!(
            at >= 1_000 + 30_000,
            "restarted at {at}: before the staleness bound"
        );
        assert!(at <= 1_000 + 30_000 + 300_000 + 1_000, "restarted at {at}");
        assert_eq!(order.masters, order_of(id, &[1, 2, 3]));
        minion.restart();
        assert_eq!(
            run_until_restart(&mut minion, &after, at + 1_000, 900_000),
            None
        );
    }
}

#[test]
fn a_str_minion_whose_first_master_left_restarts_within_the_splay() {
    let mut minion = Minion::hot("i-0aaa", &[1, 2, 3]);
    minion.check(Some(&snapshot(1, &[1, 2, 3])), 0);
    let live = all_but(&[1, 2, 3], &minion.running_list[0]);
    let after = snapshot(2, &live);
    let (at, order) = run_until_restart(&mut minion, &after, 1_000, 400_000).unwrap();
    assert_eq!(order.reason, RestartReason::BetterMaster);
    assert!(at > 1_000 + 30_000, "restarted at {at}: urgently");
    assert_eq!(order.masters, order_of("i-0aaa", &live));
}

#[test]
fn a_str_minion_with_no_live_master_left_restarts_within_the_jitter() {
    let mut minion = Minion::hot("i-0aaa", &[1, 2]);
    minion.check(Some(&snapshot(1, &[1, 2])), 0);
    let after = snapshot(2, &[3, 4]);
    let (at, order) = run_until_restart(&mut minion, &after, 1_000, 400_000).unwrap();
    assert_eq!(order.reason, RestartReason::EveryMasterLeft);
    assert!(at <= 1_000 + 5_000 + 1_000, "restarted at {at}");
    // Not knowing what it loaded is treated the same way.
    let mut unknown = Minion::hot("i-0aaa", &[1, 2]);
    unknown.running_list.clear();
    let (at, order) = run_until_restart(&mut unknown, &snapshot(1, &[1, 2]), 0, 400_000).unwrap();
    assert_eq!(order.reason, RestartReason::EveryMasterLeft);
    assert!(at <= 5_000 + 1_000, "restarted at {at}");
}

#[derive(Debug, Clone)]
enum Step {
    Read(Vec<u32>),
    ReadFails,
    SaltFailsOver,
    Wait(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => proptest::collection::vec(1u32..8, 0..6).prop_map(Step::Read),
        1 => Just(Step::ReadFails),
        1 => Just(Step::SaltFailsOver),
        3 => (1i64..400).prop_map(|s| Step::Wait(s * 1_000)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever happens: no empty list is written, every restart goes to the list on disk,
    /// restarts are at least `min_restart_interval` apart, and each one was announced on the
    /// check before.
    #[test]
    fn restarts_are_announced_spaced_and_aimed_at_the_written_list(
        steps in proptest::collection::vec(step(), 1..40),
        restart_works in any::<bool>(),
    ) {
        let mut minion = Minion::settled("i-0aaa", &[1, 2, 3]);
        let mut latest = snapshot(1, &[1, 2, 3]);
        let mut seq = 1;
        let mut now = 0i64;
        let mut last_restart: Option<i64> = None;
        let mut announced = false;
        for step in steps {
            let mut until = now + 1_000;
            match step {
                Step::Read(live) => {
                    seq += 1;
                    latest = snapshot(seq, &live);
                }
                Step::ReadFails => {}
                Step::SaltFailsOver => {
                    let next = minion
                        .running_list
                        .iter()
                        .find(|m| Some(*m) != minion.connected.as_ref())
                        .cloned();
                    minion.connected = next;
                }
                Step::Wait(ms) => until = now + ms,
            }
            while now < until {
                let outcome = minion.check(Some(&latest), now);
                if let Some(order) = &outcome.restart {
                    prop_assert!(announced, "a restart that was not announced");
                    prop_assert_eq!(Some(&order.masters), minion.disk.list.as_ref());
                    if let Some(last) = last_restart {
                        prop_assert!(now - last >= 60_000, "restarts {} ms apart", now - last);
                    }
                    last_restart = Some(now);
                    if restart_works {
                        minion.restart();
                    }
                }
                announced = !restart_events(&outcome).is_empty();
                now += 1_000;
            }
        }
    }

    /// Whatever the live masters did, once they hold still a str minion ends up connected
    /// to every one of them (and perhaps to some that left, which cost it nothing), its
    /// first master first, and then stays put.
    #[test]
    fn a_str_minion_ends_up_connected_to_every_live_master(
        reads in proptest::collection::vec(proptest::collection::vec(1u32..8, 1..6), 1..20),
        gaps in proptest::collection::vec(1i64..400, 20),
    ) {
        let mut minion = Minion::hot("i-0aaa", &[1, 2, 3]);
        let mut now = 0i64;
        let mut latest = snapshot(1, &[1, 2, 3]);
        for (seq, (live, gap)) in reads.iter().zip(&gaps).enumerate() {
            latest = snapshot(seq as u64 + 2, live);
            let until = now + gap * 1_000;
            while now < until {
                if minion.check(Some(&latest), now).restart.is_some() {
                    minion.restart();
                }
                now += 1_000;
            }
        }
        // Still: splay + staleness bound + rate limit is the longest a restart waits.
        for _ in 0..(300 + 30 + 60 + 5) {
            if minion.check(Some(&latest), now).restart.is_some() {
                minion.restart();
            }
            now += 1_000;
        }
        let live: Vec<u32> = latest.masters.iter().map(|m| number_of(&m.address)).collect();
        let desired = order_of("i-0aaa", &live);
        prop_assert_eq!(minion.running_list.first(), desired.first());
        for address in &desired {
            prop_assert!(minion.running_list.contains(address), "{} not loaded", address);
        }
        prop_assert_eq!(run_until_restart(&mut minion, &latest, now, now + 900_000), None);
    }
}
