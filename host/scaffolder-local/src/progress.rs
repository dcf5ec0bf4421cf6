//! Live progress of a local run on stderr: a spinner per running step (on a terminal),
//! the step's log lines under it, and one line per finished step. Colours only when the
//! stream is a terminal (and `NO_COLOR` is unset); otherwise plain lines, ANSI removed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value as Json;
use tokio::sync::mpsc::UnboundedReceiver;

/// Styling for one output stream.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    colors: bool,
    terminal: bool,
}

impl Style {
    pub fn stderr() -> Self {
        Self {
            colors: console::colors_enabled_stderr() && !no_color(),
            terminal: console::Term::stderr().is_term(),
        }
    }

    pub fn stdout() -> Self {
        Self {
            colors: console::colors_enabled() && !no_color(),
            terminal: console::Term::stdout().is_term(),
        }
    }

    fn paint(&self, style: console::Style, text: &str) -> String {
        if self.colors {
            style.force_styling(true).apply_to(text).to_string()
        } else {
            text.to_owned()
        }
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint(console::Style::new().bold(), text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint(console::Style::new().dim(), text)
    }

    fn green(&self, text: &str) -> String {
        self.paint(console::Style::new().green(), text)
    }

    fn yellow(&self, text: &str) -> String {
        self.paint(console::Style::new().yellow(), text)
    }

    fn red(&self, text: &str) -> String {
        self.paint(console::Style::new().red().bold(), text)
    }

    /// A log line as the runner recorded it (winston's colours), fit for this stream.
    fn log_line(&self, message: &str) -> String {
        if self.colors {
            message.to_owned()
        } else {
            console::strip_ansi_codes(message).into_owned()
        }
    }
}

/// A dry-run response (`{ log: [{ body: { message } }], ... }`) for `--json`: the server
/// keeps winston's colours in `log` for Backstage's log viewer, but a program reading the
/// command's JSON wants the messages as plain text.
pub fn without_log_colours(mut response: Json) -> Json {
    if let Some(events) = response.get_mut("log").and_then(Json::as_array_mut) {
        for event in events {
            if let Some(message) = event.pointer_mut("/body/message")
                && let Some(text) = message.as_str()
            {
                *message = Json::String(console::strip_ansi_codes(text).into_owned());
            }
        }
    }
    response
}

/// <https://no-color.org>: a set, non-empty `NO_COLOR` turns colours off.
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Follows a run's events and draws them.
pub struct Progress {
    style: Style,
    /// Step id → name, for steps the events name only by id.
    names: HashMap<String, String>,
    running: Option<(String, Instant, ProgressBar)>,
}

impl Progress {
    pub fn new(style: Style, steps: Vec<(String, String)>) -> Self {
        Self {
            style,
            names: steps.into_iter().collect(),
            running: None,
        }
    }

    /// Draws every event until the run drops its sender.
    pub async fn follow(mut self, mut events: UnboundedReceiver<Json>) {
        while let Some(body) = events.recv().await {
            self.event(&body);
        }
        if let Some((_, _, bar)) = self.running.take() {
            bar.finish_and_clear();
        }
    }

    fn event(&mut self, body: &Json) {
        let message = body
            .get("message")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let step_id = body.get("stepId").and_then(Json::as_str);
        let status = body.get("status").and_then(Json::as_str);
        match (step_id, status) {
            (Some(step_id), Some("processing")) => self.start(step_id),
            (Some(step_id), Some(status)) => self.end(step_id, status, message),
            (Some(_), None) => {
                let line = self.style.log_line(message);
                self.print(&format!("    {}", line.replace('\n', "\n    ")));
            }
            // Task-level lines ("Starting up task with N steps") count Backstage's hidden
            // extract step; the command prints its own header instead.
            (None, _) => {}
        }
    }

    fn name<'a>(&'a self, step_id: &'a str) -> &'a str {
        self.names
            .get(step_id)
            .map(String::as_str)
            .unwrap_or(step_id)
    }

    fn start(&mut self, step_id: &str) {
        let name = self.name(step_id).to_owned();
        let bar = if self.style.terminal {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(name);
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        } else {
            eprintln!("• {name}");
            ProgressBar::hidden()
        };
        self.running = Some((step_id.to_owned(), Instant::now(), bar));
    }

    fn end(&mut self, step_id: &str, status: &str, message: &str) {
        let elapsed = match self.running.take() {
            Some((id, started, bar)) if id == step_id => {
                bar.finish_and_clear();
                Some(started.elapsed())
            }
            Some(other) => {
                self.running = Some(other);
                None
            }
            None => None,
        };
        let name = self.name(step_id).to_owned();
        let style = self.style;
        let line = match status {
            "completed" => {
                let time = elapsed
                    .map(|e| style.dim(&format!(" {}", duration(e))))
                    .unwrap_or_default();
                format!("{} {name}{time}", style.green("✔"))
            }
            "skipped" => format!("{} {name} {}", style.yellow("↷"), style.dim(message)),
            "failed" => format!(
                "{} {name}\n    {}",
                style.red("✖"),
                message.replace('\n', "\n    ")
            ),
            _ => format!("  {name}: {message}"),
        };
        self.print(&line);
    }

    /// A line above the spinner, or plain when there is none.
    fn print(&self, line: &str) {
        match &self.running {
            Some((_, _, bar)) if self.style.terminal => bar.suspend(|| eprintln!("{line}")),
            _ => eprintln!("{line}"),
        }
    }
}

/// `850ms`, `2.4s`.
fn duration(elapsed: Duration) -> String {
    if elapsed < Duration::from_secs(1) {
        format!("{}ms", elapsed.as_millis())
    } else {
        format!("{:.1}s", elapsed.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::without_log_colours;

    #[test]
    fn json_log_messages_lose_their_colours_and_nothing_else_changes() {
        let response = json!({
            "log": [
                { "body": { "message": "Beginning step Log", "stepId": "log" } },
                { "body": { "message": "\u{1b}[32minfo\u{1b}[39m: hi \u{1b}[1mthere\u{1b}[0m" } },
            ],
            "output": { "text": "\u{1b}[31mkept\u{1b}[0m" },
        });
        let plain = without_log_colours(response.clone());
        assert_eq!(plain["log"][0], response["log"][0]);
        assert_eq!(plain["log"][1]["body"]["message"], "info: hi there");
        assert_eq!(plain["output"], response["output"]);
    }
}
