//! `cargo xtask run-scenario` as a user runs it: the built binary, its exit codes and what it
//! prints on stdout and stderr. Every run here is a few simulated seconds.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The xtask binary Cargo built for these tests.
fn xtask() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
}

/// A scratch folder of this test process, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flinksim-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A job without checkpointing whose only TaskManager is killed at 20s and back at 50s: the job
/// fails for good and no window after it ever comes, so the run fails for liveness (exit 5).
/// Its resubmission at 1m30s falls after the end of the `--duration 1m20s` the tests run it for.
const LOST_WINDOWS: &str = r#"
name = "lost-windows"
duration = "2m"
[cluster]
startup_period = "0s"
[job]
run = "flink run -d /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --event-time"
[[step]]
at = "20s"
run = "docker-compose kill taskmanager"
[[step]]
at = "50s"
run = "docker-compose up -d taskmanager"
[[step]]
at = "1m30s"
run = "flink run -d /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --event-time"
"#;

/// The replay line printed on failure left out `--duration` and the build.
#[test]
fn a_failed_run_ends_with_a_replay_line_carrying_every_flag_and_the_build() {
    let dir = scratch("replay");
    let path = dir.join("lost-windows.toml");
    std::fs::write(&path, LOST_WINDOWS).unwrap();
    let Output { status, stdout, stderr } = xtask()
        .args(["run-scenario", path.to_str().unwrap(), "--seed", "7", "--duration", "1m20s"])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&stdout), text(&stderr));
    assert_eq!(status.code(), Some(5), "{stdout}\n{stderr}");
    assert!(stdout.contains("verdict:    FAILED (liveness: the job did not recover, or not in time)"), "{stdout}");
    assert!(stdout.contains("violation:  [liveness] the job did not catch up in the fault-free tail"), "{stdout}");
    let replay = stdout.lines().find(|l| l.starts_with("replay:")).unwrap_or_else(|| panic!("{stdout}"));
    let expected = format!("replay:     cargo xtask run-scenario {} --seed 7 --duration 1m20s   # ", path.display());
    assert!(replay.starts_with(&expected), "{replay}");
    assert!(replay.ends_with("unknown build") || replay[expected.len()..].starts_with("build "), "{replay}");
    // The step at 1m30s is after the end: a warning names it, and the run goes on.
    assert!(
        stderr.contains(&format!(
            "warning: {}:14: step `flink run -d /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 \
             --event-time` at 1m 30s will not run: it is after the end (--duration 1m 20s)",
            path.display()
        )),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--duration 0s` ran and failed the oracle (exit 1); in a file it is bad input (exit 2).
#[test]
fn a_bad_duration_flag_is_bad_input_with_the_file_rules_message() {
    let Output { status, stderr, .. } =
        xtask().args(["run-scenario", "steady-state", "--duration", "0s"]).output().unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(text(&stderr).contains("`duration` must be greater than 0"), "{}", text(&stderr));
}

/// `--duration 2m30s` kept the playground's kill at 2m and dropped its return at 3m: the job was
/// judged on a TaskManager that never came back. The run is refused, saying what duration works.
#[test]
fn a_duration_that_drops_a_fault_s_heal_is_bad_input_naming_the_duration_that_works() {
    let Output { status, stdout, stderr } =
        xtask().args(["run-scenario", "failure-recovery", "--duration", "2m30s"]).output().unwrap();
    let stderr = text(&stderr);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(text(&stdout).is_empty(), "nothing ran: {}", text(&stdout));
    assert!(stderr.contains("failure-recovery.toml:18:1: `docker-compose kill taskmanager` at 2m leaves taskmanager-1 down"), "{stderr}");
    assert!(stderr.contains("use --duration 3m 30s or longer"), "{stderr}");
    // The README's example: at 2m the kill is at the very end, and it is dropped with its return.
    let Output { status, stderr, .. } =
        xtask().args(["run-scenario", "failure-recovery", "--seed", "8141", "--duration", "2m"]).output().unwrap();
    assert_eq!(status.code(), Some(0), "{}", text(&stderr));
    assert!(text(&stderr).contains("step `docker-compose kill taskmanager` at 2m will not run: it is at the end"));
}

/// Runs xtask with its stdout a pipe whose reader is already gone, as `xtask … | head -0` does.
fn with_stdout_closed(args: &[&str]) -> (Option<i32>, String) {
    let mut child = xtask().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let Output { status, stderr, .. } = child.wait_with_output().unwrap();
    (status.code(), text(&stderr))
}

/// `run-scenario … | head` panicked on the broken pipe (exit 101).
#[test]
fn a_reader_that_goes_away_ends_the_output_quietly_with_the_run_s_own_exit_code() {
    let (code, stderr) = with_stdout_closed(&["run-scenario", "steady-state", "--duration", "20s"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let dir = scratch("pipe");
    let path = dir.join("lost-windows.toml");
    std::fs::write(&path, LOST_WINDOWS).unwrap();
    let (code, stderr) = with_stdout_closed(&["run-scenario", path.to_str().unwrap(), "--duration", "1m20s"]);
    assert_eq!(code, Some(5), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
