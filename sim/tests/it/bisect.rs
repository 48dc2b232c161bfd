//! Bisecting a failing run: the pitfalls judged with the strictest expectations fail, and the
//! first wrong moment the bisection names is the one read independently off the trace.

use std::collections::BTreeMap;

use flinksim::Report;
use flinksim::bisect::{self, Role};
use flinksim::invariant::Breach;
use flinksim_engine::protocol::states::JobStatus;
use flinksim_engine::trace::{Event, Fault};

use crate::harness::{run, scenario};

fn strict_run(name: &str, seed: u64) -> Report {
    run(&bisect::strict(&scenario(name)), seed)
}

fn replay(name: &str, seed: u64) -> String {
    format!("replay: cargo xtask bisect {name} --seed {seed} --strict")
}

/// The index of the first write of a (window, page) that had been written before.
fn first_second_write(report: &Report) -> usize {
    let mut written = BTreeMap::new();
    report
        .events
        .iter()
        .position(|e| match &e.event {
            Event::ResultWritten { statistics, .. } => {
                let n = written.entry((statistics.window_start_ms, statistics.page.clone())).or_insert(0);
                *n += 1;
                *n == 2
            }
            _ => false,
        })
        .expect("the pitfall writes copies")
}

#[test]
fn copies_at_least_once_are_wrong_at_the_first_second_write_after_the_restore() {
    let name = "pitfalls/at-least-once-duplicates";
    for seed in [1, 2] {
        let report = strict_run(name, seed);
        let found = bisect::bisect(&report);
        let replay = replay(name, seed);
        assert!(found.is_bad(), "{replay}");
        let first = found.first.as_ref().expect("a finding");
        assert_eq!(first.index, first_second_write(&report), "{replay}");
        assert!(matches!(&first.breach, Breach::SecondCopy { committed: false, counts, .. } if counts == &[1000, 1000]), "{replay}");
        let roles: Vec<Role> = found.chain.iter().map(|l| l.role).collect();
        assert_eq!(roles, [Role::Fault, Role::Detection, Role::Restore, Role::Wrong], "{replay}");
        assert!(matches!(&found.chain[0].event.event, Event::StepRun { applied, .. } if applied == &[Fault::NodeDown { node: "taskmanager-1".into() }]));
        assert!(matches!(found.chain[1].event.event, Event::TaskManagerLost { heartbeat_timed_out: true, .. }), "{replay}");
        assert!(matches!(found.chain[2].event.event, Event::Restoring { .. }), "{replay}");
        // The window of the trace is centred on it, and the report marks it.
        assert!(found.window.iter().any(|(i, _)| *i == first.index));
        let text = bisect::render(&found, &report);
        assert!(text.contains(&format!(">> {:>6} ", first.index + 1)), "{text}");
        assert!(text.contains("causal chain:\n  fault "), "{text}");
    }
}

#[test]
fn a_lost_transaction_is_wrong_when_the_restored_sink_finds_it_aborted() {
    let name = "pitfalls/transaction-timeout-loss";
    let report = strict_run(name, 1);
    let found = bisect::bisect(&report);
    let first = found.first.as_ref().expect("a finding");
    let lost = report.events.iter().position(|e| matches!(e.event, Event::TransactionLost { .. })).unwrap();
    assert_eq!(first.index, lost, "{}", replay(name, 1));
    assert!(matches!(first.breach, Breach::LossNotAccepted { events, .. } if events > 0));
    // The restore just before it is the one that found the transaction aborted.
    let restore = found.chain.iter().find(|l| l.role == Role::Restore).expect("a restore");
    assert!(matches!(restore.event.event, Event::Restoring { checkpoint_id, .. } if matches!(&report.events[lost].event, Event::TransactionLost { checkpoint_id: c, .. } if *c == checkpoint_id)));
    // It is the last restore before the loss: the job cycled for slots, restoring on every attempt.
    assert!(report.events[..restore.index].iter().any(|e| matches!(e.event, Event::Restoring { .. })), "earlier attempts restored too");
    assert!(
        report.events[restore.index + 1..first.index].iter().all(|e| !matches!(e.event, Event::Restoring { .. })),
        "the chain names the last restore before the loss"
    );
    // Both faults came before it: the slowed link and the kill.
    assert_eq!(found.faults_before.len(), 2);
}

#[test]
fn state_lost_without_checkpointing_is_wrong_when_the_job_fails_for_good() {
    let name = "pitfalls/no-checkpointing-loss";
    let report = strict_run(name, 1);
    let found = bisect::bisect(&report);
    let first = found.first.as_ref().expect("a finding");
    let failed = report
        .events
        .iter()
        .position(|e| matches!(e.event, Event::JobStatusChanged { to: JobStatus::Failed, .. }))
        .unwrap();
    assert_eq!(first.index, failed, "{}", replay(name, 1));
}

#[test]
fn a_passing_run_has_nothing_to_bisect() {
    let report = run(&scenario("failure-recovery-exactly-once"), 3);
    let found = bisect::bisect(&report);
    assert!(!found.is_bad(), "{:?}", found.first);
    assert!(found.chain.is_empty() && found.window.is_empty());
    assert!(bisect::render(&found, &report).contains("nothing to bisect"));
}
