//! The step's log: the WIT `host.log` import and the guest's stdout and stderr, charged to
//! the step's budget (bytes plus a per-line overhead, and lines), with control characters
//! other than newline and tab removed, so a message cannot rewrite what a terminal shows
//! (a newline stays: Backstage's own messages span lines, and events carry them as JSON;
//! the server's log escapes them).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime::component::Linker;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use super::{Capability, StepSetup};
use crate::budget::{LimitExceeded, Meter, StepBudget};
use crate::limits::LOG_LINE_OVERHEAD_BYTES;
use crate::step::{LogLevel, StepFailure, StepHost, StepState, StepUsage};

/// Lines kept from stderr to explain a crash (a Rust panic message, say).
const STDERR_TAIL_BYTES: usize = 2048;

/// Per-step state of the log: where the step's lines go.
pub(crate) struct Logs {
    sink: Arc<LogSink>,
    budget: Arc<StepBudget>,
}

impl Capability for Logs {
    /// `host.log` is linked with the rest of the `host` interface (`host_calls.rs`), and
    /// stdout and stderr are wasmtime-wasi's: there is nothing of its own to link.
    fn link(_linker: &mut Linker<StepState>) -> wasmtime::Result<()> {
        Ok(())
    }

    /// While a plugin describes itself, what it prints goes nowhere.
    fn prepare(setup: &StepSetup<'_>, wasi: &mut WasiCtxBuilder) -> Result<Self, StepFailure> {
        let sink = LogSink::new(setup.host.clone(), setup.budget.clone());
        if setup.place.is_some() {
            wasi.stdout(GuestOutput::stdout(sink.clone()))
                .stderr(GuestOutput::stderr(sink.clone()));
        }
        Ok(Self {
            sink,
            budget: setup.budget.clone(),
        })
    }

    fn account(&self, usage: &mut StepUsage) {
        usage.log_lines = self.budget.used(Meter::LogLines);
        usage.log_bytes = self.budget.used(Meter::LogBytes);
    }
}

impl Logs {
    pub(crate) fn sink(&self) -> &Arc<LogSink> {
        &self.sink
    }
}

/// Forwards log lines to the [`StepHost`] while the step's budget allows.
pub(crate) struct LogSink {
    host: Arc<dyn StepHost>,
    budget: Arc<StepBudget>,
    stderr_tail: Mutex<String>,
}

impl LogSink {
    pub(crate) fn new(host: Arc<dyn StepHost>, budget: Arc<StepBudget>) -> Arc<Self> {
        Arc::new(Self {
            host,
            budget,
            stderr_tail: Mutex::new(String::new()),
        })
    }

    /// Logs one line without its control characters, charging it to the budget.
    pub(crate) fn line(&self, level: LogLevel, message: &str) -> Result<(), LimitExceeded> {
        let message = without_control_characters(message);
        self.budget.charge(Meter::LogLines, 1)?;
        self.budget.charge(
            Meter::LogBytes,
            message.len() as u64 + LOG_LINE_OVERHEAD_BYTES,
        )?;
        self.host.log(level, &message);
        Ok(())
    }

    /// The end of what the guest wrote to stderr.
    pub(crate) fn stderr_tail(&self) -> String {
        self.stderr_tail.lock().expect("stderr tail lock").clone()
    }

    fn remember_stderr(&self, line: &str) {
        let mut tail = self.stderr_tail.lock().expect("stderr tail lock");
        tail.push_str(line);
        tail.push('\n');
        if tail.len() > STDERR_TAIL_BYTES {
            let mut cut = tail.len() - STDERR_TAIL_BYTES;
            while !tail.is_char_boundary(cut) {
                cut += 1;
            }
            tail.drain(..cut);
        }
    }
}

/// stdout or stderr of the guest, split into lines for the log.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    sink: Arc<LogSink>,
    stderr: bool,
}

impl GuestOutput {
    pub(crate) fn stdout(sink: Arc<LogSink>) -> Self {
        Self {
            sink,
            stderr: false,
        }
    }

    pub(crate) fn stderr(sink: Arc<LogSink>) -> Self {
        Self { sink, stderr: true }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            output: self.clone(),
            pending: Vec::new(),
        })
    }
}

struct LineWriter {
    output: GuestOutput,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self, line: &[u8]) -> io::Result<()> {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        let (level, sink) = if self.output.stderr {
            (LogLevel::Warn, &self.output.sink)
        } else {
            (LogLevel::Info, &self.output.sink)
        };
        if self.output.stderr {
            sink.remember_stderr(text);
        }
        sink.line(level, text)
            .map_err(|LimitExceeded| io::Error::other("log limit exceeded"))
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            if let Err(err) = self.emit(&line[..line.len() - 1]) {
                return Poll::Ready(Err(err));
            }
        }
        // A guest that never writes a newline is still bounded by the log budget.
        if self.pending.len() as u64 > 64 * 1024 {
            let line = std::mem::take(&mut self.pending);
            if let Err(err) = self.emit(&line) {
                return Poll::Ready(Err(err));
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            if let Err(err) = self.emit(&line) {
                return Poll::Ready(Err(err));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            let _ = self.emit(&line);
        }
    }
}

/// The line with control characters (C0 but newline and tab, DEL, C1) removed: no escape
/// sequence, carriage return or backspace reaches an event, a log or a terminal.
pub(crate) fn without_control_characters(line: &str) -> std::borrow::Cow<'_, str> {
    if line.chars().any(is_removed) {
        std::borrow::Cow::Owned(line.chars().filter(|c| !is_removed(*c)).collect())
    } else {
        std::borrow::Cow::Borrowed(line)
    }
}

fn is_removed(c: char) -> bool {
    c.is_control() && c != '\t' && c != '\n'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_removed_and_tabs_kept() {
        assert_eq!(
            without_control_characters("a\u{1b}[31mred\u{1b}[0m\nnext: line\r\tend\u{9b}\u{8}"),
            "a[31mred[0m\nnext: line\tend"
        );
        assert!(matches!(
            without_control_characters("plain"),
            std::borrow::Cow::Borrowed("plain")
        ));
    }
}
