//! On SQLite, what a task's secrets were outlives the row that forgets them: every write of
//! the `secrets` column leaves a page image in the write-ahead log (`-wal`) until a
//! checkpoint copies the current pages into the database file and the log is written over,
//! which may take long. [`Scrubber`] runs `PRAGMA wal_checkpoint(TRUNCATE)` once secrets
//! have been dropped: the current pages (the secrets gone, and, with `secure_delete` on
//! every connection, the space they took zeroed) replace the old ones in the database file,
//! and the log is cut to zero bytes.
//!
//! A truncating checkpoint holds the write lock while it waits for readers to leave the
//! log, so it runs on a connection of its own whose busy timeout is [`ATTEMPT_BUSY_MS`]:
//! an attempt stops other writers that long at most. An attempt that readers or a writer
//! prevented is retried in the background after a pause (logged at debug), so the caller
//! never waits longer than it chose to. One checkpoint serves every request made before it
//! started, so a burst of completions costs one checkpoint, not one each.
//!
//! Deliberately absent: anything for PostgreSQL, whose files hold only sealed secrets
//! there (the key is required), and for in-memory SQLite, which has no files.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor, Row};
use tokio::sync::watch;

use crate::error::Result;

/// How long a completion waits for the checkpoint that removes its secrets before it
/// returns (the checkpoint goes on in the background after that). Without other
/// activity a checkpoint takes milliseconds.
pub(crate) const COMPLETION_WAIT: Duration = Duration::from_millis(500);
/// The busy timeout of one checkpoint attempt.
const ATTEMPT_BUSY_MS: u64 = 50;
/// Pauses between attempts that were prevented; the last repeats while the store lives.
const RETRY_PAUSES_MS: [u64; 8] = [10, 25, 50, 100, 250, 500, 1_000, 5_000];
/// After this long without a successful checkpoint, a warning says so (once per episode).
const WARN_AFTER: Duration = Duration::from_secs(60);

/// Truncating checkpoints of one SQLite database, on request.
#[derive(Debug)]
pub(crate) struct Scrubber {
    /// How many checkpoints were requested.
    requested: watch::Sender<u64>,
    /// The number of requests the last successful checkpoint covered.
    done: watch::Receiver<u64>,
    pool: AnyPool,
    /// Tasks created here without secrets and given none since: ending one drops
    /// nothing, so it needs no scrub (a task not listed may hold secrets).
    secretless: Mutex<HashSet<String>>,
}

impl Scrubber {
    /// Starts the background task for the database at `url` (connected on first use).
    pub(crate) fn start(url: &str) -> Result<Self> {
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA secure_delete = ON").await?;
                    conn.execute(format!("PRAGMA busy_timeout = {ATTEMPT_BUSY_MS}").as_str())
                        .await?;
                    Ok(())
                })
            })
            .connect_lazy(url)?;
        let (requested, requests) = watch::channel(0);
        let (finished, done) = watch::channel(0);
        tokio::spawn(run(pool.clone(), requests, finished));
        Ok(Self {
            requested,
            done,
            pool,
            secretless: Mutex::default(),
        })
    }

    /// Notes whether a task was just created without secrets, or was given some.
    pub(crate) fn note_secrets(&self, task_id: &str, any: bool) {
        let mut secretless = self.secretless.lock().unwrap_or_else(|e| e.into_inner());
        match any {
            false => secretless.insert(task_id.to_owned()),
            true => secretless.remove(task_id),
        };
    }

    /// Whether ending the task drops secrets; `forget` when it ends for good.
    pub(crate) fn drops_secrets(&self, task_id: &str, forget: bool) -> bool {
        let mut secretless = self.secretless.lock().unwrap_or_else(|e| e.into_inner());
        match forget {
            true => !secretless.remove(task_id),
            false => !secretless.contains(task_id),
        }
    }

    /// Asks for a checkpoint covering everything committed so far, and waits up to `wait`
    /// for it.
    pub(crate) async fn scrub(&self, wait: Duration) {
        let mut target = 0;
        self.requested.send_modify(|n| {
            *n += 1;
            target = *n;
        });
        self.wait_for(target, wait).await;
    }

    /// Waits up to `wait` for the checkpoints already asked for (a cancel's, say), asking
    /// for none: what is committed now holds no secret that a requested one would not
    /// remove.
    pub(crate) async fn settle(&self, wait: Duration) {
        let target = *self.requested.borrow();
        self.wait_for(target, wait).await;
    }

    async fn wait_for(&self, target: u64, wait: Duration) {
        if wait.is_zero() || *self.done.borrow() >= target {
            return;
        }
        let mut done = self.done.clone();
        if tokio::time::timeout(wait, done.wait_for(|n| *n >= target))
            .await
            .is_err()
        {
            tracing::debug!(
                "the write-ahead log was not truncated within {wait:?}; it will be in the background"
            );
        }
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

/// Serves requests until the store is dropped or closed.
async fn run(pool: AnyPool, mut requests: watch::Receiver<u64>, done: watch::Sender<u64>) {
    while requests.changed().await.is_ok() {
        let started = Instant::now();
        let mut warned = false;
        for attempt in 0.. {
            let target = *requests.borrow_and_update();
            match checkpoint(&pool).await {
                Ok(None) => {
                    done.send_replace(target);
                    break;
                }
                Ok(Some((log, checkpointed))) => tracing::debug!(
                    attempt,
                    log,
                    checkpointed,
                    "readers or a writer prevented truncating the write-ahead log; retrying"
                ),
                Err(_) if pool.is_closed() => return,
                Err(err) => tracing::debug!(attempt, "checkpoint failed, retrying: {err}"),
            }
            if !warned && started.elapsed() > WARN_AFTER {
                warned = true;
                tracing::warn!(
                    "the SQLite write-ahead log could not be truncated for {WARN_AFTER:?}: readers \
                     keep using it, and values of dropped task secrets stay in it until it is"
                );
            }
            let last = RETRY_PAUSES_MS.len() - 1;
            if attempt >= last && requests.has_changed().is_err() {
                return; // the store is gone and the retries are spent
            }
            let pause = RETRY_PAUSES_MS[attempt.min(last)];
            tokio::time::sleep(Duration::from_millis(pause)).await;
            if pool.is_closed() {
                return;
            }
        }
    }
}

/// One attempt: `None` when the log was checkpointed whole and truncated, else the pages
/// in the log and how many of them reached the database file.
async fn checkpoint(pool: &AnyPool) -> Result<Option<(i64, i64)>> {
    let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(pool)
        .await?;
    let busy: i64 = row.try_get(0)?;
    let log: i64 = row.try_get(1)?;
    let checkpointed: i64 = row.try_get(2)?;
    Ok((busy != 0 || log != checkpointed).then_some((log, checkpointed)))
}
