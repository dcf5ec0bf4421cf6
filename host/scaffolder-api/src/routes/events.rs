//! A task's events: `GET .../eventstream` (Server-Sent Events) and `GET .../events` (long
//! polling) (spec §1.10, §1.11). Both read the store; the engine's event bus only says
//! when to read again, so an event reaches open streams as soon as it is persisted.
//! Events written by other replicas are found by a re-read every second.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json as JsonResponse;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use scaffolder_store::{EventRecord, EventType};
use serde_json::Value as Json;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::tasks::find_task;
use crate::ApiState;
use crate::error::ApiError;
use crate::query::Query;
use crate::wire;

/// How often streams re-read the store when nothing was announced in this process.
const REREAD: Duration = Duration::from_secs(1);
/// How long a long poll waits for events before answering `[]`.
const LONG_POLL: Duration = Duration::from_secs(30);

/// `GET /v2/tasks/:taskId/eventstream`.
pub async fn eventstream(
    State(state): State<ApiState>,
    Path(task_id): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    // Not validated by Backstage's OpenAPI validator: unknown parameters are ignored.
    let query = Query::parse_any(uri.query());
    let after = query
        .all("after")
        .last()
        .and_then(|a| a.parse::<f64>().ok())
        .map(|a| a as i64);
    let task = find_task(&state, &task_id).await?;
    let recoverable = wire::is_recoverable(&task);

    let (sender, receiver) = mpsc::channel::<Result<Bytes, Infallible>>(16);
    let mut announcements = state.engine.bus().subscribe();
    tokio::spawn(async move {
        let mut after = after;
        let mut sent_completion = None;
        loop {
            let events = match state.engine.store().list_events(&task_id, after).await {
                Ok(events) => events,
                Err(err) => {
                    tracing::error!(task_id = %task_id, "event stream stopped: {err}");
                    return;
                }
            };
            let mut frames = String::new();
            let mut finished = false;
            for event in &events {
                if event.event_type == EventType::Completion {
                    if sent_completion == Some(event.id) {
                        continue;
                    }
                    sent_completion = Some(event.id);
                    finished = !recoverable;
                }
                frames.push_str(&format!(
                    "event: {}\ndata: {}\n\n",
                    event.event_type.as_str(),
                    wire::event(event, recoverable)
                ));
                after = Some(after.map_or(event.id, |a| a.max(event.id)));
            }
            if !frames.is_empty() && sender.send(Ok(Bytes::from(frames))).await.is_err() {
                return; // The client went away.
            }
            if finished {
                return;
            }
            tokio::select! {
                () = wait_for(&mut announcements, &task_id) => {}
                () = tokio::time::sleep(REREAD) => {}
                () = sender.closed() => return,
                () = state.shutdown.cancelled() => return,
            }
        }
    });

    let mut response = Body::from_stream(ReceiverStream::new(receiver)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    // Tell buffering proxies (nginx) to pass events through at once.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// `GET /v2/tasks/:taskId/events`: the first non-empty batch after `after`, or `[]`
/// after 30 seconds.
pub async fn events(
    State(state): State<ApiState>,
    Path(task_id): Path<String>,
    uri: Uri,
) -> Result<JsonResponse<Vec<Json>>, ApiError> {
    let query = Query::parse(uri.query(), &["after"])?;
    let after = query.integer("after", i64::MIN)?;
    let task = find_task(&state, &task_id).await?;
    let recoverable = wire::is_recoverable(&task);
    let mut announcements = state.engine.bus().subscribe();
    let deadline = tokio::time::Instant::now() + LONG_POLL;
    loop {
        let events: Vec<EventRecord> = state.engine.store().list_events(&task_id, after).await?;
        if !events.is_empty() {
            return Ok(JsonResponse(
                events.iter().map(|e| wire::event(e, recoverable)).collect(),
            ));
        }
        tokio::select! {
            () = wait_for(&mut announcements, &task_id) => {}
            () = tokio::time::sleep(REREAD) => {}
            () = tokio::time::sleep_until(deadline) => return Ok(JsonResponse(Vec::new())),
        }
    }
}

/// Returns when an event of `task_id` is announced (or announcements were missed),
/// having taken every announcement already queued: one re-read of the store covers them.
async fn wait_for(announcements: &mut broadcast::Receiver<String>, task_id: &str) {
    loop {
        match announcements.recv().await {
            Ok(id) if id == task_id => {
                while announcements.try_recv().is_ok() {}
                return;
            }
            Ok(_) => continue,
            Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => std::future::pending().await,
        }
    }
}
