//! `/v2/tasks`: create (201), list, get, cancel, retry (201 / 409) (spec §1.5–§1.9).

use std::sync::Arc;

use axum::Extension;
use axum::Json as JsonResponse;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use scaffolder_engine::{TaskUser, task_spec};
use scaffolder_store::{Direction, OrderField, TaskFilter, TaskRecord};
use serde_json::{Value as Json, json};

use super::templates::{find_template, parse_template_ref};
use super::{
    body_object, check_secrets, check_values_and_secrets, json_body, no_query, optional_json_body,
    required, secrets_field, with_backstage_token,
};
use crate::ApiState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::ids::{TaskIdParam, could_be_task_id};
use crate::query::Query;
use crate::wire;

/// `POST /v2/tasks`.
pub async fn create(
    State(state): State<ApiState>,
    Extension(principal): Extension<Arc<Principal>>,
    uri: Uri,
    body: Bytes,
) -> Result<(StatusCode, JsonResponse<Json>), ApiError> {
    no_query(&uri)?;
    let body = body_object(json_body(&body)?)?;
    let template_ref = required(&body, "templateRef")?
        .as_str()
        .ok_or_else(|| ApiError::input("request/body/templateRef must be string"))?;
    let values = required(&body, "values")?;
    if !values.is_object() {
        return Err(ApiError::input("request/body/values must be object"));
    }
    let secrets = secrets_field(&body, "secrets")?;

    let (namespace, name) = parse_template_ref(template_ref)?;
    let loaded = find_template(&state, &namespace, &name).await?;
    let template = &loaded.template;
    let values = check_values_and_secrets(template, values, &secrets)?;

    // The user, verified or (in development mode only) as the unverified token names it.
    let created_by = principal.created_by().map(str::to_owned);
    let user = TaskUser {
        entity: None,
        user_ref: created_by.clone(),
    };
    let spec = task_spec(template, values, Some(user), loaded.base_url.clone());
    let task = state
        .engine
        .create_task(&spec, created_by, with_backstage_token(secrets, &principal))
        .await?;
    tracing::info!(task_id = %task.id, template = %template.entity_ref(), "task created");
    Ok((StatusCode::CREATED, JsonResponse(json!({ "id": task.id }))))
}

/// `GET /v2/tasks`.
pub async fn list(State(state): State<ApiState>, uri: Uri) -> Result<JsonResponse<Json>, ApiError> {
    let query = Query::parse(
        uri.query(),
        &["createdBy", "status", "limit", "offset", "order"],
    )?;
    let mut status = query.texts("status")?;
    status.dedup();
    let filter = TaskFilter {
        created_by: query.texts("createdBy")?,
        status,
        limit: query.integer("limit", 0)?,
        offset: query.integer("offset", 0)?,
        order: query
            .all("order")
            .iter()
            .map(|item| parse_order(item))
            .collect::<Result<_, _>>()?,
    };
    let (tasks, total) = state.engine.store().list_tasks(&filter).await?;
    Ok(JsonResponse(json!({
        "tasks": tasks.iter().map(wire::task).collect::<Vec<_>>(),
        "totalTasks": total,
    })))
}

fn parse_order(item: &str) -> Result<(OrderField, Direction), ApiError> {
    let malformed = || {
        ApiError::input(format!(
            "Invalid order parameter \"{item}\", expected \"<asc or desc>:<field name>\""
        ))
    };
    let (direction, field) = item.split_once(':').ok_or_else(malformed)?;
    let direction = match direction {
        "asc" => Direction::Asc,
        "desc" => Direction::Desc,
        _ => return Err(malformed()),
    };
    let field = OrderField::parse(field)
        .ok_or_else(|| ApiError::input(format!("Invalid order field \"{field}\"")))?;
    Ok((field, direction))
}

/// `GET /v2/tasks/:taskId`.
pub async fn get(
    State(state): State<ApiState>,
    TaskIdParam(task_id): TaskIdParam,
    uri: Uri,
) -> Result<JsonResponse<Json>, ApiError> {
    no_query(&uri)?;
    let task = find_task(&state, &task_id).await?;
    Ok(JsonResponse(wire::task(&task)))
}

/// `POST /v2/tasks/:taskId/cancel`: 200 `{ status: 'cancelled' }` whatever the task's state.
pub async fn cancel(
    State(state): State<ApiState>,
    TaskIdParam(task_id): TaskIdParam,
    uri: Uri,
) -> Result<JsonResponse<Json>, ApiError> {
    no_query(&uri)?;
    find_task(&state, &task_id).await?;
    state.engine.cancel_task(&task_id).await?;
    tracing::info!(task_id = %task_id, "task cancelled");
    Ok(JsonResponse(json!({ "status": "cancelled" })))
}

/// `POST /v2/tasks/:taskId/retry`: 201 `{ id }`, 409 unless the task has ended.
pub async fn retry(
    State(state): State<ApiState>,
    Extension(principal): Extension<Arc<Principal>>,
    TaskIdParam(task_id): TaskIdParam,
    uri: Uri,
    body: Bytes,
) -> Result<(StatusCode, JsonResponse<Json>), ApiError> {
    no_query(&uri)?;
    let body = body_object(optional_json_body(&body)?)?;
    let secrets = secrets_field(&body, "secrets")?;
    let task = find_task(&state, &task_id).await?;
    if let Some(entity_ref) = task
        .spec
        .template_info
        .as_ref()
        .map(|i| i.entity_ref.clone())
    {
        let (namespace, name) = parse_template_ref(&entity_ref)?;
        let loaded = find_template(&state, &namespace, &name).await?;
        check_secrets(&loaded.template, &secrets)?;
    }
    state
        .engine
        .retry_task(&task, with_backstage_token(secrets, &principal))
        .await?;
    tracing::info!(task_id = %task_id, "task retried");
    Ok((StatusCode::CREATED, JsonResponse(json!({ "id": task_id }))))
}

/// The task, or Backstage's 404; an id no task can have is not looked up.
pub(crate) async fn find_task(state: &ApiState, task_id: &str) -> Result<TaskRecord, ApiError> {
    if !could_be_task_id(task_id) {
        return Err(ApiError::no_task(task_id));
    }
    state
        .engine
        .store()
        .get_task(task_id)
        .await?
        .ok_or_else(|| ApiError::no_task(task_id))
}
