//! Running one command: start it through the [`Runtime`], relay it over the caller's [`ExecIo`].
//!
//! [`run`] starts an [`ExecSpec`] and relays it until the process has ended, then returns how it
//! ended ([`Finished`]). Nothing here touches the process's own stdio, signals or terminal: the
//! caller supplies the input stream, the output sinks and the control channel (signals, resizes,
//! cancel), and decides what the result means to its user.
//!
//! Relay rules:
//! * without a TTY, stdout and stderr chunks go to their own sinks, byte-exact; with one, the
//!   terminal's single stream goes to the stdout sink (the engine's own messages may still arrive
//!   on stderr);
//! * the input is copied byte-exact and its EOF passed on (`stdin.rs`): the exec's input is shut
//!   down without a TTY, and with one (where Docker would end the output too) the terminal's EOF
//!   character is sent, as a person at a terminal would type it. No input at all is an immediate
//!   EOF without a TTY; with one, nothing is typed. The input is abandoned once the output has
//!   ended, so an input that never ends never holds the run up;
//! * nothing is gathered in memory: chunks flow from the engine to the sinks as they come, and the
//!   sinks are shut down (flushed) when the output ends; a sink may make the run wait (a slow
//!   reader), but controls and the timeout are served meanwhile, and a write that never finishes is
//!   given up once the process is gone after a timeout, a cancel or a forwarded signal;
//! * the run ends when the process does: once it has exited, its output is read until it ends or
//!   the engine sends nothing for [`DRAIN`] (time spent waiting on a slow sink does not count, and
//!   output that is there when the drain's time is up is still taken: a starved runtime sees
//!   both at once), so
//!   a background child that keeps the output open (`server &`) does not hold the run; that child
//!   is left running; with a drain limit (the agent's commands), a child that keeps writing is
//!   read no longer than that after the exit (not counting time a slow sink made the run wait,
//!   up to [`DRAIN_LIMIT_CAP`], so that output already on its way is not cut off);
//! * a sink whose reader has gone away (a broken pipe) ends the run: the connection is closed, the
//!   process group gets the SIGPIPE a local writer would, and the status is SIGPIPE's;
//! * [`Control::Signal`] is delivered to the process's whole group (what a terminal's ^C does:
//!   `sh -c 'a | b'` and `bash -c 'sleep 30; …'` end as they would at a prompt, with or without a
//!   terminal); when it cannot be, or is not delivered within [`FORWARD_LIMIT`], or a second one
//!   comes while it is on its way, the run ends at once with that signal's status
//!   ([`End::Abandoned`]), saying so;
//! * `timeout` and [`Control::Cancel`]: SIGTERM (or the signal asked for) to the process group,
//!   SIGKILL after [`KILL_GRACE`] (as coreutils' `timeout`), and after another grace the run stops
//!   waiting; once the process has ended, SIGKILL goes to what is left of its group. Signals and
//!   the timeout are watched until the process has ended, not only while it writes.

mod stdin;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::log::Log;
use crate::runtime::{
    Chunk, Container, ExecSpec, ExitStatus, Runtime, RuntimeError, SignalTarget, TermSize,
};

/// How long a stopped process has between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);
/// Once the process has exited, how long its output may stay silent before the run stops
/// reading it (a background child holding it open is left running).
pub const DRAIN: Duration = Duration::from_millis(200);
/// How much time spent waiting on slow sinks may push a drain limit back.
pub const DRAIN_LIMIT_CAP: Duration = Duration::from_secs(60);
/// How long a forwarded signal may take to be delivered before the run gives up on the engine
/// (a stalled daemon): the caller must be able to end dcx.
pub const FORWARD_LIMIT: Duration = Duration::from_secs(5);

/// A byte stream the command reads as its stdin.
pub type Input = Pin<Box<dyn AsyncRead + Send>>;
/// Where one of the command's output streams goes.
pub type Output = Pin<Box<dyn AsyncWrite + Send>>;

/// The caller's side of one run.
pub struct ExecIo {
    /// The command's stdin; `None` gives it EOF at once (with a TTY, nothing is typed).
    pub stdin: Option<Input>,
    /// The command's stdout, or the terminal's one stream with a TTY.
    pub stdout: Output,
    pub stderr: Output,
    /// Signals, resizes and cancel while it runs; `None` or a closed channel sends nothing.
    pub control: Option<mpsc::Receiver<Control>>,
    /// Told once the process has started (before any input is read), for what the caller
    /// does only while a command runs (a terminal in raw mode, a `start` event).
    pub started: Option<oneshot::Sender<()>>,
}

#[cfg(test)]
impl ExecIo {
    /// The tests' plainest run: stdout into `out`, stderr dropped, no stdin, no controls.
    pub(crate) fn stdout_to(out: crate::runtime::memory::Buffer) -> Self {
        Self {
            stdin: None,
            stdout: Box::pin(out),
            stderr: Box::pin(tokio::io::sink()),
            control: None,
            started: None,
        }
    }
}

/// What the caller can do to a running command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Deliver this signal (Linux number) to the process.
    Signal(i32),
    /// Resize its terminal (TTY runs).
    Resize(TermSize),
    /// Stop it: this signal to its process group, then SIGKILL after [`KILL_GRACE`].
    Cancel { signal: i32 },
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    pub status: ExitStatus,
    pub end: End,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The process ended by itself (or by a signal it was sent).
    Exited,
    /// The timeout expired and the process was stopped.
    TimedOut(Duration),
    /// [`Control::Cancel`] stopped it.
    Cancelled,
    /// An output sink's reader went away (a broken pipe).
    OutputClosed,
    /// A signal could not be delivered: the run stopped waiting for the process.
    Abandoned,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("cannot write the command's output: {0}")]
    Output(std::io::Error),
}

/// A process being stopped (timeout or cancel).
#[derive(Clone, Copy)]
struct Stopping {
    end: End,
    /// SIGKILL has been sent.
    killed: bool,
    /// When the next step is due.
    next: Instant,
}

/// What woke the run up.
enum Event {
    Output(Option<Result<Chunk, RuntimeError>>),
    /// A signal was delivered, or could not be.
    Delivered(i32, Purpose, Result<(), crate::runtime::SignalError>),
    /// A write finished: the sink (by index) comes back.
    Written(usize, Output, std::io::Result<()>),
    Exited(Result<ExitStatus, RuntimeError>),
    Control(Option<Control>),
    Deadline,
    /// The process has exited; its output may still be open.
    ProcessGone,
    /// The output stayed silent for [`DRAIN`] after the process exited.
    Drained,
    /// A forwarded signal was not delivered within [`FORWARD_LIMIT`].
    Undelivered,
}

/// Runs `spec` in `container` with the caller's I/O until the process has ended; `timeout`
/// bounds its run.
pub async fn run(
    runtime: &dyn Runtime,
    container: &Container,
    spec: &ExecSpec,
    timeout: Option<Duration>,
    drain_limit: Option<Duration>,
    io: ExecIo,
    log: &Log,
) -> Result<Finished, ExecError> {
    let ExecIo {
        stdin,
        stdout,
        stderr,
        mut control,
        started: on_start,
    } = io;
    // The sinks, each lent to the write in flight while there is one.
    let mut sinks: [Option<Output>; 2] = [Some(stdout), Some(stderr)];
    let mut writing: Option<Writing> = None;
    // Signals on their way, delivered beside the relay: an engine may need the output read to
    // deliver one (Docker's kill exec can wait behind an exec whose output nobody reads).
    let mut deliveries: Deliveries = futures_util::stream::FuturesUnordered::new();
    let started = log.start(&format!("Run in container: {}", spec.argv.join(" ")));
    let mut session = runtime.start(container, spec).await?;
    if let Some(on_start) = on_start {
        let _ = on_start.send(());
    }
    let eof = if spec.tty {
        stdin::Eof::SendEofChar
    } else {
        stdin::Eof::Shutdown
    };
    let mut pump = tokio::spawn(stdin::forward(stdin, session.input, eof));
    // A timeout too long to represent never expires.
    let timeout_at = timeout.and_then(|limit| Instant::now().checked_add(limit));
    let mut stopping: Option<Stopping> = None;
    let mut output_open = true;
    let mut exited = session.process.exited();
    // Set once the process has exited while its output is still open; never past `drain_end`.
    let mut drain_until: Option<Instant> = None;
    let mut drain_end: Option<Instant> = None;
    // When the write in flight was handed to its sink; and the latest the drain limit may be
    // pushed to by time spent waiting on sinks.
    let mut write_began = Instant::now();
    let mut drain_cap: Option<Instant> = None;
    // Forwarded signals not yet delivered, and when the oldest of them must have been.
    let mut forwarding: usize = 0;
    let mut forward_by: Option<Instant> = None;
    let mut last_forwarded = libc::SIGTERM;
    // A signal has been forwarded: once the process is gone, a stalled sink is not waited for.
    let mut signalled = false;
    let (status, forced) = loop {
        let deadline = stopping.map(|stop| stop.next).or(timeout_at);
        let event = tokio::select! {
            chunk = session.output.next(), if output_open && writing.is_none() => Event::Output(chunk),
            (index, sink, written) = in_flight(&mut writing), if writing.is_some() => {
                Event::Written(index, sink, written)
            }
            status = session.process.wait(), if !output_open => Event::Exited(status),
            () = &mut exited, if output_open && drain_until.is_none() => Event::ProcessGone,
            // A slow sink is waited for, unless the run is stopping the command anyway or the
            // caller sent a signal (who wants out should not wait for a stalled reader).
            // Output already there is not silence: a starved runtime sees both at once.
            () = sleep_until(drain_until),
                if output_open && (writing.is_none() || stopping.is_some() || signalled) => {
                    match writing.is_none().then(|| session.output.next().now_or_never()).flatten() {
                        Some(chunk) => Event::Output(chunk),
                        None => Event::Drained,
                    }
                }
            message = next_control(&mut control) => Event::Control(message),
            () = sleep_until(deadline) => Event::Deadline,
            () = sleep_until(forward_by), if forwarding > 0 => Event::Undelivered,
            Some((signal, target, delivered)) = deliveries.next(), if !deliveries.is_empty() => {
                Event::Delivered(signal, target, delivered)
            }
        };
        match event {
            Event::Output(None) => {
                output_open = false;
                pump.abort();
                finish(&mut sinks).await?;
            }
            Event::ProcessGone => {
                let now = Instant::now();
                drain_end = drain_limit.and_then(|limit| now.checked_add(limit));
                drain_cap = drain_limit.and_then(|limit| now.checked_add(limit + DRAIN_LIMIT_CAP));
                drain_until = Some(drain_end.map_or(now + DRAIN, |end| end.min(now + DRAIN)));
            }
            Event::Drained => {
                // A write still waiting on its reader is given up with the rest.
                log.debug("The process has exited and its output is still open (a background child?): not waiting for it");
                writing = None;
                session.output = Box::pin(futures_util::stream::empty());
                output_open = false;
                pump.abort();
                finish(&mut sinks).await?;
            }
            Event::Output(Some(chunk)) => {
                let (index, bytes) = match chunk? {
                    Chunk::Stdout(bytes) => (0, bytes),
                    Chunk::Stderr(bytes) => (1, bytes),
                };
                // A sink given up on (its write never finished) gets nothing more.
                if let Some(mut sink) = sinks[index].take() {
                    write_began = Instant::now();
                    writing = Some(Box::pin(async move {
                        let written = write(&mut sink, &bytes).await;
                        (index, sink, written)
                    }));
                }
            }
            Event::Written(index, sink, written) => {
                writing = None;
                sinks[index] = Some(sink);
                match written {
                    // The silence counts from when the sink took the chunk: a sink that made us
                    // wait (a slow reader) must not look like a silent engine.
                    Ok(()) if drain_until.is_some() => {
                        // Nor must a slow reader cut off output that was already on its way:
                        // the drain limit does not count the time a sink made us wait (up to
                        // a cap, so a child that writes for ever still cannot hold the run).
                        if let (Some(end), Some(cap)) = (drain_end, drain_cap) {
                            drain_end = Some((end + write_began.elapsed()).min(cap));
                        }
                        let quiet = Instant::now() + DRAIN;
                        drain_until = Some(drain_end.map_or(quiet, |end| end.min(quiet)));
                    }
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
                        // The reader went away (`dcx exec … | head`). The engine would go on
                        // draining the process's output, so it gets the SIGPIPE a local writer
                        // would. The connection is closed first: a daemon left with unread
                        // output would hold the exec (and the signal's own exec) up.
                        log.debug("stdout closed by its reader; ending with SIGPIPE's status");
                        session.output = Box::pin(futures_util::stream::empty());
                        pump.abort();
                        let _ = (&mut pump).await;
                        if let Err(err) = session
                            .process
                            .signal(libc::SIGPIPE, SignalTarget::Group)
                            .await
                        {
                            log.debug(&err.to_string());
                        }
                        break (ExitStatus::Signal(libc::SIGPIPE), Some(End::OutputClosed));
                    }
                    Err(err) => return Err(ExecError::Output(err)),
                }
            }
            Event::Exited(status) => break (status?, None),
            Event::Delivered(_, purpose, Ok(())) => {
                if purpose == Purpose::Forward {
                    forwarding = forwarding.saturating_sub(1);
                    if forwarding == 0 {
                        forward_by = None;
                    }
                }
            }
            Event::Undelivered => {
                log.warn(&format!(
                    "The engine did not deliver the signal within {} s (is the daemon stalled?): dcx ends; the command may still run in the container.",
                    FORWARD_LIMIT.as_secs()
                ));
                break (ExitStatus::Signal(last_forwarded), Some(End::Abandoned));
            }
            Event::Delivered(signal, Purpose::Forward, Err(err)) => {
                log.debug(&format!("{err}; ending the exec"));
                break (ExitStatus::Signal(signal), Some(End::Abandoned));
            }
            Event::Delivered(_, Purpose::Stop, Err(err)) => {
                log.debug(&format!("{err}; ending the exec"));
                break (ExitStatus::Unknown, None);
            }
            Event::Control(None) => control = None,
            Event::Control(Some(Control::Signal(signal))) if forwarding > 0 => {
                // A second signal while the first is still on its way: the user wants out.
                log.warn("A second signal while the first is still undelivered: dcx ends; the command may still run in the container.");
                break (ExitStatus::Signal(signal), Some(End::Abandoned));
            }
            Event::Control(Some(Control::Signal(signal))) => {
                forwarding += 1;
                signalled = true;
                last_forwarded = signal;
                forward_by = Some(Instant::now() + FORWARD_LIMIT);
                log.debug(&format!("Forwarding signal {signal} to the process group"));
                deliver(&mut deliveries, &session.process, signal, Purpose::Forward);
            }
            Event::Control(Some(Control::Resize(size))) => {
                if let Err(err) = session.process.resize(size).await {
                    log.debug(&format!("cannot resize the container's terminal: {err}"));
                }
            }
            Event::Control(Some(Control::Cancel { signal })) => {
                if stopping.is_none() {
                    log.debug(&format!("Cancelling: signal {signal} to the process group"));
                    let stop = Stopping {
                        end: End::Cancelled,
                        killed: signal == libc::SIGKILL,
                        next: Instant::now() + KILL_GRACE,
                    };
                    stopping = Some(stop);
                    deliver(&mut deliveries, &session.process, signal, Purpose::Stop);
                }
            }
            Event::Deadline => {
                let (signal, stop) = match stopping {
                    None => (
                        libc::SIGTERM,
                        Stopping {
                            end: End::TimedOut(timeout.unwrap_or_default()),
                            killed: false,
                            next: Instant::now() + KILL_GRACE,
                        },
                    ),
                    Some(stop) if !stop.killed => (
                        libc::SIGKILL,
                        Stopping {
                            killed: true,
                            next: Instant::now() + KILL_GRACE,
                            ..stop
                        },
                    ),
                    // Killed and still not gone: stop waiting.
                    Some(_) => break (ExitStatus::Unknown, None),
                };
                stopping = Some(stop);
                deliver(&mut deliveries, &session.process, signal, Purpose::Stop);
            }
        }
    };
    pump.abort();
    if output_open {
        // A write still in flight (a reader that stopped reading) is not waited for.
        drop(writing);
        finish(&mut sinks).await?;
    }
    if stopping.is_some() {
        // A stopped command leaves nothing behind: whatever is left of its group goes too.
        if let Err(err) = session
            .process
            .signal(libc::SIGKILL, SignalTarget::Group)
            .await
        {
            log.debug(&err.to_string());
        }
    }
    log.stop(started);
    log.debug(&format!("Exit status: {status:?}"));
    Ok(Finished {
        status,
        // A stop the run began (timeout, cancel) names the end, however the loop ended.
        end: stopping
            .map(|stop| stop.end)
            .or(forced)
            .unwrap_or(End::Exited),
    })
}

async fn write(sink: &mut Output, bytes: &[u8]) -> std::io::Result<()> {
    sink.write_all(bytes).await?;
    sink.flush().await
}

/// Why a signal is sent: forwarded from the caller, or stopping the command (timeout, cancel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Forward,
    Stop,
}

/// Signals on their way.
type Deliveries = futures_util::stream::FuturesUnordered<
    Pin<Box<dyn Future<Output = (i32, Purpose, Result<(), crate::runtime::SignalError>)> + Send>>,
>;

/// Starts delivering `signal` to the process group beside the relay.
fn deliver(
    deliveries: &mut Deliveries,
    process: &std::sync::Arc<dyn crate::runtime::Process>,
    signal: i32,
    purpose: Purpose,
) {
    let process = process.clone();
    deliveries.push(Box::pin(async move {
        let delivered = process.signal(signal, SignalTarget::Group).await;
        (signal, purpose, delivered)
    }));
}

/// A write in flight, with the sink it was lent.
type Writing = Pin<Box<dyn Future<Output = (usize, Output, std::io::Result<()>)> + Send>>;

async fn in_flight(writing: &mut Option<Writing>) -> (usize, Output, std::io::Result<()>) {
    match writing {
        Some(write) => write.await,
        None => std::future::pending().await,
    }
}

/// The output has ended: flush both sinks (and let them pass on what they held back).
async fn finish(sinks: &mut [Option<Output>; 2]) -> Result<(), ExecError> {
    for sink in sinks.iter_mut().flatten() {
        match sink.shutdown().await {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(err) => return Err(ExecError::Output(err)),
        }
    }
    Ok(())
}

async fn next_control(control: &mut Option<mpsc::Receiver<Control>>) -> Option<Control> {
    match control {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
