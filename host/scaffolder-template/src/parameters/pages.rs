//! Conditional parameter pages (`when`), as Backstage 4.3.0 resolves them before it
//! validates values and builds a task.
//!
//! What Backstage does (read in the published packages, not copied:
//! `@backstage/plugin-scaffolder-common` 2.4.0, `dist/evaluateCondition.esm.js`,
//! `dist/filterHiddenStepValues.esm.js` and `resolveParameterSteps` in `alpha.d.ts`;
//! `@backstage/plugin-scaffolder-backend` 4.3.0, `validateParameterSteps` in
//! `dist/service/router.cjs.js`; changeset ff0ef74, backstage/backstage#34292):
//!
//! - A page's `when` is a boolean or a string; any other value (or none) shows the page.
//!   The Template schema (`Template.v1beta3.schema.json`) types it `string | boolean`
//!   on the pages of the array form only.
//! - A string is trimmed; an empty one shows the page. One that starts with `${{` is
//!   rendered as written, anything else as `${{ <string> }}`, with `parameters` as the only
//!   variable. The page shows when the result is truthy the JavaScript way, an empty array
//!   being falsy. A condition that fails to render (a syntax error, an unknown filter)
//!   shows the page.
//! - Pages are resolved in order, and a page's condition sees the values minus those that
//!   only earlier hidden pages own, so a page that depends on a hidden page's answer is
//!   hidden too.
//! - The values a hidden page owns are removed: the fields its schema describes (through
//!   `properties`, `items`/`additionalItems`, local `$ref`s, `allOf`/`anyOf`/`oneOf`,
//!   `then`/`else` and schema `dependencies`) that no shown page describes. A value shared
//!   with a shown page, or described by no page, stays. A shown field with explicit
//!   `additionalProperties` keeps its whole value; a hidden page's top-level
//!   `additionalProperties` claims nothing. A page whose schema cannot be followed (a
//!   remote, malformed, missing or circular `$ref`) claims nothing when hidden and keeps
//!   everything when shown. Arrays are never shortened: an item keeps what a shown page
//!   does not describe.
//! - Only shown pages are validated, against the values as submitted (not the filtered
//!   ones); the task's `parameters` are the filtered values.
//!
//! Deliberately different: the `when` renderer is this crate's [`Renderer`], which knows
//! Backstage's filters (`parseRepoUrl`, ...); Backstage's condition renderer is a bare
//! nunjitsu one, where those filters are unknown and so make the page show. Schemas too
//! deep or too large to follow within [`MAX_DEPTH`] and [`BUDGET`] are treated like
//! schemas that cannot be followed (Backstage has no bound).

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use super::{ParameterError, validate};
use crate::render::{Renderer, RendererOptions, is_truthy};

/// How deep `$ref`s, schema combinations and nested values are followed for one page.
pub const MAX_DEPTH: usize = 128;
/// How many schema nodes may be visited for one page.
pub const BUDGET: usize = 100_000;

/// The values a template's pages were given, resolved and checked: what every path that
/// accepts values (`POST /v2/tasks`, `POST /v2/dry-run`, the command line) uses.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedValues {
    /// One entry per page, in order.
    pub pages: Vec<PageCheck>,
    /// The values a task runs with: the submitted ones minus what only hidden pages own.
    pub values: Json,
    /// Conditions that could not be evaluated and schemas that could not be followed, with
    /// what was done instead; for authors, never an error.
    pub warnings: Vec<String>,
}

/// What became of one page.
#[derive(Debug, Clone, PartialEq)]
pub enum PageCheck {
    /// Its `when` was false: not validated, its values removed.
    Hidden,
    /// Shown and validated; no errors means the values fit it.
    Shown { errors: Vec<ParameterError> },
}

impl CheckedValues {
    /// Backstage's answer: the errors of the first shown page that fails, else the values
    /// to run with.
    pub fn into_result(self) -> Result<Json, Vec<ParameterError>> {
        for page in self.pages {
            if let PageCheck::Shown { errors } = page
                && !errors.is_empty()
            {
                return Err(errors);
            }
        }
        Ok(self.values)
    }

    /// Whether each page is shown.
    pub fn visible(&self) -> Vec<bool> {
        self.pages
            .iter()
            .map(|p| matches!(p, PageCheck::Shown { .. }))
            .collect()
    }
}

/// Resolves which pages are shown, validates `values` against each shown page, and works
/// out the values to run with.
pub fn check_values(pages: &[Json], values: &Json) -> CheckedValues {
    let mut warnings = Vec::new();
    let (visible, filtered) = resolve(pages, values, &mut warnings);
    let pages = pages
        .iter()
        .zip(visible)
        .enumerate()
        .map(|(index, (page, shown))| {
            if shown {
                PageCheck::Shown {
                    errors: validate(page, values, &format!("parameter page {}", index + 1)),
                }
            } else {
                PageCheck::Hidden
            }
        })
        .collect();
    CheckedValues {
        pages,
        values: filtered,
        warnings,
    }
}

/// Each page's visibility, in order, and the values minus what only hidden pages own.
fn resolve(pages: &[Json], values: &Json, warnings: &mut Vec<String>) -> (Vec<bool>, Json) {
    let mut renderer = None;
    let mut resolved: Vec<(&Json, bool)> = Vec::with_capacity(pages.len());
    for (index, page) in pages.iter().enumerate() {
        let shown = match page.get("when") {
            Some(Json::Bool(shown)) => *shown,
            Some(Json::String(condition)) => {
                // Only the values earlier pages leave are visible to the condition.
                let state = remove_hidden_values(values, &resolved, &mut Vec::new());
                let renderer =
                    renderer.get_or_insert_with(|| Renderer::new(RendererOptions::default()));
                evaluate(renderer, condition, &state).unwrap_or_else(|err| {
                    warnings.push(format!(
                        "parameter page {}: its `when` could not be evaluated, so the page is shown (as Backstage does): {err}",
                        index + 1
                    ));
                    true
                })
            }
            _ => true,
        };
        resolved.push((page, shown));
    }
    let filtered = remove_hidden_values(values, &resolved, warnings);
    (resolved.iter().map(|(_, shown)| *shown).collect(), filtered)
}

/// Whether a `when` string holds for these values.
fn evaluate(renderer: &Renderer, condition: &str, values: &Json) -> Result<bool, String> {
    let condition = condition.trim();
    if condition.is_empty() {
        return Ok(true);
    }
    let source = if condition.starts_with("${{") {
        condition.to_owned()
    } else {
        format!("${{{{ {condition} }}}}")
    };
    let context = json!({ "parameters": values });
    match renderer.render_string(&source, &context) {
        Ok(Some(value)) => Ok(is_truthy(&value)),
        // Undefined is falsy.
        Ok(None) => Ok(false),
        Err(err) => Err(err.message),
    }
}

/// The fields of a value that pages describe: everything below (`all`), or some children
/// by property name or array index.
#[derive(Debug, Clone, Default)]
struct Claims {
    all: bool,
    children: BTreeMap<String, Claims>,
}

static ALL: Claims = Claims {
    all: true,
    children: BTreeMap::new(),
};

impl Claims {
    fn all() -> Self {
        ALL.clone()
    }

    fn merge(&mut self, other: Claims) {
        self.all |= other.all;
        for (key, child) in other.children {
            match self.children.get_mut(&key) {
                Some(existing) => existing.merge(child),
                None => {
                    self.children.insert(key, child);
                }
            }
        }
    }
}

/// `values` minus the fields that hidden pages describe and shown pages do not.
fn remove_hidden_values(
    values: &Json,
    pages: &[(&Json, bool)],
    warnings: &mut Vec<String>,
) -> Json {
    if pages.iter().all(|(_, shown)| *shown) {
        return values.clone();
    }
    let mut hidden = Claims::default();
    let mut shown = Claims::default();
    for (index, (schema, visible)) in pages.iter().enumerate() {
        let mut walk = Walk {
            root: schema,
            budget: BUDGET,
        };
        let claims = match walk.collect(schema, Some(values), Root::Page { hidden: !visible }, 0) {
            Ok(claims) => claims,
            Err(reason) => {
                let kept = if *visible {
                    "all values are kept"
                } else {
                    "it removes no values"
                };
                warnings.push(format!(
                    "parameter page {}: {reason}, so {kept} (as Backstage does)",
                    index + 1
                ));
                if !visible {
                    continue;
                }
                Claims::all()
            }
        };
        if *visible {
            shown.merge(claims);
        } else {
            hidden.merge(claims);
        }
    }
    filter(values, Some(&hidden), Some(&shown)).unwrap_or_else(|| values.clone())
}

/// A value with what hidden pages claim removed unless shown pages claim it too; `None`
/// removes it.
fn filter(value: &Json, hidden: Option<&Claims>, shown: Option<&Claims>) -> Option<Json> {
    let Some(hidden) = hidden else {
        return Some(value.clone());
    };
    let shown = shown?;
    if shown.all {
        return Some(value.clone());
    }
    let hidden_child = |key: &str| {
        if hidden.all {
            Some(&ALL)
        } else {
            hidden.children.get(key)
        }
    };
    match value {
        Json::Array(items) => Some(Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    let key = index.to_string();
                    // An item no shown page describes is kept whole.
                    let shown = shown.children.get(&key).unwrap_or(&ALL);
                    filter(item, hidden_child(&key), Some(shown)).unwrap_or_else(|| item.clone())
                })
                .collect(),
        )),
        Json::Object(map) => Some(Json::Object(
            map.iter()
                .filter_map(|(key, entry)| {
                    let kept = filter(entry, hidden_child(key), shown.children.get(key))?;
                    Some((key.clone(), kept))
                })
                .collect(),
        )),
        other => Some(other.clone()),
    }
}

#[derive(Clone, Copy)]
enum Root {
    /// A page's own schema; a hidden page's top-level `additionalProperties` claims nothing.
    Page {
        hidden: bool,
    },
    Nested,
}

/// Following one page's schema along the values.
struct Walk<'a> {
    root: &'a Json,
    budget: usize,
}

impl<'a> Walk<'a> {
    fn spend(&mut self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "its schema nests deeper than {MAX_DEPTH} levels along the values"
            ));
        }
        self.budget = self.budget.checked_sub(1).ok_or_else(|| {
            format!("its schema takes more than {BUDGET} steps to follow along the values")
        })?;
        Ok(())
    }

    /// The fields of `value` that `schema` describes.
    fn collect(
        &mut self,
        schema: &'a Json,
        value: Option<&Json>,
        root: Root,
        depth: usize,
    ) -> Result<Claims, String> {
        let Some(value) = value else {
            return Ok(Claims::all());
        };
        if !schema.is_object() {
            return Ok(Claims::all());
        }
        self.spend(depth)?;
        let mut claims = Claims::default();
        let mut parts = Vec::new();
        self.expand(schema, &mut Vec::new(), &mut parts, depth)?;
        for part in parts {
            let open = matches!(
                part.get("additionalProperties"),
                Some(Json::Bool(true) | Json::Object(_))
            );
            if open && !matches!(root, Root::Page { hidden: true }) {
                claims.all = true;
            }
            if let Some(Json::Object(properties)) = part.get("properties") {
                for (key, property) in properties {
                    let child = self.collect(
                        property,
                        value.as_object().and_then(|v| v.get(key)),
                        Root::Nested,
                        depth + 1,
                    )?;
                    claims.merge(Claims {
                        all: false,
                        children: BTreeMap::from([(key.clone(), child)]),
                    });
                }
            }
            if let (Json::Array(items), Some(item_schema)) = (value, part.get("items")) {
                for (index, item) in items.iter().enumerate() {
                    let schema = match item_schema {
                        Json::Array(tuple) => {
                            tuple.get(index).or_else(|| part.get("additionalItems"))
                        }
                        single => Some(single),
                    };
                    let child = match schema {
                        Some(schema) => {
                            self.collect(schema, Some(item), Root::Nested, depth + 1)?
                        }
                        None => Claims::all(),
                    };
                    claims.merge(Claims {
                        all: false,
                        children: BTreeMap::from([(index.to_string(), child)]),
                    });
                }
            }
        }
        // A field whose schema describes no children owns its whole value.
        if matches!(root, Root::Nested) && claims.children.is_empty() {
            claims.all = true;
        }
        Ok(claims)
    }

    /// `schema` and every schema it stands for: its `$ref` target, the members of
    /// `allOf`/`anyOf`/`oneOf`, `then`, `else` and schema `dependencies`, recursively.
    fn expand(
        &mut self,
        schema: &'a Json,
        ancestors: &mut Vec<*const Json>,
        out: &mut Vec<&'a Json>,
        depth: usize,
    ) -> Result<(), String> {
        let id: *const Json = schema;
        if ancestors.contains(&id) {
            return Err("its schema refers to itself in a circle".into());
        }
        self.spend(depth + ancestors.len())?;
        out.push(schema);
        ancestors.push(id);
        if let Some(Json::String(reference)) = schema.get("$ref") {
            let target = self.resolve_ref(reference)?;
            self.expand(target, ancestors, out, depth)?;
        }
        for keyword in ["allOf", "oneOf", "anyOf"] {
            if let Some(Json::Array(members)) = schema.get(keyword) {
                for member in members.iter().filter(|m| m.is_object()) {
                    self.expand(member, ancestors, out, depth)?;
                }
            }
        }
        let dependencies = match schema.get("dependencies") {
            Some(Json::Object(map)) => map.values().collect(),
            _ => Vec::new(),
        };
        let branches = [schema.get("then"), schema.get("else")]
            .into_iter()
            .flatten()
            .chain(dependencies);
        for branch in branches.filter(|b| b.is_object()) {
            self.expand(branch, ancestors, out, depth)?;
        }
        ancestors.pop();
        Ok(())
    }

    /// A local `$ref` (`#`, `#/definitions/name`) within the page's schema.
    fn resolve_ref(&self, reference: &str) -> Result<&'a Json, String> {
        let unsupported =
            || format!("its schema has the reference '{reference}', which is not local (`#/...`)");
        let fragment = reference.strip_prefix('#').ok_or_else(unsupported)?;
        let pointer = percent_decode(fragment)
            .ok_or_else(|| format!("its schema has the malformed reference '{reference}'"))?;
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return Err(unsupported());
        }
        let mut target = Some(self.root);
        if !pointer.is_empty() {
            for segment in pointer[1..].split('/') {
                let key = segment.replace("~1", "/").replace("~0", "~");
                target = match target {
                    Some(Json::Object(map)) => map.get(&key),
                    Some(Json::Array(items)) => key
                        .parse::<usize>()
                        .ok()
                        .filter(|i| i.to_string() == key)
                        .and_then(|i| items.get(i)),
                    _ => None,
                };
            }
        }
        target.filter(|t| t.is_object()).ok_or_else(|| {
            format!("its schema has the reference '{reference}', which points at no schema object")
        })
    }
}

/// JavaScript's `decodeURIComponent`: `%XX` escapes decoded, `None` when an escape is
/// malformed or the bytes are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
