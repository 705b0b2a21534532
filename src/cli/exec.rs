//! `dcx exec`: runs the request on the engine, wired to dcx's streams, signals and terminal.
//!
//! Terminal rules (spec FR-009):
//! * a container TTY when stdin and stdout are both terminals, or with `--log-format json`;
//! * its size: `--terminal-rows`/`--terminal-columns`, else the host terminal's; in place
//!   before the command starts, and following host resizes (SIGWINCH) unless fixed by the
//!   flags;
//! * the host terminal is raw for the run when stdin is one ([`RawMode`]).
//!
//! Output goes byte-exact to fd 1 and 2, or in `--log-format json` as `raw` events on stderr;
//! fd 0 is the command's input. SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to dcx are delivered
//! to the process, and dcx ends with its status; `--timeout` ends with exit 124.
//!
//! Hand-over: when dcx would have nothing to do while the command runs (no terminal, no
//! timeout, nothing to log) and its stdin, stdout and stderr are pipes, sockets or /dev/null
//! (never a terminal or a file, which the process could do more with than write), the engine's
//! own exec command, when it has one (crun), runs with those streams in a process group of its
//! own: nothing is relayed, dcx passes its signals on to that group and ends with its status.

use super::error::Error;
use super::request::ExecRequest;
use super::stdio::{self, Stream};
use super::terminal::{HostTerminal, RawMode};
use super::{args, report, signals, stderr_log};
use crate::engine::{Command, Control, End, Engine, ExecIo, ExitStatus, HandOver};
use crate::log::{Format, Level, Log};

/// Runs `dcx exec` and returns the process exit code.
pub(super) fn command(exec_args: args::ExecArgs) -> u8 {
    let log = stderr_log(exec_args.log_level.into(), exec_args.log_format.into());
    let request = match std::env::current_dir()
        .map_err(Error::Io)
        .and_then(|cwd| ExecRequest::from_args(exec_args, &cwd).map_err(Error::from))
    {
        Ok(request) => request,
        Err(err) => return report(&log, &err, None),
    };
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Io)
        .and_then(|runtime| {
            let result = runtime.block_on(execute(&request, &log));
            // Never wait for the stdin reader: it may sit in a read on a terminal forever.
            runtime.shutdown_background();
            result
        });
    match outcome {
        Ok(code) => code,
        Err(err) => report(&log, &err, Some(&request)),
    }
}

async fn execute(request: &ExecRequest, log: &Log) -> Result<u8, Error> {
    // Through a running server when DCX_SERVER names one that takes the request.
    match super::server::attach(request, log).await {
        super::server::Attempt::Done(result) => return result,
        super::server::Attempt::Alone(Some(why)) => {
            log.debug(&format!("Not through a server ({why}): running alone"));
        }
        super::server::Attempt::Alone(None) => {}
    }
    // Interrupted before the command starts (a slow probe, a stalled daemon): nothing dcx
    // started is left behind, and dcx says so at once.
    let mut early = signals::listen(false).map_err(Error::Signals)?;
    let host = HostTerminal::detect();
    let (tty, size) =
        host.command_terminal(request.log_format == Format::Json, request.terminal_size);
    let command = Command {
        argv: request.command.clone(),
        tty,
        size,
        timeout: request.timeout,
        ..Command::default()
    };
    let preparing = async {
        let engine = Engine::connect(&request.settings, log.clone()).await?;
        let prepared = engine.prepare_for(&request.prepare, &command).await?;
        Ok::<_, Error>((engine, prepared))
    };
    let (engine, prepared) = tokio::select! {
        ready = preparing => ready?,
        Some(Control::Signal(signal)) = early.recv() => {
            crate::engine::settle_helpers(std::time::Duration::from_secs(5)).await;
            let name = crate::engine::signal_name(signal).unwrap_or("a signal");
            log.error(&format!(
                "Interrupted by SIG{name} before the command started; nothing was left running."
            ));
            return Ok(ExitStatus::Signal(signal).exit_code());
        }
    };
    drop(early);
    if request.dry_run {
        let plan = engine.plan(&prepared, &command);
        let shown = serde_json::to_string_pretty(&plan).map_err(|err| Error::Io(err.into()))?;
        stdio::print(&format!("{shown}\n"));
        return Ok(0);
    }
    if may_hand_over(&command, host, log)
        && let Some(mut hand_over) = engine.hand_over(&prepared, &command)?
    {
        return hand_over_to(&mut hand_over).await;
    }
    let follow_resize = tty && host.stdout_tty && request.terminal_size.is_none();
    let control = signals::listen(follow_resize).map_err(Error::Signals)?;
    // Signals that come once the relay has ended (while the output is still being written).
    let mut late = signals::listen(false).map_err(Error::Signals)?;
    let events = (log.format() == Format::Json).then_some(log);
    let io = ExecIo {
        stdin: Some(stdio::stdin_input()),
        stdout: stdio::output(Stream::Stdout, events),
        stderr: stdio::output(Stream::Stderr, events),
        control: Some(control),
        started: None,
    };
    // The host terminal is raw before the command can write its first byte (a terminal still
    // mapping `\n` to `\r\n` would turn the container's `\r\n` into `\r\r\n`), until its
    // last byte is written, and back on every way out (the guard's drop, the panic hook).
    let raw = if tty && host.stdin_tty {
        RawMode::enter()
    } else {
        None
    };
    let finished = engine.run(&prepared, &command, io).await;
    let whole = matches!(&finished, Ok(done) if done.end == End::Exited);
    let interrupted = out_written(&mut late, whole).await;
    drop(raw);
    let finished = finished?;
    if let Some(signal) = interrupted {
        return Ok(ExitStatus::Signal(signal).exit_code());
    }
    match finished.end {
        End::TimedOut(limit) => Err(Error::TimedOut(limit)),
        _ => Ok(finished.status.exit_code()),
    }
}

/// How long the output still queued for fd 1/2 may take to reach its reader when the run was
/// stopped (timeout, a signal, an error): enough for a reader that reads, not for one that
/// stalls.
const OUTPUT_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// Waits for the command's output to be written out: all of it when the run ended by itself
/// (`whole`) and no signal came to dcx, else at most [`OUTPUT_GRACE`]. A signal that comes while
/// waiting ends the wait at once and is returned (dcx ends with its status).
async fn out_written(late: &mut tokio::sync::mpsc::Receiver<Control>, whole: bool) -> Option<i32> {
    // Signals dcx received during the run (forwarded by the relay) are already on this channel
    // once the listener task has run: they bound the wait, they do not end it.
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    let mut signalled = false;
    while late.try_recv().is_ok() {
        signalled = true;
    }
    let bound = async {
        if whole && !signalled {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(OUTPUT_GRACE).await;
    };
    tokio::select! {
        () = stdio::written() => None,
        () = bound => None,
        Some(Control::Signal(signal)) = late.recv() => Some(signal),
    }
}

/// Whether the engine may run the command in dcx's place: dcx would have nothing to do while
/// it runs (no terminal to relay or resize, no timeout to enforce, no events to log), and
/// dcx's own stdio gives the process nothing more than the relay's pipes would.
fn may_hand_over(command: &Command, host: HostTerminal, log: &Log) -> bool {
    !command.tty
        && host.stdio_shareable
        && command.timeout.is_none()
        && log.format() == Format::Text
        && !log.enabled(Level::Debug)
}

/// Runs the engine's own exec command with dcx's stdio (nothing is relayed) in a process
/// group of its own, passes the signals dcx receives on to the exec'd process's whole group
/// (so a pipeline or a shell waiting on a child ends as at a terminal's ^C), and ends with its
/// status.
async fn hand_over_to(hand_over: &mut HandOver) -> Result<u8, Error> {
    let mut control = signals::listen(false).map_err(Error::Signals)?;
    let mut child = hand_over.spawn()?;
    let pid = child.id();
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.map_err(Error::Io)?,
            Some(Control::Signal(signal)) = control.recv() => {
                if let Some(pid) = pid {
                    hand_over.signal(pid, signal);
                }
            }
        }
    };
    use std::os::unix::process::ExitStatusExt;
    let status = match (status.code(), status.signal()) {
        (Some(code), _) => ExitStatus::Code(i64::from(code)),
        (None, Some(signal)) => ExitStatus::Signal(signal),
        (None, None) => ExitStatus::Unknown,
    };
    Ok(status.exit_code())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_an_exec_with_nothing_to_relay_is_handed_over() {
        let host = HostTerminal {
            stdin_tty: false,
            stdout_tty: false,
            stdio_shareable: true,
        };
        let log = |level, format| Log::new(level, format, Arc::new(|_: &[u8]| {}));
        let quiet = log(Level::Info, Format::Text);
        let plain = Command::new(["true"]);
        assert!(may_hand_over(&plain, host, &quiet));
        let tty = Command {
            tty: true,
            ..plain.clone()
        };
        assert!(!may_hand_over(&tty, host, &quiet));
        let timed = Command {
            timeout: Some(Duration::from_secs(1)),
            ..plain.clone()
        };
        assert!(!may_hand_over(&timed, host, &quiet));
        let terminal_or_file = HostTerminal {
            stdio_shareable: false,
            ..host
        };
        assert!(!may_hand_over(&plain, terminal_or_file, &quiet));
        for log in [
            log(Level::Debug, Format::Text),
            log(Level::Trace, Format::Text),
            log(Level::Info, Format::Json),
        ] {
            assert!(!may_hand_over(&plain, host, &log), "{log:?}");
        }
    }
}
