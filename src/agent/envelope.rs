//! An exec's result as a type: its [`State`], counts and kept output ([`Envelope`]).
//!
//! Built straight from the engine's [`Finished`]; serialized only at the edge, in an agent answer
//! or MCP's structured result (the shape is `docs/agent-protocol.md`'s result envelope); the
//! server log and MCP's text read its fields.
//! Stream events ([`Event`]) and `exec.read`'s answer ([`ReadAnswer`]) carry the same parts.

use serde::Serialize;
use serde::ser::SerializeMap;

use crate::engine::{End, ExitStatus, Finished, signal_name};

/// How an exec stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Running,
    /// Exited with this code (`None`: the engine could not tell).
    Exited(Option<i64>),
    /// Died of this signal (the engines report a death by signal N as 128+N).
    Signaled(Option<&'static str>),
    TimedOut,
    Cancelled,
    /// The engine could not start it; why.
    FailedToStart(String),
    /// It started, then the engine was lost (the daemon gone or unreachable): how it ends is not
    /// known, and it may still run in the container; why.
    EngineLost(String),
}

impl State {
    /// The engine's result, as the protocol states it.
    pub fn from_finished(finished: &Finished) -> Self {
        match (finished.end, finished.status) {
            (End::TimedOut(_), _) => Self::TimedOut,
            (End::Cancelled, _) => Self::Cancelled,
            (_, status) => match (status.death_signal(), status) {
                (Some(signal), _) => Self::Signaled(signal_name(signal)),
                (None, ExitStatus::Code(code)) => Self::Exited(Some(code)),
                (None, _) => Self::Exited(None),
            },
        }
    }

    /// The protocol's word for it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Exited(_) => "exited",
            Self::Signaled(_) => "signaled",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::FailedToStart(_) => "failed_to_start",
            Self::EngineLost(_) => "engine_lost",
        }
    }

    pub fn exit_code(&self) -> Option<i64> {
        match self {
            Self::Exited(code) => *code,
            _ => None,
        }
    }

    pub fn signal(&self) -> Option<&'static str> {
        match self {
            Self::Signaled(signal) => *signal,
            _ => None,
        }
    }
}

/// How an exec ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub state: State,
    pub duration_ms: u64,
}

/// Bytes as the protocol gives them: text when they are UTF-8, else base64 (`NAME_b64`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Text(String),
    Bytes(Vec<u8>),
}

impl Data {
    pub fn new(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::Text(text.to_owned()),
            Err(_) => Self::Bytes(bytes.to_vec()),
        }
    }

    /// Puts the data under `name` as text; bytes that are not UTF-8 also go whole as base64
    /// (`name_b64`), the text then having U+FFFD for each bad sequence and
    /// `name_replaced_bytes` saying how many bytes that replaced.
    pub fn put<M: SerializeMap>(&self, name: &str, map: &mut M) -> Result<(), M::Error> {
        use base64::Engine as _;
        match self {
            Self::Text(text) => map.serialize_entry(name, text),
            Self::Bytes(bytes) => {
                let (text, replaced) = super::text::lossy(bytes);
                map.serialize_entry(name, &text)?;
                map.serialize_entry(&format!("{name}_replaced_bytes"), &replaced)?;
                map.serialize_entry(
                    &format!("{name}_b64"),
                    &base64::engine::general_purpose::STANDARD.encode(bytes),
                )
            }
        }
    }

    /// The data as text: UTF-8 as it is, else with U+FFFD for each bad sequence; and how many
    /// bytes were replaced.
    pub fn text(&self) -> (std::borrow::Cow<'_, str>, u64) {
        match self {
            Self::Text(text) => (std::borrow::Cow::Borrowed(text), 0),
            Self::Bytes(bytes) => {
                let (text, replaced) = super::text::lossy(bytes);
                (std::borrow::Cow::Owned(text), replaced)
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Self::Text(text) => text.is_empty(),
            Self::Bytes(bytes) => bytes.is_empty(),
        }
    }
}

/// One stream's kept output as the envelope shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// Head and tail, joined by a line naming what was left out.
    pub data: Data,
    /// Bytes were left out between head and tail.
    pub truncated: bool,
    /// Bytes written in all.
    pub bytes: u64,
    /// Where in `data` bytes were left out: the range the marker line takes (an empty one at
    /// the join when the data are bytes).
    pub cut: Option<std::ops::Range<usize>>,
}

/// What of the output an envelope carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Both streams' kept output.
    Kept { stdout: Shown, stderr: Shown },
    /// Only the byte counts (stream ends, `exec.read`).
    Counts { stdout: u64, stderr: u64 },
    /// Nothing (a start that has not ended yet).
    None,
}

/// An exec's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub exec_id: String,
    pub state: State,
    /// Set once it has ended.
    pub duration_ms: Option<u64>,
    pub output: Output,
    /// A line the caller should read first (the session moved to a rebuilt container).
    pub note: Option<String>,
}

impl Envelope {
    /// Bytes written on stdout and stderr, when the envelope carries them.
    pub fn bytes(&self) -> Option<(u64, u64)> {
        match &self.output {
            Output::Kept { stdout, stderr } => Some((stdout.bytes, stderr.bytes)),
            Output::Counts { stdout, stderr } => Some((*stdout, *stderr)),
            Output::None => None,
        }
    }

    fn put<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("exec_id", &self.exec_id)?;
        if let Some(note) = &self.note {
            map.serialize_entry("note", note)?;
        }
        map.serialize_entry("state", self.state.name())?;
        if let Some(duration_ms) = self.duration_ms {
            map.serialize_entry("exit_code", &self.state.exit_code())?;
            map.serialize_entry("signal", &self.state.signal())?;
            map.serialize_entry("duration_ms", &duration_ms)?;
            if let State::FailedToStart(message) | State::EngineLost(message) = &self.state {
                map.serialize_entry("message", message)?;
            }
        }
        match &self.output {
            Output::Kept { stdout, stderr } => {
                for (name, shown) in [("stdout", stdout), ("stderr", stderr)] {
                    map.serialize_entry(&format!("{name}_truncated"), &shown.truncated)?;
                    map.serialize_entry(&format!("{name}_bytes"), &shown.bytes)?;
                    shown.data.put(name, map)?;
                }
            }
            Output::Counts { stdout, stderr } => {
                map.serialize_entry("stdout_bytes", stdout)?;
                map.serialize_entry("stderr_bytes", stderr)?;
            }
            Output::None => {}
        }
        Ok(())
    }
}

impl Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.put(&mut map)?;
        map.end()
    }
}

/// New output of one stream since an offset (`exec.read`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since {
    pub data: Data,
    /// Bytes no longer kept between the offset asked for and `data`.
    pub skipped: u64,
    /// The offset to read from next.
    pub offset: u64,
}

/// `exec.read`'s answer: the envelope's state and counts, and each stream's new output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadAnswer {
    pub envelope: Envelope,
    pub stdout: Since,
    pub stderr: Since,
    pub done: bool,
    /// A PTY-mode exec's screen as it is now.
    pub screen: Option<crate::agent::screen::Shot>,
}

impl Serialize for ReadAnswer {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.envelope.put(&mut map)?;
        for (name, since) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            since.data.put(name, &mut map)?;
            map.serialize_entry(&format!("{name}_skipped"), &since.skipped)?;
            map.serialize_entry(&format!("{name}_offset"), &since.offset)?;
        }
        map.serialize_entry("done", &self.done)?;
        if let Some(screen) = &self.screen {
            map.serialize_entry("screen", screen)?;
        }
        map.end()
    }
}

/// Which of the command's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// An `exec.stream` event (the transport adds the request's `id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Start {
        exec_id: String,
    },
    Output {
        stream: Stream,
        data: Data,
        offset: u64,
    },
    Keepalive,
    /// The last line: the envelope with counts.
    End(Envelope),
}

impl Event {
    /// The event as its line, under the request's `id`.
    pub fn line(&self, id: &serde_json::Value) -> serde_json::Value {
        struct Line<'a>(&'a Event, &'a serde_json::Value);
        impl Serialize for Line<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("id", self.1)?;
                match self.0 {
                    Event::Start { exec_id } => {
                        map.serialize_entry("event", "start")?;
                        map.serialize_entry("exec_id", exec_id)?;
                    }
                    Event::Output {
                        stream,
                        data,
                        offset,
                    } => {
                        map.serialize_entry("event", stream.name())?;
                        data.put("data", &mut map)?;
                        map.serialize_entry("offset", offset)?;
                    }
                    Event::Keepalive => map.serialize_entry("event", "keepalive")?,
                    Event::End(envelope) => {
                        map.serialize_entry("event", "end")?;
                        envelope.put(&mut map)?;
                    }
                }
                map.end()
            }
        }
        serde_json::to_value(Line(self, id)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn finished(status: ExitStatus, end: End) -> State {
        State::from_finished(&Finished { status, end })
    }

    #[test]
    fn states_come_from_the_engine_s_result() {
        assert_eq!(
            finished(ExitStatus::Code(3), End::Exited),
            State::Exited(Some(3))
        );
        assert_eq!(
            finished(ExitStatus::Code(143), End::Exited),
            State::Signaled(Some("TERM"))
        );
        assert_eq!(
            finished(ExitStatus::Signal(9), End::Exited),
            State::Signaled(Some("KILL"))
        );
        assert_eq!(
            finished(ExitStatus::Unknown, End::Exited),
            State::Exited(None)
        );
        assert_eq!(
            finished(
                ExitStatus::Code(143),
                End::TimedOut(std::time::Duration::from_secs(1))
            ),
            State::TimedOut
        );
        assert_eq!(
            finished(ExitStatus::Code(137), End::Cancelled),
            State::Cancelled
        );
    }

    #[test]
    fn the_envelope_s_json_is_the_protocol_s() {
        let envelope = Envelope {
            exec_id: "e1".into(),
            state: State::Exited(Some(0)),
            duration_ms: Some(48),
            output: Output::Kept {
                stdout: Shown {
                    data: Data::Text("hi\n".into()),
                    truncated: false,
                    bytes: 3,
                    cut: None,
                },
                stderr: Shown {
                    data: Data::new(&[0xff]),
                    truncated: false,
                    bytes: 1,
                    cut: None,
                },
            },
            note: None,
        };
        assert_eq!(
            serde_json::to_value(&envelope).unwrap(),
            json!({"exec_id": "e1", "state": "exited", "exit_code": 0, "signal": null,
                   "duration_ms": 48, "stdout_truncated": false, "stdout_bytes": 3,
                   "stdout": "hi\n", "stderr_truncated": false, "stderr_bytes": 1,
                   "stderr": "\u{fffd}", "stderr_replaced_bytes": 1, "stderr_b64": "/w=="})
        );
        let failed = Envelope {
            exec_id: "e2".into(),
            state: State::FailedToStart("Cannot run crun".into()),
            duration_ms: Some(1),
            output: Output::Counts {
                stdout: 0,
                stderr: 0,
            },
            note: None,
        };
        assert_eq!(
            Event::End(failed).line(&json!(7)),
            json!({"id": 7, "event": "end", "exec_id": "e2", "state": "failed_to_start",
                   "exit_code": null, "signal": null, "duration_ms": 1,
                   "message": "Cannot run crun", "stdout_bytes": 0, "stderr_bytes": 0})
        );
        let running = Envelope {
            exec_id: "e3".into(),
            state: State::Running,
            duration_ms: None,
            output: Output::None,
            note: Some("moved".into()),
        };
        assert_eq!(
            serde_json::to_value(&running).unwrap(),
            json!({"exec_id": "e3", "note": "moved", "state": "running"})
        );
    }
}
