//! The playground's record formats (docs/model/job.md#record-formats): `ClickEvent` on `input`,
//! `ClickEventStatistics` on `output`, as JSON with dates in Java's `dd-MM-yyyy hh:mm:ss:SSS`
//! (UTC), quirks included.
//!
//! This is the per-record hot path: the writers append to a caller's reused `Vec<u8>` and the
//! parsers allocate nothing but the page (a [`SmolStr`], inline up to 23 bytes). No serde_json.
//!
//! The parsers are strict: they accept exactly the two shapes below, fields in the shown order,
//! with optional JSON whitespace between tokens, and reject everything else with a
//! [`FormatError`] (never a panic, whatever the bytes). Strings are not unescaped: the playground's
//! pages never need escaping, so a string containing `\`, a control character or (necessarily
//! then) an escaped `"` is rejected, and the writers emit pages verbatim (a page must not contain
//! `"` or `\` to round-trip).
//!
//! ```text
//! {"timestamp":"01-01-1970 12:00:00:015","page":"/help"}
//! {"windowStart":"01-01-1970 12:00:00:000","windowEnd":"01-01-1970 12:00:15:000","page":"/help","count":1000}
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::protocol::key_group::{ascii_java_string_hash, java_string_hash};

/// The generator's pages, in its rotation order (docs/model/job.md#the-generator).
pub const PAGES: [&str; 6] = ["/help", "/index", "/shop", "/jobs", "/about", "/news"];

/// [`PAGES`] laid out one per eight bytes of a single static, which the events' pages point
/// into (see [`known_page_str`]): a page's place is then its offset over eight, where finding
/// it among six separate strings cost about 40 instructions per call (measured), twice per
/// event. A static has one address in every crate, as a constant's text need not.
static PAGE_SLOTS: [u8; PAGE_SLOT * 6] = {
    let mut slots = [0; PAGE_SLOT * 6];
    let mut i = 0;
    while i < PAGES.len() {
        let page = PAGES[i].as_bytes();
        let mut j = 0;
        while j < page.len() {
            slots[i * PAGE_SLOT + j] = page[j];
            j += 1;
        }
        i += 1;
    }
    slots
};

/// The bytes per page in [`PAGE_SLOTS`]: room for the longest page.
const PAGE_SLOT: usize = 8;

/// `PAGES[i]`, as the slice of [`PAGE_SLOTS`] every event of the generator's carries.
static KNOWN_PAGES: [&str; 6] = {
    let mut known = [""; 6];
    let mut i = 0;
    while i < PAGES.len() {
        let (_, from) = PAGE_SLOTS.split_at(i * PAGE_SLOT);
        let (page, _) = from.split_at(PAGES[i].len());
        known[i] = match std::str::from_utf8(page) {
            Ok(page) => page,
            Err(_) => panic!("the pages are ASCII"),
        };
        i += 1;
    }
    known
};

/// The page `PAGES[index]` as the generator's events carry it, which
/// [`ClickEvent::known_page_index`] recognises (it panics past [`PAGES`]).
#[inline]
pub fn known_page_str(index: usize) -> SmolStr {
    SmolStr::new_static(KNOWN_PAGES[index])
}

/// Each page's Java `hashCode`, worked out at compile time. Java's `String` caches its hash;
/// the job hashes every event's page twice (on the keyBy edge and for the window's state).
const PAGE_HASH_CODES: [i32; 6] = {
    let mut codes = [0; 6];
    let mut i = 0;
    while i < PAGES.len() {
        codes[i] = ascii_java_string_hash(PAGES[i].as_bytes());
        i += 1;
    }
    codes
};

/// The job's tumbling event-time window: 15 s (docs/model/job.md#event-time-and-watermarks).
pub const WINDOW_MS: i64 = 15_000;

const MS_PER_DAY: i64 = 86_400_000;

/// One click: the generator's record on `input`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickEvent {
    /// Event time, milliseconds since the epoch (UTC).
    pub timestamp_ms: i64,
    /// The page clicked, e.g. `/help`.
    pub page: SmolStr,
}

/// Event time advances 15 ms per event of one page (15000 ms / 1000 events,
/// docs/model/job.md#the-generator).
const EVENT_SPACING_MS: i64 = 15;

impl ClickEvent {
    /// The generator's event `k` (from 0), in closed form: page `PAGES[k % 6]`, timestamp
    /// `15 * (k / 6)` ms. (Saturates at `i64::MAX` for k beyond 2^63 / 15 * 6, far past any run.)
    pub fn nth(k: u64) -> ClickEvent {
        ClickEvent {
            timestamp_ms: Self::nth_timestamp_ms(k),
            page: known_page_str(Self::nth_page(k)),
        }
    }

    /// The timestamp of [`nth(k)`](Self::nth), without making the event.
    pub fn nth_timestamp_ms(k: u64) -> i64 {
        let round = i64::try_from(k / PAGES.len() as u64).unwrap_or(i64::MAX);
        round.saturating_mul(EVENT_SPACING_MS)
    }

    /// The page of [`nth(k)`](Self::nth), as its place in [`PAGES`].
    pub fn nth_page(k: u64) -> usize {
        (k % PAGES.len() as u64) as usize
    }

    /// Java's `hashCode` of the page, the job's key: looked up when the page is one of the
    /// generator's (the same static string, as the generator and the parser make it).
    pub fn page_hash_code(&self) -> i32 {
        match self.known_page_index() {
            Some(i) => PAGE_HASH_CODES[i],
            None => java_string_hash(&self.page),
        }
    }

    /// The page's place in [`PAGES`] if it is the generator's static string for it, as the
    /// generator and the parser make it ([`known_page_str`]; a copy of the same text is not
    /// recognised).
    #[inline]
    pub fn known_page_index(&self) -> Option<usize> {
        let page = self.page.as_str();
        // Wrapping: a page elsewhere gives an offset past the slots (or not at a slot's start).
        let offset = (page.as_ptr() as usize).wrapping_sub(PAGE_SLOTS.as_ptr() as usize);
        let index = offset / PAGE_SLOT;
        (offset.is_multiple_of(PAGE_SLOT) && index < PAGES.len() && page.len() == PAGES[index].len())
            .then_some(index)
    }

    /// The longest JSON [`write_json`](Self::write_json) writes for one of the generator's
    /// events (a four-digit year, the longest page): 55 bytes.
    pub const MAX_JSON_BYTES: usize = br#"{"timestamp":"","page":"/index"}"#.len() + DATE_LEN;

    /// Appends `{"timestamp":"<date>","page":"<page>"}` to `out` (54 or 55 bytes for the
    /// playground's pages). The page is written verbatim, unescaped.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.write_json_with(&mut DateWriter::default(), out);
    }

    /// [`write_json`](Self::write_json) for a writer of many events, which formats each
    /// minute's date once.
    pub fn write_json_with(&self, dates: &mut DateWriter, out: &mut Vec<u8>) {
        // Grown at most once, not per piece.
        out.reserve(Self::MAX_JSON_BYTES - "/index".len() + self.page.len());
        out.extend_from_slice(br#"{"timestamp":""#);
        dates.write(self.timestamp_ms, out);
        out.extend_from_slice(br#"","page":""#);
        out.extend_from_slice(self.page.as_bytes());
        out.extend_from_slice(br#""}"#);
    }

    /// Parses exactly the shape [`write_json`](Self::write_json) writes (whitespace between
    /// tokens allowed). The timestamp goes through [`parse_date`], so hours 13–23 read back
    /// 12 hours early (the playground's `hh` quirk).
    pub fn parse_json(bytes: &[u8]) -> Result<ClickEvent, FormatError> {
        Self::parse_json_with(&mut DateReader::default(), bytes)
    }

    /// [`parse_json`](Self::parse_json) for a reader of many events, which parses each
    /// minute's date once. Inlined into the source and the oracle, which saved the call and
    /// the copy of its result: about 6 instructions per event (measured).
    // Always: with `parse_generated` inline in it, the compiler stopped inlining it into the
    // source, where the call cost 15 instructions a record (a callgrind profile).
    #[inline(always)]
    pub fn parse_json_with(
        dates: &mut DateReader,
        bytes: &[u8],
    ) -> Result<ClickEvent, FormatError> {
        match Self::parse_generated(dates, bytes) {
            Some((timestamp_ms, page)) => {
                Ok(ClickEvent { timestamp_ms, page: known_page_str(page) })
            }
            None => Self::parse_other(dates, bytes),
        }
    }

    /// [`parse_json_with`](Self::parse_json_with) for a record not of the generator's shape.
    #[inline(never)]
    fn parse_other(dates: &mut DateReader, bytes: &[u8]) -> Result<ClickEvent, FormatError> {
        match Self::parse_compact(dates, bytes) {
            Some(event) => Ok(event),
            None => Self::parse_tokens(bytes),
        }
    }

    /// The general parser behind [`parse_json`](Self::parse_json): token by token.
    fn parse_tokens(bytes: &[u8]) -> Result<ClickEvent, FormatError> {
        let mut p = Parser::new(bytes, "click event");
        p.punct(b'{', "`{`")?;
        p.key(b"timestamp", "key \"timestamp\"")?;
        let timestamp_ms = p.date()?;
        p.punct(b',', "`,` after timestamp")?;
        p.key(b"page", "key \"page\"")?;
        let page = p.page()?;
        p.punct(b'}', "`}` after page")?;
        p.end()?;
        Ok(ClickEvent { timestamp_ms, page })
    }

    /// The shape every record on `input` has, read at fixed offsets: exactly what
    /// [`write_json`](Self::write_json) writes for a four-digit year. `None` hands the input to
    /// the token parser, which also accepts whitespace and says what is wrong with bad input.
    /// A record of the generator's own shape is read by [`parse_generated`](Self::parse_generated)
    /// first; this reads it too.
    fn parse_compact(dates: &mut DateReader, bytes: &[u8]) -> Option<ClickEvent> {
        let page = bytes.get(COMPACT_PAGE_AT..)?.strip_suffix(EVENT_TAIL)?;
        let (head, rest) = bytes.split_at(EVENT_HEAD.len());
        let (date, rest) = rest.split_at(DATE_LEN);
        if head != EVENT_HEAD || !rest.starts_with(EVENT_MIDDLE) {
            return None;
        }
        // The generator's pages are known: no character to check, no UTF-8 check, no copy.
        let page = match known_page(bytes) {
            Some(known) => known_page_str(known),
            None if page.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20) => return None,
            None => SmolStr::new(std::str::from_utf8(page).ok()?),
        };
        let timestamp_ms = dates.read(date).ok()?;
        Some(ClickEvent { timestamp_ms, page })
    }
}

/// `{"timestamp":"`: what a ClickEvent's JSON opens with, up to its date.
const EVENT_HEAD: &[u8] = br#"{"timestamp":""#;
/// `","page":"`: what a ClickEvent's JSON has between its date and its page.
const EVENT_MIDDLE: &[u8] = br#"","page":""#;
/// `"}`: what a ClickEvent's JSON closes with, after its page.
const EVENT_TAIL: &[u8] = br#""}"#;

/// Writes the generator's events (pages from [`PAGES`]) exactly as
/// [`ClickEvent::write_json`] does, keeping each page's whole record and rewriting only its date
/// when the timestamp changes: the six pages share a timestamp, so a date is formatted once per
/// six events and a record is a copy of 23 bytes into a kept one (a callgrind profile: writing
/// each event afresh cost 150 instructions, 2% of a run).
#[derive(Clone, Debug, Default)]
pub struct ClickEventWriter {
    dates: DateWriter,
    /// The last timestamp formatted and its date. `DateWriter` keeps its last date too, but
    /// asking it again for each page (a clear and a copy) cost 30 instructions per event.
    date_ms: Option<i64>,
    date: Vec<u8>,
    /// Each page's record as last written, and its timestamp.
    records: [(Option<i64>, Vec<u8>); PAGES.len()],
}

impl ClickEventWriter {
    /// The JSON of the event of page `PAGES[page]` at `timestamp_ms`, valid until the next
    /// write. `page` is a place in [`PAGES`] (it panics past them).
    // Always inlined into the generator's loop: as a call it cost 27 instructions an event
    // more (a callgrind profile).
    #[inline(always)]
    pub fn write(&mut self, timestamp_ms: i64, page: usize) -> &[u8] {
        let (stamped, record) = &mut self.records[page];
        if *stamped == Some(timestamp_ms) {
            return record;
        }
        if self.date_ms != Some(timestamp_ms) {
            self.date.clear();
            self.dates.write(timestamp_ms, &mut self.date);
            self.date_ms = Some(timestamp_ms);
        }
        let page_bytes = PAGES[page].as_bytes();
        let date_at = EVENT_HEAD.len()..EVENT_HEAD.len() + self.date.len();
        let len = date_at.end + EVENT_MIDDLE.len() + page_bytes.len() + EVENT_TAIL.len();
        if record.len() == len {
            // Same page, a date of the same length: only the date differs. A four-digit year's
            // date (every one of a run's) is copied as a fixed-size array, in a few moves rather
            // than a call to `memcpy` (15 instructions an event, by a callgrind profile).
            match <&[u8; DATE_LEN]>::try_from(self.date.as_slice()) {
                Ok(date) => {
                    let at = &mut record[EVENT_HEAD.len()..EVENT_HEAD.len() + DATE_LEN];
                    <&mut [u8; DATE_LEN]>::try_from(at).expect("a date's length").copy_from_slice(date);
                }
                Err(_) => record[date_at].copy_from_slice(&self.date),
            }
        } else {
            record.clear();
            record.reserve(len);
            record.extend_from_slice(EVENT_HEAD);
            record.extend_from_slice(&self.date);
            record.extend_from_slice(EVENT_MIDDLE);
            record.extend_from_slice(page_bytes);
            record.extend_from_slice(EVENT_TAIL);
        }
        *stamped = Some(timestamp_ms);
        record
    }
}

impl ClickEvent {
    /// The timestamp and page (its place in [`PAGES`]) of a record of one of the generator's
    /// pages in the shape [`write_json`](Self::write_json) writes for a four-digit year (every
    /// record on `input`), read at fixed offsets with a few eight-byte comparisons; `None` for
    /// anything else, which [`parse_json_with`](Self::parse_json_with) reads (or says what is
    /// wrong with). What it accepts, `parse_json_with` reads as the same event; it makes no
    /// event, so a reader that only counts pages skips the page's string (a callgrind profile:
    /// the source's and the oracle's parsing cost 140 instructions a record, 3% of a run).
    // Inline, across crates too: as a call, in the oracle it cost 13 instructions a record more.
    #[inline]
    pub fn parse_generated(dates: &mut DateReader, bytes: &[u8]) -> Option<(i64, usize)> {
        let page = known_page(bytes)?;
        // The page and what closes the record are checked; the rest is the head, the date and
        // the middle, at fixed offsets of a fixed-size prefix (no bounds to check).
        let fixed: &[u8; COMPACT_PAGE_AT] = bytes.get(..COMPACT_PAGE_AT)?.try_into().ok()?;
        let middle_at = EVENT_HEAD.len() + DATE_LEN;
        if !(eq16(fixed, 0, EVENT_HEAD) && eq16(fixed, middle_at, EVENT_MIDDLE)) {
            return None;
        }
        let date: &[u8; DATE_LEN] = fixed[EVENT_HEAD.len()..middle_at].try_into().unwrap();
        let timestamp_ms = dates.read_known(date)?;
        Some((timestamp_ms, page))
    }
}

/// Whether `bytes` holds `pattern` (8 to 16 bytes) at `at`, by two overlapping eight-byte
/// comparisons rather than a call to `memcmp`.
#[inline]
fn eq16(bytes: &[u8], at: usize, pattern: &[u8]) -> bool {
    debug_assert!((8..=16).contains(&pattern.len()));
    let Some(found) = bytes.get(at..at + pattern.len()) else {
        return false;
    };
    let word = |s: &[u8], from: usize| u64::from_le_bytes(s[from..from + 8].try_into().unwrap());
    let last = pattern.len() - 8;
    word(found, 0) == word(pattern, 0) && word(found, last) == word(pattern, last)
}

/// Where the page starts in a compact record: after `{"timestamp":"<date>","page":"`.
const COMPACT_PAGE_AT: usize = EVENT_HEAD.len() + DATE_LEN + EVENT_MIDDLE.len();

/// The last eight bytes of a compact record of each of [`PAGES`]: `"/help"}`, `/index"}`, ...
/// (every page has five or six bytes).
const PAGE_TAILS: [u64; 6] = {
    let mut tails = [0; 6];
    let mut i = 0;
    while i < PAGES.len() {
        let page = PAGES[i].as_bytes();
        let mut tail = [b'"'; 8];
        tail[7] = b'}';
        let mut at = 0;
        while at < page.len() {
            tail[6 - page.len() + at] = page[at];
            at += 1;
        }
        tails[i] = u64::from_le_bytes(tail);
        i += 1;
    }
    tails
};

/// The generator's page of a compact `record` (its page at [`COMPACT_PAGE_AT`], then `"}`), if
/// it is one, as its place in [`PAGES`]: one eight-byte comparison per page instead of a
/// byte-by-byte one (a callgrind profile: 0.5% of a run, for the job's source and the oracle).
fn known_page(record: &[u8]) -> Option<usize> {
    let tail = record.get(record.len().checked_sub(8)?..)?;
    let tail = u64::from_le_bytes(tail.try_into().ok()?);
    let i = PAGE_TAILS.iter().position(|&known| known == tail)?;
    (record.len() == COMPACT_PAGE_AT + PAGES[i].len() + 2).then_some(i)
}

/// One window's count for one page: the job's record on `output`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickEventStatistics {
    /// The window's start (inclusive), milliseconds since the epoch.
    pub window_start_ms: i64,
    /// The window's end (exclusive), milliseconds since the epoch.
    pub window_end_ms: i64,
    /// The page counted.
    pub page: SmolStr,
    /// Events of `page` in the window.
    pub count: u64,
}

impl ClickEventStatistics {
    /// Appends
    /// `{"windowStart":"<date>","windowEnd":"<date>","page":"<page>","count":<n>}` to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"windowStart":""#);
        write_date(self.window_start_ms, out);
        out.extend_from_slice(br#"","windowEnd":""#);
        write_date(self.window_end_ms, out);
        out.extend_from_slice(br#"","page":""#);
        out.extend_from_slice(self.page.as_bytes());
        out.extend_from_slice(br#"","count":"#);
        write_decimal(self.count, 1, out);
        out.push(b'}');
    }

    /// Parses exactly the shape [`write_json`](Self::write_json) writes (whitespace between
    /// tokens allowed). The count is a JSON unsigned integer (no sign, fraction, exponent or
    /// leading zero) that fits in a `u64`.
    pub fn parse_json(bytes: &[u8]) -> Result<ClickEventStatistics, FormatError> {
        let mut p = Parser::new(bytes, "click event statistics");
        p.punct(b'{', "`{`")?;
        p.key(b"windowStart", "key \"windowStart\"")?;
        let window_start_ms = p.date()?;
        p.punct(b',', "`,` after windowStart")?;
        p.key(b"windowEnd", "key \"windowEnd\"")?;
        let window_end_ms = p.date()?;
        p.punct(b',', "`,` after windowEnd")?;
        p.key(b"page", "key \"page\"")?;
        let page = p.page()?;
        p.punct(b',', "`,` after page")?;
        p.key(b"count", "key \"count\"")?;
        let count = p.count()?;
        p.punct(b'}', "`}` after count")?;
        p.end()?;
        Ok(ClickEventStatistics { window_start_ms, window_end_ms, page, count })
    }
}

/// The start of the 15 s tumbling window holding `timestamp_ms`: `t - t mod 15000`, with the
/// Euclidean remainder so that negative timestamps land in the window below them too.
/// (Saturates at `i64::MIN` for the few timestamps whose window would start below it.)
// Inline: the oracle (another crate) calls it per record.
#[inline]
pub fn window_start(timestamp_ms: i64) -> i64 {
    timestamp_ms.saturating_sub(timestamp_ms.rem_euclid(WINDOW_MS))
}

// ---------------------------------------------------------------------------------------------
// Dates: Java's `dd-MM-yyyy hh:mm:ss:SSS` in UTC.

/// Appends `ms` (since the epoch) as Java's `dd-MM-yyyy hh:mm:ss:SSS` in UTC, e.g.
/// `01-01-1970 12:00:00:015` for 15 ms.
///
/// `hh` is the 12-hour clock (01–12) and the pattern has no AM/PM marker: hour 0 prints `12`,
/// hour 13 prints `01`. The calendar is the proleptic Gregorian one (Java switches to the Julian
/// calendar before 15 October 1582; flinksim never goes there). `yyyy` pads to at least four
/// digits; years before 1 print Java's year of era (1 BC as `0001`), since the pattern has no era.
pub fn write_date(ms: i64, out: &mut Vec<u8>) {
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let hour = in_day / 3_600_000;
    let minute = in_day / 60_000 % 60;
    let second = in_day / 1000 % 60;
    let milli = in_day % 1000;
    let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };
    let year_of_era = if year >= 1 { year } else { 1 - year };

    push2(day as u8, out);
    out.push(b'-');
    push2(month as u8, out);
    out.push(b'-');
    write_decimal(year_of_era as u64, 4, out);
    out.push(b' ');
    push2(hour12 as u8, out);
    out.push(b':');
    push2(minute as u8, out);
    out.push(b':');
    push2(second as u8, out);
    out.push(b':');
    push3(milli as u16, out);
}

/// Bytes of `dd-MM-yyyy hh:mm`: the part of a four-digit-year date shared by a whole minute.
const MINUTE_LEN: usize = 16;
const MS_PER_MINUTE: i64 = 60_000;

/// [`write_date`] for many timestamps in a row: the day, hour and minute are formatted once a
/// minute, and only the seconds and milliseconds per date.
#[derive(Clone, Debug, Default)]
pub struct DateWriter {
    /// The last minute written (its first millisecond) and its `dd-MM-yyyy hh:mm`.
    minute: Option<(i64, [u8; MINUTE_LEN])>,
    /// The last date written whole: the generator's events come six to a timestamp.
    last: Option<(i64, [u8; DATE_LEN])>,
}

impl DateWriter {
    /// Appends `ms` exactly as [`write_date`] would.
    pub fn write(&mut self, ms: i64, out: &mut Vec<u8>) {
        if let Some((cached, date)) = &self.last
            && *cached == ms
        {
            out.extend_from_slice(date);
            return;
        }
        let minute = ms - ms.rem_euclid(MS_PER_MINUTE);
        let start = out.len();
        if let Some((cached, prefix)) = &self.minute
            && *cached == minute
        {
            // A minute starts on a whole second of a whole day: the rest is `:ss:SSS`.
            let in_minute = ms - minute;
            let (second, milli) = ((in_minute / 1000) as u8, (in_minute % 1000) as u16);
            out.extend_from_slice(prefix);
            out.push(b':');
            push2(second, out);
            out.push(b':');
            push3(milli, out);
        } else {
            write_date(ms, out);
            if out.len() - start == DATE_LEN {
                let prefix =
                    out[start..start + MINUTE_LEN].try_into().expect("a date is longer than its minute");
                self.minute = Some((minute, prefix));
            }
        }
        if let Ok(date) = <[u8; DATE_LEN]>::try_from(&out[start..]) {
            self.last = Some((ms, date));
        }
    }
}

/// [`parse_date`] for many dates in a row: a date in the same minute as the last one is read
/// from its seconds and milliseconds alone.
#[derive(Clone, Debug, Default)]
pub struct DateReader {
    /// The last `dd-MM-yyyy hh:mm` read and the milliseconds it stands for.
    minute: Option<([u8; MINUTE_LEN], i64)>,
    /// The last date read whole and its milliseconds: the generator's events come six to a
    /// timestamp.
    last: Option<([u8; DATE_LEN], i64)>,
    /// The milliseconds of `last`'s whole second (`last`'s less its `SSS`): most other dates
    /// differ from the last only in their milliseconds.
    second: i64,
}

impl DateReader {
    /// Reads `s` exactly as [`parse_date`] would.
    pub fn read(&mut self, s: &[u8]) -> Result<i64, FormatError> {
        match <&[u8; DATE_LEN]>::try_from(s) {
            Ok(date) => self.read_array(date),
            Err(_) => parse_date(s),
        }
    }

    /// [`read`](Self::read) for a date of a four-digit year's length.
    fn read_array(&mut self, date: &[u8; DATE_LEN]) -> Result<i64, FormatError> {
        match self.read_known(date) {
            Some(ms) => Ok(ms),
            None => parse_date(date),
        }
    }

    /// [`read_array`](Self::read_array) as an `Option`: `None` for a date that does not parse.
    /// Inline, the last date's repeat (two reads in three, by a callgrind profile) is three
    /// comparisons with no call.
    #[inline]
    fn read_known(&mut self, date: &[u8; DATE_LEN]) -> Option<i64> {
        if let Some((last, ms)) = &self.last
            && same_date(last, date)
        {
            return Some(*ms);
        }
        self.read_other(date)
    }

    /// [`read_known`](Self::read_known) for a date other than the last one. One in the last
    /// one's second (about 24 in 25 of them) is read from its three millisecond digits: by a
    /// callgrind profile, the minute's path took about 81 instructions a date.
    /// The rest is a call of its own, so this path saves no registers.
    #[inline(never)]
    fn read_other(&mut self, date: &[u8; DATE_LEN]) -> Option<i64> {
        if let Some((last, last_ms)) = &mut self.last
            && same_second(last, date)
            && let Some(milli) = millis(date)
        {
            // The rest of the date is the same.
            last[20..].copy_from_slice(&date[20..]);
            *last_ms = self.second + milli;
            return Some(*last_ms);
        }
        self.read_whole(date)
    }

    /// [`read_other`](Self::read_other) for a date in another second.
    #[inline(never)]
    fn read_whole(&mut self, date: &[u8; DATE_LEN]) -> Option<i64> {
        let ms = self.read_new(date).ok()?;
        self.last = Some((*date, ms));
        // A date's `SSS` is its milliseconds' remainder by 1000 (the other fields are whole
        // seconds), for dates before 1970 too.
        self.second = ms - ms.rem_euclid(1000);
        Some(ms)
    }

    /// [`read`](Self::read) for a four-digit-year date other than the last one.
    fn read_new(&mut self, date: &[u8; DATE_LEN]) -> Result<i64, FormatError> {
        let s: &[u8] = date;
        let in_minute = seconds_and_millis(date);
        if let (Some((prefix, minute)), Some(in_minute)) = (&self.minute, in_minute)
            && eq16(date, 0, prefix)
        {
            return Ok(minute + in_minute);
        }
        let ms = parse_date(s)?;
        if let Some(in_minute) = in_minute {
            let prefix = date[..MINUTE_LEN].try_into().expect("a date is longer than its minute");
            self.minute = Some((prefix, ms - in_minute));
        }
        Ok(ms)
    }
}

/// Whether two dates are the same, by three eight-byte comparisons rather than a call to
/// `memcmp`.
#[inline]
fn same_date(a: &[u8; DATE_LEN], b: &[u8; DATE_LEN]) -> bool {
    let word = |s: &[u8; DATE_LEN], from: usize| {
        u64::from_le_bytes(s[from..from + 8].try_into().unwrap())
    };
    word(a, 0) == word(b, 0) && word(a, 8) == word(b, 8) && word(a, 15) == word(b, 15)
}

/// Whether two dates agree up to their milliseconds (`dd-MM-yyyy hh:mm:ss:`), by three
/// eight-byte comparisons.
#[inline]
fn same_second(a: &[u8; DATE_LEN], b: &[u8; DATE_LEN]) -> bool {
    let word = |s: &[u8; DATE_LEN], from: usize| {
        u64::from_le_bytes(s[from..from + 8].try_into().unwrap())
    };
    word(a, 0) == word(b, 0) && word(a, 8) == word(b, 8) && word(a, 12) == word(b, 12)
}

/// The `SSS` of a four-digit-year date, if its three bytes are digits.
#[inline]
fn millis(date: &[u8; DATE_LEN]) -> Option<i64> {
    let digit = |at: usize| date[at].wrapping_sub(b'0');
    let (a, b, c) = (digit(20), digit(21), digit(22));
    // `&`, not `&&`: three comparisons and no branches between them.
    ((a < 10) & (b < 10) & (c < 10))
        .then(|| i64::from(a) * 100 + i64::from(b) * 10 + i64::from(c))
}

/// The `:ss:SSS` tail of a four-digit-year date in milliseconds, if it is well formed.
fn seconds_and_millis(date: &[u8; DATE_LEN]) -> Option<i64> {
    if date[16] != b':' || date[19] != b':' {
        return None;
    }
    let digits = digits(&date[17..19])? * 1000 + digits(&date[20..23])?;
    (digits < MS_PER_MINUTE as u64).then_some(digits as i64)
}

/// Parses Java's `dd-MM-yyyy hh:mm:ss:SSS` (UTC) back into milliseconds since the epoch.
///
/// Strict: two digits for day, month, hour, minute and second, three for milliseconds, four to
/// nine for the year, the exact separators, and every field in range (day within its month,
/// leap years included; hour 01–12). Like Java's `SimpleDateFormat` parsing `hh` without an `a`
/// field, the hour is taken as AM: `12` is hour 0 and `01`..`11` are hours 1..11. So a date
/// written at 13:00 reads back as 01:00, twelve hours early: the real playground's quirk, which
/// flinksim models. (Its 10–60 minute runs stay within hour 0, which round-trips.)
pub fn parse_date(s: &[u8]) -> Result<i64, FormatError> {
    let bad = |reason: &'static str| FormatError::InvalidDate { reason, input: Excerpt::of(s) };
    // dd-MM-<year> hh:mm:ss:SSS, with 4..=9 year digits: 19 fixed bytes plus the year.
    if s.len() < 23 {
        return Err(bad("too short for the pattern dd-MM-yyyy hh:mm:ss:SSS"));
    }
    let year_digits = s.len() - 19;
    if year_digits > 9 {
        return Err(bad("too long for the pattern dd-MM-yyyy hh:mm:ss:SSS"));
    }
    let y_end = 6 + year_digits;
    let separators_ok = s[2] == b'-'
        && s[5] == b'-'
        && s[y_end] == b' '
        && s[y_end + 3] == b':'
        && s[y_end + 6] == b':'
        && s[y_end + 9] == b':';
    if !separators_ok {
        return Err(bad("separators differ from the pattern dd-MM-yyyy hh:mm:ss:SSS"));
    }
    let field = |from: usize, to: usize| {
        digits(&s[from..to]).ok_or_else(|| bad("non-digit in a numeric field"))
    };
    let day = field(0, 2)?;
    let month = field(3, 5)?;
    let year = field(6, y_end)? as i64;
    let hour12 = field(y_end + 1, y_end + 3)?;
    let minute = field(y_end + 4, y_end + 6)?;
    let second = field(y_end + 7, y_end + 9)?;
    let milli = field(y_end + 10, y_end + 13)?;

    if !(1..=12).contains(&month) {
        return Err(bad("month out of range 01-12"));
    }
    if day < 1 || day > days_in_month(year, month as u32) as u64 {
        return Err(bad("day out of range for its month"));
    }
    if !(1..=12).contains(&hour12) {
        return Err(bad("hour out of range 01-12"));
    }
    if minute > 59 {
        return Err(bad("minute out of range 00-59"));
    }
    if second > 59 {
        return Err(bad("second out of range 00-59"));
    }
    let hour = hour12 % 12; // `hh` without `a` parses as AM: 12 is hour 0.
    let days = days_from_civil(year, month as u32, day as u32);
    let in_day = ((hour * 60 + minute) * 60 + second) as i64 * 1000 + milli as i64;
    days.checked_mul(MS_PER_DAY)
        .and_then(|ms| ms.checked_add(in_day))
        .ok_or_else(|| bad("year out of the range of a 64-bit millisecond timestamp"))
}

/// Bytes of a date with a four-digit year, `dd-MM-yyyy hh:mm:ss:SSS`: every date the playground
/// writes.
const DATE_LEN: usize = 23;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
/// `month` is 1–12, `day` 1–31; any `year` whose day count fits an `i64` works.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = (month as i64 + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day as i64 - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian `(year, month 1–12, day 1–31)` of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`). Total over the days of any `i64` millisecond timestamp.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn push2(n: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(&[b'0' + n / 10, b'0' + n % 10]);
}

fn push3(n: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(&[b'0' + (n / 100) as u8, b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]);
}

/// Appends `n` in decimal, zero-padded to at least `min_digits`.
fn write_decimal(n: u64, min_digits: usize, out: &mut Vec<u8>) {
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(n).as_bytes();
    out.resize(out.len() + min_digits.saturating_sub(digits.len()), b'0');
    out.extend_from_slice(digits);
}

/// The value of a short run of ASCII digits (≤ 9 of them), or `None` if any byte is not a digit.
fn digits(s: &[u8]) -> Option<u64> {
    s.iter().try_fold(0u64, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0')))
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Why bytes are not a `ClickEvent`, a `ClickEventStatistics` or a date.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The input ends before the record does.
    #[error("truncated {what}: input ends where {expected} was expected, in {input}")]
    Truncated {
        /// Which record shape was being parsed.
        what: &'static str,
        /// The token that was missing.
        expected: &'static str,
        /// A prefix of the input.
        input: Excerpt,
    },
    /// A byte other than the one the shape requires.
    #[error("malformed {what}: expected {expected} at byte {at}, in {input}")]
    Unexpected {
        /// Which record shape was being parsed.
        what: &'static str,
        /// The token that was expected.
        expected: &'static str,
        /// Offset of the offending byte.
        at: usize,
        /// A prefix of the input.
        input: Excerpt,
    },
    /// A string containing a backslash (an escape) or a control character: pages never need
    /// escaping, so flinksim does not unescape.
    #[error(
        "unsupported string in {what} at byte {at}: escapes and control characters are not accepted, in {input}"
    )]
    UnsupportedString {
        /// Which record shape was being parsed.
        what: &'static str,
        /// Offset of the offending byte.
        at: usize,
        /// A prefix of the input.
        input: Excerpt,
    },
    /// The page is not valid UTF-8.
    #[error("page of {what} is not valid utf-8, in {input}")]
    NotUtf8 {
        /// Which record shape was being parsed.
        what: &'static str,
        /// A prefix of the input.
        input: Excerpt,
    },
    /// The count is not a JSON unsigned integer that fits in 64 bits.
    #[error("invalid count at byte {at}: {reason}, in {input}")]
    InvalidCount {
        /// Offset of the count.
        at: usize,
        /// What is wrong with it.
        reason: &'static str,
        /// A prefix of the input.
        input: Excerpt,
    },
    /// A date that does not match `dd-MM-yyyy hh:mm:ss:SSS` or names no real instant.
    #[error("invalid date {input}: {reason}")]
    InvalidDate {
        /// What is wrong with it.
        reason: &'static str,
        /// The date string (a prefix of it).
        input: Excerpt,
    },
}

/// A printable prefix (at most 64 bytes, non-ASCII and quotes escaped) of some input, for error
/// messages. Built only on the error path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excerpt(String);

impl Excerpt {
    const MAX: usize = 64;

    /// The excerpt of `bytes`.
    pub fn of(bytes: &[u8]) -> Excerpt {
        let cut = bytes.len().min(Self::MAX);
        let mut text = format!("`{}`", bytes[..cut].escape_ascii());
        if cut < bytes.len() {
            text.push_str(&format!(" (first {cut} of {} bytes)", bytes.len()));
        }
        Excerpt(text)
    }
}

impl fmt::Display for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// The parser: a cursor over the input, one method per token kind.

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Parser<'a> {
    fn new(input: &'a [u8], what: &'static str) -> Self {
        Parser { input, pos: 0, what }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.input.get(self.pos) {
            self.pos += 1;
        }
    }

    fn truncated(&self, expected: &'static str) -> FormatError {
        FormatError::Truncated { what: self.what, expected, input: Excerpt::of(self.input) }
    }

    fn unexpected(&self, expected: &'static str) -> FormatError {
        FormatError::Unexpected {
            what: self.what,
            expected,
            at: self.pos,
            input: Excerpt::of(self.input),
        }
    }

    /// Whitespace, then exactly `byte`.
    fn punct(&mut self, byte: u8, expected: &'static str) -> Result<(), FormatError> {
        self.skip_ws();
        match self.input.get(self.pos) {
            Some(&b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(self.unexpected(expected)),
            None => Err(self.truncated(expected)),
        }
    }

    /// Whitespace, then a string's raw contents (between the quotes; no escapes allowed).
    fn string(&mut self, expected: &'static str) -> Result<&'a [u8], FormatError> {
        self.punct(b'"', expected)?;
        let start = self.pos;
        let rest = &self.input[start..];
        for (i, &b) in rest.iter().enumerate() {
            match b {
                b'"' => {
                    self.pos = start + i + 1;
                    return Ok(&rest[..i]);
                }
                b'\\' | 0..=0x1f => {
                    return Err(FormatError::UnsupportedString {
                        what: self.what,
                        at: start + i,
                        input: Excerpt::of(self.input),
                    });
                }
                _ => {}
            }
        }
        Err(self.truncated("closing `\"` of a string"))
    }

    /// `"name"` then `:`.
    fn key(&mut self, name: &[u8], expected: &'static str) -> Result<(), FormatError> {
        let at = self.pos;
        if self.string(expected)? != name {
            self.pos = at;
            self.skip_ws();
            return Err(self.unexpected(expected));
        }
        self.punct(b':', "`:` after a key")
    }

    fn date(&mut self) -> Result<i64, FormatError> {
        let s = self.string("a date string")?;
        parse_date(s)
    }

    fn page(&mut self) -> Result<SmolStr, FormatError> {
        let s = self.string("the page string")?;
        match std::str::from_utf8(s) {
            Ok(page) => Ok(SmolStr::new(page)),
            Err(_) => Err(FormatError::NotUtf8 { what: self.what, input: Excerpt::of(self.input) }),
        }
    }

    fn count(&mut self) -> Result<u64, FormatError> {
        self.skip_ws();
        let start = self.pos;
        let bad = |reason| FormatError::InvalidCount {
            at: start,
            reason,
            input: Excerpt::of(self.input),
        };
        let len = self.input[start..].iter().take_while(|b| b.is_ascii_digit()).count();
        match (len, self.input.get(start)) {
            (0, None) => return Err(self.truncated("the count")),
            (0, Some(_)) => return Err(bad("not an unsigned integer")),
            (2.., Some(b'0')) => return Err(bad("leading zero")),
            _ => {}
        }
        let mut n = 0u64;
        for &b in &self.input[start..start + len] {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(b - b'0')))
                .ok_or_else(|| bad("does not fit in 64 bits"))?;
        }
        self.pos = start + len;
        if let Some(b'.' | b'e' | b'E') = self.input.get(self.pos) {
            return Err(bad("not an integer"));
        }
        Ok(n)
    }

    /// Only whitespace may follow the closing `}`.
    fn end(&mut self) -> Result<(), FormatError> {
        self.skip_ws();
        if self.pos == self.input.len() {
            Ok(())
        } else {
            Err(self.unexpected("end of input after `}`"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_json(e: &ClickEvent) -> String {
        let mut out = Vec::new();
        e.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    fn date(ms: i64) -> String {
        let mut out = Vec::new();
        write_date(ms, &mut out);
        String::from_utf8(out).unwrap()
    }

    const H: i64 = 3_600_000;

    #[test]
    fn the_generators_pages_are_known_and_nothing_else_is() {
        let record = |page: &str| format!(r#"{{"timestamp":"01-01-1970 12:00:00:015","page":"{page}"}}"#);
        for (i, page) in PAGES.iter().enumerate() {
            assert_eq!(known_page(record(page).as_bytes()), Some(i));
        }
        for other in ["", "/", "/hel", "/helpx", "/Help", "xhelp", "/index/", "/nope", "/a", "x/index", "\"/help"] {
            assert_eq!(known_page(record(other).as_bytes()), None, "{other:?}");
        }
        // A shorter or longer record ending as a known one's does not name its page.
        assert_eq!(known_page(br#"/index"}"#), None);
        assert_eq!(known_page(format!("x{}", record("/help")).as_bytes()), None);
    }

    #[test]
    fn the_generators_and_the_parsers_pages_are_recognised_and_copies_are_not() {
        let mut dates = DateReader::default();
        for k in 0..6 {
            let generated = ClickEvent::nth(k);
            let parsed = ClickEvent::parse_json_with(&mut dates, event_json(&generated).as_bytes()).unwrap();
            assert_eq!(generated.known_page_index(), Some(k as usize));
            assert_eq!(parsed.known_page_index(), Some(k as usize));
            let copied = ClickEvent { page: SmolStr::new(&generated.page), ..generated.clone() };
            assert_eq!(copied.known_page_index(), None);
            let literal = ClickEvent { page: SmolStr::new_static(PAGES[k as usize]), ..generated.clone() };
            assert_eq!(literal.known_page_index(), None);
            // Part of a known page, starting where it does, is not that page.
            let prefix = ClickEvent { page: SmolStr::new_static(&KNOWN_PAGES[k as usize][..2]), ..generated };
            assert_eq!(prefix.known_page_index(), None);
        }
    }

    #[test]
    fn a_page_hashes_as_java_does_whether_looked_up_or_worked_out() {
        let mut dates = DateReader::default();
        for k in 0..6 {
            let generated = ClickEvent::nth(k);
            let json = event_json(&generated);
            let parsed = ClickEvent::parse_json_with(&mut dates, json.as_bytes()).unwrap();
            // Not the generator's static string: the hash is worked out, with the same result.
            let copied = ClickEvent { page: SmolStr::new(&generated.page), ..generated.clone() };
            let java = java_string_hash(&generated.page);
            assert_eq!(generated.page_hash_code(), java, "{}", generated.page);
            assert_eq!(parsed.page_hash_code(), java, "{}", generated.page);
            assert_eq!(copied.page_hash_code(), java, "{}", generated.page);
        }
        let other = ClickEvent { timestamp_ms: 0, page: "/elsewhere".into() };
        assert_eq!(other.page_hash_code(), java_string_hash("/elsewhere"));
    }

    #[test]
    fn the_playground_s_samples_are_written_byte_for_byte() {
        assert_eq!(
            event_json(&ClickEvent::nth(0)),
            r#"{"timestamp":"01-01-1970 12:00:00:000","page":"/help"}"#
        );
        assert_eq!(
            event_json(&ClickEvent::nth(1)),
            r#"{"timestamp":"01-01-1970 12:00:00:000","page":"/index"}"#
        );
        assert_eq!(
            event_json(&ClickEvent::nth(5)),
            r#"{"timestamp":"01-01-1970 12:00:00:000","page":"/news"}"#
        );
        assert_eq!(
            event_json(&ClickEvent::nth(6)),
            r#"{"timestamp":"01-01-1970 12:00:00:015","page":"/help"}"#
        );
        assert_eq!(
            event_json(&ClickEvent::nth(6 * 1000 + 2)),
            r#"{"timestamp":"01-01-1970 12:00:15:000","page":"/shop"}"#
        );
        let stats = ClickEventStatistics {
            window_start_ms: 0,
            window_end_ms: WINDOW_MS,
            page: "/help".into(),
            count: 1000,
        };
        let mut out = Vec::new();
        stats.write_json(&mut out);
        assert_eq!(
            out,
            br#"{"windowStart":"01-01-1970 12:00:00:000","windowEnd":"01-01-1970 12:00:15:000","page":"/help","count":1000}"#
        );
        assert_eq!(ClickEventStatistics::parse_json(&out).unwrap(), stats);
    }

    #[test]
    fn events_are_54_or_55_bytes_and_pages_rotate() {
        for k in 0..6000u64 {
            let e = ClickEvent::nth(k);
            assert_eq!(e.page, PAGES[(k % 6) as usize]);
            let len = event_json(&e).len();
            let expected = if e.page == "/index" || e.page == "/about" { 55 } else { 54 };
            assert_eq!(len, expected, "event {k}");
        }
    }

    #[test]
    fn window_zero_holds_exactly_1000_events_per_page() {
        let mut per_page = [0u32; 6];
        for k in 0..6000u64 {
            let e = ClickEvent::nth(k);
            assert_eq!(window_start(e.timestamp_ms), 0);
            per_page[PAGES.iter().position(|p| *p == e.page).unwrap()] += 1;
        }
        assert_eq!(per_page, [1000; 6]);
        assert_eq!(window_start(ClickEvent::nth(6000).timestamp_ms), WINDOW_MS);
        // Window n holds events 6000n .. 6000n + 5999.
        assert_eq!(window_start(ClickEvent::nth(6000 * 7 + 5999).timestamp_ms), 7 * WINDOW_MS);
        assert_eq!(window_start(ClickEvent::nth(6000 * 8).timestamp_ms), 8 * WINDOW_MS);
    }

    #[test]
    fn window_start_is_floor_to_15_seconds_even_below_zero() {
        assert_eq!(window_start(0), 0);
        assert_eq!(window_start(14_999), 0);
        assert_eq!(window_start(15_000), 15_000);
        assert_eq!(window_start(-1), -15_000);
        assert_eq!(window_start(-15_001), -30_000);
        assert!(window_start(i64::MIN) <= i64::MIN + WINDOW_MS); // no overflow panic
        assert_eq!(window_start(i64::MAX), i64::MAX - i64::MAX % WINDOW_MS);
    }

    #[test]
    fn events_round_trip_within_the_first_hour() {
        let mut buf = Vec::new();
        for k in (0..240_000u64).step_by(7).chain([1_439_999, 1_440_000 - 1]) {
            let e = ClickEvent::nth(k);
            buf.clear();
            e.write_json(&mut buf);
            assert_eq!(ClickEvent::parse_json(&buf).unwrap(), e, "event {k}");
        }
    }

    #[test]
    fn statistics_round_trip() {
        let mut buf = Vec::new();
        for (n, page) in (0..500i64).zip(PAGES.iter().cycle()) {
            for count in [0, 1, 999, 1000, u64::MAX] {
                let s = ClickEventStatistics {
                    window_start_ms: n * WINDOW_MS,
                    window_end_ms: (n + 1) * WINDOW_MS,
                    page: SmolStr::new_static(page),
                    count,
                };
                buf.clear();
                s.write_json(&mut buf);
                assert_eq!(ClickEventStatistics::parse_json(&buf).unwrap(), s);
            }
        }
    }

    #[test]
    fn hour_zero_prints_12_and_13_prints_01_reading_back_as_01() {
        assert_eq!(date(0), "01-01-1970 12:00:00:000");
        assert_eq!(date(H - 1), "01-01-1970 12:59:59:999");
        assert_eq!(date(H), "01-01-1970 01:00:00:000");
        assert_eq!(date(11 * H), "01-01-1970 11:00:00:000");
        assert_eq!(date(12 * H), "01-01-1970 12:00:00:000"); // noon looks like midnight
        assert_eq!(date(13 * H), "01-01-1970 01:00:00:000");
        assert_eq!(date(23 * H + 59 * 60_000), "01-01-1970 11:59:00:000");
        // Parsing takes `hh` as AM: 12 is hour 0, 01 is hour 1.
        assert_eq!(parse_date(b"01-01-1970 12:00:00:000").unwrap(), 0);
        assert_eq!(parse_date(b"01-01-1970 01:00:00:000").unwrap(), H);
        assert_eq!(parse_date(date(13 * H).as_bytes()).unwrap(), H);
        assert_eq!(parse_date(date(12 * H + 5).as_bytes()).unwrap(), 5);
        let e = ClickEvent { timestamp_ms: 13 * H + 15, page: "/help".into() };
        let back = ClickEvent::parse_json(event_json(&e).as_bytes()).unwrap();
        assert_eq!(back.timestamp_ms, H + 15);
    }

    #[test]
    fn civil_day_counts_match_known_dates() {
        let known = [
            ((1970, 1, 1), 0),
            ((1969, 12, 31), -1),
            ((2000, 3, 1), 11_017),
            ((2024, 2, 29), 19_782),
            ((2024, 3, 1), 19_783),
            ((2023, 12, 31), 19_722),
            ((2024, 12, 31), 20_088),
            ((1900, 1, 1), -25_567),
            ((2100, 3, 1), 47_541),
            ((1600, 2, 29), -135_081),
            ((9999, 12, 31), 2_932_896),
            ((1, 1, 1), -719_162),
        ];
        for ((y, m, d), days) in known {
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
            assert_eq!(civil_from_days(days), (y, m, d), "{days}");
        }
        // Every day over several 400-year cycles maps back and forth, one day at a time.
        let mut prev = civil_from_days(-800_000);
        for days in -799_999..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!(d >= 1 && d <= days_in_month(y, m));
            let next_ok = if d == 1 {
                (m == 1 && prev == (y - 1, 12, 31))
                    || (m > 1 && prev == (y, m - 1, days_in_month(y, m - 1)))
            } else {
                prev == (y, m, d - 1)
            };
            assert!(next_ok, "{prev:?} then {:?}", (y, m, d));
            prev = (y, m, d);
        }
    }

    #[test]
    fn dates_in_2024_a_leap_year_format_and_parse() {
        assert_eq!(date(1_709_164_800_000), "29-02-2024 12:00:00:000");
        assert_eq!(date(1_709_211_907_123), "29-02-2024 01:05:07:123"); // 13:05:07.123
        assert_eq!(date(1_735_689_599_999), "31-12-2024 11:59:59:999"); // 23:59:59.999
        assert_eq!(date(19_783 * MS_PER_DAY), "01-03-2024 12:00:00:000");
        assert_eq!(parse_date(b"29-02-2024 12:00:00:000").unwrap(), 1_709_164_800_000);
        assert_eq!(parse_date(b"29-02-2024 01:05:07:123").unwrap(), 1_709_211_907_123 - 12 * H);
        assert!(parse_date(b"29-02-2023 12:00:00:000").is_err());
        assert!(parse_date(b"29-02-1900 12:00:00:000").is_err());
        assert!(parse_date(b"29-02-2000 12:00:00:000").is_ok());
        assert_eq!(date(-1), "31-12-1969 11:59:59:999");
        assert_eq!(date(days_from_civil(12_345, 6, 7) * MS_PER_DAY), "07-06-12345 12:00:00:000");
        assert_eq!(
            parse_date(b"07-06-12345 12:00:00:000").unwrap(),
            days_from_civil(12_345, 6, 7) * MS_PER_DAY
        );
    }

    #[test]
    fn any_morning_timestamp_round_trips_and_afternoons_come_back_12_hours_early() {
        for ms in [
            0i64,
            1,
            999,
            59_999,
            1_709_164_800_000,
            253_402_300_799_999,
            -86_400_000,
            -62_135_596_800_000,
        ] {
            for offset in [0, 5 * H + 7, 11 * H + 59 * 60_000, 12 * H, 18 * H + 1] {
                let t = ms - ms.rem_euclid(MS_PER_DAY) + offset;
                let expect = if offset >= 12 * H { t - 12 * H } else { t };
                assert_eq!(parse_date(date(t).as_bytes()).unwrap(), expect, "{t}");
            }
        }
        // The extremes of i64 format without panicking.
        assert!(!date(i64::MIN).is_empty());
        assert!(!date(i64::MAX).is_empty());
    }

    #[test]
    fn whitespace_between_tokens_is_tolerated() {
        let text =
            b" {\n \"timestamp\" :\t\"01-01-1970 12:00:00:015\" ,\r\n\"page\": \"/help\"\n}\n ";
        assert_eq!(ClickEvent::parse_json(text).unwrap(), ClickEvent::nth(6));
        let stats = b"{ \"windowStart\" : \"01-01-1970 12:00:00:000\" , \"windowEnd\" : \"01-01-1970 12:00:15:000\" , \"page\" : \"/help\" , \"count\" : 7 }";
        assert_eq!(ClickEventStatistics::parse_json(stats).unwrap().count, 7);
    }

    #[test]
    fn malformed_events_are_errors_not_panics() {
        let good = br#"{"timestamp":"01-01-1970 12:00:00:015","page":"/help"}"#;
        // Every truncation is an error.
        for cut in 0..good.len() {
            let err = ClickEvent::parse_json(&good[..cut]).unwrap_err();
            assert!(err.to_string().contains("click event"), "{err}");
        }
        let cases: &[&[u8]] = &[
            b"",
            b"null",
            b"[]",
            br#"{"page":"/help","timestamp":"01-01-1970 12:00:00:015"}"#, // wrong order
            br#"{"timestamp":"01-01-1970 12:00:00:015"}"#,
            br#"{"timestamp":"01-01-1970 12:00:00:015","page":"/help","extra":1}"#,
            br#"{"timestamp":"01-01-1970 12:00:00:015","page":"/help"}x"#,
            br#"{"timestamp":"01-01-1970 12:00:00:015","page":"/help"}}"#,
            br#"{"timestamp":"01-01-1970 12:00:00:015","page":"/he\"lp"}"#,
            br#"{"timestamp":"01-01-1970 12:00:00:015","page":"/he\\lp"}"#,
            b"{\"timestamp\":\"01-01-1970 12:00:00:015\",\"page\":\"/he\nlp\"}",
            b"{\"timestamp\":\"01-01-1970 12:00:00:015\",\"page\":\"/h\xffp\"}",
            br#"{"timestamp":1,"page":"/help"}"#,
            br#"{"timestamp":"1970-01-01T00:00:00Z","page":"/help"}"#,
            br#"{"timestamp":"01-01-1970 12:00:00:015","page":5}"#,
            br#"{"Timestamp":"01-01-1970 12:00:00:015","page":"/help"}"#,
            br#"{"timestamp""01-01-1970 12:00:00:015","page":"/help"}"#,
            br#"{"timestamp":"01-01-1970 12:00:00:015";"page":"/help"}"#,
        ];
        for case in cases {
            let err = ClickEvent::parse_json(case).unwrap_err();
            assert!(!err.to_string().is_empty());
        }
        let err = ClickEvent::parse_json(br#"{"page":"/help"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"malformed click event: expected key "timestamp" at byte 1, in `{\"page\":\"/help\"}`"#
        );
    }

    #[test]
    fn malformed_dates_are_errors() {
        let cases: &[&[u8]] = &[
            b"",
            b"01-01-1970 12:00:00",
            b"01-01-1970 12:00:00:00",
            b"01-01-1970 12:00:00:0000",
            b"01-01-70 12:00:00:000",
            b"01/01/1970 12:00:00:000",
            b"01-01-1970T12:00:00:000",
            b"01-01-1970 12:00:00.000",
            b"00-01-1970 12:00:00:000",
            b"32-01-1970 12:00:00:000",
            b"31-04-1970 12:00:00:000",
            b"01-00-1970 12:00:00:000",
            b"01-13-1970 12:00:00:000",
            b"01-01-1970 00:00:00:000",
            b"01-01-1970 13:00:00:000",
            b"01-01-1970 12:60:00:000",
            b"01-01-1970 12:00:60:000",
            b"01-01-1970 12:00:00:-00",
            b"+1-01-1970 12:00:00:000",
            b"01-01-1970 12:00:00:\xff\xff\xff",
            b"01-01-999999999 12:00:00:000", // past the i64 millisecond range
            b"01-01-1234567890 12:00:00:000", // ten year digits
        ];
        for case in cases {
            let err = parse_date(case).unwrap_err();
            assert!(matches!(err, FormatError::InvalidDate { .. }), "{err}");
            assert!(err.to_string().starts_with("invalid date `"), "{err}");
        }
        assert_eq!(
            parse_date(b"32-01-1970 12:00:00:000").unwrap_err().to_string(),
            "invalid date `32-01-1970 12:00:00:000`: day out of range for its month"
        );
    }

    #[test]
    fn malformed_statistics_are_errors() {
        let good = br#"{"windowStart":"01-01-1970 12:00:00:000","windowEnd":"01-01-1970 12:00:15:000","page":"/help","count":1000}"#;
        for cut in 0..good.len() {
            assert!(ClickEventStatistics::parse_json(&good[..cut]).is_err());
        }
        let with_count = |c: &str| {
            format!(
                r#"{{"windowStart":"01-01-1970 12:00:00:000","windowEnd":"01-01-1970 12:00:15:000","page":"/help","count":{c}}}"#
            )
        };
        assert_eq!(ClickEventStatistics::parse_json(with_count("0").as_bytes()).unwrap().count, 0);
        assert_eq!(
            ClickEventStatistics::parse_json(with_count("18446744073709551615").as_bytes())
                .unwrap()
                .count,
            u64::MAX
        );
        for bad in [
            "18446744073709551616",
            "99999999999999999999999999999",
            "-1",
            "01",
            "1.0",
            "1e3",
            "\"1\"",
            "",
            "x",
        ] {
            let err = ClickEventStatistics::parse_json(with_count(bad).as_bytes()).unwrap_err();
            assert!(err.to_string().contains("count"), "{bad}: {err}");
        }
    }

    #[test]
    fn long_inputs_show_only_a_prefix() {
        let mut long = br#"{"timestamp":"01-01-1970 12:00:00:015","page":"/help"}"#.to_vec();
        long.extend(std::iter::repeat_n(b'x', 10_000));
        let err = ClickEvent::parse_json(&long).unwrap_err().to_string();
        assert!(err.len() < 300, "{err}");
        assert!(err.contains("(first 64 of 10054 bytes)"), "{err}");
    }

    #[test]
    fn nth_saturates_instead_of_overflowing() {
        assert_eq!(ClickEvent::nth(u64::MAX).timestamp_ms, i64::MAX);
        assert_eq!(ClickEvent::nth(u64::MAX).page, PAGES[(u64::MAX % 6) as usize]);
    }

    #[test]
    fn the_generators_records_are_read_as_their_timestamp_and_page() {
        let mut dates = DateReader::default();
        for k in (0..100).chain(1_000_000..1_000_100) {
            let event = ClickEvent::nth(k);
            let json = event_json(&event);
            let read = ClickEvent::parse_generated(&mut dates, json.as_bytes());
            assert_eq!(read, Some((event.timestamp_ms, ClickEvent::nth_page(k))), "{json}");
        }
        // Any other page, whitespace, or a five-digit year is left to the parser.
        let other = ClickEvent { timestamp_ms: 15, page: "/other".into() };
        let year_10000 = ClickEvent { timestamp_ms: 253_402_300_800_000, page: "/help".into() };
        for json in [event_json(&other), event_json(&year_10000), format!(" {}", event_json(&ClickEvent::nth(0)))] {
            assert_eq!(ClickEvent::parse_generated(&mut dates, json.as_bytes()), None, "{json}");
            assert!(ClickEvent::parse_json(json.as_bytes()).is_ok(), "{json}");
        }
    }

    #[test]
    fn the_event_writer_rewrites_a_record_whose_date_grows_a_digit() {
        // The last milliseconds of year 9999, then year 10000: the date grows from 23 bytes.
        let mut writer = ClickEventWriter::default();
        for t in 253_402_300_799_990..253_402_300_800_010i64 {
            for (page, text) in PAGES.iter().enumerate() {
                let event = ClickEvent { timestamp_ms: t, page: SmolStr::new_static(text) };
                assert_eq!(writer.write(t, page), event_json(&event).as_bytes(), "{t}");
            }
        }
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parsing_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
                let _ = ClickEvent::parse_json(&bytes);
                let _ = ClickEventStatistics::parse_json(&bytes);
                let _ = parse_date(&bytes);
            }

            #[test]
            fn parsing_mutated_records_never_panics(pos in 0usize..110, byte in any::<u8>(), cut in 0usize..112) {
                let mut bytes = br#"{"windowStart":"01-01-1970 12:00:00:000","windowEnd":"01-01-1970 12:00:15:000","page":"/help","count":1000}"#.to_vec();
                let pos = pos % bytes.len();
                bytes[pos] = byte;
                bytes.truncate(cut);
                let _ = ClickEventStatistics::parse_json(&bytes);
                let _ = ClickEvent::parse_json(&bytes[..bytes.len().min(54)]);
            }

            #[test]
            fn the_fixed_offset_reader_agrees_with_the_token_parser(
                edits in proptest::collection::vec((0usize..56, any::<u8>()), 0..3),
                k in 0u64..10_000_000,
                cut in 0usize..60,
            ) {
                let mut bytes = Vec::new();
                ClickEvent::nth(k).write_json(&mut bytes);
                for (pos, byte) in edits {
                    let pos = pos % bytes.len();
                    // Bias towards digits and separators, where the two readers' checks differ.
                    bytes[pos] = match byte % 4 { 0 => b'0' + byte % 10, 1 => b"-: \"/"[usize::from(byte) % 5], _ => byte };
                }
                bytes.truncate(cut.max(48));
                prop_assert_eq!(ClickEvent::parse_json(&bytes), ClickEvent::parse_tokens(&bytes));
                // What the page-counting reader accepts, the parser reads as the same event.
                if let Some((timestamp_ms, page)) = ClickEvent::parse_generated(&mut DateReader::default(), &bytes) {
                    let event = ClickEvent { timestamp_ms, page: SmolStr::new_static(PAGES[page]) };
                    prop_assert_eq!(ClickEvent::parse_tokens(&bytes), Ok(event));
                }
            }

            #[test]
            fn the_event_writer_writes_what_write_json_does(
                start in -100_000_000_000_000i64..300_000_000_000_000,
                steps in proptest::collection::vec((0i64..90_000, 0usize..6), 1..60),
            ) {
                // Dates of four and five digit years, pages in any order, timestamps repeated.
                let mut writer = ClickEventWriter::default();
                let mut t = start;
                for (step, page) in steps {
                    t += step % 3 * step;
                    let mut plain = Vec::new();
                    let event = ClickEvent { timestamp_ms: t, page: SmolStr::new_static(PAGES[page]) };
                    event.write_json(&mut plain);
                    prop_assert_eq!(writer.write(t, page), &plain[..]);
                }
            }

            #[test]
            fn the_minute_caches_write_and_read_what_the_plain_functions_do(
                start in -100_000_000_000_000i64..100_000_000_000_000,
                // Steps within a second as often as across minutes, for the reader's second.
                steps in proptest::collection::vec(prop_oneof![0i64..300, 0i64..90_000], 1..40),
                edits in proptest::collection::vec((0usize..40, 0usize..23, any::<u8>()), 0..6),
            ) {
                let (mut writer, mut reader) = (DateWriter::default(), DateReader::default());
                let mut t = start;
                let mut dates = Vec::new();
                for step in steps {
                    t += step;
                    let (mut cached, mut plain) = (Vec::new(), Vec::new());
                    writer.write(t, &mut cached);
                    write_date(t, &mut plain);
                    prop_assert_eq!(&cached, &plain);
                    dates.push(plain);
                }
                for (i, pos, byte) in edits {
                    let count = dates.len();
                    let date = &mut dates[i % count];
                    let pos = pos % date.len();
                    date[pos] = if byte % 2 == 0 { b'0' + byte % 10 } else { byte };
                }
                for date in &dates {
                    prop_assert_eq!(reader.read(date), parse_date(date));
                }
            }

            #[test]
            fn every_timestamp_formats_and_parses_back_modulo_the_hh_quirk(t in any::<i64>()) {
                let mut out = Vec::new();
                write_date(t, &mut out);
                let days = t.div_euclid(MS_PER_DAY);
                let (year, _, _) = civil_from_days(days);
                let parsed = parse_date(&out);
                if year < 1 {
                    // Printed as Java's year of era: it parses (if at all) as a year AD.
                    return Ok(());
                }
                match parsed {
                    Ok(back) => {
                        let afternoon = t.rem_euclid(MS_PER_DAY) >= 12 * 3_600_000;
                        prop_assert_eq!(back, if afternoon { t - 12 * 3_600_000 } else { t });
                    }
                    // Only years too large for i64 milliseconds fall outside the parser's range.
                    Err(_) => prop_assert!(year > 292_000_000),
                }
            }
        }
    }
}
