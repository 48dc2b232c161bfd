//! The playground undisturbed (issue 2's acceptance): Click Event Count at p=2 on one
//! TaskManager with two slots, ten simulated minutes.

use flinksim::oracle::{EVENTS_PER_WINDOW_AND_PAGE, RowStatus};

use crate::harness::{assert_passed, run, scenario};

#[test]
fn ten_minutes_at_p2_count_exactly_1000_per_window_and_page_once() {
    let scenario = scenario("steady-state");
    assert_eq!(scenario.duration.as_secs(), 600);
    assert_eq!((scenario.cluster.taskmanagers, scenario.cluster.slots), (1, 2));
    assert_eq!(scenario.job.submission.parallelism, 2);
    let report = run(&scenario, 8141);
    assert_passed(&report);
    let oracle = &report.oracle;
    // 600 s of events at 400/s; the windows ending 2 s before the last event are all expected.
    assert!(oracle.input_events >= 239_000, "only {} events", oracle.input_events);
    assert!(oracle.rows.len() >= 39 * 6, "only {} rows", oracle.rows.len());
    for row in &oracle.rows {
        assert_eq!(row.status, RowStatus::Ok, "{row:?} (seed 8141)");
        assert_eq!(row.counts, vec![EVENTS_PER_WINDOW_AND_PAGE], "{row:?} (seed 8141)");
    }
    assert!(oracle.gaps.is_empty() && oracle.short_at_source.is_empty());
}

#[test]
fn the_trace_shows_registration_submission_deployment_and_results() {
    let report = run(&crate::harness::for_minutes(&scenario("steady-state"), 1), 3);
    let has = |needle: &str| report.trace.iter().any(|line| line.contains(needle));
    assert!(has("Registering TaskManager with ResourceID"));
    assert!(has("Received JobGraph submission 'Click Event Count'"));
    assert!(has("switched from state CREATED to RUNNING."));
    assert!(has("ClickEvent Counter (2/2)") && has("switched from SCHEDULED to DEPLOYING."));
    assert!(has("switched from INITIALIZING to RUNNING."));
    assert!(has(r#"wrote {"windowStart":"01-01-1970 12:00:00:000","windowEnd":"01-01-1970 12:00:15:000","page":"/help","count":1000}"#));
    assert!(!has("FAILED") && !has("RESTARTING"), "a fault-free run restarted:\n{}", report.trace.join("\n"));
}

/// Under seed 1, an hour once failed the oracle: the generator kept producing while the oracle
/// read `input` back, and the last window fired from events appended after the oracle had read
/// their partition (1000 in `output`, 999 in its recount). The input now stops at the end.
#[test]
fn the_oracle_reads_back_an_input_that_no_longer_grows() {
    let report = run(&crate::harness::for_minutes(&scenario("steady-state"), 60), 1);
    assert_passed(&report);
    let stopped = report.trace.iter().position(|line| line.contains("duration reached: generator stopped"));
    let stopped = stopped.expect("the run's end is traced (seed 1)");
    let produced_after = report.trace[stopped..].iter().any(|line| line.contains("clickevent-generator"));
    assert!(!produced_after, "the generator ran on after the end (seed 1)");
}
