//! Conservation (docs/oracle.md#processing-time-runs): how the oracle judges a job run without
//! `--event-time`. Its windows are buckets of the TaskManager's clock, so no count is known in
//! advance; instead, per page, the counts of every result sum to the events the job read from
//! `input` (nothing lost, nothing counted twice where the sink promises exactly-once), and every
//! result is one the Counter traced firing, with its events handled while its window was open.

use std::collections::BTreeMap;

use smol_str::SmolStr;

use crate::oracle::{Causes, Observed, OracleReport, RowStatus, Violation, WindowRow};
use crate::processing_time::{Fire, PageBalance, WindowMismatch};
use crate::scenario::Expect;

/// Judges a processing-time run by conservation (see the module doc). Rows list every result,
/// each judged by its largest copy; the violations say what does not add up.
pub fn judge(observed: &Observed, expect: &Expect, causes: &Causes, fires: &[Fire]) -> OracleReport {
    let mut read: BTreeMap<SmolStr, u64> = BTreeMap::new();
    for ((_, page), count) in &observed.input_counts {
        *read.entry(page.clone()).or_default() += count;
    }
    let mut counted: BTreeMap<SmolStr, u64> = read.keys().map(|page| (page.clone(), 0)).collect();
    for ((_, page), counts) in &observed.output_counts {
        *counted.entry(page.clone()).or_default() += counts.iter().sum::<u64>();
    }
    // No copy of a processing-time window has a cause the oracle names.
    let accepts_copies = expect.duplicates.accepts_any_copies();
    let accepts_loss = expect.loss.accepts_any_loss();
    let (mut lost, mut twice) = (Vec::new(), Vec::new());
    for (page, counted) in counted {
        let balance = PageBalance { read: read.get(&page).copied().unwrap_or(0), page, counted };
        if balance.counted < balance.read {
            lost.push(balance);
        } else if balance.counted > balance.read {
            twice.push(balance);
        }
    }
    // Every copy in `output` must be a fire the trace records, and every fire must match its
    // window; a copy is matched to a fire of the same window, page and count.
    let mut traced: BTreeMap<(i64, SmolStr, u64), Vec<&Fire>> = BTreeMap::new();
    for fire in fires {
        traced.entry((fire.window_start_ms, fire.page.clone(), fire.count)).or_default().push(fire);
    }
    let mut mismatched: Vec<WindowMismatch> = fires
        .iter()
        .filter(|fire| !fire.matches_its_window())
        .map(|fire| WindowMismatch {
            window_start_ms: fire.window_start_ms,
            page: fire.page.clone(),
            count: fire.count,
            fire: Some(fire.clone()),
        })
        .collect();
    let mut rows = Vec::new();
    for ((window_start_ms, page), counts) in &observed.output_counts {
        for count in counts {
            if !traced.contains_key(&(*window_start_ms, page.clone(), *count)) {
                mismatched.push(WindowMismatch {
                    window_start_ms: *window_start_ms,
                    page: page.clone(),
                    count: *count,
                    fire: None,
                });
            }
        }
        let judged = counts.iter().max().copied().unwrap_or(0);
        rows.push(WindowRow {
            window_start_ms: *window_start_ms,
            page: page.clone(),
            counts: counts.clone(),
            recount: judged,
            counted: judged,
            late: 0,
            lost: 0,
            unaccounted: 0,
            status: if counts.len() > 1 { RowStatus::Duplicated } else { RowStatus::Ok },
            split_by_drain: false,
            expected: counts.len() <= 1 || accepts_copies,
        });
    }
    let mut violations = Vec::new();
    let mut notes = vec![format!(
        "processing-time windows: judged by conservation, per page the counts of every result against \
         the events read ({} results, {} fires traced)",
        observed.output_records,
        fires.len()
    )];
    if observed.output_counts.is_empty() {
        violations.push(Violation::NothingRan);
    }
    if !lost.is_empty() {
        let violation = Violation::NotConserved { pages: lost };
        if accepts_loss {
            notes.push(format!("{violation} (allowed by the scenario)"));
        } else {
            violations.push(violation);
        }
    }
    if !twice.is_empty() {
        let violation = Violation::NotConserved { pages: twice };
        if accepts_copies {
            notes.push(format!("{violation} (allowed by the scenario)"));
        } else {
            violations.push(violation);
        }
    }
    if !mismatched.is_empty() {
        violations.push(Violation::WindowNotMatched { results: mismatched });
    }
    crate::oracle::reading_problems(observed, &mut notes, &mut violations);
    // A transaction the exactly-once sink left open holds read_committed readers of output
    // whatever the windows (docs/oracle.md#processing-time-runs).
    let stuck = crate::oracle::judge_last_stable_offset(observed, expect, causes, &mut violations, &mut notes);
    OracleReport {
        rows,
        input_events: observed.input_events,
        output_records: observed.output_records,
        gaps: Vec::new(),
        short_at_source: Vec::new(),
        violations,
        notes,
        accepted: Vec::new(),
        causes: causes.clone(),
        output_partitions: observed.output_partitions.clone(),
        stuck,
        fenced: observed.fenced.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{DuplicatesExpectation, LastStableOffsetExpectation};

    fn fire(start: i64, page: &str, count: u64, handled: (i64, i64), fired_ms: i64) -> Fire {
        Fire { window_start_ms: start, page: page.into(), count, handled_ms: Some(handled), fired_ms }
    }

    /// Input: 10 events of /help and 5 of /shop (event-time windows do not matter here).
    fn observed(outputs: &[(i64, &str, u64)]) -> Observed {
        let mut observed = Observed::default();
        observed.input_counts.insert((0, "/help".into()), 10);
        observed.input_counts.insert((0, "/shop".into()), 5);
        observed.input_events = 15;
        for (start, page, count) in outputs {
            observed.output_counts.entry((*start, SmolStr::new(page))).or_default().push(*count);
            observed.output_records += 1;
        }
        observed
    }

    fn fires() -> Vec<Fire> {
        vec![
            fire(0, "/help", 4, (100, 14_000), 14_999),
            fire(15_000, "/help", 6, (15_000, 29_999), 29_999),
            fire(0, "/shop", 5, (0, 14_999), 15_002),
        ]
    }

    #[test]
    fn counts_that_sum_to_what_was_read_per_page_pass() {
        let observed = observed(&[(0, "/help", 4), (15_000, "/help", 6), (0, "/shop", 5)]);
        let report = judge(&observed, &Expect::default(), &Causes::default(), &fires());
        assert!(report.passed(), "{:?}", report.violations);
        assert_eq!(report.rows.len(), 3);
    }

    /// An exactly-once sink whose transaction has been open since 60 s, holding `output`'s
    /// partition 1 at offset 5 of 9 when the oracle read at 180 s.
    fn left_open(observed: &mut Observed) -> Causes {
        use crate::oracle::{OpenTransaction, OutputPartition};
        use flinksim_engine::protocol::kafka::TransactionHandle;
        observed.ended_at = std::time::Duration::from_secs(180);
        observed.output_partitions = vec![
            OutputPartition { partition: 0, high_watermark: 2, last_stable_offset: 2, read_uncommitted: 2, read_committed: 2 },
            OutputPartition { partition: 1, high_watermark: 9, last_stable_offset: 5, read_uncommitted: 8, read_committed: 5 },
        ];
        observed.open_transactions = vec!["click-event-count-1-60".into()];
        let transaction = TransactionHandle { transactional_id: "click-event-count-1-60".into(), producer_id: 3, epoch: 0 };
        let first_write = std::time::Duration::from_secs(60);
        let open = OpenTransaction { transaction, task: "ClickEventStatistics Sink (2/2)".into(), first_write, results: 3, zombie: None };
        Causes { open_at_end: vec![open], ..Causes::default() }
    }

    #[test]
    fn a_transaction_left_open_is_a_stuck_last_stable_offset_whatever_the_windows() {
        let mut observed = observed(&[(0, "/help", 4), (15_000, "/help", 6), (0, "/shop", 5)]);
        let causes = left_open(&mut observed);
        let report = judge(&observed, &Expect::default(), &causes, &fires());
        let [Violation::LastStableOffsetStuck(stuck)] = report.violations.as_slice() else {
            panic!("{:?}", report.violations)
        };
        assert_eq!(stuck.partitions.iter().map(|p| p.partition).collect::<Vec<_>>(), [1]);
        assert_eq!(report.stuck.as_ref(), Some(stuck));
        // A scenario that expects it is told so, and one that expects it in vain fails.
        let expect = Expect { last_stable_offset: LastStableOffsetExpectation::Stuck, ..Expect::default() };
        assert!(judge(&observed, &expect, &causes, &fires()).passed());
        let clean = judge(&observed_clean(), &expect, &Causes::default(), &fires());
        assert!(!clean.passed(), "a stuck last stable offset was required and absent");
    }

    fn observed_clean() -> Observed {
        observed(&[(0, "/help", 4), (15_000, "/help", 6), (0, "/shop", 5)])
    }

    #[test]
    fn a_missing_result_is_loss_and_a_repeated_one_is_counted_twice() {
        let observed = observed(&[(0, "/help", 4), (0, "/shop", 5), (0, "/shop", 5)]);
        let report = judge(&observed, &Expect::default(), &Causes::default(), &fires());
        let [Violation::NotConserved { pages: lost }, Violation::NotConserved { pages: twice }] =
            report.violations.as_slice()
        else {
            panic!("{:?}", report.violations)
        };
        assert_eq!(lost[0].to_string(), "/help read 10, counted 4 (6 lost)");
        assert_eq!(twice[0].to_string(), "/shop read 5, counted 10 (5 counted twice)");
        // At-least-once accepts the copies, never the loss.
        let expect = Expect { duplicates: DuplicatesExpectation::Allowed, ..Expect::default() };
        let report = judge(&observed, &expect, &Causes::default(), &fires());
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    }

    #[test]
    fn a_result_outside_the_time_its_events_were_handled_is_named() {
        let observed = observed(&[(0, "/help", 4), (15_000, "/help", 6), (0, "/shop", 5)]);
        let mut fires = fires();
        fires[1].handled_ms = Some((14_990, 29_000)); // counted into the next window
        let report = judge(&observed, &Expect::default(), &Causes::default(), &fires);
        let [Violation::WindowNotMatched { results }] = report.violations.as_slice() else {
            panic!("{:?}", report.violations)
        };
        assert_eq!(results[0].to_string(), "[15000, 30000) /help count 6: its events were handled from 14990 to 29000, and it fired at 29999");
        // A result no Counter traced firing.
        let report = judge(&observed, &Expect::default(), &Causes::default(), &super::tests::fires()[..2]);
        let [Violation::WindowNotMatched { results }] = report.violations.as_slice() else {
            panic!("{:?}", report.violations)
        };
        assert_eq!(results[0].to_string(), "[0, 15000) /shop count 5: no Counter traced firing it");
    }
}
