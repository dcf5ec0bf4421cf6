//! How long store calls take, through the `metrics` facade: a histogram
//! `scaffolder_store_query_duration_seconds{operation}` that `scaffolder serve` exports on
//! `/metrics`. Without an installed recorder a timer costs one `Instant::now()`.

use std::time::Instant;

/// The histogram every timed store call records into.
pub const QUERY_DURATION_METRIC: &str = "scaffolder_store_query_duration_seconds";

/// Records the time from [`Timer::start`] to its drop, so an early return or an error
/// is timed too.
pub(crate) struct Timer {
    operation: &'static str,
    started: Instant,
}

impl Timer {
    pub(crate) fn start(operation: &'static str) -> Self {
        Self {
            operation,
            started: Instant::now(),
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        metrics::histogram!(QUERY_DURATION_METRIC, "operation" => self.operation)
            .record(self.started.elapsed().as_secs_f64());
    }
}
