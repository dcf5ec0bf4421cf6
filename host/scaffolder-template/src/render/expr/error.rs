//! nunjitsu's syntax errors and how it words and places them: [`SyntaxError`], the position
//! of an expression in its template ([`Origin`]), and the messages for a tag left open and for
//! a call of something that is not a method.

use super::parser::Expr;

/// An expression nunjitsu's parser refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError(pub(crate) String, pub(crate) Option<usize>);

impl SyntaxError {
    pub(super) fn new(message: impl Into<String>) -> Self {
        Self(message.into(), None)
    }

    /// The error at byte `offset` of the expression.
    pub(super) fn at(message: impl Into<String>, offset: usize) -> Self {
        Self(message.into(), Some(offset))
    }

    /// This error at `offset` unless it already has a position.
    pub(super) fn located(self, offset: usize) -> Self {
        match self.1 {
            Some(_) => self,
            None => Self(self.0, Some(offset)),
        }
    }
}

/// nunjitsu's `formatDiagnosticValue`: the value as a JSON string.
pub(super) fn quoted(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Where an expression starts in its template (0-based line, column in UTF-16 units), so a
/// call that fails can say where, as nunjitsu does.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Origin {
    pub(super) line: usize,
    pub(super) column: usize,
}

impl Origin {
    /// The origin of the text after `prefix` (a template up to the expression).
    pub(super) fn after(prefix: &str) -> Self {
        let line = prefix.matches('\n').count();
        let last = prefix.rfind('\n').map_or(prefix, |at| &prefix[at + 1..]);
        Self {
            line,
            column: last.encode_utf16().count(),
        }
    }
}

thread_local! {
    /// The expression being emitted and its origin (for [`not_callable_message`]).
    pub(super) static EMITTING: std::cell::RefCell<(String, Origin)> = Default::default();
}

impl SyntaxError {
    /// The message as nunjitsu words it: `Template error at line 1, column 11: Expected eof,
    /// received "bar"`, the position counted from the template's start.
    pub(super) fn in_template(self, source: &str, origin: Origin) -> Self {
        let (line, column) = origin.locate(source, self.1.unwrap_or(0));
        Self::new(format!(
            "Template error at line {}, column {}: {}",
            line + 1,
            column + 1,
            self.0
        ))
    }
}

impl Origin {
    /// The 0-based line and column of byte `offset` of `expression`, which starts here.
    fn locate(self, expression: &str, offset: usize) -> (usize, usize) {
        let here = Origin::after(&expression[..offset.min(expression.len())]);
        if here.line == 0 {
            (self.line, self.column + here.column)
        } else {
            (self.line + here.line, here.column)
        }
    }
}

/// nunjitsu's path of a callee: names and constant keys (`values.name.padStart`).
pub(super) fn diagnostic_path(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Symbol(name) => Some(name.clone()),
        Expr::Lookup(target, key) => match &**key {
            Expr::Str(key) => Some(format!("{}.{key}", diagnostic_path(target)?)),
            _ => None,
        },
        _ => None,
    }
}

/// The error of a call whose callee is not a method: `Template error at line 2, column 21:
/// Template value "values.name.padStart" resolved to undefined and cannot be called`.
pub(super) fn not_callable_message(site: Option<&(String, usize)>) -> String {
    let Some((path, offset)) = site else {
        return "Template expression resolved to undefined and cannot be called".into();
    };
    EMITTING.with(|e| {
        let (source, origin) = &*e.borrow();
        let (line, column) = origin.locate(source, *offset);
        format!(
            "Template error at line {}, column {}: Template value \"{path}\" resolved to undefined and cannot be called",
            line + 1,
            column + 1
        )
    })
}

/// An error at the tag starting at `at` in `rest` (the unread end of `source`).
pub(super) fn tag_error(source: &str, rest: &str, at: usize, message: &str) -> SyntaxError {
    let consumed = source.len() - rest.len();
    let origin = Origin::after(&source[..consumed + at]);
    SyntaxError::new(format!(
        "Template error at line {}, column {}: {message}",
        origin.line + 1,
        origin.column + 1
    ))
}
