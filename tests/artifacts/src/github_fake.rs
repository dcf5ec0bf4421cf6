//! A fake of GitHub's REST API on loopback, the one fake this project allows (GitHub
//! cannot run here). It answers the calls `publish:github` makes with the request and
//! response shapes GitHub documents (docs.github.com/rest, API version 2022-11-28),
//! including its error bodies, and keeps what was asked so tests can check it.
//!
//! Git itself is not faked: a created repository is a real bare repository on a
//! [`GitServer`], whose clone URL the API returns, so pushes are real pushes.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_box::SecretKey;
use serde_json::{Value as Json, json};

use crate::git_server::GitServer;
use crate::http1::{self, Request, response};

/// The key id GitHub returns with a repository's public key.
pub const KEY_ID: &str = "568250167242549743";

/// A running fake; the repositories' git side lives on `git`.
pub struct GithubFake {
    /// `http://127.0.0.1:<port>`, where the web pages (`html_url`) would be.
    pub origin: String,
    /// The REST API's base URL, `<origin>/api/v3` as on GitHub Enterprise (what
    /// `integrations.github[].apiBaseUrl` names).
    pub api_base: String,
    pub git: GitServer,
    state: Arc<Mutex<State>>,
    secret_key: SecretKey,
}

/// What the fake knows and was told.
#[derive(Default)]
struct State {
    /// Account login → `User` or `Organization`.
    accounts: BTreeMap<String, &'static str>,
    /// `owner/repo` → the repository as GitHub returns it.
    repos: BTreeMap<String, Json>,
    topics: BTreeMap<String, Vec<String>>,
    variables: BTreeMap<String, BTreeMap<String, String>>,
    /// `owner/repo` → secret name → encrypted value (base64).
    secrets: BTreeMap<String, BTreeMap<String, String>>,
    /// `owner/repo:branch` → the protection request body.
    protections: BTreeMap<String, Json>,
}

struct Api {
    base: String,
    token: String,
    user: String,
    git: GitHandle,
    state: Arc<Mutex<State>>,
    public_key: String,
}

/// What the API needs of the git server: creating repositories and reading branches.
struct GitHandle {
    base: String,
    root: std::path::PathBuf,
}

impl GithubFake {
    /// Starts the fake. `token` is the only credential it accepts (for the API, and as
    /// the password of git pushes); it belongs to the user `user`. `organizations` exist
    /// besides.
    pub fn start(token: &str, user: &str, organizations: &[&str]) -> Self {
        let git = GitServer::start(Some(token));
        let secret_key = SecretKey::from([7u8; 32]);
        let public_key = BASE64.encode(secret_key.public_key().as_bytes());
        let mut state = State::default();
        state.accounts.insert(user.to_owned(), "User");
        for organization in organizations {
            state
                .accounts
                .insert((*organization).to_owned(), "Organization");
        }
        let state = Arc::new(Mutex::new(state));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let api = Api {
            base: base.clone(),
            token: token.to_owned(),
            user: user.to_owned(),
            git: GitHandle {
                base: git.base.clone(),
                root: git.root().to_owned(),
            },
            state: state.clone(),
            public_key,
        };
        http1::serve(listener, Arc::new(move |request| api.respond(request)));
        Self {
            api_base: format!("{base}/api/v3"),
            origin: base,
            git,
            state,
            secret_key,
        }
    }

    /// The repository `owner/repo` as the API returns it, if it was created.
    pub fn repo(&self, full_name: &str) -> Option<Json> {
        self.state.lock().unwrap().repos.get(full_name).cloned()
    }

    pub fn topics(&self, full_name: &str) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state.topics.get(full_name).cloned().unwrap_or_default()
    }

    pub fn variables(&self, full_name: &str) -> BTreeMap<String, String> {
        let state = self.state.lock().unwrap();
        state.variables.get(full_name).cloned().unwrap_or_default()
    }

    /// An Actions secret, decrypted with the repository's private key as GitHub would.
    pub fn secret(&self, full_name: &str, name: &str) -> Option<String> {
        let encrypted = {
            let state = self.state.lock().unwrap();
            state.secrets.get(full_name)?.get(name)?.clone()
        };
        let sealed = BASE64.decode(encrypted).ok()?;
        let plain = self.secret_key.unseal(&sealed).ok()?;
        String::from_utf8(plain).ok()
    }

    /// The branch protection requested for `owner/repo`'s `branch`.
    pub fn protection(&self, full_name: &str, branch: &str) -> Option<Json> {
        let state = self.state.lock().unwrap();
        state
            .protections
            .get(&format!("{full_name}:{branch}"))
            .cloned()
    }
}

impl Api {
    fn respond(&self, request: &Request) -> Vec<u8> {
        // GitHub rejects requests without a User-Agent before anything else.
        if request.header("user-agent").is_none() {
            return error(
                "403 Forbidden",
                "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.",
            );
        }
        let authorization = request.header("authorization").unwrap_or("");
        let presented = authorization
            .strip_prefix("Bearer ")
            .or_else(|| authorization.strip_prefix("token "));
        if presented != Some(self.token.as_str()) {
            return json_response(
                "401 Unauthorized",
                &json!({ "message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401" }),
            );
        }
        let body: Json = serde_json::from_slice(&request.body).unwrap_or(Json::Null);
        let Some(path) = request.path.strip_prefix("/api/v3/") else {
            return not_found();
        };
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (request.method.as_str(), segments.as_slice()) {
            ("GET", ["user"]) => json_response(
                "200 OK",
                &json!({ "login": self.user, "id": 1, "type": "User" }),
            ),
            ("GET", ["users", login]) => {
                let state = self.state.lock().unwrap();
                match state.accounts.get_key_value(*login) {
                    Some((login, kind)) => {
                        json_response("200 OK", &json!({ "login": login, "id": 2, "type": kind }))
                    }
                    None => not_found(),
                }
            }
            ("POST", ["orgs", org, "repos"]) => {
                let is_org = self.state.lock().unwrap().accounts.get(*org) == Some(&"Organization");
                if !is_org {
                    return not_found();
                }
                self.create_repo(org, "Organization", &body)
            }
            ("POST", ["user", "repos"]) => self.create_repo(&self.user, "User", &body),
            (method, ["repos", owner, repo, rest @ ..]) => {
                let full_name = format!("{owner}/{repo}");
                if !self.state.lock().unwrap().repos.contains_key(&full_name) {
                    return not_found();
                }
                self.repo_call(method, &full_name, rest, &body)
            }
            _ => not_found(),
        }
    }

    /// `POST /orgs/{org}/repos` and `POST /user/repos`.
    fn create_repo(&self, owner: &str, owner_type: &str, body: &Json) -> Vec<u8> {
        let Some(name) = body["name"].as_str() else {
            return validation_failed("name", "missing_field", "name is missing");
        };
        let full_name = format!("{owner}/{name}");
        let mut state = self.state.lock().unwrap();
        if state.repos.contains_key(&full_name) {
            return validation_failed("name", "custom", "name already exists on this account");
        }
        self.git.create(&full_name);
        let private = body["private"].as_bool().unwrap_or(false);
        let visibility =
            body["visibility"]
                .as_str()
                .unwrap_or(if private { "private" } else { "public" });
        let repo = json!({
            "id": state.repos.len() + 1000,
            "name": name,
            "full_name": full_name,
            "owner": { "login": owner, "type": owner_type },
            "private": private,
            "visibility": visibility,
            "description": body["description"],
            "homepage": body["homepage"],
            "html_url": format!("{}/{full_name}", self.base),
            "url": format!("{}/api/v3/repos/{full_name}", self.base),
            "clone_url": format!("{}/{full_name}.git", self.git.base),
            "default_branch": "main",
            "has_issues": body["has_issues"].as_bool().unwrap_or(true),
            "has_projects": body["has_projects"].as_bool().unwrap_or(true),
            "has_wiki": body["has_wiki"].as_bool().unwrap_or(true),
            "allow_merge_commit": body["allow_merge_commit"].as_bool().unwrap_or(true),
            "allow_squash_merge": body["allow_squash_merge"].as_bool().unwrap_or(true),
            "allow_rebase_merge": body["allow_rebase_merge"].as_bool().unwrap_or(true),
            "allow_auto_merge": body["allow_auto_merge"].as_bool().unwrap_or(false),
            "delete_branch_on_merge": body["delete_branch_on_merge"].as_bool().unwrap_or(false),
        });
        state.repos.insert(full_name, repo.clone());
        json_response("201 Created", &repo)
    }

    fn repo_call(&self, method: &str, full_name: &str, rest: &[&str], body: &Json) -> Vec<u8> {
        let mut state = self.state.lock().unwrap();
        match (method, rest) {
            ("PUT", ["topics"]) => {
                let Some(names) = body["names"].as_array() else {
                    return validation_failed("names", "missing_field", "names is missing");
                };
                let names: Vec<String> = names
                    .iter()
                    .filter_map(|n| n.as_str())
                    .map(str::to_owned)
                    .collect();
                if let Some(bad) = names
                    .iter()
                    .find(|n| n.chars().any(|c| c.is_ascii_uppercase() || c == ' '))
                {
                    return validation_failed(
                        "names",
                        "invalid",
                        &format!("{bad} is not a valid topic"),
                    );
                }
                state.topics.insert(full_name.to_owned(), names.clone());
                json_response("200 OK", &json!({ "names": names }))
            }
            ("POST", ["actions", "variables"]) => {
                let (Some(name), Some(value)) = (body["name"].as_str(), body["value"].as_str())
                else {
                    return validation_failed(
                        "name",
                        "missing_field",
                        "name and value are required",
                    );
                };
                state
                    .variables
                    .entry(full_name.to_owned())
                    .or_default()
                    .insert(name.to_owned(), value.to_owned());
                json_response("201 Created", &json!({}))
            }
            ("GET", ["actions", "secrets", "public-key"]) => json_response(
                "200 OK",
                &json!({ "key_id": KEY_ID, "key": self.public_key }),
            ),
            ("PUT", ["actions", "secrets", name]) => {
                if body["key_id"] != KEY_ID {
                    return validation_failed(
                        "key_id",
                        "invalid",
                        "key_id does not match the repository's key",
                    );
                }
                let Some(encrypted) = body["encrypted_value"].as_str() else {
                    return validation_failed(
                        "encrypted_value",
                        "missing_field",
                        "encrypted_value is missing",
                    );
                };
                state
                    .secrets
                    .entry(full_name.to_owned())
                    .or_default()
                    .insert((*name).to_owned(), encrypted.to_owned());
                response("201 Created", &[], b"")
            }
            ("PUT", ["branches", branch, "protection"]) => {
                if !self.git.has_branch(full_name, branch) {
                    return json_response(
                        "404 Not Found",
                        &json!({ "message": "Branch not found", "documentation_url": "https://docs.github.com/rest/branches/branch-protection#update-branch-protection", "status": "404" }),
                    );
                }
                state
                    .protections
                    .insert(format!("{full_name}:{branch}"), body.clone());
                json_response(
                    "200 OK",
                    &json!({ "url": format!("{}/api/v3/repos/{full_name}/branches/{branch}/protection", self.base) }),
                )
            }
            _ => not_found(),
        }
    }
}

impl GitHandle {
    fn create(&self, full_name: &str) {
        crate::git_server::init_bare_repo(&self.root, full_name);
    }

    fn has_branch(&self, full_name: &str, branch: &str) -> bool {
        std::process::Command::new("git")
            .args([
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("refs/heads/{branch}"),
            ])
            .current_dir(self.root.join(format!("{full_name}.git")))
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

fn json_response(status: &str, body: &Json) -> Vec<u8> {
    response(
        status,
        &[("content-type", "application/json; charset=utf-8")],
        body.to_string().as_bytes(),
    )
}

fn error(status: &str, message: &str) -> Vec<u8> {
    json_response(status, &json!({ "message": message }))
}

fn not_found() -> Vec<u8> {
    json_response(
        "404 Not Found",
        &json!({ "message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404" }),
    )
}

/// GitHub's 422 body.
fn validation_failed(field: &str, code: &str, message: &str) -> Vec<u8> {
    json_response(
        "422 Unprocessable Entity",
        &json!({
            "message": "Repository creation failed.",
            "errors": [{ "resource": "Repository", "code": code, "field": field, "message": message }],
            "documentation_url": "https://docs.github.com/rest/repos/repos#create-an-organization-repository",
            "status": "422"
        }),
    )
}
