//! The sweep and determinism commands as a user runs them, and the shipped scale-out files
//! (the GitHub Actions matrix and the Kubernetes Indexed Job) checked to cover a range once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flinksim::sweep::{SeedRange, Shard};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).current_dir(root()).output().unwrap()
}

fn text(output: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn check_determinism_runs_seeds_in_fresh_runtimes_and_a_fresh_process() {
    let output = xtask(&["check-determinism", "steady-state", "--seeds", "1..3", "--duration", "30s", "--process-sample", "1"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("seed 1: alike in 3 runs, and in a fresh process"), "{out}");
    assert!(out.contains("seed 2: alike in 2 runs"), "{out}");
    assert!(out.contains("verdict:    PASSED"), "{out}");
}

#[test]
fn trace_files_compare_and_a_difference_exits_6_with_its_first_line() {
    let dir = scratch("trace-files");
    let path = |seed: u64| dir.join(format!("seed-{seed}.trace"));
    for seed in [1, 2] {
        let p = path(seed);
        let output = xtask(&["run-scenario", "steady-state", "--seed", &seed.to_string(), "--duration", "20s", "--trace-out", p.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    }
    let again = dir.join("seed-1-again.trace");
    xtask(&["run-scenario", "steady-state", "--seed", "1", "--duration", "20s", "--trace-out", again.to_str().unwrap()]);
    let same = xtask(&["check-determinism", "--trace-a", path(1).to_str().unwrap(), "--trace-b", again.to_str().unwrap()]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    assert!(text(&same).contains("the traces are identical"));
    let other = xtask(&["check-determinism", "--trace-a", path(1).to_str().unwrap(), "--trace-b", path(2).to_str().unwrap()]);
    let out = text(&other);
    assert_eq!(other.status.code(), Some(6), "{out}");
    // The banner names the seed: the traces part at line 1.
    assert!(out.contains("the traces differ from line 1:"), "{out}");
    assert!(out.contains(">      1       0.000000  sim                    scenario steady-state seed 1"), "{out}");
    assert!(out.contains("FAILED (nondeterminism)"), "{out}");
}

#[test]
fn bad_flags_exit_2_with_a_clear_error() {
    for (args, message) in [
        (&["sweep", "steady-state", "--seeds", "0..10", "--shard", "4/4"][..], "the index must be below 4"),
        (&["sweep", "steady-state", "--seeds", "9..3"][..], "holds no seed"),
        (&["sweep", "steady-state"][..], "--seeds"),
        (&["sweep", "steady-state", "--seeds", "0..2", "--max-failures", "0"][..], "--max-failures"),
        (&["check-determinism"][..], "required"),
        (&["check-determinism", "--trace-a", "x"][..], "--trace-b"),
        (&["sweep", "no-such-scenario", "--seeds", "0..2"][..], "unknown scenario"),
    ] {
        let output = xtask(args);
        let out = text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {out}");
        assert!(out.contains(message), "{args:?}: {out}");
    }
}

#[test]
fn sweep_shards_write_json_that_merges_to_the_whole_range() {
    let dir = scratch("sweep-shards");
    let mut files = Vec::new();
    for shard in ["0/2", "1/2"] {
        let json = dir.join(format!("sweep-{}.json", &shard[..1]));
        let output = xtask(&["sweep", "steady-state", "--seeds", "0..4", "--duration", "20s", "--jobs", "2", "--shard", shard, "--json", json.to_str().unwrap()]);
        let out = text(&output);
        assert_eq!(output.status.code(), Some(0), "{out}");
        assert!(out.contains(&format!("(shard {shard}: 2 seeds)")), "{out}");
        files.push(json);
    }
    let merged = dir.join("merged.json");
    let output = xtask(&["sweep", "merge", files[0].to_str().unwrap(), files[1].to_str().unwrap(), "--json", merged.to_str().unwrap()]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("shards 0, 1 of 2"), "{out}");
    let report: flinksim::sweep::SweepReport = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(report.totals().passed, 4);
    let twice = xtask(&["sweep", "merge", files[0].to_str().unwrap(), files[0].to_str().unwrap()]);
    assert_eq!(twice.status.code(), Some(2), "{}", text(&twice));
    assert!(text(&twice).contains("shard 0/2 is in two reports"));
}

/// Every seed of `range` in exactly one of `shards` 0..count.
fn assert_covered_once(range: SeedRange, count: u32, shards: &[u32], what: &str) {
    assert_eq!(shards, (0..count).collect::<Vec<_>>(), "{what}: the shards must be 0 … {}", count - 1);
    let mut seen = vec![0u32; range.len() as usize];
    for &index in shards {
        for seed in (Shard { index, count }).seeds(range) {
            seen[(seed - range.start) as usize] += 1;
        }
    }
    let wrong: Vec<u64> = seen.iter().enumerate().filter(|(_, n)| **n != 1).map(|(i, _)| range.start + i as u64).collect();
    assert!(wrong.is_empty(), "{what}: seeds not covered exactly once: {wrong:?}");
}

fn yaml(path: &Path) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn string(value: &serde_yaml::Value) -> String {
    match value {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        other => panic!("not a string: {other:?}"),
    }
}

#[test]
fn the_github_matrix_covers_the_range_exactly_once() {
    let workflow = yaml(&root().join(".github/workflows/sweep.yml"));
    let range: SeedRange = string(&workflow["env"]["SEEDS"]).parse().unwrap();
    let count: u32 = string(&workflow["env"]["SHARDS"]).parse().unwrap();
    let job = &workflow["jobs"]["shard"];
    let shards: Vec<u32> = job["strategy"]["matrix"]["shard"].as_sequence().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let run = job["steps"].as_sequence().unwrap().iter().find_map(|s| s["run"].as_str()).unwrap();
    assert!(run.contains(r#"--seeds "$SEEDS" --shard "${{ matrix.shard }}/$SHARDS""#), "{run}");
    assert!(run.contains("sweep $SCENARIOS"), "{run}");
    assert_covered_once(range, count, &shards, "the GitHub Actions matrix");
    let merge = &workflow["jobs"]["merge"];
    assert_eq!(string(&merge["needs"]), "shard");
    assert!(merge["steps"].as_sequence().unwrap().iter().any(|s| s["run"].as_str().is_some_and(|r| r.contains("sweep merge sweep-*.json"))));
}

#[test]
fn the_kubernetes_indexed_job_covers_the_range_exactly_once() {
    let job = yaml(&root().join("deploy/k8s/sweep-job.yaml"));
    assert_eq!(string(&job["kind"]), "Job");
    let spec = &job["spec"];
    assert_eq!(string(&spec["completionMode"]), "Indexed");
    let completions = spec["completions"].as_u64().unwrap() as u32;
    let container = &spec["template"]["spec"]["containers"][0];
    let env = |name: &str| {
        container["env"].as_sequence().unwrap().iter().find(|e| e["name"] == name).map(|e| string(&e["value"])).unwrap()
    };
    let range: SeedRange = env("SEEDS").parse().unwrap();
    let count: u32 = env("SHARDS").parse().unwrap();
    assert_eq!(completions, count, "completions must equal SHARDS");
    let script = string(&container["args"][0]);
    assert!(script.contains(r#"--seeds "$SEEDS" --shard "$JOB_COMPLETION_INDEX/$SHARDS""#), "{script}");
    // Kubernetes numbers completion indexes 0 … completions-1.
    let shards: Vec<u32> = (0..completions).collect();
    assert_covered_once(range, count, &shards, "the Kubernetes Indexed Job");
    let dockerfile = std::fs::read_to_string(root().join("deploy/k8s/Dockerfile")).unwrap();
    assert!(dockerfile.contains("cargo build --release --locked --package xtask"), "{dockerfile}");
    assert!(dockerfile.contains("COPY --from=build /src/scenarios /src/scenarios"), "{dockerfile}");
}

/// `bisect --git` exits as `git bisect run` expects: 0 for a good run, 1 for a bad one, 125 for a
/// scenario this build cannot load or run.
#[test]
fn bisect_git_exits_0_good_1_bad_125_skip() {
    let good = xtask(&["bisect", "steady-state", "--seed", "1", "--duration", "40s", "--git"]);
    assert_eq!(good.status.code(), Some(0), "{}", text(&good));
    assert!(text(&good).contains("good: seed 1 passed"), "{}", text(&good));
    let bad = xtask(&["bisect", "pitfalls/at-least-once-duplicates", "--seed", "1", "--strict", "--git"]);
    let out = text(&bad);
    assert_eq!(bad.status.code(), Some(1), "{out}");
    assert!(out.contains("bad: seed 1 (FAILED (correctness"), "{out}");
    assert!(out.contains("first wrong at 181.237 s: [second copy]"), "{out}");
    let dir = scratch("bisect-git");
    let broken = dir.join("broken.toml");
    std::fs::write(&broken, "name = \"broken\"\nduration = \"soon\"\n").unwrap();
    for scenario in [broken.to_str().unwrap(), "no-such-scenario"] {
        let skip = xtask(&["bisect", scenario, "--seed", "1", "--git"]);
        let out = text(&skip);
        assert_eq!(skip.status.code(), Some(125), "{out}");
        assert!(out.contains("skip: the scenario cannot be run by this build"), "{out}");
    }
    // Without --git the same scenario is bad input, exit 2.
    assert_eq!(xtask(&["bisect", "no-such-scenario"]).status.code(), Some(2));
}

/// `bisect` on a failing seed prints the first wrong moment, the chain and the trace around it.
#[test]
fn bisect_prints_the_first_wrong_moment_and_its_chain() {
    let output = xtask(&["bisect", "pitfalls/transaction-timeout-loss", "--seed", "1", "--strict"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(4), "{out}");
    assert!(out.contains("first wrong at 4:31.076 (trace line 4622): [loss not accepted]"), "{out}");
    assert!(out.contains("  fault      1:00.818  sim                    step: docker-compose kill taskmanager"), "{out}");
    assert!(out.contains(">>   4622    271.076339  taskmanager-1          Unable to commit transaction"), "{out}");
    assert!(out.contains("replay:     cargo xtask bisect pitfalls/transaction-timeout-loss --seed 1 --strict"), "{out}");
}

/// The playground's job has `--chaining`, but flinksim runs the four unchained vertices only: a
/// scenario asking for it is refused as bad input (exit 2), naming the flag where it is written
/// and why, instead of running the unchained job under its name.
#[test]
fn a_scenario_with_chaining_is_refused_naming_the_flag_and_why() {
    let path = scratch("chaining").join("chaining.toml");
    let run = "flink run -d /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --checkpointing --event-time --chaining";
    std::fs::write(&path, format!("name = \"chaining\"\nduration = \"1m\"\n\n[job]\nrun = \"{run}\"\n")).unwrap();
    let output = xtask(&["run-scenario", path.to_str().unwrap()]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(2), "{out}");
    let column = 8 + run.find("--chaining").unwrap();
    assert!(out.contains(&format!("chaining.toml:5:{column}: --chaining is refused")), "{out}");
    assert!(out.contains("fuses the Source with Timestamps/Watermarks"), "{out}");
}
