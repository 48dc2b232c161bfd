//! `curl` as the playground's user types it against the REST API (docs/model/rest.md#curl):
//! the command line read into a request, the variables a later command may use (`$job`,
//! `$trigger`, `$savepoint`, `$jar`), and what curl prints and exits with when no answer comes.
//! No I/O here: the client node sends the request.

use std::time::Duration;


use crate::protocol::rest_api::{HttpBody, HttpMethod, HttpRequest, HttpResponse, REST_PORT};

/// curl's default connect timeout: without `--max-time`, a request that gets no answer fails
/// after this long (the simulated network has no separate connect phase).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(300);
/// curl's first delay between retries; it doubles after each.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);
/// The exit code of a timeout (`CURLE_OPERATION_TIMEDOUT`).
pub const EXIT_TIMEOUT: u8 = 28;
/// The exit code of a URL curl cannot use (`CURLE_URL_MALFORMAT`): here, a variable that
/// names nothing yet.
pub const EXIT_URL_MALFORMAT: u8 = 3;

/// The variables a command may use, each set by an earlier answer.
pub const VARIABLES: [&str; 4] = ["$job", "$trigger", "$savepoint", "$jar"];

/// A `curl` command line, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurlCommand {
    /// The line as typed.
    pub line: String,
    /// `-X`, or POST when a body is given, else GET.
    pub method: HttpMethod,
    /// The path and query after `localhost:8081`, variables unexpanded.
    pub path: String,
    /// `-d` / `--data` or `-F jarfile=@…`, variables unexpanded.
    pub body: HttpBody,
    /// `-m` / `--max-time`: the longest one attempt may take.
    pub max_time: Option<Duration>,
    /// `--retry N`: attempts after the first one that failed transiently.
    pub retries: u32,
}

/// Why a curl line cannot be read: the offending word and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CurlError {
    /// An option needs a value and has none.
    #[error("option `{0}` needs a value")]
    MissingValue(String),
    /// An option flinksim's curl does not know.
    #[error("unknown curl option `{0}`: expected -X, -d, -F, -H, -s, -m, --retry")]
    UnknownOption(String),
    /// `-X` with a method the REST API does not use.
    #[error("unknown method `{0}`: expected GET, POST or PATCH")]
    UnknownMethod(String),
    /// No URL.
    #[error("no URL given: write e.g. `curl localhost:8081/jobs`")]
    MissingUrl,
    /// Two URLs.
    #[error("a second URL `{0}`: one request per step")]
    SecondUrl(String),
    /// A URL that is not the JobManager's REST endpoint.
    #[error("`{0}` is not the REST API: expected localhost:8081/… (or jobmanager:8081/…)")]
    UnknownHost(String),
    /// A number that is not one.
    #[error("bad number `{0}` for `{1}`")]
    BadNumber(String, String),
    /// A `-F` form field other than the jar file.
    #[error("bad form field `{0}`: expected jarfile=@<path>")]
    BadForm(String),
    /// A quote left open.
    #[error("unclosed quote")]
    UnclosedQuote,
}

/// One word of a line with its byte range, quotes removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    /// Byte range in the line.
    pub span: std::ops::Range<usize>,
    /// The text.
    pub text: String,
}

/// Splits a line into words as a shell does for the quoting the playground uses (`'…'`,
/// `"…"`), keeping each word's byte range.
pub fn shell_words(line: &str) -> Result<Vec<Word>, CurlError> {
    let mut words = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut text = String::new();
        let mut end = start;
        while let Some(&(i, c)) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            end = i + c.len_utf8();
            if c == '\'' || c == '"' {
                let mut closed = false;
                for (j, inner) in chars.by_ref() {
                    end = j + inner.len_utf8();
                    if inner == c {
                        closed = true;
                        break;
                    }
                    text.push(inner);
                }
                if !closed {
                    return Err(CurlError::UnclosedQuote);
                }
            } else {
                text.push(c);
            }
        }
        words.push(Word { span: start..end, text });
    }
    Ok(words)
}

impl CurlCommand {
    /// Reads a `curl …` line; an error comes with the word it is about (`None`: the end).
    pub fn parse(line: &str) -> Result<CurlCommand, (Option<Word>, CurlError)> {
        let words = shell_words(line).map_err(|e| (None, e))?;
        let mut words = words.into_iter();
        words.next(); // `curl`
        let mut method = None;
        let mut body = HttpBody::Empty;
        let mut max_time = None;
        let mut retries = 0;
        let mut url: Option<Word> = None;
        while let Some(word) = words.next() {
            let value = |words: &mut std::vec::IntoIter<Word>| {
                words.next().ok_or_else(|| (Some(word.clone()), CurlError::MissingValue(word.text.clone())))
            };
            match word.text.as_str() {
                "-X" | "--request" => {
                    let m = value(&mut words)?;
                    method = Some(match m.text.as_str() {
                        "GET" => HttpMethod::Get,
                        "POST" => HttpMethod::Post,
                        "PATCH" => HttpMethod::Patch,
                        other => return Err((Some(m.clone()), CurlError::UnknownMethod(other.into()))),
                    });
                }
                "-d" | "--data" | "--data-raw" => body = HttpBody::Json(value(&mut words)?.text),
                "-F" | "--form" => {
                    let field = value(&mut words)?;
                    match field.text.strip_prefix("jarfile=@") {
                        Some(path) if !path.is_empty() => body = HttpBody::JarFile(path.to_owned()),
                        _ => return Err((Some(field.clone()), CurlError::BadForm(field.text.clone()))),
                    }
                }
                // Headers change nothing the model answers (`-H "Expect:"` of the docs' upload).
                "-H" | "--header" => {
                    value(&mut words)?;
                }
                "-s" | "--silent" | "-S" | "--show-error" | "-sS" => {}
                "-m" | "--max-time" => {
                    let m = value(&mut words)?;
                    let seconds: f64 = m
                        .text
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s > 0.0)
                        .ok_or_else(|| (Some(m.clone()), CurlError::BadNumber(m.text.clone(), word.text.clone())))?;
                    max_time = Some(Duration::from_secs_f64(seconds));
                }
                "--retry" => {
                    let n = value(&mut words)?;
                    retries = n
                        .text
                        .parse()
                        .map_err(|_| (Some(n.clone()), CurlError::BadNumber(n.text.clone(), word.text.clone())))?;
                }
                option if option.starts_with('-') => {
                    return Err((Some(word.clone()), CurlError::UnknownOption(option.into())));
                }
                _ => {
                    if url.is_some() {
                        return Err((Some(word.clone()), CurlError::SecondUrl(word.text.clone())));
                    }
                    url = Some(word);
                }
            }
        }
        let url = url.ok_or((None, CurlError::MissingUrl))?;
        let rest = url.text.strip_prefix("http://").unwrap_or(&url.text);
        let path = ["localhost:8081", "jobmanager:8081", "127.0.0.1:8081"]
            .iter()
            .find_map(|host| rest.strip_prefix(host))
            .filter(|path| path.is_empty() || path.starts_with('/'))
            .ok_or_else(|| (Some(url.clone()), CurlError::UnknownHost(url.text.clone())))?;
        let has_body = body != HttpBody::Empty;
        Ok(CurlCommand {
            line: line.trim().to_owned(),
            method: method.unwrap_or(if has_body { HttpMethod::Post } else { HttpMethod::Get }),
            path: if path.is_empty() { "/".into() } else { path.to_owned() },
            body,
            max_time,
            retries,
        })
    }

    /// The request with the variables expanded by `lookup`, or the first variable that names
    /// nothing yet.
    pub fn request(&self, lookup: impl Fn(&str) -> Option<String>) -> Result<HttpRequest, &'static str> {
        let expand = |text: &str| -> Result<String, &'static str> {
            let mut text = text.to_owned();
            for variable in VARIABLES {
                if text.contains(variable) {
                    let value = lookup(variable).ok_or(variable)?;
                    text = text.replace(variable, &value);
                }
            }
            Ok(text)
        };
        let body = match &self.body {
            HttpBody::Empty => HttpBody::Empty,
            HttpBody::Json(text) => HttpBody::Json(expand(text)?),
            HttpBody::JarFile(path) => HttpBody::JarFile(expand(path)?),
        };
        Ok(HttpRequest { method: self.method, path: expand(&self.path)?, body })
    }

    /// How long one attempt waits for its answer.
    pub fn attempt_timeout(&self) -> Duration {
        self.max_time.unwrap_or(CONNECT_TIMEOUT)
    }

    /// What curl prints when an attempt got no answer in time.
    pub fn timeout_message(&self) -> String {
        let ms = self.attempt_timeout().as_millis();
        match self.max_time {
            Some(_) => format!("curl: ({EXIT_TIMEOUT}) Operation timed out after {ms} milliseconds with 0 bytes received"),
            None => format!(
                "curl: ({EXIT_TIMEOUT}) Failed to connect to localhost port {REST_PORT} after {ms} ms: Timeout was reached"
            ),
        }
    }
}

/// Whether curl's `--retry` retries an answer with this status (its transient ones).
pub fn retried_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// The variables an answer sets: `$job` from a run, `$trigger` from a stop, `$savepoint` from a
/// completed savepoint, `$jar` from an upload.
pub fn variables_set_by(response: &HttpResponse) -> Vec<(&'static str, String)> {
    let body = &response.body;
    let text = |pointer: &str| body.pointer(pointer).and_then(|v| v.as_str()).map(str::to_owned);
    let mut set = Vec::new();
    if let Some(job) = text("/jobid") {
        set.push(("$job", job));
    }
    if let Some(trigger) = text("/request-id") {
        set.push(("$trigger", trigger));
    }
    if let Some(location) = text("/operation/location") {
        set.push(("$savepoint", location));
    }
    if let Some(filename) = text("/filename") {
        set.push(("$jar", filename.rsplit('/').next().unwrap_or_default().to_owned()));
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_playgrounds_lines_read_as_requests() {
        let get = CurlCommand::parse("curl localhost:8081/jobs").unwrap();
        assert_eq!((get.method, get.path.as_str(), &get.body), (HttpMethod::Get, "/jobs", &HttpBody::Empty));
        let stop = CurlCommand::parse(r#"curl -X POST localhost:8081/jobs/$job/stop -d '{"drain": false}'"#).unwrap();
        assert_eq!(stop.method, HttpMethod::Post);
        assert_eq!(stop.body, HttpBody::Json(r#"{"drain": false}"#.into()));
        let upload =
            CurlCommand::parse(r#"curl -X POST -H "Expect:" -F "jarfile=@/opt/ClickCountJob.jar" http://localhost:8081/jars/upload"#)
                .unwrap();
        assert_eq!(upload.body, HttpBody::JarFile("/opt/ClickCountJob.jar".into()));
        let retried = CurlCommand::parse("curl -s -m 5 --retry 3 localhost:8081/overview").unwrap();
        assert_eq!((retried.max_time, retried.retries), (Some(Duration::from_secs(5)), 3));
        let request = stop.request(|v| (v == "$job").then(|| "ab".to_owned())).unwrap();
        assert_eq!(request.path, "/jobs/ab/stop");
        assert_eq!(stop.request(|_| None), Err("$job"));
    }

    #[test]
    fn malformed_lines_name_the_word() {
        let error = |line: &str| CurlCommand::parse(line).unwrap_err();
        let (word, kind) = error("curl -X DELETE localhost:8081/jobs");
        assert_eq!((word.unwrap().span, kind), (8..14, CurlError::UnknownMethod("DELETE".into())));
        let (word, kind) = error("curl localhost:9092/jobs");
        assert_eq!((word.unwrap().span, kind), (5..24, CurlError::UnknownHost("localhost:9092/jobs".into())));
        assert_eq!(error("curl -X POST").1, CurlError::MissingUrl);
        assert_eq!(error("curl -X").1, CurlError::MissingValue("-X".into()));
        assert_eq!(error("curl --insecure localhost:8081/jobs").1, CurlError::UnknownOption("--insecure".into()));
        assert_eq!(error("curl -d '{ localhost:8081/jobs").1, CurlError::UnclosedQuote);
        assert_eq!(error("curl -m soon localhost:8081/jobs").1, CurlError::BadNumber("soon".into(), "-m".into()));
    }

    #[test]
    fn timeouts_print_as_curl_prints_them() {
        let plain = CurlCommand::parse("curl localhost:8081/jobs").unwrap();
        assert_eq!(
            plain.timeout_message(),
            "curl: (28) Failed to connect to localhost port 8081 after 300000 ms: Timeout was reached"
        );
        let bounded = CurlCommand::parse("curl -m 2 localhost:8081/jobs").unwrap();
        assert_eq!(bounded.timeout_message(), "curl: (28) Operation timed out after 2000 milliseconds with 0 bytes received");
    }

    #[test]
    fn answers_set_the_variables_later_lines_use() {
        let response = |body| HttpResponse { status: 200, body };
        assert_eq!(variables_set_by(&response(serde_json::json!({"jobid": "j1"}))), vec![("$job", "j1".to_owned())]);
        assert_eq!(variables_set_by(&response(serde_json::json!({"request-id": "t"}))), vec![("$trigger", "t".to_owned())]);
        let done = serde_json::json!({"status": {"id": "COMPLETED"}, "operation": {"location": "file:/sp"}});
        assert_eq!(variables_set_by(&response(done)), vec![("$savepoint", "file:/sp".to_owned())]);
        let upload = serde_json::json!({"filename": "/tmp/flink-web-x/flink-web-upload/u_ClickCountJob.jar", "status": "success"});
        assert_eq!(variables_set_by(&response(upload)), vec![("$jar", "u_ClickCountJob.jar".to_owned())]);
    }
}
