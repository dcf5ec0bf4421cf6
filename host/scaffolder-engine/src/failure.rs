//! How a step or a task fails, named the way Backstage names its errors.

use serde::Serialize;
use serde_json::{Value as Json, json};

/// A failure with a JavaScript-style error name (`InputError`, `NotFoundError`, ...), as
/// Backstage puts it in the failed step's event and the completion's `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{name}: {message}")]
pub struct Failure {
    pub name: String,
    pub message: String,
}

impl Failure {
    pub fn new(name: &str, message: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            message: message.into(),
        }
    }

    /// Bad input: a 400 in a dry run.
    pub fn input(message: impl Into<String>) -> Self {
        Self::new("InputError", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("NotFoundError", message)
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self::new("Error", message)
    }

    /// The HTTP status Backstage's error middleware gives this error.
    pub fn http_status(&self) -> u16 {
        match self.name.as_str() {
            "InputError" => 400,
            "AuthenticationError" => 401,
            "NotAllowedError" => 403,
            "NotFoundError" => 404,
            "ConflictError" => 409,
            _ => 500,
        }
    }

    /// `{ name, message }`, the completion event's `error`.
    pub fn to_json(&self) -> Json {
        json!({ "name": self.name, "message": self.message })
    }
}

impl From<scaffolder_runtime::StepFailure> for Failure {
    fn from(failure: scaffolder_runtime::StepFailure) -> Self {
        use scaffolder_runtime::StepFailureKind as Kind;
        let name = match failure.kind {
            Kind::InvalidInput => "InputError",
            Kind::Denied => "NotAllowedError",
            _ => "Error",
        };
        Self::new(name, failure.message)
    }
}
