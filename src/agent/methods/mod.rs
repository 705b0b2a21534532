//! The protocol's methods: each request parsed once into a typed [`Call`], answered as a [`Reply`].
//!
//! [`handle`] is what the transports call: a request in, its answer line out (stream events
//! first). One file per method family: [`system`] (`system.*`), [`session`] (`session.*`), [`exec`]
//! (`exec.*`; `exec.resize` of PTY mode in [`terminal`]), [`fs`] (`fs.*`). Each method has a parameter type parsed at the edge (unknown
//! fields refused, errors naming the field) and a typed answer; `dcx mcp` calls the same typed
//! functions directly.

pub mod attach;
pub mod exec;
pub mod fs;
pub mod session;
pub mod system;
pub mod terminal;

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value};

use super::envelope::{Envelope, Event, ReadAnswer};
use super::params::parse_params;
use super::protocol::{Code, EventSink, Failure, Request, answer_err, answer_ok};
use super::service::Service;
use super::session::SessionInfo;

/// One request, typed.
pub enum Call {
    Ping,
    Stats,
    Create(session::CreateParams),
    List,
    Info(session::SessionRef),
    Reset(session::SessionRef),
    Destroy(session::SessionRef),
    Run(exec::ExecParams),
    Stream(exec::ExecParams),
    Start(exec::ExecParams),
    Read(exec::ReadParams),
    WriteStdin(exec::WriteParams),
    Cancel(exec::CancelParams),
    Resize(terminal::ResizeParams),
    FsStat(fs::PathParams),
    FsList(fs::PathParams),
    FsRead(fs::ReadParams),
    FsWrite(fs::WriteParams),
}

impl Call {
    /// The method `method` with its parameters, or `unknown_method`/`bad_request`.
    pub fn parse(method: &str, params: Map<String, Value>) -> Result<Self, Failure> {
        Ok(match method {
            "system.ping" => parse_params::<system::NoParams>(params).map(|_| Self::Ping)?,
            "system.stats" => parse_params::<system::NoParams>(params).map(|_| Self::Stats)?,
            "session.create" => Self::Create(parse_params(params)?),
            "session.list" => parse_params::<system::NoParams>(params).map(|_| Self::List)?,
            "session.info" => Self::Info(parse_params(params)?),
            "session.reset" => Self::Reset(parse_params(params)?),
            "session.destroy" => Self::Destroy(parse_params(params)?),
            "exec.run" => Self::Run(parse_params(params)?),
            "exec.stream" => Self::Stream(parse_params(params)?),
            "exec.start" => Self::Start(parse_params(params)?),
            "exec.read" => Self::Read(parse_params(params)?),
            "exec.write_stdin" => Self::WriteStdin(parse_params(params)?),
            "exec.cancel" => Self::Cancel(parse_params(params)?),
            "exec.resize" => Self::Resize(parse_params(params)?),
            "fs.stat" => Self::FsStat(parse_params(params)?),
            "fs.list" => Self::FsList(parse_params(params)?),
            "fs.read" => Self::FsRead(parse_params(params)?),
            "fs.write" => Self::FsWrite(parse_params(params)?),
            "" => {
                return Err(Failure::new(
                    Code::UnknownMethod,
                    "`method` is empty: name one, such as `session.create` or `exec.run`",
                ));
            }
            other => {
                return Err(Failure::new(
                    Code::UnknownMethod,
                    format!("unknown method `{}`", other.escape_debug()),
                ));
            }
        })
    }
}

impl Call {
    /// The session of a file call (whose answer carries a pending note).
    fn file_session(&self) -> Option<&str> {
        match self {
            Self::FsStat(params) | Self::FsList(params) => Some(&params.session_id.0),
            Self::FsRead(params) => Some(&params.session_id.0),
            Self::FsWrite(params) => Some(&params.session_id.0),
            _ => None,
        }
    }
}

/// A method's answer, typed until the transport serializes it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Pong(system::Pong),
    Stats(system::Stats),
    Created(session::Created),
    Sessions(session::Sessions),
    Info(Box<SessionInfo>),
    Reset(session::ResetAnswer),
    Destroyed(session::Destroyed),
    Envelope(Envelope),
    Read(ReadAnswer),
    Written(exec::StdinWritten),
    Resized(terminal::Resized),
    Stat(fs::Stat),
    Listing(fs::Listing),
    File(fs::FileRead),
}

impl Reply {
    /// Ids, state and byte counts for the server log (never output or env).
    pub fn summary(&self) -> String {
        let (session_id, envelope) = match self {
            Self::Created(created) => (Some(&created.session_id), None),
            Self::Info(info) => (Some(&info.session_id), None),
            Self::Reset(reset) => (Some(&reset.session_id), None),
            Self::Destroyed(destroyed) => (Some(&destroyed.session_id), None),
            Self::Envelope(envelope) => (None, Some(envelope)),
            Self::Read(read) => (None, Some(&read.envelope)),
            _ => (None, None),
        };
        let mut parts = String::new();
        if let Some(id) = session_id {
            parts.push_str(&format!(" session_id=\"{id}\""));
        }
        if let Some(envelope) = envelope {
            parts.push_str(&format!(
                " exec_id=\"{}\" state=\"{}\"",
                envelope.exec_id,
                envelope.state.name()
            ));
            if let Some(code) = envelope.state.exit_code() {
                parts.push_str(&format!(" exit_code={code}"));
            }
            if let Some((stdout, stderr)) = envelope.bytes() {
                parts.push_str(&format!(" stdout_bytes={stdout} stderr_bytes={stderr}"));
            }
        }
        if let Self::Written(written) = self {
            parts.push_str(&format!(" exec_id=\"{}\"", written.exec_id));
        }
        if let Self::Resized(resized) = self {
            parts.push_str(&format!(" exec_id=\"{}\"", resized.exec_id));
        }
        parts
    }
}

/// Answers one request; `exec.stream`'s events go to `events` first.
pub async fn handle(
    service: &Arc<Service>,
    request: Request,
    events: &tokio::sync::mpsc::Sender<Value>,
) -> Value {
    let started = Instant::now();
    let Request { id, method, params } = request;
    let sink = EventSink::new(id.clone(), events.clone());
    let mut noted_session = None;
    let outcome = match Call::parse(&method, params) {
        Ok(call) => {
            noted_session = call.file_session().map(str::to_owned);
            answer(service, call, &sink).await
        }
        Err(failure) => Err(failure),
    };
    let elapsed = started.elapsed().as_millis();
    // The method name is the caller's: shown escaped, it cannot forge a log line.
    let shown = method.escape_debug();
    match outcome {
        Ok(Outcome::Reply(reply)) => {
            let summary = reply.summary();
            service
                .log
                .info(&format!("{shown} id={id} ok{summary} {elapsed} ms"));
            let mut value = serde_json::to_value(&reply).unwrap_or_default();
            // A file call says when it did not act as the session's user, and when the
            // session moved to a rebuilt container.
            if let (Some(session_id), Value::Object(fields)) = (&noted_session, &mut value)
                && let Ok(session) = service.session(session_id)
            {
                if !session.files_as_user() {
                    fields.insert("as_user".to_owned(), Value::Bool(false));
                }
                if let Some(note) = session.take_note() {
                    fields.insert("note".to_owned(), Value::String(note));
                }
            }
            answer_ok(&id, value)
        }
        Ok(Outcome::End(envelope)) => {
            let summary = Reply::Envelope(envelope.clone()).summary();
            service
                .log
                .info(&format!("{shown} id={id} ended{summary} {elapsed} ms"));
            Event::End(envelope).line(&id)
        }
        Err(failure) => {
            service.log.info(&format!(
                "{shown} id={id} error={} {elapsed} ms",
                failure.code.as_str()
            ));
            answer_err(&id, &failure)
        }
    }
}

/// What a method produced: an answer, or (a stream) its `end` event.
pub enum Outcome {
    Reply(Reply),
    End(Envelope),
}

/// Answers `call`; a stream's events go to `events`.
pub async fn answer(
    service: &Arc<Service>,
    call: Call,
    events: &EventSink,
) -> Result<Outcome, Failure> {
    let reply = match call {
        Call::Ping => Reply::Pong(system::ping(service)),
        Call::Stats => Reply::Stats(system::stats(service).await),
        Call::Create(params) => {
            let request = params.into_request(&service.cwd)?;
            Reply::Created(session::create(service, request).await?)
        }
        Call::List => Reply::Sessions(session::list(service)),
        Call::Info(target) => Reply::Info(Box::new(
            session::info(service, &target.session_id.0).await?,
        )),
        Call::Reset(target) => Reply::Reset(session::reset(service, &target.session_id.0).await?),
        Call::Destroy(target) => {
            Reply::Destroyed(session::destroy(service, &target.session_id.0).await?)
        }
        Call::Run(params) => {
            Reply::Envelope(exec::run(service, params.into_request(false)?).await?)
        }
        Call::Stream(params) => {
            let request = params.into_request(false)?;
            return exec::stream(service, request, events)
                .await
                .map(Outcome::End);
        }
        Call::Start(params) => {
            let wait = params.yield_ms()?;
            Reply::Envelope(exec::start(service, params.into_request(true)?, wait).await?)
        }
        Call::Read(params) => Reply::Read(exec::read(service, params).await?),
        Call::WriteStdin(params) => Reply::Written(exec::write_stdin(service, params).await?),
        Call::Cancel(params) => Reply::Envelope(exec::cancel(service, params).await?),
        Call::Resize(params) => Reply::Resized(terminal::resize(service, params).await?),
        Call::FsStat(params) => Reply::Stat(fs::stat(service, params).await?),
        Call::FsList(params) => Reply::Listing(fs::list(service, params).await?),
        Call::FsRead(params) => Reply::File(fs::read(service, params).await?),
        Call::FsWrite(params) => Reply::Stat(fs::write(service, params).await?),
    };
    Ok(Outcome::Reply(reply))
}
