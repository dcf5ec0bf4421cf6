//! Schema `default`s applied to parameter values the way Backstage's frontend does before
//! it submits a task: each parameter page is a react-jsonschema-form (rjsf 5) `Form`, and
//! rjsf's `getDefaultFormState` fills in what the user left alone. The server does not
//! apply defaults (Backstage's backend does not either); the local commands
//! (`scaffolder dry-run`, `scaffolder test`) do, so they create what the portal would.
//!
//! What is reproduced, with rjsf's default `experimental_defaultFormStateBehavior`:
//! - a missing property gets its `default`; a `const` is a default too (`constAsDefaults:
//!   'always'`); a value that is present, even `null`, is never replaced;
//! - nested objects recursively: a property's own `default` wins over its parent's object
//!   `default`, and a nested object is added only when it holds some default (or is
//!   required, then as `{}`);
//! - arrays: a missing array becomes its `default` or `[]` (rjsf adds empty arrays), the
//!   items of a given array get their item schema's defaults, and an array shorter than
//!   `minItems` is filled with item defaults (not for multi-selects);
//! - on the page itself: local `$ref`s, `allOf` (merged), `if`/`then`/`else` (decided on
//!   the values as they are, defaults included) and `dependencies` (property lists and
//!   schemas, `oneOf` branches chosen by the dependent property's value);
//! - below the page: `$ref`, `dependencies`, and `oneOf`/`anyOf` (the first option the
//!   value fits, else the first).
//!
//! Deliberately absent, as in rjsf: `allOf` and `if`/`then`/`else` nested below the page
//! contribute no defaults (rjsf's `allOf: 'skipDefaults'`), keys of an object `default`
//! that its `properties` do not name are dropped unless `additionalProperties` allows
//! them, and conflicting keywords of merged schemas are resolved last-wins rather than
//! by json-schema-merge-allof's rules. Also absent: an array item filler whose schema has
//! no default (rjsf would add `undefined`, which the browser sends as `null`).

use serde_json::{Map, Value as Json};

use crate::compiled_schemas::{Checking, compiled};

/// How many times a page's defaults are recomputed while they still change the values (a
/// default can switch an `if` or a dependency, which brings new defaults).
const MAX_PASSES: usize = 8;

/// How deep `$ref`s and nested schemas are followed.
const MAX_DEPTH: usize = 64;

/// The values with every parameter page's defaults applied, page after page, as the
/// frontend's stepper submits them: keys the caller gave keep their place and value, keys
/// that only have a default follow.
pub fn apply_defaults(pages: &[Json], values: &Json) -> Json {
    let mut values = match values {
        Json::Object(map) => map.clone(),
        Json::Null => Map::new(),
        other => return other.clone(),
    };
    for page in pages {
        values = page_defaults(page, values);
    }
    Json::Object(values)
}

fn page_defaults(page: &Json, mut values: Map<String, Json>) -> Map<String, Json> {
    for _ in 0..MAX_PASSES {
        let data = Json::Object(values.clone());
        let schema = retrieve(page, page, &data, 0);
        let defaults = compute(&schema, page, None, Some(&data), 0);
        let Some(Json::Object(merged)) = merge_with_data(defaults, Some(data)) else {
            return values;
        };
        // `{ ...current, ...pageState }`: given keys stay where they were.
        let mut next = values.clone();
        for (key, value) in merged {
            next.insert(key, value);
        }
        if next == values {
            break;
        }
        values = next;
    }
    values
}

/// rjsf's `retrieveSchema` for a page: `$ref`, `if`/`then`/`else`, `allOf` and
/// `dependencies` resolved against the values.
fn retrieve(schema: &Json, root: &Json, data: &Json, depth: usize) -> Json {
    let Json::Object(map) = schema else {
        return schema.clone();
    };
    if depth > MAX_DEPTH {
        return schema.clone();
    }
    let mut map = map.clone();
    if let Some(resolved) = resolve_ref(&mut map, root) {
        return retrieve(&resolved, root, data, depth + 1);
    }
    if let Some(condition) = map.remove("if") {
        let then = map.remove("then");
        let otherwise = map.remove("else");
        let branch = if is_valid(&condition, data, root) {
            then
        } else {
            otherwise
        };
        let base = Json::Object(map);
        return match branch {
            Some(branch) => {
                let merged = merge_schemas(&base, &retrieve(&branch, root, data, depth + 1));
                retrieve(&merged, root, data, depth + 1)
            }
            None => retrieve(&base, root, data, depth + 1),
        };
    }
    if let Some(Json::Array(all)) = map.remove("allOf") {
        let mut merged = Json::Object(map);
        for sub in &all {
            merged = merge_schemas(&merged, &retrieve(sub, root, data, depth + 1));
        }
        return retrieve(&merged, root, data, depth + 1);
    }
    if map.contains_key("dependencies") {
        return retrieve(
            &resolve_dependencies(map, root, data, depth),
            root,
            data,
            depth + 1,
        );
    }
    Json::Object(map)
}

/// rjsf's `computeDefaults`: the defaults of one (sub)schema, `None` for "undefined".
fn compute(
    schema: &Json,
    root: &Json,
    parent_default: Option<Json>,
    data: Option<&Json>,
    depth: usize,
) -> Option<Json> {
    let Json::Object(map) = schema else {
        return parent_default;
    };
    if depth > MAX_DEPTH {
        return parent_default;
    }
    let mut defaults = parent_default;
    let mut next: Option<Json> = None;
    if let Some(constant) = map.get("const") {
        defaults = Some(constant.clone());
    } else if let (Some(Json::Object(parent)), Some(Json::Object(own))) =
        (&defaults, map.get("default"))
    {
        let mut merged = parent.clone();
        for (key, value) in own {
            merged.insert(key.clone(), value.clone());
        }
        defaults = Some(Json::Object(merged));
    } else if let Some(own) = map.get("default") {
        defaults = Some(own.clone());
    } else if map.contains_key("$ref") {
        let mut map = map.clone();
        next = resolve_ref(&mut map, root);
    } else if map.contains_key("dependencies") {
        // The dependencies are decided on the values with this object's defaults.
        let mut with_defaults = match object_defaults(map, root, defaults.as_ref(), data, depth) {
            Json::Object(own) => own,
            _ => Map::new(),
        };
        if let Some(Json::Object(given)) = data {
            for (key, value) in given {
                with_defaults.insert(key.clone(), value.clone());
            }
        }
        next = Some(resolve_dependencies(
            map.clone(),
            root,
            &Json::Object(with_defaults),
            depth,
        ));
    } else if let Some((key, Json::Array(options))) = ["oneOf", "anyOf"]
        .iter()
        .find_map(|key| map.get(*key).map(|options| (*key, options)))
    {
        if options.is_empty() {
            return None;
        }
        let mut remaining = map.clone();
        remaining.remove(key);
        let probe = data.or(map.get("default"));
        let chosen = probe
            .filter(|value| !is_empty(value))
            .and_then(|value| {
                options.iter().find(|option| {
                    is_valid(
                        &merge_schemas(&Json::Object(remaining.clone()), option),
                        value,
                        root,
                    )
                })
            })
            .unwrap_or(&options[0]);
        next = Some(merge_schemas(&Json::Object(remaining), chosen));
    }
    if let Some(next) = next {
        return compute(&next, root, defaults, data, depth + 1);
    }
    match schema_type(map) {
        Some("object") => Some(object_defaults(map, root, defaults.as_ref(), data, depth)),
        Some("array") => Some(array_defaults(map, root, defaults, data, depth)),
        _ => defaults,
    }
}

/// rjsf's `getObjectDefaults`: each property's defaults, added as `maybeAddDefaultToObject`
/// decides.
fn object_defaults(
    schema: &Map<String, Json>,
    root: &Json,
    defaults: Option<&Json>,
    data: Option<&Json>,
    depth: usize,
) -> Json {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Json::as_array)
        .map(|r| r.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let data = data.and_then(Json::as_object);
    let mut out = Map::new();
    let properties = schema.get("properties").and_then(Json::as_object);
    for (key, property) in properties.into_iter().flatten() {
        let computed = compute(
            property,
            root,
            defaults.and_then(|d| d.get(key)).cloned(),
            data.and_then(|d| d.get(key)),
            depth + 1,
        );
        let is_const = property.get("const").is_some();
        add_default(
            &mut out,
            key,
            computed,
            required.contains(&key.as_str()) || is_const,
        );
    }
    let additional = schema.get("additionalProperties");
    if additional.is_some_and(|a| a != &Json::Bool(false)) {
        let item_schema = additional
            .filter(|a| a.is_object())
            .cloned()
            .unwrap_or_else(|| Json::Object(Map::new()));
        let named = |key: &String| properties.is_some_and(|p| p.contains_key(key));
        let mut keys: Vec<(String, bool)> = Vec::new();
        if let Some(Json::Object(defaults)) = defaults {
            keys.extend(
                defaults
                    .keys()
                    .filter(|k| !named(k))
                    .map(|k| (k.clone(), false)),
            );
        }
        for key in data
            .into_iter()
            .flat_map(|d| d.keys())
            .filter(|k| !named(k))
        {
            if !keys.iter().any(|(k, _)| k == key) {
                keys.push((key.clone(), true));
            }
        }
        for (key, given) in keys {
            let computed = compute(
                &item_schema,
                root,
                defaults.and_then(|d| d.get(&key)).cloned(),
                data.and_then(|d| d.get(&key)),
                depth + 1,
            );
            add_default(&mut out, &key, computed, given);
        }
    }
    Json::Object(out)
}

/// rjsf's `maybeAddDefaultToObject` under `emptyObjectFields: 'populateAllDefaults'`: an
/// object default only when it holds something (or `keep`: the key is required, a
/// `const`, or given), anything else when it is defined.
fn add_default(out: &mut Map<String, Json>, key: &str, computed: Option<Json>, keep: bool) {
    match computed {
        Some(Json::Object(object)) if object.is_empty() && !keep => {}
        Some(value) => {
            out.insert(key.to_owned(), value);
        }
        None => {}
    }
}

/// rjsf's `getArrayDefaults`: the array's own default with item defaults inside, the
/// given items' defaults, and fillers up to `minItems`; `[]` when there is nothing.
fn array_defaults(
    schema: &Map<String, Json>,
    root: &Json,
    defaults: Option<Json>,
    data: Option<&Json>,
    depth: usize,
) -> Json {
    let item_schema = |index: usize| -> Json {
        match schema.get("items") {
            Some(Json::Array(fixed)) => fixed
                .get(index)
                .or_else(|| schema.get("additionalItems").filter(|a| a.is_object()))
                .cloned()
                .unwrap_or(Json::Null),
            Some(items) => items.clone(),
            None => Json::Null,
        }
    };
    let mut defaults: Option<Vec<Json>> = match defaults {
        Some(Json::Array(items)) => Some(
            items
                .into_iter()
                .enumerate()
                .map(|(index, item)| {
                    compute(&item_schema(index), root, Some(item), None, depth + 1)
                        .unwrap_or(Json::Null)
                })
                .collect(),
        ),
        _ => None,
    };
    if let Some(Json::Array(given)) = data {
        let item_defaults: Vec<Json> = given
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let parent = defaults.as_ref().and_then(|d| d.get(index)).cloned();
                // "undefined" items are kept as `null`: a falsy default merges as none.
                compute(&item_schema(index), root, parent, Some(item), depth + 1)
                    .unwrap_or(Json::Null)
            })
            .collect();
        let merged = merge_with_data(defaults.map(Json::Array), Some(Json::Array(item_defaults)));
        defaults = match merged {
            Some(Json::Array(items)) => Some(items),
            _ => None,
        };
    }
    let mut entries = defaults.unwrap_or_default();
    let min_items = schema
        .get("minItems")
        .and_then(Json::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    if min_items > entries.len() && !is_multi_select(schema) {
        let filler_schema = item_schema(entries.len());
        let own = filler_schema.get("default").cloned();
        if let Some(filler) = compute(&filler_schema, root, own, None, depth + 1) {
            entries.resize(min_items, filler);
        }
    }
    Json::Array(entries)
}

/// A multi-select: unique items chosen from an `enum` (or `oneOf` of `const`s).
fn is_multi_select(schema: &Map<String, Json>) -> bool {
    let unique = schema.get("uniqueItems") == Some(&Json::Bool(true));
    let items = schema.get("items");
    let choices = items.is_some_and(|items| {
        items.get("enum").is_some()
            || items
                .get("oneOf")
                .and_then(Json::as_array)
                .is_some_and(|o| o.iter().all(|option| option.get("const").is_some()))
    });
    unique && choices
}

/// rjsf's `mergeDefaultsWithFormData`: the data wins; arrays keep the data's length, each
/// item merged with a truthy default at its index; objects start from the defaults.
fn merge_with_data(defaults: Option<Json>, data: Option<Json>) -> Option<Json> {
    match data {
        None => defaults,
        Some(Json::Array(items)) => {
            let defaults = match defaults {
                Some(Json::Array(d)) => d,
                _ => Vec::new(),
            };
            Some(Json::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(index, item)| match defaults.get(index) {
                        Some(default) if truthy(default) => {
                            merge_with_data(Some(default.clone()), Some(item)).unwrap_or(Json::Null)
                        }
                        _ => item,
                    })
                    .collect(),
            ))
        }
        Some(Json::Object(given)) => {
            let defaults = match defaults {
                Some(Json::Object(d)) => d,
                _ => Map::new(),
            };
            let mut out = defaults.clone();
            for (key, value) in given {
                let default = defaults.get(&key).cloned();
                let merged = merge_with_data(default, Some(value)).unwrap_or(Json::Null);
                out.insert(key, merged);
            }
            Some(Json::Object(out))
        }
        Some(other) => Some(other),
    }
}

/// The `$ref` of a schema (a local JSON pointer into the page) resolved, with the
/// schema's other keywords on top; `None` when there is no `$ref` or it does not resolve.
fn resolve_ref(map: &mut Map<String, Json>, root: &Json) -> Option<Json> {
    let reference = map.get("$ref")?.as_str()?.to_owned();
    let pointer = reference.strip_prefix('#')?;
    let target = root.pointer(pointer)?;
    map.remove("$ref");
    let mut resolved = target.as_object()?.clone();
    for (key, value) in map.iter() {
        resolved.insert(key.clone(), value.clone());
    }
    Some(Json::Object(resolved))
}

/// rjsf's `resolveDependencies`: for each dependency whose property has a value, a list
/// adds to `required`, a schema is merged in, and of its `oneOf` the one branch whose
/// property schema fits the value.
fn resolve_dependencies(
    mut map: Map<String, Json>,
    root: &Json,
    data: &Json,
    depth: usize,
) -> Json {
    let Some(Json::Object(dependencies)) = map.remove("dependencies") else {
        return Json::Object(map);
    };
    let mut schema = Json::Object(map);
    for (key, dependency) in dependencies {
        let Some(value) = data.get(&key) else {
            continue;
        };
        let properties = schema.get("properties").and_then(Json::as_object);
        if properties.is_some_and(|p| !p.contains_key(&key)) {
            continue;
        }
        match dependency {
            Json::Array(names) => {
                schema = merge_schemas(&schema, &serde_json::json!({ "required": names }));
            }
            dependency @ Json::Object(_) => {
                let mut dependent = match retrieve(&dependency, root, data, depth + 1) {
                    Json::Object(d) => d,
                    _ => continue,
                };
                let one_of = dependent.remove("oneOf");
                schema = merge_schemas(&schema, &Json::Object(dependent));
                let Some(Json::Array(branches)) = one_of else {
                    continue;
                };
                let fitting: Vec<&Json> = branches
                    .iter()
                    .filter(|branch| {
                        branch
                            .get("properties")
                            .and_then(|p| p.get(&key))
                            .is_some_and(|condition| {
                                let probe = serde_json::json!({
                                    "type": "object",
                                    "properties": { key.clone(): condition }
                                });
                                is_valid(&probe, &serde_json::json!({ key.clone(): value }), root)
                            })
                    })
                    .collect();
                // rjsf uses a branch only when exactly one fits.
                if let [branch] = fitting.as_slice() {
                    let mut branch = (*branch).clone();
                    if let Some(Json::Object(p)) = branch.get_mut("properties") {
                        p.remove(&key);
                    }
                    schema = merge_schemas(&schema, &retrieve(&branch, root, data, depth + 1));
                }
            }
            _ => {}
        }
    }
    schema
}

/// rjsf's `mergeSchemas`: objects merged deeply, `required` lists united, anything else
/// from the right.
fn merge_schemas(left: &Json, right: &Json) -> Json {
    let (Json::Object(l), Json::Object(r)) = (left, right) else {
        return right.clone();
    };
    let mut out = l.clone();
    for (key, value) in r {
        let merged = match (l.get(key), value) {
            (Some(existing @ Json::Object(_)), Json::Object(_)) => merge_schemas(existing, value),
            (Some(Json::Array(existing)), Json::Array(more)) if key == "required" => {
                let mut all = existing.clone();
                all.extend(more.iter().filter(|n| !existing.contains(n)).cloned());
                Json::Array(all)
            }
            _ => value.clone(),
        };
        out.insert(key.clone(), merged);
    }
    Json::Object(out)
}

/// rjsf's `getSchemaType`: `type` (the non-null one of a pair), else guessed.
fn schema_type(map: &Map<String, Json>) -> Option<&str> {
    match map.get("type") {
        Some(Json::String(t)) => Some(t),
        Some(Json::Array(types)) => {
            let names: Vec<&str> = types.iter().filter_map(Json::as_str).collect();
            match names.as_slice() {
                [a, "null"] | ["null", a] => Some(a),
                [first, ..] => Some(first),
                [] => None,
            }
        }
        _ if map.contains_key("properties") || map.contains_key("additionalProperties") => {
            Some("object")
        }
        _ => None,
    }
}

/// Whether `value` fits `schema` (draft 7, as the frontend's validator), with the page's
/// `definitions` available to `$ref`s.
fn is_valid(schema: &Json, value: &Json, root: &Json) -> bool {
    let mut schema = schema.clone();
    if let (Json::Object(map), Some(definitions)) = (&mut schema, root.get("definitions")) {
        map.entry("definitions")
            .or_insert_with(|| definitions.clone());
    }
    compiled(&schema, Checking::WithoutFormats).is_ok_and(|validator| validator.is_valid(value))
}

/// JavaScript truthiness.
fn truthy(value: &Json) -> bool {
    match value {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Json::String(s) => !s.is_empty(),
        Json::Array(_) | Json::Object(_) => true,
    }
}

/// lodash's `isEmpty` as rjsf uses it to ignore empty form data.
fn is_empty(value: &Json) -> bool {
    match value {
        Json::Null => true,
        Json::Array(a) => a.is_empty(),
        Json::Object(o) => o.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
