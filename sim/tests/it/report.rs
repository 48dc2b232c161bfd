//! The HTML run report: the JSON block it embeds says what the run did (read independently off
//! the trace here), the page parses as HTML, and it fetches nothing.

use flinksim::Report;
use flinksim::report_html::{self, CheckpointWhat, RunData};
use flinksim_engine::protocol::states::{ExecutionState, JobStatus};
use flinksim_engine::trace::Event;
use html5ever::tendril::TendrilSink;
use markup5ever_rcdom::{Handle, NodeData, RcDom};

use crate::harness::{run, scenario};

fn page_of(report: &Report) -> (String, RunData) {
    let page = report_html::render(report);
    let data = report_html::run_data(report);
    let embedded = report_html::data_of(&page).expect("the page embeds its data");
    assert_eq!(embedded, serde_json::to_value(&data).unwrap(), "the page embeds the run's data as is");
    (page, data)
}

fn count(report: &Report, matches: impl Fn(&Event) -> bool) -> usize {
    report.events.iter().filter(|e| matches(&e.event)).count()
}

#[test]
fn the_embedded_data_tells_the_failure_and_recovery() {
    let seed = 1;
    let report = run(&scenario("failure-recovery"), seed);
    let (_, data) = page_of(&report);
    let replay = format!("replay: cargo xtask run-scenario failure-recovery --seed {seed} --report run.html");
    // Every result written is in some minute, and a minute without a fault holds the steady 24.
    let written = count(&report, |e| matches!(e, Event::ResultWritten { .. }));
    assert_eq!(data.results_per_minute.iter().sum::<u64>() as usize, written, "{replay}");
    assert_eq!(data.results_per_minute.len(), 6, "a 6-minute run, {replay}");
    assert_eq!(data.results_per_minute[data.results_per_minute.len() - 1], data.steady_per_minute, "{replay}");
    // The four vertices, two subtasks each, whose spans run without a gap to the end.
    let names: Vec<&str> = data.vertices.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["ClickEvent Source", "Timestamps/Watermarks", "ClickEvent Counter", "ClickEventStatistics Sink"]);
    for vertex in &data.vertices {
        assert_eq!(vertex.subtasks.len(), 2, "{}", vertex.name);
        for subtask in &vertex.subtasks {
            for pair in subtask.spans.windows(2) {
                assert_eq!(pair[0].to_ms, pair[1].from_ms, "{}", subtask.task);
            }
            assert_eq!(subtask.spans.last().unwrap().to_ms, data.simulated_ms, "{}", subtask.task);
            assert!(subtask.spans.iter().any(|s| s.state == ExecutionState::Failed), "the kill fails {}", subtask.task);
            assert_eq!(subtask.spans.last().unwrap().state, ExecutionState::Running, "{}", subtask.task);
        }
    }
    // The kill is a fault span from its step to the step that heals it.
    let step_at = |text: &str| report.steps.iter().find(|(_, c)| c.contains(text)).unwrap().0.as_millis() as u64;
    assert_eq!(data.faults.len(), 1, "{replay}");
    assert_eq!(data.faults[0].fault, "taskmanager-1 down");
    assert_eq!((data.faults[0].from_ms, data.faults[0].to_ms), (step_at("kill"), step_at("up -d")), "{replay}");
    // Checkpoints, the restore among them, and the restarts.
    let what = |w: CheckpointWhat| data.checkpoints.iter().filter(|c| c.what == w).count();
    assert_eq!(what(CheckpointWhat::Completed), count(&report, |e| matches!(e, Event::CheckpointCompleted { .. })));
    assert_eq!(what(CheckpointWhat::Triggered), count(&report, |e| matches!(e, Event::CheckpointTriggered { .. })));
    assert_eq!(what(CheckpointWhat::Restored), count(&report, |e| matches!(e, Event::Restoring { .. })));
    assert!(what(CheckpointWhat::Restored) >= 1, "{replay}");
    let restarts = count(&report, |e| matches!(e, Event::JobStatusChanged { to: JobStatus::Restarting, .. }));
    assert_eq!(data.restarts.len(), restarts);
    assert!(restarts >= 1, "{replay}");
    assert_eq!(data.windows, report.oracle.rows);
    assert!(data.first_wrong.is_none(), "a passing run, {replay}");
}

#[test]
fn the_embedded_data_carries_late_drops_and_the_first_wrong_moment() {
    let report = run(&flinksim::bisect::strict(&scenario("pitfalls/idle-partition-late-drops")), 1);
    let (page, data) = page_of(&report);
    let dropped: u64 = report
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Event::LateDropped { count, .. } => Some(*count),
            _ => None,
        })
        .sum();
    assert!(dropped > 0);
    assert_eq!(data.late_drops.iter().map(|d| d.count).sum::<u64>(), dropped);
    let first = data.first_wrong.as_ref().expect("judged strictly, the late drops are wrong");
    assert_eq!(Some(first), report.invariants.first());
    let named = format!("First wrong at {:.3} s (trace line {})", first.at.as_secs_f64(), first.index + 1);
    assert!(page.contains(&named), "the page names it: {named}");
    assert_eq!(first.at.as_secs(), 80, "the first drop follows the heal of the partition at 1:20");
}

#[test]
fn the_page_parses_and_fetches_nothing() {
    let report = run(&scenario("failure-recovery"), 1);
    let (page, data) = page_of(&report);
    let dom = html5ever::parse_document(RcDom::default(), Default::default()).one(page.as_str());
    assert!(dom.errors.borrow().is_empty(), "the HTML parser found errors: {:?}", dom.errors.borrow());
    let all = elements(&dom.document);
    let with_id = |tag: &str, id: &str| -> Vec<&Handle> {
        all.iter().filter(|e| name(e) == tag && attribute(e, "id").as_deref() == Some(id)).collect()
    };
    assert_eq!(with_id("svg", "timeline").len(), 1);
    let script = with_id("script", "run-data");
    assert_eq!(script.len(), 1);
    assert_eq!(attribute(script[0], "type").as_deref(), Some("application/json"));
    let table = with_id("table", "windows");
    assert_eq!(table.len(), 1);
    let rows: Vec<Handle> = elements(table[0])
        .into_iter()
        .filter(|e| name(e) == "tbody")
        .flat_map(|body| elements(&body).into_iter().filter(|e| name(e) == "tr"))
        .collect();
    assert_eq!(rows.len(), data.windows.len());
    let first_row: Vec<String> =
        elements(&rows[0]).iter().filter(|e| name(e) == "td").take(9).map(text).collect();
    // Rows that are not ok come first.
    let row = data.windows.iter().find(|r| !report_html::is_ok(r)).unwrap_or(&data.windows[0]);
    assert_eq!(first_row[1], row.page.as_str());
    assert_eq!(first_row[3], row.recount.to_string());
    // Nothing from the network: no element loads a URL, and neither the style nor the script
    // reaches out.
    for element in &all {
        for forbidden in ["src", "href", "srcset", "action"] {
            assert!(attribute(element, forbidden).is_none(), "<{}> has {forbidden}", name(element));
        }
        assert_ne!(name(element), "link");
        assert_ne!(name(element), "iframe");
    }
    for forbidden in ["url(", "@import", "fetch(", "XMLHttpRequest", "import(", "https:"] {
        assert!(!page.contains(forbidden), "the page contains {forbidden}");
    }
}

/// The elements at and under `node`, in document order.
fn elements(node: &Handle) -> Vec<Handle> {
    let mut found = Vec::new();
    let mut stack = vec![node.clone()];
    while let Some(node) = stack.pop() {
        if matches!(node.data, NodeData::Element { .. }) {
            found.push(node.clone());
        }
        stack.extend(node.children.borrow().iter().rev().cloned());
    }
    found
}

/// An element's tag name.
fn name(element: &Handle) -> String {
    match &element.data {
        NodeData::Element { name, .. } => name.local.to_string(),
        _ => String::new(),
    }
}

/// An element's attribute, if it has it.
fn attribute(element: &Handle, wanted: &str) -> Option<String> {
    match &element.data {
        NodeData::Element { attrs, .. } => {
            attrs.borrow().iter().find(|a| &*a.name.local == wanted).map(|a| a.value.to_string())
        }
        _ => None,
    }
}

/// The text under a node, concatenated.
fn text(node: &Handle) -> String {
    let mut out = String::new();
    let mut stack = vec![node.clone()];
    while let Some(node) = stack.pop() {
        if let NodeData::Text { contents } = &node.data {
            out.push_str(&contents.borrow());
        }
        stack.extend(node.children.borrow().iter().rev().cloned());
    }
    out
}

/// A run the scenario accepts with notes (here a zombie's transactions the oracle fenced to judge
/// the windows past them) lists them on the page, as `run-scenario` prints them.
#[test]
fn the_page_lists_the_oracles_notes() {
    let report = run(&scenario("pitfalls/zombie-transaction"), 1);
    let (page, _) = page_of(&report);
    assert!(report.passed() && !report.oracle.fenced.is_empty(), "replay: cargo xtask run-scenario pitfalls/zombie-transaction --seed 1");
    assert!(page.contains("<ul class=\"notes\">"), "the page has a list of notes");
    assert!(page.contains("the oracle fenced click-event-count-"), "the page names what the oracle fenced");
}
