//! The JavaScript semantics Backstage's handler relies on without saying so: the order in
//! which an object's keys are enumerated, what `{ ...value }` copies, and how a number prints.
//!
//! JSON values only: there are no `undefined`s, symbols or prototypes to model.

use serde_json::{Map, Value};

/// The entries of `object` in JavaScript's enumeration order (`Object.keys`): keys that
/// are array indices first, in ascending numeric order, then the other keys in insertion
/// order (which `serde_json`'s `preserve_order` keeps, as `JSON.parse` does).
pub fn entries(object: &Map<String, Value>) -> Vec<(&str, &Value)> {
    let mut indices: Vec<(u32, &str, &Value)> = Vec::new();
    let mut others = Vec::new();
    for (key, value) in object {
        match array_index(key) {
            Some(index) => indices.push((index, key, value)),
            None => others.push((key.as_str(), value)),
        }
    }
    indices.sort_by_key(|(index, _, _)| *index);
    indices
        .into_iter()
        .map(|(_, key, value)| (key, value))
        .chain(others)
        .collect()
}

/// The own enumerable properties that `{ ...value }` copies: an object's entries, an
/// array's elements and a string's UTF-16 code units under their indices, nothing for
/// other values. (A code unit that is half of a surrogate pair cannot be a Rust string;
/// it becomes U+FFFD, as it does when Node.js writes it as UTF-8.)
pub fn spread(value: Option<&Value>) -> Map<String, Value> {
    match value {
        Some(Value::Object(object)) => object.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| (index.to_string(), item.clone()))
            .collect(),
        Some(Value::String(text)) => text
            .encode_utf16()
            .enumerate()
            .map(|(index, unit)| {
                (
                    index.to_string(),
                    Value::String(String::from_utf16_lossy(&[unit])),
                )
            })
            .collect(),
        _ => Map::new(),
    }
}

/// `Number.prototype.toString()`: the shortest digits that read back as `value`, in
/// positional notation from 1e-7 up to 1e21 and in exponential notation (`1e+21`,
/// `1.5e-7`) outside that range.
pub fn number_to_string(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value == 0.0 {
        return "0".to_owned();
    }
    if value < 0.0 {
        return format!("-{}", number_to_string(-value));
    }
    if value.is_infinite() {
        return "Infinity".to_owned();
    }
    // Rust's `{:e}` prints the shortest round-tripping digits as `d.ddde<exp>`.
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` always prints an exponent");
    let digits = mantissa.replace('.', "");
    let exponent: i32 = exponent.parse().expect("`{:e}` prints an integer exponent");
    // ECMAScript's Number::toString in terms of k digits and the decimal point position n.
    let k = digits.len() as i32;
    let n = exponent + 1;
    if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        let (whole, fraction) = digits.split_at(n as usize);
        format!("{whole}.{fraction}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let sign = if n - 1 < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        format!("{first}{rest}e{sign}{}", (n - 1).abs())
    }
}

/// `key` as an array index: a canonical decimal integer below 2^32 - 1.
fn array_index(key: &str) -> Option<u32> {
    let canonical = !key.is_empty()
        && key.len() <= 10
        && key.bytes().all(|b| b.is_ascii_digit())
        && (key == "0" || !key.starts_with('0'));
    if !canonical {
        return None;
    }
    let index: u64 = key.parse().ok()?;
    u32::try_from(index).ok().filter(|&index| index < u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn array_indices_come_first_in_numeric_order() {
        // Node.js 20: Object.keys(JSON.parse(...)) of this object.
        let object: Map<String, Value> = serde_json::from_str(
            r#"{"b":1,"4294967295":2,"4294967294":3,"1":4,"01":5,"-1":6,"1.0":7,"10":8,"2":9}"#,
        )
        .unwrap();
        let keys: Vec<&str> = entries(&object).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "1",
                "2",
                "10",
                "4294967294",
                "b",
                "4294967295",
                "01",
                "-1",
                "1.0"
            ]
        );
    }

    #[test]
    fn spread_copies_what_javascript_copies() {
        assert_eq!(
            Value::Object(spread(Some(&json!({ "a": 1 })))),
            json!({ "a": 1 })
        );
        assert_eq!(
            Value::Object(spread(Some(&json!(["x", "y"])))),
            json!({ "0": "x", "1": "y" })
        );
        assert_eq!(
            Value::Object(spread(Some(&json!("ab")))),
            json!({ "0": "a", "1": "b" })
        );
        for nothing in [json!(null), json!(1), json!(true)] {
            assert!(spread(Some(&nothing)).is_empty());
        }
        assert!(spread(None).is_empty());
    }

    #[test]
    fn numbers_print_as_javascript_prints_them() {
        // Expected strings: Node.js 20, String(n).
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (123456789012345680000.0, "123456789012345680000"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (1e-6, "0.000001"),
            (1.5e-7, "1.5e-7"),
            (1e-7, "1e-7"),
            (9007199254740993.0, "9007199254740992"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (100.0, "100"),
            (123.456, "123.456"),
        ];
        for (value, expected) in cases {
            assert_eq!(number_to_string(*value), *expected, "{value:e}");
        }
    }
}
