//! Backstage 4.3.0's conditional parameter pages (`when`) through the API: a hidden page's
//! required field is not required and its values never reach the task (its stored spec,
//! its rendering), a shown page still validates, and the parameter schema carries `when`
//! beside each page's schema.

mod common;

use common::TestServer;
use scaffolder_store::Backend;
use serde_json::{Value as Json, json};

on_both_databases!(
    hidden_pages_are_not_validated_and_lose_their_values,
    the_parameter_schema_moves_when_beside_the_schema,
    dry_runs_resolve_pages_and_refuse_a_malformed_when,
);

async fn hidden_pages_are_not_validated_and_lose_their_values(backend: Backend) {
    let server = TestServer::start(backend).await;

    // GCP: the AWS page is hidden, so its required `region` is not required, and the
    // `region` submitted anyway is removed; `name`, shared with a shown page, stays.
    let values = json!({ "cloud": "GCP", "project": "p1", "region": "eu-west-1", "name": "svc" });
    let id = server.scaffold("conditional", values).await;
    let events = server.events_until_completion(&id).await;
    let completion = events.last().unwrap();
    assert_eq!(
        completion["body"]["output"]["text"][0]["content"], "name=svc region= project=p1",
        "the task renders without the hidden page's value: {completion}"
    );
    let (_, task) = server.get(&format!("/v2/tasks/{id}")).await;
    assert_eq!(task["status"], "completed");
    assert_eq!(
        task["spec"]["parameters"],
        json!({ "cloud": "GCP", "project": "p1", "name": "svc" }),
        "the stored spec holds the values the task ran with"
    );

    // AWS: the AWS page is shown and validated; the GCP page's `project` is removed.
    let (status, body) = server
        .post(
            "/v2/tasks",
            json!({ "templateRef": "conditional", "values": { "cloud": "AWS" } }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["name"], "required");
    assert_eq!(body["errors"][0]["argument"], "region");
    assert_eq!(body["errors"][0]["schema"]["title"], "AWS");
    let id = server
        .scaffold(
            "conditional",
            json!({ "cloud": "AWS", "region": "eu", "project": "stray" }),
        )
        .await;
    server.events_until_completion(&id).await;
    let (_, task) = server.get(&format!("/v2/tasks/{id}")).await;
    assert_eq!(
        task["spec"]["parameters"],
        json!({ "cloud": "AWS", "region": "eu" })
    );

    // GCP without a project: the GCP page is shown and refuses it.
    let (status, body) = server
        .post(
            "/v2/tasks",
            json!({ "templateRef": "conditional", "values": { "cloud": "GCP" } }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["argument"], "project");
    server.finish().await;
}

async fn the_parameter_schema_moves_when_beside_the_schema(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = server
        .get("/v2/templates/default/template/conditional/parameter-schema")
        .await;
    assert_eq!(status, 200, "{body}");
    let steps = body["steps"].as_array().unwrap();
    assert!(steps[0].get("when").is_none(), "{body}");
    assert_eq!(steps[1]["when"], "${{ parameters.cloud === 'AWS' }}");
    assert_eq!(steps[2]["when"], "parameters.cloud === 'GCP'");
    for step in steps {
        assert!(step["schema"].get("when").is_none(), "{step}");
    }
    assert_eq!(steps[1]["schema"]["required"], json!(["region"]));
    let keys: Vec<&String> = steps[1].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["title", "when", "schema"], "Backstage's key order");
    server.finish().await;
}

fn dry_run_template(second_when: Json) -> Json {
    json!({
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": { "name": "dry" },
        "spec": {
            "type": "service",
            "parameters": [
                { "properties": { "docker": { "type": "boolean" } } },
                { "when": second_when, "required": ["image"], "properties": { "image": { "type": "string" } } }
            ],
            "steps": [{ "id": "noop", "action": "friendly:noop" }],
            "output": { "image": "${{ parameters.image }}", "docker": "${{ parameters.docker }}" }
        }
    })
}

async fn dry_runs_resolve_pages_and_refuse_a_malformed_when(backend: Backend) {
    let server = TestServer::start(backend).await;
    let dry_run = |template: Json, values: Json| {
        server.post(
            "/v2/dry-run",
            json!({ "template": template, "values": values, "directoryContents": [] }),
        )
    };

    // Hidden: `image` is neither required nor passed on.
    let (status, body) = dry_run(
        dry_run_template(json!("${{ parameters.docker }}")),
        json!({ "docker": false, "image": "alpine" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"], json!({ "docker": false }), "{body}");
    // Shown: validated.
    let (status, body) = dry_run(
        dry_run_template(json!("${{ parameters.docker }}")),
        json!({ "docker": true }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["argument"], "image");
    // A boolean `when`.
    let (status, body) = dry_run(dry_run_template(json!(false)), json!({ "image": "x" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"], json!({}), "{body}");

    // A `when` that is neither a string nor a boolean is refused as Backstage's Template
    // schema refuses it, with what to write instead.
    let (status, body) = dry_run(dry_run_template(json!(1)), json!({})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["message"], "Input template is not a template");
    let cause = body["error"]["cause"]["message"].as_str().unwrap();
    assert!(
        cause.starts_with("spec.parameters[1].when: must be a condition string"),
        "{cause}"
    );
    server.finish().await;
}
