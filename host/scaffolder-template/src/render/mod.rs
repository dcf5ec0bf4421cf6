//! `${{ … }}` rendering with the semantics of Backstage's workflow runner (nunjitsu, Backstage
//! 4.2.0's renderer), on top of minijinja.
//!
//! Expressions are parsed with nunjitsu's grammar and rewritten into minijinja calls of
//! JavaScript-semantics functions (`expr.rs`, `runtime.rs`, `methods.rs`); filters and tests
//! are nunjitsu's (`filters.rs`). The rules, each tested in `tests.rs`:
//! - a string that is exactly one `${{ expr }}` keeps the expression's JSON type;
//! - anything else renders to a string (objects as `[object Object]`, arrays as `a,b`);
//! - a sole expression that is undefined drops the key (`None` from [`Renderer::render_value`]);
//! - a render error (an expression nunjitsu does not parse, a method it does not approve)
//!   keeps the original string and adds a warning;
//! - `if` truthiness is JavaScript's, with empty arrays falsy ([`is_truthy`]).

mod expr;
mod filters;
mod js;
mod methods;
mod runtime;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Object, Serde};
use minijinja::{Environment, UndefinedBehavior, Value};
use serde_json::Value as Json;

pub use filters::{ScmIntegration, ScmKind, parse_entity_ref, parse_repo_url};

/// Upper bound on template work (loop iterations, calls) per render, so a template
/// cannot spin forever.
const FUEL: u64 = 100_000;
/// Nesting bound for templates and values.
const RECURSION_LIMIT: usize = 64;
/// The largest string a single render may produce.
pub const MAX_OUTPUT_BYTES: usize = 8 << 20;

/// Which delimiters templates use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// `${{ expr }}` and `{% stmt %}`, as in template steps and `fetch:template`.
    Backstage,
    /// `{{ expr }}` and `{% stmt %}`, for `fetch:template` with `cookiecutterCompat`
    /// (adds the `jsonify` filter).
    Cookiecutter,
}

/// Options of a [`Renderer`].
#[derive(Debug, Clone)]
pub struct RendererOptions {
    pub syntax: Syntax,
    /// SCM hosts known to `parseRepoUrl` and `projectSlug`.
    pub integrations: Vec<ScmIntegration>,
    /// Strip the first newline after a block tag (`trimBlocks`).
    pub trim_blocks: bool,
    /// Strip whitespace before a block tag on its line (`lstripBlocks`).
    pub lstrip_blocks: bool,
}

impl Default for RendererOptions {
    fn default() -> Self {
        Self {
            syntax: Syntax::Backstage,
            integrations: ScmIntegration::defaults(),
            trim_blocks: false,
            lstrip_blocks: false,
        }
    }
}

/// A template environment: delimiters, filters, globals and JavaScript string methods.
pub struct Renderer {
    env: Environment<'static>,
    syntax: Syntax,
    trim_blocks: bool,
    lstrip_blocks: bool,
}

/// A render that failed; the original text should be kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RenderError {
    pub message: String,
}

impl RenderError {
    fn from_minijinja(err: &minijinja::Error) -> Self {
        let mut message = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        Self { message }
    }
}

impl Renderer {
    pub fn new(options: RendererOptions) -> Self {
        // Nothing of minijinja's own: every filter, test and function is nunjitsu's.
        let mut env = Environment::empty();
        let (open, close) = delimiters(options.syntax);
        let syntax = SyntaxConfig::builder()
            .variable_delimiters(open, close)
            .block_delimiters("{%", "%}")
            .comment_delimiters("{#", "#}")
            .trim_blocks(options.trim_blocks)
            .lstrip_blocks(options.lstrip_blocks)
            .keep_trailing_newline(true)
            .build()
            .expect("the Backstage delimiters are valid");
        env.set_syntax(syntax);
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(RECURSION_LIMIT);
        env.set_formatter(|out, _state, value| {
            let text = js::render(value)?;
            out.write_str(&text).map_err(|_| {
                minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "write failed")
            })
        });
        filters::register(&mut env, &options.integrations, options.syntax);
        runtime::register(&mut env, options.syntax);
        env.add_function("always", always);
        env.add_function("failure", failure);
        Self {
            env,
            syntax: options.syntax,
            trim_blocks: options.trim_blocks,
            lstrip_blocks: options.lstrip_blocks,
        }
    }

    /// Renders a text template (a file, or a string with text around expressions).
    pub fn render_text(&self, source: &str, context: &Json) -> Result<String, RenderError> {
        // Text without a tag renders as itself (a skeleton's file names, most files).
        if !self.has_syntax(source) {
            return within_output_limit(source.to_owned());
        }
        let mut ctx = Value::from(Serde(context));
        if runtime::may_mutate(source) {
            ctx = runtime::mutable_copy(&ctx);
        }
        self.render_text_in(source, &ctx)
    }

    /// Renders one string leaf with the workflow rules: a sole expression keeps its type
    /// (`Ok(None)` when undefined), anything else becomes a string.
    pub fn render_string(&self, source: &str, context: &Json) -> Result<Option<Json>, RenderError> {
        self.render_string_in(source, &Value::from(Serde(context)))
    }

    /// Renders every string leaf of `value` (object values and array items, not keys).
    /// A leaf that fails to render keeps its original text and adds a warning; an
    /// undefined sole expression drops an object key, or becomes `null` in an array.
    pub fn render_value(
        &self,
        value: &Json,
        context: &Json,
        warnings: &mut Vec<String>,
    ) -> Option<Json> {
        self.render_value_in(value, &Value::from(Serde(context)), warnings)
    }

    /// Renders a step's `if` as the workflow runner does and tests its truthiness.
    /// `failed` tells `failure()` whether an earlier step failed; the result says whether
    /// the condition holds and whether it called `always()` or `failure()`.
    pub fn render_condition(
        &self,
        condition: &Json,
        context: &Json,
        failed: bool,
        warnings: &mut Vec<String>,
    ) -> Condition {
        let flags = Arc::new(WorkflowFlags {
            failed,
            called: AtomicBool::new(false),
        });
        // Put the flags object where `always()`/`failure()` look for it.
        let ctx = minijinja::context! {
            __workflow => Value::from_dyn_object(flags.clone()),
            ..Value::from(Serde(context))
        };
        let value = self
            .render_value_in(condition, &ctx, warnings)
            .unwrap_or(Json::Null);
        Condition {
            holds: is_truthy(&value),
            uses_status_function: flags.called.load(Ordering::SeqCst),
        }
    }

    fn render_value_in(
        &self,
        value: &Json,
        ctx: &Value,
        warnings: &mut Vec<String>,
    ) -> Option<Json> {
        match value {
            Json::String(s) => match self.render_string_in(s, ctx) {
                Ok(rendered) => rendered,
                Err(err) => {
                    warnings.push(format!(
                        "could not render '{s}', keeping it as written: {err}"
                    ));
                    Some(value.clone())
                }
            },
            Json::Array(items) => Some(Json::Array(
                items
                    .iter()
                    .map(|item| {
                        self.render_value_in(item, ctx, warnings)
                            .unwrap_or(Json::Null)
                    })
                    .collect(),
            )),
            Json::Object(map) => Some(Json::Object(
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.render_value_in(v, ctx, warnings)?)))
                    .collect(),
            )),
            other => Some(other.clone()),
        }
    }

    fn render_string_in(&self, source: &str, ctx: &Value) -> Result<Option<Json>, RenderError> {
        if !self.has_syntax(source) {
            return Ok(Some(Json::String(source.to_owned())));
        }
        let copied;
        let ctx = if runtime::may_mutate(source) {
            copied = runtime::mutable_copy(ctx);
            &copied
        } else {
            ctx
        };
        if let Some(evaluated) = self.eval_sole_expression(source, ctx) {
            return evaluated;
        }
        self.render_text_in(source, ctx)
            .map(|s| Some(Json::String(s)))
    }

    fn render_text_in(&self, source: &str, ctx: &Value) -> Result<String, RenderError> {
        // Diagnostics point into the text as written, not as translated.
        let original = source;
        let source =
            expr::translate_template(source, self.syntax, self.trim_blocks, self.lstrip_blocks)
                .map_err(|e| RenderError { message: e.0 })?;
        let rendered = self.env.render_str(&source, ctx.clone()).map_err(|e| {
            match filters::diagnostic(original, &e, self.syntax) {
                Some(message) => RenderError { message },
                // Already worded and located as nunjitsu's (a call of a missing method).
                None if e
                    .detail()
                    .is_some_and(|d| d.starts_with("Template error at ")) =>
                {
                    RenderError {
                        message: e.detail().unwrap_or_default().to_owned(),
                    }
                }
                None => RenderError::from_minijinja(&e),
            }
        })?;
        within_output_limit(rendered)
    }

    fn has_syntax(&self, source: &str) -> bool {
        let (open, _) = self.delimiters();
        source.contains(open) || source.contains("{%") || source.contains("{#")
    }

    /// Evaluates a string that is exactly one `${{ expr }}` (white space around it only
    /// where a `-` marker trims it), keeping the value's JSON type; `None` when the string is
    /// anything else. An expression that does not parse is an error, as in nunjitsu.
    fn eval_sole_expression(
        &self,
        source: &str,
        ctx: &Value,
    ) -> Option<Result<Option<Json>, RenderError>> {
        let inner = expr::sole_expression(source, self.syntax)?;
        Some(self.eval_expression(inner, ctx))
    }

    fn eval_expression(&self, inner: &str, ctx: &Value) -> Result<Option<Json>, RenderError> {
        let expr = expr::translate_expression(inner).map_err(|e| RenderError { message: e.0 })?;
        let compiled = self
            .env
            .compile_expression(&expr)
            .map_err(|e| RenderError::from_minijinja(&e))?;
        let value = compiled
            .eval(ctx.clone())
            .map_err(|e| RenderError::from_minijinja(&e))?;
        js::to_json(&value).map_err(|e| RenderError::from_minijinja(&e))
    }

    fn delimiters(&self) -> (&'static str, &'static str) {
        delimiters(self.syntax)
    }
}

/// `rendered`, unless it is longer than a render may produce.
fn within_output_limit(rendered: String) -> Result<String, RenderError> {
    if rendered.len() > MAX_OUTPUT_BYTES {
        return Err(RenderError {
            message: format!("the rendered text exceeds {MAX_OUTPUT_BYTES} bytes"),
        });
    }
    Ok(rendered)
}

/// The expression delimiters of a syntax.
fn delimiters(syntax: Syntax) -> (&'static str, &'static str) {
    match syntax {
        Syntax::Backstage => ("${{", "}}"),
        Syntax::Cookiecutter => ("{{", "}}"),
    }
}

/// Outcome of [`Renderer::render_condition`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Condition {
    pub holds: bool,
    pub uses_status_function: bool,
}

/// JavaScript truthiness as Backstage's `isTruthy`: arrays are truthy when non-empty;
/// `false`, `0`, `""` and `null` are falsy; everything else (the string `"false"`, any
/// object) is truthy.
pub fn is_truthy(value: &Json) -> bool {
    match value {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Json::String(s) => !s.is_empty(),
        Json::Array(items) => !items.is_empty(),
        Json::Object(_) => true,
    }
}

const WORKFLOW_KEY: &str = "__workflow";

#[derive(Debug)]
struct WorkflowFlags {
    failed: bool,
    called: AtomicBool,
}

impl Object for WorkflowFlags {}

fn flags(state: &minijinja::State) -> Option<Arc<WorkflowFlags>> {
    state
        .lookup(WORKFLOW_KEY)
        .and_then(|v| v.downcast_object::<WorkflowFlags>())
}

/// `always()`: true; marks the condition as one that runs after a failure.
fn always(state: &minijinja::State) -> bool {
    if let Some(f) = flags(state) {
        f.called.store(true, Ordering::SeqCst);
    }
    true
}

/// `failure()`: whether an earlier step failed.
fn failure(state: &minijinja::State) -> bool {
    match flags(state) {
        Some(f) => {
            f.called.store(true, Ordering::SeqCst);
            f.failed
        }
        None => false,
    }
}
