//! The sandbox's refusals during one step.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::budget::{Meter, StepBudget};

/// Sandbox denials seen during one step, shared by every capability of that step. Each
/// refusal is charged to the step's budget (`maxDenials`); each distinct one is logged
/// once, so a guest probing in a loop costs neither the host's log nor its time.
#[derive(Debug, Clone)]
pub struct Denials {
    inner: Arc<Mutex<DenialLog>>,
    budget: Arc<StepBudget>,
}

#[derive(Debug, Default)]
struct DenialLog {
    /// Distinct messages, first first.
    messages: Vec<String>,
    seen: HashSet<String>,
}

/// Refused guest operations, by kind; `scaffolder serve` exports it as
/// `scaffolder_sandbox_denials_total`.
pub const DENIALS_METRIC: &str = "scaffolder_sandbox_denials_total";

/// The kind of a denial, from the start of its message (each capability words its own).
fn denial_kind(message: &str) -> &'static str {
    const KINDS: &[(&str, &str)] = &[
        ("access outside the workspace", "filesystem"),
        ("write to the read-only template directory", "filesystem"),
        ("TCP connection to", "network"),
        ("TCP peer", "network"),
        ("socket use", "network"),
        ("name lookup of", "network"),
        ("outbound HTTP", "http"),
        ("secret '", "secret"),
    ];
    KINDS
        .iter()
        .find(|(start, _)| message.starts_with(start))
        .map_or("other", |(_, kind)| kind)
}

impl Denials {
    pub(crate) fn new(budget: Arc<StepBudget>) -> Self {
        Self {
            inner: Arc::default(),
            budget,
        }
    }

    /// Records a denial; the message names what was refused.
    pub fn record(&self, message: String) {
        metrics::counter!(DENIALS_METRIC, "kind" => denial_kind(&message)).increment(1);
        if self.budget.charge(Meter::Denials, 1).is_err() {
            // The step is being stopped; what it tries meanwhile is not worth a line.
            return;
        }
        let mut log = self.inner.lock().expect("denials lock is never poisoned");
        if log.seen.insert(message.clone()) {
            tracing::warn!(target: "scaffolder::sandbox", "{message}");
            log.messages.push(message);
        }
    }

    /// The distinct denials so far, first first.
    pub fn all(&self) -> Vec<String> {
        self.inner
            .lock()
            .expect("denials lock is never poisoned")
            .messages
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_are_counted_by_the_capability_that_refused() {
        assert_eq!(
            denial_kind("access outside the workspace denied: /etc"),
            "filesystem"
        );
        assert_eq!(
            denial_kind("TCP connection to 10.0.0.1:80 denied: x"),
            "network"
        );
        assert_eq!(denial_kind("outbound HTTP to https://x denied"), "http");
        assert_eq!(denial_kind("secret 'token' denied: x"), "secret");
        assert_eq!(denial_kind("something new"), "other");
    }
}
