//! Judges the answers a run's `curl` steps got against `[[expect.response]]`
//! (docs/model/rest.md#assertions): the last answer to each named step, read off the trace's
//! typed exchanges. A check that fails is a [`ResponseViolation`], of class correctness: the
//! engine reported something the scenario says it must not.

use std::fmt;

use flinksim_engine::protocol::rest_api::CurlOutcome;
use flinksim_engine::trace::{Event, TraceEvent};
use serde::Serialize;

use crate::scenario::{ResponseCheck, ResponseExpectation};

/// One check an answer failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResponseViolation {
    /// The step's line.
    pub request: String,
    /// The check.
    pub check: ResponseCheck,
    /// What the run showed instead.
    pub found: Found,
}

/// What a failed check found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Found {
    /// The step never ran, or its answer was still outstanding when the run ended.
    NoExchange,
    /// curl got no answer: its exit code.
    NoAnswer {
        /// curl's exit code.
        exit_code: u8,
    },
    /// An answer with this status (for a status or exit-code check).
    Status(u16),
    /// The value at the field (`None`: the body has no such field).
    Value(Option<serde_json::Value>),
}

impl fmt::Display for ResponseViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the answer to `{}` must have {}, but ", self.request, self.check)?;
        match &self.found {
            Found::NoExchange => f.write_str("the request never completed"),
            Found::NoAnswer { exit_code } => write!(f, "curl got no answer (exit code {exit_code})"),
            Found::Status(status) => write!(f, "it answered with status {status}"),
            Found::Value(None) => f.write_str("the answer has no such field"),
            Found::Value(Some(value)) => write!(f, "it says {value}"),
        }
    }
}

/// A JSON value as a number: a number, or a string holding one (Flink's metric values).
fn as_number(value: &serde_json::Value) -> Option<f64> {
    match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Whether `found` equals `expected`: a string and a number are equal when they read as the
/// same number.
fn equal(found: &serde_json::Value, expected: &serde_json::Value) -> bool {
    found == expected
        || matches!((as_number(found), as_number(expected)), (Some(a), Some(b)) if a == b && (found.is_string() != expected.is_string()))
}

/// Judges the checks of every expectation against the last exchange of its step.
pub fn judge(events: &[TraceEvent], expectations: &[ResponseExpectation]) -> Vec<ResponseViolation> {
    let mut violations = Vec::new();
    for expectation in expectations {
        let request = expectation.request.get_ref().trim();
        let last = events.iter().rev().find_map(|e| match &e.event {
            Event::CurlExchange { line, outcome, .. } if line == request => Some(outcome),
            _ => None,
        });
        for check in &expectation.checks {
            let failed = |found| ResponseViolation { request: request.to_owned(), check: check.clone(), found };
            let Some(outcome) = last else {
                violations.push(failed(Found::NoExchange));
                continue;
            };
            let found = match (check, outcome) {
                (ResponseCheck::ExitCode(code), CurlOutcome::Failed { exit_code, .. }) => {
                    (exit_code != code).then_some(Found::NoAnswer { exit_code: *exit_code })
                }
                (ResponseCheck::ExitCode(code), CurlOutcome::Response(response)) => {
                    (*code != 0).then_some(Found::Status(response.status))
                }
                (_, CurlOutcome::Failed { exit_code, .. }) => Some(Found::NoAnswer { exit_code: *exit_code }),
                (ResponseCheck::Status(status), CurlOutcome::Response(response)) => {
                    (response.status != *status).then_some(Found::Status(response.status))
                }
                (ResponseCheck::Equals { field, value }, CurlOutcome::Response(response)) => {
                    let at = response.body.pointer(field);
                    (!at.is_some_and(|found| equal(found, value))).then(|| Found::Value(at.cloned()))
                }
                (ResponseCheck::Within { field, at_least, at_most }, CurlOutcome::Response(response)) => {
                    let at = response.body.pointer(field);
                    let within = at.and_then(as_number).is_some_and(|x| {
                        at_least.as_ref().and_then(|n| n.as_f64()).is_none_or(|low| x >= low)
                            && at_most.as_ref().and_then(|n| n.as_f64()).is_none_or(|high| x <= high)
                    });
                    (!within).then(|| Found::Value(at.cloned()))
                }
            };
            if let Some(found) = found {
                violations.push(failed(found));
            }
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use flinksim_engine::protocol::rest_api::HttpResponse;

    use super::*;

    fn exchange(line: &str, outcome: CurlOutcome) -> TraceEvent {
        TraceEvent {
            at: Duration::ZERO,
            node: "client".into(),
            event: Event::CurlExchange { line: line.into(), request: None, outcome },
        }
    }

    fn expectation(request: &str, checks: Vec<ResponseCheck>) -> ResponseExpectation {
        ResponseExpectation { request: toml::Spanned::new(0..0, request.to_owned()), checks }
    }

    fn answer(status: u16, body: serde_json::Value) -> CurlOutcome {
        CurlOutcome::Response(HttpResponse { status, body })
    }

    const JOB: &str = "curl localhost:8081/jobs/$job";
    const SIZE: &str = "curl localhost:8081/jobs/$job/metrics?get=lastCheckpointSize";

    #[test]
    fn the_last_answer_is_judged_field_by_field() {
        let events = vec![
            exchange(JOB, answer(200, serde_json::json!({"state": "CREATED"}))),
            exchange(JOB, answer(200, serde_json::json!({"state": "RUNNING"}))),
            exchange(SIZE, answer(200, serde_json::json!([{"id": "lastCheckpointSize", "value": "9378"}]))),
        ];
        let running = ResponseCheck::Equals { field: "/state".into(), value: "RUNNING".into() };
        let size = |low: f64, high: f64| ResponseCheck::Within {
            field: "/0/value".into(),
            at_least: serde_json::Number::from_f64(low),
            at_most: serde_json::Number::from_f64(high),
        };
        let passing = [expectation(JOB, vec![ResponseCheck::Status(200), running]), expectation(SIZE, vec![size(1.0, 1e6)])];
        assert_eq!(judge(&events, &passing), vec![]);
        let failing = [
            expectation(JOB, vec![ResponseCheck::Equals { field: "/state".into(), value: "FINISHED".into() }]),
            expectation(SIZE, vec![size(10_000.0, 20_000.0)]),
            expectation(JOB, vec![ResponseCheck::Equals { field: "/missing".into(), value: 1.into() }]),
        ];
        let found: Vec<Found> = judge(&events, &failing).into_iter().map(|v| v.found).collect();
        assert_eq!(
            found,
            vec![
                Found::Value(Some("RUNNING".into())),
                Found::Value(Some("9378".into())),
                Found::Value(None),
            ]
        );
    }

    #[test]
    fn a_request_without_an_answer_fails_every_check_but_its_exit_code() {
        let timeout = CurlOutcome::Failed { exit_code: 28, message: "curl: (28) …".into() };
        let events = vec![exchange(JOB, timeout)];
        assert_eq!(judge(&events, &[expectation(JOB, vec![ResponseCheck::ExitCode(28)])]), vec![]);
        let violations = judge(&events, &[expectation(JOB, vec![ResponseCheck::Status(200)])]);
        assert_eq!(violations[0].found, Found::NoAnswer { exit_code: 28 });
        assert_eq!(
            violations[0].to_string(),
            "the answer to `curl localhost:8081/jobs/$job` must have status 200, but curl got no answer (exit code 28)"
        );
        let never = judge(&[], &[expectation(JOB, vec![ResponseCheck::ExitCode(0)])]);
        assert_eq!(never[0].found, Found::NoExchange);
    }
}
