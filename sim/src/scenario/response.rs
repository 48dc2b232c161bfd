//! `[[expect.response]]` (docs/scenarios.md#the-file, docs/model/rest.md#assertions): what the
//! last answer to one of the scenario's `curl` steps must say. Read from the file's shape into
//! typed checks; the request is checked against the steps when the scenario loads.

use std::fmt;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// One assertion on the answer to a `curl` step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ResponseExpectationFile")]
pub struct ResponseExpectation {
    /// The step's `run` line, as written: the last answer to it is judged.
    pub request: Spanned<String>,
    /// What the answer must satisfy, every one.
    pub checks: Vec<ResponseCheck>,
}

/// One thing an answer must satisfy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseCheck {
    /// `status = 200`: the HTTP status.
    Status(u16),
    /// `exit_code = 28`: curl's exit code (0 for any answer).
    ExitCode(u8),
    /// `field = "/state"`, `equals = "RUNNING"`: the JSON value at a pointer (RFC 6901). A
    /// string equals a number written as the same text, since Flink's metric values are
    /// strings.
    Equals {
        /// The pointer.
        field: String,
        /// The value.
        value: serde_json::Value,
    },
    /// `field = "/0/value"`, `at_least = 1`, `at_most = 10`: a number (or a string holding one)
    /// within bounds.
    Within {
        /// The pointer.
        field: String,
        /// The lower bound, if any.
        at_least: Option<serde_json::Number>,
        /// The upper bound, if any.
        at_most: Option<serde_json::Number>,
    },
}

impl fmt::Display for ResponseCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseCheck::Status(status) => write!(f, "status {status}"),
            ResponseCheck::ExitCode(code) => write!(f, "curl exit code {code}"),
            ResponseCheck::Equals { field, value } => write!(f, "{field} = {value}"),
            ResponseCheck::Within { field, at_least, at_most } => match (at_least, at_most) {
                (Some(low), Some(high)) => write!(f, "{low} <= {field} <= {high}"),
                (Some(low), None) => write!(f, "{field} >= {low}"),
                (None, Some(high)) => write!(f, "{field} <= {high}"),
                (None, None) => write!(f, "{field} is a number"),
            },
        }
    }
}

/// The table as the file writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponseExpectationFile {
    request: Spanned<String>,
    status: Option<u16>,
    exit_code: Option<u8>,
    field: Option<String>,
    equals: Option<toml::Value>,
    at_least: Option<f64>,
    at_most: Option<f64>,
}

impl TryFrom<ResponseExpectationFile> for ResponseExpectation {
    type Error = String;

    fn try_from(file: ResponseExpectationFile) -> Result<ResponseExpectation, String> {
        let mut checks = Vec::new();
        if let Some(status) = file.status {
            checks.push(ResponseCheck::Status(status));
        }
        if let Some(code) = file.exit_code {
            checks.push(ResponseCheck::ExitCode(code));
        }
        let number = |bound: Option<f64>, key: &str| -> Result<Option<serde_json::Number>, String> {
            bound.map(|b| whole_or_float(b).ok_or_else(|| format!("`{key}` must be a finite number"))).transpose()
        };
        let (at_least, at_most) = (number(file.at_least, "at_least")?, number(file.at_most, "at_most")?);
        let wants_field = file.equals.is_some() || at_least.is_some() || at_most.is_some();
        match (file.field, wants_field) {
            (Some(field), true) => {
                if !field.is_empty() && !field.starts_with('/') {
                    return Err(format!("bad field `{field}`: expected a JSON pointer such as \"/state\" or \"/0/value\""));
                }
                if let Some(equals) = file.equals {
                    if at_least.is_some() || at_most.is_some() {
                        return Err("`equals` and `at_least`/`at_most` exclude each other".into());
                    }
                    let value = match equals {
                        toml::Value::String(s) => serde_json::Value::String(s),
                        toml::Value::Integer(i) => serde_json::Value::from(i),
                        toml::Value::Boolean(b) => serde_json::Value::Bool(b),
                        toml::Value::Float(x) => {
                            whole_or_float(x).map(serde_json::Value::Number).ok_or("`equals` must be a finite number")?
                        }
                        other => return Err(format!("`equals` must be a string, number or boolean, not {}", other.type_str())),
                    };
                    checks.push(ResponseCheck::Equals { field, value });
                } else {
                    if let (Some(low), Some(high)) = (file.at_least, file.at_most)
                        && low > high
                    {
                        return Err(format!("`at_least` ({low}) is above `at_most` ({high})"));
                    }
                    checks.push(ResponseCheck::Within { field, at_least, at_most });
                }
            }
            (Some(_), false) => return Err("`field` needs `equals`, `at_least` or `at_most`".into()),
            (None, true) => return Err("`equals`, `at_least` and `at_most` need a `field` (a JSON pointer)".into()),
            (None, false) => {}
        }
        if checks.is_empty() {
            return Err("nothing to check: give `status`, `exit_code`, or a `field` with `equals`, `at_least` or `at_most`".into());
        }
        Ok(ResponseExpectation { request: file.request, checks })
    }
}

/// A bound as JSON: a whole number stays whole (`1`, not `1.0`), so that it reads back the same.
fn whole_or_float(x: f64) -> Option<serde_json::Number> {
    if x.fract() == 0.0 && x.abs() < 9e15 {
        Some(serde_json::Number::from(x as i64))
    } else {
        serde_json::Number::from_f64(x)
    }
}

/// Writes the expectation back as the file does (for the banner).
pub(crate) fn to_toml(expectation: &ResponseExpectation, string: impl Fn(&str) -> String) -> String {
    let mut out = format!("\n[[expect.response]]\nrequest = {}\n", string(expectation.request.get_ref()));
    for check in &expectation.checks {
        match check {
            ResponseCheck::Status(status) => out += &format!("status = {status}\n"),
            ResponseCheck::ExitCode(code) => out += &format!("exit_code = {code}\n"),
            ResponseCheck::Equals { field, value } => {
                out += &format!("field = {}\n", string(field));
                let value = match value {
                    serde_json::Value::String(s) => string(s),
                    other => other.to_string(),
                };
                out += &format!("equals = {value}\n");
            }
            ResponseCheck::Within { field, at_least, at_most } => {
                out += &format!("field = {}\n", string(field));
                if let Some(low) = at_least {
                    out += &format!("at_least = {low}\n");
                }
                if let Some(high) = at_most {
                    out += &format!("at_most = {high}\n");
                }
            }
        }
    }
    out
}
