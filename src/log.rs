//! The one output path for diagnostics. Stdout belongs to the command; everything dcx has to
//! say goes to stderr through a [`Log`], as text or as the reference CLI's JSON events
//! (`{"type","level","timestamp","text"}`, one object per line), filtered by level.
//!
//! Text format: errors are printed as their message alone, one line, so scripts can match the
//! spec's texts exactly; debug and trace lines carry an ISO-8601 UTC timestamp, as the
//! reference's plain format does.

use std::io::Write;
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

impl From<crate::cli::LogLevel> for Level {
    fn from(level: crate::cli::LogLevel) -> Self {
        match level {
            crate::cli::LogLevel::Info => Level::Info,
            crate::cli::LogLevel::Debug => Level::Debug,
            crate::cli::LogLevel::Trace => Level::Trace,
        }
    }
}

impl From<crate::cli::LogFormat> for Format {
    fn from(format: crate::cli::LogFormat) -> Self {
        match format {
            crate::cli::LogFormat::Text => Format::Text,
            crate::cli::LogFormat::Json => Format::Json,
        }
    }
}

/// The diagnostics writer.
#[derive(Debug, Clone)]
pub struct Log {
    threshold: Level,
    format: Format,
}

impl Default for Log {
    fn default() -> Self {
        Self::new(Level::Info, Format::Text)
    }
}

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    level: u8,
    timestamp: u128,
    text: &'a str,
}

impl Log {
    pub fn new(threshold: Level, format: Format) -> Self {
        Self { threshold, format }
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
            Format::Json => json_line("text", level, text),
            Format::Text if level >= Level::Warning => format!("{}\n", text.trim_end()),
            Format::Text => format!(
                "[{}] {}\n",
                humantime::format_rfc3339_millis(SystemTime::now()),
                text.trim_end()
            ),
        };
        write_stderr(line.as_bytes());
    }

    /// The command's output as a JSON `raw` event (level 2, as the reference writes them).
    /// Callers pass whole UTF-8 text; splitting multi-byte sequences is theirs to avoid.
    pub fn raw_event(&self, text: &str) {
        write_stderr(json_line("raw", Level::Debug, text).as_bytes());
    }
}

fn json_line(kind: &str, level: Level, text: &str) -> String {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    let event = Event {
        kind,
        level: level as u8,
        timestamp,
        text,
    };
    let mut line = serde_json::to_string(&event).expect("a log event serialises");
    line.push('\n');
    line
}

fn write_stderr(bytes: &[u8]) {
    // A closed stderr must not turn a diagnostic into a crash.
    let _ = std::io::stderr().lock().write_all(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_events_have_the_reference_shape() {
        let line = json_line("text", Level::Error, "Dev container not found.");
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
    fn levels_filter() {
        let log = Log::new(Level::Info, Format::Json);
        assert!(!log.enabled(Level::Debug));
        assert!(log.enabled(Level::Error));
        assert!(Log::new(Level::Trace, Format::Text).enabled(Level::Trace));
    }
}
