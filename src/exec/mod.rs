//! Running the command: the [`ExecPlan`] (what to start, as whom, where, with which env and
//! terminal), and [`run`], which starts it through the [`Runtime`], relays stdin, output,
//! signals and resizes, enforces `--timeout`, and returns the process's [`ExitStatus`].
//!
//! Terminal rules (spec FR-009):
//! * a container TTY when stdin and stdout are both terminals, or with `--log-format json`;
//! * its size: `--terminal-rows`/`--terminal-columns`, else the host terminal's; in place
//!   before the command starts (see `runtime::docker`), and following host resizes (SIGWINCH)
//!   unless fixed by the flags;
//! * the host terminal is raw for the session when stdin is one ([`terminal::RawMode`]).
//!
//! Relay rules:
//! * without a TTY, stdout and stderr stay separate and byte-exact; with one, the terminal's
//!   single stream goes to stdout; in `--log-format json` all output becomes `raw` events on
//!   stderr, never splitting a UTF-8 sequence;
//! * stdin is copied byte-exact on a thread of its own, so a stdin that never ends never holds
//!   dcx up once the command has finished; its EOF is passed on: the input is shut down without
//!   a TTY, and with one (where Docker would end the output too) the terminal's EOF character
//!   is sent, as a person at a terminal would type it;
//! * nothing is gathered in memory: chunks flow through small bounded buffers;
//! * SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to dcx are delivered to the process, and dcx ends
//!   with the process's own status; when a signal cannot be delivered, dcx says so at debug
//!   level and ends at once with 128+N;
//! * `--timeout`: SIGTERM at expiry, SIGKILL after [`KILL_GRACE`], both to the process group
//!   (as coreutils' `timeout`), exit 124.
//!
//! Hand-over: when dcx would have nothing to do while the command runs (no terminal, no
//! timeout, nothing to log) and its stdin, stdout and stderr are pipes, sockets or /dev/null
//! (never a terminal or a file, which the process could do more with than write), the engine is
//! first offered to replace dcx with its own exec command ([`Runtime::hand_over`]; crun takes
//! it): the process then holds those streams itself.

mod output;
mod signals;
mod status;
mod stdin;
pub mod terminal;

pub use status::{ExitStatus, signal_name};

use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;

use crate::log::{Format, Level, Log};
use crate::request::ExecRequest;
use crate::runtime::{Chunk, Container, ExecSpec, HandOver, Runtime, RuntimeError, SignalTarget};
use terminal::HostTerminal;

/// Exit code of a run ended by `--timeout` (as coreutils' `timeout`).
pub const TIMEOUT_EXIT: u8 = 124;
/// How long a timed-out process has between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// What to run, fully decided.
#[derive(Debug, Clone)]
pub struct ExecPlan {
    pub spec: ExecSpec,
    /// Follow host terminal resizes.
    pub follow_resize: bool,
    /// Put the host terminal (stdin) in raw mode.
    pub raw_stdin: bool,
    pub timeout: Option<Duration>,
    /// dcx's stdin, stdout and stderr could be the process's own (pipes, sockets, /dev/null).
    pub stdio_shareable: bool,
}

impl ExecPlan {
    /// Decides the terminal from the request and the host; `user`, `env` and `cwd` come from
    /// the environment layer.
    pub fn new(
        request: &ExecRequest,
        host: HostTerminal,
        user: String,
        env: Vec<String>,
        unset: Vec<String>,
        cwd: String,
    ) -> Self {
        let tty = (host.stdin_tty && host.stdout_tty) || request.log_format == Format::Json;
        let size = match request.terminal_size {
            Some(fixed) => Some(fixed),
            None if tty && host.stdout_tty => terminal::host_size(),
            None => None,
        };
        Self {
            spec: ExecSpec {
                argv: request.command.clone(),
                user: Some(user),
                env,
                unset,
                cwd: Some(cwd),
                tty,
                size: size.filter(|_| tty),
            },
            follow_resize: tty && host.stdout_tty && request.terminal_size.is_none(),
            raw_stdin: tty && host.stdin_tty,
            timeout: request.timeout,
            stdio_shareable: host.stdio_shareable,
        }
    }

    /// Whether the engine may run the command in dcx's place: dcx would have nothing to do
    /// while it runs (no terminal to relay or resize, no timeout to enforce, no events to log),
    /// and dcx's own stdio gives the process nothing more than the relay's pipes would.
    fn may_hand_over(&self, log: &Log) -> bool {
        !self.spec.tty
            && self.stdio_shareable
            && self.timeout.is_none()
            && log.format() == Format::Text
            && !log.enabled(Level::Debug)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("cannot write the command's output: {0}")]
    Output(std::io::Error),
    #[error("cannot listen for signals: {0}")]
    Signals(std::io::Error),
    #[error("Timed out after {}.", humantime::format_duration(*.0))]
    TimedOut(Duration),
}

impl ExecError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::TimedOut(_) => TIMEOUT_EXIT,
            _ => 1,
        }
    }
}

/// Where the timeout stands.
#[derive(Clone, Copy)]
enum Timeout {
    Off,
    Armed(Instant),
    /// SIGTERM sent; SIGKILL due at this instant.
    Terminating(Instant),
    /// SIGKILL sent; dcx stops waiting at this instant.
    Killed(Instant),
}

impl Timeout {
    fn deadline(self) -> Option<Instant> {
        match self {
            Self::Off => None,
            Self::Armed(at) | Self::Terminating(at) | Self::Killed(at) => Some(at),
        }
    }

    fn expired(self) -> bool {
        matches!(self, Self::Terminating(_) | Self::Killed(_))
    }
}

/// What woke the session up.
enum Event {
    Output(Option<Result<Chunk, RuntimeError>>),
    Exited(Result<ExitStatus, RuntimeError>),
    Signal(i32),
    Resize,
    Deadline,
}

/// Runs the plan in the container and returns how the process ended.
pub async fn run(
    runtime: &dyn Runtime,
    container: &Container,
    plan: &ExecPlan,
    log: &Log,
) -> Result<ExitStatus, ExecError> {
    if plan.may_hand_over(log)
        && let HandOver::Failed(err) = runtime.hand_over(container, &plan.spec)
    {
        return Err(err.into());
    }
    let (mut forwarded, mut resizes) = signals::listen().map_err(ExecError::Signals)?;
    let started = log.start(&format!("Run in container: {}", plan.spec.argv.join(" ")));
    let mut session = runtime.start(container, &plan.spec).await?;
    let _raw = plan.raw_stdin.then(terminal::RawMode::enter).flatten();
    let eof = if plan.spec.tty {
        stdin::Eof::SendEofChar
    } else {
        stdin::Eof::Shutdown
    };
    let mut pump = tokio::spawn(stdin::forward(stdin::spawn_reader(), session.input, eof));
    let mut sink = output::Sink::new(log);
    let mut timeout = match plan.timeout {
        Some(limit) => Timeout::Armed(Instant::now() + limit),
        None => Timeout::Off,
    };
    let mut output_open = true;
    // Signals and the timeout are watched until the process has ended, not only while it writes.
    let status = loop {
        let deadline = timeout.deadline();
        let event = tokio::select! {
            chunk = session.output.next(), if output_open => Event::Output(chunk),
            status = session.process.wait(), if !output_open => Event::Exited(status),
            signal = forwarded.next() => Event::Signal(signal),
            () = resizes.next(), if plan.follow_resize => Event::Resize,
            () = sleep_until(deadline), if deadline.is_some() => Event::Deadline,
        };
        match event {
            Event::Output(None) => {
                output_open = false;
                pump.abort();
                sink.finish().map_err(ExecError::Output)?;
            }
            Event::Output(Some(chunk)) => {
                let written = match chunk? {
                    Chunk::Stdout(bytes) => sink.stdout(&bytes),
                    Chunk::Stderr(bytes) => sink.stderr(&bytes),
                };
                match written {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
                        // Our reader went away (`dcx exec … | head`). The engine would go on
                        // draining the process's output, so it gets the SIGPIPE a local writer
                        // would; dcx ends as that writer would.
                        // The connection is closed first: a daemon left with unread output
                        // would hold the exec (and the signal's own exec) up.
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
                        break ExitStatus::Signal(libc::SIGPIPE);
                    }
                    Err(err) => return Err(ExecError::Output(err)),
                }
            }
            Event::Exited(status) => break status?,
            Event::Signal(signal) => {
                log.debug(&format!("Forwarding signal {signal} to the process"));
                if let Err(err) = session.process.signal(signal, SignalTarget::Process).await {
                    log.debug(&format!("{err}; ending the exec"));
                    break ExitStatus::Signal(signal);
                }
            }
            Event::Resize => {
                if let Some(size) = terminal::host_size()
                    && let Err(err) = session.process.resize(size).await
                {
                    log.debug(&format!("cannot resize the container's terminal: {err}"));
                }
            }
            Event::Deadline => {
                let now = Instant::now();
                let (signal, next) = match timeout {
                    Timeout::Armed(_) => (libc::SIGTERM, Timeout::Terminating(now + KILL_GRACE)),
                    Timeout::Terminating(_) => (libc::SIGKILL, Timeout::Killed(now + KILL_GRACE)),
                    // Killed and still not gone: stop waiting.
                    Timeout::Killed(_) | Timeout::Off => break ExitStatus::Unknown,
                };
                timeout = next;
                // As coreutils' timeout: the whole process group, children included.
                if let Err(err) = session.process.signal(signal, SignalTarget::Group).await {
                    log.debug(&format!("{err}; ending the exec"));
                    break ExitStatus::Unknown;
                }
            }
        }
    };
    pump.abort();
    if output_open {
        sink.finish().map_err(ExecError::Output)?;
    }
    log.stop(started);
    if let (Some(limit), true) = (plan.timeout, timeout.expired()) {
        return Err(ExecError::TimedOut(limit));
    }
    log.debug(&format!("Exit status: {status:?}"));
    Ok(status)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> ExecPlan {
        ExecPlan {
            spec: ExecSpec::default(),
            follow_resize: false,
            raw_stdin: false,
            timeout: None,
            stdio_shareable: true,
        }
    }

    #[test]
    fn only_an_exec_with_nothing_to_relay_is_handed_over() {
        let quiet = Log::new(Level::Info, Format::Text);
        assert!(plan().may_hand_over(&quiet));
        let mut tty = plan();
        tty.spec.tty = true;
        assert!(!tty.may_hand_over(&quiet));
        let timed = ExecPlan {
            timeout: Some(Duration::from_secs(1)),
            ..plan()
        };
        assert!(!timed.may_hand_over(&quiet));
        let terminal_or_file = ExecPlan {
            stdio_shareable: false,
            ..plan()
        };
        assert!(!terminal_or_file.may_hand_over(&quiet));
        for log in [
            Log::new(Level::Debug, Format::Text),
            Log::new(Level::Trace, Format::Text),
            Log::new(Level::Info, Format::Json),
        ] {
            assert!(!plan().may_hand_over(&log), "{log:?}");
        }
    }
}
