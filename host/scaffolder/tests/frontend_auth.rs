//! A Backstage frontend talking to `scaffolder serve`: it always sends a bearer token (its
//! signed-in user's, or the guest's), here a real one, issued by the guest sign-in of the
//! Backstage backend in `tests/backstage/`.
//!
//! Without any authentication configured (development mode, loopback only) the token cannot
//! be verified: the request is served as one without a token, one warning says how to verify
//! tokens, and the user the token names is recorded as `createdBy` (unverified; see
//! `Principal::created_by`). With `backstage.baseUrl` the token is verified against that
//! Backstage's keys, and a refused token is logged with the reason.

mod common;

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Server, client, get_as, post_as, serve_fixtures};
use scaffolder_test_artifacts::backstage::Backstage;
use serde_json::{Value as Json, json};

/// The static token of the Backstage fixture (a service principal there).
const BACKSTAGE_TOKEN: &str = "backstage-test-token";

/// The first words of the warning a development-mode server logs at the first request
/// with a token.
const UNVERIFIED_WARNING: &str = "a request carries a bearer token";

#[test]
fn a_frontend_user_token_is_served_without_configuration() {
    let backstage = Backstage::start(None, BACKSTAGE_TOKEN);
    let (token, user_ref) = guest_token(&backstage.base);
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &[]);

    // A token nothing can verify is served as a request without a token.
    let (status, body) = get_as(&server.base, "/v2/actions", Some(&token));
    assert_eq!(status, 200, "{body}");
    let (status, body) = get_as(&server.base, "/v2/actions", Some("an-opaque-token"));
    assert_eq!(status, 200, "{body}");

    // The user the Backstage token names is recorded as the task's creator.
    assert_creates_tasks_as(&server.base, &token, &user_ref);
    // A task created with an opaque token has no creator.
    let other = create_task(&server.base, "an-opaque-token");
    let (_, task) = get_as(&server.base, &format!("/v2/tasks/{other}"), None);
    assert_eq!(task.get("createdBy"), None, "{task}");

    // One warning, at the first such request, saying how to verify tokens.
    let output = server.output();
    assert_eq!(
        output.matches(UNVERIFIED_WARNING).count(),
        1,
        "one warning for every request with a token: {output}"
    );
    let warning = output
        .lines()
        .find(|line| line.contains(UNVERIFIED_WARNING))
        .unwrap();
    assert!(
        warning.contains("WARN") && warning.contains("backstage.baseUrl"),
        "{warning}"
    );
    assert!(!output.contains(&token), "the token is never logged");
}

/// With `backstage.baseUrl`, the token is verified against the keys of that Backstage (as
/// before); a forged one is refused, and now the refusal is logged with its reason.
#[test]
fn backstage_base_url_verifies_a_real_user_token_and_logs_a_refusal() {
    let backstage = Backstage::start(None, BACKSTAGE_TOKEN);
    let (token, user_ref) = guest_token(&backstage.base);
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("app-config.yaml");
    std::fs::write(
        &config,
        format!(
            "backstage:\n  baseUrl: {}\n  catalog:\n    token: {BACKSTAGE_TOKEN}\n",
            backstage.base
        ),
    )
    .unwrap();
    let server = start(data.path(), &["--config", config.to_str().unwrap()]);

    let (status, body) = get_as(&server.base, "/v2/actions", None);
    assert_eq!(status, 401, "{body}");
    assert_creates_tasks_as(&server.base, &token, &user_ref);

    // The guest's token claiming to be somebody else: its signature no longer verifies.
    let forged = with_subject(&token, "user:default/admin");
    let (status, body) = get_as(&server.base, "/v2/actions", Some(&forged));
    assert_eq!(status, 401, "{body}");
    let reason = body["error"]["message"].as_str().unwrap().to_owned();
    assert!(reason.contains("signature does not verify"), "{reason}");

    let output = server.output();
    let logged = output
        .lines()
        .find(|line| line.contains(&reason))
        .unwrap_or_else(|| panic!("the refusal is not logged: {output}"));
    assert!(
        logged.contains("WARN") && logged.contains("/v2/actions"),
        "{logged}"
    );
    assert!(!output.contains(&forged), "the token is never logged");
    // Verified: no development-mode warning.
    assert!(!output.contains(UNVERIFIED_WARNING), "{output}");
}

fn start(data_dir: &Path, extra: &[&str]) -> Server {
    serve_fixtures(data_dir, extra, &[("NO_COLOR", "1")])
}

/// A Backstage token of the guest, as the frontend's guest sign-in gets it:
/// `(token, user entity ref)`.
fn guest_token(backstage: &str) -> (String, String) {
    let response = client()
        .get(format!(
            "{backstage}/api/auth/guest/refresh?env=development"
        ))
        .header("X-Requested-With", "XMLHttpRequest")
        .send()
        .unwrap();
    let status = response.status();
    let body: Json = response.json().unwrap_or(Json::Null);
    assert!(status.is_success(), "guest sign-in: {status} {body}");
    let identity = &body["backstageIdentity"];
    let token = identity["token"].as_str().unwrap().to_owned();
    let user_ref = identity["identity"]["userEntityRef"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(user_ref.starts_with("user:"), "{body}");
    (token, user_ref)
}

/// `POST /v2/tasks` of the `conformance` template with `token`; the new task's id.
fn create_task(base: &str, token: &str) -> String {
    let (status, body) = post_as(
        base,
        "/v2/tasks",
        json!({ "templateRef": "template:default/conformance", "values": { "name": "svc" } }),
        Some(token),
    );
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// A task created with `token` has `user_ref` as `createdBy` and `spec.user.ref`, and is
/// the one task of the frontend's "Owned" list (`GET /v2/tasks?createdBy=<user_ref>`).
fn assert_creates_tasks_as(base: &str, token: &str, user_ref: &str) {
    let id = create_task(base, token);
    let (_, task) = get_as(base, &format!("/v2/tasks/{id}"), Some(token));
    assert_eq!(task["createdBy"], user_ref, "{task}");
    assert_eq!(task["spec"]["user"]["ref"], user_ref, "{task}");
    assert_eq!(owned_by(base, user_ref, token), 1);
    assert_eq!(owned_by(base, "user:default/somebody-else", token), 0);
}

/// `totalTasks` of `GET /v2/tasks?createdBy=<user_ref>`.
fn owned_by(base: &str, user_ref: &str, token: &str) -> u64 {
    let (status, body) = get_as(
        base,
        &format!("/v2/tasks?createdBy={user_ref}"),
        Some(token),
    );
    assert_eq!(status, 200, "{body}");
    body["totalTasks"].as_u64().unwrap()
}

/// `token` with its `sub` claim replaced, keeping the header and the signature.
fn with_subject(token: &str, subject: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Json =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = json!(subject);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    format!("{}.{payload}.{}", parts[0], parts[2])
}
