//! `GET /openapi.json`: the OpenAPI 3.1 document of the routes, with paths prefixed by
//! the mount path.

use axum::Json as JsonResponse;
use serde_json::{Map, Value as Json, json};

use crate::BASE_PATH;

pub async fn document() -> JsonResponse<Json> {
    JsonResponse(openapi())
}

fn openapi() -> Json {
    let error = json!({ "$ref": "#/components/responses/ErrorResponse" });
    let task_id =
        json!({ "name": "taskId", "in": "path", "required": true, "schema": { "type": "string" } });
    let string_array = |name: &str| json!({ "name": name, "in": "query", "required": false, "explode": true, "style": "form", "schema": { "type": "array", "items": { "type": "string" } } });
    let integer = |name: &str| json!({ "name": name, "in": "query", "required": false, "schema": { "type": "integer", "minimum": 0 } });
    let path_params = |names: &[&str]| -> Vec<Json> {
        names.iter().map(|n| json!({ "name": n, "in": "path", "required": true, "schema": { "type": "string" } })).collect()
    };
    let ok = |description: &str| json!({ "description": description, "content": { "application/json": { "schema": { "type": "object" } } } });
    let routes = [
        (
            "/v2/templates",
            json!({ "get": {
                "operationId": "ListTemplates",
                "description": "Ours, not Backstage's: every template of the server's template directories with its load status, sorted by file. A broken template's requests answer 400 with the same place; files a template fetches as content are not templates. Templates of a catalog are listed by the catalog.",
                "responses": { "200": { "description": "{ templates }", "content": { "application/json": { "schema": { "type": "object", "required": ["templates"], "properties": {
                    "templates": { "type": "array", "items": { "$ref": "#/components/schemas/ListedTemplate" } }
                } } } } }, "default": error }
            }}),
        ),
        (
            "/v2/templates/{namespace}/{kind}/{name}/parameter-schema",
            json!({ "get": {
                "operationId": "GetTemplateParameterSchema",
                "parameters": path_params(&["namespace", "kind", "name"]),
                "responses": { "200": ok("The template's parameter pages"), "default": error }
            }}),
        ),
        (
            "/v2/actions",
            json!({ "get": {
                "operationId": "ListActions",
                "responses": { "200": { "description": "Installed actions", "content": { "application/json": { "schema": { "type": "array", "items": { "$ref": "#/components/schemas/Action" } } } } }, "default": error }
            }}),
        ),
        (
            "/v2/tasks",
            json!({
                "post": {
                    "operationId": "Scaffold",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ScaffolderScaffoldOptions" } } } },
                    "responses": { "201": ok("The created task's id"), "400": ok("Parameter validation errors ({ errors })"), "default": error }
                },
                "get": {
                    "operationId": "ListTasks",
                    "parameters": [string_array("createdBy"), string_array("status"), integer("limit"), integer("offset"), string_array("order")],
                    "responses": { "200": ok("{ tasks, totalTasks }"), "default": error }
                }
            }),
        ),
        (
            "/v2/tasks/{taskId}",
            json!({ "get": {
                "operationId": "GetTask", "parameters": [task_id.clone()],
                "responses": { "200": ok("The task"), "default": error }
            }}),
        ),
        (
            "/v2/tasks/{taskId}/cancel",
            json!({ "post": {
                "operationId": "CancelTask", "parameters": [task_id.clone()],
                "responses": { "200": ok("{ status: 'cancelled' }"), "default": error }
            }}),
        ),
        (
            "/v2/tasks/{taskId}/retry",
            json!({ "post": {
                "operationId": "Retry", "parameters": [task_id.clone()],
                "requestBody": { "required": false, "content": { "application/json": { "schema": { "type": "object", "properties": { "secrets": { "type": "object", "additionalProperties": { "type": "string" } } } } } } },
                "responses": { "201": ok("{ id }"), "default": error }
            }}),
        ),
        (
            "/v2/tasks/{taskId}/events",
            json!({ "get": {
                "operationId": "StreamLogsPolling",
                "parameters": [task_id, { "name": "after", "in": "query", "required": false, "schema": { "type": "integer" } }],
                "responses": { "200": ok("Events after `after`"), "default": error }
            }}),
        ),
        (
            "/v2/dry-run",
            json!({ "post": {
                "operationId": "DryRun",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["template", "values", "directoryContents"] } } } },
                "responses": { "200": ok("{ log, directoryContents, output, steps }"), "default": error }
            }}),
        ),
        (
            "/v2/autocomplete/{provider}/{resource}",
            json!({ "post": {
                "operationId": "Autocomplete",
                "parameters": path_params(&["provider", "resource"]),
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["token", "context"] } } } },
                "responses": { "200": ok("{ results }"), "default": error }
            }}),
        ),
        (
            "/v2/templating-extensions",
            json!({ "get": {
                "operationId": "ListTemplatingExtensions",
                "responses": { "200": ok("{ filters, globals }"), "default": error }
            }}),
        ),
    ];
    let paths: Map<String, Json> = routes
        .into_iter()
        .map(|(path, item)| (format!("{BASE_PATH}{path}"), item))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": { "title": "scaffolder", "version": env!("CARGO_PKG_VERSION"), "description": "The Backstage scaffolder API, served by a Wasm-sandboxed backend." },
        "servers": [{ "url": "/" }],
        "paths": paths,
        "components": {
            "schemas": {
                "Action": { "type": "object", "required": ["id"], "properties": {
                    "id": { "type": "string" }, "description": { "type": "string" },
                    "examples": { "type": "array", "items": { "type": "object", "properties": { "description": { "type": "string" }, "example": { "type": "string" } } } },
                    "schema": { "type": "object", "properties": { "input": { "type": "object" }, "output": { "type": "object" } } }
                }},
                "ScaffolderScaffoldOptions": { "type": "object", "required": ["templateRef", "values"], "properties": {
                    "templateRef": { "type": "string" }, "values": { "type": "object" },
                    "secrets": { "type": "object", "additionalProperties": { "type": "string" } }
                }},
                "ListedTemplate": { "type": "object", "required": ["ref", "file", "status"], "properties": {
                    "ref": { "type": ["string", "null"], "description": "template:<namespace>/<name>; null when a broken file names no template" },
                    "title": { "type": ["string", "null"] },
                    "file": { "type": "string" },
                    "status": { "type": "string", "enum": ["loaded", "error"] },
                    "error": { "type": "object", "required": ["message"], "properties": {
                        "message": { "type": "string", "description": "file:line:column: path: what is wrong" },
                        "file": { "type": ["string", "null"] }, "line": { "type": ["integer", "null"] },
                        "column": { "type": ["integer", "null"] }, "path": { "type": ["string", "null"], "description": "JSON path of the offending node" }
                    }}
                }},
                "Error": { "type": "object", "properties": {
                    "error": { "type": "object", "properties": { "name": { "type": "string" }, "message": { "type": "string" } } },
                    "request": { "type": "object", "properties": { "method": { "type": "string" }, "url": { "type": "string" } } },
                    "response": { "type": "object", "properties": { "statusCode": { "type": "integer" } } }
                }}
            },
            "responses": {
                "ErrorResponse": { "description": "An error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
            }
        }
    })
}
