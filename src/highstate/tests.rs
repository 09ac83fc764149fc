use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::config::{HighstateSettings, PhoenixConfig};
use crate::lifecycle::LifecycleAction;
use crate::registry::InstanceState;

fn settings() -> HighstateSettings {
    PhoenixConfig::from_json(r#"{"cluster": "t", "highstate": {"attempts": 3, "retry_delay": 10, "retry_max_delay": 15, "timeout": 60}}"#)
        .unwrap()
        .highstate
}

fn state(
    id: &str,
    result: serde_json::Value,
    run_num: i64,
    changes: serde_json::Value,
) -> serde_json::Value {
    json!({"__id__": id, "name": format!("/srv/{id}"), "result": result, "comment": format!("comment of {id}"),
           "__run_num__": run_num, "changes": changes})
}

#[test]
fn a_clean_state_run_succeeds_and_counts_its_states() {
    let data = json!({"retcode": 0, "return": {
        "file_|-motd_|-/etc/motd_|-managed": state("motd", json!(true), 0, json!({"diff": "new"})),
        "pkg_|-tools_|-tools_|-installed": state("tools", json!(true), 1, json!({})),
    }});
    let outcome = summarize(&data);
    assert!(outcome.succeeded);
    assert_eq!(
        (outcome.states, outcome.changed, outcome.failed_count),
        (2, 1, 0)
    );
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.summary(), "2 states, 1 changed");
}

#[test]
fn failed_states_are_named_in_the_order_they_ran() {
    let data = json!({"retcode": 2, "return": {
        "cmd_|-late_|-false_|-run": state("late", json!(false), 5, json!({})),
        "cmd_|-early_|-false_|-run": state("early", json!(false), 2, json!({})),
        "test_|-fine_|-fine_|-nop": state("fine", json!(true), 0, json!({})),
        "test_|-dry_|-dry_|-nop": state("dry", json!(null), 1, json!({})),
    }});
    let outcome = summarize(&data);
    assert!(!outcome.succeeded);
    assert_eq!(outcome.failed_count, 2);
    let ids: Vec<&str> = outcome
        .failed_states
        .iter()
        .map(|f| f.id.as_str())
        .collect();
    assert_eq!(ids, ["early", "late"]);
    assert_eq!(outcome.failed_states[0].function, "cmd.run");
    assert_eq!(outcome.failed_states[0].name, "/srv/early");
    assert_eq!(outcome.failed_states[0].comment, "comment of early");
    assert_eq!(outcome.summary(), "2 of 4 states failed: early, late");
}

#[test]
fn at_most_ten_failed_states_are_kept_but_all_are_counted() {
    let states: serde_json::Map<String, serde_json::Value> = (0..25)
        .map(|i| {
            (
                format!("cmd_|-s{i:02}_|-x_|-run"),
                state(&format!("s{i:02}"), json!(false), i, json!({})),
            )
        })
        .collect();
    let outcome = summarize(&json!({"retcode": 2, "return": states}));
    assert_eq!(outcome.failed_count, 25);
    assert_eq!(outcome.failed_states.len(), MAX_FAILED_STATES);
    assert_eq!(outcome.failed_states[9].id, "s09");
}

#[test]
fn a_run_that_does_not_compile_or_is_not_there_is_an_error() {
    let compile =
        summarize(&json!({"retcode": 1, "return": ["Rendering SLS 'base:web' failed: bad yaml"]}));
    assert!(!compile.succeeded);
    assert!(compile
        .error
        .as_deref()
        .unwrap()
        .contains("did not compile: Rendering SLS"));
    let missing = summarize(&json!({"retcode": 254, "return": "'state.apply' is not available."}));
    assert!(missing.error.as_deref().unwrap().contains("not available"));
    let nothing = summarize(&json!({"jid": "1"}));
    assert!(!nothing.succeeded && nothing.error.is_some());
    // A non-zero retcode with no failed state is still a failure, and says so.
    let odd = summarize(
        &json!({"retcode": 1, "return": {"a_|-b_|-c_|-d": state("b", json!(true), 0, json!({}))}}),
    );
    assert!(!odd.succeeded);
    assert!(odd.error.as_deref().unwrap().contains("retcode 1"));
}

#[test]
fn long_comments_are_cut_at_a_character_boundary() {
    let comment = "é".repeat(1000);
    let data =
        json!({"retcode": 2, "return": {"a_|-b_|-c_|-d": {"result": false, "comment": comment}}});
    let kept = &summarize(&data).failed_states[0].comment;
    assert_eq!(kept.chars().count(), 300);
    assert!(kept.ends_with('…'));
}

fn record(status: Status, attempt: u32) -> HighstateRecord {
    HighstateRecord::sample(status, attempt)
}

#[test]
fn who_may_start_an_attempt() {
    use ClaimMode::*;
    let at = 10_000;
    assert_eq!(decide_claim(None, true, First, at), Ok(1));
    assert_eq!(decide_claim(None, false, First, at), Err(Skip::NotLive));
    let succeeded = record(Status::Succeeded, 1);
    assert_eq!(
        decide_claim(Some(&succeeded), true, First, at),
        Err(Skip::Succeeded)
    );
    assert_eq!(
        decide_claim(Some(&succeeded), true, Retry, at),
        Err(Skip::Succeeded)
    );
    assert_eq!(decide_claim(Some(&succeeded), true, Rerun, at), Ok(1));
    let failed = record(Status::Failed, 3);
    assert_eq!(
        decide_claim(Some(&failed), true, First, at),
        Err(Skip::Failed)
    );
    assert_eq!(decide_claim(Some(&failed), true, Rerun, at), Ok(1));
    let running = record(Status::Running, 2);
    for mode in [First, Retry, Rerun] {
        assert_eq!(
            decide_claim(Some(&running), true, mode, at),
            Err(Skip::Running)
        );
    }
    // Past its deadline only a rerun takes it over; a sweep records the timeout first.
    assert_eq!(
        decide_claim(Some(&running), true, First, 61_001),
        Err(Skip::Running)
    );
    assert_eq!(decide_claim(Some(&running), true, Rerun, 61_001), Ok(1));
    let retrying = record(Status::Retrying, 1);
    assert_eq!(
        decide_claim(Some(&retrying), true, First, at),
        Err(Skip::RetryNotDue)
    );
    assert_eq!(decide_claim(Some(&retrying), true, Retry, 20_000), Ok(2));
    assert_eq!(
        decide_claim(Some(&retrying), false, Retry, 20_000),
        Err(Skip::NotLive)
    );
}

#[test]
fn failures_are_retried_with_doubling_delays_then_recorded_as_failed() {
    let settings = settings();
    assert_eq!(settings.retry_delay_ms(2), 10_000);
    assert_eq!(
        settings.retry_delay_ms(3),
        15_000,
        "capped at retry_max_delay"
    );
    let failure = AttemptOutcome::error("boom");
    let first = started(None, 1, ClaimMode::First, "m1", "j1", 0, &settings);
    assert_eq!(first.deadline_ms, 60_000);
    let after_first = finished(&first, &failure, 5_000, &settings);
    assert_eq!(after_first.status, Status::Retrying);
    assert_eq!(after_first.next_attempt_ms, Some(15_000));
    assert_eq!(after_first.error.as_deref(), Some("boom"));
    let third = started(
        Some(&after_first),
        3,
        ClaimMode::Retry,
        "m2",
        "j3",
        30_000,
        &settings,
    );
    let after_third = finished(&third, &failure, 31_000, &settings);
    assert_eq!(after_third.status, Status::Failed);
    assert_eq!(after_third.next_attempt_ms, None);
    assert_eq!(after_third.master, "m2");
    let success = AttemptOutcome {
        succeeded: true,
        states: 4,
        ..AttemptOutcome::default()
    };
    let done = finished(&third, &success, 31_000, &settings);
    assert_eq!(
        (done.status, done.states, done.error.clone()),
        (Status::Succeeded, 4, None)
    );
    assert_eq!(
        lifecycle_result(done.status),
        Some(crate::engine::ActionResult::Continue)
    );
    assert_eq!(
        lifecycle_result(after_third.status),
        Some(crate::engine::ActionResult::Abandon)
    );
    assert_eq!(lifecycle_result(Status::Retrying), None);
}

#[test]
fn a_rerun_and_its_retries_are_marked_as_a_rerun() {
    let settings = settings();
    let rerun = started(
        Some(&record(Status::Succeeded, 1)),
        1,
        ClaimMode::Rerun,
        "m",
        "j",
        0,
        &settings,
    );
    assert!(rerun.rerun);
    let retried = finished(&rerun, &AttemptOutcome::error("x"), 1, &settings);
    assert!(started(Some(&retried), 2, ClaimMode::Retry, "m", "j2", 2, &settings).rerun);
    assert!(!started(None, 1, ClaimMode::First, "m", "j", 0, &settings).rerun);
}

fn row(
    id: &str,
    state: InstanceState,
    record: Option<HighstateRecord>,
    hook: bool,
) -> crate::registry::InstanceRecord {
    crate::registry::InstanceRecord {
        instance_id: id.into(),
        role: crate::lifecycle::Role::Minion,
        state,
        group: Some("g".into()),
        availability_zone: None,
        address: None,
        event_ms: 0,
        launch_ms: None,
        heartbeat_ms: None,
        expires_at: None,
        launch_hook: hook.then(|| LifecycleAction {
            hook_name: "h".into(),
            token: format!("t-{id}"),
            group: "g".into(),
        }),
        retire_hook: None,
        key: None,
        first_highstate: record,
    }
}

#[test]
fn a_sweep_times_out_retries_completes_and_keeps_launches_alive() {
    let settings = settings();
    let me = "i-0000000000000a001";
    let other = "i-0000000000000a002";
    let live: HashSet<String> = [me.to_owned(), other.to_owned()].into();
    let mut theirs = record(Status::Running, 1);
    theirs.master = other.into();
    let mut gone = record(Status::Running, 1);
    gone.master = "i-0000000000000a009".into();
    let rows = vec![
        row(
            "i-late",
            InstanceState::Running,
            Some(record(Status::Running, 1)),
            false,
        ),
        row(
            "i-due",
            InstanceState::Running,
            Some(record(Status::Retrying, 1)),
            true,
        ),
        row(
            "i-done",
            InstanceState::Launching,
            Some(record(Status::Succeeded, 1)),
            true,
        ),
        row(
            "i-lost",
            InstanceState::Launching,
            Some(record(Status::Failed, 3)),
            true,
        ),
        row("i-theirs", InstanceState::Launching, Some(theirs), true),
        row("i-orphan", InstanceState::Launching, Some(gone), true),
        row("i-booting", InstanceState::Launching, None, true),
        row(
            "i-leaving",
            InstanceState::Terminating,
            Some(record(Status::Retrying, 1)),
            true,
        ),
    ];
    let actions = plan_sweep(&rows, me, &live, &HashMap::new(), 61_001, &settings);
    let named: Vec<(String, &str)> = actions
        .iter()
        .map(|a| match a {
            SweepAction::TimedOut { instance_id, .. } => (instance_id.clone(), "timed_out"),
            SweepAction::RetryDue { instance_id } => (instance_id.clone(), "retry"),
            SweepAction::Complete {
                instance_id,
                result,
                ..
            } => (instance_id.clone(), result.as_str()),
            SweepAction::Heartbeat { instance_id, .. } => (instance_id.clone(), "heartbeat"),
        })
        .collect();
    let expected: Vec<(String, &str)> = vec![
        ("i-late".into(), "timed_out"),
        ("i-due".into(), "retry"),
        ("i-due".into(), "heartbeat"),
        ("i-done".into(), "CONTINUE"),
        ("i-lost".into(), "ABANDON"),
        ("i-theirs".into(), "timed_out"),
        ("i-orphan".into(), "timed_out"),
        ("i-orphan".into(), "heartbeat"),
    ];
    assert_eq!(named, expected);
    // A heartbeat sent recently is not sent again before the interval.
    let recent = HashMap::from([("i-due".to_owned(), 61_000)]);
    let again = plan_sweep(&rows[1..2], me, &live, &recent, 61_001, &settings);
    assert_eq!(
        again,
        vec![SweepAction::RetryDue {
            instance_id: "i-due".into()
        }]
    );
}

fn any_outcome() -> impl Strategy<Value = AttemptOutcome> {
    prop_oneof![
        Just(AttemptOutcome {
            succeeded: true,
            ..AttemptOutcome::default()
        }),
        "[a-z ]{0,20}".prop_map(AttemptOutcome::error),
    ]
}

proptest! {
    /// Whatever the outcomes, a first highstate takes at most `attempts` attempts, ends
    /// succeeded exactly when an attempt succeeded, and every wait between attempts is
    /// within [retry_delay, retry_max_delay].
    #[test]
    fn attempts_are_bounded_and_the_end_is_right(
        attempts in 1u32..6,
        outcomes in proptest::collection::vec(any_outcome(), 1..10),
        delay in 0u32..100,
        extra in 0u32..100,
    ) {
        let settings = PhoenixConfig::from_json(&format!(
            r#"{{"cluster": "t", "highstate": {{"attempts": {attempts}, "retry_delay": {delay}, "retry_max_delay": {}}}}}"#,
            delay + extra
        )).unwrap().highstate;
        let mut now = 0i64;
        let mut current: Option<HighstateRecord> = None;
        let mut ran = 0u32;
        for outcome in &outcomes {
            let attempt = match decide_claim(current.as_ref(), true, ClaimMode::Retry, now) {
                Ok(attempt) => attempt,
                Err(skip) => {
                    prop_assert!(matches!(skip, Skip::Succeeded | Skip::Failed));
                    break;
                }
            };
            ran += 1;
            prop_assert_eq!(attempt, ran);
            let record = started(current.as_ref(), attempt, ClaimMode::Retry, "m", &format!("j{ran}"), now, &settings);
            now += 1;
            let done = finished(&record, outcome, now, &settings);
            if let Some(next) = done.next_attempt_ms {
                let wait = next - now;
                prop_assert!(wait >= i64::from(delay) * 1000 && wait <= i64::from(delay + extra) * 1000);
                now = next;
            }
            current = Some(done);
        }
        prop_assert!(ran <= attempts);
        let last = current.unwrap();
        let succeeded = outcomes.iter().take(ran as usize).any(|o| o.succeeded);
        prop_assert_eq!(last.status == Status::Succeeded, succeeded);
        if !succeeded && ran == attempts {
            prop_assert_eq!(last.status, Status::Failed);
        }
    }
}
