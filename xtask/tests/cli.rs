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

/// A job without checkpointing whose only TaskManager is killed at 20s: the job fails for good
/// and no window after it ever comes, so the oracle fails the run for liveness (exit 5).
const LOST_WINDOWS: &str = r#"
name = "lost-windows"
duration = "1m"
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
"#;

/// The replay line printed on failure left out `--duration` and the build.
#[test]
fn a_failed_run_ends_with_a_replay_line_carrying_every_flag_and_the_build() {
    let dir = scratch("replay");
    let path = dir.join("lost-windows.toml");
    std::fs::write(&path, LOST_WINDOWS).unwrap();
    let Output { status, stdout, stderr } = xtask()
        .args(["run-scenario", path.to_str().unwrap(), "--seed", "7", "--duration", "40s"])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&stdout), text(&stderr));
    assert_eq!(status.code(), Some(5), "{stdout}\n{stderr}");
    assert!(stdout.contains("verdict:    FAILED (liveness: expected results never came)"), "{stdout}");
    let replay = stdout.lines().find(|l| l.starts_with("replay:")).unwrap_or_else(|| panic!("{stdout}"));
    let expected = format!("replay:     cargo xtask run-scenario {} --seed 7 --duration 40s   # ", path.display());
    assert!(replay.starts_with(&expected), "{replay}");
    assert!(replay.ends_with("unknown build") || replay[expected.len()..].starts_with("build "), "{replay}");
    // The step at 50s is after the end: a warning names it, and the run goes on.
    assert!(
        stderr.contains(&format!(
            "warning: {}:11: step `docker-compose up -d taskmanager` at 50s will not run: it is after the \
             end (--duration 40s)",
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
    let (code, stderr) = with_stdout_closed(&["run-scenario", path.to_str().unwrap(), "--duration", "40s"]);
    assert_eq!(code, Some(5), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
