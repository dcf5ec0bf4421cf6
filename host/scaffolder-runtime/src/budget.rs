//! What one step has cost the host so far, against its [`Limits`].
//!
//! Every host call a guest can repeat is charged here before the host does the work:
//! log lines, added secrets, checkpoints, refused operations. The first limit exceeded
//! is remembered; the host call that hit it fails, and the epoch callback stops the
//! guest at its next tick whatever it does next, so a guest that ignores errors cannot
//! keep the host busy.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::limits::{Limits, human_bytes};

/// A metered cost of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Meter {
    LogBytes,
    LogLines,
    Secrets,
    SecretBytes,
    Checkpoints,
    CheckpointBytes,
    Denials,
}

const METERS: usize = 7;

impl Meter {
    fn index(self) -> usize {
        self as usize
    }

    fn max(self, limits: &Limits) -> u64 {
        match self {
            Meter::LogBytes => limits.max_log_bytes,
            Meter::LogLines => limits.max_log_lines,
            Meter::Secrets => limits.max_secrets,
            Meter::SecretBytes => limits.max_secret_bytes,
            Meter::Checkpoints => limits.max_checkpoints,
            Meter::CheckpointBytes => limits.max_checkpoint_bytes,
            Meter::Denials => limits.max_denials,
        }
    }

    /// `log limit of 1 MiB exceeded (...)`: the limit, its value and its key.
    fn message(self, max: u64) -> String {
        let (what, key) = match self {
            Meter::LogBytes => (format!("log limit of {}", human_bytes(max)), "maxLogBytes"),
            Meter::LogLines => (format!("log line limit of {max} lines"), "maxLogLines"),
            Meter::Secrets => (format!("secret limit of {max} added secrets"), "maxSecrets"),
            Meter::SecretBytes => (
                format!("secret size limit of {}", human_bytes(max)),
                "maxSecretBytes",
            ),
            Meter::Checkpoints => (
                format!("checkpoint limit of {max} writes"),
                "maxCheckpoints",
            ),
            Meter::CheckpointBytes => (
                format!("checkpoint size limit of {}", human_bytes(max)),
                "maxCheckpointBytes",
            ),
            Meter::Denials => (
                format!("denial limit of {max} refused operations"),
                "maxDenials",
            ),
        };
        limit_message(&what, key)
    }
}

/// The message of an exceeded limit: what it is and the key that raises it.
pub(crate) fn limit_message(what: &str, key: &str) -> String {
    format!("{what} exceeded (the operator can raise limits.{key} for this plugin)")
}

/// The costs of one step so far.
#[derive(Debug)]
pub(crate) struct StepBudget {
    limits: Limits,
    used: [AtomicU64; METERS],
    exceeded: OnceLock<String>,
}

/// A limit was reached; the step must stop. The message is in [`StepBudget::exceeded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LimitExceeded;

impl StepBudget {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            limits: limits.clone(),
            used: Default::default(),
            exceeded: OnceLock::new(),
        }
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Charges `amount` to `meter`; past its limit the step is over.
    pub(crate) fn charge(&self, meter: Meter, amount: u64) -> Result<(), LimitExceeded> {
        let max = meter.max(&self.limits);
        let before = self.used[meter.index()].fetch_add(amount, Ordering::Relaxed);
        if before.saturating_add(amount) > max {
            self.exceed(meter.message(max));
            return Err(LimitExceeded);
        }
        Ok(())
    }

    /// Charges one item to `count` and its `bytes` to `size`: a stored secret or
    /// checkpoint.
    pub(crate) fn charge_item(
        &self,
        count: Meter,
        size: Meter,
        bytes: usize,
    ) -> Result<(), LimitExceeded> {
        self.charge(count, 1)?;
        self.charge(size, bytes as u64)
    }

    /// What has been charged to `meter`, including a charge it refused.
    pub(crate) fn used(&self, meter: Meter) -> u64 {
        self.used[meter.index()].load(Ordering::Relaxed)
    }

    /// Records a limit the step exceeded; the first one is the step's failure.
    pub(crate) fn exceed(&self, message: String) {
        let _ = self.exceeded.set(message);
    }

    /// The first limit the step exceeded, if any.
    pub(crate) fn exceeded(&self) -> Option<&str> {
        self.exceeded.get().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_up_to_the_limit_and_names_the_first_one_exceeded() {
        let budget = StepBudget::new(&Limits {
            max_secrets: 2,
            max_log_lines: 1,
            ..Limits::default()
        });
        assert_eq!(budget.charge(Meter::Secrets, 1), Ok(()));
        assert_eq!(budget.charge(Meter::Secrets, 1), Ok(()));
        assert_eq!(budget.exceeded(), None);
        assert_eq!(budget.charge(Meter::Secrets, 1), Err(LimitExceeded));
        assert_eq!(budget.charge(Meter::LogLines, 2), Err(LimitExceeded));
        assert_eq!(
            budget.exceeded(),
            Some(
                "secret limit of 2 added secrets exceeded (the operator can raise limits.maxSecrets for this plugin)"
            )
        );
    }

    #[test]
    fn byte_limits_are_shown_in_their_largest_exact_unit() {
        let budget = StepBudget::new(&Limits::default());
        assert_eq!(
            budget.charge(Meter::CheckpointBytes, 2 << 20),
            Err(LimitExceeded)
        );
        assert!(
            budget
                .exceeded()
                .unwrap()
                .starts_with("checkpoint size limit of 1 MiB exceeded"),
        );
    }
}
