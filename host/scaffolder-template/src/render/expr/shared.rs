//! Variables a loop body `{% set %}`s that also exist outside the loop: found in a template
//! and renamed into the `__js_vars` namespace, so they accumulate as in nunjitsu.

use super::parser::{Arg, Expr};
use super::template::{find_close, split_markers, top_level_char};

/// Points the symbols named in `shared` at the `__js_vars` namespace.
pub(super) fn rename(expr: &mut Expr, shared: &[String]) {
    let each = |e: &mut Expr| rename(e, shared);
    match expr {
        Expr::Symbol(name) if shared.contains(name) => *name = format!("{VARS}.{name}"),
        Expr::Array(items) | Expr::Group(items) => items.iter_mut().for_each(each),
        Expr::Dict(pairs) => pairs.iter_mut().for_each(|(_, v)| each(v)),
        Expr::Lookup(a, b)
        | Expr::Or(a, b)
        | Expr::And(a, b)
        | Expr::Binary(_, a, b)
        | Expr::In(a, b) => {
            each(a);
            each(b);
        }
        Expr::Is(a, _) | Expr::Not(a) | Expr::Neg(a) | Expr::Pos(a) | Expr::Floor(a) => each(a),
        Expr::Slice(a, b, c, d) => {
            for e in [a, b, c, d] {
                each(e);
            }
        }
        // A called name (a macro, `range`) is not renamed; its arguments are.
        Expr::Call(target, args, _) => {
            if !matches!(**target, Expr::Symbol(_)) {
                each(target);
            }
            rename_args(args, shared);
        }
        Expr::Filter(input, _, args) => {
            each(input);
            rename_args(args, shared);
        }
        Expr::InlineIf(a, b, c) => {
            each(a);
            each(b);
            if let Some(c) = c {
                each(c);
            }
        }
        Expr::Compare(first, ops) => {
            each(first);
            ops.iter_mut().for_each(|(_, e)| each(e));
        }
        _ => {}
    }
}

pub(super) fn rename_args(args: &mut [Arg], shared: &[String]) {
    for arg in args {
        match arg {
            Arg::Positional(e) | Arg::Keyword(_, e) => rename(e, shared),
        }
    }
}

/// The namespace holding the variables a loop body assigns (see [`shared_names`]).
pub(super) const VARS: &str = "__js_vars";

/// The names a template `{% set %}`s both outside any loop and inside a `{% for %}` body
/// (outside macros). nunjitsu's `set` in a loop body assigns the variable of the enclosing
/// scope (`{% set total = total + n %}` accumulates), where minijinja's would make a new
/// loop-local one; such names live in a namespace instead.
pub(super) fn shared_names(source: &str) -> Vec<String> {
    let mut top = Vec::new();
    let mut inner = Vec::new();
    let mut loops = 0usize;
    let mut macros = 0usize;
    let mut rest = source;
    while let Some(at) = rest.find("{%") {
        let Some(end) = find_close(rest, at + 2, "%}") else {
            break;
        };
        let (_, code, _) = split_markers(&rest[at + 2..end]);
        let code = code.trim();
        let name = code.split(|c: char| c.is_whitespace()).next().unwrap_or("");
        match name {
            "for" => loops += 1,
            "endfor" => loops = loops.saturating_sub(1),
            "macro" | "call" => macros += 1,
            "endmacro" | "endcall" => macros = macros.saturating_sub(1),
            "set" if macros == 0 => {
                let args = code[3..].trim();
                if let Some(eq) = top_level_char(args, '=') {
                    for target in args[..eq].split(',').map(str::trim) {
                        let list = if loops == 0 { &mut top } else { &mut inner };
                        list.push(target.to_owned());
                    }
                }
            }
            _ => {}
        }
        rest = &rest[end + 2..];
    }
    let mut shared: Vec<String> = top.into_iter().filter(|n| inner.contains(n)).collect();
    shared.dedup();
    shared
}
