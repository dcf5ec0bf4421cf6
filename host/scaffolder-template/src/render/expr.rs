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

use super::Syntax;
use super::filters::regex;

/// An expression nunjitsu's parser refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError(pub(crate) String, pub(crate) Option<usize>);

impl SyntaxError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into(), None)
    }

    /// The error at byte `offset` of the expression.
    fn at(message: impl Into<String>, offset: usize) -> Self {
        Self(message.into(), Some(offset))
    }

    /// This error at `offset` unless it already has a position.
    fn located(self, offset: usize) -> Self {
        match self.1 {
            Some(_) => self,
            None => Self(self.0, Some(offset)),
        }
    }
}

impl Tok {
    /// The token's text, as nunjitsu quotes it in messages.
    fn text(&self) -> String {
        match self {
            Tok::Name(t) | Tok::Number(t) | Tok::Str(t) | Tok::Regex(t) => t.clone(),
            Tok::Op(op) => (*op).to_owned(),
            Tok::Eof => String::new(),
        }
    }
}

/// nunjitsu's `formatDiagnosticValue`: the value as a JSON string.
fn quoted(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Number(String),
    Str(String),
    /// An `r/…/` literal, already emitted as the call that builds it.
    Regex(String),
    Op(&'static str),
    Eof,
}

const OPERATORS: &[&str] = &["===", "!==", "**", "//", "==", "!=", "<=", ">="];
const SINGLE: &str = "()[]{}.,:|~+-*/%<>=";

fn is_code_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{a0}')
}

/// The tokens of `source` and the byte offset where each starts.
fn tokenize(source: &str) -> Result<(Vec<Tok>, Vec<usize>), SyntaxError> {
    let mut tokens: Vec<Tok> = Vec::new();
    let mut offsets: Vec<usize> = Vec::new();
    let bytes = source.as_bytes();
    let mut i = 0;
    while i < source.len() {
        let c = source[i..].chars().next().expect("in bounds");
        if is_code_whitespace(c) {
            i += c.len_utf8();
            continue;
        }
        let after_dot = matches!(tokens.last(), Some(Tok::Op(".")));
        if let Some(end) = scan_identifier(bytes, i, after_dot) {
            let name = &source[i..end];
            if name == "r"
                && bytes.get(end) == Some(&b'/')
                && let Some((call, len)) = regex::rewrite_literal(source, i)
            {
                offsets.push(i);
                tokens.push(Tok::Regex(call));
                i += len;
                continue;
            }
            offsets.push(i);
            tokens.push(Tok::Name(name.to_owned()));
            i = end;
            continue;
        }
        let after_operand = match tokens.last() {
            Some(Tok::Name(_) | Tok::Number(_) | Tok::Str(_) | Tok::Regex(_)) => true,
            Some(Tok::Op(op)) => matches!(*op, ")" | "]" | "}"),
            _ => false,
        };
        if c == '.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) && !after_operand {
            return Err(SyntaxError::at("Invalid numeric literal", i));
        }
        if c.is_ascii_digit() {
            let mut end = i;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            if bytes.get(end) == Some(&b'.') {
                end += 1;
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
            }
            if bytes
                .get(end)
                .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
            {
                return Err(SyntaxError::at("Invalid numeric literal", i));
            }
            offsets.push(i);
            tokens.push(Tok::Number(source[i..end].to_owned()));
            i = end;
            continue;
        }
        if c == '"' || c == '\'' {
            let (value, end) = read_string(source, i, c)?;
            offsets.push(i);
            tokens.push(Tok::Str(value));
            i = end;
            continue;
        }
        if let Some(op) = OPERATORS.iter().find(|op| source[i..].starts_with(**op)) {
            offsets.push(i);
            tokens.push(Tok::Op(op));
            i += op.len();
            continue;
        }
        match SINGLE.find(c) {
            Some(at) => {
                offsets.push(i);
                tokens.push(Tok::Op(&SINGLE[at..at + 1]));
                i += 1;
            }
            None => {
                return Err(SyntaxError::at(
                    format!("Unexpected character {}", quoted(&c.to_string())),
                    i,
                ));
            }
        }
    }
    offsets.push(source.len());
    tokens.push(Tok::Eof);
    Ok((tokens, offsets))
}

/// The end of an identifier at `i` (`[A-Za-z_][A-Za-z0-9_]*`); after a `.`, leading digits
/// are part of it (`values.1password`).
fn scan_identifier(bytes: &[u8], i: usize, allow_leading_digit: bool) -> Option<usize> {
    let mut start = i;
    if allow_leading_digit {
        while start < bytes.len() && bytes[start].is_ascii_digit() {
            start += 1;
        }
    }
    let first = *bytes.get(start)?;
    if !(first == b'_' || first.is_ascii_alphabetic()) {
        return None;
    }
    let mut end = start + 1;
    while end < bytes.len() && (bytes[end] == b'_' || bytes[end].is_ascii_alphanumeric()) {
        end += 1;
    }
    Some(end)
}

fn read_string(source: &str, start: usize, quote: char) -> Result<(String, usize), SyntaxError> {
    let mut value = String::new();
    let mut chars = source[start + 1..].char_indices();
    while let Some((offset, c)) = chars.next() {
        if c == quote {
            return Ok((value, start + 1 + offset + 1));
        }
        if c != '\\' {
            value.push(c);
            continue;
        }
        let Some((_, escaped)) = chars.next() else {
            break;
        };
        value.push(match escaped {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            other => other,
        });
    }
    Err(SyntaxError::at("Unterminated string literal", start))
}

// ---------------------------------------------------------------------------------------
// Syntax tree

#[derive(Debug, Clone)]
enum Expr {
    Null,
    Bool(bool),
    Number(f64),
    Str(String),
    Regex(String),
    Symbol(String),
    Array(Vec<Expr>),
    Dict(Vec<(String, Expr)>),
    Group(Vec<Expr>),
    Lookup(Box<Expr>, Box<Expr>),
    Slice(Box<Expr>, Box<Expr>, Box<Expr>, Box<Expr>),
    /// A call, with nunjitsu's path of the callee (`values.name.padStart`) and the offset of
    /// its last key, for the message when it cannot be called.
    Call(Box<Expr>, Vec<Arg>, Option<(String, usize)>),
    Filter(Box<Expr>, String, Vec<Arg>),
    Is(Box<Expr>, Box<Expr>),
    InlineIf(Box<Expr>, Box<Expr>, Option<Box<Expr>>),
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Pos(Box<Expr>),
    Floor(Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
    Compare(Box<Expr>, Vec<(&'static str, Expr)>),
    In(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone)]
enum Arg {
    Positional(Expr),
    Keyword(String, Expr),
}

pub(crate) const RESERVED: &[&str] = &["constructor", "prototype", "__proto__"];
const MAX_DEPTH: usize = 64;

struct Parser {
    tokens: Vec<Tok>,
    offsets: Vec<usize>,
    /// Where the key of the latest member access starts (a method call's position).
    last_key: usize,
    at: usize,
    depth: usize,
}

type Parsed = Result<Expr, SyntaxError>;

impl Parser {
    fn new(source: &str) -> Result<Self, SyntaxError> {
        let (tokens, offsets) = tokenize(source)?;
        Ok(Self {
            tokens,
            offsets,
            last_key: 0,
            at: 0,
            depth: 0,
        })
    }

    fn peek(&self, offset: usize) -> &Tok {
        &self.tokens[(self.at + offset).min(self.tokens.len() - 1)]
    }

    fn consume(&mut self, op: &str) -> bool {
        if matches!(self.peek(0), Tok::Op(o) if *o == op) {
            self.at += 1;
            return true;
        }
        false
    }

    fn consume_name(&mut self, name: &str) -> bool {
        if matches!(self.peek(0), Tok::Name(n) if n == name) {
            self.at += 1;
            return true;
        }
        false
    }

    fn expect_op(&mut self, op: &str) -> Result<(), SyntaxError> {
        if self.consume(op) {
            Ok(())
        } else {
            Err(SyntaxError::at(format!("Expected {op}"), self.here()))
        }
    }

    fn expect_name(&mut self) -> Result<String, SyntaxError> {
        let here = self.here();
        match self.peek(0).clone() {
            Tok::Name(n) => {
                self.at += 1;
                allowed(&n).map_err(|e| e.located(here))?;
                Ok(n)
            }
            _ => Err(self.unexpected("name")),
        }
    }

    fn expect_eof(&self) -> Result<(), SyntaxError> {
        match self.peek(0) {
            Tok::Eof => Ok(()),
            _ => Err(self.unexpected("eof")),
        }
    }

    /// Where the current token starts.
    fn here(&self) -> usize {
        self.offsets[self.at.min(self.offsets.len() - 1)]
    }

    /// `Expected <kind>, received "<token>"` at the current token.
    fn unexpected(&self, kind: &str) -> SyntaxError {
        let message = match self.peek(0) {
            Tok::Eof => format!("Expected {kind}, received end of input"),
            other => format!("Expected {kind}, received {}", quoted(&other.text())),
        };
        SyntaxError::at(message, self.here())
    }

    fn nested<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, SyntaxError>,
    ) -> Result<T, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SyntaxError::at("expression nested too deeply", self.here()));
        }
        let result = parse(self);
        self.depth -= 1;
        result
    }

    fn parse(mut self) -> Parsed {
        let expr = self.inline_if()?;
        self.expect_eof()?;
        Ok(expr)
    }

    fn inline_if(&mut self) -> Parsed {
        let body = self.or()?;
        if !self.consume_name("if") {
            return Ok(body);
        }
        let cond = self.or()?;
        let otherwise = if self.consume_name("else") {
            Some(Box::new(self.nested(Self::or)?))
        } else {
            None
        };
        Ok(Expr::InlineIf(Box::new(cond), Box::new(body), otherwise))
    }

    fn or(&mut self) -> Parsed {
        let mut left = self.and()?;
        while self.consume_name("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Parsed {
        let mut left = self.not()?;
        while self.consume_name("and") {
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Parsed {
        if self.consume_name("not") {
            let target = self.nested(Self::not)?;
            return Ok(lower_not(target));
        }
        self.membership()
    }

    fn membership(&mut self) -> Parsed {
        let mut left = self.test()?;
        loop {
            let negate = matches!(self.peek(0), Tok::Name(n) if n == "not")
                && matches!(self.peek(1), Tok::Name(n) if n == "in");
            if negate {
                self.at += 2;
            } else if !self.consume_name("in") {
                return Ok(left);
            }
            let membership = Expr::In(Box::new(left), Box::new(self.test()?));
            left = if negate {
                Expr::Not(Box::new(membership))
            } else {
                membership
            };
        }
    }

    fn test(&mut self) -> Parsed {
        let left = self.equality()?;
        if self.consume_name("is") {
            let negate = self.consume_name("not");
            let right = self.equality()?;
            let test = Expr::Is(Box::new(left), Box::new(right));
            return Ok(if negate {
                Expr::Not(Box::new(test))
            } else {
                test
            });
        }
        Ok(left)
    }

    fn equality(&mut self) -> Parsed {
        let left = self.relational()?;
        let mut ops = Vec::new();
        while let Tok::Op(op @ ("==" | "===" | "!=" | "!==")) = self.peek(0) {
            let op = *op;
            self.at += 1;
            ops.push((op, self.relational()?));
        }
        Ok(comparison(left, ops))
    }

    fn relational(&mut self) -> Parsed {
        let left = self.additive()?;
        let mut ops = Vec::new();
        while let Tok::Op(op @ ("<" | "<=" | ">" | ">=")) = self.peek(0) {
            let op = *op;
            self.at += 1;
            ops.push((op, self.additive()?));
        }
        Ok(comparison(left, ops))
    }

    fn additive(&mut self) -> Parsed {
        let mut left = self.multiply()?;
        loop {
            let op = if self.consume("+") {
                "add"
            } else if self.consume("-") {
                "sub"
            } else if self.consume("~") {
                "concat"
            } else {
                return Ok(left);
            };
            left = Expr::Binary(op, Box::new(left), Box::new(self.multiply()?));
        }
    }

    fn multiply(&mut self) -> Parsed {
        let sequence = self.multiply_sequence()?;
        Ok(materialize(sequence))
    }

    fn multiply_sequence(&mut self) -> Result<Sequence, SyntaxError> {
        let mut sequence = self.divide_sequence()?;
        while self.consume("*") {
            let right = self.divide_sequence()?;
            append(&mut sequence, "mul", right);
        }
        Ok(sequence)
    }

    fn divide_sequence(&mut self) -> Result<Sequence, SyntaxError> {
        let mut sequence = self.floor_sequence()?;
        while self.consume("/") {
            let right = self.floor_sequence()?;
            append(&mut sequence, "div", right);
        }
        Ok(sequence)
    }

    fn floor_sequence(&mut self) -> Result<Sequence, SyntaxError> {
        let mut sequence = self.modulo_sequence()?;
        while self.consume("//") {
            let right = self.modulo_sequence()?;
            append(&mut sequence, "div", right);
            let target = materialize(sequence);
            sequence = Sequence {
                first: Expr::Floor(Box::new(target)),
                ops: Vec::new(),
            };
        }
        Ok(sequence)
    }

    fn modulo_sequence(&mut self) -> Result<Sequence, SyntaxError> {
        let mut sequence = Sequence {
            first: self.power()?,
            ops: Vec::new(),
        };
        while self.consume("%") {
            sequence.ops.push(("mod", self.power()?));
        }
        Ok(sequence)
    }

    fn power(&mut self) -> Parsed {
        let mut left = self.filter()?;
        while self.consume("**") {
            left = Expr::Binary("pow", Box::new(left), Box::new(self.filter()?));
        }
        Ok(left)
    }

    fn filter(&mut self) -> Parsed {
        let mut expr = self.unary()?;
        while self.consume("|") {
            expr = self.filter_invocation(expr)?;
        }
        Ok(expr)
    }

    fn filter_invocation(&mut self, input: Expr) -> Parsed {
        let mut name = self.expect_name()?;
        while self.consume(".") {
            name.push('.');
            name.push_str(&self.expect_name()?);
        }
        let args = if self.consume("(") {
            self.nested(|p| p.arguments(")"))?
        } else {
            Vec::new()
        };
        Ok(Expr::Filter(Box::new(input), name, args))
    }

    fn unary(&mut self) -> Parsed {
        if self.consume("-") {
            let inner = self.here();
            let target = self.nested(Self::unary)?;
            if matches!(target, Expr::Neg(_)) {
                return Err(SyntaxError::at(
                    "Repeated unparenthesized unary - is not supported",
                    inner,
                ));
            }
            return Ok(Expr::Neg(Box::new(target)));
        }
        if self.consume("+") {
            let inner = self.here();
            let target = self.nested(Self::unary)?;
            if matches!(target, Expr::Pos(_)) {
                return Err(SyntaxError::at(
                    "Repeated unparenthesized unary + is not supported",
                    inner,
                ));
            }
            return Ok(Expr::Pos(Box::new(target)));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Parsed {
        let mut expr = self.primary()?;
        loop {
            if self.consume(".") {
                self.last_key = self.offsets[self.at.min(self.offsets.len() - 1)];
                let key = self.expect_name()?;
                expr = Expr::Lookup(Box::new(expr), Box::new(Expr::Str(key)));
            } else if self.consume("[") {
                self.last_key = self.offsets[self.at.min(self.offsets.len() - 1)];
                let value = self.nested(Self::subscript)?;
                self.expect_op("]")?;
                if let Expr::Str(s) = &value {
                    allowed(s).map_err(|e| e.located(self.last_key))?;
                }
                expr = match value {
                    Expr::Slice(_, start, stop, step) => {
                        Expr::Slice(Box::new(expr), start, stop, step)
                    }
                    key => Expr::Lookup(Box::new(expr), Box::new(key)),
                };
            } else if self.consume("(") {
                let args = self.nested(|p| p.arguments(")"))?;
                let site = diagnostic_path(&expr).map(|path| (path, self.last_key));
                expr = Expr::Call(Box::new(expr), args, site);
            } else {
                return Ok(expr);
            }
        }
    }

    /// A key or a slice; a slice comes back as `Slice(Null, start, stop, step)`.
    fn subscript(&mut self) -> Parsed {
        let ends = |p: &Self| matches!(p.peek(0), Tok::Op(":" | "]"));
        let start = if ends(self) {
            None
        } else {
            Some(self.inline_if()?)
        };
        if !self.consume(":") {
            let here = self.here();
            return start.ok_or_else(|| SyntaxError::at("Expected subscript expression", here));
        }
        let stop = if ends(self) {
            None
        } else {
            Some(self.inline_if()?)
        };
        let step = if self.consume(":") && !matches!(self.peek(0), Tok::Op("]")) {
            Some(self.inline_if()?)
        } else {
            None
        };
        Ok(Expr::Slice(
            Box::new(Expr::Null),
            Box::new(start.unwrap_or(Expr::Null)),
            Box::new(stop.unwrap_or(Expr::Null)),
            Box::new(step.unwrap_or(Expr::Number(1.0))),
        ))
    }

    fn primary(&mut self) -> Parsed {
        let token = self.peek(0).clone();
        let start = self.here();
        self.at += 1;
        match token {
            Tok::Number(n) => Ok(Expr::Number(n.parse().unwrap_or(f64::NAN))),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Regex(call) => Ok(Expr::Regex(call)),
            Tok::Name(n) => Ok(match n.as_str() {
                "true" => Expr::Bool(true),
                "false" => Expr::Bool(false),
                "none" | "null" => Expr::Null,
                _ => {
                    allowed(&n).map_err(|e| e.located(start))?;
                    Expr::Symbol(n)
                }
            }),
            Tok::Op("(") => {
                let children = self.nested(|p| p.delimited(")"))?;
                if children.is_empty() {
                    return Err(SyntaxError::at(
                        "Parenthesized expression cannot be empty",
                        start,
                    ));
                }
                Ok(Expr::Group(children))
            }
            Tok::Op("[") => Ok(Expr::Array(self.nested(|p| p.delimited("]"))?)),
            Tok::Op("{") => Ok(Expr::Dict(self.nested(Self::dictionary)?)),
            Tok::Eof => Err(SyntaxError::at(
                "Unexpected expression token at end of input",
                start,
            )),
            other => Err(SyntaxError::at(
                format!("Unexpected expression token {}", quoted(&other.text())),
                start,
            )),
        }
    }

    fn dictionary(&mut self) -> Result<Vec<(String, Expr)>, SyntaxError> {
        let mut pairs = Vec::new();
        if self.consume("}") {
            return Ok(pairs);
        }
        loop {
            let key = match self.peek(0).clone() {
                Tok::Name(n) if !matches!(n.as_str(), "true" | "false" | "null" | "none") => n,
                Tok::Str(s) => s,
                _ => {
                    return Err(SyntaxError::at(
                        "Dictionary keys must be strings or names",
                        self.here(),
                    ));
                }
            };
            let here = self.here();
            self.at += 1;
            allowed(&key).map_err(|e| e.located(here))?;
            self.expect_op(":")?;
            pairs.push((key, self.inline_if()?));
            if !self.consume(",") {
                break;
            }
        }
        self.expect_op("}")?;
        Ok(pairs)
    }

    fn delimited(&mut self, end: &str) -> Result<Vec<Expr>, SyntaxError> {
        let mut children = Vec::new();
        if self.consume(end) {
            return Ok(children);
        }
        loop {
            children.push(self.inline_if()?);
            if !self.consume(",") {
                break;
            }
        }
        self.expect_op(end)?;
        Ok(children)
    }

    fn arguments(&mut self, end: &str) -> Result<Vec<Arg>, SyntaxError> {
        let mut args = Vec::new();
        if self.consume(end) {
            return Ok(args);
        }
        loop {
            if let (Tok::Name(name), Tok::Op("=")) = (self.peek(0).clone(), self.peek(1)) {
                let here = self.here();
                self.at += 2;
                allowed(&name).map_err(|e| e.located(here))?;
                args.push(Arg::Keyword(name, self.inline_if()?));
            } else {
                args.push(Arg::Positional(self.inline_if()?));
            }
            if !self.consume(",") {
                break;
            }
        }
        self.expect_op(end)?;
        // nunjitsu moves keyword arguments after the positional ones.
        args.sort_by_key(|a| matches!(a, Arg::Keyword(..)));
        Ok(args)
    }
}

fn allowed(name: &str) -> Result<(), SyntaxError> {
    if RESERVED.contains(&name) {
        return Err(SyntaxError::new(format!(
            "Template name {} is reserved",
            quoted(name)
        )));
    }
    Ok(())
}

/// A run of `*`, `/`, `%` operands, materialised left to right (nunjitsu's grouping).
struct Sequence {
    first: Expr,
    ops: Vec<(&'static str, Expr)>,
}

fn append(sequence: &mut Sequence, op: &'static str, right: Sequence) {
    sequence.ops.push((op, right.first));
    sequence.ops.extend(right.ops);
}

fn materialize(sequence: Sequence) -> Expr {
    let mut left = sequence.first;
    for (op, right) in sequence.ops {
        left = Expr::Binary(op, Box::new(left), Box::new(right));
    }
    left
}

fn comparison(left: Expr, ops: Vec<(&'static str, Expr)>) -> Expr {
    if ops.is_empty() {
        left
    } else {
        Expr::Compare(Box::new(left), ops)
    }
}

/// nunjitsu's `not` binds to the leftmost operand of arithmetic and comparisons.
fn lower_not(target: Expr) -> Expr {
    match target {
        Expr::Binary(op, left, right) if op != "pow" => {
            Expr::Binary(op, Box::new(lower_not(*left)), right)
        }
        Expr::Compare(left, ops) => Expr::Compare(Box::new(lower_not(*left)), ops),
        other => Expr::Not(Box::new(other)),
    }
}

// ---------------------------------------------------------------------------------------
// Emitting minijinja

fn emit(expr: &Expr, out: &mut String) {
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

fn call(name: &str, args: Vec<&Expr>, out: &mut String) {
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

fn emit_list(items: &[Expr], out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        emit(item, out);
    }
}

fn emit_args(args: &[Arg], out: &mut String) {
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

fn emit_number(n: f64, out: &mut String) {
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

/// A nunjitsu expression as a minijinja expression.
pub(crate) fn translate_expression(source: &str) -> Result<String, SyntaxError> {
    translate_expression_in(source, &[])
}

/// [`translate_expression`] where the names in `shared` live in the template's `__js_vars`
/// namespace (see [`shared_names`]).
fn translate_expression_in(source: &str, shared: &[String]) -> Result<String, SyntaxError> {
    translate_located(source, shared, Origin::default())
}

/// Where an expression starts in its template (0-based line, column in UTF-16 units), so a
/// call that fails can say where, as nunjitsu does.
#[derive(Debug, Clone, Copy, Default)]
struct Origin {
    line: usize,
    column: usize,
}

impl Origin {
    /// The origin of the text after `prefix` (a template up to the expression).
    fn after(prefix: &str) -> Self {
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
    static EMITTING: std::cell::RefCell<(String, Origin)> = Default::default();
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

impl SyntaxError {
    /// The message as nunjitsu words it: `Template error at line 1, column 11: Expected eof,
    /// received "bar"`, the position counted from the template's start.
    fn in_template(self, source: &str, origin: Origin) -> Self {
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
fn diagnostic_path(expr: &Expr) -> Option<String> {
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
fn not_callable_message(site: Option<&(String, usize)>) -> String {
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

/// Points the symbols named in `shared` at the `__js_vars` namespace.
fn rename(expr: &mut Expr, shared: &[String]) {
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

fn rename_args(args: &mut [Arg], shared: &[String]) {
    for arg in args {
        match arg {
            Arg::Positional(e) | Arg::Keyword(_, e) => rename(e, shared),
        }
    }
}

/// The namespace holding the variables a loop body assigns (see [`shared_names`]).
const VARS: &str = "__js_vars";

/// The names a template `{% set %}`s both outside any loop and inside a `{% for %}` body
/// (outside macros). nunjitsu's `set` in a loop body assigns the variable of the enclosing
/// scope (`{% set total = total + n %}` accumulates), where minijinja's would make a new
/// loop-local one; such names live in a namespace instead.
fn shared_names(source: &str) -> Vec<String> {
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

/// A `for` loop's targets (`a` or `a, b`).
fn loop_targets(source: &str) -> Result<Vec<String>, SyntaxError> {
    let mut parser = Parser::new(source)?;
    let mut targets = Vec::new();
    loop {
        let name = parser.expect_name()?;
        if matches!(name.as_str(), "true" | "false" | "null" | "none") {
            return Err(SyntaxError::new("Binding targets must be ordinary names"));
        }
        targets.push(name);
        if !parser.consume(",") {
            break;
        }
    }
    parser.expect_eof()?;
    Ok(targets)
}

// ---------------------------------------------------------------------------------------
// Templates

/// The end of a tag's code starting at `from` (the index of `close`), skipping strings.
fn find_close(source: &str, from: usize, close: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut chars = source[from..].char_indices();
    while let Some((offset, c)) = chars.next() {
        if let Some(q) = quote {
            if c == '\\' {
                chars.next();
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
            continue;
        }
        if source[from + offset..].starts_with(close) {
            return Some(from + offset);
        }
    }
    None
}

/// A tag's code without its whitespace-control markers: (leading `-`, code, trailing `-`).
fn split_markers(code: &str) -> (&str, &str, &str) {
    let (lead, rest) = match code.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", code),
    };
    let (rest, trail) = match rest.strip_suffix('-') {
        // `${{ 5 -3 -}}`: only a `-` after white space (or alone) is a marker.
        Some(inner) if inner.is_empty() || inner.ends_with(char::is_whitespace) => (inner, "-"),
        _ => (rest, ""),
    };
    (lead, rest, trail)
}

/// Rewrites the expressions inside the tags of a text template into minijinja's (see the
/// module documentation); text, comments and `{% raw %}` blocks are left alone.
///
/// nunjitsu's `trimBlocks` leaves the newline after a comment and after `{% endraw %}`, which
/// minijinja's would remove: a comment without markers becomes an empty interpolation, and a raw block
/// becomes its text, its tag openings interpolated as strings and the raw tags' markers,
/// `trimBlocks` and `lstripBlocks` applied here.
pub(crate) fn translate_template(
    source: &str,
    syntax: Syntax,
    trim_blocks: bool,
    lstrip_blocks: bool,
) -> Result<String, SyntaxError> {
    let (open_expr, _) = super::delimiters(syntax);
    let mut out = String::with_capacity(source.len() + 64);
    let mut rest = source;
    // `{% switch %}` blocks open (their numbers), and how many were opened so far.
    let mut switches: Vec<usize> = Vec::new();
    let mut switch_count = 0;
    let shared = shared_names(source);
    // Inside a macro the shared names are the macro's own (nunjitsu isolates macros).
    let mut macros = 0usize;
    if !shared.is_empty() {
        out.push_str(&format!(
            "{{% set {VARS} = __js_namespace() %}}{open_expr} \"\" }}}}"
        ));
    }
    loop {
        let next = [open_expr, "{%", "{#"]
            .iter()
            .filter_map(|o| rest.find(o).map(|at| (at, *o)))
            .min_by_key(|(at, o)| (*at, usize::MAX - o.len()));
        let Some((at, open)) = next else {
            out.push_str(rest);
            return Ok(out);
        };
        out.push_str(&rest[..at]);
        let body_start = at + open.len();
        match open {
            "{#" => {
                let end = rest[body_start..]
                    .find("#}")
                    .ok_or_else(|| tag_error(source, rest, at, "Unterminated comment tag"))?;
                let comment = &rest[at..body_start + end + 2];
                if comment.starts_with("{#-") || comment.ends_with("-#}") {
                    out.push_str(comment);
                } else {
                    // Nothing, yet a stop for the white-space markers of the tags around it.
                    out.push_str(open_expr);
                    out.push_str(" \"\" }}");
                }
                rest = &rest[body_start + end + 2..];
            }
            "{%" => {
                let end = find_close(rest, body_start, "%}")
                    .ok_or_else(|| tag_error(source, rest, at, "Unterminated block tag"))?;
                let code = &rest[body_start..end];
                let after = &rest[end + 2..];
                let (lead, inner, trail) = split_markers(code);
                let name = inner
                    .trim_start()
                    .split(|c: char| !c.is_alphanumeric() && c != '_')
                    .next()
                    .unwrap_or("");
                if name == "raw" || name == "verbatim" {
                    let end_tag = format!("end{name}");
                    let (body, tail) = find_end_raw(after, name).ok_or_else(|| {
                        let consumed = source.len() - rest.len();
                        let origin = Origin::after(&source[..consumed + at]);
                        SyntaxError::new(format!(
                            "Template error at line {}, column {}: Missing \"{end_tag}\" tag",
                            origin.line + 1,
                            origin.column + 1
                        ))
                    })?;
                    let mut body = body;
                    let mut tail = tail;
                    if lead == "-" {
                        let kept = out.trim_end().len();
                        out.truncate(kept);
                    } else if lstrip_blocks {
                        lstrip_line(&mut out);
                    }
                    if trim_blocks {
                        body = body
                            .strip_prefix("\r\n")
                            .or_else(|| body.strip_prefix('\n'))
                            .unwrap_or(body);
                    }
                    // nunjitsu applies the opening tag's `-%}` after the closing tag.
                    if trail == "-" {
                        tail = tail.trim_start();
                    }
                    // The body stays text (so later markers trim it as nunjitsu's text);
                    // only the openings of tags in it become string interpolations.
                    escape_openings(body, open_expr, &mut out);
                    rest = tail;
                    continue;
                }
                let statement = match name {
                    // minijinja has no `switch`: an if/elif chain over a variable, with
                    // nunjitsu's `===` and its fall-through of a case with an empty body.
                    "switch" => {
                        switch_count += 1;
                        switches.push(switch_count);
                        let value = translate_expression(inner.trim()[6..].trim())?;
                        format!("set __js_switch{switch_count} = {value} %}}{{% if false")
                    }
                    "case" => {
                        let n = *switches
                            .last()
                            .ok_or_else(|| SyntaxError::new("case outside switch"))?;
                        let mut conditions = vec![inner.trim()[4..].trim().to_owned()];
                        let mut tail = after;
                        // Cases with empty bodies share the next case's body.
                        while let Some(next) = tail.strip_prefix("{%") {
                            let Some(close) = find_close(tail, 2, "%}") else {
                                break;
                            };
                            let (_, next_inner, _) = split_markers(&next[..close - 2]);
                            let Some(condition) = next_inner.trim().strip_prefix("case ") else {
                                break;
                            };
                            conditions.push(condition.trim().to_owned());
                            tail = &tail[close + 2..];
                        }
                        let tests: Result<Vec<String>, SyntaxError> = conditions
                            .iter()
                            .map(|c| {
                                Ok(format!(
                                    "__js_compare(\"===\", __js_switch{n}, {})",
                                    translate_expression(c)?
                                ))
                            })
                            .collect();
                        rest = tail;
                        out.push_str("{%");
                        out.push_str(lead);
                        out.push_str(&format!(" elif {} ", tests?.join(" or ")));
                        out.push_str(trail);
                        out.push_str("%}");
                        continue;
                    }
                    "default" if !switches.is_empty() => "else".to_owned(),
                    "endswitch" => {
                        switches.pop();
                        "endif".to_owned()
                    }
                    _ => {
                        match name {
                            "macro" | "call" => macros += 1,
                            "endmacro" | "endcall" => macros = macros.saturating_sub(1),
                            _ => {}
                        }
                        let visible: &[String] = if macros == 0 { &shared } else { &[] };
                        translate_statement(inner.trim(), visible)?
                    }
                };
                out.push_str("{%");
                out.push_str(lead);
                out.push(' ');
                out.push_str(&statement);
                out.push(' ');
                out.push_str(trail);
                out.push_str("%}");
                rest = after;
            }
            _ => {
                let end = find_close(rest, body_start, "}}")
                    .ok_or_else(|| tag_error(source, rest, at, "Unterminated variable tag"))?;
                let (lead, inner, trail) = split_markers(&rest[body_start..end]);
                out.push_str(open);
                out.push_str(lead);
                out.push(' ');
                let visible: &[String] = if macros == 0 { &shared } else { &[] };
                let inner_at = body_start + lead.len();
                let consumed = source.len() - rest.len();
                let origin = Origin::after(&source[..consumed + inner_at]);
                out.push_str(&translate_located(inner, visible, origin)?);
                out.push(' ');
                out.push_str(trail);
                out.push_str("}}");
                rest = &rest[end + 2..];
            }
        }
    }
}

/// Drops the spaces and tabs that begin the current (last) line of `out`, when nothing else
/// is on it: `lstripBlocks` before a block tag.
fn lstrip_line(out: &mut String) {
    let line_start = out.rfind('\n').map_or(0, |at| at + 1);
    if out[line_start..].chars().all(|c| c == ' ' || c == '\t') {
        out.truncate(line_start);
    }
}

/// Copies raw text, turning each tag opening in it (`${{`, `{%`, `{#`) into an interpolated
/// string so minijinja prints it instead of reading a tag.
fn escape_openings(text: &str, open_expr: &str, out: &mut String) {
    let mut rest = text;
    while !rest.is_empty() {
        let found = [open_expr, "{%", "{#"]
            .into_iter()
            .find(|o| rest.starts_with(o));
        match found {
            Some(opening) => {
                out.push_str(open_expr);
                out.push(' ');
                emit_string(opening, out);
                out.push_str(" }}");
                rest = &rest[opening.len()..];
            }
            None => {
                let c = rest.chars().next().expect("not empty");
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
}

/// An error at the tag starting at `at` in `rest` (the unread end of `source`).
fn tag_error(source: &str, rest: &str, at: usize, message: &str) -> SyntaxError {
    let consumed = source.len() - rest.len();
    let origin = Origin::after(&source[..consumed + at]);
    SyntaxError::new(format!(
        "Template error at line {}, column {}: {message}",
        origin.line + 1,
        origin.column + 1
    ))
}

/// The body of a raw block up to its closing tag, and the text after that tag. As in
/// nunjitsu, only `{% endraw %}` without markers closes it, and inner `{% raw %}` tags nest.
fn find_end_raw<'a>(source: &'a str, name: &str) -> Option<(&'a str, &'a str)> {
    let closing = format!("end{name}");
    let mut depth = 1;
    let mut from = 0;
    while let Some(at) = source[from..].find("{%") {
        let start = from + at;
        let after_open = &source[start + 2..];
        let inner = after_open.trim_start();
        let marker = if after_open.starts_with('-') {
            None
        } else if let Some(rest) = inner.strip_prefix(closing.as_str()) {
            Some((false, rest))
        } else {
            inner.strip_prefix(name).map(|rest| (true, rest))
        };
        match marker.and_then(|(open, rest)| Some((open, rest.trim_start().strip_prefix("%}")?))) {
            Some((open, after)) => {
                let end = source.len() - after.len();
                if open {
                    depth += 1;
                } else {
                    depth -= 1;
                    if depth == 0 {
                        return Some((&source[..start], after));
                    }
                }
                from = end;
            }
            None => from = start + 2,
        }
    }
    None
}

fn translate_statement(code: &str, shared: &[String]) -> Result<String, SyntaxError> {
    let translate_expression = |e: &str| translate_expression_in(e, shared);
    let target = |t: &String| {
        if shared.contains(t) {
            format!("{VARS}.{t}")
        } else {
            t.clone()
        }
    };
    let (name, args) = match code.find(|c: char| c.is_whitespace()) {
        Some(at) => (&code[..at], code[at..].trim()),
        None => (code, ""),
    };
    Ok(match name {
        "if" | "elif" | "elseif" => format!(
            "{} __js_truthy({})",
            if name == "if" { "if" } else { "elif" },
            translate_expression(args)?
        ),
        "for" => {
            let split =
                top_level_keyword(args, "in").ok_or_else(|| SyntaxError::new("Expected in"))?;
            let targets = loop_targets(&args[..split])?;
            let iterable = translate_expression(&args[split + 2..])?;
            format!(
                "for {} in __js_iter({iterable}, {})",
                targets.join(", "),
                targets.len()
            )
        }
        "set" => match top_level_char(args, '=') {
            Some(at) => {
                let targets = loop_targets(&args[..at])?;
                let value = translate_expression(&args[at + 1..])?;
                let first = target(&targets[0]);
                let mut s = format!("set {first} = {value}");
                for t in &targets[1..] {
                    s.push_str(&format!(" %}}{{% set {} = {first}", target(t)));
                }
                s
            }
            None => code.to_owned(),
        },
        _ => code.to_owned(),
    })
}

/// Where `keyword` stands alone at the top level of `code` (outside strings and brackets).
fn top_level_keyword(code: &str, keyword: &str) -> Option<usize> {
    let bytes = code.as_bytes();
    let mut quote = None;
    let mut depth = 0i32;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(q) = quote {
            if c == b'\\' {
                i += 1;
            } else if c == q {
                quote = None;
            }
        } else {
            match c {
                b'\'' | b'"' => quote = Some(c),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                _ if depth == 0
                    && code[i..].starts_with(keyword)
                    && (i == 0 || !is_ident(bytes[i - 1]))
                    && !bytes.get(i + keyword.len()).copied().is_some_and(is_ident) =>
                {
                    return Some(i);
                }
                _ => {}
            }
        }
        i += 1;
    }
    None
}

fn top_level_char(code: &str, wanted: char) -> Option<usize> {
    let bytes = code.as_bytes();
    let mut quote = None;
    let mut depth = 0i32;
    for (i, &c) in bytes.iter().enumerate() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            b'\'' | b'"' => quote = Some(c),
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ if depth == 0
                && c == wanted as u8
                && bytes.get(i + 1) != Some(&b'=')
                && (i == 0 || !matches!(bytes[i - 1], b'=' | b'!' | b'<' | b'>')) =>
            {
                return Some(i);
            }
            _ => {}
        }
    }
    None
}

fn is_ident(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

/// When `source` is one interpolation and nothing else (white space around it counts only
/// where a `-` marker trims it), the expression inside it.
pub(crate) fn sole_expression(source: &str, syntax: Syntax) -> Option<&str> {
    let (open, _) = super::delimiters(syntax);
    let start = source.find(open)?;
    let body_start = start + open.len();
    let end = find_close(source, body_start, "}}")?;
    let (lead, inner, trail) = split_markers(&source[body_start..end]);
    let before = &source[..start];
    let after = &source[end + 2..];
    let before_ok = before.is_empty() || (lead == "-" && before.trim().is_empty());
    let after_ok = after.is_empty() || (trail == "-" && after.trim().is_empty());
    (before_ok && after_ok).then_some(inner)
}
