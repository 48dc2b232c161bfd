//! The faults a scenario file can inject besides killing TaskManagers: the Kafka broker
//! and the generator killed and restarted, and delay and loss on a link. Each scenario is
//! written inline in the scenario format, as a user would write it.


use flinksim::Scenario;

use crate::harness::{self, assert_passed, assert_passed_as, replay, run, run_seeds, traced};

fn inline(name: &str, sink: &str, expect: &str, steps: &str) -> Scenario {
    inline_on("", name, sink, expect, steps)
}

/// [`inline`] on a cluster with these `[cluster]` keys besides `startup_period`.
fn inline_on(cluster: &str, name: &str, sink: &str, expect: &str, steps: &str) -> Scenario {
    harness::inline(name, "4m", cluster, sink, &format!("{steps}\n[expect]\n{expect}"))
}

#[test]
fn a_kafka_broker_outage_shorter_than_the_idleness_timeout_loses_nothing() {
    let scenario = inline(
        "broker-restart",
        "exactly-once",
        r#"counts = "exact"
duplicates = "none"
loss = "none""#,
        r#"
[[step]]
at = "1m"
run = "docker-compose kill kafka"
[[step]]
at = "1m3s"
run = "docker-compose up -d kafka""#,
    );
    for seed in [1, 2, 3] {
        let report = run(&scenario, seed);
        assert_passed(&report);
        assert!(report.oracle.short_at_source.is_empty(), "the generator's producer retried (seed {seed})");
    }
}

/// A finding, not a bug: during a 20 s broker outage every partition goes idle (5 s idleness
/// timeout, docs/model/job.md#event-time-and-watermarks); when the broker returns, one source
/// subtask catches up first, the counter's watermark follows it alone, and the other partition's
/// events arrive late and are dropped, exactly as Flink drops them. The oracle sees the loss; the
/// counter traces it.
///
/// Left to itself, which source catches up first, and how far, is up to the seed. Here it is
/// forced: each source runs on its own TaskManager (two with one slot each), and
/// taskmanager-2 stays cut off from the broker 15 s after it is back. Its partition is idle all
/// that time, so the counters' watermark runs on with the other partition's backlog, past the
/// end of window 01:15-01:30, before any event of those 30 s comes in from taskmanager-2.
#[test]
fn a_long_kafka_broker_outage_lets_idleness_drop_late_events_and_the_oracle_sees_it() {
    let scenario = inline_on(
        "taskmanagers = 2\nslots = 1",
        "long-broker-outage",
        "exactly-once",
        r#"counts = "exact"
duplicates = "none"
late = "required"
loss = "none""#,
        r#"
[[step]]
at = "1m"
run = "docker-compose kill kafka"
[[step]]
at = "1m"
run = "sim partition kafka taskmanager-2"
[[step]]
at = "1m20s"
run = "docker-compose up -d kafka"
[[step]]
at = "1m35s"
run = "sim heal kafka taskmanager-2""#,
    );
    for report in run_seeds(&scenario, &[1, 2, 3, 4]) {
        let replay = replay(&scenario, report.seed);
        assert!(traced(&report, "numLateRecordsDropped="), "no late event was dropped\n{replay}");
        // Every event is accounted for: counted, or dropped as late by the counter.
        let totals = report.oracle.totals();
        assert!(totals.late > 0 && totals.unaccounted == 0 && totals.lost == 0, "{totals:?}\n{replay}");
        assert_passed_as(&scenario, &report);
    }
}

#[test]
fn a_generator_restart_leaves_a_gap_at_the_source_not_in_the_job() {
    let scenario = inline(
        "generator-restart",
        "at-least-once",
        r#"counts = "exact"
duplicates = "allowed"
loss = "none""#,
        r#"
[[step]]
at = "1m"
run = "docker-compose kill clickevent-generator"
[[step]]
at = "1m30s"
run = "docker-compose up -d clickevent-generator""#,
    );
    let report = run(&scenario, 5);
    assert_passed(&report);
    // Events due while the generator was down never exist: windows short at the source, each
    // counted exactly as input holds it.
    assert!(!report.oracle.short_at_source.is_empty(), "seed 5");
    assert_eq!(report.oracle.lost_events(), 0, "seed 5");
}

/// Cut off from the JobManager's heartbeats for 8 s, the TaskManager times its JobManager out,
/// drops its tasks and registers again; the JobManager must then fail the job and restore it
/// (its tasks are gone), not wait for its own heartbeat timeout.
///
/// Both sides check their heartbeat timeout (5 s) once a second: the TaskManager whole seconds
/// after its registration was answered, the JobManager whole seconds after its start, when it
/// sends heartbeats. A TaskManager answered within a few ms after the JobManager's second
/// checks a few ms too early to see 5 s of silence; its next check comes after the
/// JobManager's, which times it out first, and the path is missed (seeds 16, 36, 60, 69 and 76
/// of 1-120 without the first step). The first step makes the JobManager's answers slow at the
/// start: the registration is retried until its answer comes about 0.6 s into a JobManager
/// second, so the TaskManager times out and registers again nearly 0.4 s before the JobManager
/// would, whatever the seed.
#[test]
fn delay_on_kafka_links_and_loss_between_jobmanager_and_taskmanager_keep_exactly_once() {
    let scenario = inline(
        "lossy-links",
        "exactly-once",
        r#"counts = "exact"
duplicates = "none"
loss = "none""#,
        r#"
[[step]]
at = "0s"
run = "sim link jobmanager -> taskmanager-1 delay 300ms"
[[step]]
at = "30s"
run = "sim link jobmanager -> taskmanager-1 clear"
[[step]]
at = "30s"
run = "sim link taskmanager-1 -> kafka delay 5ms..50ms"
[[step]]
at = "30s"
run = "sim link kafka -> taskmanager-1 delay 5ms..50ms"
[[step]]
at = "1m"
run = "sim link jobmanager -> taskmanager-1 loss 1.0"
[[step]]
at = "1m8s"
run = "sim link jobmanager -> taskmanager-1 clear"
[[step]]
at = "2m30s"
run = "sim link taskmanager-1 -> kafka clear"
[[step]]
at = "2m30s"
run = "sim link kafka -> taskmanager-1 clear""#,
    );
    for report in run_seeds(&scenario, &[1, 2, 3, 4]) {
        let replay = replay(&scenario, report.seed);
        let timed_out = "The heartbeat of JobManager with id";
        assert!(traced(&report, timed_out), "the TaskManager never timed out its JobManager\n{replay}");
        let again = "registered again: its tasks are gone";
        let not_again = "no registration of the TaskManager reached the JobManager while it held its tasks";
        assert!(traced(&report, again), "{not_again}\n{replay}");
        assert_passed_as(&scenario, &report);
    }
}
