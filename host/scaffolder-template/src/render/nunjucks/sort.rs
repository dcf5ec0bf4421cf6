//! The sorting filters, `sort` and `dictsort`, on V8's `Array.prototype.sort`, whose order
//! they keep even for inconsistent comparisons.

use std::cmp::Ordering;

use minijinja::Value;

use super::Filtered;
use super::sequences::{attribute_path, own_property, sequence_values};
use super::strings::js_upper;
use super::values::{
    entries, is_plain_string, is_record, is_string, order, record_indexed_values, strict_equal,
    truthy,
};

pub(super) fn dictsort(input: &Value, case_sensitive: &Value, by: &Value) -> Filtered {
    if !is_record(input) {
        return Err("dictsort requires a record".into());
    }
    let case_sensitive = truthy(case_sensitive);
    let by_value = match by.as_str() {
        _ if by.is_undefined() => false,
        Some("key") if is_plain_string(by) => false,
        Some("value") if is_plain_string(by) => true,
        _ => return Err("dictsort can only sort by key or value".into()),
    };
    let mut pairs: Vec<(Value, Value)> = entries(input)
        .into_iter()
        .map(|(k, v)| (Value::from(k), v))
        .collect();
    let normalise = |v: &Value| {
        if !case_sensitive && is_string(v) {
            Value::from(js_upper(v.as_str().unwrap_or_default()))
        } else {
            v.clone()
        }
    };
    js_sort(&mut pairs, |a, b| {
        let (a, b) = if by_value { (&a.1, &b.1) } else { (&a.0, &b.0) };
        let (a, b) = (normalise(a), normalise(b));
        if order(&a, &b).ok().flatten() == Some(Ordering::Greater) {
            1.0
        } else if strict_equal(&a, &b) {
            0.0
        } else {
            -1.0
        }
    });
    Ok(Value::from(
        pairs
            .into_iter()
            .map(|(k, v)| Value::from(vec![k, v]))
            .collect::<Vec<_>>(),
    ))
}

pub(super) fn sort(
    input: &Value,
    reverse: &Value,
    case_sensitive: &Value,
    attribute: &Value,
) -> Filtered {
    let values = if is_record(input) {
        record_indexed_values(input, true)?
    } else if let Some(values) = sequence_values(input) {
        values
    } else {
        return Ok(Value::from(Vec::<Value>::new()));
    };
    let reverse = truthy(reverse);
    let case_sensitive = truthy(case_sensitive);
    let path = attribute_path(attribute)?;
    // Array.prototype.sort moves undefined items to the end without comparing them.
    let (mut defined, undefined): (Vec<Value>, Vec<Value>) =
        values.into_iter().partition(|v| !v.is_undefined());
    let mut failure = None;
    let mut keyed: Vec<(Value, Value)> = Vec::with_capacity(defined.len());
    for value in defined.drain(..) {
        match lookup_sort_path(&value, &path) {
            Ok(key) => keyed.push((key, value)),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    js_sort(&mut keyed, |(a, _), (b, _)| {
        let (a, b) = if !case_sensitive && is_string(a) && is_string(b) {
            (
                Value::from(a.as_str().unwrap_or_default().to_lowercase()),
                Value::from(b.as_str().unwrap_or_default().to_lowercase()),
            )
        } else {
            (a.clone(), b.clone())
        };
        match order(&a, &b).ok().flatten() {
            Some(Ordering::Less) => {
                if reverse {
                    1.0
                } else {
                    -1.0
                }
            }
            Some(Ordering::Greater) => {
                if reverse {
                    -1.0
                } else {
                    1.0
                }
            }
            _ => 0.0,
        }
    });
    let mut out: Vec<Value> = keyed.into_iter().map(|(_, v)| v).collect();
    out.extend(undefined);
    Ok(Value::from(out))
}

/// The sort key of an item: like [`lookup_path`](super::sequences::lookup_path), but a
/// missing key ends the path.
pub(super) fn lookup_sort_path(value: &Value, path: &[String]) -> Result<Value, String> {
    let mut current = value.clone();
    for segment in path {
        if current.is_undefined() || current.is_none() {
            return Err("Cannot read a template attribute from a nullish value".into());
        }
        current = own_property(&current, segment);
        if current.is_undefined() {
            return Ok(current);
        }
    }
    Ok(current)
}

/// V8's `Array.prototype.sort` for the lengths templates use: below 64 items, the initial
/// run then binary insertion (so inconsistent comparators order items as Node does); longer
/// arrays a stable merge sort. Never panics, whatever the comparator answers.
pub(super) fn js_sort<T: Clone>(items: &mut [T], mut compare: impl FnMut(&T, &T) -> f64) {
    let n = items.len();
    if n < 2 {
        return;
    }
    if n >= 64 {
        merge_sort(items, &mut compare);
        return;
    }
    // CountAndMakeRun.
    let mut run = 2;
    let descending = compare(&items[1], &items[0]) < 0.0;
    while run < n {
        let order = compare(&items[run], &items[run - 1]);
        if (descending && order >= 0.0) || (!descending && order < 0.0) {
            break;
        }
        run += 1;
    }
    if descending {
        items[..run].reverse();
    }
    // BinaryInsertionSort from the end of the run.
    for start in run..n {
        let pivot = items[start].clone();
        let (mut left, mut right) = (0, start);
        while left < right {
            let mid = left + ((right - left) >> 1);
            if compare(&pivot, &items[mid]) < 0.0 {
                right = mid;
            } else {
                left = mid + 1;
            }
        }
        items[left..=start].rotate_right(1);
    }
}

pub(super) fn merge_sort<T: Clone>(items: &mut [T], compare: &mut impl FnMut(&T, &T) -> f64) {
    let n = items.len();
    if n < 2 {
        return;
    }
    let mid = n / 2;
    merge_sort(&mut items[..mid], compare);
    merge_sort(&mut items[mid..], compare);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, mid);
    while i < mid && j < n {
        if compare(&items[j], &items[i]) < 0.0 {
            merged.push(items[j].clone());
            j += 1;
        } else {
            merged.push(items[i].clone());
            i += 1;
        }
    }
    merged.extend_from_slice(&items[i..mid]);
    merged.extend_from_slice(&items[j..n]);
    items.clone_from_slice(&merged);
}
