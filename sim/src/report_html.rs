//! A run's report as one self-contained HTML page (docs/report.md): the run's data as a JSON
//! block ([`RunData`]), a script inline that draws the timeline from it as SVG (task states per
//! vertex, checkpoints, faults as shaded spans, results per minute against the steady 24, late
//! drops, restarts), and the window table. Nothing is fetched: no CDN, no font, no image.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use flinksim_engine::protocol::states::{ExecutionState, JobStatus};
use flinksim_engine::trace::{Event, TraceEvent};
use serde::Serialize;

use crate::Report;
use crate::invariant::Finding;
use crate::oracle::WindowRow;

/// Results per minute of simulated time in the steady state: 4 windows of 15 s × 6 pages.
pub const STEADY_RESULTS_PER_MINUTE: u64 = 24;

/// Everything the page draws, embedded as JSON in `<script type="application/json" id="run-data">`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunData {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Simulated time the run covered, ms.
    pub simulated_ms: u64,
    /// The verdict, as the report prints it.
    pub verdict: String,
    /// The trace's hash (16 hex digits).
    pub trace_hash: String,
    /// Task states per vertex over time.
    pub vertices: Vec<Vertex>,
    /// Checkpoints and savepoints: triggered, completed, aborted, restored.
    pub checkpoints: Vec<CheckpointMark>,
    /// Faults the steps applied, as spans.
    pub faults: Vec<FaultMark>,
    /// The scenario's steps as they ran.
    pub steps: Vec<StepMark>,
    /// Results written per minute of simulated time (minute 0 first, every minute of the run).
    pub results_per_minute: Vec<u64>,
    /// The steady state's results per minute.
    pub steady_per_minute: u64,
    /// Late drops, one mark per window operator's drop.
    pub late_drops: Vec<LateMark>,
    /// The job switching to RESTARTING.
    pub restarts: Vec<u64>,
    /// The window table.
    pub windows: Vec<WindowRow>,
    /// Where the run first went wrong, if it did (docs/oracle.md#invariants-over-the-trace).
    pub first_wrong: Option<Finding>,
}

/// A vertex of the job graph and its subtasks' states.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Vertex {
    /// The vertex (`ClickEvent Source`).
    pub name: String,
    /// Its subtasks, by index.
    pub subtasks: Vec<Subtask>,
}

/// One subtask's states over time (every attempt's, in order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Subtask {
    /// As Flink displays it (`ClickEvent Source (1/2)`).
    pub task: String,
    /// Its states, each from a moment to the next change (the last to the end of the run).
    pub spans: Vec<StateSpan>,
}

/// A subtask in one state for a while.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateSpan {
    /// From, ms of simulated time.
    pub from_ms: u64,
    /// To, ms of simulated time.
    pub to_ms: u64,
    /// The state.
    pub state: ExecutionState,
}

/// What happened to a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckpointWhat {
    /// Triggered at the sources.
    Triggered,
    /// Every task acknowledged it.
    Completed,
    /// Given up.
    Aborted,
    /// A restart restored it.
    Restored,
    /// The savepoint of `flink stop` triggered.
    SavepointTriggered,
    /// The savepoint completed.
    SavepointCompleted,
    /// A job started from a savepoint.
    SavepointRestored,
}

/// One checkpoint event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckpointMark {
    /// When, ms of simulated time.
    pub at_ms: u64,
    /// The checkpoint's id.
    pub id: u64,
    /// What happened.
    pub what: CheckpointWhat,
}

/// A fault, from the step that applied it to the one that healed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultMark {
    /// Applied, ms of simulated time.
    pub from_ms: u64,
    /// Healed (the end of the run if never).
    pub to_ms: u64,
    /// Whether a step healed it.
    pub healed: bool,
    /// The fault, as the report words it.
    pub fault: String,
}

/// A step of the scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepMark {
    /// When, ms of simulated time.
    pub at_ms: u64,
    /// Its command.
    pub command: String,
}

/// Late events one window operator dropped at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LateMark {
    /// When, ms of simulated time.
    pub at_ms: u64,
    /// Events dropped.
    pub count: u64,
    /// The window's start, ms of event time.
    pub window_start_ms: i64,
}

fn ms(event: &TraceEvent) -> u64 {
    event.at.as_millis() as u64
}

/// The vertex of a subtask's display name: `ClickEvent Source (1/2)` → `ClickEvent Source`.
fn vertex_of(task: &str) -> &str {
    task.rsplit_once(" (").map_or(task, |(vertex, _)| vertex)
}

/// The page's data, read off the run's report and trace.
pub fn run_data(report: &Report) -> RunData {
    let end_ms = report.simulated.as_millis() as u64;
    let mut vertices: Vec<Vertex> = Vec::new();
    // Per task: the open span's start and state.
    let mut open: BTreeMap<String, (u64, ExecutionState)> = BTreeMap::new();
    let mut spans: BTreeMap<String, Vec<StateSpan>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut checkpoints = Vec::new();
    let minutes = end_ms.div_ceil(60_000).max(1) as usize;
    let mut results_per_minute = vec![0u64; minutes];
    let mut late_drops = Vec::new();
    let mut restarts = Vec::new();
    let mut steps = Vec::new();
    for event in &report.events {
        let at_ms = ms(event);
        let mut mark = |id, what| checkpoints.push(CheckpointMark { at_ms, id, what });
        match &event.event {
            Event::ExecutionStateChanged { task, to, .. } => {
                if !spans.contains_key(task) {
                    order.push(task.clone());
                    spans.insert(task.clone(), Vec::new());
                }
                if let Some((from_ms, state)) = open.insert(task.clone(), (at_ms, *to)) {
                    let list = spans.get_mut(task).expect("inserted above");
                    list.push(StateSpan { from_ms, to_ms: at_ms, state });
                }
            }
            Event::CheckpointTriggered { checkpoint_id, .. } => mark(*checkpoint_id, CheckpointWhat::Triggered),
            Event::CheckpointCompleted { checkpoint_id, .. } => mark(*checkpoint_id, CheckpointWhat::Completed),
            Event::CheckpointAborted { checkpoint_id, .. } => mark(*checkpoint_id, CheckpointWhat::Aborted),
            Event::Restoring { checkpoint_id, .. } => mark(*checkpoint_id, CheckpointWhat::Restored),
            Event::SavepointTriggered { checkpoint_id, .. } => mark(*checkpoint_id, CheckpointWhat::SavepointTriggered),
            Event::SavepointCompleted { checkpoint_id, .. } => mark(*checkpoint_id, CheckpointWhat::SavepointCompleted),
            Event::RestoringFromSavepoint { checkpoint_id, .. } => {
                mark(*checkpoint_id, CheckpointWhat::SavepointRestored)
            }
            Event::ResultWritten { .. } => {
                let minute = (at_ms / 60_000) as usize;
                if let Some(n) = results_per_minute.get_mut(minute) {
                    *n += 1;
                }
            }
            Event::LateDropped { count, window_start_ms, .. } => {
                late_drops.push(LateMark { at_ms, count: *count, window_start_ms: *window_start_ms })
            }
            Event::JobStatusChanged { to: JobStatus::Restarting, .. } => restarts.push(at_ms),
            Event::StepRun { command, .. } => steps.push(StepMark { at_ms, command: command.clone() }),
            _ => {}
        }
    }
    for (task, (from_ms, state)) in open {
        spans.get_mut(&task).expect("opened with a span list").push(StateSpan { from_ms, to_ms: end_ms.max(from_ms), state });
    }
    // Vertices in the order their first subtask appeared; subtasks by their display name.
    for task in &order {
        let name = vertex_of(task);
        if !vertices.iter().any(|v| v.name == name) {
            vertices.push(Vertex { name: name.to_owned(), subtasks: Vec::new() });
        }
    }
    for (task, spans) in spans {
        let vertex = vertices.iter_mut().find(|v| v.name == vertex_of(&task)).expect("every task's vertex is listed");
        vertex.subtasks.push(Subtask { task, spans });
    }
    let faults = report
        .liveness
        .faults
        .iter()
        .map(|f| FaultMark {
            from_ms: f.applied_at.as_millis() as u64,
            to_ms: f.healed_at.map_or(end_ms, |h| h.as_millis() as u64),
            healed: f.healed_at.is_some(),
            fault: f.fault.to_string(),
        })
        .collect();
    RunData {
        scenario: report.scenario.clone(),
        seed: report.seed,
        simulated_ms: end_ms,
        verdict: report.oracle.verdict().to_string(),
        trace_hash: report.trace_hash_hex(),
        vertices,
        checkpoints,
        faults,
        steps,
        results_per_minute,
        steady_per_minute: STEADY_RESULTS_PER_MINUTE,
        late_drops,
        restarts,
        windows: report.oracle.rows.clone(),
        first_wrong: report.invariants.first().cloned(),
    }
}

/// The data as the page embeds it: JSON with `<` escaped, so that no `</script>` can end the
/// block early.
pub fn embedded_json(data: &RunData) -> String {
    serde_json::to_string(data).expect("the run's data serializes").replace('<', "\\u003c")
}

/// Reads the embedded data back out of a page [`render`] wrote.
pub fn data_of(page: &str) -> Option<serde_json::Value> {
    let start = page.find(DATA_OPEN)? + DATA_OPEN.len();
    let end = start + page[start..].find("</script>")?;
    serde_json::from_str(&page[start..end]).ok()
}

const DATA_OPEN: &str = r#"<script type="application/json" id="run-data">"#;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The window table, rows that are not ok first (in window order), then the rest.
fn window_table(rows: &[WindowRow]) -> String {
    let mut rows: Vec<&WindowRow> = rows.iter().collect();
    rows.sort_by_key(|r| is_ok(r)); // stable: window order within each part
    let mut out = String::new();
    out.push_str(
        "<table id=\"windows\"><thead><tr><th>window</th><th>page</th><th>copies</th><th>input</th>\
         <th>counted</th><th>late</th><th>lost</th><th>unaccounted</th><th>status</th></tr></thead><tbody>\n",
    );
    for row in rows {
        let copies = if row.counts.is_empty() {
            "-".to_owned()
        } else {
            row.counts.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
        };
        let ok = is_ok(row);
        let class = if ok { "ok" } else if row.expected { "expected" } else { "bad" };
        let status = if !ok && row.expected { format!("{} (expected)", row.status.name()) } else { row.status.name().to_owned() };
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td>{}-{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            crate::oracle::event_clock(row.window_start_ms),
            crate::oracle::event_clock(row.window_start_ms + flinksim_engine::protocol::click_event::WINDOW_MS),
            escape(&row.page),
            copies,
            row.recount,
            row.counted,
            row.late,
            row.lost,
            row.unaccounted,
            escape(&status)
        );
    }
    out.push_str("</tbody></table>\n");
    out
}

/// Whether a row is ok (or has nothing to count): the table lists the others first.
pub fn is_ok(row: &WindowRow) -> bool {
    matches!(row.status, crate::oracle::RowStatus::Ok | crate::oracle::RowStatus::EmptyAtSource)
}

/// The whole page.
pub fn render(report: &Report) -> String {
    let data = run_data(report);
    let mut page = String::with_capacity(64 * 1024);
    let title = format!("flinksim: {} seed {}", data.scenario, data.seed);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(page, "<title>{}</title>", escape(&title));
    page.push_str("<style>\n");
    page.push_str(STYLE);
    page.push_str("</style>\n</head>\n<body>\n");
    let _ = writeln!(page, "<h1>{}</h1>", escape(&title));
    let verdict_class = if report.passed() { "passed" } else { "failed" };
    let _ = writeln!(
        page,
        "<p class=\"summary\"><span class=\"verdict {verdict_class}\">{}</span> · {:.1} s simulated · {} events in input, {} results in output · trace hash {}</p>",
        escape(&data.verdict),
        report.simulated.as_secs_f64(),
        report.oracle.input_events,
        report.oracle.output_records,
        data.trace_hash
    );
    if let Some(first) = &data.first_wrong {
        let _ = writeln!(
            page,
            "<p class=\"first-wrong\">First wrong at {:.3} s (trace line {}): [{}] {}</p>",
            first.at.as_secs_f64(),
            first.index + 1,
            escape(first.breach.name()),
            escape(&first.breach.to_string())
        );
    }
    if !report.oracle.violations.is_empty() {
        page.push_str("<ul class=\"violations\">\n");
        for violation in &report.oracle.violations {
            let _ = writeln!(page, "<li>[{}] {}</li>", violation.class().name(), escape(&violation.to_string()));
        }
        page.push_str("</ul>\n");
    }
    // What the scenario accepts, and what the oracle did to judge it (a zombie's transactions
    // fenced): the same notes `run-scenario` prints.
    if !report.oracle.notes.is_empty() {
        page.push_str("<ul class=\"notes\">\n");
        for note in &report.oracle.notes {
            let _ = writeln!(page, "<li>{}</li>", escape(note));
        }
        page.push_str("</ul>\n");
    }
    page.push_str("<h2>Timeline</h2>\n<div id=\"legend\"></div>\n<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"timeline of the run\"></svg>\n");
    page.push_str("<h2>Windows</h2>\n<div class=\"table-wrap\">\n");
    page.push_str(&window_table(&data.windows));
    page.push_str("</div>\n");
    page.push_str(DATA_OPEN);
    page.push_str(&embedded_json(&data));
    page.push_str("</script>\n<script>\n");
    page.push_str(SCRIPT);
    page.push_str("</script>\n</body>\n</html>\n");
    page
}

const STYLE: &str = r##"body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 24px 0 8px; }
.summary { margin: 0 0 8px; }
.verdict { font-weight: bold; padding: 1px 6px; border-radius: 3px; }
.verdict.passed { background: #d4f4d4; }
.verdict.failed { background: #f8d0d0; }
.notes { color: #555; }
.first-wrong { color: #a00; font-weight: bold; }
#timeline { display: block; border: 1px solid #ddd; background: #fff; }
#legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
#legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -2px; }
.table-wrap { max-height: 520px; overflow-y: auto; display: inline-block; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 12px; }
thead th { position: sticky; top: 0; }
th, td { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
th { background: #f4f4f4; }
tr.bad td { background: #fbe0e0; }
tr.expected td { background: #fff4d6; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
"##;

/// Draws the timeline from the embedded data (no library: plain DOM and SVG).
const SCRIPT: &str = r##"(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("run-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var svg = document.getElementById("timeline");
  var left = 230, right = 20, width = 1200, plot = width - left - right;
  var x = function (ms) { return left + plot * ms / Math.max(1, data.simulated_ms); };
  var colors = {
    Created: "#cfd8dc", Scheduled: "#b0bec5", Deploying: "#90caf9", Initializing: "#64b5f6",
    Running: "#66bb6a", Finished: "#455a64", Canceling: "#ffb74d", Canceled: "#ff9800",
    Failed: "#e53935", Reconciling: "#ba68c8"
  };
  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (text !== undefined) { e.textContent = text; }
    svg.appendChild(e);
    return e;
  }
  function tip(e, text) {
    var t = document.createElementNS(NS, "title"); t.textContent = text; e.appendChild(t);
  }
  function clock(ms) {
    var s = Math.floor(ms / 1000);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  var y = 24, laneH = 12, laneGap = 3;
  var top = y;
  // Task states per vertex.
  el("text", { x: 8, y: y - 8, "font-weight": "bold" }, "task states");
  data.vertices.forEach(function (v) {
    v.subtasks.forEach(function (s) {
      el("text", { x: 8, y: y + laneH - 2 }, s.task);
      s.spans.forEach(function (span) {
        var r = el("rect", { x: x(span.from_ms), y: y, height: laneH,
          width: Math.max(0.5, x(span.to_ms) - x(span.from_ms)), fill: colors[span.state] || "#999" });
        tip(r, s.task + ": " + span.state + " " + clock(span.from_ms) + "–" + clock(span.to_ms));
      });
      y += laneH + laneGap;
    });
    y += 4;
  });
  // Checkpoints.
  y += 10;
  el("text", { x: 8, y: y + 10 }, "checkpoints");
  var cpY = y;
  data.checkpoints.forEach(function (c) {
    var cx = x(c.at_ms), e;
    if (c.what === "triggered") {
      e = el("line", { x1: cx, x2: cx, y1: cpY + 2, y2: cpY + 6, stroke: "#9e9e9e" });
    } else if (c.what === "completed") {
      e = el("line", { x1: cx, x2: cx, y1: cpY + 6, y2: cpY + 14, stroke: "#2e7d32" });
    } else if (c.what === "aborted") {
      e = el("line", { x1: cx, x2: cx, y1: cpY, y2: cpY + 14, stroke: "#e53935", "stroke-width": 2 });
    } else if (c.what === "restored" || c.what === "savepoint-restored") {
      e = el("path", { d: "M" + (cx - 5) + " " + (cpY + 16) + " L" + (cx + 5) + " " + (cpY + 16) + " L" + cx + " " + (cpY + 4) + " Z", fill: "#1565c0" });
    } else {
      e = el("circle", { cx: cx, cy: cpY + 8, r: 4, fill: c.what === "savepoint-completed" ? "#6a1b9a" : "#ce93d8" });
    }
    tip(e, "checkpoint " + c.id + " " + c.what + " at " + clock(c.at_ms));
  });
  y += 24;
  // Restarts and late drops.
  el("text", { x: 8, y: y + 10 }, "restarts");
  data.restarts.forEach(function (at) {
    var e = el("path", { d: "M" + (x(at) - 5) + " " + (y + 2) + " L" + (x(at) + 5) + " " + (y + 2) + " L" + x(at) + " " + (y + 12) + " Z", fill: "#e53935" });
    tip(e, "job RESTARTING at " + clock(at));
  });
  y += 20;
  el("text", { x: 8, y: y + 10 }, "late drops");
  var maxLate = data.late_drops.reduce(function (m, d) { return Math.max(m, d.count); }, 1);
  data.late_drops.forEach(function (d) {
    var h = 2 + 12 * d.count / maxLate;
    var e = el("rect", { x: x(d.at_ms) - 1, y: y + 14 - h, width: 2, height: h, fill: "#8e24aa" });
    tip(e, d.count + " late events of window " + clock(d.window_start_ms) + " dropped at " + clock(d.at_ms));
  });
  y += 24;
  // Results per minute against the steady state.
  var chartH = 110, chartTop = y + 8;
  el("text", { x: 8, y: chartTop + 10 }, "results per minute");
  var maxR = Math.max(data.steady_per_minute * 1.5, Math.max.apply(null, data.results_per_minute.concat([0])));
  var yr = function (n) { return chartTop + chartH - chartH * n / maxR; };
  data.results_per_minute.forEach(function (n, m) {
    var until = Math.min((m + 1) * 60000, data.simulated_ms), part = (until - m * 60000) / 60000;
    var x0 = x(m * 60000), x1 = x(until);
    // A last, partial minute is held to its share of the steady state.
    var e = el("rect", { x: x0 + 1, y: yr(n), width: Math.max(1, x1 - x0 - 2), height: chartTop + chartH - yr(n),
      fill: n < data.steady_per_minute * part ? "#ffa726" : "#42a5f5" });
    tip(e, "minute " + m + ": " + n + " results");
    var label = part < 1 ? n + " in " + Math.round(part * 60) + " s" : String(n);
    el("text", { x: (x0 + x1) / 2, y: yr(n) - 3, "text-anchor": "middle" }, label);
  });
  el("line", { x1: left, x2: left + plot, y1: yr(data.steady_per_minute), y2: yr(data.steady_per_minute),
    stroke: "#333", "stroke-dasharray": "4 3" });
  el("text", { x: left - 6, y: yr(data.steady_per_minute) + 4, "text-anchor": "end" }, "steady " + data.steady_per_minute);
  y = chartTop + chartH + 8;
  // Time axis.
  el("line", { x1: left, x2: left + plot, y1: y, y2: y, stroke: "#333" });
  var step = data.simulated_ms > 20 * 60000 ? 300000 : data.simulated_ms > 6 * 60000 ? 60000 : 30000;
  for (var t = 0; t <= data.simulated_ms; t += step) {
    el("line", { x1: x(t), x2: x(t), y1: y, y2: y + 5, stroke: "#333" });
    el("text", { x: x(t), y: y + 17, "text-anchor": "middle" }, clock(t));
  }
  el("text", { x: left + plot, y: y + 32, "text-anchor": "end" }, "simulated time (m:ss)");
  var bottom = y;
  // Faults as shaded spans over everything, and the steps as thin lines.
  data.faults.forEach(function (f, i) {
    var r = el("rect", { x: x(f.from_ms), y: top - 16, width: Math.max(1, x(f.to_ms) - x(f.from_ms)),
      height: bottom - top + 16, fill: "#e53935", "fill-opacity": 0.12, stroke: "#e53935", "stroke-opacity": 0.4 });
    tip(r, f.fault + " " + clock(f.from_ms) + "–" + (f.healed ? clock(f.to_ms) : "end"));
    el("text", { x: x(f.from_ms) + 3, y: top - 6 + 11 * (i % 2), fill: "#b71c1c" }, f.fault);
  });
  if (data.first_wrong) {
    var fw = data.first_wrong.at.secs * 1000 + data.first_wrong.at.nanos / 1e6;
    el("line", { x1: x(fw), x2: x(fw), y1: top - 16, y2: bottom, stroke: "#b71c1c", "stroke-width": 2, "stroke-dasharray": "6 3" });
    el("text", { x: x(fw) + 3, y: bottom - 4, fill: "#b71c1c", "font-weight": "bold" }, "first wrong");
  }
  svg.setAttribute("width", width);
  svg.setAttribute("height", bottom + 40);
  svg.setAttribute("viewBox", "0 0 " + width + " " + (bottom + 40));
  // Legend.
  var legend = document.getElementById("legend");
  var items = [["Running", colors.Running], ["Deploying/Initializing", colors.Initializing], ["Scheduled/Created", colors.Scheduled],
    ["Canceling/Canceled", colors.Canceled], ["Failed", colors.Failed], ["Finished", colors.Finished],
    ["fault", "rgba(229,57,53,0.25)"], ["checkpoint completed", "#2e7d32"], ["restored", "#1565c0"], ["restart", "#e53935"],
    ["late drop", "#8e24aa"], ["results/min (below steady)", "#ffa726"]];
  items.forEach(function (it) {
    var s = document.createElement("span"), i = document.createElement("i");
    i.style.background = it[1]; s.appendChild(i); s.appendChild(document.createTextNode(it[0])); legend.appendChild(s);
  });
})();
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subtask_belongs_to_the_vertex_its_name_starts_with() {
        assert_eq!(vertex_of("ClickEvent Source (1/2)"), "ClickEvent Source");
        assert_eq!(vertex_of("Timestamps/Watermarks (2/2)"), "Timestamps/Watermarks");
        assert_eq!(vertex_of("plain"), "plain");
    }

    #[test]
    fn markup_in_text_is_escaped_and_the_json_cannot_end_its_script() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        let json = serde_json::to_string("</script>").unwrap().replace('<', "\\u003c");
        assert!(!json.contains("</script>"));
        assert_eq!(serde_json::from_str::<String>(&json).unwrap(), "</script>");
    }
}
