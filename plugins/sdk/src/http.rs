//! A small blocking HTTP client over `wasi:http/outgoing-handler`.
//!
//! Requests leave the component only to origins the action requested and the operator
//! granted; anything else fails with an error naming the origin.

use crate::ActionError;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use wasip2::io::streams::StreamError;

/// A complete response: status, headers and the whole body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header with this name (case-insensitive), as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, ActionError> {
        std::str::from_utf8(&self.body)
            .map_err(|_| ActionError::failed("the response body is not UTF-8 text"))
    }
}

/// Sends `GET url`.
pub fn get(url: &str) -> Result<Response, ActionError> {
    request("GET", url, &[], None)
}

/// Sends a request and reads the whole response.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response, ActionError> {
    let target = Target::parse(url)?;
    let fields = Fields::from_list(
        &headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect::<Vec<_>>(),
    )
    .map_err(|err| ActionError::invalid_input(format!("invalid request header: {err:?}")))?;
    let request = OutgoingRequest::new(fields);
    let method = match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_owned()),
    };
    let invalid = |what: &str| ActionError::invalid_input(format!("invalid {what} in {url}"));
    request
        .set_method(&method)
        .map_err(|()| invalid("method"))?;
    request
        .set_scheme(Some(&target.scheme))
        .map_err(|()| invalid("scheme"))?;
    request
        .set_authority(Some(&target.authority))
        .map_err(|()| invalid("host"))?;
    request
        .set_path_with_query(Some(&target.path_and_query))
        .map_err(|()| invalid("path"))?;

    let outgoing_body = request
        .body()
        .map_err(|()| ActionError::failed("request body already taken"))?;
    let pending = outgoing_handler::handle(request, None).map_err(|err| http_error(url, err))?;
    if let Some(body) = body {
        let stream = outgoing_body
            .write()
            .map_err(|()| ActionError::failed("request body stream already taken"))?;
        for chunk in body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|err| stream_error(url, err))?;
        }
        drop(stream);
    }
    OutgoingBody::finish(outgoing_body, None).map_err(|err| http_error(url, err))?;

    pending.subscribe().block();
    let response = pending
        .get()
        .expect("the response is ready after its pollable fired")
        .map_err(|()| ActionError::failed("the response was already taken"))?
        .map_err(|err| http_error(url, err))?;

    let status = response.status();
    let headers = response.headers().entries();
    let incoming = response
        .consume()
        .map_err(|()| ActionError::failed("response body already taken"))?;
    let body = read_body(url, &incoming)?;
    drop(IncomingBody::finish(incoming));
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn read_body(url: &str, incoming: &IncomingBody) -> Result<Vec<u8>, ActionError> {
    let stream = incoming
        .stream()
        .map_err(|()| ActionError::failed("response body stream already taken"))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(err) => return Err(stream_error(url, err)),
        }
    }
    Ok(body)
}

fn http_error(url: &str, err: ErrorCode) -> ActionError {
    match err {
        ErrorCode::HttpRequestDenied => ActionError::Denied(format!(
            "request to {url} denied: its origin is not granted to this action"
        )),
        other => ActionError::failed(format!("request to {url} failed: {other:?}")),
    }
}

fn stream_error(url: &str, err: StreamError) -> ActionError {
    match err {
        StreamError::LastOperationFailed(e) => {
            ActionError::failed(format!("request to {url} failed: {}", e.to_debug_string()))
        }
        StreamError::Closed => ActionError::failed(format!("request to {url}: stream closed")),
    }
}

struct Target {
    scheme: Scheme,
    authority: String,
    path_and_query: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, ActionError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| ActionError::invalid_input(format!("'{url}' is not an absolute URL")))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(ActionError::invalid_input(format!(
                    "unsupported URL scheme '{other}' in {url}: use http or https"
                )));
            }
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return Err(ActionError::invalid_input(format!("'{url}' has no host")));
        }
        let path_and_query = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Ok(Self {
            scheme,
            authority: authority.to_owned(),
            path_and_query,
        })
    }
}
