//! Request bodies as Backstage 4.2.0 reads them, in bounded memory.
//!
//! - A route whose OpenAPI spec has a request body refuses any other content type than
//!   `application/json` (utf-8) with `400 unsupported media type <type>` before the body is
//!   read, as Backstage's spec validator does; so a cross-site `text/plain` POST (no CORS
//!   preflight) never reaches a handler.
//! - A body over [`BODY_LIMIT`] is `400 request entity too large`, body-parser's
//!   `PayloadTooLargeError` as Backstage rethrows it, on every route.
//! - At most [`LARGE_BODIES_AT_ONCE`] bodies over [`LARGE_BODY`] are read and handled at a
//!   time; the others wait (up to [`LARGE_BODY_WAIT`], then `503`) before their bytes are
//!   read, so a burst of large bodies costs a bounded amount of memory.
//! - [`check_json_size`] refuses bodies with more than [`MAX_JSON_VALUES`] values before
//!   they are parsed: a parsed value costs far more than its text (32 bytes per array
//!   element, more per object entry).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use tokio_stream::StreamExt;

use crate::BODY_LIMIT;
use crate::error::ApiError;

/// A body at least this large (or of unknown length) takes a large-body permit.
pub(crate) const LARGE_BODY: u64 = 1024 * 1024;

/// How many large bodies are read and handled at once.
pub(crate) const LARGE_BODIES_AT_ONCE: usize = 4;

/// How long a large body waits for a permit before the request is refused with `503`.
pub(crate) const LARGE_BODY_WAIT: Duration = Duration::from_secs(30);

/// The most JSON values (array elements, object entries and containers) a body may hold.
pub(crate) const MAX_JSON_VALUES: usize = 200_000;

/// The permits for large bodies, shared by every request of one router.
pub(crate) fn large_bodies() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(LARGE_BODIES_AT_ONCE))
}

/// The middleware: checks the content type of POSTs, then reads the body within
/// [`BODY_LIMIT`], holding a large-body permit until the response is ready.
pub(crate) async fn bounded_body(
    State(large): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let empty = declared == Some(0) || (declared.is_none() && !has_body(request.headers()));
    if takes_json(request.uri().path(), empty)
        && let Err(message) = json_content_type(request.headers())
    {
        return ApiError::input(message).into_response();
    }
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return too_large(request.into_body().into_data_stream()).await;
    }
    let _permit = if declared.is_none_or(|n| n >= LARGE_BODY) && !empty {
        match tokio::time::timeout(LARGE_BODY_WAIT, large.acquire_owned()).await {
            Ok(Ok(permit)) => Some(permit),
            _ => {
                tracing::warn!(
                    "request refused with 503: {LARGE_BODIES_AT_ONCE} large bodies were being handled for {} s",
                    LARGE_BODY_WAIT.as_secs()
                );
                return ApiError::unavailable(format!(
                    "The server is handling {LARGE_BODIES_AT_ONCE} large request bodies; retry in a few seconds"
                ))
                .into_response();
            }
        }
    } else {
        None
    };
    let (parts, body) = request.into_parts();
    let bytes = match read_body(body, declared).await {
        Ok(bytes) => bytes,
        Err(response) => return *response,
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Whether a request without `Content-Length` has a body (a chunked one).
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
}

/// The routes whose Backstage spec has a JSON request body (`retry`'s is optional).
fn takes_json(path: &str, empty: bool) -> bool {
    let path = path.trim_end_matches('/');
    path.ends_with("/v2/tasks")
        || path.ends_with("/v2/dry-run")
        || path.contains("/v2/autocomplete/")
        || (path.ends_with("/retry") && !empty)
}

/// What a request's `Content-Type` says of a JSON body, read the way Backstage's
/// `express.json()` reads it: the media type in any letter case, a charset that must be UTF.
#[derive(Debug, PartialEq)]
pub(crate) enum ContentType {
    Missing,
    /// Another media type, lowercased.
    NotJson(String),
    /// `application/json` with a non-UTF charset, uppercased as Backstage names it.
    UnsupportedCharset(String),
    Json,
}

impl ContentType {
    pub(crate) fn of(headers: &HeaderMap) -> ContentType {
        let Some(value) = headers.get(header::CONTENT_TYPE) else {
            return ContentType::Missing;
        };
        let text = String::from_utf8_lossy(value.as_bytes());
        let mut parts = text.split(';');
        let media_type = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        if media_type != "application/json" {
            return ContentType::NotJson(media_type);
        }
        for parameter in parts {
            if let Some((name, value)) = parameter.split_once('=')
                && name.trim().eq_ignore_ascii_case("charset")
            {
                let charset = value.trim().trim_matches('"').to_ascii_uppercase();
                if !charset.starts_with("UTF-") {
                    return ContentType::UnsupportedCharset(charset);
                }
            }
        }
        ContentType::Json
    }

    /// Backstage's message for a body it will not read as JSON.
    pub(crate) fn unsupported_message(charset: &str) -> String {
        format!("unsupported charset \"{charset}\"")
    }
}

/// `Ok` for `application/json` in any letter case with a utf-8 (or no) charset; otherwise
/// Backstage's message.
fn json_content_type(headers: &HeaderMap) -> Result<(), String> {
    match ContentType::of(headers) {
        ContentType::Json => Ok(()),
        ContentType::Missing => Err("unsupported media type undefined".to_owned()),
        ContentType::NotJson(media_type) => Err(format!("unsupported media type {media_type}")),
        ContentType::UnsupportedCharset(charset) => Err(ContentType::unsupported_message(&charset)),
    }
}

/// How much of an oversize body is read and thrown away before the answer; past it the
/// connection is closed under the client.
const DRAIN_LIMIT: usize = 4 * BODY_LIMIT;

/// Backstage's answer for a body over the limit, given once the rest of the body has been
/// read and discarded (up to [`DRAIN_LIMIT`], within `backend.server.requestTimeout`), as
/// Node drains an unread request: a client still uploading would otherwise find the
/// connection closed under it (a broken pipe) before it could read the answer.
async fn too_large(mut rest: BodyDataStream) -> Response {
    let mut drained = 0;
    while drained < DRAIN_LIMIT {
        match rest.next().await {
            Some(Ok(chunk)) => drained += chunk.len(),
            _ => break,
        }
    }
    ApiError::input("request entity too large").into_response()
}

/// The whole body, at most [`BODY_LIMIT`] bytes, in one allocation of the declared size.
async fn read_body(body: Body, declared: Option<u64>) -> Result<Bytes, Box<Response>> {
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| {
            Box::new(ApiError::input(format!("request aborted: {err}")).into_response())
        })?;
        if bytes.len() + chunk.len() > BODY_LIMIT {
            return Err(Box::new(too_large(stream).await));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(bytes))
}

/// Refuses a JSON text with more than [`MAX_JSON_VALUES`] values, counted without parsing
/// (each `[`, `{` and `,` outside strings starts one), before it is parsed.
pub(crate) fn check_json_size(text: &[u8]) -> Result<(), ApiError> {
    let mut values = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' | b',' => {
                values += 1;
                if values > MAX_JSON_VALUES {
                    return Err(ApiError::input(format!(
                        "request body has more than {MAX_JSON_VALUES} JSON values \
                         (array elements and object entries); send fewer"
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_counted_outside_strings_only() {
        let many = format!("[{}0]", "0,".repeat(MAX_JSON_VALUES));
        assert!(check_json_size(many.as_bytes()).is_err());
        let in_string = format!("[\"{}\"]", ",".repeat(MAX_JSON_VALUES * 2));
        assert!(check_json_size(in_string.as_bytes()).is_ok());
        let escaped_quote = format!("[\"\\\"{}\"]", ",".repeat(MAX_JSON_VALUES * 2));
        assert!(check_json_size(escaped_quote.as_bytes()).is_ok());
    }

    #[test]
    fn content_types_as_backstage_reads_them() {
        let check = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            json_content_type(&headers)
        };
        assert_eq!(check("Application/JSON; charset=UTF-8"), Ok(()));
        assert_eq!(
            check("text/plain"),
            Err("unsupported media type text/plain".to_owned())
        );
        assert_eq!(
            check("application/json; charset=latin1"),
            Err("unsupported charset \"LATIN1\"".to_owned())
        );
        assert_eq!(
            json_content_type(&HeaderMap::new()),
            Err("unsupported media type undefined".to_owned())
        );
    }
}
