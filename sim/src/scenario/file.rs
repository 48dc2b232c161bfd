//! The TOML of a scenario file as serde reads it (docs/scenarios.md#the-file), before validation.
//! Values that the scenario layer checks itself are `Spanned`, so that its errors can point at
//! them; the keys are closed (`deny_unknown_fields`), so a misspelt key is an error naming the
//! valid ones.

use std::fmt;
use std::time::Duration;

use flinksim_engine::protocol::job::SinkMode;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use toml::Spanned;

use super::error::ScenarioErrorKind;
use super::{Expect, OnRestart, Pitfall, ReaderIsolation};

/// A whole scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScenarioFile {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    pub duration: Spanned<String>,
    pub seed: Option<u64>,
    pub pitfall: Option<Pitfall>,
    #[serde(default)]
    pub cluster: ClusterFile,
    #[serde(default)]
    pub generator: GeneratorFile,
    #[serde(default)]
    pub kafka: KafkaFile,
    pub job: JobFile,
    #[serde(default, rename = "step")]
    pub steps: Vec<Spanned<StepFile>>,
    #[serde(default)]
    pub reader: ReaderFile,
    #[serde(default)]
    pub expect: Expect,
}

/// `[cluster]`: every key optional, defaults from docs/README.md#defaults-at-a-glance.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterFile {
    pub taskmanagers: Option<Spanned<u32>>,
    pub slots: Option<Spanned<u32>>,
    pub startup_period: Option<Spanned<String>>,
}

/// `[generator]`: every key optional, defaults from docs/README.md#defaults-at-a-glance,
/// docs/model/job.md#the-generator.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GeneratorFile {
    pub pace: Option<Spanned<String>>,
    pub on_restart: Option<OnRestart>,
    pub start_event_time: Option<Spanned<String>>,
    pub jitter: Option<Spanned<String>>,
}

/// `[kafka]`: the broker's settings; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KafkaFile {
    pub transaction_max_timeout: Option<Spanned<String>>,
}

/// `[reader]`: how the consumer of `output` whose view the oracle judges reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReaderFile {
    pub isolation: Option<ReaderIsolation>,
}

/// `[job]`: the playground's submission line, the sink mode and the sink producer's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobFile {
    pub run: Spanned<String>,
    #[serde(default)]
    pub sink: SinkMode,
    pub transaction_timeout: Option<Spanned<String>>,
    pub idleness: Option<Spanned<String>>,
    pub out_of_orderness: Option<Spanned<String>>,
}

/// One `[[step]]`; its span (as `Spanned<StepFile>`) is the `[[step]]` header.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepFile {
    pub at: Spanned<AtFile>,
    pub run: Spanned<String>,
}

/// A step's `at`: one duration, a range the seed draws from, or a time anchored to the nth
/// occurrence of a traced event.
#[derive(Debug)]
pub(crate) enum AtFile {
    /// `at = "2m"`.
    At(String),
    /// `at = { min = "1m", max = "4m" }`.
    Between { min: Spanned<String>, max: Spanned<String> },
    /// `at = { after = "checkpoint-completed", n = 3, delay = "20ms", by = "2m" }`, `delay` also a
    /// range `{ min = "0ms", max = "50ms" }`.
    After { after: Spanned<String>, n: Spanned<i64>, delay: Spanned<DelayFile>, by: Spanned<String> },
}

/// An anchored step's `delay`: one duration or a range.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum DelayFile {
    /// `delay = "20ms"`.
    At(String),
    /// `delay = { min = "0ms", max = "50ms" }`.
    Between {
        /// The shortest.
        min: String,
        /// The longest.
        max: String,
    },
}

// Written by hand: serde's untagged enums buffer the value and lose the spans of `min` and `max`.
impl<'de> Deserialize<'de> for AtFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<AtFile, D::Error> {
        struct AtVisitor;

        impl<'de> Visitor<'de> for AtVisitor {
            type Value = AtFile;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    r#"a duration such as "2m", a range such as { min = "1m", max = "4m" }, or an anchored time such as { after = "checkpoint-completed", n = 3, delay = "20ms", by = "2m" }"#,
                )
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<AtFile, E> {
                Ok(AtFile::At(v.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AtFile, A::Error> {
                const KEYS: &[&str] = &["min", "max", "after", "n", "delay", "by"];
                let (mut min, mut max, mut after, mut by) = (None, None, None, None);
                let (mut n, mut delay) = (None, None);
                let duplicate = |key: &str| de::Error::custom(format_args!("duplicate key `{key}`"));
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "min" => &mut min,
                        "max" => &mut max,
                        "after" => &mut after,
                        "by" => &mut by,
                        "n" if n.is_some() => return Err(duplicate(&key)),
                        "n" => {
                            n = Some(map.next_value::<Spanned<i64>>()?);
                            continue;
                        }
                        "delay" if delay.is_some() => return Err(duplicate(&key)),
                        "delay" => {
                            delay = Some(map.next_value::<Spanned<DelayFile>>()?);
                            continue;
                        }
                        other => return Err(de::Error::unknown_field(other, KEYS)),
                    };
                    if slot.is_some() {
                        return Err(duplicate(&key));
                    }
                    *slot = Some(map.next_value::<Spanned<String>>()?);
                }
                if let Some(after) = after {
                    if min.is_some() || max.is_some() {
                        return Err(de::Error::custom(
                            "an anchored time (`after`) takes `n`, `delay` and `by`, not `min` and `max`",
                        ));
                    }
                    return Ok(AtFile::After {
                        after,
                        n: n.ok_or_else(|| de::Error::missing_field("n"))?,
                        delay: delay.ok_or_else(|| de::Error::missing_field("delay"))?,
                        by: by.ok_or_else(|| de::Error::missing_field("by"))?,
                    });
                }
                if let Some(key) = [(n.is_some(), "n"), (delay.is_some(), "delay"), (by.is_some(), "by")]
                    .iter()
                    .find_map(|(set, key)| set.then_some(*key))
                {
                    return Err(de::Error::custom(format_args!(
                        "`{key}` belongs to an anchored time: add `after = \"<event>\"`, or write a range with only `min` and `max`"
                    )));
                }
                Ok(AtFile::Between {
                    min: min.ok_or_else(|| de::Error::missing_field("min"))?,
                    max: max.ok_or_else(|| de::Error::missing_field("max"))?,
                })
            }
        }

        deserializer.deserialize_any(AtVisitor)
    }
}

/// The longest duration flinksim reads, in a file or a flag: 30 days of simulated time. A run
/// simulates about 2000 times faster than real time, so 30 days already take some 20 minutes of
/// wall time; a longer one is far more likely a slip (`999h`) than a plan.
pub const DURATION_MAX: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// humantime's units of months and years: a month or a year has no fixed length, and `M` next to
/// `m` (minutes) turns a ten-minute run into a ten-month one, so flinksim refuses them.
const CALENDAR_UNITS: &[(&str, &str)] = &[
    ("M", "months"),
    ("month", "months"),
    ("months", "months"),
    ("y", "years"),
    ("yr", "years"),
    ("yrs", "years"),
    ("year", "years"),
    ("years", "years"),
];

/// Parses a duration written as one or more `<number><unit>` groups (`200ms`, `2.5ms`, `10m`,
/// `1m 30s`). A number without its unit, or a unit split from its number (`10 minutes`), is
/// refused even though humantime would take it: the files stay uniform. Units of months and
/// years are refused, and so is anything above [`DURATION_MAX`].
pub(crate) fn parse_duration(text: &str) -> Result<Duration, ScenarioErrorKind> {
    let bad = || ScenarioErrorKind::BadDuration(text.to_owned());
    if text.trim().is_empty() {
        return Err(bad());
    }
    // Each word is one or more `<number><unit>` groups: `10m`, `3m10s`, `1m 30s`, `2.5ms`.
    for mut word in text.split_whitespace() {
        while !word.is_empty() {
            let unit_and_rest = word.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
            let rest = unit_and_rest.trim_start_matches(char::is_alphabetic);
            if unit_and_rest.len() == word.len() || rest.len() == unit_and_rest.len() {
                return Err(bad());
            }
            let unit = &unit_and_rest[..unit_and_rest.len() - rest.len()];
            if let Some((_, calendar)) = CALENDAR_UNITS.iter().find(|(u, _)| *u == unit) {
                return Err(ScenarioErrorKind::CalendarUnit {
                    text: text.to_owned(),
                    unit: unit.to_owned(),
                    calendar,
                });
            }
            word = rest;
        }
    }
    let duration = humantime::parse_duration(text).map_err(|_| bad())?;
    if duration > DURATION_MAX {
        return Err(ScenarioErrorKind::TooLong { text: text.to_owned() });
    }
    Ok(duration)
}

/// Prints a duration so that `parse_duration` reads it back exactly: whole seconds as humantime
/// writes them (`10m`, `1h 30m`), the rest as one decimal group (`2.5ms`, `200ms`).
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    let mut groups = Vec::new();
    if d.as_secs() > 0 {
        groups.push(humantime::format_duration(Duration::from_secs(d.as_secs())).to_string());
    }
    let nanos = d.subsec_nanos();
    if nanos > 0 {
        let (unit, per_unit, digits) = match nanos {
            1_000_000.. => ("ms", 1_000_000, 6),
            1_000.. => ("us", 1_000, 3),
            _ => ("ns", 1, 0),
        };
        let (whole, fraction) = (nanos / per_unit, nanos % per_unit);
        groups.push(if fraction == 0 {
            format!("{whole}{unit}")
        } else {
            let fraction = format!("{fraction:0digits$}");
            format!("{whole}.{}{unit}", fraction.trim_end_matches('0'))
        });
    }
    groups.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit_next_to_each_number() {
        assert_eq!(parse_duration("10m").ok(), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("2.5ms").ok(), Some(Duration::from_micros(2500)));
        assert_eq!(parse_duration("1m 30s").ok(), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("0s").ok(), Some(Duration::ZERO));
        assert_eq!(parse_duration("2days 1h").ok(), Some(Duration::from_secs(49 * 3600)));
        for bad in ["10 minutes", "10", "", " ", "fast", "-1s", "1s ago", "m5"] {
            assert!(matches!(parse_duration(bad), Err(ScenarioErrorKind::BadDuration(_))), "{bad:?}");
        }
    }

    /// humantime reads `10M` as ten months: a one-letter slip from ten minutes.
    #[test]
    fn months_and_years_are_refused_naming_the_unit() {
        for (text, unit) in [("10M", "M"), ("1month", "month"), ("2 months", "months"), ("1y", "y")] {
            let text = text.replace(' ', "");
            match parse_duration(&text) {
                Err(ScenarioErrorKind::CalendarUnit { unit: found, .. }) => assert_eq!(found, unit),
                other => panic!("{text}: {other:?}"),
            }
        }
        for text in ["1m 1year", "1yrs", "3years"] {
            assert!(matches!(parse_duration(text), Err(ScenarioErrorKind::CalendarUnit { .. })), "{text}");
        }
        assert_eq!(
            parse_duration("10M").unwrap_err().to_string(),
            "bad duration `10M`: `M` means months, which have no fixed length (accepted units: ns, us, \
             ms, s, m, h, d, and their long forms such as min, hours, days; `m` is minutes)"
        );
    }

    #[test]
    fn durations_above_thirty_days_are_refused() {
        assert_eq!(parse_duration("30days").ok(), Some(DURATION_MAX));
        assert_eq!(parse_duration("720h").ok(), Some(DURATION_MAX));
        assert_eq!(
            parse_duration("999h").unwrap_err().to_string(),
            "duration `999h` is too long: at most 30 days of simulated time"
        );
        assert!(matches!(parse_duration("30days 1ns"), Err(ScenarioErrorKind::TooLong { .. })));
        // Too large for humantime itself.
        assert!(matches!(parse_duration("99999999999999999999h"), Err(ScenarioErrorKind::BadDuration(_))));
    }

    #[test]
    fn formatted_durations_read_back_exactly() {
        for d in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_micros(2500),
            Duration::from_millis(200),
            Duration::from_millis(1500),
            Duration::from_secs(600),
            Duration::from_secs(90_061),
            Duration::new(3, 1_000_001),
            Duration::new(86_400 * 29, 999_999_999),
            DURATION_MAX,
        ] {
            let text = format_duration(d);
            assert_eq!(parse_duration(&text).ok(), Some(d), "{text}");
        }
        assert_eq!(format_duration(Duration::from_micros(2500)), "2.5ms");
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s 500ms");
    }
}
