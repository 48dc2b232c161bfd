//! The product's core promise: a run is a pure function of (build, scenario, seed).

use flinksim::Report;

use crate::harness::{for_minutes, run, run_seeds, scenario, window_table};

#[test]
fn the_same_seed_twice_gives_a_byte_identical_trace() {
    let scenario = for_minutes(&scenario("steady-state"), 3);
    let first = run(&scenario, 8141);
    let second = run(&scenario, 8141);
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.trace, second.trace);
    assert_eq!(window_table(&first.oracle.rows), window_table(&second.oracle.rows));
}

/// Different seeds must reorder the run itself, not only rename it: ids (job, attempts,
/// ResourceIDs, the JobManager's session) are drawn from the seed too, so traces that differ only
/// in them would prove nothing. The interleavings compared are the trace lines (time, node,
/// event) with every id masked, less the banner line that names the seed.
#[test]
fn different_seeds_interleave_differently_yet_count_the_same() {
    let scenario = for_minutes(&scenario("steady-state"), 3);
    let seeds = [1, 2, 3, 4, 5, 6];
    let reports = run_seeds(&scenario, &seeds);
    let expected = window_table(&reports[0].oracle.rows);
    for report in &reports {
        crate::harness::assert_passed(report);
        assert_eq!(window_table(&report.oracle.rows), expected, "seed {}", report.seed);
    }
    let interleavings: Vec<(u64, u64)> =
        reports.iter().map(|r| (r.seed, flinksim::trace::hash(&interleaving(r)))).collect();
    let replay = |seed: u64| {
        format!("replay: cargo xtask run-scenario {} --seed {seed} --duration 3m --trace", scenario.name)
    };
    for (i, (a, hash_a)) in interleavings.iter().enumerate() {
        for (b, hash_b) in &interleavings[i + 1..] {
            let alike = format!("seeds {a} and {b} interleave alike (ids masked)");
            assert_ne!(hash_a, hash_b, "{alike}\n{}\n{}", replay(*a), replay(*b));
        }
    }
}

/// The trace without its banner (`scenario <name> seed <seed>`), every id (32 lowercase hex
/// characters, docs/model/cluster.md#ids) replaced by `<id>`.
fn interleaving(report: &Report) -> Vec<String> {
    let banner = format!("scenario {} seed {}", report.scenario, report.seed);
    report.trace.iter().filter(|line| !line.ends_with(&banner)).map(|line| mask_ids(line)).collect()
}

/// `line` with each run of exactly 32 lowercase hex characters replaced by `<id>`.
fn mask_ids(line: &str) -> String {
    let is_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    let mut masked = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find(is_hex) {
        let run = rest[start..].find(|c: char| !is_hex(c)).map_or(rest.len(), |n| start + n);
        masked.push_str(&rest[..start]);
        masked.push_str(if run - start == 32 { "<id>" } else { &rest[start..run] });
        rest = &rest[run..];
    }
    masked.push_str(rest);
    masked
}

#[test]
fn ids_are_masked_and_nothing_else() {
    assert_eq!(
        mask_ids("  1.004087  jobmanager  Job Click Event Count (4e201435646d38b302c948a5483ed598) switched"),
        "  1.004087  jobmanager  Job Click Event Count (<id>) switched"
    );
    // A run of hex characters of another length is not an id.
    assert_eq!(mask_ids("deadbeef checkpoint 12 @ 1489"), "deadbeef checkpoint 12 @ 1489");
}

/// Progress is read off the simulated clock by a task the run already has: the trace is the same
/// with or without someone watching.
#[test]
fn run_with_progress_reports_simulated_time_and_keeps_the_trace() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    let scenario = scenario("steady-state").with_duration(Duration::from_secs(25));
    let progress = Arc::new(AtomicU64::new(0));
    let watched = flinksim::run_with_progress(&scenario, 8141, progress.clone()).unwrap();
    let reached_ms = progress.load(Ordering::Relaxed);
    assert!((20_000..=30_000).contains(&reached_ms), "progress {reached_ms} ms");
    assert_eq!(run(&scenario, 8141).trace, watched.trace);
}
