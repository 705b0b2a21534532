//! The agent protocol's shapes: a request `{"id", "method", "params"}`, an answer
//! `{"id", "ok": true, "data"}` or `{"id", "ok": false, "error": {"code", "message"}}`, and
//! stream events `{"id", "event", …}`. [`Params`] reads the parameters with errors that name
//! the field and what it should have been. `docs/agent-protocol.md` is the reference.

use serde_json::{Map, Value, json};

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

/// A parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: Value,
    pub method: String,
    pub params: Params,
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
        Ok(Self {
            id,
            method,
            params: Params(params),
        })
    }
}

/// A successful answer.
pub fn answer_ok(id: &Value, data: Value) -> Value {
    json!({"id": id, "ok": true, "data": data})
}

/// A failed answer.
pub fn answer_err(id: &Value, failure: &Failure) -> Value {
    json!({"id": id, "ok": false, "error": {"code": failure.code.as_str(), "message": failure.message}})
}

/// A request's parameters, read field by field.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Map<String, Value>);

fn wrong(name: &str, what: &str) -> Failure {
    Failure::bad(format!("`{name}` must be {what}"))
}

impl Params {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|value| !value.is_null())
    }

    /// The raw value of `name`, if given.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) if text.contains('\0') => Err(Failure::bad(format!(
                "`{name}` must not contain a NUL byte"
            ))),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(wrong(name, "a string")),
        }
    }

    pub fn required_string(&self, name: &str) -> Result<String, Failure> {
        self.string(name)?
            .ok_or_else(|| Failure::bad(format!("`{name}` is missing")))
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(value)) => Ok(Some(*value)),
            Some(_) => Err(wrong(name, "true or false")),
        }
    }

    /// A whole number from 0 to `max`.
    pub fn uint(&self, name: &str, max: u64) -> Result<Option<u64>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => match value.as_u64() {
                Some(number) if number <= max => Ok(Some(number)),
                Some(_) => Err(Failure::bad(format!("`{name}` must be at most {max}"))),
                None => Err(wrong(name, "a whole number of 0 or more")),
            },
        }
    }

    pub fn strings(&self, name: &str) -> Result<Vec<String>, Failure> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(text) if !text.contains('\0') => Ok(text.clone()),
                    _ => Err(wrong(name, "an array of strings without NUL bytes")),
                })
                .collect(),
            Some(_) => Err(wrong(name, "an array of strings")),
        }
    }

    /// An object of string values, in its order.
    pub fn string_map(&self, name: &str) -> Result<Vec<(String, String)>, Failure> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(key, value)| match value {
                    Value::String(text)
                        if !key.is_empty()
                            && !key.contains(['=', '\0'])
                            && !text.contains('\0') =>
                    {
                        Ok((key.clone(), text.clone()))
                    }
                    Value::String(_) => Err(Failure::bad(format!(
                        "`{name}`: `{}` is not a usable variable name and value (no `=`, no NUL)",
                        key.escape_debug()
                    ))),
                    _ => Err(Failure::bad(format!(
                        "`{name}.{}` must be a string",
                        key.escape_debug()
                    ))),
                })
                .collect(),
            Some(_) => Err(wrong(name, "an object of strings")),
        }
    }

    /// Text given either as `name` (UTF-8) or `name_b64` (base64 bytes).
    pub fn bytes(&self, name: &str) -> Result<Option<Vec<u8>>, Failure> {
        use base64::Engine as _;
        let b64 = format!("{name}_b64");
        match (self.get(name), self.get(&b64)) {
            (Some(_), Some(_)) => Err(Failure::bad(format!("give `{name}` or `{b64}`, not both"))),
            (Some(Value::String(text)), None) => Ok(Some(text.clone().into_bytes())),
            (Some(_), None) => Err(wrong(name, "a string")),
            (None, Some(Value::String(text))) => base64::engine::general_purpose::STANDARD
                .decode(text)
                .map(Some)
                .map_err(|err| Failure::bad(format!("`{b64}` is not base64: {err}"))),
            (None, Some(_)) => Err(wrong(&b64, "a base64 string")),
            (None, None) => Ok(None),
        }
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

    #[test]
    fn params_name_the_field_and_the_type() {
        let request =
            Request::parse(br#"{"id":1,"method":"m","params":{"n":-1,"s":3,"e":{"A":1}}}"#)
                .unwrap();
        let p = &request.params;
        insta::assert_snapshot!(p.uint("n", 10).unwrap_err().message, @"`n` must be a whole number of 0 or more");
        insta::assert_snapshot!(p.string("s").unwrap_err().message, @"`s` must be a string");
        insta::assert_snapshot!(p.string_map("e").unwrap_err().message, @"`e.A` must be a string");
        insta::assert_snapshot!(p.required_string("gone").unwrap_err().message, @"`gone` is missing");
        insta::assert_snapshot!(p.bytes("s").unwrap_err().message, @"`s` must be a string");
        assert_eq!(p.uint("missing", 10).unwrap(), None);
        let request =
            Request::parse(br#"{"id":1,"method":"m","params":{"x_b64":"AAEC/w=="}}"#).unwrap();
        assert_eq!(request.params.bytes("x").unwrap(), Some(vec![0, 1, 2, 255]));
    }
}
