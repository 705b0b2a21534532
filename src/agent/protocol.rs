//! The agent protocol's wire shapes: requests, answers and error codes.
//!
//! A request is `{"id", "method", "params"}`; an answer `{"id", "ok": true, "data"}` or
//! `{"id", "ok": false, "error": {"code", "message"}}`; stream events `{"id", "event", …}`.
//! Parameters stay raw here until a method's own type takes them (`super::params`). JSON is
//! made only at the edge, from
//! typed values: an answer line by `methods::handle` (which the transports call), an event line by
//! the [`EventSink`]. `docs/agent-protocol.md` is the reference.

use serde_json::{Map, Value, json};

use crate::engine::{EngineError, ErrorKind};

/// The error codes of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadRequest,
    UnknownMethod,
    NoSuchSession,
    NoSuchExec,
    NoSuchContainer,
    NotRunning,
    SessionLimit,
    ExecLimit,
    SessionBusy,
    EngineError,
    Unauthorized,
    ShuttingDown,
    NoSuchFile,
    IsADirectory,
    NotADirectory,
    TooLarge,
    PermissionDenied,
    ConnectionLimit,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::UnknownMethod => "unknown_method",
            Self::NoSuchSession => "no_such_session",
            Self::NoSuchExec => "no_such_exec",
            Self::NoSuchContainer => "no_such_container",
            Self::NotRunning => "container_not_running",
            Self::SessionLimit => "session_limit",
            Self::ExecLimit => "exec_limit",
            Self::SessionBusy => "session_busy",
            Self::EngineError => "engine_error",
            Self::Unauthorized => "unauthorized",
            Self::ShuttingDown => "shutting_down",
            Self::NoSuchFile => "no_such_file",
            Self::IsADirectory => "is_a_directory",
            Self::NotADirectory => "not_a_directory",
            Self::TooLarge => "too_large",
            Self::PermissionDenied => "permission_denied",
            Self::ConnectionLimit => "connection_limit",
        }
    }

    /// The code of an engine failure ([`EngineError::kind`] is the one classification).
    pub fn of(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::NoSuchContainer => Self::NoSuchContainer,
            ErrorKind::NotRunning => Self::NotRunning,
            ErrorKind::BadInput => Self::BadRequest,
            ErrorKind::NoSuchPath => Self::NoSuchFile,
            ErrorKind::IsADirectory => Self::IsADirectory,
            ErrorKind::NotADirectory => Self::NotADirectory,
            ErrorKind::TooLarge => Self::TooLarge,
            ErrorKind::Denied => Self::PermissionDenied,
            ErrorKind::Permission | ErrorKind::Unreachable | ErrorKind::Engine => Self::EngineError,
        }
    }
}

/// A failed request: its code and the message for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: Code,
    pub message: String,
}

impl Failure {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(Code::BadRequest, message)
    }
}

impl From<EngineError> for Failure {
    /// The engine's failure with `dcx exec`'s message.
    fn from(err: EngineError) -> Self {
        Self::new(Code::of(err.kind()), err.to_string())
    }
}

/// A parsed request: the parameters stay raw until the method's own type takes them.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: Value,
    pub method: String,
    pub params: Map<String, Value>,
}

impl Request {
    /// Parses one request; on failure, the answer to send (with the id when it could be read).
    pub fn parse(text: &[u8]) -> Result<Self, Value> {
        let value: Value = serde_json::from_slice(text).map_err(|err| {
            answer_err(
                &Value::Null,
                &Failure::bad(format!("the request is not JSON: {err}")),
            )
        })?;
        let Value::Object(mut object) = value else {
            return Err(answer_err(
                &Value::Null,
                &Failure::bad("the request must be a JSON object"),
            ));
        };
        let id = object.remove("id").unwrap_or(Value::Null);
        let fail = |message: &str| answer_err(&id, &Failure::bad(message));
        if !matches!(id, Value::String(_) | Value::Number(_)) {
            return Err(fail("`id` must be a string or a number"));
        }
        let method = match object.remove("method") {
            Some(Value::String(method)) => method,
            Some(_) => return Err(fail("`method` must be a string")),
            None => return Err(fail("`method` is missing")),
        };
        let params = match object.remove("params") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(params)) => params,
            Some(_) => return Err(fail("`params` must be an object")),
        };
        Ok(Self { id, method, params })
    }
}

/// 128 random bits as hex: ids nobody can guess or plant files for.
pub fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{prefix}-{hex}")
}

/// A successful answer.
pub fn answer_ok(id: &Value, data: Value) -> Value {
    json!({"id": id, "ok": true, "data": data})
}

/// A failed answer.
pub fn answer_err(id: &Value, failure: &Failure) -> Value {
    json!({"id": id, "ok": false, "error": {"code": failure.code.as_str(), "message": failure.message}})
}

/// Where a method's stream events go: the transport's line channel, under the request's id.
#[derive(Clone)]
pub struct EventSink {
    id: Value,
    lines: tokio::sync::mpsc::Sender<Value>,
}

impl EventSink {
    pub fn new(id: Value, lines: tokio::sync::mpsc::Sender<Value>) -> Self {
        Self { id, lines }
    }

    /// Sends one event; false when the reader has gone.
    pub async fn send(&self, event: &super::envelope::Event) -> bool {
        self.lines.send(event.line(&self.id)).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        let answer = Request::parse(text.as_bytes()).unwrap_err();
        format!(
            "{} {}: {}",
            answer["id"], answer["error"]["code"], answer["error"]["message"]
        )
    }

    #[test]
    fn malformed_requests_are_named() {
        insta::assert_snapshot!(error_of("{"), @r#"null "bad_request": "the request is not JSON: EOF while parsing an object at line 1 column 1""#);
        insta::assert_snapshot!(error_of("[1]"), @r#"null "bad_request": "the request must be a JSON object""#);
        insta::assert_snapshot!(error_of(r#"{"id":1}"#), @r#"1 "bad_request": "`method` is missing""#);
        insta::assert_snapshot!(error_of(r#"{"id":true,"method":"x"}"#), @r#"true "bad_request": "`id` must be a string or a number""#);
        insta::assert_snapshot!(error_of(r#"{"id":"a","method":"x","params":[]}"#), @r#""a" "bad_request": "`params` must be an object""#);
    }
}
