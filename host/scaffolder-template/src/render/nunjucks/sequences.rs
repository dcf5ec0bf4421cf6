//! The filters over sequences and records: `batch`, `first`/`last`, `length`, `list`,
//! `groupby`, `join`, `sum`, `select`/`reject`, `selectattr`/`rejectattr`, `slice`, `random`,
//! with the attribute lookups they share.

use minijinja::Value;
use minijinja::value::ValueKind;

use super::is_tests::{apply_test, check_arity};
use super::numbers::{js_number_to_string, number};
use super::strings::{bounded, code_units, utf16_len};
use super::values::{
    Primitive, array_index, entries, is_array, is_plain_string, is_record, is_string,
    primitive_to_number, primitive_to_string, record_get, record_has, record_indexed_values,
    to_js_string, to_number, to_primitive, truthy,
};
use super::{Filtered, TESTS};
use crate::render::runtime::items;

pub(super) fn batch(input: &Value, size: &Value, fill: &Value) -> Filtered {
    if input.is_undefined() || input.is_none() {
        return Err("batch requires a sequence".into());
    }
    let width = to_number(size)?.trunc();
    if !(width.is_finite() && width > 0.0 && width <= 9_007_199_254_740_991.0) {
        return Err("Batch size must be a positive integer".into());
    }
    let width = width as usize;
    let values = if is_record(input) {
        record_indexed_values(input, false)?
    } else {
        match sequence_values(input) {
            Some(v) => v,
            None => return Ok(Value::from(Vec::<Value>::new())),
        }
    };
    let mut rows: Vec<Value> = Vec::new();
    let mut row: Vec<Value> = Vec::new();
    for value in values {
        row.push(value);
        if row.len() == width {
            rows.push(Value::from(std::mem::take(&mut row)));
        }
    }
    if !row.is_empty() {
        if truthy(fill) {
            bounded(width - row.len())?;
            while row.len() < width {
                row.push(fill.clone());
            }
        }
        rows.push(Value::from(row));
    }
    Ok(Value::from(rows))
}

/// `runtimeSequenceValues`: an array's items, a string's UTF-16 code units; else none.
pub(super) fn sequence_values(input: &Value) -> Option<Vec<Value>> {
    if is_array(input) {
        return Some(items(input));
    }
    if is_string(input) {
        return Some(code_units(input.as_str().unwrap_or_default()));
    }
    None
}

pub(super) fn edge(input: &Value, last: bool) -> Filtered {
    if input.is_undefined() || input.is_none() {
        return Err(format!(
            "{} requires a sequence",
            if last { "last" } else { "first" }
        ));
    }
    if is_array(input) {
        let items = items(input);
        let item = if last { items.last() } else { items.first() };
        return Ok(item.cloned().unwrap_or(Value::UNDEFINED));
    }
    if is_string(input) {
        let units = code_units(input.as_str().unwrap_or_default());
        let unit = if last { units.last() } else { units.first() };
        return Ok(unit.cloned().unwrap_or(Value::UNDEFINED));
    }
    if is_record(input) {
        if !last {
            return Ok(record_get(input, "0"));
        }
        let index = to_number(&record_get(input, "length"))? - 1.0;
        return Ok(record_get(input, &js_number_to_string(index)));
    }
    Ok(Value::UNDEFINED)
}

/// `runtimeLength`: strings, arrays and records have one; undefined, null and false are 0;
/// anything else is undefined.
pub(super) fn length(input: &Value) -> Value {
    match input.kind() {
        ValueKind::Seq | ValueKind::Iterable => Value::from(items(input).len()),
        ValueKind::Map => Value::from(items(input).len()),
        ValueKind::String => Value::from(utf16_len(input.as_str().unwrap_or_default())),
        ValueKind::Undefined | ValueKind::None => Value::from(0),
        ValueKind::Bool if !input.is_true() => Value::from(0),
        _ => Value::UNDEFINED,
    }
}

pub(super) fn list(input: &Value) -> Filtered {
    if is_array(input) {
        return Ok(input.clone());
    }
    if is_string(input) {
        return Ok(Value::from(code_units(input.as_str().unwrap_or_default())));
    }
    if is_record(input) {
        return Ok(Value::from(
            entries(input)
                .into_iter()
                .map(|(k, v)| {
                    Value::from_pairs([
                        (Value::from("key"), Value::from(k)),
                        (Value::from("value"), v),
                    ])
                })
                .collect::<Vec<_>>(),
        ));
    }
    Err("list requires an iterable value".into())
}

pub(super) fn groupby(input: &Value, attribute: &Value) -> Filtered {
    if input.is_undefined() || input.is_none() {
        return Err("groupby requires a sequence".into());
    }
    let values = if is_record(input) {
        record_indexed_values(input, false)?
    } else {
        match sequence_values(input) {
            Some(v) => v,
            None => return Ok(Value::from_pairs(Vec::<(Value, Value)>::new())),
        }
    };
    let path = attribute_path(attribute)?;
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    for value in values {
        let key = to_js_string(&lookup_path(&value, &path)?)?;
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(value),
            None => groups.push((key, vec![value])),
        }
    }
    // A record's keys, as a JavaScript object prints them: integer-like keys first.
    let record = Value::from_pairs(
        groups
            .into_iter()
            .map(|(k, v)| (Value::from(k), Value::from(v))),
    );
    Ok(Value::from_pairs(
        entries(&record)
            .into_iter()
            .map(|(k, v)| (Value::from(k), v)),
    ))
}

/// `getterAttributePath`: a falsy attribute is the item itself, a string splits on `.`.
pub(super) fn attribute_path(attribute: &Value) -> Result<Vec<String>, String> {
    if !truthy(attribute) {
        return Ok(Vec::new());
    }
    if is_plain_string(attribute) {
        return Ok(attribute
            .as_str()
            .unwrap_or_default()
            .split('.')
            .map(str::to_owned)
            .collect());
    }
    Ok(vec![to_js_string(attribute)?])
}

/// `lookupRuntimeAttributePath`: own properties only; a missing one is undefined, reading
/// from undefined or null fails.
pub(super) fn lookup_path(value: &Value, path: &[String]) -> Result<Value, String> {
    let mut current = value.clone();
    for segment in path {
        if current.is_undefined() || current.is_none() {
            return Err("Cannot read a template attribute from a nullish value".into());
        }
        current = own_property(&current, segment);
    }
    Ok(current)
}

/// An own property of a value: a record's key, an array's or string's index or `length`.
pub(super) fn own_property(value: &Value, key: &str) -> Value {
    match value.kind() {
        ValueKind::Map => {
            if record_has(value, key) {
                record_get(value, key)
            } else {
                Value::UNDEFINED
            }
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items = items(value);
            if key == "length" {
                return Value::from(items.len());
            }
            array_index(key)
                .and_then(|i| items.get(i as usize).cloned())
                .unwrap_or(Value::UNDEFINED)
        }
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            if key == "length" {
                return Value::from(utf16_len(s));
            }
            array_index(key)
                .and_then(|i| code_units(s).get(i as usize).cloned())
                .unwrap_or(Value::UNDEFINED)
        }
        _ => Value::UNDEFINED,
    }
}

/// `lookupRuntimeAttribute`: one own property; reading from undefined or null fails.
pub(super) fn lookup_attribute(value: &Value, key: &str) -> Result<Value, String> {
    if value.is_undefined() || value.is_none() {
        return Err("Cannot read a template attribute from a nullish value".into());
    }
    Ok(own_property(value, key))
}

/// `projectRuntimeAttributeValues`: an attribute of every item.
pub(super) fn project(input: &Value, attribute: &str) -> Result<Vec<Value>, String> {
    match input.kind() {
        ValueKind::Seq | ValueKind::Iterable => items(input)
            .iter()
            .map(|item| lookup_attribute(item, attribute))
            .collect(),
        ValueKind::String if !input.is_safe() => code_units(input.as_str().unwrap_or_default())
            .iter()
            .map(|item| lookup_attribute(item, attribute))
            .collect(),
        ValueKind::Map => record_indexed_values(input, true)?
            .iter()
            .map(|item| lookup_attribute(item, attribute))
            .collect(),
        ValueKind::String if !input.as_str().unwrap_or_default().is_empty() => {
            lookup_attribute(&Value::UNDEFINED, attribute).map(|_| Vec::new())
        }
        _ => Ok(Vec::new()),
    }
}

pub(super) fn join(input: &Value, separator: &Value, attribute: &Value) -> Filtered {
    let separator = if truthy(separator) {
        to_js_string(separator)?
    } else {
        String::new()
    };
    let values = if truthy(attribute) {
        project(input, &to_js_string(attribute)?)?
    } else {
        if !is_array(input) {
            return Err("join requires an array".into());
        }
        items(input)
    };
    let parts: Result<Vec<String>, String> = values
        .iter()
        .map(|item| {
            if item.is_undefined() || item.is_none() {
                Ok(String::new())
            } else {
                to_js_string(item)
            }
        })
        .collect();
    Ok(Value::from(parts?.join(&separator)))
}

/// JavaScript's `+` after `ToPrimitive` (`runtimeAdd`).
pub(super) fn add(left: &Value, right: &Value) -> Result<Value, String> {
    let (a, b) = (to_primitive(left)?, to_primitive(right)?);
    if matches!(a, Primitive::String(_)) || matches!(b, Primitive::String(_)) {
        return Ok(Value::from(
            primitive_to_string(&a) + &primitive_to_string(&b),
        ));
    }
    Ok(number(primitive_to_number(&a) + primitive_to_number(&b)))
}

pub(super) fn sum(input: &Value, attribute: &Value, start: &Value) -> Filtered {
    let values = if truthy(attribute) {
        project(input, &to_js_string(attribute)?)?
    } else {
        if !is_array(input) {
            return Err("sum requires an array".into());
        }
        items(input)
    };
    let mut reduced = Value::from(0);
    for value in &values {
        reduced = add(&reduced, value)?;
    }
    let start = if start.is_undefined() {
        Value::from(0)
    } else {
        start.clone()
    };
    add(&start, &reduced)
}

pub(super) fn select_attr(input: &Value, attribute: &Value, select: bool) -> Filtered {
    if !is_array(input) {
        return Err(format!(
            "{} requires an array",
            if select { "selectattr" } else { "rejectattr" }
        ));
    }
    let key = to_js_string(attribute)?;
    let mut out = Vec::new();
    for item in items(input) {
        if truthy(&lookup_attribute(&item, &key)?) == select {
            out.push(item);
        }
    }
    Ok(Value::from(out))
}

pub(super) fn select(input: &Value, args: &[Value], select: bool) -> Filtered {
    let test = match args.first() {
        None => "truthy".to_owned(),
        Some(v) if v.is_undefined() => "truthy".to_owned(),
        Some(v) => to_js_string(v)?,
    };
    let Some(&(_, arity)) = TESTS.iter().find(|(n, _)| *n == test) else {
        return Err(format!("Unknown template test {test}"));
    };
    if input.is_undefined() || input.is_none() {
        return Err(format!(
            "{} requires a sequence",
            if select { "select" } else { "reject" }
        ));
    }
    let values = if is_record(input) {
        let length = to_number(&record_get(input, "length"))?;
        let count = if length.is_nan() || length <= 0.0 {
            0
        } else {
            length.floor().min(1e6) as usize
        };
        (0..count)
            .map(|i| i.to_string())
            .filter(|k| record_has(input, k))
            .map(|k| record_get(input, &k))
            .collect()
    } else {
        match sequence_values(input) {
            Some(v) => v,
            None => return Ok(Value::from(Vec::<Value>::new())),
        }
    };
    let test_args = args.get(1..).unwrap_or_default();
    check_arity(&test, arity, test_args.len())?;
    let mut out = Vec::new();
    for value in values {
        if apply_test(&test, &value, test_args)? == select {
            out.push(value);
        }
    }
    Ok(Value::from(out))
}

pub(super) fn slice(input: &Value, count: &Value, fill: &Value) -> Filtered {
    let Some(values) = sequence_values(input) else {
        return Err("slice requires a sequence".into());
    };
    let count = to_number(count)?.trunc();
    if !(count.is_finite() && count > 0.0 && count <= 9_007_199_254_740_991.0) {
        return Err("Slice count must be a positive integer".into());
    }
    let count = count as usize;
    if count > 1_000_000 {
        return Err("Slice count must be a positive integer".into());
    }
    let base = values.len() / count;
    let extra = values.len() % count;
    let text: Option<Vec<u16>> =
        is_string(input).then(|| input.as_str().unwrap_or_default().encode_utf16().collect());
    let mut out = Vec::with_capacity(count);
    let mut offset = 0;
    for index in 0..count {
        let length = base + usize::from(index < extra);
        let end = (offset + length).min(values.len());
        let start = offset.min(end);
        offset += length;
        match &text {
            Some(units) => {
                if truthy(fill) && index >= extra {
                    return Err("slice cannot append a fill value to a string".into());
                }
                out.push(Value::from(String::from_utf16_lossy(&units[start..end])));
            }
            None => {
                let mut part = values[start..end].to_vec();
                if truthy(fill) && index >= extra {
                    part.push(fill.clone());
                }
                out.push(Value::from(part));
            }
        }
    }
    Ok(Value::from(out))
}

pub(super) fn random(input: &Value) -> Filtered {
    if input.is_undefined() || input.is_none() {
        return Err("random requires a sequence".into());
    }
    let values = if is_record(input) {
        record_indexed_values(input, false)?
    } else {
        sequence_values(input).unwrap_or_default()
    };
    if values.is_empty() {
        return Ok(Value::UNDEFINED);
    }
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_usize(values.len());
    let index = (hasher.finish() % values.len() as u64) as usize;
    Ok(values[index].clone())
}
