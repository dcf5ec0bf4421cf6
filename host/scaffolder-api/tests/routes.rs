//! Every route of the scaffolder API, its success and its error shapes, on SQLite and on
//! PostgreSQL (spec §1).

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{TestServer, fixtures, messages, step_statuses};
use scaffolder_engine::DryRunLimits;
use scaffolder_store::Backend;
use serde_json::{Value as Json, json};

on_both_databases!(
    parameter_schema_returns_the_pages,
    parameter_schema_errors,
    a_template_that_does_not_load_answers_400_naming_the_place,
    a_retry_of_a_template_broken_since_answers_400,
    templates_are_listed_with_their_load_status,
    actions_are_listed_sorted_with_schemas,
    plugins_are_listed_with_their_origins,
    create_answers_201_and_the_task_runs_to_completion,
    create_errors,
    task_events_follow_backstage_order_and_format,
    list_filters_pages_and_orders,
    list_errors,
    get_task_and_its_404,
    eventstream_sends_frames_and_ends_after_completion,
    eventstream_404_is_json_before_headers,
    events_after_returns_later_events_and_always_the_completion,
    cancel_stops_a_running_step_and_the_task_fails,
    cancel_errors,
    retry_resumes_after_completed_steps,
    retry_of_a_running_task_is_a_conflict,
    if_each_always_and_failure,
    secrets_are_redacted_and_dropped_on_completion,
    invalid_action_input_fails_the_step,
    dry_run_returns_log_files_output_and_steps,
    dry_run_errors,
    dry_run_over_a_cap_fails_naming_the_cap,
    autocomplete_has_no_providers,
    templating_extensions_and_openapi,
    unknown_routes_are_404_with_an_empty_body,
    a_backstage_user_token_becomes_created_by,
    the_concurrency_limit_keeps_extra_tasks_open,
);

async fn parameter_schema_returns_the_pages(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = server
        .get("/v2/templates/default/template/conformance/parameter-schema")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["title"], "Conformance");
    assert_eq!(body["description"], "Writes a README and counts its runs.");
    assert_eq!(body["steps"][0]["title"], "Basics");
    assert_eq!(body["steps"][0]["schema"]["required"], json!(["name"]));
    // A single parameters object becomes one page with the default title.
    let (_, slow) = server
        .get("/v2/templates/default/Template/conformance-slow/parameter-schema")
        .await;
    assert_eq!(slow["title"], "conformance-slow");
    assert_eq!(
        slow["steps"][0]["title"],
        "Please enter the following information"
    );
    server.finish().await;
}

async fn parameter_schema_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = server
        .get("/v2/templates/default/component/conformance/parameter-schema")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["name"], "InputError");
    assert_eq!(
        body["error"]["message"],
        "Invalid kind, only 'Template' kind is supported"
    );
    assert_eq!(
        body["request"],
        json!({ "method": "GET", "url": "/v2/templates/default/component/conformance/parameter-schema" })
    );
    assert_eq!(body["response"]["statusCode"], 400);

    let (status, body) = server
        .get("/v2/templates/default/template/missing/parameter-schema")
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["name"], "NotFoundError");
    assert_eq!(
        body["error"]["message"],
        "Template template:default/missing not found"
    );

    let (status, body) = server
        .get("/v2/templates/default/template/conformance/parameter-schema?x=1")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "Unknown query parameter 'x'");

    server.finish().await;
}

/// Issue 20, item 3: a template that exists but does not load (its model check fails,
/// or its YAML breaks after its kind and name) answers 400 with the file, line and
/// column on every route that looks a template up by ref, in the standard error body.
async fn a_template_that_does_not_load_answers_400_naming_the_place(backend: Backend) {
    let server = TestServer::start(backend).await;
    let model = format!(
        "{}:9:9: spec.steps[0].action: required",
        fixtures().join("broken.yaml").display()
    );
    let yaml = format!(
        "{}:11:32: invalid YAML:",
        fixtures().join("broken-yaml.yaml").display()
    );
    let check = |body: &Json, method: &str, url: &str, name: &str, place: &str| {
        assert_eq!(body["error"]["name"], "InputError", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!(
                "Template template:default/{name} cannot be loaded: {place}"
            )),
            "{message}"
        );
        assert_eq!(body["request"], json!({ "method": method, "url": url }));
        assert_eq!(body["response"], json!({ "statusCode": 400 }));
    };
    for (name, place) in [("broken", &model), ("broken-yaml", &yaml)] {
        let url = format!("/v2/templates/default/template/{name}/parameter-schema");
        let (status, body) = server.get(&url).await;
        assert_eq!(status, 400, "{body}");
        check(&body, "GET", &url, name, place);

        let (status, body) = server
            .post(
                "/v2/tasks",
                json!({ "templateRef": format!("template:default/{name}"), "values": {} }),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        check(&body, "POST", "/v2/tasks", name, place);
    }
    server.finish().await;
}

/// Issue 20, item 3: a retry looks its template up again; one broken since the task ran
/// answers the same 400.
async fn a_retry_of_a_template_broken_since_answers_400(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("later.yaml");
    let template = "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  name: later\nspec:\n  type: service\n  steps:\n    - id: read\n      action: friendly:read-file\n      input:\n        path: missing.txt\n";
    std::fs::write(&file, template).unwrap();
    let server = TestServer::start_with(
        backend,
        common::Options {
            templates: dir.path().to_path_buf(),
            ..common::Options::default()
        },
    )
    .await;
    let id = server.scaffold("later", json!({})).await;
    let events = server.events_until_completion(&id).await;
    assert!(
        events.last().unwrap()["body"]["error"].is_object(),
        "{events:#?}"
    );
    std::fs::write(
        &file,
        template.replace("    - id: read\n", "    - id: [read\n"),
    )
    .unwrap();
    let (status, body) = server
        .post(&format!("/v2/tasks/{id}/retry"), json!({}))
        .await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "Template template:default/later cannot be loaded: {}:",
            file.display()
        )),
        "{message}"
    );
    server.finish().await;
}

/// Issue 20, item 3: `GET /v2/templates` (ours) lists every template of the server's
/// directories with its load status; a file that is not a template is not listed.
async fn templates_are_listed_with_their_load_status(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = server.get("/v2/templates").await;
    assert_eq!(status, 200, "{body}");
    let templates = body["templates"].as_array().unwrap();
    let listed = |name: &str| {
        templates
            .iter()
            .find(|t| t["ref"] == format!("template:default/{name}"))
            .unwrap_or_else(|| panic!("{name} is not listed: {body}"))
    };
    let conformance = listed("conformance");
    assert_eq!(conformance["status"], "loaded");
    assert_eq!(conformance["title"], "Conformance");
    assert_eq!(
        conformance["file"],
        fixtures().join("conformance.yaml").display().to_string()
    );
    assert!(conformance.get("error").is_none(), "{conformance}");
    let broken = listed("broken");
    assert_eq!(broken["status"], "error");
    assert_eq!(
        broken["error"],
        json!({
            "message": format!("{}:9:9: spec.steps[0].action: required", fixtures().join("broken.yaml").display()),
            "file": fixtures().join("broken.yaml").display().to_string(),
            "line": 9,
            "column": 9,
            "path": "spec.steps[0].action",
        })
    );
    let broken_yaml = listed("broken-yaml");
    assert_eq!(broken_yaml["status"], "error");
    assert_eq!(broken_yaml["error"]["line"], 11);
    assert!(
        !templates
            .iter()
            .any(|t| t["file"].as_str().unwrap().ends_with("not-a-template.yaml")),
        "{body}"
    );
    let files: Vec<&str> = templates
        .iter()
        .map(|t| t["file"].as_str().unwrap())
        .collect();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted, "listed by file");
    let (status, openapi) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(
        openapi["paths"]["/api/scaffolder/v2/templates"]["get"].is_object(),
        "the listing is documented"
    );
    server.finish().await;
}

async fn plugins_are_listed_with_their_origins(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = server.get("/v2/plugins").await;
    assert_eq!(status, 200, "{body}");
    let plugins = body["plugins"].as_array().unwrap();
    let friendly = plugins
        .iter()
        .find(|p| {
            p["actions"]
                .as_array()
                .unwrap()
                .contains(&json!("friendly:write-file"))
        })
        .unwrap_or_else(|| panic!("{body}"));
    assert!(friendly["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(friendly["witVersion"], "0.1.1");
    assert!(friendly["manifestDigest"].is_null() && friendly["signedBy"].is_null());

    let (status, body) = server.get("/v2/plugins?all=true").await;
    assert_eq!(status, 400, "{body}");
    server.finish().await;
}

async fn actions_are_listed_sorted_with_schemas(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = server.get("/v2/actions").await;
    assert_eq!(status, 200);
    let actions = body.as_array().unwrap();
    let ids: Vec<&str> = actions.iter().map(|a| a["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    let write = actions
        .iter()
        .find(|a| a["id"] == "friendly:write-file")
        .unwrap();
    assert_eq!(write["description"], "Writes a file into the workspace.");
    assert_eq!(
        write["schema"]["input"]["required"],
        json!(["path", "content"])
    );
    let count = actions
        .iter()
        .find(|a| a["id"] == "friendly:count")
        .unwrap();
    assert_eq!(
        count["schema"]["output"]["properties"]["runs"]["type"],
        "integer"
    );
    assert!(write.get("examples").is_none(), "unset fields are omitted");

    let (status, _) = server.get("/v2/actions?verbose=true").await;
    assert_eq!(status, 400);
    server.finish().await;
}

async fn create_answers_201_and_the_task_runs_to_completion(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = server
        .scaffold("template:default/conformance", json!({ "name": "svc" }))
        .await;
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let events = server.events_until_completion(&id).await;
    let completion = events.last().unwrap();
    assert_eq!(completion["type"], "completion");
    assert_eq!(
        completion["body"],
        json!({
            "message": "Run completed with status: completed",
            "output": {
                "links": [{ "title": "Repository", "url": "https://example.com/svc" }],
                "text": [{ "title": "Runs", "content": "runs: 1" }]
            }
        })
    );
    let (_, task) = server.get(&format!("/v2/tasks/{id}")).await;
    assert_eq!(task["status"], "completed");
    // `default/x` and `x` refer to the same template.
    for template_ref in ["default/conformance", "conformance"] {
        let other = server.scaffold(template_ref, json!({ "name": "a" })).await;
        server.events_until_completion(&other).await;
    }
    server.finish().await;
}

async fn create_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = server.post("/v2/tasks", json!({ "values": {} })).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "request/body must have required property 'templateRef'"
    );
    let (status, body) = server
        .post("/v2/tasks", json!({ "templateRef": "conformance" }))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "request/body must have required property 'values'"
    );
    let (status, body) = server.post_raw("/v2/tasks", "{not json").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["name"], "InputError");

    // Parameter validation: `{ errors }`, not the standard body.
    let (status, body) = server
        .post(
            "/v2/tasks",
            json!({ "templateRef": "conformance", "values": {} }),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body.get("error").is_none(), "{body}");
    assert_eq!(body["errors"][0]["name"], "required");
    assert_eq!(body["errors"][0]["argument"], "name");
    assert_eq!(body["errors"][0]["message"], "requires property \"name\"");

    let (status, body) = server
        .post(
            "/v2/tasks",
            json!({ "templateRef": "missing", "values": {} }),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        body["error"]["message"],
        "Template template:default/missing not found"
    );

    // Secrets: validated against spec.secrets.schema, values never echoed.
    let (status, body) = server
        .post(
            "/v2/tasks",
            json!({ "templateRef": "secrets", "values": {}, "secrets": { "other": "x" } }),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["message"], "secrets.token is required");
    assert_eq!(
        body["errors"][0]["stack"],
        "instance requires property \"token\""
    );
    let (status, body) = server
        .post(
            "/v2/tasks",
            json!({ "templateRef": "secrets", "values": {}, "secrets": { "token": 5 } }),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "request/body/secrets/token must be string"
    );

    let (_, list) = server.get("/v2/tasks").await;
    assert_eq!(list["totalTasks"], 0, "no task is half-created: {list}");
    server.finish().await;
}

async fn task_events_follow_backstage_order_and_format(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = server
        .scaffold("conformance", json!({ "name": "svc" }))
        .await;
    let events = server.events_until_completion(&id).await;
    assert_eq!(
        messages(&events),
        vec![
            "Starting up task with 2 steps".to_owned(),
            "Beginning step Write README".to_owned(),
            "\u{1b}[32minfo\u{1b}[39m: wrote README.md".to_owned(),
            "Finished step Write README".to_owned(),
            "Beginning step Count".to_owned(),
            "\u{1b}[32minfo\u{1b}[39m: run 1 of runs.txt".to_owned(),
            "Finished step Count".to_owned(),
        ]
    );
    assert_eq!(
        step_statuses(&events),
        vec![
            ("write".to_owned(), "processing".to_owned()),
            ("write".to_owned(), "completed".to_owned()),
            ("count".to_owned(), "processing".to_owned()),
            ("count".to_owned(), "completed".to_owned()),
        ]
    );
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "monotonic ids: {ids:?}"
    );
    for event in &events {
        assert_eq!(event["taskId"], id.as_str());
        assert_eq!(event["isTaskRecoverable"], false);
        let created = event["createdAt"].as_str().unwrap();
        assert!(created.ends_with('Z') && created.len() == 24, "{created}");
    }
    // The action's log line carries the step id and no status.
    let line = events
        .iter()
        .find(|e| e["body"]["message"].as_str().unwrap().contains("wrote"))
        .unwrap();
    assert_eq!(line["body"]["stepId"], "write");
    assert!(line["body"].get("status").is_none());
    server.finish().await;
}

async fn list_filters_pages_and_orders(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let first = server.scaffold("conformance", json!({ "name": "a" })).await;
    server.events_until_completion(&first).await;
    let second = server.scaffold("conformance", json!({ "name": "b" })).await;
    server.events_until_completion(&second).await;

    let (status, body) = server.get("/v2/tasks").await;
    assert_eq!(status, 200);
    assert_eq!(body["totalTasks"], 2);
    let tasks = body["tasks"].as_array().unwrap();
    assert_eq!(
        tasks[0]["id"],
        second.as_str(),
        "default order is created_at desc"
    );
    for task in tasks {
        assert!(task.get("secrets").is_none() && task.get("state").is_none());
        assert_eq!(
            task["spec"]["templateInfo"]["entityRef"],
            "template:default/conformance"
        );
        assert!(task["lastHeartbeatAt"].is_string());
        assert!(
            task.get("createdBy").is_none(),
            "anonymous callers create no createdBy"
        );
    }
    let (_, body) = server.get("/v2/tasks?order=asc:created_at&limit=1").await;
    assert_eq!(body["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(body["tasks"][0]["id"], first.as_str());
    assert_eq!(body["totalTasks"], 2, "totalTasks ignores limit and offset");
    let (_, body) = server
        .get("/v2/tasks?order=asc:created_at&limit=1&offset=1")
        .await;
    assert_eq!(body["tasks"][0]["id"], second.as_str());
    let (_, body) = server.get("/v2/tasks?status=completed&status=failed").await;
    assert_eq!(body["totalTasks"], 2);
    let (_, body) = server.get("/v2/tasks?status=open").await;
    assert_eq!(body["totalTasks"], 0);
    let (_, body) = server
        .get("/v2/tasks?createdBy=user%3Adefault%2Fnobody")
        .await;
    assert_eq!(body["totalTasks"], 0);
    server.token = None;
    server.finish().await;
}

async fn list_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    for (query, message) in [
        ("limit=abc", "request/query/limit must be integer"),
        ("offset=-1", "request/query/offset must be >= 0"),
        (
            "order=created_at",
            "Invalid order parameter \"created_at\", expected \"<asc or desc>:<field name>\"",
        ),
        ("order=asc:spec", "Invalid order field \"spec\""),
        ("page=2", "Unknown query parameter 'page'"),
    ] {
        let (status, body) = server.get(&format!("/v2/tasks?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["error"]["name"], "InputError", "{query}");
        assert_eq!(body["error"]["message"], message, "{query}");
        assert_eq!(body["request"]["url"], format!("/v2/tasks?{query}"));
    }
    server.finish().await;
}

async fn get_task_and_its_404(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = server
        .scaffold("conformance", json!({ "name": "svc" }))
        .await;
    let (status, task) = server.get(&format!("/v2/tasks/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(task["id"], id.as_str());
    assert_eq!(
        task["spec"]["apiVersion"],
        "scaffolder.backstage.io/v1beta3"
    );
    assert_eq!(task["spec"]["parameters"], json!({ "name": "svc" }));
    assert_eq!(task["spec"]["steps"][0]["id"], "write");
    assert_eq!(task["spec"]["steps"][0]["name"], "Write README");
    assert!(
        task["spec"]["templateInfo"]["baseUrl"]
            .as_str()
            .unwrap()
            .starts_with("file:///")
    );
    assert!(task["createdAt"].is_string());
    server.events_until_completion(&id).await;

    let missing = "00000000-0000-4000-8000-000000000000";
    let (status, body) = server.get(&format!("/v2/tasks/{missing}")).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({
            "error": { "name": "NotFoundError", "message": format!("No task with id '{missing}' found") },
            "request": { "method": "GET", "url": format!("/v2/tasks/{missing}") },
            "response": { "statusCode": 404 }
        })
    );
    server.finish().await;
}

async fn eventstream_sends_frames_and_ends_after_completion(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = server
        .scaffold("conformance", json!({ "name": "svc" }))
        .await;
    let (headers, frames) = server
        .event_stream(&format!("/v2/tasks/{id}/eventstream"))
        .await;
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    let (last_type, last) = frames.last().unwrap();
    assert_eq!(last_type, "completion");
    assert_eq!(
        last["body"]["message"],
        "Run completed with status: completed"
    );
    assert_eq!(
        frames[0].1["body"]["message"],
        "Starting up task with 2 steps"
    );
    for (event_type, data) in &frames {
        assert_eq!(data["type"], event_type.as_str());
    }
    // `after` skips earlier events but always includes the completion.
    let last_log = frames[frames.len() - 2].1["id"].as_i64().unwrap();
    let (_, later) = server
        .event_stream(&format!("/v2/tasks/{id}/eventstream?after={last_log}"))
        .await;
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].0, "completion");
    server.finish().await;
}

async fn eventstream_404_is_json_before_headers(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = server
        .get("/v2/tasks/00000000-0000-4000-8000-000000000000/eventstream")
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["name"], "NotFoundError");
    server.finish().await;
}

async fn events_after_returns_later_events_and_always_the_completion(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = server
        .scaffold("conformance", json!({ "name": "svc" }))
        .await;
    let events = server.events_until_completion(&id).await;
    let completion_id = events.last().unwrap()["id"].as_i64().unwrap();
    let (_, all) = server.get(&format!("/v2/tasks/{id}/events")).await;
    assert_eq!(all.as_array().unwrap().len(), events.len());
    let (_, after) = server
        .get(&format!("/v2/tasks/{id}/events?after={completion_id}"))
        .await;
    assert_eq!(after.as_array().unwrap().len(), 1, "{after}");
    assert_eq!(after[0]["type"], "completion");
    let (status, body) = server.get(&format!("/v2/tasks/{id}/events?after=x")).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "request/query/after must be integer"
    );
    let (status, _) = server
        .get("/v2/tasks/00000000-0000-4000-8000-000000000000/events")
        .await;
    assert_eq!(status, 404);
    server.finish().await;
}

async fn cancel_stops_a_running_step_and_the_task_fails(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = server
        .scaffold("conformance-slow", json!({ "millis": 30000 }))
        .await;
    server
        .wait_for_event(&id, |e| {
            e["body"]["stepId"] == "sleep" && e["body"]["status"] == "processing"
        })
        .await;
    let started = Instant::now();
    let (status, body) = server.post_raw(&format!("/v2/tasks/{id}/cancel"), "").await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "status": "cancelled" }));
    let events = server.events_until_completion(&id).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "cancel took {elapsed:?}");

    let cancelled = events.iter().find(|e| e["type"] == "cancelled").unwrap();
    assert_eq!(
        cancelled["body"],
        json!({ "message": "Step sleep has been cancelled.", "stepId": "sleep", "status": "cancelled" })
    );
    let message = format!("Step sleep (Sleep) of task {id} has been cancelled.");
    let failed = events
        .iter()
        .find(|e| e["body"]["status"] == "failed")
        .unwrap();
    assert_eq!(failed["body"]["stepId"], "sleep");
    assert_eq!(failed["body"]["message"], format!("Error: {message}"));
    assert!(step_statuses(&events).contains(&("after".into(), "skipped".into())));
    let completion = events.last().unwrap();
    assert_eq!(
        completion["body"],
        json!({ "message": "Run completed with status: failed", "error": { "name": "Error", "message": message } })
    );
    let (_, task) = server.get(&format!("/v2/tasks/{id}")).await;
    assert_eq!(task["status"], "failed", "cancel does not set `cancelled`");
    server.finish().await;
}

async fn cancel_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let missing = "00000000-0000-4000-8000-000000000000";
    let (status, body) = server
        .post_raw(&format!("/v2/tasks/{missing}/cancel"), "")
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        body["error"]["message"],
        format!("No task with id '{missing}' found")
    );
    // A finished task still answers 200 and gets a `cancelled` event.
    let id = server.scaffold("conformance", json!({ "name": "a" })).await;
    server.events_until_completion(&id).await;
    let (status, _) = server.post_raw(&format!("/v2/tasks/{id}/cancel"), "").await;
    assert_eq!(status, 200);
    let (_, events) = server.get(&format!("/v2/tasks/{id}/events")).await;
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "cancelled")
    );
    server.finish().await;
}

async fn retry_resumes_after_completed_steps(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = server.scaffold("resume", json!({ "millis": 30000 })).await;
    server
        .wait_for_event(&id, |e| {
            e["body"]["stepId"] == "sleep" && e["body"]["status"] == "processing"
        })
        .await;
    server.post_raw(&format!("/v2/tasks/{id}/cancel"), "").await;
    let first = server.events_until_completion(&id).await;
    let last_id = first.last().unwrap()["id"].as_i64().unwrap();

    // Retry with a short sleep this time is not possible (same parameters); the sleep
    // step runs again in full, but the count step before it is skipped.
    let (status, body) = server
        .post(&format!("/v2/tasks/{id}/retry"), json!({}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(body, json!({ "id": id }));
    server
        .wait_for_event(&id, |e| e["type"] == "recovered")
        .await;
    let (_, events) = server.get(&format!("/v2/tasks/{id}/events")).await;
    let events = events.as_array().unwrap();
    assert!(
        !events.iter().any(|e| e["type"] == "cancelled"
            || (e["type"] == "completion" && e["id"].as_i64() <= Some(last_id))),
        "retry removes the cancelled and completion events"
    );
    let recovered = events.iter().find(|e| e["type"] == "recovered").unwrap();
    assert_eq!(recovered["body"], json!({ "recoverStrategy": "none" }));
    let skipped = server
        .wait_for_event(&id, |e| {
            e["body"]["message"]
                == "Skipping step count because it was already completed in a previous run"
        })
        .await;
    assert_eq!(skipped["body"]["status"], "completed");
    server
        .wait_for_event(&id, |e| {
            e["body"]["message"] == "Task recovered - resuming from last known good state. 1 step(s) already completed."
        })
        .await;
    // Stop the second run too, and check the workspace: count ran once.
    server
        .wait_for_event(&id, |e| {
            e["body"]["stepId"] == "sleep"
                && e["body"]["status"] == "processing"
                && e["id"].as_i64() > Some(last_id)
        })
        .await;
    server.post_raw(&format!("/v2/tasks/{id}/cancel"), "").await;
    server.events_until_completion(&id).await;
    let runs = std::fs::read_to_string(server.workdir.path().join(&id).join("runs.txt")).unwrap();
    assert_eq!(runs, "1");
    server.finish().await;
}

async fn retry_of_a_running_task_is_a_conflict(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = server
        .scaffold("conformance-slow", json!({ "millis": 30000 }))
        .await;
    server
        .wait_for_event(&id, |e| e["body"]["status"] == "processing")
        .await;
    let (status, body) = server
        .post(&format!("/v2/tasks/{id}/retry"), json!({}))
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["name"], "ConflictError");
    assert_eq!(
        body["error"]["message"],
        format!("Task with taskId {id} cannot be retried")
    );
    let (status, _) = server
        .post(
            "/v2/tasks/00000000-0000-4000-8000-000000000000/retry",
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = server
        .post(
            &format!("/v2/tasks/{id}/retry"),
            json!({ "secrets": { "a": 1 } }),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "request/body/secrets/a must be string"
    );
    server.post_raw(&format!("/v2/tasks/{id}/cancel"), "").await;
    server.events_until_completion(&id).await;
    server.finish().await;
}

async fn if_each_always_and_failure(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ok = server
        .scaffold("flow", json!({ "items": ["a", "b"], "fail": false }))
        .await;
    let events = server.events_until_completion(&ok).await;
    let statuses = step_statuses(&events);
    let status_of = |statuses: &[(String, String)], step: &str| -> Vec<String> {
        statuses
            .iter()
            .filter(|(s, _)| s == step)
            .map(|(_, st)| st.clone())
            .collect()
    };
    assert_eq!(
        status_of(&statuses, "only-when-failing"),
        ["processing", "skipped"]
    );
    assert_eq!(status_of(&statuses, "each"), ["processing", "completed"]);
    assert_eq!(
        status_of(&statuses, "maybe-fail"),
        ["processing", "skipped"]
    );
    assert_eq!(status_of(&statuses, "cleanup"), ["processing", "completed"]);
    assert_eq!(
        status_of(&statuses, "on-failure"),
        ["processing", "skipped"]
    );
    let completion = events.last().unwrap();
    assert_eq!(
        completion["body"]["output"],
        json!({ "counts": [1, 1] }),
        "each outputs are arrays"
    );
    assert!(messages(&events).contains(
        &"\u{1b}[32minfo\u{1b}[39m: Running step each: {\"key\":\"0\",\"value\":\"a\"}".to_owned()
    ));

    let failing = server
        .scaffold("flow", json!({ "items": ["a"], "fail": true }))
        .await;
    let events = server.events_until_completion(&failing).await;
    let statuses = step_statuses(&events);
    assert_eq!(status_of(&statuses, "maybe-fail"), ["processing", "failed"]);
    assert_eq!(
        status_of(&statuses, "after-failure"),
        ["skipped"],
        "no Beginning event"
    );
    assert_eq!(status_of(&statuses, "cleanup"), ["processing", "completed"]);
    assert_eq!(
        status_of(&statuses, "on-failure"),
        ["processing", "completed"]
    );
    assert!(
        messages(&events)
            .contains(&"Skipping step after-failure because a previous step failed".to_owned())
    );
    let completion = events.last().unwrap();
    assert_eq!(
        completion["body"]["message"],
        "Run completed with status: failed"
    );
    assert_eq!(completion["body"]["error"]["name"], "Error");
    let (_, task) = server.get(&format!("/v2/tasks/{failing}")).await;
    assert_eq!(task["status"], "failed");
    server.finish().await;
}

async fn secrets_are_redacted_and_dropped_on_completion(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = server
        .scaffold_with_secrets("secrets", json!({}), json!({ "token": "s3cr3t-value" }))
        .await;
    let events = server.events_until_completion(&id).await;
    let all = serde_json::to_string(&events).unwrap();
    assert!(!all.contains("s3cr3t-value"), "{all}");
    assert!(
        !all.contains("generated-password-123"),
        "a secret added by a step is redacted too: {all}"
    );
    assert!(
        messages(&events).contains(&"\u{1b}[32minfo\u{1b}[39m: wrote ***".to_owned()),
        "{:#?}",
        messages(&events)
    );
    assert!(
        messages(&events).contains(&"\u{1b}[32minfo\u{1b}[39m: the new secret is ***".to_owned())
    );
    assert!(
        server.store.secrets(&id).await.unwrap().is_empty(),
        "secrets are dropped on completion"
    );
    let (_, task) = server.get(&format!("/v2/tasks/{id}")).await;
    assert!(!task.to_string().contains("s3cr3t-value"));
    server.finish().await;
}

async fn invalid_action_input_fails_the_step(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = server.scaffold("bad-input", json!({})).await;
    let events = server.events_until_completion(&id).await;
    let completion = events.last().unwrap();
    assert_eq!(completion["body"]["error"]["name"], "InputError");
    let message = completion["body"]["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Invalid input passed to action friendly:write-file, instance "),
        "{message}"
    );
    assert!(
        message.contains("content"),
        "names the missing key: {message}"
    );
    server.finish().await;
}

fn dry_run_template() -> Json {
    json!({
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": { "name": "dry" },
        "spec": {
            "type": "service",
            "parameters": [{ "required": ["name"], "properties": { "name": { "type": "string" } } }],
            "steps": [
                { "id": "write", "action": "friendly:write-file", "input": { "path": "out/${{ parameters.name }}.txt", "content": "hello" } },
                { "id": "read", "action": "friendly:read-template", "input": { "path": "skeleton/README.md" } },
                { "action": "friendly:count", "input": { "file": "runs.txt" } }
            ],
            "output": { "runs": "${{ steps['step-3'].output.runs }}", "readme": "${{ steps.read.output.content }}" }
        }
    })
}

async fn dry_run_returns_log_files_output_and_steps(backend: Backend) {
    let server = TestServer::start(backend).await;
    let request = json!({
        "template": dry_run_template(),
        "values": { "name": "svc" },
        "secrets": {},
        "directoryContents": [
            { "path": "skeleton/README.md", "base64Content": BASE64.encode("# uploaded") }
        ]
    });
    let (status, body) = server.post("/v2/dry-run", request.clone()).await;
    assert_eq!(status, 200, "{body}");
    let log = body["log"].as_array().unwrap();
    assert_eq!(
        log[0],
        json!({ "body": { "message": "Starting up task with 4 steps" } })
    );
    let messages: Vec<&str> = log
        .iter()
        .map(|l| l["body"]["message"].as_str().unwrap())
        .collect();
    assert!(messages.iter().any(|m| m.starts_with("\u{1b}[32minfo\u{1b}[39m: Running friendly:write-file in dry-run mode with inputs (secrets redacted): {\n  \"path\": \"out/svc.txt\"")), "{messages:#?}");
    assert!(messages.contains(&"Skipping because friendly:count does not support dry-run"));
    assert_eq!(
        body["directoryContents"],
        json!([{ "path": "out/svc.txt", "executable": false, "base64Content": BASE64.encode("hello") }])
    );
    assert_eq!(body["output"], json!({ "runs": 0, "readme": "# uploaded" }));
    let steps = body["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "the extract step is not listed");
    assert_eq!(steps[2]["id"], "step-3");
    assert_eq!(steps[2]["name"], "friendly:count");
    let (_, list) = server.get("/v2/tasks").await;
    assert_eq!(list["totalTasks"], 0, "a dry run creates no task");
    // Nothing of the run is left in the working directory once it has answered (its
    // workspace was in memory, or here and removed); the uploaded files are kept for
    // the next dry run of the same files, which reads them from the same directory.
    let left = || {
        std::fs::read_dir(server.workdir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
    };
    let only_uploads_left = || async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let left = left();
            if left.len() == 1 && left[0].starts_with("dry-run-content-") {
                return left[0].clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the dry run left {left:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let uploads = only_uploads_left().await;
    let (status, again) = server.post("/v2/dry-run", request).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["output"], body["output"]);
    assert_eq!(only_uploads_left().await, uploads);
    server.finish().await;
}

async fn dry_run_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = server
        .post(
            "/v2/dry-run",
            json!({ "template": {}, "values": {}, "directoryContents": [] }),
        )
        .await;
    // Backstage's catalog validator throws a TypeError worded from Ajv's first error.
    assert_eq!(status, 500);
    assert_eq!(body["error"]["name"], "TypeError");
    assert_eq!(
        body["error"]["message"],
        "<root> must have required property 'apiVersion' - missingProperty: apiVersion"
    );
    let (status, body) = server
        .post(
            "/v2/dry-run",
            json!({
                "template": { "apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": { "name": "c" } },
                "values": {},
                "directoryContents": []
            }),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "Input template is not a template");

    let (status, body) = server
        .post(
            "/v2/dry-run",
            json!({ "template": dry_run_template(), "values": {} }),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "request/body must have required property 'directoryContents'"
    );

    let (status, body) = server
        .post(
            "/v2/dry-run",
            json!({ "template": dry_run_template(), "values": {}, "directoryContents": [] }),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["argument"], "name");

    let (status, body) = server
        .post(
            "/v2/dry-run",
            json!({ "template": dry_run_template(), "values": { "name": "x" }, "directoryContents": [
                { "path": "../escape.txt", "base64Content": "" }
            ] }),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must be relative"),
        "{body}"
    );

    // A failing step fails the whole dry run with the step's error.
    let mut template = dry_run_template();
    template["spec"]["steps"] = json!([{ "id": "x", "action": "nope:missing" }]);
    let (status, body) = server
        .post(
            "/v2/dry-run",
            json!({ "template": template, "values": { "name": "x" }, "directoryContents": [] }),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["name"], "NotFoundError");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Template action with ID 'nope:missing' is not registered.")
    );
    server.finish().await;
}

/// A dry run whose files exceed `scaffolder.dryRun.maxBytes` fails at the step whose write
/// exceeds it (its workspace may hold no more than the run may return), with the cap, its
/// value and its key in the message.
async fn dry_run_over_a_cap_fails_naming_the_cap(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        common::Options {
            dry_run_limits: DryRunLimits {
                max_bytes: 4,
                ..DryRunLimits::default()
            },
            ..common::Options::default()
        },
    )
    .await;
    let (status, body) = server
        .post(
            "/v2/dry-run",
            json!({ "template": dry_run_template(), "values": { "name": "svc" }, "directoryContents": [
                { "path": "skeleton/README.md", "base64Content": "" }
            ] }),
        )
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["name"], "Error");
    assert_eq!(
        body["error"]["message"],
        "workspace size limit of 4 bytes exceeded (the operator can raise scaffolder.dryRun.maxBytes)"
    );
    server.finish().await;
}

async fn autocomplete_has_no_providers(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = server
        .post(
            "/v2/autocomplete/github/repositories",
            json!({ "token": "t", "context": {} }),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "Unsupported provider: github");
    let (status, body) = server
        .post(
            "/v2/autocomplete/github/repositories",
            json!({ "context": {} }),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "request/body must have required property 'token'"
    );
    server.finish().await;
}

async fn templating_extensions_and_openapi(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = server.get("/v2/templating-extensions").await;
    assert_eq!(status, 200);
    for filter in ["parseRepoUrl", "parseEntityRef", "pick", "projectSlug"] {
        assert!(
            body["filters"][filter]["description"].is_string(),
            "{filter}"
        );
    }
    assert_eq!(body["globals"], json!({ "functions": {}, "values": {} }));
    let (status, body) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(body["openapi"], "3.1.0");
    assert!(body["paths"]["/api/scaffolder/v2/tasks"]["post"].is_object());
    server.finish().await;
}

async fn unknown_routes_are_404_with_an_empty_body(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = server.get("/v2/nothing-here").await;
    assert_eq!(status, 404);
    assert_eq!(body, Json::Null);
    let (status, body) = server.get("/v1/tasks").await;
    assert_eq!(status, 404);
    assert_eq!(body, Json::Null);
    server.finish().await;
}

/// A Backstage instance's user-token keys, served at `/api/auth/.well-known/jwks.json`.
async fn backstage_jwks(key: &jsonwebtoken::EncodingKey) -> String {
    let mut jwk =
        jsonwebtoken::jwk::Jwk::from_encoding_key(key, jsonwebtoken::Algorithm::ES256).unwrap();
    jwk.common.key_id = Some("k1".into());
    let keys = json!({ "keys": [jwk] });
    let app = axum::Router::new().route(
        "/api/auth/.well-known/jwks.json",
        axum::routing::get(move || async move { axum::Json(keys) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

async fn a_backstage_user_token_becomes_created_by(backend: Backend) {
    use p256::pkcs8::EncodePrivateKey;
    let secret = p256::SecretKey::from_slice(&[7; 32]).unwrap();
    let key = jsonwebtoken::EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes());
    let backstage = backstage_jwks(&key).await;
    let mut server = TestServer::start_with(
        backend,
        common::Options {
            auth: scaffolder_api::auth::AuthConfig {
                backstage_base_url: Some(backstage),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await;
    let (status, body) = server.get("/v2/tasks").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["name"], "AuthenticationError");

    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("k1".into());
    header.typ = Some("vnd.backstage.user".into());
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({ "sub": "user:default/jane", "ent": ["user:default/jane"], "iat": now, "exp": now + 600 });
    server.token = Some(jsonwebtoken::encode(&header, &claims, &key).unwrap());
    let id = server
        .scaffold("conformance", json!({ "name": "svc" }))
        .await;
    server.events_until_completion(&id).await;
    let (_, task) = server.get(&format!("/v2/tasks/{id}")).await;
    assert_eq!(task["createdBy"], "user:default/jane");
    assert_eq!(task["spec"]["user"]["ref"], "user:default/jane");
    let (_, mine) = server.get("/v2/tasks?createdBy=user:default/jane").await;
    assert_eq!(mine["totalTasks"], 1);
    server.finish().await;
}

async fn the_concurrency_limit_keeps_extra_tasks_open(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        common::Options {
            concurrent_tasks_limit: 1,
            ..Default::default()
        },
    )
    .await;
    let first = server
        .scaffold("conformance-slow", json!({ "millis": 30000 }))
        .await;
    server
        .wait_for_event(&first, |e| e["body"]["status"] == "processing")
        .await;
    let second = server.scaffold("conformance", json!({ "name": "b" })).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, task) = server.get(&format!("/v2/tasks/{second}")).await;
    assert_eq!(task["status"], "open", "one slot, taken by the first task");
    server
        .post_raw(&format!("/v2/tasks/{first}/cancel"), "")
        .await;
    server.events_until_completion(&second).await;
    server.finish().await;
}

/// Ids and query values that no stored task can have (NUL bytes, non-UUIDs, bytes that
/// are not UTF-8, too many values) are answered before they reach SQL, the same way on
/// both databases; a database error answers a 500 that does not carry its text.
mod ids {
    use super::*;

    on_both_databases!(
        malformed_task_ids_are_404_on_every_task_route,
        a_task_id_that_is_not_utf8_is_a_400_uri_error,
        nul_bytes_in_query_values_are_400,
        as_many_query_values_as_a_url_holds_are_answered,
        nul_bytes_in_body_values_are_stored_or_refused_alike,
        a_database_error_is_a_500_without_its_text,
    );

    /// The routes that take a task id, as `(method, path with {id})`.
    const TASK_ROUTES: [(&str, &str); 5] = [
        ("GET", "/v2/tasks/{id}"),
        ("POST", "/v2/tasks/{id}/cancel"),
        ("POST", "/v2/tasks/{id}/retry"),
        ("GET", "/v2/tasks/{id}/events"),
        ("GET", "/v2/tasks/{id}/eventstream"),
    ];

    async fn call(server: &TestServer, method: &str, path: &str) -> (u16, Json) {
        match method {
            "GET" => server.get(path).await,
            _ => server.post_raw(path, "").await,
        }
    }

    /// The status code of a `GET` written on a plain TCP connection.
    async fn raw_get_status(server: &TestServer, path: &str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let url = reqwest::Url::parse(&server.base).unwrap();
        let address = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!(
            "GET {}{path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
            url.path()
        );
        // The server may answer and close before reading the whole request.
        let _ = stream.write_all(request.as_bytes()).await;
        let mut head = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut head)).await;
        let head = String::from_utf8_lossy(&head);
        head.split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {:?}", &head[..head.len().min(200)]))
    }

    async fn malformed_task_ids_are_404_on_every_task_route(backend: Backend) {
        let server = TestServer::start(backend).await;
        let id = server
            .scaffold("conformance", json!({ "name": "svc" }))
            .await;
        server.events_until_completion(&id).await;
        let long = "a".repeat(32 * 1024);
        // (the id as sent in the URL, the id as decoded)
        let ids = [
            ("%00".to_owned(), "\0".to_owned()),
            (format!("{id}%00"), format!("{id}\0")),
            (format!("%00{id}"), format!("\0{id}")),
            ("not-a-uuid".to_owned(), "not-a-uuid".to_owned()),
            (long.clone(), long.clone()),
        ];
        for (method, route) in TASK_ROUTES {
            for (sent, decoded) in &ids {
                let path = route.replace("{id}", sent);
                let (status, body) = call(&server, method, &path).await;
                assert_eq!(status, 404, "{method} {}", &path[..path.len().min(80)]);
                assert_eq!(
                    body,
                    json!({
                        "error": {
                            "name": "NotFoundError",
                            "message": format!("No task with id '{decoded}' found"),
                        },
                        "request": { "method": method, "url": path },
                        "response": { "statusCode": 404 }
                    }),
                    "{method} {}",
                    &path[..path.len().min(80)]
                );
            }
        }
        // The task itself is untouched and still found.
        let (status, task) = server.get(&format!("/v2/tasks/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(task["status"], "completed");
        // An id far over any URL limit is refused before routing, never a 500.
        // (HTTP clients refuse such a URL: sent by hand.)
        let huge = "a".repeat(1024 * 1024);
        let status = raw_get_status(&server, &format!("/v2/tasks/{huge}")).await;
        assert!((400..500).contains(&status), "1 MB id: {status}");
        server.finish().await;
    }

    /// Express answers a route parameter `decodeURIComponent` cannot decode with
    /// `400 URIError "Failed to decode param '<raw>'"`.
    async fn a_task_id_that_is_not_utf8_is_a_400_uri_error(backend: Backend) {
        let server = TestServer::start(backend).await;
        for raw in ["%FF", "abc%C3", "%E0%80%80"] {
            for (method, route) in TASK_ROUTES {
                let path = route.replace("{id}", raw);
                let (status, body) = call(&server, method, &path).await;
                assert_eq!(status, 400, "{method} {path}");
                assert_eq!(
                    body,
                    json!({
                        "error": {
                            "name": "URIError",
                            "message": format!("Failed to decode param '{raw}'"),
                        },
                        "request": { "method": method, "url": path },
                        "response": { "statusCode": 400 }
                    }),
                    "{method} {path}"
                );
            }
        }
        server.finish().await;
    }

    async fn nul_bytes_in_query_values_are_400(backend: Backend) {
        let server = TestServer::start(backend).await;
        let id = server
            .scaffold("conformance", json!({ "name": "svc" }))
            .await;
        server.events_until_completion(&id).await;
        for (path, message) in [
            (
                "/v2/tasks?status=%00".to_owned(),
                "request/query/status must not contain NUL characters",
            ),
            (
                "/v2/tasks?status=completed&status=open%00".to_owned(),
                "request/query/status must not contain NUL characters",
            ),
            (
                "/v2/tasks?createdBy=user:default/a%00".to_owned(),
                "request/query/createdBy must not contain NUL characters",
            ),
            (
                "/v2/tasks?order=desc:created_at%00".to_owned(),
                "Invalid order field \"created_at\0\"",
            ),
            (
                "/v2/tasks?limit=1%00".to_owned(),
                "request/query/limit must be integer",
            ),
            (
                "/v2/tasks?offset=%00".to_owned(),
                "request/query/offset must be integer",
            ),
            (
                format!("/v2/tasks/{id}/events?after=%00"),
                "request/query/after must be integer",
            ),
        ] {
            let (status, body) = server.get(&path).await;
            assert_eq!(status, 400, "{path}: {body}");
            assert_eq!(
                body,
                json!({
                    "error": { "name": "InputError", "message": message },
                    "request": { "method": "GET", "url": path },
                    "response": { "statusCode": 400 }
                }),
                "{path}"
            );
        }
        // Values that are not UTF-8 or are long match no task, as in Backstage.
        let long = "x".repeat(32 * 1024);
        for query in [
            "status=%FF".to_owned(),
            "createdBy=%C3".to_owned(),
            format!("createdBy={long}"),
            format!("status={long}"),
        ] {
            let (status, body) = server.get(&format!("/v2/tasks?{query}")).await;
            assert_eq!(status, 200, "{}", &query[..query.len().min(40)]);
            assert_eq!(body["totalTasks"], 0);
        }
        server.finish().await;
    }

    /// As many values as a URL holds (the server refuses URLs over 64 KiB with 414) stay
    /// under both databases' limits on bound variables (SQLite: 32,766).
    async fn as_many_query_values_as_a_url_holds_are_answered(backend: Backend) {
        let server = TestServer::start(backend).await;
        for key in ["status", "createdBy"] {
            let mut query = String::new();
            let mut n = 0;
            while query.len() < 64 * 1024 - 100 {
                query.push_str(&format!("{key}={n:x}&"));
                n += 1;
            }
            let (status, body) = server.get(&format!("/v2/tasks?{query}")).await;
            assert_eq!(status, 200, "{n} values of {key}: {body}");
            assert_eq!(body["totalTasks"], 0);
        }
        let over = "status=x&".repeat(8 * 1024);
        let status = raw_get_status(&server, &format!("/v2/tasks?{over}")).await;
        assert_eq!(status, 414);
        server.finish().await;
    }

    /// Body values reach the database as JSON, where a NUL is the escape `\\u0000`; a
    /// template reference with one names no template.
    async fn nul_bytes_in_body_values_are_stored_or_refused_alike(backend: Backend) {
        let server = TestServer::start(backend).await;
        let (status, body) = server
            .post(
                "/v2/tasks",
                json!({ "templateRef": "template:default/conf\u{0}ormance", "values": {} }),
            )
            .await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["name"], "NotFoundError");
        let id = server
            .scaffold_with_secrets(
                "conformance",
                json!({ "name": "s\u{0}vc" }),
                json!({ "token": "a\u{0}b" }),
            )
            .await;
        server.events_until_completion(&id).await;
        let (status, task) = server.get(&format!("/v2/tasks/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(task["spec"]["parameters"]["name"], "s\u{0}vc");
        let (status, body) = server
            .post(
                &format!("/v2/tasks/{id}/retry"),
                json!({ "secrets": { "t": "\u{0}" } }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        server.events_until_completion(&id).await;
        server.finish().await;
    }

    async fn a_database_error_is_a_500_without_its_text(backend: Backend) {
        let server = TestServer::start(backend).await;
        let id = server
            .scaffold("conformance", json!({ "name": "svc" }))
            .await;
        server.events_until_completion(&id).await;
        // Every later query fails with sqlx's "attempted to acquire a connection on a
        // closed pool".
        server.store.close().await;
        for (method, path) in [
            ("GET", "/v2/tasks".to_owned()),
            ("GET", format!("/v2/tasks/{id}")),
            ("GET", format!("/v2/tasks/{id}/events")),
            ("POST", format!("/v2/tasks/{id}/cancel")),
        ] {
            let (status, body) = call(&server, method, &path).await;
            assert_eq!(status, 500, "{method} {path}: {body}");
            assert_eq!(
                body,
                json!({
                    "error": {
                        "name": "Error",
                        "message": "The scaffolder could not complete the request; its log has the cause",
                    },
                    "request": { "method": method, "url": path },
                    "response": { "statusCode": 500 }
                }),
                "{method} {path}"
            );
            let text = body.to_string();
            for leak in ["pool", "database", "sqlx", "closed"] {
                assert!(!text.contains(leak), "{method} {path} leaks {leak}: {text}");
            }
        }
        server.finish().await;
    }
}
