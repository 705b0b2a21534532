//! The agent protocol's wire shapes: requests, answers, codes, and typed parameter parsing.
//!
//! A request is `{"id", "method", "params"}`; an answer `{"id", "ok": true, "data"}` or
//! `{"id", "ok": false, "error": {"code", "message"}}`; stream events `{"id", "event", …}`.
//! Parameters become a method's typed struct once, here, through serde ([`parse_params`]), with
//! errors that name the field and what it should have been. JSON is made only at the edge, from
//! typed values: an answer line by `methods::handle` (which the transports call), an event line by
//! the [`EventSink`]. `docs/agent-protocol.md` is the reference.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
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

/// A method's parameters as its type `T` (which denies unknown fields); the error names the
/// field and what it should have been. A `null` counts as absent.
pub fn parse_params<T: DeserializeOwned>(params: Map<String, Value>) -> Result<T, Failure> {
    let params: Map<String, Value> = params
        .into_iter()
        .filter(|(_, value)| !value.is_null())
        .collect();
    serde_path_to_error::deserialize(Value::Object(params)).map_err(|err| {
        let path = err.path().to_string();
        Failure::bad(explain(&path, &err.into_inner().to_string()))
    })
}

/// serde's words, as the protocol says them.
fn explain(path: &str, inner: &str) -> String {
    if let Some(field) = inner
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return match path {
            "." | "" => format!("`{field}` is missing"),
            parent => format!("`{parent}.{field}` is missing"),
        };
    }
    if let Some(rest) = inner.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let takes = expected
            .strip_prefix(", expected one of ")
            .or_else(|| expected.strip_prefix(", expected "))
            .unwrap_or("nothing");
        let takes = if takes.starts_with("there are no fields") {
            "nothing"
        } else {
            takes
        };
        return format!("unknown parameter `{field}` (this method takes {takes})");
    }
    if let Some((_, expected)) = inner.rsplit_once(", expected ") {
        let expected = match expected {
            "a boolean" => "true or false",
            "u64" | "u32" | "usize" => "a whole number of 0 or more",
            "a sequence" => "an array",
            "a map" => "an object",
            "a string" => "a string",
            other => other,
        };
        return format!("`{path}` must be {expected}");
    }
    // A field's own check.
    match inner.starts_with("must") {
        true => format!("`{path}` {inner}"),
        false => format!("`{path}`: {inner}"),
    }
}

/// A string field without NUL bytes (no command, path or name can hold one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.contains('\0') {
            return Err(serde::de::Error::custom("must not contain a NUL byte"));
        }
        Ok(Self(text))
    }
}

impl Text {
    /// The text, `None` when empty (an empty selector is no selector).
    pub fn present(this: Option<Self>) -> Option<String> {
        this.map(|text| text.0).filter(|text| !text.is_empty())
    }
}

/// An object of strings, in its order: `{"NAME": "value", …}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pairs(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Pairs;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value::<Text>()?.0;
                    if key.is_empty() || key.contains(['=', '\0']) {
                        return Err(serde::de::Error::custom(format!(
                            "`{}` is not a usable variable name and value (no `=`, no NUL)",
                            key.escape_debug()
                        )));
                    }
                    pairs.push((key, value));
                }
                Ok(Pairs(pairs))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// Bytes given as text (`name`) or as base64 (`name_b64`), not both.
pub fn text_or_base64(
    name: &str,
    text: Option<String>,
    b64: Option<String>,
) -> Result<Option<Vec<u8>>, Failure> {
    use base64::Engine as _;
    match (text, b64) {
        (Some(_), Some(_)) => Err(Failure::bad(format!(
            "give `{name}` or `{name}_b64`, not both"
        ))),
        (Some(text), None) => Ok(Some(text.into_bytes())),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map(Some)
            .map_err(|err| Failure::bad(format!("`{name}_b64` is not base64: {err}"))),
        (None, None) => Ok(None),
    }
}

/// `value` if it is at most `max`, else a `bad_request` naming `name`.
pub fn at_most(name: &str, value: Option<u64>, max: u64) -> Result<Option<u64>, Failure> {
    match value {
        Some(value) if value > max => Err(Failure::bad(format!("`{name}` must be at most {max}"))),
        other => Ok(other),
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

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: Text,
        n: Option<u64>,
        flag: Option<bool>,
        list: Option<Vec<Text>>,
        env: Option<Pairs>,
    }

    fn parse(json: Value) -> Result<Sample, String> {
        let map = json.as_object().cloned().unwrap_or_default();
        parse_params::<Sample>(map).map_err(|failure| failure.message)
    }

    #[test]
    fn params_name_the_field_and_what_it_should_be() {
        let texts: Vec<String> = [
            json!({}),
            json!({"name": 3}),
            json!({"name": "a\u{0}b"}),
            json!({"name": "a", "n": -1}),
            json!({"name": "a", "flag": "yes"}),
            json!({"name": "a", "list": "x"}),
            json!({"name": "a", "list": ["x", 1]}),
            json!({"name": "a", "env": {"A": 1}}),
            json!({"name": "a", "env": {"A=B": "x"}}),
            json!({"name": "a", "env": []}),
            json!({"name": "a", "bogus": 1}),
        ]
        .into_iter()
        .map(|json| parse(json).unwrap_err())
        .collect();
        insta::assert_snapshot!(texts.join("\n"), @r"
        `name` is missing
        `name` must be a string
        `name` must not contain a NUL byte
        `n` must be a whole number of 0 or more
        `flag` must be true or false
        `list` must be an array
        `list[1]` must be a string
        `env.A` must be a string
        `env`: `A=B` is not a usable variable name and value (no `=`, no NUL)
        `env` must be an object of strings
        unknown parameter `bogus` (this method takes `name`, `n`, `flag`, `list`, `env`)
        ");
        // A null is no value.
        let sample = parse(json!({"name": "a", "n": null, "env": {"X": "1"}})).unwrap();
        assert_eq!(sample.n, None);
        assert_eq!(sample.env.unwrap().0, vec![("X".into(), "1".into())]);
    }

    #[test]
    fn bytes_come_as_text_or_base64() {
        assert_eq!(
            text_or_base64("x", None, Some("AAEC/w==".into())).unwrap(),
            Some(vec![0, 1, 2, 255])
        );
        insta::assert_snapshot!(text_or_base64("x", Some("a".into()), Some("YQ==".into())).unwrap_err().message, @"give `x` or `x_b64`, not both");
        insta::assert_snapshot!(at_most("wait_ms", Some(40_000), 30_000).unwrap_err().message, @"`wait_ms` must be at most 30000");
    }
}
