//! A task's events: `GET .../eventstream` (Server-Sent Events) and `GET .../events` (long
//! polling) (spec §1.10, §1.11). Streams read the store once, then send the events the
//! engine's event bus announces as they were stored (persisted first, so an event reaches
//! open streams as soon as it is persisted, without reading it back); announcements
//! without events (a retry removed some), announced ids of events the stream has not sent
//! (other replicas' events, from the store's notifications), a lagging subscription, and
//! a re-read every `poll_interval` (one second; notifications can be lost, and SQLite has
//! none) make them read the store again.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json as JsonResponse;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use scaffolder_engine::Announcement;
use scaffolder_store::{EventRecord, EventType};
use serde_json::Value as Json;
use tokio::sync::broadcast::{
    self,
    error::{RecvError, TryRecvError},
};

use super::tasks::find_task;
use crate::ApiState;
use crate::error::ApiError;
use crate::ids::TaskIdParam;
use crate::query::Query;
use crate::wire;

/// How long a long poll waits for events before answering `[]`.
const LONG_POLL: Duration = Duration::from_secs(30);

/// How long an event stream may stay silent before it sends a keep-alive comment.
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /v2/tasks/:taskId/eventstream`.
pub async fn eventstream(
    State(state): State<ApiState>,
    TaskIdParam(task_id): TaskIdParam,
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

    let watch = Watch {
        announcements: state.engine.bus().subscribe(),
        state,
        task_id,
        stream: StreamState {
            read_cursor: after,
            sent_since_read: HashSet::new(),
            sent_completion: None,
            recoverable,
        },
        next: Some(Wake::Read),
        finished: false,
        last_sent: tokio::time::Instant::now(),
        _open: crate::metrics::OpenStream::new("eventstream"),
    };
    // The body is the stream itself, polled by the connection as it can send: no task
    // and no channel per open stream. It ends when the task completes for good or the
    // server stops, and is dropped when the client goes away. It keeps the request's
    // span (and request id).
    let span = tracing::Span::current();
    let frames = futures::stream::unfold(watch, move |mut watch| {
        tracing::Instrument::instrument(
            async move {
                let text = watch.next_text().await?;
                Some((Ok::<_, Infallible>(Bytes::from(text)), watch))
            },
            span.clone(),
        )
    });

    let mut response = Body::from_stream(frames).into_response();
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

/// An open event stream: what it watches and what it has sent.
struct Watch {
    state: ApiState,
    task_id: String,
    /// Subscribed before the first read, so nothing stored after that read goes unseen.
    announcements: broadcast::Receiver<Announcement>,
    stream: StreamState,
    /// What to do before waiting again (first a read of the store).
    next: Option<Wake>,
    finished: bool,
    last_sent: tokio::time::Instant,
    _open: crate::metrics::OpenStream,
}

impl Watch {
    /// The next frames to send; `None` when the stream is over: the task completed and
    /// cannot be retried, the store failed, or the server is stopping.
    async fn next_text(&mut self) -> Option<String> {
        while !self.finished {
            let wake = match self.next.take() {
                Some(wake) => wake,
                None => self.wait().await?,
            };
            let frames = match wake {
                Wake::Read => {
                    match read_events(&self.state, &self.task_id, self.stream.read_cursor).await {
                        Ok(events) => self.stream.read(&events),
                        Err(err) => {
                            tracing::error!(task_id = %self.task_id, "event stream stopped: {err}");
                            return None;
                        }
                    }
                }
                Wake::Events { events, stored } => {
                    let frames = self.stream.announced(&events);
                    if self.stream.missed_any(&stored) {
                        self.next = Some(Wake::Read);
                    }
                    frames
                }
            };
            self.finished = frames.finished;
            // A comment when quiet for a while, so that proxies and clients do not take a
            // long step for a dead connection.
            let text = match frames.text.is_empty() {
                true if self.last_sent.elapsed() >= SSE_KEEP_ALIVE => ": keep-alive\n\n".to_owned(),
                _ => frames.text,
            };
            if !text.is_empty() {
                self.last_sent = tokio::time::Instant::now();
                return Some(text);
            }
        }
        None
    }

    /// Waits for an announcement of this task or the next re-read; `None` when the
    /// server stops.
    async fn wait(&mut self) -> Option<Wake> {
        tokio::select! {
            wake = wait_for(&mut self.announcements, &self.task_id) => Some(wake),
            () = tokio::time::sleep(self.state.engine.config().poll_interval) => Some(Wake::Read),
            () = self.state.shutdown.cancelled() => None,
        }
    }
}

/// What one event stream has sent, so that reads and announcements, which may overlap,
/// send each event once.
struct StreamState {
    /// Every event up to this id was in a read of the store.
    read_cursor: Option<i64>,
    /// Events sent from announcements that no read has covered yet.
    sent_since_read: HashSet<i64>,
    /// The completion event sent, if any (a read lists it whatever `read_cursor` says).
    sent_completion: Option<i64>,
    recoverable: bool,
}

struct Frames {
    text: String,
    /// The stream is over: the task completed and cannot be retried.
    finished: bool,
}

impl StreamState {
    /// Frames for the events of a read of the store after `read_cursor`.
    fn read(&mut self, events: &[EventRecord]) -> Frames {
        let unsent: Vec<&EventRecord> = events
            .iter()
            .filter(|e| !self.sent_since_read.contains(&e.id))
            .collect();
        let frames = self.frames(unsent.into_iter());
        if let Some(last) = events.iter().map(|e| e.id).max() {
            let cursor = self.read_cursor.map_or(last, |c| c.max(last));
            self.read_cursor = Some(cursor);
            self.sent_since_read.retain(|id| *id > cursor);
        }
        frames
    }

    /// Frames for announced events no read has covered.
    fn announced(&mut self, events: &[EventRecord]) -> Frames {
        let fresh: Vec<&EventRecord> = events
            .iter()
            .filter(|e| self.read_cursor.is_none_or(|c| e.id > c))
            .filter(|e| !self.sent_since_read.contains(&e.id))
            .collect();
        self.sent_since_read.extend(fresh.iter().map(|e| e.id));
        self.frames(fresh.into_iter())
    }

    /// Whether any of these stored events was neither read nor sent.
    fn missed_any(&self, stored: &[i64]) -> bool {
        stored.iter().any(|id| {
            self.read_cursor.is_none_or(|c| *id > c)
                && !self.sent_since_read.contains(id)
                && self.sent_completion != Some(*id)
        })
    }

    fn frames<'a>(&mut self, events: impl Iterator<Item = &'a EventRecord>) -> Frames {
        let mut frames = Frames {
            text: String::new(),
            finished: false,
        };
        for event in events {
            if event.event_type == EventType::Completion {
                if self.sent_completion == Some(event.id) {
                    continue;
                }
                self.sent_completion = Some(event.id);
                frames.finished = !self.recoverable;
            }
            frames.text.push_str(&format!(
                "event: {}\ndata: {}\n\n",
                event.event_type.as_str(),
                wire::event(event, self.recoverable)
            ));
        }
        frames
    }
}

/// `GET /v2/tasks/:taskId/events`: the first non-empty batch after `after`, or `[]`
/// after 30 seconds.
pub async fn events(
    State(state): State<ApiState>,
    TaskIdParam(task_id): TaskIdParam,
    uri: Uri,
) -> Result<JsonResponse<Vec<Json>>, ApiError> {
    let query = Query::parse(uri.query(), &["after"])?;
    let after = query.integer("after", i64::MIN)?;
    let task = find_task(&state, &task_id).await?;
    let recoverable = wire::is_recoverable(&task);
    let _open = crate::metrics::OpenStream::new("long_poll");
    let mut announcements = state.engine.bus().subscribe();
    let deadline = tokio::time::Instant::now() + LONG_POLL;
    loop {
        let events = read_events(&state, &task_id, after).await?;
        if !events.is_empty() {
            return Ok(JsonResponse(
                events.iter().map(|e| wire::event(e, recoverable)).collect(),
            ));
        }
        tokio::select! {
            // Announced or not, the answer is what the store has after `after`.
            _ = wait_for(&mut announcements, &task_id) => {}
            () = tokio::time::sleep(state.engine.config().poll_interval) => {}
            () = tokio::time::sleep_until(deadline) => return Ok(JsonResponse(Vec::new())),
        }
    }
}

/// The task's events after `after`. The store's read is boxed: its future is kilobytes,
/// and streams and long polls wait far longer than they read, so held inline every open
/// one would keep that much.
async fn read_events(
    state: &ApiState,
    task_id: &str,
    after: Option<i64>,
) -> scaffolder_store::Result<Vec<EventRecord>> {
    Box::pin(state.engine.store().list_events(task_id, after)).await
}

/// What woke a stream: announced events to send as they are, with the ids of stored
/// events announced without their records (read the store unless sent), or a reason to
/// read the store (an announcement without events or id, a `recovered` event, whose
/// start-over trims what is listed, or missed announcements).
enum Wake {
    Read,
    Events {
        events: Vec<EventRecord>,
        stored: Vec<i64>,
    },
}

/// Returns when an event of `task_id` is announced, having taken every announcement
/// already queued, so one wake covers a burst.
async fn wait_for(announcements: &mut broadcast::Receiver<Announcement>, task_id: &str) -> Wake {
    let first = loop {
        match announcements.recv().await {
            Ok(announcement) if announcement.concerns(task_id) => break announcement,
            Ok(_) => continue,
            Err(RecvError::Lagged(_)) => return Wake::Read,
            Err(RecvError::Closed) => std::future::pending().await,
        }
    };
    let mut taken = vec![first];
    let mut lagged = false;
    loop {
        match announcements.try_recv() {
            Ok(announcement) if announcement.concerns(task_id) => taken.push(announcement),
            Ok(_) => {}
            Err(TryRecvError::Lagged(_)) => lagged = true,
            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
        }
    }
    wake_for(taken, lagged)
}

/// What a burst of announcements of one task asks a stream to do.
fn wake_for(announcements: Vec<Announcement>, lagged: bool) -> Wake {
    let mut read = lagged;
    let mut events = Vec::new();
    let mut stored = Vec::new();
    for announcement in announcements {
        match announcement.stored_event {
            Some(id) => stored.push(id),
            None => read |= announcement.events.is_empty(),
        }
        events.extend(announcement.events.iter().cloned());
    }
    if read || events.iter().any(|e| e.event_type == EventType::Recovered) {
        Wake::Read
    } else {
        Wake::Events { events, stored }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(id: i64, event_type: EventType) -> EventRecord {
        EventRecord {
            id,
            task_id: "t".into(),
            event_type,
            body: json!({ "message": format!("event {id}") }),
            created_at: 0,
        }
    }

    fn logs(ids: &[i64]) -> Vec<EventRecord> {
        ids.iter().map(|id| event(*id, EventType::Log)).collect()
    }

    fn new_stream(recoverable: bool) -> StreamState {
        StreamState {
            read_cursor: None,
            sent_since_read: HashSet::new(),
            sent_completion: None,
            recoverable,
        }
    }

    /// The ids in the frames, in order.
    fn ids(frames: &Frames) -> Vec<i64> {
        frames
            .text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|data| {
                serde_json::from_str::<Json>(data).unwrap()["id"]
                    .as_i64()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn announced_events_a_read_covered_are_not_sent_again() {
        let mut stream = new_stream(false);
        assert_eq!(ids(&stream.read(&logs(&[1, 2, 3]))), [1, 2, 3]);
        assert_eq!(ids(&stream.announced(&logs(&[3, 4]))), [4]);
        assert_eq!(ids(&stream.announced(&logs(&[4]))), Vec::<i64>::new());
    }

    #[test]
    fn a_read_sends_only_what_announcements_missed() {
        let mut stream = new_stream(false);
        assert_eq!(ids(&stream.read(&logs(&[1]))), [1]);
        assert_eq!(ids(&stream.announced(&logs(&[3]))), [3]);
        // Event 2 was persisted before 3 but its announcement never came (another
        // replica wrote it): the next read sends it, and not 3 again.
        assert_eq!(ids(&stream.read(&logs(&[2, 3]))), [2]);
        assert_eq!(stream.read_cursor, Some(3));
        assert!(stream.sent_since_read.is_empty());
        assert_eq!(ids(&stream.read(&logs(&[4]))), [4]);
    }

    #[test]
    fn the_completion_is_sent_once_and_ends_a_stream_that_cannot_be_retried() {
        let mut stream = new_stream(false);
        stream.read(&logs(&[1]));
        let frames = stream.announced(&[event(2, EventType::Completion)]);
        assert_eq!(ids(&frames), [2]);
        assert!(frames.text.starts_with("event: completion\n"));
        assert!(frames.finished);

        let mut recoverable = new_stream(true);
        let frames = recoverable.announced(&[event(2, EventType::Completion)]);
        assert!(!frames.finished, "a recoverable task's stream stays open");
        // A read lists the completion whatever the cursor; it was sent already.
        let frames = recoverable.read(&[event(2, EventType::Completion)]);
        assert_eq!(ids(&frames), Vec::<i64>::new());
    }

    fn stored(task_id: &str, event_id: Option<i64>, events: Vec<EventRecord>) -> Announcement {
        Announcement {
            task_id: task_id.into(),
            events: events.into(),
            stored_event: event_id,
        }
    }

    #[test]
    fn a_stored_event_the_stream_sent_or_read_needs_no_read() {
        let mut stream = new_stream(false);
        assert!(stream.missed_any(&[1]), "nothing read yet");
        stream.read(&logs(&[1, 2, 3]));
        stream.announced(&logs(&[4]));
        assert!(!stream.missed_any(&[3]), "read");
        assert!(
            !stream.missed_any(&[4]),
            "sent from this replica's announcement"
        );
        assert!(stream.missed_any(&[4, 5]), "another replica's event");
        stream.announced(&[event(6, EventType::Completion)]);
        assert!(!stream.missed_any(&[6]));
    }

    #[test]
    fn announcements_by_id_are_checked_after_the_events_of_the_same_burst() {
        // This replica's events, announced with their records and heard again from the
        // store, in either order: the stream sends them and reads nothing.
        let wake = wake_for(
            vec![
                stored("t", Some(5), Vec::new()),
                stored("t", None, logs(&[4, 5])),
            ],
            false,
        );
        let Wake::Events { events, stored } = wake else {
            panic!("no read needed yet");
        };
        let mut stream = new_stream(false);
        stream.read(&logs(&[1, 2, 3]));
        assert_eq!(ids(&stream.announced(&events)), [4, 5]);
        assert!(!stream.missed_any(&stored));
    }

    #[test]
    fn lost_notifications_and_announcements_without_events_mean_a_read() {
        assert!(matches!(
            wake_for(vec![stored("t", None, Vec::new())], false),
            Wake::Read
        ));
        assert!(matches!(
            wake_for(vec![stored("t", Some(1), Vec::new())], true),
            Wake::Read
        ));
        let everywhere = stored("", None, Vec::new());
        assert!(everywhere.concerns("t") && everywhere.concerns("u"));
        assert!(!stored("t", Some(1), Vec::new()).concerns("u"));
    }
}
