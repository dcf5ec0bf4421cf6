//! The syntax tree and nunjitsu's grammar: a recursive-descent [`Parser`] with its precedence
//! quirks (`not` binding to the leftmost operand, `*`, `/`, `%` grouped as nunjitsu groups
//! them), reserved names refused, nesting bounded.

use super::error::{SyntaxError, diagnostic_path, quoted};
use super::tokens::{Tok, tokenize};

#[derive(Debug, Clone)]
pub(super) enum Expr {
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
pub(super) enum Arg {
    Positional(Expr),
    Keyword(String, Expr),
}

pub(crate) const RESERVED: &[&str] = &["constructor", "prototype", "__proto__"];
pub(super) const MAX_DEPTH: usize = 64;

pub(super) struct Parser {
    tokens: Vec<Tok>,
    offsets: Vec<usize>,
    /// Where the key of the latest member access starts (a method call's position).
    last_key: usize,
    at: usize,
    depth: usize,
}

pub(super) type Parsed = Result<Expr, SyntaxError>;

impl Parser {
    pub(super) fn new(source: &str) -> Result<Self, SyntaxError> {
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

    pub(super) fn consume(&mut self, op: &str) -> bool {
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

    pub(super) fn expect_name(&mut self) -> Result<String, SyntaxError> {
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

    pub(super) fn expect_eof(&self) -> Result<(), SyntaxError> {
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

    pub(super) fn parse(mut self) -> Parsed {
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

pub(super) fn allowed(name: &str) -> Result<(), SyntaxError> {
    if RESERVED.contains(&name) {
        return Err(SyntaxError::new(format!(
            "Template name {} is reserved",
            quoted(name)
        )));
    }
    Ok(())
}

/// A run of `*`, `/`, `%` operands, materialised left to right (nunjitsu's grouping).
pub(super) struct Sequence {
    first: Expr,
    ops: Vec<(&'static str, Expr)>,
}

pub(super) fn append(sequence: &mut Sequence, op: &'static str, right: Sequence) {
    sequence.ops.push((op, right.first));
    sequence.ops.extend(right.ops);
}

pub(super) fn materialize(sequence: Sequence) -> Expr {
    let mut left = sequence.first;
    for (op, right) in sequence.ops {
        left = Expr::Binary(op, Box::new(left), Box::new(right));
    }
    left
}

pub(super) fn comparison(left: Expr, ops: Vec<(&'static str, Expr)>) -> Expr {
    if ops.is_empty() {
        left
    } else {
        Expr::Compare(Box::new(left), ops)
    }
}

/// nunjitsu's `not` binds to the leftmost operand of arithmetic and comparisons.
pub(super) fn lower_not(target: Expr) -> Expr {
    match target {
        Expr::Binary(op, left, right) if op != "pow" => {
            Expr::Binary(op, Box::new(lower_not(*left)), right)
        }
        Expr::Compare(left, ops) => Expr::Compare(Box::new(lower_not(*left)), ops),
        other => Expr::Not(Box::new(other)),
    }
}
