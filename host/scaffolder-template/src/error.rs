//! Errors of reading a template, pointing at the place.

use std::fmt;

use crate::yaml::Position;

/// A template that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    /// The file, when the template came from one.
    pub file: Option<String>,
    /// Line and column in that file, when known.
    pub position: Option<Position>,
    /// JSON path of the offending node, e.g. `spec.steps[2].action`.
    pub path: Option<String>,
    /// What is wrong, and what to do.
    pub message: String,
}

impl TemplateError {
    pub(crate) fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: None,
            position: None,
            path: Some(path.into()),
            message: message.into(),
        }
    }

    pub(crate) fn message(message: impl Into<String>) -> Self {
        Self {
            file: None,
            position: None,
            path: None,
            message: message.into(),
        }
    }

    /// Names the file the template came from.
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, &self.position) {
            (Some(file), Some(p)) => write!(f, "{file}:{}:{}: ", p.line, p.column)?,
            (Some(file), None) => write!(f, "{file}: ")?,
            (None, Some(p)) => write!(f, "line {}, column {}: ", p.line, p.column)?,
            (None, None) => {}
        }
        match &self.path {
            Some(path) if !path.is_empty() => write!(f, "{path}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}
