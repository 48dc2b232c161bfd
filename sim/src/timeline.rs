//! The run's story in a few lines, read off the trace: steps, failure detection, the restart
//! cycle, re-registration, the checkpoint restored, and the catch-up (spec §11, issue 3).

use std::collections::BTreeMap;

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moment {
    /// Simulated time, in ms since the start.
    pub at_ms: u64,
    /// What happened.
    pub what: String,
}

/// A parsed trace line: time, node, message.
fn parse(line: &str) -> Option<(u64, &str, &str)> {
    let line = line.trim_start();
    let (time, rest) = line.split_once(' ')?;
    let (secs, micros) = time.split_once('.')?;
    let at_ms = secs.parse::<u64>().ok()? * 1000 + micros.parse::<u64>().ok()? / 1000;
    let rest = rest.trim_start();
    let (node, message) = rest.split_once(' ')?;
    Some((at_ms, node, message.trim_start()))
}

/// The timeline of a run, from its trace lines.
pub fn timeline(trace: &[String]) -> Vec<Moment> {
    let mut moments = Vec::new();
    let mut push = |at_ms, what: String| moments.push(Moment { at_ms, what });
    let mut last_kill: Option<u64> = None;
    let mut registered_once = BTreeMap::new();
    let mut restarts = 0u32;
    let mut no_resource = 0u32;
    let mut cycle_start: Option<u64> = None;
    let mut scheduled_reported = false;
    let mut restoring: Option<(u64, String)> = None;
    let mut recovered_at: Option<u64> = None;
    for (at_ms, node, message) in trace.iter().filter_map(|l| parse(l)) {
        match node {
            "sim" if message.starts_with("step: ") => {
                if message.contains(" kill ") || message.contains("partition") {
                    last_kill = Some(at_ms);
                }
                push(at_ms, message.to_owned());
            }
            "jobmanager" => {
                if message.starts_with("Heartbeat of TaskManager") {
                    let after = last_kill.map(|k| format!(" ({:.1} s after the fault)", (at_ms - k) as f64 / 1000.0));
                    push(at_ms, format!("detected: {message}{}", after.unwrap_or_default()));
                } else if message.contains("switched from state RUNNING to RESTARTING") {
                    restarts += 1;
                    if cycle_start.is_none() {
                        cycle_start = Some(at_ms);
                        scheduled_reported = false;
                        recovered_at = None;
                        push(at_ms, "job RUNNING → RESTARTING (fixed-delay restart strategy, 1 s)".into());
                    }
                } else if message.contains("switched from state RUNNING to FAILING") {
                    push(at_ms, "job RUNNING → FAILING → FAILED (no restart strategy without checkpointing)".into());
                } else if message.contains("NoResourceAvailableException") {
                    no_resource += 1;
                } else if message.contains("switched from CREATED to SCHEDULED.") && cycle_start.is_some() && !scheduled_reported {
                    scheduled_reported = true;
                    push(at_ms, "tasks SCHEDULED, waiting for slots (the job shows RUNNING)".into());
                } else if let Some(rest) = message.strip_prefix("Registering TaskManager with ResourceID ") {
                    let name = rest.split(" (").nth(1).unwrap_or("").trim_end_matches(") at ResourceManager");
                    let count = registered_once.entry(name.to_owned()).or_insert(0);
                    *count += 1;
                    if *count > 1 {
                        push(at_ms, format!("re-registration: {name}"));
                    }
                } else if message.starts_with("Restoring job ") {
                    let checkpoint = message.split("from Checkpoint ").nth(1).and_then(|r| r.split(' ').next());
                    restoring = checkpoint.map(|k| (at_ms, k.to_owned()));
                } else if message.contains("switched from INITIALIZING to RUNNING.") && cycle_start.is_some() {
                    if recovered_at.is_none() && message.starts_with("ClickEvent Source") {
                        recovered_at = Some(at_ms);
                        if restarts > 1 {
                            push(cycle_start.unwrap(), format!(
                                "restart cycle: {restarts} restarts, {no_resource} of them NoResourceAvailableException"
                            ));
                        }
                        if let Some((_, checkpoint)) = &restoring {
                            push(at_ms, format!("restore from checkpoint {checkpoint}: tasks RUNNING again"));
                        }
                        cycle_start = None;
                        restarts = 0;
                        no_resource = 0;
                    }
                } else if message.starts_with("Received JobGraph submission") && is_resubmission(at_ms) {
                    push(at_ms, message.to_owned());
                }
            }
            _ => {}
        }
    }
    // Catch-up: results per minute after the recovery, against the steady 24 per minute.
    if let Some(recovered) = recovered_at_any(trace) {
        let mut per_minute: BTreeMap<u64, u32> = BTreeMap::new();
        for (at_ms, _, message) in trace.iter().filter_map(|l| parse(l)) {
            if at_ms >= recovered && message.contains(" wrote {") {
                *per_minute.entry((at_ms - recovered) / 60_000).or_default() += 1;
            }
        }
        if let Some((_, first)) = per_minute.iter().next() {
            let after: Vec<String> = per_minute.values().skip(1).take(3).map(u32::to_string).collect();
            moments.push(Moment {
                at_ms: recovered,
                what: format!(
                    "catch-up: {first} results in the first minute after recovery (steady state: 24 per minute); then {}",
                    if after.is_empty() { "-".into() } else { after.join(", ") }
                ),
            });
        }
    }
    moments.sort_by_key(|m| m.at_ms);
    moments
}

/// A submission after the first minute is a resubmission worth showing.
fn is_resubmission(at_ms: u64) -> bool {
    at_ms > 60_000
}

/// When the sources ran again after the last failure, if there was one.
fn recovered_at_any(trace: &[String]) -> Option<u64> {
    let mut failed = false;
    let mut recovered = None;
    for (at_ms, node, message) in trace.iter().filter_map(|l| parse(l)) {
        if node != "jobmanager" {
            continue;
        }
        if message.contains("to RESTARTING") || message.contains("to FAILING") {
            failed = true;
        } else if failed && message.starts_with("ClickEvent Source") && message.contains("INITIALIZING to RUNNING.") {
            recovered = Some(at_ms);
            failed = false;
        }
    }
    recovered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_lines_parse_into_time_node_and_message() {
        let line = "   125.002002  jobmanager             Heartbeat of TaskManager with id x timed out.";
        assert_eq!(parse(line), Some((125_002, "jobmanager", "Heartbeat of TaskManager with id x timed out.")));
    }

    #[test]
    fn a_kill_and_recovery_read_as_a_story() {
        let trace: Vec<String> = [
            "   120.000000  sim                    step: docker-compose kill taskmanager",
            "   125.002002  jobmanager             Heartbeat of TaskManager with id x timed out. (taskmanager-1)",
            "   125.002002  jobmanager             Job Click Event Count (j) switched from state RUNNING to RESTARTING.",
            "   126.002002  jobmanager             ClickEvent Source (1/2) (a) switched from CREATED to SCHEDULED.",
            "   126.002002  jobmanager             Job Click Event Count (j) failed: NoResourceAvailableException: Could not acquire",
            "   126.002002  jobmanager             Job Click Event Count (j) switched from state RUNNING to RESTARTING.",
            "   180.000000  sim                    step: docker-compose up -d taskmanager",
            "     0.010000  jobmanager             Registering TaskManager with ResourceID r (taskmanager-1) at ResourceManager",
            "   180.012477  jobmanager             Registering TaskManager with ResourceID s (taskmanager-1) at ResourceManager",
            "   181.002013  jobmanager             Restoring job j from Checkpoint 119 @ 119175 for j located at file:/x.",
            "   181.050000  jobmanager             ClickEvent Source (1/2) (b) switched from INITIALIZING to RUNNING.",
            "   181.241298  taskmanager-1          ClickEventStatistics Sink (1/2) wrote {\"count\":1000}",
        ]
        .map(String::from)
        .to_vec();
        let story: Vec<String> = timeline(&trace).into_iter().map(|m| m.what).collect();
        assert_eq!(story[0], "docker-compose kill taskmanager".replace("docker", "step: docker"));
        assert!(story[1].starts_with("detected: Heartbeat") && story[1].ends_with("(5.0 s after the fault)"));
        assert!(story.iter().any(|s| s == "restart cycle: 2 restarts, 1 of them NoResourceAvailableException"));
        assert!(story.iter().any(|s| s == "re-registration: taskmanager-1"));
        assert!(story.iter().any(|s| s == "restore from checkpoint 119: tasks RUNNING again"));
        assert!(story.iter().any(|s| s.starts_with("catch-up: 1 results")));
    }
}
