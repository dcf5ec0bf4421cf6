//! Template values as JavaScript sees them: kinds, records read in JavaScript's property
//! order, truthiness, `ToPrimitive` with the conversions to number and string built on it,
//! and the relational order and strict equality nunjitsu's filters and tests compare with.

use std::cmp::Ordering;

use minijinja::Value;
use minijinja::value::ValueKind;

use super::numbers::{js_number_to_string, string_to_number};
use crate::render::filters::regex::JsRegex;
use crate::render::runtime::items;

pub(super) fn is_regex(value: &Value) -> bool {
    JsRegex::from_value(value).is_some()
}

/// A function (a global such as `always`), which nunjitsu calls a callable.
pub(super) fn is_callable(value: &Value) -> bool {
    value.kind() == ValueKind::Plain && !is_regex(value)
}

pub(super) fn no_callable(value: &Value) -> Result<(), String> {
    if is_callable(value) {
        return Err("Callable values cannot be coerced".into());
    }
    Ok(())
}

pub(super) fn is_string(value: &Value) -> bool {
    value.kind() == ValueKind::String
}

pub(super) fn is_plain_string(value: &Value) -> bool {
    is_string(value) && !value.is_safe()
}

pub(super) fn is_array(value: &Value) -> bool {
    matches!(value.kind(), ValueKind::Seq | ValueKind::Iterable)
}

pub(super) fn is_record(value: &Value) -> bool {
    value.kind() == ValueKind::Map
}

/// A record's entries, keys as strings, in JavaScript property order (integer-like keys first,
/// ascending, then the others in insertion order), as `Object.keys` of a parsed JSON object.
pub(super) fn entries(value: &Value) -> Vec<(String, Value)> {
    let mut indexed = Vec::new();
    let mut named = Vec::new();
    for key in items(value) {
        let item = value.get_item(&key).unwrap_or_default();
        let key = render(&key).unwrap_or_default();
        match array_index(&key) {
            Some(i) => indexed.push((i, key, item)),
            None => named.push((key, item)),
        }
    }
    indexed.sort_by_key(|(i, _, _)| *i);
    indexed
        .into_iter()
        .map(|(_, k, v)| (k, v))
        .chain(named)
        .collect()
}

/// A canonical array index (`"0"`, `"12"`, not `"01"`), as JavaScript orders property keys.
pub(super) fn array_index(key: &str) -> Option<u32> {
    let i: u32 = key.parse().ok()?;
    (i < u32::MAX && i.to_string() == key).then_some(i)
}

pub(super) fn record_get(value: &Value, key: &str) -> Value {
    value.get_item(&Value::from(key)).unwrap_or_default()
}

pub(super) fn record_has(value: &Value, key: &str) -> bool {
    items(value).iter().any(|k| k.as_str() == Some(key))
}

/// A record read as an array-like through its `length` and `"0"`, `"1"`, … keys
/// (`indexedRuntimeRecordValues`); `checked` also rejects a bad numeric `length`.
pub(super) fn record_indexed_values(value: &Value, checked: bool) -> Result<Vec<Value>, String> {
    let length = record_get(value, "length");
    if checked && length.kind() == ValueKind::Number {
        let l = to_number(&length)?;
        if !l.is_nan() && (l.fract() != 0.0 || !(0.0..=4_294_967_295.0).contains(&l)) {
            return Err("Invalid array-like record length".into());
        }
    }
    let count = to_number(&length)?;
    let count = if count.is_nan() || count <= 0.0 {
        0
    } else {
        count.ceil().min(1e6) as usize
    };
    Ok((0..count)
        .map(|i| record_get(value, &i.to_string()))
        .collect())
}

/// JavaScript truthiness as nunjitsu's `runtimeTruthy`: a safe string is always truthy, an
/// empty array or object too.
pub(crate) fn truthy(value: &Value) -> bool {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => false,
        ValueKind::Bool => value.is_true(),
        ValueKind::Number => f64_of(value).is_some_and(|f| f != 0.0 && !f.is_nan()),
        ValueKind::String => value.is_safe() || !value.as_str().unwrap_or_default().is_empty(),
        _ => true,
    }
}

pub(super) fn f64_of(value: &Value) -> Option<f64> {
    if let Some(i) = value.as_i64() {
        return Some(i as f64);
    }
    f64::try_from(value.clone()).ok()
}

/// A JavaScript primitive: what `ToPrimitive` makes of a template value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Primitive {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    String(String),
}

pub(crate) fn to_primitive(value: &Value) -> Result<Primitive, String> {
    Ok(match value.kind() {
        ValueKind::Undefined => Primitive::Undefined,
        ValueKind::None => Primitive::Null,
        ValueKind::Bool => Primitive::Bool(value.is_true()),
        ValueKind::Number => Primitive::Number(f64_of(value).unwrap_or(f64::NAN)),
        ValueKind::String => Primitive::String(value.as_str().unwrap_or_default().to_owned()),
        ValueKind::Seq | ValueKind::Iterable => {
            let parts: Result<Vec<String>, String> = items(value)
                .iter()
                .map(|item| {
                    if item.is_undefined() || item.is_none() {
                        Ok(String::new())
                    } else {
                        to_js_string(item)
                    }
                })
                .collect();
            Primitive::String(parts?.join(","))
        }
        ValueKind::Map => Primitive::String("[object Object]".into()),
        ValueKind::Plain => match JsRegex::from_value(value) {
            Some(regex) => Primitive::String(regex.to_string()),
            None => return Err("Callable values cannot be coerced".into()),
        },
        _ => Primitive::String(value.to_string()),
    })
}

pub(crate) fn primitive_to_number(p: &Primitive) -> f64 {
    match p {
        Primitive::Undefined => f64::NAN,
        Primitive::Null => 0.0,
        Primitive::Bool(b) => f64::from(u8::from(*b)),
        Primitive::Number(n) => *n,
        Primitive::String(s) => string_to_number(s),
    }
}

pub(crate) fn primitive_to_string(p: &Primitive) -> String {
    match p {
        Primitive::Undefined => "undefined".into(),
        Primitive::Null => "null".into(),
        Primitive::Bool(b) => b.to_string(),
        Primitive::Number(n) => js_number_to_string(*n),
        Primitive::String(s) => s.clone(),
    }
}

/// JavaScript's `Number(value)` (`runtimeToNumber`).
pub(crate) fn to_number(value: &Value) -> Result<f64, String> {
    Ok(primitive_to_number(&to_primitive(value)?))
}

/// JavaScript's `String(value)`: `undefined` and `null` spelled out.
pub(crate) fn to_js_string(value: &Value) -> Result<String, String> {
    Ok(primitive_to_string(&to_primitive(value)?))
}

/// How nunjitsu prints a value into text (`renderRuntimeValue`): nothing for undefined and
/// null, arrays joined with `,` (their undefined and null items empty).
pub(crate) fn render(value: &Value) -> Result<String, String> {
    Ok(match value.kind() {
        ValueKind::Undefined | ValueKind::None => String::new(),
        ValueKind::Seq | ValueKind::Iterable => {
            let parts: Result<Vec<String>, String> = items(value).iter().map(render).collect();
            parts?.join(",")
        }
        _ => to_js_string(value)?,
    })
}

/// The relational order of two values after `ToPrimitive` (`runtimeOrder`): strings compare
/// by UTF-16 code units, anything else as numbers; `None` when a side is NaN.
pub(super) fn order(left: &Value, right: &Value) -> Result<Option<Ordering>, String> {
    Ok(order_primitives(
        &to_primitive(left)?,
        &to_primitive(right)?,
    ))
}

pub(crate) fn order_primitives(left: &Primitive, right: &Primitive) -> Option<Ordering> {
    if let (Primitive::String(a), Primitive::String(b)) = (left, right) {
        return Some(a.encode_utf16().cmp(b.encode_utf16()));
    }
    primitive_to_number(left).partial_cmp(&primitive_to_number(right))
}

/// JavaScript's `===` over template values; containers compare by identity.
pub(crate) fn strict_equal(left: &Value, right: &Value) -> bool {
    match (left.kind(), right.kind()) {
        (ValueKind::Undefined, ValueKind::Undefined) | (ValueKind::None, ValueKind::None) => true,
        (ValueKind::Bool, ValueKind::Bool) => left.is_true() == right.is_true(),
        (ValueKind::Number, ValueKind::Number) => f64_of(left) == f64_of(right),
        (ValueKind::String, ValueKind::String) => {
            !left.is_safe() && !right.is_safe() && left.as_str() == right.as_str()
        }
        (a, b) if a == b && left.as_object().is_some() && right.as_object().is_some() => {
            minijinja::tests::is_sameas(left, right)
        }
        _ => false,
    }
}
