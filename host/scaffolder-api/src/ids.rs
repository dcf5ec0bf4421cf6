//! Task ids from the URL, checked before they reach SQL.
//!
//! Express decodes a route parameter with `decodeURIComponent` and answers
//! `400 URIError "Failed to decode param '<raw>'"` when it cannot; [`TaskIdParam`] does the
//! same. Backstage creates task ids with `crypto.randomUUID()` and looks any other id up
//! in vain: `404 "No task with id '<id>' found"` on SQLite, a database error on
//! PostgreSQL, whose `uuid` column refuses it. [`could_be_task_id`] lets the routes
//! answer that 404 on both databases without asking either (an id with a NUL byte, for
//! one, is an error on PostgreSQL even in a `text` column).

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use crate::error::ApiError;

/// The `taskId` path parameter, percent-decoded as Express decodes it.
#[derive(Debug, Clone)]
pub struct TaskIdParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for TaskIdParam {
    type Rejection = ApiError;

    /// Reads the segment after `/v2/tasks/` as sent: axum's own extractors decode it
    /// first and answer bytes that are not UTF-8 with a plain-text 400.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let raw = parts
            .uri
            .path()
            .split_once("/v2/tasks/")
            .and_then(|(_, rest)| rest.split('/').next())
            .ok_or_else(|| ApiError::internal("a task route without a task id"))?;
        decode_param(raw).map(TaskIdParam)
    }
}

/// `decodeURIComponent`, with Express's error when it throws.
pub fn decode_param(raw: &str) -> Result<String, ApiError> {
    let failed = || ApiError::Standard {
        status: StatusCode::BAD_REQUEST,
        name: "URIError".to_owned(),
        message: format!("Failed to decode param '{raw}'"),
        cause: None,
    };
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(failed)?;
            let hex = std::str::from_utf8(hex).map_err(|_| failed())?;
            decoded.push(u8::from_str_radix(hex, 16).map_err(|_| failed())?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| failed())
}

/// Whether a task could have this id: a UUID, as every task id is. Anything else is
/// answered as an unknown task without a query.
pub fn could_be_task_id(id: &str) -> bool {
    uuid::Uuid::try_parse(id).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(err: ApiError) -> String {
        match err {
            ApiError::Standard { name, message, .. } => format!("{name}: {message}"),
            ApiError::Validation(_) => unreachable!(),
        }
    }

    #[test]
    fn params_are_decoded_as_decode_uri_component_does() {
        assert_eq!(decode_param("abc").unwrap(), "abc");
        assert_eq!(decode_param("a%00b").unwrap(), "a\0b");
        assert_eq!(decode_param("%C3%A9+x").unwrap(), "é+x");
        assert_eq!(decode_param("%2F").unwrap(), "/");
        for raw in [
            "%FF",
            "%C3",
            "%E0%80%80",
            "%ED%A0%80",
            "%",
            "%4",
            "%G1",
            "a%zz",
        ] {
            assert_eq!(
                message(decode_param(raw).unwrap_err()),
                format!("URIError: Failed to decode param '{raw}'"),
                "{raw}"
            );
        }
    }

    #[test]
    fn only_uuids_could_be_task_ids() {
        assert!(could_be_task_id("4f1c2a3e-8b7d-4c6a-9e5f-0a1b2c3d4e5f"));
        for id in [
            "",
            "\0",
            "4f1c2a3e-8b7d-4c6a-9e5f-0a1b2c3d4e5f\0",
            "not-a-uuid",
            "dry-run-4f1c2a3e-8b7d-4c6a-9e5f-0a1b2c3d4e5f",
            &"a".repeat(1 << 20),
        ] {
            assert!(!could_be_task_id(id), "{:?}", &id[..id.len().min(40)]);
        }
    }
}
