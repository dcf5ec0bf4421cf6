//! The syntax tree emitted as a minijinja expression: operators, member accesses and method
//! calls become calls of the `__js_*` functions.

use super::error::not_callable_message;
use super::parser::{Arg, Expr};

pub(super) fn emit(expr: &Expr, out: &mut String) {
    match expr {
        Expr::Null => out.push_str("none"),
        Expr::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Expr::Number(n) => emit_number(*n, out),
        Expr::Str(s) => emit_string(s, out),
        Expr::Regex(call) => out.push_str(call),
        Expr::Symbol(name) => out.push_str(name),
        Expr::Array(items) => {
            out.push_str("__js_array(");
            emit_list(items, out);
            out.push(')');
        }
        Expr::Dict(pairs) => {
            out.push('{');
            for (i, (key, value)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                emit_string(key, out);
                out.push_str(": ");
                emit(value, out);
            }
            out.push('}');
        }
        Expr::Group(items) if items.len() == 1 => {
            out.push('(');
            emit(&items[0], out);
            out.push(')');
        }
        Expr::Group(items) => call("__js_last", items.iter().collect(), out),
        Expr::Lookup(target, key) => call("__js_get", vec![target, key], out),
        Expr::Slice(target, start, stop, step) => {
            call("__js_slice", vec![target, start, stop, step], out)
        }
        Expr::Call(target, args, site) => match &**target {
            Expr::Symbol(name) => {
                out.push_str(name);
                out.push('(');
                emit_args(args, out);
                out.push(')');
            }
            Expr::Lookup(receiver, key) => {
                out.push_str("__js_call(");
                emit(receiver, out);
                out.push_str(", ");
                emit(key, out);
                out.push_str(", ");
                emit_string(&not_callable_message(site.as_ref()), out);
                if !args.is_empty() {
                    out.push_str(", ");
                    emit_args(args, out);
                }
                out.push(')');
            }
            other => {
                out.push_str("__js_not_callable(");
                emit(other, out);
                out.push(')');
            }
        },
        Expr::Filter(input, name, args) => {
            out.push('(');
            emit(input, out);
            out.push_str(")|");
            out.push_str(name);
            if !args.is_empty() {
                out.push('(');
                emit_args(args, out);
                out.push(')');
            }
        }
        Expr::Is(left, right) => {
            out.push('(');
            emit(left, out);
            out.push_str(" is ");
            match &**right {
                Expr::Call(name, args, _) if matches!(**name, Expr::Symbol(_)) => {
                    emit(name, out);
                    out.push('(');
                    emit_args(args, out);
                    out.push(')');
                }
                // nunjitsu names a test by its literal's text: `x is null`, `x is none`.
                Expr::Null => out.push_str("null"),
                Expr::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                other => emit(other, out),
            }
            out.push(')');
        }
        Expr::InlineIf(cond, body, otherwise) => {
            out.push('(');
            emit(body, out);
            out.push_str(" if __js_truthy(");
            emit(cond, out);
            out.push_str(") else ");
            match otherwise {
                Some(e) => emit(e, out),
                None => out.push_str("\"\""),
            }
            out.push(')');
        }
        // Short-circuiting as JavaScript does, with JavaScript's truthiness: the left operand
        // is wrapped in an object whose truthiness is JavaScript's, and unwrapped after.
        Expr::Or(left, right) | Expr::And(left, right) => {
            out.push_str("__js_unwrap(__js_wrap(");
            emit(left, out);
            out.push_str(if matches!(expr, Expr::Or(..)) {
                ") or "
            } else {
                ") and "
            });
            emit(right, out);
            out.push(')');
        }
        Expr::Not(e) => call("__js_not", vec![e], out),
        Expr::Neg(e) => call("__js_neg", vec![e], out),
        Expr::Pos(e) => call("__js_pos", vec![e], out),
        Expr::Floor(e) => call("__js_floor", vec![e], out),
        Expr::Binary(op, left, right) => {
            out.push_str("__js_op(\"");
            out.push_str(op);
            out.push_str("\", ");
            emit(left, out);
            out.push_str(", ");
            emit(right, out);
            out.push(')');
        }
        Expr::Compare(first, ops) => {
            let mut acc = String::new();
            emit(first, &mut acc);
            for (op, right) in ops {
                let mut next = format!("__js_compare(\"{op}\", {acc}, ");
                emit(right, &mut next);
                next.push(')');
                acc = next;
            }
            out.push_str(&acc);
        }
        Expr::In(needle, container) => call("__js_in", vec![needle, container], out),
    }
}

pub(super) fn call(name: &str, args: Vec<&Expr>, out: &mut String) {
    out.push_str(name);
    out.push('(');
    for (i, a) in args.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        emit(a, out);
    }
    out.push(')');
}

pub(super) fn emit_list(items: &[Expr], out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        emit(item, out);
    }
}

pub(super) fn emit_args(args: &[Arg], out: &mut String) {
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match arg {
            Arg::Positional(e) => emit(e, out),
            Arg::Keyword(name, e) => {
                out.push_str(name);
                out.push('=');
                emit(e, out);
            }
        }
    }
}

pub(super) fn emit_number(n: f64, out: &mut String) {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        out.push_str(&format!("{}", n as i64));
    } else if n.is_finite() {
        out.push_str(&format!("{n:?}"));
    } else {
        out.push_str("__js_op(\"div\", 1, 0)");
    }
}

pub(crate) fn emit_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
}
