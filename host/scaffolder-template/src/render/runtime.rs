//! The functions translated expressions call (see `expr.rs`): JavaScript's operators,
//! member access and truthiness as nunjitsu applies them, `for` iteration, the `range`,
//! `cycler` and `joiner` globals, and the mutable arrays templates build.

use std::sync::{Arc, Mutex};

use minijinja::value::{Object, ObjectRepr, Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};

use super::Syntax;
use super::expr::RESERVED;
use super::filters::nunjucks::{self, Primitive};
use super::filters::regex::JsRegex;
use super::methods::{self, ARRAY_METHODS, NUMBER_METHODS, STRING_METHODS};

/// Registers the `__js_*` functions translated expressions call.
pub(crate) fn register(env: &mut Environment<'static>, syntax: Syntax) {
    let cookiecutter = syntax == Syntax::Cookiecutter;
    env.add_function("__js_op", op);
    env.add_function("__js_compare", compare);
    env.add_function("__js_get", |target: Value, key: Value| get(&target, &key));
    env.add_function("__js_slice", slice);
    env.add_function("__js_in", contains);
    env.add_function("__js_truthy", |v: Value| nunjucks::truthy(&v));
    env.add_function("__js_not", |v: Value| !nunjucks::truthy(&v));
    env.add_function("__js_neg", |v: Value| {
        Ok::<_, Error>(nunjucks::number(-num(&v)?))
    });
    env.add_function("__js_pos", |v: Value| {
        Ok::<_, Error>(nunjucks::number(num(&v)?))
    });
    env.add_function("__js_floor", |v: Value| {
        Ok::<_, Error>(nunjucks::number(num(&v)?.floor()))
    });
    env.add_function("__js_wrap", |v: Value| Value::from_object(Truthy(v)));
    env.add_function("__js_unwrap", |v: Value| unwrap(v));
    env.add_function("__js_last", |args: Rest<Value>| {
        args.0.last().cloned().unwrap_or(Value::UNDEFINED)
    });
    env.add_function("__js_array", |args: Rest<Value>| JsArray::value(args.0));
    env.add_function("__js_iter", iterate);
    // The object loop bodies assign shared variables in (`expr/shared.rs`, `shared_names`).
    env.add_function("__js_namespace", minijinja::functions::namespace);
    env.add_function("__js_not_callable", |_v: Value| -> Result<Value, Error> {
        Err(error("Template expression cannot be called"))
    });
    env.add_function(
        "__js_call",
        move |receiver: Value, name: String, unknown: String, args: Rest<Value>| {
            methods::call_method(&receiver, &name, &args.0, cookiecutter).map_err(|e| {
                if e.detail() == Some(methods::NOT_CALLABLE) {
                    error(unknown)
                } else {
                    e
                }
            })
        },
    );
    env.add_function("range", range);
    env.add_function("cycler", |args: Rest<Value>| {
        Value::from_object(Cycler {
            values: args.0,
            index: Mutex::new(-1),
        })
    });
    env.add_function("joiner", |args: Rest<Value>| {
        let separator = args
            .0
            .first()
            .filter(|v| nunjucks::truthy(v))
            .cloned()
            .unwrap_or_else(|| Value::from(","));
        Value::from_object(Joiner {
            separator,
            used: Mutex::new(false),
        })
    });
}

pub(crate) fn error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

pub(crate) fn num(v: &Value) -> Result<f64, Error> {
    nunjucks::to_number(v).map_err(error)
}

pub(crate) fn prim(v: &Value) -> Result<Primitive, Error> {
    nunjucks::to_primitive(v).map_err(error)
}

pub(crate) fn string(v: &Value) -> Result<String, Error> {
    nunjucks::to_js_string(v).map_err(error)
}

pub(crate) fn op(name: &str, left: Value, right: Value) -> Result<Value, Error> {
    if name == "concat" {
        return Ok(Value::from(string(&left)? + &string(&right)?));
    }
    if name == "add" {
        let (l, r) = (prim(&left)?, prim(&right)?);
        if matches!(l, Primitive::String(_)) || matches!(r, Primitive::String(_)) {
            return Ok(Value::from(
                nunjucks::primitive_to_string(&l) + &nunjucks::primitive_to_string(&r),
            ));
        }
        return Ok(nunjucks::number(
            nunjucks::primitive_to_number(&l) + nunjucks::primitive_to_number(&r),
        ));
    }
    let (l, r) = (num(&left)?, num(&right)?);
    Ok(nunjucks::number(match name {
        "sub" => l - r,
        "mul" => l * r,
        "div" => l / r,
        "mod" => l % r,
        "pow" => js_pow(l, r),
        _ => return Err(error(format!("Invalid binary operator {name}"))),
    }))
}

/// JavaScript's `**`: `NaN` for `(±1) ** ±Infinity` and for a `NaN` exponent.
fn js_pow(base: f64, exponent: f64) -> f64 {
    if exponent.is_nan() || (base.abs() == 1.0 && exponent.is_infinite()) {
        return f64::NAN;
    }
    base.powf(exponent)
}

fn compare(operator: &str, left: Value, right: Value) -> Result<bool, Error> {
    Ok(match operator {
        "==" => loose_equal(&left, &right)?,
        "!=" => !loose_equal(&left, &right)?,
        "===" => nunjucks::strict_equal(&left, &right),
        "!==" => !nunjucks::strict_equal(&left, &right),
        _ => {
            let order = order(&left, &right)?;
            match operator {
                "<" => order.is_some_and(|o| o < 0.0),
                "<=" => order.is_some_and(|o| o <= 0.0),
                ">" => order.is_some_and(|o| o > 0.0),
                ">=" => order.is_some_and(|o| o >= 0.0),
                _ => return Err(error(format!("Unsupported comparison operator {operator}"))),
            }
        }
    })
}

/// `runtimeOrder`: -1, 0, 1, or `None` for NaN (`nunjucks/values.rs`'s order, as a number).
pub(crate) fn order(left: &Value, right: &Value) -> Result<Option<f64>, Error> {
    let ordering = nunjucks::order_primitives(&prim(left)?, &prim(right)?);
    Ok(ordering.map(|o| o as i8 as f64))
}

fn is_primitive(v: &Value) -> bool {
    matches!(
        v.kind(),
        ValueKind::Undefined
            | ValueKind::None
            | ValueKind::Bool
            | ValueKind::Number
            | ValueKind::String
    )
}

/// JavaScript's `==` (`runtimeLooseEqual`).
fn loose_equal(left: &Value, right: &Value) -> Result<bool, Error> {
    if nunjucks::strict_equal(left, right) {
        return Ok(true);
    }
    if !is_primitive(left) && !is_primitive(right) {
        return Ok(false);
    }
    Ok(primitive_loose_equal(&prim(left)?, &prim(right)?))
}

fn primitive_loose_equal(left: &Primitive, right: &Primitive) -> bool {
    use Primitive as P;
    match (left, right) {
        (P::Undefined | P::Null, P::Undefined | P::Null) => true,
        (P::Undefined | P::Null, _) | (_, P::Undefined | P::Null) => false,
        (P::Bool(a), P::Bool(b)) => a == b,
        (P::Number(a), P::Number(b)) => a == b,
        (P::String(a), P::String(b)) => a == b,
        (P::Bool(b), other) => primitive_loose_equal(&P::Number(f64::from(u8::from(*b))), other),
        (other, P::Bool(b)) => primitive_loose_equal(other, &P::Number(f64::from(u8::from(*b)))),
        (P::Number(n), P::String(s)) | (P::String(s), P::Number(n)) => {
            *n == nunjucks::string_to_number(s)
        }
    }
}

/// `in`: a substring of a string, an identical item of an array, a key of an object.
fn contains(needle: Value, container: Value) -> Result<bool, Error> {
    match container.kind() {
        ValueKind::String => Ok(container
            .as_str()
            .unwrap_or_default()
            .contains(string(&needle)?.as_str())),
        ValueKind::Seq | ValueKind::Iterable => Ok(items(&container)
            .iter()
            .any(|v| nunjucks::strict_equal(v, &needle))),
        ValueKind::Map => Ok(!own(&container, &string(&needle)?).is_undefined()),
        _ => Err(error("Membership requires an array, record, or string")),
    }
}

pub(crate) fn items(v: &Value) -> Vec<Value> {
    if let Some(array) = v.downcast_object_ref::<JsArray>() {
        return array.items.lock().expect("not poisoned").clone();
    }
    v.try_iter().map(|i| i.collect()).unwrap_or_default()
}

pub(crate) fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

pub(crate) fn from_utf16(units: &[u16]) -> String {
    String::from_utf16_lossy(units)
}

/// A canonical array index (`"2"`, not `"02"` or `"-1"`) below `len`.
fn canonical_index(key: &str, len: usize) -> Option<usize> {
    let i: usize = key.parse().ok()?;
    (i.to_string() == key && i < len).then_some(i)
}

pub(crate) fn own(map: &Value, key: &str) -> Value {
    map.get_item(&Value::from(key)).unwrap_or(Value::UNDEFINED)
}

/// Member access (`a.b`, `a[b]`): own properties only (a record's keys, an array's or a
/// string's indices and `length`); an approved method name gives a method value that only
/// a call may use.
fn get(target: &Value, key: &Value) -> Result<Value, Error> {
    let key = string(key)?;
    if RESERVED.contains(&key.as_str()) {
        return Ok(Value::UNDEFINED);
    }
    let found = match target.kind() {
        ValueKind::String => {
            let units = utf16(target.as_str().unwrap_or_default());
            if key == "length" {
                Value::from(units.len())
            } else if let Some(i) = canonical_index(&key, units.len()) {
                Value::from(from_utf16(&units[i..=i]))
            } else {
                Value::UNDEFINED
            }
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let list = items(target);
            if key == "length" {
                Value::from(list.len())
            } else if let Some(i) = canonical_index(&key, list.len()) {
                list[i].clone()
            } else {
                Value::UNDEFINED
            }
        }
        ValueKind::Map => own(target, &key),
        ValueKind::Plain if target.downcast_object_ref::<JsRegex>().is_none() => {
            target.get_attr(&key).unwrap_or(Value::UNDEFINED)
        }
        _ => Value::UNDEFINED,
    };
    if !found.is_undefined() || !is_method(target, &key) {
        return Ok(found);
    }
    Ok(Value::from_object(Method))
}

/// Whether `name` is a method nunjitsu approves for `target` (outside cookiecutter mode).
fn is_method(target: &Value, name: &str) -> bool {
    match target.kind() {
        ValueKind::String => STRING_METHODS.contains(&name),
        ValueKind::Number => NUMBER_METHODS.contains(&name),
        ValueKind::Seq | ValueKind::Iterable => ARRAY_METHODS.contains(&name),
        _ => false,
    }
}

/// A method read without calling it (`name.toUpperCase`): it cannot be printed or copied
/// out ("Callable values cannot be coerced"), only tested for truthiness.
#[derive(Debug)]
struct Method;

impl Object for Method {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }
}

/// `x[a:b:c]`, nunjitsu's slice over an array or a string's characters.
fn slice(target: Value, start: Value, stop: Value, step: Value) -> Result<Value, Error> {
    let list: Vec<Value> = if !nunjucks::truthy(&target) {
        Vec::new()
    } else if let Some(s) = target.as_str() {
        utf16(s)
            .iter()
            .map(|u| Value::from(from_utf16(&[*u])))
            .collect()
    } else {
        items(&target)
    };
    let len = list.len() as f64;
    let step_n = num(&step)?;
    if !step_n.is_finite() || step_n == 0.0 {
        return Err(error(
            "Slice step must have finite non-zero numeric coercion",
        ));
    }
    let mut index = if start.is_none() {
        if step_n < 0.0 { len - 1.0 } else { 0.0 }
    } else {
        num(&start)?
    };
    let stop = if stop.is_none() {
        if step_n < 0.0 { -1.0 } else { len }
    } else {
        let s = num(&stop)?;
        if s < 0.0 { s + len } else { s }
    };
    if index < 0.0 {
        index += len;
    }
    let mut out = Vec::new();
    loop {
        if index < 0.0 || index > len || out.len() > list.len() {
            break;
        }
        if (step_n > 0.0 && index >= stop) || (step_n < 0.0 && index <= stop) {
            break;
        }
        if index.fract() == 0.0 && (index as usize) < list.len() {
            out.push(list[index as usize].clone());
        } else {
            out.push(Value::UNDEFINED);
        }
        index += step_n;
    }
    Ok(JsArray::value(out))
}

/// What `{% for %}` iterates: an array's items; with two targets a record's `[key, value]`
/// pairs; with one target a string's characters; nothing for anything else (a record with
/// one target included, as nunjitsu reads it as array-like).
fn iterate(value: Value, targets: usize) -> Value {
    match value.kind() {
        ValueKind::Seq | ValueKind::Iterable => Value::from(items(&value)),
        ValueKind::String => Value::from(
            utf16(value.as_str().unwrap_or_default())
                .iter()
                .map(|u| Value::from(from_utf16(&[*u])))
                .collect::<Vec<_>>(),
        ),
        ValueKind::Map if targets > 1 => Value::from(
            value
                .try_iter()
                .map(|keys| {
                    keys.map(|k| {
                        let v = value.get_item(&k).unwrap_or(Value::UNDEFINED);
                        Value::from(vec![k, v])
                    })
                    .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        ),
        _ => Value::from(Vec::<Value>::new()),
    }
}

const MUTATING_METHODS: &[&str] = &[
    "append",
    "copyWithin",
    "fill",
    "insert",
    "pop",
    "push",
    "remove",
    "reverse",
    "shift",
    "sort",
    "splice",
    "unshift",
];

/// Whether a template may change an array of its context (`parameters.tags.sort()`): nunjitsu
/// lets it, on a copy of the context made for that render.
pub(crate) fn may_mutate(source: &str) -> bool {
    MUTATING_METHODS
        .iter()
        .any(|m| source.contains(&format!(".{m}(")))
}

/// A copy of `value` whose arrays are mutable [`JsArray`]s, for a render that may change them.
pub(crate) fn mutable_copy(value: &Value) -> Value {
    match value.kind() {
        ValueKind::Seq => JsArray::value(items(value).iter().map(mutable_copy).collect()),
        ValueKind::Map
            if value
                .as_object()
                .is_none_or(|o| o.repr() == ObjectRepr::Map) =>
        {
            let keys: Vec<Value> = value.try_iter().map(|k| k.collect()).unwrap_or_default();
            Value::from_pairs(keys.into_iter().map(|k| {
                let v = value.get_item(&k).unwrap_or_default();
                (k, mutable_copy(&v))
            }))
        }
        _ => value.clone(),
    }
}

/// The most items `range` builds (nunjitsu stops on its work limit instead).
const MAX_RANGE: usize = 100_000;

/// nunjitsu's `range(stop)`, `range(start, stop[, step])` with JavaScript's `+` and `<`
/// (float steps included); a falsy step is 1.
fn range(args: Rest<Value>) -> Result<Value, Error> {
    let args = args.0;
    if args.len() > 3 {
        return Err(error(
            "Built-in global range accepts at most 3 positional arguments",
        ));
    }
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::UNDEFINED);
    let (start, stop, step) = if args.len() < 2 {
        (Value::from(0), arg(0), Value::from(1))
    } else if nunjucks::truthy(&arg(2)) {
        (arg(0), arg(1), arg(2))
    } else {
        (arg(0), arg(1), Value::from(1))
    };
    let ascending = order(&step, &Value::from(0))?.is_some_and(|o| o > 0.0);
    let mut out = Vec::new();
    let mut value = start;
    loop {
        let o = order(&value, &stop)?;
        let go_on = if ascending {
            o.is_some_and(|o| o < 0.0)
        } else {
            o.is_some_and(|o| o > 0.0)
        };
        if !go_on {
            break;
        }
        if out.len() >= MAX_RANGE {
            return Err(error(format!(
                "range would build more than {MAX_RANGE} items"
            )));
        }
        out.push(value.clone());
        value = op("add", value, step.clone())?;
    }
    Ok(JsArray::value(out))
}

/// A value whose truthiness is JavaScript's, for `and`/`or`.
#[derive(Debug)]
struct Truthy(Value);

impl Object for Truthy {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn is_true(self: &Arc<Self>) -> bool {
        nunjucks::truthy(&self.0)
    }
}

fn unwrap(v: Value) -> Value {
    match v.downcast_object_ref::<Truthy>() {
        Some(t) => t.0.clone(),
        None => v,
    }
}

/// An array made in a template (a literal or a method's result): arrays are mutable in
/// nunjitsu (`push`, `sort`, `append` in cookiecutter mode) during one render.
#[derive(Debug, Default)]
pub(crate) struct JsArray {
    pub(crate) items: Mutex<Vec<Value>>,
}

impl JsArray {
    pub(crate) fn value(items: Vec<Value>) -> Value {
        Value::from_object(JsArray {
            items: Mutex::new(items),
        })
    }
}

impl Object for JsArray {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let i = key.as_usize()?;
        self.items.lock().expect("not poisoned").get(i).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Seq(self.items.lock().expect("not poisoned").len())
    }
}

#[derive(Debug)]
pub(crate) struct Cycler {
    values: Vec<Value>,
    index: Mutex<i64>,
}

impl Object for Cycler {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if key.as_str() == Some("current") {
            let index = *self.index.lock().expect("not poisoned");
            return Some(if index < 0 {
                Value::from(())
            } else {
                self.values
                    .get(index as usize)
                    .cloned()
                    .unwrap_or(Value::UNDEFINED)
            });
        }
        None
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        self.invoke(method, args)
    }
}

impl Cycler {
    pub(crate) fn invoke(&self, method: &str, args: &[Value]) -> Result<Value, Error> {
        if !args.is_empty() {
            return Err(error(format!(
                "Cycler {method} requires 0 positional arguments"
            )));
        }
        let mut index = self.index.lock().expect("not poisoned");
        match method {
            "reset" => {
                *index = -1;
                Ok(Value::UNDEFINED)
            }
            "next" if self.values.is_empty() => {
                *index = 0;
                Ok(Value::UNDEFINED)
            }
            "next" => {
                *index = (*index + 1) % self.values.len() as i64;
                Ok(self.values[*index as usize].clone())
            }
            _ => Err(error(format!("cycler has no method {method}"))),
        }
    }
}

#[derive(Debug)]
struct Joiner {
    separator: Value,
    used: Mutex<bool>,
}

impl Object for Joiner {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        if !args.is_empty() {
            return Err(error("Joiner instance requires 0 positional arguments"));
        }
        let mut used = self.used.lock().expect("not poisoned");
        if !*used {
            *used = true;
            return Ok(Value::from(""));
        }
        Ok(self.separator.clone())
    }
}
