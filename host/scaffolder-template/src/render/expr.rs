//! nunjitsu's expression language (the renderer of Backstage 4.2.0) on top of minijinja.
//!
//! An expression is tokenised and parsed with nunjitsu's grammar (its precedence quirks
//! included: `not a + b` is `(not a) + b`, `a < b < c` compares the boolean `a < b` with `c`,
//! `%` binds tighter than `//`, `/` and `*`), then emitted as a minijinja expression in which
//! every operator, member access and method call is a call of one of the `__js_*` functions
//! registered by [`register`], which follow JavaScript's coercions as nunjitsu does. Filters,
//! tests, macros and globals stay minijinja's. Anything the grammar refuses (`1e3`, `!x`,
//! `a && b`) is a [`SyntaxError`], and the string stays as written.
//!
//! [`translate_template`] does the same inside the tags of a text template, and
//! [`sole_expression`] says whether a template is one interpolation and nothing else (whose
//! value then keeps its type).
//!
//! This file holds the entry points; `tokens` is the tokeniser, `parser` the syntax tree and
//! grammar, `emit` the emitter, `error` how errors are worded and placed, `template` the tags
//! of text templates, and `shared` the loop-assigned variables kept in a namespace.

mod emit;
mod error;
mod parser;
mod shared;
mod template;
mod tokens;

use emit::emit;
use error::{EMITTING, Origin};
use parser::Parser;
use shared::rename;

pub(crate) use error::SyntaxError;
pub(crate) use parser::RESERVED;
pub(crate) use template::{sole_expression, translate_template};

/// A nunjitsu expression as a minijinja expression.
pub(crate) fn translate_expression(source: &str) -> Result<String, SyntaxError> {
    translate_expression_in(source, &[])
}

/// [`translate_expression`] where the names in `shared` live in the template's `__js_vars`
/// namespace (see [`shared_names`](shared::shared_names)).
fn translate_expression_in(source: &str, shared: &[String]) -> Result<String, SyntaxError> {
    translate_located(source, shared, Origin::default())
}

fn translate_located(
    source: &str,
    shared: &[String],
    origin: Origin,
) -> Result<String, SyntaxError> {
    let mut expr = Parser::new(source)
        .and_then(Parser::parse)
        .map_err(|e| e.in_template(source, origin))?;
    if !shared.is_empty() {
        rename(&mut expr, shared);
    }
    EMITTING.with(|e| *e.borrow_mut() = (source.to_owned(), origin));
    let mut out = String::new();
    emit(&expr, &mut out);
    Ok(out)
}
