//! Per-plugin resource limits, set by the operator, enforced on every step.

use serde::{Deserialize, Serialize};

/// Limits of one step of a plugin. Units are in the field names.
///
/// Every cost a guest can make the host bear is bounded here: its own memory and time,
/// and what the host stores or holds on its behalf (log lines, secrets, checkpoints,
/// refused operations, open handles, workspace files). A step that exceeds one fails
/// with [`StepFailureKind::LimitExceeded`](crate::StepFailureKind) and a message naming
/// the limit and the key that raises it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory the guest may grow to.
    pub memory_mib: u64,
    /// Wall-clock time from instantiation to the step's result.
    pub timeout_secs: u64,
    /// Bytes of log lines (including stdout and stderr) one step may write; each line
    /// also costs [`LOG_LINE_OVERHEAD_BYTES`], so empty lines are not free.
    pub max_log_bytes: u64,
    /// Log lines one step may write.
    pub max_log_lines: u64,
    /// Bytes of the output JSON one step may return.
    pub max_output_bytes: u64,
    /// Task secrets one step may add (`host.add-secret`).
    pub max_secrets: u64,
    /// Bytes (names and values) of the task secrets one step may add.
    pub max_secret_bytes: u64,
    /// Checkpoints one step may write (`host.checkpoint-set`, each call counts).
    pub max_checkpoints: u64,
    /// Bytes (keys and JSON values) of the checkpoints one step may write.
    pub max_checkpoint_bytes: u64,
    /// Operations the sandbox may refuse before the step is stopped.
    pub max_denials: u64,
    /// Handles (files, directories, streams, sockets, requests) open at once; each open
    /// file or socket is a descriptor of the host process.
    pub max_open_handles: u64,
    /// Bytes of files in the task workspace (apparent sizes, so sparse files count whole).
    pub max_workspace_bytes: u64,
    /// Files, directories and links in the task workspace.
    pub max_workspace_files: u64,
}

/// What each log line costs beyond its bytes: the event row, its JSON and its index.
pub const LOG_LINE_OVERHEAD_BYTES: u64 = 64;

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mib: 256,
            timeout_secs: 600,
            max_log_bytes: 1 << 20,
            max_log_lines: 10_000,
            max_output_bytes: 4 << 20,
            max_secrets: 32,
            max_secret_bytes: 64 << 10,
            max_checkpoints: 256,
            max_checkpoint_bytes: 1 << 20,
            max_denials: 100,
            max_open_handles: 256,
            max_workspace_bytes: 1 << 30,
            max_workspace_files: 100_000,
        }
    }
}

impl Limits {
    pub(crate) fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }
}

/// The store's resource limiter: caps linear memory and remembers when the guest hit it,
/// so the step's failure can say so instead of reporting the trap that follows.
pub(crate) struct StepLimiter {
    memory_bytes: usize,
    pub(crate) memory_exceeded: bool,
    /// Linear memory the step's instances hold, all memories together (wasmtime asks
    /// here when a memory is created too, and memories never shrink).
    pub(crate) linear_memory_bytes: usize,
}

/// Table elements a guest may grow to; generous for any real program.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl StepLimiter {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            memory_bytes: limits.memory_bytes(),
            memory_exceeded: false,
            linear_memory_bytes: 0,
        }
    }
}

impl wasmtime::ResourceLimiter for StepLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_exceeded = true;
            return Ok(false);
        }
        self.linear_memory_bytes += desired.saturating_sub(current);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Human-readable size for messages: `64 MiB`, `512 KiB`, `100 bytes`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_picks_the_largest_exact_unit() {
        assert_eq!(human_bytes(64 << 20), "64 MiB");
        assert_eq!(human_bytes(512 << 10), "512 KiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
    }

    #[test]
    fn limits_parse_from_camel_case_and_reject_unknown_keys() {
        let limits: Limits =
            serde_json::from_str(r#"{"memoryMib": 64, "timeoutSecs": 2}"#).unwrap();
        assert_eq!(limits.memory_mib, 64);
        assert_eq!(limits.timeout_secs, 2);
        assert_eq!(limits.max_log_bytes, Limits::default().max_log_bytes);
        assert!(serde_json::from_str::<Limits>(r#"{"memory": 64}"#).is_err());
    }
}
