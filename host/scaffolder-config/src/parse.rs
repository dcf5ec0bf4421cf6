//! The merged value into a typed [`Config`](crate::Config), with errors that name the key
//! path (and [`KeyError::describe`] the file that set it).

use scaffolder_template::yaml::{child_index, child_key};
use serde_json::{Map, Value};

use crate::Config;
use crate::database::check_database;
use crate::integrations::check_integrations;
use crate::load::drop_nulls;
use crate::scaffolder::{check_task_recovery, check_workspace_store};

/// Deserializes the merged value and checks what spans several keys.
pub(crate) fn parse(mut value: Value) -> Result<Config, KeyError> {
    drop_nulls(&mut value);
    if value.is_null() {
        value = Value::Object(Map::new());
    }
    let mut config: Config =
        serde_path_to_error::deserialize(value).map_err(KeyError::from_serde)?;
    check_database(&config.backend.database)?;
    check_integrations(&mut config.integrations)?;
    check_task_recovery(&config.scaffolder.task_recovery)?;
    check_workspace_store(&config.scaffolder.workspace_store)?;
    Ok(config)
}

/// An error at one key; [`KeyError::describe`] adds the file that set it.
#[derive(Debug)]
pub(crate) struct KeyError {
    pub(crate) path: Vec<Segment>,
    pub(crate) message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

pub(crate) fn key_path(keys: &[&str]) -> Vec<Segment> {
    keys.iter().map(|k| Segment::Key((*k).to_owned())).collect()
}

impl KeyError {
    fn from_serde(err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        use serde_path_to_error::Segment as S;
        let path = err
            .path()
            .iter()
            .map_while(|segment| match segment {
                S::Seq { index } => Some(Segment::Index(*index)),
                S::Map { key } | S::Enum { variant: key } => Some(Segment::Key(key.clone())),
                S::Unknown => None,
            })
            .collect();
        Self {
            path,
            message: err.into_inner().to_string(),
        }
    }

    /// `file: key.path: message`, naming the last of `sources` that holds the key (or its
    /// closest ancestor), since that is the file to fix.
    pub(crate) fn describe(&self, sources: &[(String, Value)]) -> String {
        let path = self
            .path
            .iter()
            .fold(String::new(), |parent, segment| match segment {
                Segment::Key(key) => child_key(&parent, key),
                Segment::Index(index) => child_index(&parent, *index),
            });
        let file = (0..=self.path.len()).rev().find_map(|len| {
            sources
                .iter()
                .rev()
                .find(|(_, value)| lookup(value, &self.path[..len]).is_some())
                .map(|(name, _)| name)
        });
        let mut out = String::new();
        if let Some(file) = file {
            out.push_str(file);
            out.push_str(": ");
        }
        if !path.is_empty() {
            out.push_str(&path);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }
}

pub(crate) fn lookup<'a>(value: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    path.iter().try_fold(value, |value, segment| match segment {
        Segment::Key(key) => value.as_object()?.get(key),
        Segment::Index(index) => value.as_array()?.get(*index),
    })
}

pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
