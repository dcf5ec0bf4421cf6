//! [`Store::listen`]: what other connections to a PostgreSQL store wrote, as it commits
//! (LISTEN/NOTIFY, the triggers of migration 0004): tasks that became `open` and events
//! that were added. Replicas sharing a database use it to wake their workers and their
//! event streams instead of waiting for the next poll.
//!
//! Notifications are hints, never the record: one sent while the listener was
//! disconnected is lost, which [`Notification::Reconnected`] says, and readers then read
//! the store. SQLite has no notifications (one process per file; the engine's in-process
//! bus covers it), so there [`Store::listen`] gives nothing.

use std::time::{Duration, Instant};

use sqlx::postgres::PgListener;

use crate::Store;

/// Channel of the task ids of tasks that became `open`.
const TASKS_CHANNEL: &str = "scaffolder_tasks";
/// Channel of `<greatest event id>:<task id>` for each statement that inserted events.
const EVENTS_CHANNEL: &str = "scaffolder_events";
/// The first wait before connecting again; doubled on each failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Something another connection (or this process) committed to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// The task became `open`: created, retried, or recovered.
    TaskOpened { task_id: String },
    /// Events of the task were added; `event_id` is the greatest of them.
    EventsAdded { task_id: String, event_id: i64 },
    /// The listener lost its connection and is listening again: what was sent meanwhile
    /// is lost, so every reader should read the store.
    Reconnected,
}

/// A subscription to the store's notifications (PostgreSQL only). It reconnects by
/// itself, with backoff.
pub struct Notifications {
    url: String,
    listener: Option<PgListener>,
    /// When the current connection started listening.
    connected_at: Instant,
    backoff: Duration,
}

impl Store {
    /// Listens to the store's notifications on a connection of its own: `None` on SQLite,
    /// which has none. When this returns, the listener is listening (if the database
    /// was reachable; otherwise it keeps trying, and says [`Notification::Reconnected`]
    /// once it listens).
    pub async fn listen(&self) -> Option<Notifications> {
        let url = self
            .postgres_pool()?
            .connect_options()
            .database_url
            .to_string();
        let mut notifications = Notifications {
            url,
            listener: None,
            connected_at: Instant::now(),
            backoff: MIN_BACKOFF,
        };
        match notifications.connect().await {
            Ok(listener) => notifications.listener = Some(listener),
            Err(err) => {
                tracing::warn!(
                    "could not listen to the store's notifications; workers and streams poll until it can: {err}"
                );
            }
        }
        Some(notifications)
    }
}

impl Notifications {
    /// The next notification. While the connection is down it waits, connecting again
    /// with backoff, and gives [`Notification::Reconnected`] once it listens again.
    /// Cancel-safe.
    pub async fn next(&mut self) -> Notification {
        loop {
            let Some(listener) = &mut self.listener else {
                tokio::time::sleep(self.backoff).await;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                match self.connect().await {
                    Ok(listener) => {
                        self.listener = Some(listener);
                        return Notification::Reconnected;
                    }
                    Err(err) => {
                        tracing::warn!(
                            "could not listen to the store's notifications, retrying in {:?}: {err}",
                            self.backoff
                        );
                        continue;
                    }
                }
            };
            match listener.try_recv().await {
                Ok(Some(message)) => match parse(message.channel(), message.payload()) {
                    Some(notification) => return notification,
                    None => tracing::warn!(
                        channel = message.channel(),
                        payload = message.payload(),
                        "ignored a notification the store does not send"
                    ),
                },
                Ok(None) => self.lost("the connection closed"),
                Err(err) => self.lost(&err.to_string()),
            }
        }
    }

    /// Drops the connection; the next call to [`Notifications::next`] connects again.
    fn lost(&mut self, why: &str) {
        self.listener = None;
        // A connection that lived a while starts a new round of backoff.
        if self.connected_at.elapsed() > MAX_BACKOFF {
            self.backoff = MIN_BACKOFF;
        }
        tracing::warn!(
            "lost the connection that listens to the store's notifications ({why}); connecting again in {:?}",
            self.backoff
        );
    }

    async fn connect(&mut self) -> sqlx::Result<PgListener> {
        let mut listener = PgListener::connect(&self.url).await?;
        // A lost connection is ours to re-establish, so that we know when it happened.
        listener.eager_reconnect(false);
        listener.listen_all([TASKS_CHANNEL, EVENTS_CHANNEL]).await?;
        self.connected_at = Instant::now();
        Ok(listener)
    }
}

/// The notification a channel's payload stands for.
fn parse(channel: &str, payload: &str) -> Option<Notification> {
    match channel {
        TASKS_CHANNEL => Some(Notification::TaskOpened {
            task_id: payload.to_owned(),
        }),
        EVENTS_CHANNEL => {
            // The id comes first: it has no `:`, a task id might.
            let (event_id, task_id) = payload.split_once(':')?;
            Some(Notification::EventsAdded {
                task_id: task_id.to_owned(),
                event_id: event_id.parse().ok()?,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_into_notifications() {
        assert_eq!(
            parse(TASKS_CHANNEL, "t-1"),
            Some(Notification::TaskOpened {
                task_id: "t-1".into()
            })
        );
        assert_eq!(
            parse(EVENTS_CHANNEL, "42:a:b"),
            Some(Notification::EventsAdded {
                task_id: "a:b".into(),
                event_id: 42
            })
        );
        assert_eq!(parse(EVENTS_CHANNEL, "x:t"), None);
        assert_eq!(parse(EVENTS_CHANNEL, "42"), None);
        assert_eq!(parse("other", "t"), None);
    }
}
