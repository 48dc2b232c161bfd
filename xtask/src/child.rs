//! A command of this executable run in a child process: each bench case and timed sweep or fuzz
//! runs in its own process (peak memory only grows within one) and reports one JSON line.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// Runs `exe args` in `root` (stderr passed through) and reads the JSON line it prints last.
pub fn child_result<T: serde::de::DeserializeOwned>(exe: &Path, root: &Path, args: &[String]) -> anyhow::Result<T> {
    let output = Command::new(exe)
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    if !output.status.success() {
        bail!("the child process exited with {}", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rev().find(|line| !line.trim().is_empty()).context("the child printed no result")?;
    serde_json::from_str(line).with_context(|| format!("cannot read the child's result `{line}`"))
}
