//! The one output path for diagnostics. Everything dcx has to say goes through a [`Log`], as
//! text or as the reference CLI's JSON events (`{"type","level","timestamp","text"}`, one object
//! per line), filtered by level, into the [`LogSink`] the front end installs: the CLI's writes
//! to its stderr, and so do `dcx serve`'s and `dcx mcp`'s, which the CLI starts. Nothing here
//! knows where the lines end up, or how the front end spells its options.
//!
//! Text format: errors are `error: <message>` and warnings `warning: <message>`, as uv and
//! cargo write them, so dcx's own words stand apart from the command's output; a next step is a
//! `hint: …` line after the error. The message is the spec's text, exactly. Info, debug and
//! trace lines carry an ISO-8601 UTC timestamp, as the reference's plain format does. JSON events
//! carry the message alone.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Levels with the reference's numbers (Trace 1 … Error 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace = 1,
    Debug = 2,
    Info = 3,
    Warning = 4,
    Error = 5,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Where log lines go: each call is one whole line (or event), newline included.
pub trait LogSink: Send + Sync {
    fn write_line(&self, line: &[u8]);

    /// The same, saying when the line could not be written (a reader that went away): for
    /// lines that carry the command's output.
    fn write_line_checked(&self, line: &[u8]) -> std::io::Result<()> {
        self.write_line(line);
        Ok(())
    }

    /// A step that may take a while has begun (`Some`, what it is) or ended (`None`). A sink
    /// for a person at a terminal may show it as a passing status line; others ignore it.
    fn progress(&self, _step: Option<&str>) {}
}

impl<F: Fn(&[u8]) + Send + Sync> LogSink for F {
    fn write_line(&self, line: &[u8]) {
        self(line);
    }
}

/// The diagnostics writer. Clones share the sink.
#[derive(Clone)]
pub struct Log {
    threshold: Level,
    format: Format,
    sink: Arc<dyn LogSink>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("threshold", &self.threshold)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    level: u8,
    timestamp: u128,
    text: &'a str,
    #[serde(rename = "startTimestamp", skip_serializing_if = "Option::is_none")]
    start_timestamp: Option<u128>,
}

/// A step in progress ([`Log::progress`]); ends when dropped.
pub struct Progress(Arc<dyn LogSink>);

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.progress(None);
    }
}

/// A started step, to be closed with [`Log::stop`].
#[derive(Debug)]
pub struct Started {
    text: String,
    at: SystemTime,
}

impl Log {
    pub fn new(threshold: Level, format: Format, sink: Arc<dyn LogSink>) -> Self {
        Self {
            threshold,
            format,
            sink,
        }
    }

    /// A log that keeps nothing (library use without diagnostics, tests).
    pub fn discard() -> Self {
        Self::new(Level::Error, Format::Text, Arc::new(|_: &[u8]| {}))
    }

    /// The same log, keeping only `level` and above (for a part whose finer diagnostics must
    /// not reach this sink).
    pub fn at_least(&self, level: Level) -> Self {
        Self {
            threshold: self.threshold.max(level),
            ..self.clone()
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn enabled(&self, level: Level) -> bool {
        level >= self.threshold
    }

    pub fn error(&self, text: &str) {
        self.text(Level::Error, text);
    }

    /// A next step for the error just reported: `hint: <text>` (a warning event in JSON).
    pub fn hint(&self, text: &str) {
        if !self.enabled(Level::Warning) {
            return;
        }
        let line = match self.format {
            Format::Json => json_line("text", Level::Warning, text, SystemTime::now(), None),
            Format::Text => format!("hint: {}\n", text.trim_end()),
        };
        self.sink.write_line(line.as_bytes());
    }

    /// Says that a step which may take a while runs (see [`LogSink::progress`]) until the
    /// returned guard is dropped.
    pub fn progress(&self, step: &str) -> Progress {
        self.sink.progress(Some(step));
        Progress(self.sink.clone())
    }

    pub fn info(&self, text: &str) {
        self.text(Level::Info, text);
    }

    pub fn warn(&self, text: &str) {
        self.text(Level::Warning, text);
    }

    pub fn debug(&self, text: &str) {
        self.text(Level::Debug, text);
    }

    pub fn trace(&self, text: &str) {
        self.text(Level::Trace, text);
    }

    fn text(&self, level: Level, text: &str) {
        if !self.enabled(level) {
            return;
        }
        let line = match self.format {
            Format::Json => json_line("text", level, text, SystemTime::now(), None),
            Format::Text if level >= Level::Error => format!("error: {}\n", text.trim_end()),
            Format::Text if level >= Level::Warning => format!("warning: {}\n", text.trim_end()),
            Format::Text => format!(
                "[{}] {}\n",
                humantime::format_rfc3339_millis(SystemTime::now()),
                text.trim_end()
            ),
        };
        self.sink.write_line(line.as_bytes());
    }

    /// Opens a step: `Start: <text>` (text) or a `start` event (JSON), at debug level.
    pub fn start(&self, text: &str) -> Started {
        let at = SystemTime::now();
        if self.enabled(Level::Debug) {
            let line = match self.format {
                Format::Json => json_line("start", Level::Debug, text, at, None),
                Format::Text => {
                    format!("[{}] Start: {text}\n", humantime::format_rfc3339_millis(at))
                }
            };
            self.sink.write_line(line.as_bytes());
        }
        Started {
            text: text.to_owned(),
            at,
        }
    }

    /// Closes a step: `Stop (N ms): <text>` or a `stop` event with `startTimestamp`.
    pub fn stop(&self, started: Started) {
        if !self.enabled(Level::Debug) {
            return;
        }
        let now = SystemTime::now();
        let line = match self.format {
            Format::Json => json_line(
                "stop",
                Level::Debug,
                &started.text,
                now,
                Some(epoch_millis(started.at)),
            ),
            Format::Text => format!(
                "[{}] Stop ({} ms): {}\n",
                humantime::format_rfc3339_millis(now),
                now.duration_since(started.at)
                    .unwrap_or_default()
                    .as_millis(),
                started.text
            ),
        };
        self.sink.write_line(line.as_bytes());
    }

    /// The command's output as a JSON `raw` event (level 2, as the reference writes them).
    /// Callers pass whole UTF-8 text; splitting multi-byte sequences is theirs to avoid.
    /// An error when the event could not be written (its reader went away).
    pub fn raw_event(&self, text: &str) -> std::io::Result<()> {
        self.sink.write_line_checked(
            json_line("raw", Level::Debug, text, SystemTime::now(), None).as_bytes(),
        )
    }
}

fn epoch_millis(at: SystemTime) -> u128 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis())
}

fn json_line(
    kind: &str,
    level: Level,
    text: &str,
    at: SystemTime,
    start_timestamp: Option<u128>,
) -> String {
    let event = Event {
        kind,
        level: level as u8,
        timestamp: epoch_millis(at),
        text,
        start_timestamp,
    };
    // Strings and numbers only: serialising cannot fail.
    let mut line = serde_json::to_string(&event).unwrap_or_default();
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_events_have_the_reference_shape() {
        let line = json_line(
            "text",
            Level::Error,
            "Dev container not found.",
            SystemTime::now(),
            None,
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 4);
        assert_eq!(value["type"], "text");
        assert_eq!(value["level"], 5);
        assert!(value["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
        assert_eq!(value["text"], "Dev container not found.");
        assert!(line.starts_with(r#"{"type":"text","level":5,"timestamp":"#));
    }

    #[test]
    fn stop_events_carry_the_start_timestamp() {
        let line = json_line(
            "stop",
            Level::Debug,
            "Run in container: true",
            UNIX_EPOCH + std::time::Duration::from_millis(2000),
            Some(1000),
        );
        insta::assert_snapshot!(line.trim_end(), @r#"{"type":"stop","level":2,"timestamp":2000,"text":"Run in container: true","startTimestamp":1000}"#);
    }

    #[test]
    fn levels_filter() {
        let lines = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let kept = lines.clone();
        let sink = move |line: &[u8]| {
            kept.lock()
                .unwrap()
                .push(String::from_utf8_lossy(line).into_owned());
        };
        let log = Log::new(Level::Info, Format::Text, Arc::new(sink));
        assert!(!log.enabled(Level::Debug));
        assert!(log.enabled(Level::Error));
        log.debug("hidden");
        log.warn("shown");
        log.error("failed");
        log.hint("do this");
        assert_eq!(
            *lines.lock().unwrap(),
            ["warning: shown\n", "error: failed\n", "hint: do this\n"]
        );
        assert!(Log::discard().enabled(Level::Error));
        assert!(!Log::discard().enabled(Level::Warning));
    }
}
