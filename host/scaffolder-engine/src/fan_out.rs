//! What other replicas wrote to a shared PostgreSQL store, as it commits: the store's
//! notifications ([`scaffolder_store::Store::listen`]) turned into a wake-up of the
//! claim loop (a task became `open`) and announcements on the [`crate::EventBus`]
//! (events were added), so idle workers and open event streams act at once instead of
//! at their next poll.
//!
//! This process hears its own writes too: a wake-up then costs one claim that finds
//! nothing, and an announcement carries only the event id, which streams that sent the
//! event already ignore. Polling stays as the fallback; when the listener lost its
//! connection, whatever it missed is made up by waking everyone. SQLite has no
//! notifications, and one process per file: the loop ends at once.

use scaffolder_store::Notification;
use tokio_util::sync::CancellationToken;

use crate::Engine;

/// Passes the store's notifications on until `shutdown` fires.
pub(crate) async fn run(engine: Engine, shutdown: CancellationToken) {
    let listening = tokio::select! {
        listening = engine.store().listen() => listening,
        () = shutdown.cancelled() => return,
    };
    let Some(mut notifications) = listening else {
        return;
    };
    loop {
        let notification = tokio::select! {
            notification = notifications.next() => notification,
            () = shutdown.cancelled() => return,
        };
        match notification {
            Notification::TaskOpened { .. } => engine.inner.wake.notify_one(),
            Notification::EventsAdded { task_id, event_id } => {
                engine.bus().publish_stored(&task_id, event_id);
            }
            Notification::Reconnected => {
                engine.inner.wake.notify_one();
                engine.bus().publish_everywhere();
            }
        }
    }
}
