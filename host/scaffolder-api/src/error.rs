//! Errors as Backstage's error middleware writes them: the standard body
//! `{ error: { name, message }, request: { method, url }, response: { statusCode } }`,
//! or `{ errors: [...] }` for parameter validation.
//!
//! Handlers return [`ApiError`]; it becomes a response carrying the error as an
//! extension, and [`standard_error_body`] (a middleware that knows the request) writes
//! the body.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use scaffolder_engine::Failure;
use scaffolder_store::StoreError;
use scaffolder_template::ParameterError;
use serde_json::{Value as Json, json};

/// An error a route answers with.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// The standard body.
    Standard {
        status: StatusCode,
        name: String,
        message: String,
        cause: Option<Json>,
    },
    /// `400 { errors }` from parameter or secret validation.
    Validation(Vec<ParameterError>),
}

impl ApiError {
    fn standard(status: StatusCode, name: &str, message: impl Into<String>) -> Self {
        Self::Standard {
            status,
            name: name.to_owned(),
            message: message.into(),
            cause: None,
        }
    }

    pub fn input(message: impl Into<String>) -> Self {
        Self::standard(StatusCode::BAD_REQUEST, "InputError", message)
    }

    /// body-parser's refusal of a charset, as Backstage's error middleware answers it.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::standard(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaTypeError",
            message,
        )
    }

    pub fn authentication(message: impl Into<String>) -> Self {
        Self::standard(StatusCode::UNAUTHORIZED, "AuthenticationError", message)
    }

    pub fn not_allowed(message: impl Into<String>) -> Self {
        Self::standard(StatusCode::FORBIDDEN, "NotAllowedError", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::standard(StatusCode::NOT_FOUND, "NotFoundError", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::standard(StatusCode::CONFLICT, "ConflictError", message)
    }

    /// A JavaScript `TypeError` Backstage lets through as a 500 (the catalog's schema
    /// validator throws one for an invalid entity).
    pub fn type_error(message: impl Into<String>) -> Self {
        Self::standard(StatusCode::INTERNAL_SERVER_ERROR, "TypeError", message)
    }

    /// `503`: a limit is reached for now; the message says when to retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::standard(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableError",
            message,
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::standard(StatusCode::INTERNAL_SERVER_ERROR, "Error", message)
    }

    /// The same error with a `cause` that says more than Backstage's fixed message.
    pub fn with_cause(mut self, name: &str, message: impl Into<String>) -> Self {
        if let Self::Standard { cause, .. } = &mut self {
            *cause = Some(json!({ "name": name, "message": message.into() }));
        }
        self
    }

    /// `No task with id '<id>' found`.
    pub fn no_task(task_id: &str) -> Self {
        Self::not_found(format!("No task with id '{task_id}' found"))
    }
}

/// The message of a 500 for a store error, whose own text (the database's, with table
/// and column names, or the data it could not read) stays in the log.
pub const STORE_FAILURE_MESSAGE: &str =
    "The scaffolder could not complete the request; its log has the cause";

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { task_id } => Self::no_task(&task_id),
            StoreError::Conflict { message } => Self::conflict(message),
            other => {
                // Logged in the handler's context, so under its request's span.
                tracing::error!(error = %other, transient = other.is_transient(), "store error");
                Self::internal(STORE_FAILURE_MESSAGE)
            }
        }
    }
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        let status = StatusCode::from_u16(failure.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::standard(status, &failure.name, failure.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Validation(errors) => (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "errors": errors })),
            )
                .into_response(),
            Self::Standard { status, .. } => {
                let mut response = status.into_response();
                response.extensions_mut().insert(self);
                response
            }
        }
    }
}

/// Writes the standard body of an [`ApiError`] with the request's method and URL.
pub async fn standard_error_body(request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let url = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut response = next.run(request).await;
    let Some(ApiError::Standard {
        status,
        name,
        message,
        cause,
    }) = response.extensions_mut().remove::<ApiError>()
    else {
        return response;
    };
    let mut error = json!({ "name": name, "message": message });
    if let Some(cause) = cause {
        error["cause"] = cause;
    }
    let body = json!({
        "error": error,
        "request": { "method": method, "url": url },
        "response": { "statusCode": status.as_u16() },
    });
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}
