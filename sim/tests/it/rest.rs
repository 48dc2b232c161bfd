//! The REST API on port 8081 through `curl` steps: every row's JSON for a fixed seed (insta
//! snapshots), a request lost to a partition, and `[[expect.response]]` failing as a typed
//! violation.

use flinksim::oracle::Violation;
use flinksim::responses::Found;
use flinksim::verdict::VerdictClass;
use flinksim_engine::protocol::rest_api::CurlOutcome;
use flinksim_engine::trace::Event;

use crate::harness::{assert_passed, inline, replay, run, scenario, scenarios_dir, steps};

/// What each `curl` of scenarios/rest-api.toml asks, in step order, named for its snapshot.
const ROWS: [&str; 15] = [
    "overview",
    "jobs",
    "job-details",
    "job-metric-ids",
    "job-metrics",
    "vertex-metrics",
    "vertex-backpressure",
    "checkpoints",
    "stop",
    "savepoint-status",
    "jar-upload",
    "jar-run",
    "jobs-after-restore",
    "unknown-job-404",
    "malformed-body-400",
];

#[test]
fn every_rest_row_answers_with_the_playgrounds_json_seed_42() {
    let scenario = scenario("rest-api");
    let report = run(&scenario, 42);
    assert_passed(&report);
    let exchanges: Vec<_> = report
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Event::CurlExchange { line, request, outcome } => Some((line, request, outcome)),
            _ => None,
        })
        .collect();
    assert_eq!(exchanges.len(), ROWS.len(), "{}", replay(&scenario, 42));
    for ((line, request, outcome), row) in exchanges.into_iter().zip(ROWS) {
        let CurlOutcome::Response(response) = outcome else { panic!("{line}: no answer: {outcome}") };
        let request = request.as_ref().expect("sent");
        let text = format!(
            "{line}\n{} {}\nstatus {}\n{}",
            request.method,
            request.path,
            response.status,
            serde_json::to_string_pretty(&response.body).unwrap()
        );
        insta::with_settings!({
            snapshot_path => scenarios_dir().join("../snapshots/rest"),
            prepend_module_to_snapshot => false,
            omit_expression => true,
            description => format!("scenarios/rest-api.toml, seed 42: {line}"),
        }, {
            insta::assert_snapshot!(row, text);
        });
    }
}

#[test]
fn a_request_cut_off_by_a_partition_times_out_as_curl_does_and_a_retried_one_gets_through() {
    let report = run(&scenario("rest-request-partitioned"), 42);
    assert_passed(&report);
    let outcomes: Vec<&CurlOutcome> = report
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Event::CurlExchange { outcome, .. } => Some(outcome),
            _ => None,
        })
        .collect();
    let [timed_out, retried] = outcomes.as_slice() else { panic!("{outcomes:?}") };
    assert_eq!(
        **timed_out,
        CurlOutcome::Failed {
            exit_code: 28,
            message: "curl: (28) Operation timed out after 5000 milliseconds with 0 bytes received".into()
        }
    );
    assert!(matches!(retried, CurlOutcome::Response(r) if r.status == 200), "{retried:?}");
    let warnings = report.trace.iter().filter(|l| l.contains("Will retry in")).count();
    assert_eq!(warnings, 2, "two attempts lost before the heal at 1m40s");
}

#[test]
fn a_response_that_breaks_an_assertion_is_a_correctness_violation_naming_what_it_found() {
    let curl = "curl localhost:8081/jobs/$job/metrics?get=numRestarts";
    let scenario = inline(
        "rest-assertion",
        "1m",
        "",
        "at-least-once",
        &format!(
            "{}\n[[expect.response]]\nrequest = \"{curl}\"\nfield = \"/0/value\"\nat_least = 1\n",
            steps(&[("20s", curl)])
        ),
    );
    let report = run(&scenario, 42);
    let responses: Vec<_> = report
        .oracle
        .violations
        .iter()
        .filter_map(|v| match v {
            Violation::Response(r) => Some((r.clone(), v.class())),
            _ => None,
        })
        .collect();
    let [(violation, class)] = responses.as_slice() else { panic!("{:?}", report.oracle.violations) };
    assert_eq!(*class, VerdictClass::Correctness);
    assert_eq!(violation.found, Found::Value(Some("0".into())));
    assert_eq!(
        violation.to_string(),
        format!("the answer to `{curl}` must have /0/value >= 1, but it says \"0\"")
    );
}
