//! A minimal client of GitHub's REST API: JSON in, JSON out, GitHub's error messages
//! passed on with a hint at the usual cause.

use scaffolder_plugin_sdk::{ActionError, Result, Value, http};

pub struct GithubApi {
    base: String,
    authorization: String,
}

impl GithubApi {
    pub fn new(base: &str, token: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            authorization: format!("Bearer {token}"),
        }
    }

    /// Sends `method path` with `body` as JSON; returns the response's JSON (`null` when
    /// empty). A status of 300 or more is an error naming the call and GitHub's message.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let payload = body.map(|b| b.to_string());
        let mut headers = vec![
            ("accept", "application/vnd.github+json"),
            ("x-github-api-version", "2022-11-28"),
            ("user-agent", "scaffolder-publish"),
            ("authorization", self.authorization.as_str()),
        ];
        if payload.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let response = http::request(
            method,
            &url,
            &headers,
            payload.as_deref().map(str::as_bytes),
        )?;
        let json: Value = if response.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&response.body).unwrap_or(Value::Null)
        };
        if response.status < 300 {
            return Ok(json);
        }
        let message = json["message"].as_str().unwrap_or("no message");
        let details: Vec<&str> = json["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["message"].as_str())
            .collect();
        let hint = match response.status {
            401 => ": the token is not valid for this GitHub host",
            403 | 404 => {
                ": check that the token may do this (its scopes, or the organization's approval)"
            }
            _ => "",
        };
        let details = if details.is_empty() {
            String::new()
        } else {
            format!(" ({})", details.join("; "))
        };
        Err(ActionError::failed(format!(
            "GitHub refused {method} {path} with {}: {message}{details}{hint}",
            response.status
        )))
    }
}
