//! Reading the files: each one parsed, environment-substituted and its relative paths
//! resolved against its own directory, then merged in order (later files win, mappings merge
//! key by key, `null` unsets a key).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use scaffolder_plugins::PluginSource;
use scaffolder_template::yaml::parse_documents;
use serde_json::{Map, Value};

use crate::Config;
use crate::env::substitute_env;
use crate::parse::{kind_of, parse};

/// [`load`] with the environment given as a function, so tests need not touch the
/// process environment.
pub(crate) fn load_with_env(
    files: &[PathBuf],
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Config> {
    let mut merged = Value::Object(Map::new());
    let mut sources = Vec::new();
    for file in files {
        let value = read_file(file, env)?;
        merge(&mut merged, value.clone());
        sources.push((file.display().to_string(), value));
    }
    parse(merged).map_err(|err| anyhow!(err.describe(&sources)))
}

/// One file: parsed, substituted, with our relative paths resolved against its directory.
pub(crate) fn read_file(
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Value> {
    let name = file.display();
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read configuration file {name}"))?;
    let mut documents = parse_documents(&text).map_err(|err| {
        anyhow!(
            "{name}:{}:{}: {}",
            err.position.line,
            err.position.column,
            err.message
        )
    })?;
    let value = match documents.len() {
        0 => Value::Null,
        1 => documents.remove(0).value,
        n => bail!("{name}: holds {n} YAML documents; a configuration file holds one"),
    };
    let mut value = match value {
        Value::Null => Value::Object(Map::new()),
        Value::Object(map) => Value::Object(map),
        other => bail!(
            "{name}: expected a mapping of keys at the top level, found {}",
            kind_of(&other)
        ),
    };
    substitute_env(&mut value, &mut Vec::new(), env)
        .map_err(|err| anyhow!("{name}: {}", err.describe(&[])))?;
    resolve_relative_paths(&mut value, file.parent().unwrap_or(Path::new("")));
    Ok(value)
}

/// Makes `scaffolder.plugins[].source` (except built-ins) and `scaffolder.templates[]`
/// relative to `dir`.
pub(crate) fn resolve_relative_paths(value: &mut Value, dir: &Path) {
    let Some(scaffolder) = value.get_mut("scaffolder") else {
        return;
    };
    let resolve = |path: &mut String| *path = dir.join(&*path).to_string_lossy().into_owned();
    if let Some(Value::Array(plugins)) = scaffolder.get_mut("plugins") {
        for plugin in plugins {
            if let Some(Value::String(source)) = plugin.get_mut("source")
                && PluginSource::parse(source).file().is_some()
            {
                resolve(source);
            }
        }
    }
    let resolve_key = |key: &mut Value| {
        if let Value::String(key) = key
            && !key.trim_start().starts_with("-----BEGIN")
        {
            *key = dir.join(&*key).to_string_lossy().into_owned();
        }
    };
    if let Some(Value::Array(plugins)) = scaffolder.get_mut("plugins") {
        for plugin in plugins {
            if let Some(Value::Array(keys)) = plugin.get_mut("signedBy") {
                keys.iter_mut().for_each(resolve_key);
            }
        }
    }
    if let Some(Value::Array(keys)) = scaffolder
        .get_mut("pluginSignatures")
        .and_then(|s| s.get_mut("keys"))
    {
        keys.iter_mut().for_each(resolve_key);
    }
    if let Some(Value::Array(templates)) = scaffolder.get_mut("templates") {
        for template in templates {
            if let Value::String(path) = template {
                resolve(path);
            }
        }
    }
}

/// Backstage's merge: mappings merge key by key, anything else is replaced.
pub(crate) fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// A `null` (or empty) value means "not set".
pub(crate) fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}
