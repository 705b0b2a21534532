//! `dcx exec` through a running server: the attach connection mode, its typed wire messages, and
//! the warm targets it runs on.
//!
//! A unix-socket connection whose first byte is NUL (never the start of a JSON request) is an
//! attach: the client sends one [`AttachRequest`] line with its own stdin, stdout and stderr as
//! SCM_RIGHTS descriptors, the server prepares the target as `dcx exec` would (with the
//! client's environment, directory and flags: everything that decides the outcome comes in
//! the request), runs the command on a warm engine for that container and user (the
//! in-container helper where it is placed), and the engine reads and writes the client's
//! descriptors directly. Only control messages pass the socket afterwards: signals and
//! resizes from the client ([`ClientMessage`]), the engine's log lines, `started` and the end
//! from the server ([`ServerMessage`]). With `--log-format json` the output is relayed as
//! events, for the client to write as `raw` events.
//!
//! Whatever fails before the command has started (another version, a refused request, a
//! selection that does not resolve) is a [`ServerMessage::Refused`]: the client then runs the
//! command alone, which reports any error exactly as a plain `dcx exec` does.
//! `docs/agent-protocol.md` ("dcx exec through the server") is the reference.

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::agent::fdio;
use crate::agent::service::Service;
use crate::engine::{
    Command, Control, End, EngineSettings, ExecIo, ExitStatus, Output, PrepareRequest, TermSize,
};
use crate::log::{Format, Level, Log, LogSink};

/// The first byte of an attach connection.
pub const ATTACH_BYTE: u8 = 0;
/// The version both ends must have: a server of another build is not used.
pub const VERSION: &str = env!("DCX_VERSION");
/// The longest request line (the client's environment travels in it).
pub const MAX_REQUEST: usize = 8 * 1024 * 1024;
/// How long the output still queued for the client's descriptors may take once the run was
/// stopped (timeout, a signal): as `dcx exec` alone waits.
const OUTPUT_GRACE: Duration = Duration::from_millis(200);

/// One of the client's own descriptors, passed with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FdRole {
    Stdin,
    Stdout,
    Stderr,
}

/// The request of an attach: what `dcx exec` would run, and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachRequest {
    /// The client's [`VERSION`].
    pub version: String,
    /// The descriptors that came with the request, in their order.
    pub fds: Vec<FdRole>,
    pub engine: EngineSettings,
    pub target: PrepareRequest,
    pub command: WireCommand,
    pub log: WireLog,
    /// Send the output as events instead of writing the descriptors (`--log-format json`).
    pub relay_output: bool,
}

/// The command and what the client decided about its terminal and time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireCommand {
    pub argv: Vec<String>,
    pub tty: bool,
    /// Rows and columns from the first instruction (TTY only).
    pub size: Option<(u16, u16)>,
    pub timeout: Option<Duration>,
}

/// The client's log: its level (the reference's numbers, 1 trace … 5 error) and format.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireLog {
    pub level: u8,
    pub json: bool,
}

impl WireLog {
    pub fn of(log: &Log) -> Self {
        let level = [
            Level::Trace,
            Level::Debug,
            Level::Info,
            Level::Warning,
            Level::Error,
        ]
        .into_iter()
        .find(|level| log.enabled(*level))
        .unwrap_or(Level::Error);
        Self {
            level: level as u8,
            json: log.format() == Format::Json,
        }
    }

    fn level(self) -> Result<Level, String> {
        Ok(match self.level {
            1 => Level::Trace,
            2 => Level::Debug,
            3 => Level::Info,
            4 => Level::Warning,
            5 => Level::Error,
            other => return Err(format!("`log.level` {other} is not a level from 1 to 5")),
        })
    }
}

/// What the client sends once the request is out: one JSON object a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// A signal dcx received (Linux number), for the command's process group.
    Signal(i32),
    /// The client's terminal has this size now.
    Resize { rows: u16, cols: u16 },
}

/// Which output stream a relayed chunk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutStream {
    Stdout,
    Stderr,
}

/// What the server sends: one JSON object a line, `event` naming it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Nothing was started: the client runs the command alone (the reason at debug level).
    Refused { code: String, message: String },
    /// A signal came before the command started; nothing was started.
    Interrupted { signal: i32 },
    /// The command has started.
    Started,
    /// A line of the engine's log, formatted for the client's log.
    Log { line: String },
    /// A slow step begins (`step`) or ends (`None`), for a status line on a terminal.
    Progress { step: Option<String> },
    /// Relayed output (`relay_output`).
    Output { stream: OutStream, b64: String },
    /// The run failed after the command started.
    Failed { message: String },
    /// The run is over and its output written: dcx ends with `exit_code`, or, when `timed_out`
    /// holds the limit, with the timeout's error.
    End {
        exit_code: u8,
        timed_out: Option<Duration>,
    },
}

impl ServerMessage {
    fn refused(code: &str, message: impl Into<String>) -> Self {
        Self::Refused {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// The message as one line, newline included.
    pub fn line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// Why the first message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("the client left before its request was whole")]
    Closed,
    #[error("the request line is longer than {} MiB", MAX_REQUEST >> 20)]
    TooLong,
    #[error("cannot read the request: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the attach request line (after the leading NUL) and the descriptors sent with it;
/// also what came after the line.
pub async fn receive(
    stream: &UnixStream,
) -> Result<(Vec<u8>, Vec<OwnedFd>, Vec<u8>), ReceiveError> {
    let mut data = Vec::new();
    let mut fds = Vec::new();
    loop {
        stream.readable().await?;
        let mut chunk = vec![0u8; 64 * 1024];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(8))];
        let got = stream.try_io(tokio::io::Interest::READABLE, || {
            let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
            let received = rustix::net::recvmsg(
                stream,
                &mut [IoSliceMut::new(&mut chunk)],
                &mut control,
                rustix::net::RecvFlags::CMSG_CLOEXEC,
            )?;
            for message in control.drain() {
                if let rustix::net::RecvAncillaryMessage::ScmRights(passed) = message {
                    fds.extend(passed);
                }
            }
            Ok(received.bytes)
        });
        let n = match got {
            Ok(0) => return Err(ReceiveError::Closed),
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err(err.into()),
        };
        data.extend_from_slice(&chunk[..n]);
        if let Some(end) = data.iter().position(|&byte| byte == b'\n') {
            let rest = data.split_off(end + 1);
            data.pop();
            if data.first() == Some(&ATTACH_BYTE) {
                data.remove(0);
            }
            return Ok((data, fds, rest));
        }
        if data.len() > MAX_REQUEST {
            return Err(ReceiveError::TooLong);
        }
    }
}

/// The log sink of one attach: lines and progress go to the client as events.
struct ClientLog(mpsc::UnboundedSender<ServerMessage>);

impl LogSink for ClientLog {
    fn write_line(&self, line: &[u8]) {
        let _ = self.0.send(ServerMessage::Log {
            line: String::from_utf8_lossy(line).into_owned(),
        });
    }

    fn progress(&self, step: Option<&str>) {
        let _ = self.0.send(ServerMessage::Progress {
            step: step.map(str::to_owned),
        });
    }
}

/// A sink relaying one output stream to the client as events.
struct Relay {
    stream: OutStream,
    tx: tokio_util::sync::PollSender<ServerMessage>,
}

impl AsyncWrite for Relay {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bytes: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        let this = self.get_mut();
        match this.tx.poll_reserve(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(_)) => Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
            Poll::Ready(Ok(())) => {
                let message = ServerMessage::Output {
                    stream: this.stream,
                    b64: base64::engine::general_purpose::STANDARD.encode(bytes),
                };
                match this.tx.send_item(message) {
                    Ok(()) => Poll::Ready(Ok(bytes.len())),
                    Err(_) => Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
                }
            }
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Serves one attach connection (its first byte, NUL, not yet read) until the run is over.
pub async fn serve(stream: UnixStream, service: Arc<Service>, stop: CancellationToken) {
    let received = tokio::select! {
        () = stop.cancelled() => return,
        received = receive(&stream) => received,
    };
    let (line, fds, rest) = match received {
        Ok(received) => received,
        Err(err) => {
            let _ = send_now(
                &stream,
                &ServerMessage::refused("bad_request", err.to_string()),
            )
            .await;
            return;
        }
    };
    let request = match parse(&line, fds) {
        Ok(request) => request,
        Err(refusal) => {
            if let ServerMessage::Refused { code, .. } = &refusal {
                service
                    .log
                    .info(&format!("exec.attach refused error={code}"));
            }
            let _ = send_now(&stream, &refusal).await;
            return;
        }
    };
    let began = Instant::now();
    let (read, mut write) = stream.into_split();
    // Events for the client: the log's (unbounded, as the log's lines are few) and the relayed
    // output's (bounded: a slow client holds the relay, not the server's memory).
    let (log_tx, mut log_rx) = mpsc::unbounded_channel::<ServerMessage>();
    let (out_tx, mut out_rx) = mpsc::channel::<ServerMessage>(8);
    let gone = CancellationToken::new();
    // The log's lines go out first; the last message comes through the output's channel,
    // after every output event, and after whatever the log still holds.
    let writer = {
        let gone = gone.clone();
        tokio::spawn(async move {
            loop {
                let (message, last) = tokio::select! {
                    biased;
                    Some(message) = log_rx.recv() => (message, false),
                    message = out_rx.recv() => match message {
                        Some(message) => {
                            let last = matches!(
                                message,
                                ServerMessage::End { .. }
                                    | ServerMessage::Refused { .. }
                                    | ServerMessage::Interrupted { .. }
                                    | ServerMessage::Failed { .. }
                            );
                            (message, last)
                        }
                        None => break,
                    },
                };
                if last {
                    while let Ok(line) = log_rx.try_recv() {
                        if write.write_all(&line.line()).await.is_err() {
                            break;
                        }
                    }
                }
                if write.write_all(&message.line()).await.is_err() {
                    gone.cancel();
                    break;
                }
                if last {
                    break;
                }
            }
            let _ = write.shutdown().await;
        })
    };
    // Control messages: to the run while it goes on, then to `late` (output still written).
    let (control_tx, control_rx) = mpsc::channel::<Control>(16);
    let (late_tx, mut late_rx) = mpsc::channel::<i32>(4);
    let signalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (gone, signalled) = (gone.clone(), signalled.clone());
        tokio::spawn(read_controls(
            read, rest, control_tx, late_tx, gone, signalled,
        ))
    };
    let log = Log::new(
        request.log_level,
        request.log_format,
        Arc::new(ClientLog(log_tx.clone())),
    );
    let outcome = run(
        &service,
        request,
        &log,
        control_rx,
        &out_tx,
        &mut late_rx,
        &signalled,
        &gone,
    )
    .await;
    // Ids and outcomes only: never the command, its env or its output.
    let summary = match &outcome {
        ServerMessage::End {
            exit_code,
            timed_out,
        } => format!(
            "ended exit_code={exit_code}{}",
            if timed_out.is_some() {
                " timed_out"
            } else {
                ""
            }
        ),
        ServerMessage::Refused { code, .. } => format!("refused error={code}"),
        ServerMessage::Interrupted { signal } => format!("interrupted signal={signal}"),
        _ => "failed".to_owned(),
    };
    service.log.info(&format!(
        "exec.attach {summary} {} ms",
        began.elapsed().as_millis()
    ));
    let _ = out_tx.send(outcome).await;
    drop(log);
    drop(log_tx);
    drop(out_tx);
    let _ = writer.await;
    reader.abort();
}

/// Reads the client's control lines after the request (`rest` is what came with it): signals
/// and resizes go to the run while it takes them, signals then to `late`; the client gone
/// (EOF, an error) cancels `gone`.
async fn read_controls(
    read: tokio::net::unix::OwnedReadHalf,
    rest: Vec<u8>,
    control: mpsc::Sender<Control>,
    late: mpsc::Sender<i32>,
    gone: CancellationToken,
    signalled: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut lines = tokio::io::AsyncReadExt::chain(std::io::Cursor::new(rest), read);
    let mut lines = BufReader::new(&mut lines);
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Ok(message) = serde_json::from_slice::<ClientMessage>(&line) else {
            continue;
        };
        let control_message = match message {
            ClientMessage::Signal(signal) => {
                signalled.store(true, std::sync::atomic::Ordering::SeqCst);
                Control::Signal(signal)
            }
            ClientMessage::Resize { rows, cols } => Control::Resize(TermSize { rows, cols }),
        };
        if control.send(control_message).await.is_err()
            && let ClientMessage::Signal(signal) = message
        {
            let _ = late.send(signal).await;
        }
    }
    gone.cancel();
}

/// A parsed request with its descriptors by role.
struct Attach {
    settings: EngineSettings,
    prepare: PrepareRequest,
    command: Command,
    log_level: Level,
    log_format: Format,
    relay: bool,
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
}

/// The typed request, or the refusal to send.
fn parse(line: &[u8], fds: Vec<OwnedFd>) -> Result<Attach, ServerMessage> {
    let bad = |err: serde_json::Error| {
        ServerMessage::refused("bad_request", format!("bad request: {err}"))
    };
    // The version first: a client of another version may send another request shape.
    let value: serde_json::Value = serde_json::from_slice(line).map_err(bad)?;
    let version = value
        .get("version")
        .and_then(|v| v.as_str())
        .unwrap_or("unknown");
    if version != VERSION {
        return Err(ServerMessage::refused(
            "version_mismatch",
            format!("the server is dcx {VERSION}, the client dcx {version}"),
        ));
    }
    let request: AttachRequest = serde_json::from_value(value).map_err(bad)?;
    if request.fds.len() != fds.len() {
        return Err(ServerMessage::refused(
            "bad_request",
            format!(
                "the request names {} descriptors and {} came with it",
                request.fds.len(),
                fds.len()
            ),
        ));
    }
    let level = request
        .log
        .level()
        .map_err(|message| ServerMessage::refused("bad_request", message))?;
    if request.command.argv.is_empty() {
        return Err(ServerMessage::refused("bad_request", "`argv` is empty"));
    }
    let mut attach = Attach {
        settings: request.engine,
        prepare: request.target,
        command: Command {
            argv: request.command.argv,
            tty: request.command.tty,
            size: request
                .command
                .size
                .filter(|_| request.command.tty)
                .map(|(rows, cols)| TermSize { rows, cols }),
            timeout: request.command.timeout,
            ..Command::default()
        },
        log_level: level,
        log_format: if request.log.json {
            Format::Json
        } else {
            Format::Text
        },
        relay: request.relay_output,
        stdin: None,
        stdout: None,
        stderr: None,
    };
    for (role, fd) in request.fds.into_iter().zip(fds) {
        let slot = match role {
            FdRole::Stdin => &mut attach.stdin,
            FdRole::Stdout => &mut attach.stdout,
            FdRole::Stderr => &mut attach.stderr,
        };
        *slot = Some(fd);
    }
    if !attach.relay && (attach.stdout.is_none() || attach.stderr.is_none()) {
        return Err(ServerMessage::refused(
            "bad_request",
            "stdout and stderr must come with the request unless the output is relayed",
        ));
    }
    Ok(attach)
}

/// Prepares and runs an attach; the message that ends it.
#[allow(clippy::too_many_arguments)]
async fn run(
    service: &Arc<Service>,
    attach: Attach,
    log: &Log,
    control: mpsc::Receiver<Control>,
    out_tx: &mpsc::Sender<ServerMessage>,
    late: &mut mpsc::Receiver<i32>,
    signalled: &std::sync::atomic::AtomicBool,
    gone: &CancellationToken,
) -> ServerMessage {
    if let Err(failure) = service.open() {
        return ServerMessage::refused(failure.code.as_str(), failure.message);
    }
    let _permit = match service.exec_permit() {
        Ok(permit) => permit,
        Err(failure) => return ServerMessage::refused(failure.code.as_str(), failure.message),
    };
    let Attach {
        settings,
        prepare,
        command,
        relay,
        stdin,
        stdout,
        stderr,
        ..
    } = attach;
    let mut control = control;
    // Before the command starts, a signal ends the attach and nothing is started.
    let preparing = async {
        let base = service.engines.get(settings.clone()).await?;
        let prepared = base.with_log(log.clone()).prepare(&prepare).await?;
        let engine = service
            .warm
            .get(&settings, &base, &prepared, service.helper, log)
            .await;
        Ok::<_, crate::engine::EngineError>((engine.with_log(log.clone()), prepared))
    };
    let (engine, prepared) = tokio::select! {
        ready = preparing => match ready {
            Ok(ready) => ready,
            Err(err) => return ServerMessage::refused("engine_error", err.to_string()),
        },
        Some(Control::Signal(signal)) = control.recv() => {
            crate::engine::settle_helpers(Duration::from_secs(5)).await;
            return ServerMessage::Interrupted { signal };
        }
        () = gone.cancelled() => {
            return ServerMessage::refused("gone", "the client left before the command started");
        }
    };
    let mut written: Vec<fdio::Written> = Vec::new();
    let mut sink = |fd: Option<OwnedFd>, stream: OutStream| -> std::io::Result<Output> {
        match (relay, fd) {
            (false, Some(fd)) => {
                let (output, done) = fdio::output(fd)?;
                written.push(done);
                Ok(output)
            }
            _ => Ok(Box::pin(Relay {
                stream,
                tx: tokio_util::sync::PollSender::new(out_tx.clone()),
            })),
        }
    };
    let sinks = sink(stdout, OutStream::Stdout)
        .and_then(|stdout| sink(stderr, OutStream::Stderr).map(|stderr| (stdout, stderr)));
    let (stdout, stderr) = match sinks {
        Ok(sinks) => sinks,
        Err(err) => return ServerMessage::refused("io_error", err.to_string()),
    };
    let (started_tx, started_rx) = oneshot::channel();
    let started = Arc::new(Mutex::new(false));
    let announce = {
        let started = started.clone();
        let log_line = out_tx.clone();
        async move {
            if started_rx.await.is_ok() {
                *started.lock().unwrap_or_else(|e| e.into_inner()) = true;
                let _ = log_line.send(ServerMessage::Started).await;
            }
        }
    };
    // A client that leaves while the command runs hangs it up, as a closed terminal would.
    let (run_control_tx, run_control_rx) = mpsc::channel::<Control>(16);
    let forward = {
        let gone = gone.clone();
        async move {
            loop {
                // The controls end only when the client has gone (its connection's end).
                let message = tokio::select! {
                    message = control.recv() => message,
                    () = gone.cancelled() => None,
                };
                let message = message.unwrap_or(Control::Cancel {
                    signal: libc::SIGHUP,
                });
                let cancel = matches!(message, Control::Cancel { .. });
                if run_control_tx.send(message).await.is_err() || cancel {
                    break;
                }
            }
            // Dropped here: later signals go to `late`.
            drop(control);
        }
    };
    let io = ExecIo {
        stdin: Some(match stdin.filter(|fd| fdio::readable(fd)) {
            Some(fd) => fdio::input(fd),
            None => Box::pin(tokio::io::empty()),
        }),
        stdout,
        stderr,
        control: Some(run_control_rx),
        started: Some(started_tx),
    };
    let running = engine.run(&prepared, &command, io);
    let (mut running, mut forward, mut announce) =
        (Box::pin(running), Box::pin(forward), Box::pin(announce));
    let (mut forwarding, mut announcing) = (true, true);
    let finished = loop {
        tokio::select! {
            finished = &mut running => break finished,
            () = &mut forward, if forwarding => forwarding = false,
            () = &mut announce, if announcing => announcing = false,
        }
    };
    // The run's controls end here: later signals go to `late`.
    drop(forward);
    if announcing {
        // The run consumed its start signal: this ends at once, `Started` sent when it began.
        announce.await;
    }
    let began = *started.lock().unwrap_or_else(|e| e.into_inner());
    let finished = match finished {
        Ok(finished) => finished,
        // Nothing ran: the client runs it alone, and reports what fails as `dcx exec` does.
        Err(err) if !began => return ServerMessage::refused("engine_error", err.to_string()),
        Err(err) => {
            return ServerMessage::Failed {
                message: err.to_string(),
            };
        }
    };
    // The output still queued for the client's descriptors: all of it after a run that ended
    // by itself, else what comes within the grace; a signal meanwhile ends the wait with its
    // status, as `dcx exec` alone does.
    let whole = finished.end == End::Exited && !signalled.load(std::sync::atomic::Ordering::SeqCst);
    let all_written = async {
        for done in written {
            let _ = done.await;
        }
    };
    let bound = async {
        if whole {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(OUTPUT_GRACE).await;
    };
    let interrupted = tokio::select! {
        () = all_written => None,
        () = bound => None,
        Some(signal) = late.recv() => Some(signal),
    };
    if let Some(signal) = interrupted {
        return ServerMessage::End {
            exit_code: ExitStatus::Signal(signal).exit_code(),
            timed_out: None,
        };
    }
    match finished.end {
        End::TimedOut(limit) => ServerMessage::End {
            exit_code: crate::agent::methods::attach::TIMED_OUT_EXIT,
            timed_out: Some(limit),
        },
        _ => ServerMessage::End {
            exit_code: finished.status.exit_code(),
            timed_out: None,
        },
    }
}

/// The exit code of a run ended by its timeout (the client reports the timeout's error).
pub const TIMED_OUT_EXIT: u8 = 124;

/// Writes one message on a connection that is not split yet.
async fn send_now(stream: &UnixStream, message: &ServerMessage) -> std::io::Result<()> {
    let line = message.line();
    let mut written = 0;
    while written < line.len() {
        stream.writable().await?;
        match stream.try_write(&line[written..]) {
            Ok(n) => written += n,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
