//! House rules that keep runs deterministic, checked in code (rust-analyzer's tidy): engine/
//! and sim/ (their tests included) must not reach for wall-clock time (under any name), OS
//! threads, unseeded randomness, hash-ordered iteration, or tokio primitives that draw from
//! tokio's process-global RNG. Wall-clock time is xtask's alone. CI runs the test command
//! the README gives a newcomer, unchanged. And within each crate no files import each other in a
//! loop: a layer below never imports a layer above.

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

/// The module a source file holds, as the path segments below its crate's root (`kafka/log.rs`
/// and `kafka/log/mod.rs` are `["kafka", "log"]`; `lib.rs` and `main.rs` are the root, `[]`).
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(root).expect("a source file below its crate's root");
    let mut segments: Vec<String> = relative.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    let last = segments.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        segments.push(stem.to_owned());
    }
    segments
}

/// Every path a file's code names through `crate::`, `super::` or `self::`, in `use` groups
/// too, as absolute segments from the crate's root; `module` is the file's own module. Comments
/// and the file's `mod tests` are left out: a test may reach anywhere. (A `mod.rs` naming its
/// own children without `self::` goes down the tree, never round a loop, and is not read.)
fn named_paths(text: &str, module: &[String], is_module: &dyn Fn(&[String]) -> bool) -> Vec<Vec<String>> {
    let code: String = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or("")
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    // `super` of module `a::b` is `a`, whether its file is `a/b.rs` or `a/b/mod.rs`.
    let parent = |levels: usize| module[..module.len().saturating_sub(levels)].to_vec();
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut at = 0;
    while at < code.len() {
        let starts = ["crate::", "super::", "self::"].iter().find(|p| bytes[at..].starts_with(p.as_bytes()));
        let Some(start) = starts.filter(|_| at == 0 || !word(bytes[at - 1])) else {
            at += 1;
            continue;
        };
        let mut base = match *start {
            "crate::" => Vec::new(),
            "super::" => parent(1),
            _ => module.to_vec(),
        };
        let mut rest = &code[at + start.len()..];
        while let Some(after) = rest.strip_prefix("super::") {
            base.pop();
            rest = after;
        }
        expand(rest, base, &mut found);
        at += start.len();
    }
    // A module brought in by name (`use super::operator;`) is then named through it
    // (`operator::kafka_source::run`): those paths count too.
    let aliases: Vec<(String, Vec<String>)> = found
        .iter()
        .filter(|path| path.as_slice() != module && is_module(path))
        .filter_map(|path| Some((path.last()?.clone(), path.clone())))
        .collect();
    for (alias, path) in aliases {
        let token = format!("{alias}::");
        let mut from = 0;
        while let Some(offset) = code[from..].find(&token) {
            let at = from + offset;
            if at == 0 || !(word(bytes[at - 1]) || bytes[at - 1] == b':') {
                expand(&code[at + token.len()..], path.clone(), &mut found);
            }
            from = at + token.len();
        }
    }
    found
}

/// The paths `rest` names after `base`: a plain `a::b::C`, or a `use` group `a::{b, c::D}`.
fn expand(rest: &str, mut base: Vec<String>, found: &mut Vec<Vec<String>>) {
    let mut rest = rest;
    loop {
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if name.is_empty() {
            if let Some(group) = rest.strip_prefix('{') {
                // The group's items, split at its top-level commas.
                let (mut depth, mut item_start) = (0, 0);
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            expand(group[item_start..i].trim(), base.clone(), found);
                            return;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            expand(group[item_start..i].trim(), base.clone(), found);
                            item_start = i + 1;
                        }
                        _ => {}
                    }
                }
            }
            found.push(base);
            return;
        }
        rest = &rest[name.len()..];
        if name != "self" {
            base.push(name);
        }
        match rest.strip_prefix("::") {
            Some(after) => rest = after,
            None => {
                found.push(base);
                return;
            }
        }
    }
}

/// The source file whose module is the longest prefix of `path` among `modules`.
fn file_of(path: &[String], modules: &[(Vec<String>, PathBuf)]) -> Option<usize> {
    (0..=path.len()).rev().find_map(|len| modules.iter().position(|(module, _)| module.as_slice() == &path[..len]))
}

/// The groups of a crate's files that import each other in a loop (strongly connected, more
/// than one file), by Tarjan's algorithm over the file-level import graph.
fn import_circles(root: &Path) -> Vec<Vec<PathBuf>> {
    let mut files = Vec::new();
    sources(root, &mut files);
    files.sort();
    let modules: Vec<(Vec<String>, PathBuf)> = files.iter().map(|f| (module_of(root, f), f.clone())).collect();
    let edges: Vec<Vec<usize>> = modules
        .iter()
        .enumerate()
        .map(|(index, (module, file))| {
            let text = std::fs::read_to_string(file).expect("a readable source file");
            let is_module = |path: &[String]| modules.iter().any(|(m, _)| m.as_slice() == path);
            let mut to: Vec<usize> = named_paths(&text, module, &is_module)
                .iter()
                .filter_map(|path| file_of(path, &modules))
                .filter(|&target| target != index)
                .collect();
            to.sort();
            to.dedup();
            to
        })
        .collect();
    // Tarjan, iteratively enough for a few hundred files: recursion depth is the longest chain.
    struct Walk<'a> {
        edges: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        stack: Vec<usize>,
        on_stack: Vec<bool>,
        next: usize,
        circles: Vec<Vec<usize>>,
    }
    fn visit(w: &mut Walk<'_>, v: usize) {
        w.index[v] = Some(w.next);
        w.low[v] = w.next;
        w.next += 1;
        w.stack.push(v);
        w.on_stack[v] = true;
        for &t in &w.edges[v].clone() {
            match w.index[t] {
                None => {
                    visit(w, t);
                    w.low[v] = w.low[v].min(w.low[t]);
                }
                Some(i) if w.on_stack[t] => w.low[v] = w.low[v].min(i),
                Some(_) => {}
            }
        }
        if Some(w.low[v]) == w.index[v] {
            let mut component = Vec::new();
            while let Some(t) = w.stack.pop() {
                w.on_stack[t] = false;
                component.push(t);
                if t == v {
                    break;
                }
            }
            if component.len() > 1 {
                w.circles.push(component);
            }
        }
    }
    let n = modules.len();
    let mut walk =
        Walk { edges: &edges, index: vec![None; n], low: vec![0; n], stack: Vec::new(), on_stack: vec![false; n], next: 0, circles: Vec::new() };
    for v in 0..n {
        if walk.index[v].is_none() {
            visit(&mut walk, v);
        }
    }
    walk.circles.into_iter().map(|c| c.into_iter().map(|i| modules[i].1.clone()).collect()).collect()
}

#[test]
fn use_groups_and_inline_paths_are_read_as_imports() {
    let module = vec!["taskmanager".to_owned(), "task".to_owned()];
    let text = "use super::{control::TaskControl, network::{GateKey, InputGate}};\nuse super::operator;\n\
                fn f() { crate::kafka::log::PartitionLogs::new(); operator::window_counter::run(); } // crate::oracle::Violation\n\
                #[cfg(test)]\nmod tests { use crate::sim::Anything; }\n";
    let is_module = |path: &[String]| path.join("::") == "taskmanager::operator";
    let names: Vec<String> = named_paths(text, &module, &is_module).iter().map(|p| p.join("::")).collect();
    assert_eq!(
        names,
        [
            "taskmanager::control::TaskControl",
            "taskmanager::network::GateKey",
            "taskmanager::network::InputGate",
            "taskmanager::operator",
            "kafka::log::PartitionLogs::new",
            "taskmanager::operator::window_counter::run",
        ]
    );
}

/// A layer below never imports a layer above: within each crate, no files import each other in
/// a loop (what `farm-studio look` draws as a circle). A test module may reach anywhere.
#[test]
fn no_files_import_each_other_in_a_loop() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for crate_root in ["engine/src", "sim/src", "xtask/src"] {
        for circle in import_circles(&root.join(crate_root)) {
            let names: Vec<String> = circle.iter().map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string()).collect();
            found.push(names.join(" <-> "));
        }
    }
    assert!(found.is_empty(), "files that import each other in a loop (move what both need below both):\n{}", found.join("\n"));
}

#[test]
fn two_files_that_import_each_other_are_a_circle_and_a_third_below_them_is_not() {
    let root = std::env::temp_dir().join(format!("flinksim-tidy-circle-{}", std::process::id()));
    std::fs::create_dir_all(root.join("kafka")).expect("a temporary folder");
    let write = |name: &str, text: &str| std::fs::write(root.join(name), text).expect("a temporary file");
    write("lib.rs", "pub mod kafka;\npub mod log;\n");
    write("kafka/mod.rs", "pub mod broker;\npub mod coordinator;\n");
    write("kafka/broker.rs", "use super::coordinator::Coordinator;\nuse crate::log::Log;\n");
    write("kafka/coordinator.rs", "pub fn f() { super::broker::PartitionLogs::new(); }\n");
    write("log.rs", "pub struct Log;\n");
    let circles = import_circles(&root);
    std::fs::remove_dir_all(&root).expect("the temporary folder goes");
    let names: Vec<Vec<String>> = circles
        .iter()
        .map(|c| {
            let mut names: Vec<String> = c.iter().map(|f| f.strip_prefix(&root).unwrap().display().to_string()).collect();
            names.sort();
            names
        })
        .collect();
    assert_eq!(names, [["kafka/broker.rs", "kafka/coordinator.rs"]]);
}
