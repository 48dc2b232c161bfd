//! House rules that keep runs deterministic, checked in code (rust-analyzer's tidy): engine/
//! and sim/ must not reach for wall-clock time, OS threads, unseeded randomness, hash-ordered
//! iteration, or tokio primitives that draw from tokio's process-global RNG.

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

#[test]
fn engine_and_sim_keep_the_determinism_rules() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    sources(&root.join("engine/src"), &mut files);
    sources(&root.join("sim/src"), &mut files);
    let mut violations = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        let in_tests = text.find("#[cfg(test)]").unwrap_or(text.len());
        let mut offset = 0;
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let test_code = offset >= in_tests;
            offset += line.len() + 1;
            if line.contains("tidy: allow") {
                continue;
            }
            for (pattern, why) in RULES {
                let allowed_in_tests = *pattern == WALL_CLOCK_INSTANT && test_code;
                if code.contains(pattern) && !code.contains(concat!("madsim::rand::", "thread_rng")) && !allowed_in_tests {
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
