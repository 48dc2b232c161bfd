//! `docker-compose stop` against `kill`: a stop is SIGTERM, then SIGKILL after 10 s.
//! A TaskManager that stops cancels its tasks (the exactly-once sink aborts its open
//! transaction) and says goodbye, so the JobManager fails its tasks at once; a killed one is
//! found only by the heartbeat timeout. A JobManager that stops suspends its job and says
//! goodbye to its TaskManagers; killed or stopped, it comes back without the job.

use std::time::Duration;

use flinksim::oracle::Violation;
use flinksim::verdict::VerdictClass;
use flinksim::{Report, Scenario};
use flinksim_engine::trace::{Event, TraceEvent};

use crate::harness::{self, assert_passed, run, steps};

fn inline(name: &str, sink: &str, steps: &str, expect: &str) -> Scenario {
    harness::inline(name, "4m", "", sink, &format!("{steps}\n[expect]\n{expect}"))
}

fn taskmanager_away(verb: &str) -> Scenario {
    let away = format!("docker-compose {verb} taskmanager");
    let steps = steps(&[("1m", &away), ("1m30s", "docker-compose up -d taskmanager")]);
    let exact = "counts = \"exact\"\nduplicates = \"none\"\nloss = \"none\"";
    inline(&format!("taskmanager-{verb}"), "exactly-once", &steps, exact)
}

/// When the first event matching `what` happened, after `from`.
fn first(report: &Report, from: Duration, what: impl Fn(&TraceEvent) -> bool) -> Option<Duration> {
    report.events.iter().find(|e| e.at >= from && what(e)).map(|e| e.at)
}

fn replay(report: &Report) -> String {
    format!("replay: cargo xtask run-scenario {} --seed {}", report.scenario, report.seed)
}

fn lost_taskmanager(e: &TraceEvent) -> bool {
    e.node == "jobmanager" && e.message().contains("TaskManager with id")
}

#[test]
fn a_stopped_taskmanager_is_failed_over_at_once_and_a_killed_one_after_the_heartbeat_timeout() {
    let at = Duration::from_secs(60);
    for seed in [1, 2] {
        let stopped = run(&taskmanager_away("stop"), seed);
        assert_passed(&stopped);
        let detected = first(&stopped, at, lost_taskmanager).expect("the JobManager lost the TaskManager");
        assert!(detected - at < Duration::from_secs(1), "stop: detected after {:?}\n{}", detected - at, replay(&stopped));
        let goodbye = |e: &TraceEvent| matches!(&e.event, Event::TaskManagerDisconnected { name } if name == "taskmanager-1");
        assert!(first(&stopped, at, goodbye).is_some(), "{}", replay(&stopped));
        let aborted = |e: &TraceEvent| e.message().contains("aborted its open transaction");
        assert!(first(&stopped, at, aborted).is_some(), "the sink aborted its open transaction\n{}", replay(&stopped));
        let done = first(&stopped, at, |e| e.node == "taskmanager-1" && e.event == Event::ShutdownCompleted);
        assert!(done.is_some_and(|d| d - at < Duration::from_secs(10)), "it shut down by itself\n{}", replay(&stopped));

        let killed = run(&taskmanager_away("kill"), seed);
        assert_passed(&killed);
        let detected = first(&killed, at, lost_taskmanager).expect("the JobManager lost the TaskManager");
        // The heartbeat timeout (5 s) counts from the last heartbeat, up to 1 s before the kill.
        assert!(detected - at >= Duration::from_secs(4), "kill: detected after {:?}\n{}", detected - at, replay(&killed));
        assert!(first(&killed, at, |e| matches!(e.event, Event::ShutdownStarted { .. })).is_none());
    }
}

#[test]
fn a_jobmanager_that_comes_back_without_its_job_is_named_as_the_cause_of_the_missing_results() {
    for verb in ["kill", "stop"] {
        let away = format!("docker-compose {verb} jobmanager");
        let steps = steps(&[("1m", &away), ("1m30s", "docker-compose up -d jobmanager")]);
        let scenario = inline(&format!("jobmanager-{verb}"), "at-least-once", &steps, "");
        let report = run(&scenario, 1);
        assert!(!report.passed(), "results after 1m are missing\n{}", replay(&report));
        // A cause the trace records: the job's (no-HA) semantics, not an engine bug.
        assert_eq!(report.oracle.verdict(), VerdictClass::Semantic, "{}", replay(&report));
        assert!(matches!(
            report.oracle.violations.as_slice(),
            [Violation::LostWithCause { causes, .. }] if causes.jobs_lost().len() == 1 && causes.jobs_lost()[0].resubmitted.is_none()
        ));
        let violation: String = report.oracle.violations.iter().map(ToString::to_string).collect();
        assert!(
            violation.contains("the JobManager came back at 1:30.000 without the job (no HA in the playground); no job ran after that"),
            "{violation}\n{}",
            replay(&report)
        );
        let story: Vec<String> = flinksim::timeline::timeline(&report.events).into_iter().map(|m| m.what).collect();
        assert!(story.iter().any(|m| m.starts_with("jobmanager started again WITHOUT the job")), "{story:?}");
        // Stopped, it tells its TaskManager at once; killed, the TaskManager finds out by the
        // heartbeat timeout.
        let at = Duration::from_secs(60);
        let told = first(&report, at, |e| matches!(e.event, Event::JobManagerDisconnected { shutting_down: true, .. }));
        let timed_out = first(&report, at, |e| e.message().starts_with("The heartbeat of JobManager"));
        match verb {
            "stop" => {
                assert!(told.is_some_and(|t| t - at < Duration::from_secs(1)), "{}", replay(&report));
                assert!(report.trace.iter().any(|l| l.contains("switched from state RUNNING to SUSPENDED")));
            }
            _ => {
                assert!(told.is_none());
                // 5 s after the last heartbeat, which came up to 1 s before the kill.
                assert!(timed_out.is_some_and(|t| t - at >= Duration::from_secs(4)), "{}", replay(&report));
            }
        }
    }
}

/// A broker that stops answers its held fetches and goes at once (its logs are on disk), and
/// an exactly-once job rides through a short stop as through a short outage.
#[test]
fn a_stopped_broker_shuts_down_at_once_and_the_job_rides_through() {
    let steps = steps(&[("1m", "docker-compose stop kafka"), ("1m3s", "docker-compose up -d kafka")]);
    let exact = "counts = \"exact\"\nduplicates = \"none\"\nloss = \"none\"";
    let report = run(&inline("kafka-stop", "exactly-once", &steps, exact), 1);
    assert_passed(&report);
    let at = Duration::from_secs(60);
    let started = first(&report, at, |e| e.node == "kafka" && matches!(e.event, Event::ShutdownStarted { .. }));
    let done = first(&report, at, |e| e.node == "kafka" && e.event == Event::ShutdownCompleted);
    assert!(started.is_some_and(|s| s - at < Duration::from_millis(1)), "{started:?}\n{}", replay(&report));
    assert!(done.is_some_and(|d| d - at < Duration::from_millis(10)), "{done:?}\n{}", replay(&report));
}
