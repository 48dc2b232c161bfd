//! Where a scenario file defines its keys and tables, read with the TOML crate's own parser
//! (`toml_parser`) before any meaning is given to them. The `toml` crate reports a key set twice
//! only as "duplicate key", and `[step]` as "invalid type: map, expected a sequence"; this scan
//! finds those two mistakes by the file's structure, so that their errors can name the key, the
//! line where it was first set, and the fix.

use std::collections::BTreeMap;
use std::ops::Range;

use toml_parser::parser::{Event, EventKind, RecursionGuard, parse_document};
use toml_parser::{Raw, Source};

/// How deeply nested a value may be before the scan stops (the `toml` crate's own limit).
const DEPTH_MAX: u32 = 80;

/// A key or a table set a second time.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Duplicate {
    /// The dotted path from the document's root, e.g. `cluster.slots`.
    pub path: String,
    /// Whether the second definition is a `[table]` header rather than `key = value`.
    pub table: bool,
    /// The byte span of the second definition's last key: where `toml` points.
    pub span: Range<usize>,
    /// The byte offset of the first definition.
    pub first: usize,
}

/// What the scan found.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    /// The first key or table set twice, if any.
    pub duplicate: Option<Duplicate>,
    /// The `[table]` headers (not the `[[array]]` ones): the dotted path and the header's span.
    pub tables: Vec<(String, Range<usize>)>,
}

/// Scans `text`; a document that does not parse is scanned up to where it stops making sense.
pub(crate) fn scan(text: &str) -> Layout {
    let source = Source::new(text);
    let tokens = source.lex().into_vec();
    let mut events: Vec<Event> = Vec::with_capacity(tokens.len());
    parse_document(&tokens, &mut RecursionGuard::new(&mut events, DEPTH_MAX), &mut ());
    let mut scanner = Scanner {
        source,
        layout: Layout::default(),
        key: Vec::new(),
        key_span: 0..0,
        header_start: 0,
        table: Vec::new(),
        inline: Vec::new(),
        arrays: 0,
        pending: None,
        defined: BTreeMap::new(),
    };
    for event in &events {
        scanner.event(event);
    }
    scanner.layout
}

/// The scan's state, event by event.
struct Scanner<'i> {
    source: Source<'i>,
    layout: Layout,
    /// The key being read (its dotted parts) and the span of its last part.
    key: Vec<String>,
    key_span: Range<usize>,
    /// Where the `[` of the header being read is.
    header_start: usize,
    /// The table that `key = value` lines go to.
    table: Vec<String>,
    /// The paths of the open inline tables, innermost last.
    inline: Vec<Vec<String>>,
    /// How many arrays are open: keys inside arrays (in inline tables) are not scanned.
    arrays: usize,
    /// The path of the key whose value comes next, for an inline table.
    pending: Option<Vec<String>>,
    /// Every path defined so far, with the offset of its definition.
    defined: BTreeMap<Vec<String>, usize>,
}

impl Scanner<'_> {
    fn event(&mut self, event: &Event) {
        let span = event.span().start()..event.span().end();
        match event.kind() {
            EventKind::StdTableOpen | EventKind::ArrayTableOpen => {
                self.header_start = span.start;
                self.key.clear();
            }
            EventKind::SimpleKey if self.arrays == 0 => {
                let raw = Raw::new_unchecked(&self.source.input()[span.clone()], event.encoding(), event.span());
                let mut decoded = String::new();
                raw.decode_key(&mut decoded, &mut ());
                self.key.push(decoded);
                self.key_span = span;
            }
            EventKind::StdTableClose => {
                let path = std::mem::take(&mut self.key);
                self.layout.tables.push((path.join("."), self.header_start..span.end));
                self.define(path.clone(), true);
                self.table = path;
            }
            EventKind::ArrayTableClose => {
                let path = std::mem::take(&mut self.key);
                // Each `[[array]]` header starts a new table: what the previous one held is gone.
                self.defined.retain(|defined, _| !(defined.len() > path.len() && defined.starts_with(&path)));
                self.table = path;
            }
            EventKind::KeyValSep if self.arrays == 0 => {
                let base = self.inline.last().unwrap_or(&self.table);
                let path: Vec<String> = base.iter().cloned().chain(std::mem::take(&mut self.key)).collect();
                self.define(path.clone(), false);
                self.pending = Some(path);
            }
            EventKind::InlineTableOpen if self.arrays == 0 => {
                if let Some(path) = self.pending.take() {
                    self.inline.push(path);
                }
            }
            EventKind::InlineTableClose if self.arrays == 0 => {
                self.inline.pop();
            }
            EventKind::ArrayOpen => self.arrays += 1,
            EventKind::ArrayClose => self.arrays = self.arrays.saturating_sub(1),
            EventKind::Scalar => self.pending = None,
            _ => {}
        }
    }

    /// Records `path` as defined by the key just read, noting the first duplicate.
    fn define(&mut self, path: Vec<String>, table: bool) {
        let at = self.key_span.start;
        match self.defined.get(&path) {
            Some(&first) => {
                if self.layout.duplicate.is_none() {
                    let span = self.key_span.clone();
                    self.layout.duplicate = Some(Duplicate { path: path.join("."), table, span, first });
                }
            }
            None => {
                self.defined.insert(path, at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duplicate(text: &str) -> Option<(String, bool, &str, usize)> {
        scan(text).duplicate.map(|d| (d.path, d.table, &text[d.span], d.first))
    }

    #[test]
    fn a_key_set_twice_in_the_same_table_is_found_with_both_places() {
        let text = "name = \"x\"\n[cluster]\nslots = 2\nslots = 3\n";
        assert_eq!(duplicate(text), Some(("cluster.slots".into(), false, "slots", 21)));
        assert_eq!(duplicate("name = 1\n\"name\" = 2\n"), Some(("name".into(), false, "\"name\"", 0)));
        assert_eq!(duplicate("a.b = 1\na.b = 2\n").map(|d| d.0), Some("a.b".into()));
        assert_eq!(duplicate("at = { min = 1, min = 2 }\n").map(|d| d.0), Some("at.min".into()));
    }

    #[test]
    fn a_table_opened_twice_is_found() {
        let text = "[job]\nrun = 1\n\n[job]\nsink = 2\n";
        assert_eq!(duplicate(text), Some(("job".into(), true, "job", 1)));
    }

    #[test]
    fn the_same_key_in_two_tables_or_two_array_entries_is_no_duplicate() {
        for text in [
            "[cluster]\nslots = 2\n[generator]\nslots = 2\n",
            "[[step]]\nat = 1\nrun = 1\n[[step]]\nat = 2\nrun = 2\n",
            "[[step]]\nat = { min = 1, max = 2 }\n[[step]]\nat = { min = 1, max = 2 }\n",
            "list = [{ a = 1 }, { a = 2 }]\n",
            "[a.b]\nx = 1\n[a]\ny = 1\n",
        ] {
            assert_eq!(duplicate(text), None, "{text}");
        }
    }

    #[test]
    fn table_headers_are_listed_with_their_spans() {
        let text = "name = 1\n[step]\nat = 1\n[[step]]\n[a . b]\n";
        let tables: Vec<(String, &str)> = scan(text).tables.into_iter().map(|(p, s)| (p, &text[s])).collect();
        assert_eq!(tables, [("step".to_owned(), "[step]"), ("a.b".to_owned(), "[a . b]")]);
    }
}
