//! A step's iterations: its `each` rendered into items (`Object.entries` order, holes
//! skipped), then per item its `if` and input, with the values derived from secrets added to
//! the step's redactions, and the items described as Backstage logs them.

use scaffolder_template::{Renderer, TemplateContext, is_truthy};
use serde_json::{Map, Value as Json, json};

use super::{RenderWarnings, Run};
use crate::actions::RegisteredAction;
use crate::failure::Failure;
use crate::input_check::check_step_input;
use crate::redact::Redactor;
use scaffolder_store::SpecStep;

/// One run of a step's action: the `each` item (key and value), if any, whether its
/// `if` holds, and the rendered input (validated when it runs).
pub(super) struct Iteration {
    pub(super) item: Option<(String, Json)>,
    pub(super) runs: bool,
    pub(super) input: Json,
}

/// An `each` item: its key (a string, also for arrays) and value.
type EachItem = (String, Json);

/// What a step's `each` resolved to.
pub(super) enum Each {
    Undefined,
    /// Not an array nor an object (null included).
    Primitive,
    /// `Object.entries` of the value: arrays by string index, holes left out.
    Entries(Vec<(String, Json)>),
}

impl Run {
    /// Renders `each` and, per item, `if` and the input, as Backstage: `each` and the
    /// per-item `if` see secrets; what differs from a rendering without secrets is hidden
    /// in the step's lines; the inputs of the items that run are validated before any
    /// runs.
    pub(super) fn prepare_iterations(
        &self,
        step: &SpecStep,
        action: &RegisteredAction,
        context: &mut TemplateContext,
        failed_before: bool,
        redactor: &Redactor,
        warnings: &mut RenderWarnings,
    ) -> Result<Vec<Iteration>, Failure> {
        let has_secrets = !context.secrets.is_empty() || !context.environment_secrets.is_empty();
        let mut without_secrets = context.clone();
        without_secrets.secrets.clear();
        without_secrets.environment_secrets.clear();

        // Each item with the same item rendered without secrets (`None`: unknown).
        let items: Vec<Option<(EachItem, Option<EachItem>)>> = match &step.each {
            None => vec![None],
            Some(each) => {
                let resolved = render_each(
                    &self.renderer,
                    each,
                    &context.with_secrets(),
                    warnings.sink(),
                );
                warnings.flush();
                let entries = match resolved {
                    Each::Entries(entries) => entries,
                    Each::Undefined => {
                        let each_text = match each {
                            Json::String(s) => s.clone(),
                            other => js_to_string(other),
                        };
                        return Err(Failure::input(format!(
                            "Invalid value on action {}.each parameter, \"{each_text}\" cannot be resolved to a value",
                            step.action
                        )));
                    }
                    Each::Primitive => {
                        return Err(Failure::input(format!(
                            "Invalid value on action {}.each parameter, must resolve to an array or object",
                            step.action
                        )));
                    }
                };
                let mut plain: Vec<Option<(String, Json)>> = vec![None; entries.len()];
                if has_secrets && !entries.is_empty() {
                    let mut ignored = Vec::new();
                    match render_each(
                        &self.renderer,
                        each,
                        &without_secrets.with_secrets(),
                        &mut ignored,
                    ) {
                        Each::Entries(other) => {
                            // Arrays are matched by index, objects by position.
                            let array = each_is_array(&entries);
                            let mut without = Vec::with_capacity(entries.len());
                            for (index, (key, _)) in entries.iter().enumerate() {
                                let found = if array {
                                    other.iter().find(|(k, _)| k == key)
                                } else {
                                    other.get(index)
                                };
                                plain[index] = match (found, array) {
                                    (Some(pair), _) => Some(pair.clone()),
                                    (None, true) => Some((key.clone(), Json::Null)),
                                    (None, false) => None,
                                };
                                without.push(match (found, array) {
                                    (Some((k, v)), _) => json!([k, v]),
                                    (None, true) => json!([key]),
                                    (None, false) => Json::Null,
                                });
                            }
                            let with: Vec<Json> =
                                entries.iter().map(|(k, v)| json!([k, v])).collect();
                            add_secret_redactions(redactor, &json!(with), Some(&json!(without)));
                        }
                        _ => {
                            let mut strings = Vec::new();
                            for (key, value) in &entries {
                                strings.push(key.clone());
                                string_values(value, &mut strings);
                            }
                            strings.iter().for_each(|s| redactor.add(s));
                        }
                    }
                }
                entries
                    .into_iter()
                    .zip(plain)
                    .map(|(item, plain)| Some((item, plain)))
                    .collect()
            }
        };

        let mut prepared = Vec::with_capacity(items.len());
        for entry in items {
            let (item, plain) = match entry {
                Some((item, plain)) => (Some(item), plain),
                None => (None, None),
            };
            context.each = item.clone();
            without_secrets.each = plain.clone();
            if has_secrets && let Some((key, value)) = &item {
                let without = plain.as_ref().map(|(k, v)| json!({ "key": k, "value": v }));
                add_secret_redactions(
                    redactor,
                    &json!({ "key": key, "value": value }),
                    Some(without.as_ref().unwrap_or(&json!({}))),
                );
            }
            // An `if` that is absent or empty lets every item run; `if: false` was
            // handled before `each` was resolved.
            let runs = match (&item, &step.condition) {
                (Some(_), Some(condition)) if is_truthy(condition) => {
                    let holds = self
                        .renderer
                        .render_condition(
                            condition,
                            &context.with_secrets(),
                            failed_before,
                            warnings.sink(),
                        )
                        .holds;
                    warnings.flush();
                    holds
                }
                _ => true,
            };
            let input = self
                .renderer
                .render_value(&step.input, &context.with_secrets(), warnings.sink())
                .unwrap_or_else(|| json!({}));
            warnings.flush();
            if runs {
                if has_secrets {
                    let mut ignored = Vec::new();
                    let plain_input = self.renderer.render_value(
                        &step.input,
                        &without_secrets.with_secrets(),
                        &mut ignored,
                    );
                    add_secret_redactions(redactor, &input, plain_input.as_ref());
                }
                // The check `scaffolder plugin test` makes too; an item's key is named.
                let key = item
                    .as_ref()
                    .map(|(key, _)| format!("[{key}]"))
                    .unwrap_or_default();
                let label = format!("{}{key}", step.action);
                if let Err(message) = check_step_input(&label, &action.info.input_schema, &input) {
                    context.each = None;
                    return Err(Failure::input(message));
                }
            }
            prepared.push(Iteration { item, runs, input });
        }
        context.each = None;
        Ok(prepared)
    }
}

/// Backstage logs `JSON.stringify(each, (k, v) => k ? v.toString() : v)`: the key and the
/// value as JavaScript strings.
pub(super) fn describe_each((key, value): &(String, Json)) -> String {
    json!({ "key": key, "value": js_to_string(value) }).to_string()
}

fn js_to_string(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Object(_) => "[object Object]".to_owned(),
        Json::Array(items) => items
            .iter()
            .map(|item| match item {
                Json::Null => String::new(),
                other => js_to_string(other),
            })
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// Backstage's `collectSecretRedactions`: hides every string of a value rendered with
/// secrets that differs from the same place rendered without them (`None`: nothing
/// rendered there). Object entries are paired by key, as Backstage 4.3.0 does (be5074c):
/// 4.2.0 paired them by position, so a key that a secret made disappear shifted the rest
/// and hid key names (the word `token` in every later log line), which never are secrets.
pub(super) fn add_secret_redactions(redactor: &Redactor, with: &Json, without: Option<&Json>) {
    match with {
        Json::String(text) if without.and_then(Json::as_str) != Some(text.as_str()) => {
            redactor.add(text);
        }
        Json::Array(items) => {
            let other = without.and_then(Json::as_array);
            for (index, item) in items.iter().enumerate() {
                add_secret_redactions(redactor, item, other.and_then(|o| o.get(index)));
            }
        }
        Json::Object(map) => {
            let other = without.and_then(Json::as_object);
            for (key, value) in map {
                add_secret_redactions(redactor, value, other.and_then(|o| o.get(key)));
            }
        }
        _ => {}
    }
}

/// Every string of a value, object keys included (Backstage's `extractStringValues`).
fn string_values(value: &Json, out: &mut Vec<String>) {
    match value {
        Json::String(text) => out.push(text.clone()),
        Json::Array(items) => items.iter().for_each(|item| string_values(item, out)),
        Json::Object(map) => {
            for (key, item) in map {
                out.push(key.clone());
                string_values(item, out);
            }
        }
        _ => {}
    }
}

/// Renders a step's `each` (spec §3.6 step 8). A YAML list keeps its items apart so
/// that one rendering to undefined is a hole, which `Object.entries` skips.
pub(super) fn render_each(
    renderer: &Renderer,
    each: &Json,
    context: &Json,
    warnings: &mut Vec<String>,
) -> Each {
    if let Json::Array(items) = each {
        return Each::Entries(
            items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| {
                    Some((
                        index.to_string(),
                        renderer.render_value(item, context, warnings)?,
                    ))
                })
                .collect(),
        );
    }
    match renderer.render_value(each, context, warnings) {
        None => Each::Undefined,
        Some(Json::Array(items)) => Each::Entries(
            items
                .into_iter()
                .enumerate()
                .map(|(index, item)| (index.to_string(), item))
                .collect(),
        ),
        Some(Json::Object(map)) => Each::Entries(js_object_entries(map)),
        Some(_) => Each::Primitive,
    }
}

/// Whether `each` entries came from an array (keys `0`, `1`, ... possibly with holes).
fn each_is_array(entries: &[(String, Json)]) -> bool {
    entries.iter().all(|(key, _)| array_index(key).is_some())
}

/// `Object.entries` order: keys that are array indices first, ascending, then the
/// others in insertion order.
pub(super) fn js_object_entries(map: Map<String, Json>) -> Vec<(String, Json)> {
    let (mut indices, others): (Vec<_>, Vec<_>) = map
        .into_iter()
        .partition(|(key, _)| array_index(key).is_some());
    indices.sort_by_key(|(key, _)| array_index(key));
    indices.extend(others);
    indices
}

/// A JavaScript array index: the canonical decimal form of an integer below 2³² − 1.
fn array_index(key: &str) -> Option<u32> {
    let n: u32 = key.parse().ok()?;
    (n < u32::MAX && n.to_string() == key).then_some(n)
}
