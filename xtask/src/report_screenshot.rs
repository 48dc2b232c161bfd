//! `cargo xtask report-screenshot <scenario> --seed N --out PATH.png`: writes a run's HTML report
//! (docs/report.md) and renders it with headless Chromium, to look at what the page draws. Not
//! part of the default suite: it needs Debian's `chromium` package.

use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

use crate::console::outln;
use crate::flags::{ReportScreenshot};

/// The headless browsers tried, in order.
const BROWSERS: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

impl ReportScreenshot {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let (width, height) = self
            .window
            .split_once('x')
            .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
            .with_context(|| format!("--window {}: expected WIDTHxHEIGHT, e.g. 1280x1100", self.window))?;
        let browser = BROWSERS
            .iter()
            .find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
            .context("no headless Chromium found (tried chromium, chromium-browser, google-chrome): apt-get install -y chromium")?;
        let (_, scenario) = crate::run_scenario::load(&self.scenario, None)?;
        let report = match flinksim::run(&scenario, self.seed) {
            Ok(report) => report,
            Err(flinksim::RunError::BadInput(error)) => return Err((*error).into()),
            Err(error) => bail!("{error}"),
        };
        let html = self.out.with_extension("html");
        std::fs::write(&html, flinksim::report_html::render(&report))
            .with_context(|| format!("cannot write the report to {}", html.display()))?;
        let html = std::fs::canonicalize(&html)?;
        let _ = std::fs::remove_file(&self.out);
        let output = Command::new(browser)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--screenshot={}", self.out.display()))
            .arg(format!("file://{}", html.display()))
            .output()
            .with_context(|| format!("cannot start {browser}"))?;
        if !self.out.exists() {
            bail!("{browser} wrote no screenshot:\n{}", String::from_utf8_lossy(&output.stderr));
        }
        outln!("report:     {}", html.display())?;
        outln!("screenshot: {} ({browser}, {width}x{height})", self.out.display())?;
        Ok(ExitCode::SUCCESS)
    }
}
