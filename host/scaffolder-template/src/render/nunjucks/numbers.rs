//! JavaScript's numbers: `Number(text)`, `parseFloat`, `parseInt`, `Math.round`, `%`, and
//! how a number prints, plus how a number becomes a template value.

use minijinja::Value;

use super::strings::{is_js_whitespace, js_trim};

/// A number as a template value: whole numbers become integers, so they print and serialise
/// as JavaScript prints them (`3`, not `3.0`).
pub(crate) fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        Value::from(f as i64)
    } else {
        Value::from(f)
    }
}

/// JavaScript's `StringToNumber`: whitespace trimmed, empty is 0, decimal literals with an
/// optional sign and exponent, `Infinity`, and unsigned `0x`/`0o`/`0b` integers; anything
/// else is NaN.
pub(crate) fn string_to_number(s: &str) -> f64 {
    let t = js_trim(s);
    if t.is_empty() {
        return 0.0;
    }
    for (prefix, radix) in [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ] {
        if let Some(digits) = t.strip_prefix(prefix) {
            if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                return f64::NAN;
            }
            return digits.chars().fold(0.0, |acc, c| {
                acc * f64::from(radix) + f64::from(c.to_digit(radix).unwrap_or(0))
            });
        }
    }
    let (sign, unsigned) = match t.as_bytes()[0] {
        b'-' => (-1.0, &t[1..]),
        b'+' => (1.0, &t[1..]),
        _ => (1.0, t),
    };
    if unsigned == "Infinity" {
        return sign * f64::INFINITY;
    }
    match decimal_prefix(unsigned) {
        Some(len) if len == unsigned.len() => sign * unsigned.parse::<f64>().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

/// The length of the longest `StrUnsignedDecimalLiteral` (without `Infinity`) at the start.
pub(super) fn decimal_prefix(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let int_digits = digits(&mut i);
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        let save = i;
        i += 1;
        frac_digits = digits(&mut i);
        if int_digits == 0 && frac_digits == 0 {
            i = save;
        }
    }
    if int_digits == 0 && frac_digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let save = i;
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            i = save;
        }
    }
    Some(i)
}

/// JavaScript's `parseFloat`.
pub(super) fn parse_float(s: &str) -> f64 {
    let t = s.trim_start_matches(is_js_whitespace);
    let (sign, unsigned) = match t.as_bytes().first() {
        Some(b'-') => (-1.0, &t[1..]),
        Some(b'+') => (1.0, &t[1..]),
        _ => (1.0, t),
    };
    if unsigned.starts_with("Infinity") {
        return sign * f64::INFINITY;
    }
    match decimal_prefix(unsigned) {
        Some(len) => sign * unsigned[..len].parse::<f64>().unwrap_or(f64::NAN),
        None => f64::NAN,
    }
}

/// JavaScript's `parseInt(s, radix)`.
pub(super) fn parse_int(s: &str, radix: f64) -> f64 {
    let t = s.trim_start_matches(is_js_whitespace);
    let (sign, mut rest) = match t.as_bytes().first() {
        Some(b'-') => (-1.0, &t[1..]),
        Some(b'+') => (1.0, &t[1..]),
        _ => (1.0, t),
    };
    // ToInt32 of the radix; 0 (or NaN) means 10, or 16 with a `0x` prefix.
    let mut radix = if radix.is_finite() {
        (radix.trunc() as i64 as i32) as i64
    } else {
        0
    };
    let strip_prefix = radix == 0 || radix == 16;
    if radix == 0 {
        radix = 10;
    }
    if !(2..=36).contains(&radix) {
        return f64::NAN;
    }
    if strip_prefix && (rest.starts_with("0x") || rest.starts_with("0X")) {
        rest = &rest[2..];
        radix = 16;
    }
    let radix = radix as u32;
    let digits: Vec<u32> = rest.chars().map_while(|c| c.to_digit(radix)).collect();
    if digits.is_empty() {
        return f64::NAN;
    }
    sign * digits
        .iter()
        .fold(0.0, |acc, d| acc * f64::from(radix) + f64::from(*d))
}

/// JavaScript's `Math.round`: halves round up (towards +∞).
pub(crate) fn js_round(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let floor = x.floor();
    if x - floor >= 0.5 { floor + 1.0 } else { floor }
}

/// JavaScript's `%` (the sign of the dividend).
pub(super) fn js_rem(a: f64, b: f64) -> f64 {
    a % b
}

/// JavaScript's `Number.prototype.toString()` for a number.
pub(crate) fn js_number_to_string(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if n == 0.0 {
        return "0".into();
    }
    // The shortest round-tripping digits and exponent, from Rust's `{:e}`.
    let formatted = format!("{:e}", n.abs());
    let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let k = digits.len() as i32;
    let n_exp = exponent + 1; // the decimal point position
    let sign = if n < 0.0 { "-" } else { "" };
    let body = if k <= n_exp && n_exp <= 21 {
        format!("{digits}{}", "0".repeat((n_exp - k) as usize))
    } else if 0 < n_exp && n_exp <= 21 {
        format!(
            "{}.{}",
            &digits[..n_exp as usize],
            &digits[n_exp as usize..]
        )
    } else if -6 < n_exp && n_exp <= 0 {
        format!("0.{}{digits}", "0".repeat((-n_exp) as usize))
    } else {
        let e = n_exp - 1;
        let e = if e >= 0 {
            format!("+{e}")
        } else {
            e.to_string()
        };
        if k == 1 {
            format!("{digits}e{e}")
        } else {
            format!("{}.{}e{e}", &digits[..1], &digits[1..])
        }
    };
    format!("{sign}{body}")
}
