//! `exec.run`, `stream`, `start`, `read`, `write_stdin` and `cancel`: commands in a session.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::agent::envelope::{Data, Ending, Envelope, Event, ReadAnswer, Since, State, Stream};
use crate::agent::exec::Exec;
use crate::agent::launch::{ExecRequest, MAX_OUTPUT, Sinks, What, launch};
use crate::agent::methods::session;
use crate::agent::output::trim_partial_end;
use crate::agent::params::{Pairs, Text, at_most, text_or_base64};
use crate::agent::protocol::{EventSink, Failure};
use crate::agent::service::Service;

/// How long `exec.start` and `exec.read` may wait.
const MAX_WAIT_MS: u64 = 30_000;
/// How long `exec.read` waits, once new output came, for more of it or the end.
const SETTLE: Duration = Duration::from_millis(50);
/// How often a stream says it is alive.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// Output a stream keeps (the bytes themselves go to the reader).
const STREAM_KEPT: usize = 64 * 1024;

/// The parameters of `exec.run`, `exec.stream` and `exec.start`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecParams {
    pub session_id: Text,
    pub command: Option<Text>,
    pub argv: Option<Vec<Text>>,
    pub stdin: Option<String>,
    pub stdin_b64: Option<String>,
    pub stdin_open: Option<bool>,
    pub env: Option<Pairs>,
    pub cwd: Option<Text>,
    pub timeout_ms: Option<u64>,
    pub max_output_bytes: Option<u64>,
    pub exec_id: Option<Text>,
    /// `exec.start` only.
    pub yield_ms: Option<u64>,
    /// PTY mode (`exec.start` only), with the terminal's size.
    pub tty: Option<bool>,
    pub rows: Option<u64>,
    pub cols: Option<u64>,
}

impl ExecParams {
    /// The typed request; `start` is true for `exec.start` (the only one that takes
    /// `yield_ms`).
    pub fn into_request(self, start: bool) -> Result<ExecRequest, Failure> {
        if !start && self.yield_ms.is_some() {
            return Err(Failure::bad("`yield_ms` is for exec.start only"));
        }
        let argv: Vec<String> = self
            .argv
            .unwrap_or_default()
            .into_iter()
            .map(|word| word.0)
            .collect();
        let what = match (self.command, argv.is_empty()) {
            (Some(_), false) => return Err(Failure::bad("give `command` or `argv`, not both")),
            (None, true) => return Err(Failure::bad("`command` (or `argv`) is missing")),
            (Some(text), _) if text.0.trim().is_empty() => {
                return Err(Failure::bad("`command` is empty"));
            }
            (Some(text), _) => What::Shell(text.0),
            (None, false) => What::Argv(argv),
        };
        let timeout = match self.timeout_ms {
            Some(0) => return Err(Failure::bad("`timeout_ms` must be more than 0")),
            other => other.map(Duration::from_millis),
        };
        let max_output = at_most("max_output_bytes", self.max_output_bytes, MAX_OUTPUT)?
            .map(|bytes| bytes.max(2) as usize);
        let terminal = crate::agent::pty::requested(self.tty, self.rows, self.cols, start)?;
        Ok(ExecRequest {
            session_id: self.session_id.0,
            what,
            stdin: text_or_base64("stdin", self.stdin, self.stdin_b64)?,
            stdin_open: self.stdin_open.unwrap_or(terminal.is_some()),
            env: self.env.unwrap_or_default().0,
            cwd: self.cwd.map(|cwd| cwd.0),
            timeout,
            max_output,
            exec_id: self.exec_id.map(|id| id.0),
            keep_whole: false,
            terminal,
        })
    }

    /// How long `exec.start` waits for the end before answering.
    pub fn yield_ms(&self) -> Result<Duration, Failure> {
        let ms = at_most("yield_ms", self.yield_ms, MAX_WAIT_MS)?.unwrap_or(0);
        Ok(Duration::from_millis(ms))
    }
}

/// `exec.read`'s parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadParams {
    pub exec_id: Text,
    /// Both streams' offset.
    pub offset: Option<u64>,
    pub stdout_offset: Option<u64>,
    pub stderr_offset: Option<u64>,
    pub wait_ms: Option<u64>,
    /// The most bytes of each stream to answer with (the offsets then say where to go on).
    pub max_bytes: Option<u64>,
}

/// `exec.write_stdin`'s parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteParams {
    pub exec_id: Text,
    pub data: Option<String>,
    pub data_b64: Option<String>,
    /// Named keys typed after `data` (`Enter`, `C-c`, `Up`…, see `keys.rs`).
    pub keys: Option<Vec<Text>>,
    pub eof: Option<bool>,
}

/// `exec.write_stdin`'s answer.
#[derive(Debug, Serialize)]
pub struct StdinWritten {
    pub exec_id: String,
    pub eof: bool,
}

/// A signal `exec.cancel` may send.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema)]
pub enum Signal {
    #[serde(alias = "SIGINT")]
    INT,
    #[default]
    #[serde(alias = "SIGTERM")]
    TERM,
    #[serde(alias = "SIGKILL")]
    KILL,
    #[serde(alias = "SIGHUP")]
    HUP,
}

impl Signal {
    pub fn number(self) -> i32 {
        match self {
            Self::INT => libc::SIGINT,
            Self::TERM => libc::SIGTERM,
            Self::KILL => libc::SIGKILL,
            Self::HUP => libc::SIGHUP,
        }
    }
}

/// `exec.cancel`'s parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelParams {
    pub exec_id: Text,
    pub signal: Option<Signal>,
}

/// How long `exec.cancel` waits for the command's end before answering.
const CANCEL_WAIT: Duration = Duration::from_secs(1);

/// How long a launch waits for the engine to say the command started (or could not), so that a
/// start on a gone container is seen while the request can still follow a rebuild.
const BEGIN_LIMIT: Duration = Duration::from_secs(30);

/// Launches `request` with kept output. When it cannot start because the session's dev
/// container is gone, the session follows it ([`session::follow`]): on a rebuilt one it is
/// launched again there (the note says so); with none, `no_such_container`.
async fn launch_kept(
    service: &Arc<Service>,
    request: ExecRequest,
    foreground: bool,
) -> Result<(Arc<Exec>, Option<String>), Failure> {
    let again = request.clone();
    let (exec, fresh) = launch(service, request, foreground, Sinks::Kept).await?;
    if !fresh {
        return Ok((exec, None));
    }
    // A caller that goes away while the command starts stops it.
    let guard = CancelOnDrop::new(exec.clone());
    exec.wait_begun(BEGIN_LIMIT).await;
    guard.disarm();
    if !matches!(
        exec.ending(),
        Some(Ending {
            state: State::FailedToStart(_),
            ..
        })
    ) {
        return Ok((exec, None));
    }
    let session = service.session(&again.session_id)?;
    match session::follow(service, &session).await? {
        session::Followed::Same => Ok((exec, None)),
        session::Followed::Moved { session } => {
            service.forget_exec(&exec.id);
            let (exec, _) = launch(service, again, foreground, Sinks::Kept).await?;
            Ok((
                exec.clone(),
                session.take_note().or_else(|| exec.end_note()),
            ))
        }
    }
}

/// Cancels its exec (SIGTERM to the group, as `exec.cancel` would) when dropped before the exec
/// ended, unless disarmed: a transport drops a request whose client went away, and the command
/// it asked for must not run on (nor keep its session busy).
struct CancelOnDrop(Option<Arc<Exec>>);

impl CancelOnDrop {
    fn new(exec: Arc<Exec>) -> Self {
        Self(Some(exec))
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(exec) = self.0.take()
            && exec.ending().is_none()
        {
            exec.cancel(libc::SIGTERM);
        }
    }
}

/// Runs a command to its end; the envelope with its kept output. Dropped before that (its
/// caller went away), it cancels the command.
pub async fn run(service: &Arc<Service>, request: ExecRequest) -> Result<Envelope, Failure> {
    let (exec, note) = launch_kept(service, request, true).await?;
    let guard = CancelOnDrop::new(exec.clone());
    exec.wait(None).await;
    guard.disarm();
    Ok(Envelope {
        note: note.or_else(|| exec.end_note()),
        ..exec.envelope(true)
    })
}

/// Runs a command in the foreground until it ends, `yield_after` passes (it then runs on, and
/// the envelope says `running` with its output so far), or `stop` is cancelled (its group is
/// then cancelled, and the envelope is its end).
pub async fn run_until(
    service: &Arc<Service>,
    request: ExecRequest,
    yield_after: Option<Duration>,
    stop: tokio_util::sync::CancellationToken,
) -> Result<Envelope, Failure> {
    let (exec, note) = launch_kept(service, request, true).await?;
    let limit = async {
        match yield_after {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = exec.wait(None) => {}
        _ = limit => {}
        _ = stop.cancelled() => {
            exec.cancel(libc::SIGTERM);
            exec.wait(None).await;
        }
    }
    Ok(Envelope {
        note: note.or_else(|| exec.end_note()),
        ..exec.envelope(true)
    })
}

/// Copies a stream's whole output (kept by [`ExecRequest::keep_whole`]) into the container, as
/// the session's user, beside the session's state file; its path there.
pub async fn save_whole(
    service: &Service,
    exec_id: &str,
    stream: Stream,
) -> Result<String, Failure> {
    let exec = service.exec(exec_id)?;
    let session = service.session(&exec.session_id)?;
    let bytes = exec
        .whole(stream, crate::agent::methods::fs::MAX_FILE)
        .ok_or_else(|| {
            Failure::bad(format!(
                "exec {exec_id}: its whole {} is not kept",
                stream.name()
            ))
        })?;
    let path = format!("{}/{exec_id}.{}", session.state_dir(), stream.name());
    let target = crate::engine::FileTarget {
        container: session.prepared.container.clone(),
        user: session.prepared.user.clone(),
        cwd: session.prepared.cwd.clone(),
    };
    session
        .engine
        .write_file(
            &target,
            &path,
            &bytes,
            Some(0o600),
            false,
            crate::agent::methods::fs::MAX_FILE,
        )
        .await?;
    Ok(path)
}

/// Starts a command in the background; its envelope when it ends within `wait`, else a
/// running one.
pub async fn start(
    service: &Arc<Service>,
    request: ExecRequest,
    wait: Duration,
) -> Result<Envelope, Failure> {
    let (exec, note) = launch_kept(service, request, false).await?;
    if !wait.is_zero() {
        exec.wait(Some(wait)).await;
    }
    Ok(match exec.ending() {
        Some(_) => Envelope {
            note,
            ..exec.envelope(true)
        },
        None => Envelope {
            exec_id: exec.id.clone(),
            state: State::Running,
            duration_ms: None,
            output: crate::agent::envelope::Output::None,
            note,
        },
    })
}

/// Output since the offsets, after waiting (up to `wait_ms`) for something to show.
pub async fn read(service: &Service, params: ReadParams) -> Result<ReadAnswer, Failure> {
    let exec = service.exec(&params.exec_id.0)?;
    let stdout_at = params.stdout_offset.or(params.offset).unwrap_or(0);
    let stderr_at = params.stderr_offset.or(params.offset).unwrap_or(0);
    let wait_ms = at_most("wait_ms", params.wait_ms, MAX_WAIT_MS)?.unwrap_or(0);
    if wait_ms > 0 && exec.ending().is_none() {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
        loop {
            let changed = exec.changed.notified();
            // Something to show: a whole character at least.
            let [(out, _, _), (err, _, _)] = exec.read_from(stdout_at, stderr_at);
            if exec.ending().is_some() {
                break;
            }
            if !trim_partial_end(&out).is_empty() || !trim_partial_end(&err).is_empty() {
                // Output often comes right before the end: a moment for both to arrive.
                let _ = tokio::time::timeout(SETTLE, exec.wait(None)).await;
                break;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                break;
            }
        }
    }
    let done = exec.ending().is_some();
    let envelope = exec.envelope(false);
    let limit = params
        .max_bytes
        .map_or(usize::MAX, |bytes| bytes.max(4) as usize);
    let [stdout, stderr] =
        exec.read_from(stdout_at, stderr_at)
            .map(|(mut bytes, skipped, mut next)| {
                if bytes.len() > limit {
                    next -= (bytes.len() - limit) as u64;
                    bytes.truncate(limit);
                    let whole = trim_partial_end(&bytes).len();
                    next -= (bytes.len() - whole) as u64;
                    bytes.truncate(whole);
                }
                // A running stream may end inside a character: leave it for the next read.
                let kept = if done {
                    &bytes[..]
                } else {
                    trim_partial_end(&bytes)
                };
                Since {
                    data: Data::new(kept),
                    skipped,
                    offset: next - (bytes.len() - kept.len()) as u64,
                }
            });
    Ok(ReadAnswer {
        envelope,
        stdout,
        stderr,
        done,
        screen: exec.screen().map(crate::agent::screen::Screen::shot),
    })
}

pub async fn write_stdin(service: &Service, params: WriteParams) -> Result<StdinWritten, Failure> {
    let exec = service.exec(&params.exec_id.0)?;
    let data = text_or_base64("data", params.data, params.data_b64)?.unwrap_or_default();
    let data = crate::agent::pty::typed(&exec, data, params.keys)?;
    let eof = params.eof.unwrap_or(false);
    if !exec.write_stdin(data, eof).await {
        return Err(Failure::bad(format!(
            "the stdin of exec {} is not open (started without `stdin_open`, closed, or ended) or the command is not reading it",
            exec.id
        )));
    }
    Ok(StdinWritten {
        exec_id: exec.id.clone(),
        eof,
    })
}

/// Signals the command's group (KILL follows TERM, INT and HUP after the grace); the envelope
/// once it is gone.
pub async fn cancel(service: &Service, params: CancelParams) -> Result<Envelope, Failure> {
    cancel_within(service, params, Some(CANCEL_WAIT)).await
}

/// `exec.cancel`, waiting at most `limit` (`None`: as long as it takes) for the command's end.
pub async fn cancel_within(
    service: &Service,
    params: CancelParams,
    limit: Option<Duration>,
) -> Result<Envelope, Failure> {
    let exec = service.exec(&params.exec_id.0)?;
    if exec.ending().is_none() {
        exec.cancel(params.signal.unwrap_or_default().number());
    }
    // The protocol's answers within a second whatever the engine does: a command not ended
    // by then is said to be still running, and why it may be (a paused container, named).
    let paused = async {
        match service.session(&exec.session_id) {
            Ok(session) => session.paused_note().await,
            Err(_) => None,
        }
    };
    let (ended, paused) = tokio::join!(exec.wait(limit), paused);
    if let Some(note) = paused.filter(|_| exec.end_note().is_none()) {
        exec.set_end_note(Some(note.clone()));
        return Ok(Envelope {
            note: Some(note),
            ..exec.envelope(true)
        });
    }
    if ended.is_none() {
        return Ok(Envelope {
            note: Some(format!(
                "The command has not ended within {} s of the cancel: it may ignore the signal (SIGKILL follows 2 s after it), or the engine did not deliver it (is the daemon stalled?). exec.read says when it ends.",
                CANCEL_WAIT.as_secs()
            )),
            ..exec.envelope(true)
        });
    }
    Ok(exec.envelope(true))
}

/// Runs a command, passing its output to `events` as it comes; the `end` envelope (counts
/// only). A reader that goes away stops the command, once, and its output is drained.
pub async fn stream(
    service: &Arc<Service>,
    mut request: ExecRequest,
    events: &EventSink,
) -> Result<Envelope, Failure> {
    let (tx, mut rx) = mpsc::channel::<(Stream, Bytes)>(8);
    request.max_output = request.max_output.or(Some(STREAM_KEPT));
    let (exec, fresh) = launch(service, request, true, Sinks::Streamed(tx)).await?;
    let _ = events
        .send(&Event::Start {
            exec_id: exec.id.clone(),
        })
        .await;
    if fresh {
        let mut offsets = [0u64; 2];
        let mut gone = false;
        let mut tails: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        let send = async |event: Event, gone: &mut bool| {
            if !*gone && !events.send(&event).await {
                *gone = true;
                exec.cancel(libc::SIGTERM);
            }
        };
        loop {
            match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
                Err(_) => send(Event::Keepalive, &mut gone).await,
                Ok(None) => break,
                Ok(Some((stream, bytes))) => {
                    let index = usize::from(stream == Stream::Stderr);
                    let tail = &mut tails[index];
                    tail.extend_from_slice(&bytes);
                    let whole = trim_partial_end(tail).len();
                    // Bytes that cannot be UTF-8 whatever follows go as base64 now.
                    let ready: Vec<u8> = if whole == 0 && tail.len() < 4 {
                        continue;
                    } else if whole == 0 {
                        std::mem::take(tail)
                    } else {
                        tail.drain(..whole).collect()
                    };
                    let offset = offsets[index];
                    offsets[index] += ready.len() as u64;
                    let data = Data::new(&ready);
                    send(
                        Event::Output {
                            stream,
                            data,
                            offset,
                        },
                        &mut gone,
                    )
                    .await;
                }
            }
        }
        for (index, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
            if !tails[index].is_empty() {
                let data = Data::new(&tails[index]);
                send(
                    Event::Output {
                        stream,
                        data,
                        offset: offsets[index],
                    },
                    &mut gone,
                )
                .await;
            }
        }
    }
    exec.wait(None).await;
    Ok(exec.envelope(false))
}
