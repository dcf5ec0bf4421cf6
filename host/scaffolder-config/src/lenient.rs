//! Backstage's lenient value forms: numbers and booleans written as strings (a substituted
//! `${PORT}` is always a string), durations as `90m`, ISO 8601 `PT1H30M` or
//! `{ hours: 1, minutes: 30 }`, one-or-a-list strings, and values whose errors never repeat
//! a secret.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use scaffolder_store::SecretsKey;
use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde_json::{Map, Value};

use crate::parse::kind_of;

/// A whole number, also written as a string (`port: ${PORT}`).
pub(crate) fn number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    struct NumberVisitor<T>(PhantomData<T>);
    impl<'de, T: TryFrom<u64>> Visitor<'de> for NumberVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a whole number")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::custom(format!("{v} is too large")))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
            }
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
            if v.fract() == 0.0 && (0.0..1e19).contains(&v) {
                self.visit_u64(v as u64)
            } else {
                Err(E::invalid_value(Unexpected::Float(v), &self))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            match v.trim().parse::<u64>() {
                Ok(n) => self.visit_u64(n),
                Err(_) => Err(E::invalid_value(Unexpected::Str(v), &self)),
            }
        }
    }
    deserializer.deserialize_any(NumberVisitor(PhantomData))
}

pub(crate) fn optional_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    number(deserializer).map(Some)
}

/// A boolean, also written as a string or 0/1, as Backstage's `getBoolean` reads it.
pub(crate) fn boolean<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    struct BoolVisitor;
    impl<'de> Visitor<'de> for BoolVisitor {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("true or false")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
            match v {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "on" | "1" => Ok(true),
                "false" | "no" | "n" | "off" | "0" => Ok(false),
                _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
            }
        }
    }
    deserializer.deserialize_any(BoolVisitor)
}

/// One string or a list of strings.
pub(crate) fn strings<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct StringsVisitor;
    impl<'de> Visitor<'de> for StringsVisitor {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or a list of strings")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(vec![v.to_owned()])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<String>, A::Error> {
            Vec::deserialize(SeqAccessDeserializer::new(seq))
        }
    }
    deserializer.deserialize_any(StringsVisitor)
}

/// HTTP methods: a list or a comma-separated string, upper-cased.
pub(crate) fn methods<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(strings(deserializer)?
        .iter()
        .flat_map(|s| s.split(','))
        .map(|m| m.trim().to_ascii_uppercase())
        .filter(|m| !m.is_empty())
        .collect())
}

/// A mapping whose values must all be strings; the error names the key, never the value.
pub(crate) fn string_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Map<String, Value>, D::Error> {
    let map = Map::<String, Value>::deserialize(deserializer)?;
    if let Some((key, value)) = map.iter().find(|(_, v)| !v.is_string()) {
        return Err(de::Error::custom(format!(
            "{key} must be a string, found {}; quote it",
            kind_of(value)
        )));
    }
    Ok(map)
}

/// `scaffolder.plugins[].config`: scalars, kept as text (`port: 5432` is `"5432"`).
pub(crate) fn config_values<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let map = Map::<String, Value>::deserialize(deserializer)?;
    map.into_iter()
        .map(|(key, value)| match value {
            Value::String(text) => Ok((key, text)),
            Value::Number(n) => Ok((key, n.to_string())),
            Value::Bool(b) => Ok((key, b.to_string())),
            other => Err(de::Error::custom(format!(
                "{key} must be a string, number or boolean, found {}; write structured values as a JSON string",
                kind_of(&other)
            ))),
        })
        .collect()
}

/// A task secrets key in base64; the error never repeats the value.
pub(crate) fn secrets_key<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SecretsKey>, D::Error> {
    let text = String::deserialize(deserializer)?;
    SecretsKey::from_base64(&text)
        .map(Some)
        .map_err(de::Error::custom)
}

/// `sha256:` followed by 64 hex digits, kept in lower case.
pub(crate) fn digest<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(deserializer)?;
    match text.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some(text.to_ascii_lowercase()))
        }
        _ => Err(de::Error::custom(format!(
            "expected `sha256:` followed by 64 hex digits, found `{text}`"
        ))),
    }
}

/// A duration in any of Backstage's forms: `{ hours: 1, minutes: 30 }`, `PT1H30M`, or
/// `90m` (units ms, s, m, h, d, w and their long names).
pub(crate) fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    #[derive(Default, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct HumanDuration {
        weeks: f64,
        days: f64,
        hours: f64,
        minutes: f64,
        seconds: f64,
        milliseconds: f64,
    }

    struct DurationVisitor;
    impl<'de> Visitor<'de> for DurationVisitor {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration such as `30s`, `PT30S` or { seconds: 30 }")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse_duration(v).map_err(E::custom)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Duration, A::Error> {
            let d = HumanDuration::deserialize(MapAccessDeserializer::new(map))?;
            let millis = d.weeks * WEEK
                + d.days * DAY
                + d.hours * HOUR
                + d.minutes * MINUTE
                + d.seconds * SECOND
                + d.milliseconds;
            millis_to_duration(millis).map_err(de::Error::custom)
        }
    }
    deserializer.deserialize_any(DurationVisitor)
}

const SECOND: f64 = 1_000.0;
const MINUTE: f64 = 60.0 * SECOND;
const HOUR: f64 = 60.0 * MINUTE;
const DAY: f64 = 24.0 * HOUR;
const WEEK: f64 = 7.0 * DAY;

/// `PT30S`, `P1DT2H`, `P2W`, or `30s`, `1.5h`, `500 ms`, `2 days`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let millis = if trimmed.starts_with(['P', 'p']) {
        parse_iso_duration(trimmed)
    } else {
        parse_plain_duration(trimmed)
    };
    millis
        .ok_or_else(|| {
            format!("invalid duration `{text}`: expected e.g. `30s`, `5m`, `2h`, `PT30S`, `P1D` or {{ seconds: 30 }}")
        })
        .and_then(millis_to_duration)
}

/// ISO 8601 without years and months, which have no fixed length.
pub(crate) fn parse_iso_duration(text: &str) -> Option<f64> {
    let body = &text[1..];
    let (date, time) = match body.split_once(['T', 't']) {
        Some((date, time)) => (date, Some(time)),
        None => (body, None),
    };
    if time == Some("") || (date.is_empty() && time.is_none()) {
        return None;
    }
    let mut total = 0.0;
    for (part, in_time) in [(date, false), (time.unwrap_or(""), true)] {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' || c == ',' {
                number.push(if c == ',' { '.' } else { c });
                continue;
            }
            let value: f64 = number.parse().ok()?;
            number.clear();
            total += value
                * match (in_time, c.to_ascii_uppercase()) {
                    (false, 'W') => WEEK,
                    (false, 'D') => DAY,
                    (true, 'H') => HOUR,
                    (true, 'M') => MINUTE,
                    (true, 'S') => SECOND,
                    _ => return None,
                };
        }
        if !number.is_empty() {
            return None;
        }
    }
    Some(total)
}

/// A number and a unit, as the `ms` package Backstage uses reads them (a unit is required).
pub(crate) fn parse_plain_duration(text: &str) -> Option<f64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let value: f64 = text[..split].parse().ok()?;
    let unit = match text[split..].trim().to_ascii_lowercase().as_str() {
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => SECOND,
        "m" | "min" | "mins" | "minute" | "minutes" => MINUTE,
        "h" | "hr" | "hrs" | "hour" | "hours" => HOUR,
        "d" | "day" | "days" => DAY,
        "w" | "week" | "weeks" => WEEK,
        _ => return None,
    };
    Some(value * unit)
}

pub(crate) fn millis_to_duration(millis: f64) -> Result<Duration, String> {
    if millis.is_nan() || millis < 0.0 {
        return Err("a duration cannot be negative".to_owned());
    }
    Duration::try_from_secs_f64(millis / 1000.0).map_err(|_| "the duration is too long".to_owned())
}
