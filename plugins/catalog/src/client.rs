//! The few calls of Backstage's `CatalogClient` the catalog actions make, over
//! `wasi:http` to the catalog of the configured Backstage instance, with the user's
//! Backstage token (the initiator's credentials).

use scaffolder_plugin_sdk::{ActionError, Context, Result, Value, http, json};

use crate::entity_ref::EntityName;

/// The configuration key naming the Backstage instance; its catalog is `{base}/api/catalog`.
pub const BACKSTAGE_BASE_URL: &str = "backstage.baseUrl";
/// The secret holding the Backstage token of the user who started the task.
pub const TOKEN_SECRET: &str = "backstageToken";

pub struct CatalogClient {
    base: String,
    token: Option<String>,
}

impl CatalogClient {
    /// The client for the configured catalog; a clear error when none is configured.
    pub fn new(ctx: &Context) -> Result<Self> {
        let base = ctx.config(BACKSTAGE_BASE_URL).ok_or_else(|| {
            ActionError::failed(
                "no Backstage catalog is configured: set backstage.baseUrl in the scaffolder's configuration",
            )
        })?;
        Ok(Self {
            base: format!("{}/api/catalog", base.trim_end_matches('/')),
            token: ctx.secret(TOKEN_SECRET),
        })
    }

    /// `getEntityByRef`: the entity, or none when the catalog has no such entity.
    pub fn entity_by_ref(&self, name: &EntityName) -> Result<Option<Value>> {
        let url = format!(
            "{}/entities/by-name/{}/{}/{}",
            self.base,
            encode_component(&name.kind.to_lowercase()),
            encode_component(&name.namespace.to_lowercase()),
            encode_component(&name.name.to_lowercase()),
        );
        let response = self.send("GET", &url, None)?;
        if response.status == 404 {
            return Ok(None);
        }
        Self::json(&response, 200).map(Some)
    }

    /// `getEntitiesByRefs`: one item per reference, `null` where there is no entity.
    pub fn entities_by_refs(&self, refs: &[String]) -> Result<Vec<Value>> {
        let url = format!("{}/entities/by-refs", self.base);
        let body = json!({ "entityRefs": refs });
        let response = self.send("POST", &url, Some(&body))?;
        let mut body = Self::json(&response, 200)?;
        match body.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => Ok(items),
            _ => Err(ActionError::failed(format!(
                "the catalog answered POST {url} without an items list"
            ))),
        }
    }

    /// `addLocation({ type: 'url', target, dryRun })`: the catalog's answer,
    /// `{ location, entities, exists }`.
    pub fn add_location(&self, target: &str, dry_run: bool) -> Result<Value> {
        let url = if dry_run {
            format!("{}/locations?dryRun=true", self.base)
        } else {
            format!("{}/locations", self.base)
        };
        let body = json!({ "type": "url", "target": target });
        let response = self.send("POST", &url, Some(&body))?;
        let answer = Self::json(&response, 201)?;
        if answer.get("location").is_none_or(Value::is_null) {
            return Err(ActionError::failed(format!(
                "Location wasn't added: {target}"
            )));
        }
        Ok(answer)
    }

    fn send(&self, method: &str, url: &str, body: Option<&Value>) -> Result<http::Response> {
        let authorization = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers = vec![("accept", "application/json")];
        if let Some(value) = &authorization {
            headers.push(("authorization", value));
        }
        let body = body.map(Value::to_string);
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        http::request(method, url, &headers, body.as_deref().map(str::as_bytes))
    }

    /// The body as JSON when the status is `expected`, else Backstage's `ResponseError`
    /// message (`Request failed with 409 ConflictError`) with the catalog's reason.
    fn json(response: &http::Response, expected: u16) -> Result<Value> {
        if response.status != expected {
            return Err(response_error(response));
        }
        serde_json::from_slice(&response.body).map_err(|err| {
            ActionError::failed(format!("the catalog answered with invalid JSON: {err}"))
        })
    }
}

fn response_error(response: &http::Response) -> ActionError {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let name = body["error"]["name"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| status_text(response.status).to_owned());
    let status = response.status;
    let mut message = format!("Request failed with {status} {name}");
    if let Some(reason) = body["error"]["message"].as_str() {
        message.push_str(": ");
        message.push_str(reason);
    }
    if status == 401 {
        message.push_str(
            " (the catalog needs the Backstage token of the user who started the task, as the secret backstageToken)",
        );
    }
    ActionError::failed(message)
}

fn status_text(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// JavaScript's `encodeURIComponent`.
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_encode_uri_component() {
        assert_eq!(encode_component("a b/c:d"), "a%20b%2Fc%3Ad");
        assert_eq!(encode_component("ü"), "%C3%BC");
        assert_eq!(encode_component("x-y_z.(1)"), "x-y_z.(1)");
    }

    #[test]
    fn errors_read_like_backstages_response_error() {
        let response = http::Response {
            status: 409,
            headers: Vec::new(),
            body:
                br#"{"error":{"name":"ConflictError","message":"Location url:x already exists"}}"#
                    .to_vec(),
        };
        assert_eq!(
            response_error(&response).to_string(),
            "Request failed with 409 ConflictError: Location url:x already exists"
        );
        let bare = http::Response {
            status: 502,
            headers: Vec::new(),
            body: b"bad gateway".to_vec(),
        };
        assert_eq!(
            response_error(&bare).to_string(),
            "Request failed with 502 Bad Gateway"
        );
    }
}
