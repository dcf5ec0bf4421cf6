//! Nunjucks' built-in tests (`x is odd`, `x is divisibleby(3)`) as nunjitsu's
//! `applyBuiltinTest` runs them, their argument count checked first.

use std::cmp::Ordering;

use minijinja::value::ValueKind;
use minijinja::{Error, ErrorKind, Value};

use super::numbers::js_rem;
use super::strings::{js_upper, text};
use super::values::{
    is_array, is_callable, is_plain_string, is_record, is_regex, is_string, no_callable, order,
    strict_equal, to_number, truthy,
};
use super::{arg, kind_name};

pub(super) fn check_arity(name: &str, expected: usize, actual: usize) -> Result<(), String> {
    if actual != expected {
        return Err(format!(
            "Template test {name} requires {expected} positional argument{}",
            if expected == 1 { "" } else { "s" }
        ));
    }
    Ok(())
}

pub(super) fn call_test(
    name: &str,
    arity: usize,
    input: &Value,
    args: &[Value],
) -> Result<bool, Error> {
    let run = || {
        check_arity(name, arity, args.len())?;
        apply_test(name, input, args)
    };
    run().map_err(|message| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "Test \"{name}\" failed for {} input: {message}",
                kind_name(input)
            ),
        )
    })
}

/// nunjitsu's `applyBuiltinTest`.
pub(super) fn apply_test(name: &str, input: &Value, args: &[Value]) -> Result<bool, String> {
    if !matches!(name, "callable" | "eq" | "equalto" | "sameas" | "ne") {
        no_callable(input)?;
        for a in args {
            no_callable(a)?;
        }
    }
    let p0 = arg(args, 0);
    let rem = |divisor: f64| -> Result<f64, String> { Ok(js_rem(to_number(input)?, divisor)) };
    Ok(match name {
        "callable" => is_callable(input),
        "defined" => !input.is_undefined(),
        "divisibleby" => rem(to_number(&p0)?)? == 0.0,
        "escaped" => input.is_safe(),
        "eq" | "equalto" | "sameas" => args.len() == 1 && strict_equal(input, &p0),
        "ne" => args.len() != 1 || !strict_equal(input, &p0),
        "even" => rem(2.0)? == 0.0,
        "odd" => rem(2.0)? == 1.0,
        "falsy" => !truthy(input),
        "truthy" => truthy(input),
        "ge" => order(input, &p0)?.is_some_and(|o| o != Ordering::Less),
        "gt" | "greaterthan" => order(input, &p0)? == Some(Ordering::Greater),
        "le" => order(input, &p0)?.is_some_and(|o| o != Ordering::Greater),
        "lt" | "lessthan" => order(input, &p0)? == Some(Ordering::Less),
        "iterable" => {
            if input.is_undefined() || input.is_none() {
                return Err("iterable test requires a value".into());
            }
            is_string(input) || is_array(input)
        }
        "lower" => {
            if input.is_safe() {
                return Ok(false);
            }
            let t = text(input)?;
            t.to_lowercase() == t
        }
        "upper" => {
            if input.is_safe() {
                return Ok(false);
            }
            let t = text(input)?;
            js_upper(&t) == t
        }
        "mapping" => is_record(input) || input.is_safe() || is_regex(input),
        "null" => input.is_none(),
        "number" => input.kind() == ValueKind::Number,
        "string" => is_plain_string(input),
        "undefined" => input.is_undefined(),
        _ => return Err(format!("Unknown template test {name}")),
    })
}
