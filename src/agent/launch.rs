//! Starting one exec of a session: permits, wrapped command, and the task running it.
//!
//! [`launch`] takes a typed [`ExecRequest`], claims what it counts against (the server's running
//! execs; the session's foreground slot for `exec.run`/`exec.stream`), registers the [`Exec`] (or
//! returns the earlier one of a caller-chosen `exec_id`), and spawns the engine run of the command
//! behind the session's wrapper, with the request's variables (checked as shell names; the server's
//! token variable is dropped) and non-interactive defaults where the session sets none
//! (`PAGER=cat`, `GIT_PAGER=cat`, `GIT_TERMINAL_PROMPT=0`, `DEBIAN_FRONTEND=noninteractive`). The
//! permits travel with the task and drop when it ends, before the result is published, so a caller
//! that saw the end may start the next command at once.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::envelope::{Ending, State, Stream};
use super::exec::Exec;
use super::protocol::Failure;
use super::protocol::random_id;
use super::service::{Service, TOKEN_VARIABLE};
use super::wrapper::{self, Wrapped};
use crate::engine::{End, ExecIo, Input};

/// Output kept per stream of an exec (head and tail halves).
pub const DEFAULT_OUTPUT: usize = 1024 * 1024;
/// The most output kept per stream that a caller may ask for.
pub const MAX_OUTPUT: u64 = 64 * 1024 * 1024;
/// The most variables one request's `env` may carry: a shell's cost of setting and exporting
/// them grows with the square of their number (20,000 took 24 s).
pub const MAX_ENV: usize = 1024;
/// The default command timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Once a command's own process has exited, how long output its background children keep
/// writing is still read into its answer (they run on; the helper reads and drops the rest).
pub const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// Non-interactive defaults for every command, unless the session's env sets them (the wrapper
/// applies them only where unset): no pager, no prompt, no editor (one that fails at once), no
/// colour; and, without a terminal, `TERM=dumb`.
const QUIET_ENV: [(&str, &str); 10] = [
    ("PAGER", "cat"),
    ("GIT_PAGER", "cat"),
    ("GIT_TERMINAL_PROMPT", "0"),
    ("DEBIAN_FRONTEND", "noninteractive"),
    ("GIT_EDITOR", ":"),
    ("EDITOR", "false"),
    ("VISUAL", "false"),
    ("GIT_MERGE_AUTOEDIT", "no"),
    ("NO_COLOR", "1"),
    ("TERM", "dumb"),
];

/// The defaults for a command with a terminal (`tty`) or pipes: a terminal keeps its editor
/// and its `TERM`.
pub fn quiet_env(tty: bool) -> Vec<String> {
    QUIET_ENV
        .iter()
        .filter(|(name, _)| !tty || !matches!(*name, "GIT_EDITOR" | "EDITOR" | "VISUAL" | "TERM"))
        .map(|(name, value)| format!("{name}={value}"))
        .collect()
}

/// What to run: a shell command line, or an argv run as is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum What {
    Shell(String),
    Argv(Vec<String>),
}

/// One command to start in a session, typed (what `dcx mcp` builds directly).
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub session_id: String,
    pub what: What,
    /// Bytes for its stdin (then EOF, unless `stdin_open`).
    pub stdin: Option<Vec<u8>>,
    /// Keep stdin open for `exec.write_stdin`.
    pub stdin_open: bool,
    /// Variables for this command only, checked as shell names.
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    /// `None`: for `exec.run`/`exec.stream`, the default (120 s, at most the server's
    /// `--max-timeout`); for `exec.start`, no limit.
    pub timeout: Option<Duration>,
    /// Output kept per stream; `None`: [`DEFAULT_OUTPUT`].
    pub max_output: Option<usize>,
    /// A caller-chosen id: used again, it answers with the earlier exec.
    pub exec_id: Option<String>,
    /// Keep the whole output (in temporary files on the host), not only its head and tail.
    pub keep_whole: bool,
    /// PTY mode: a terminal of this size (its output one stream, stdout, rendered on a screen).
    pub terminal: Option<crate::engine::TermSize>,
}

impl ExecRequest {
    /// What makes two requests the same command: what runs, where, with which variables and
    /// input (a retry with the same `exec_id` must be the same command).
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (
            &self.session_id,
            &self.what,
            &self.stdin,
            self.stdin_open,
            &self.env,
            &self.cwd,
            self.terminal.map(|size| (size.rows, size.cols)),
        )
            .hash(&mut hasher);
        hasher.finish()
    }
}

/// A shell variable name: the wrapper exports it by name.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where a launched exec's output goes besides its kept copy.
pub enum Sinks {
    /// Kept only.
    Kept,
    /// Passed on as it comes (`exec.stream`), the command waiting while the reader is behind.
    Streamed(mpsc::Sender<(Stream, Bytes)>),
}

/// Starts `request` (`foreground`: `exec.run`/`exec.stream`); returns the exec and whether
/// it is new (false: the earlier exec of the same `exec_id`).
pub async fn launch(
    service: &Arc<Service>,
    request: ExecRequest,
    foreground: bool,
    sinks: Sinks,
) -> Result<(Arc<Exec>, bool), Failure> {
    let session = service.session(&request.session_id)?;
    if let Some(id) = &request.exec_id
        && let Some(existing) = service.find_exec(id)
    {
        if existing.session_id != session.id {
            return Err(Failure::bad(format!(
                "exec_id {id} belongs to another session"
            )));
        }
        if existing.fingerprint != request.fingerprint() {
            return Err(Failure::bad(format!(
                "exec_id {id} was given to another command: an exec_id names one command (use a new id for a new command)"
            )));
        }
        return Ok((existing, false));
    }
    service.open()?;
    // Nothing to run is a mistake, whichever front end built the request (MCP builds it directly).
    match &request.what {
        What::Shell(text) if text.trim().is_empty() => {
            return Err(Failure::bad(
                "`command` is empty: give the command line to run",
            ));
        }
        What::Argv(argv) if argv.is_empty() || argv[0].is_empty() => {
            return Err(Failure::bad(
                "`argv` is empty: give the program and its arguments",
            ));
        }
        _ => {}
    }
    // A foreground command has a lifetime (the default, at most the server's); a background
    // one only the one it asks for (the session's destroy and the server's stop still end it).
    let timeout = match request.timeout {
        Some(timeout) if timeout > service.limits.max_timeout => {
            return Err(Failure::bad(format!(
                "`timeout_ms` must be at most {}",
                service.limits.max_timeout.as_millis()
            )));
        }
        Some(timeout) => Some(timeout),
        None if foreground => Some(DEFAULT_TIMEOUT.min(service.limits.max_timeout)),
        None => None,
    };
    if request.env.len() > MAX_ENV {
        return Err(Failure::bad(format!(
            "`env` has {} variables; a request takes at most {MAX_ENV} (the shell sets each one by one)",
            request.env.len()
        )));
    }
    let env: Vec<String> = request
        .env
        .iter()
        .filter(|(name, _)| name != TOKEN_VARIABLE)
        .map(|(name, value)| match is_variable_name(name) {
            true => Ok(format!("{name}={value}")),
            false => Err(Failure::bad(format!(
                "`env`: `{}` is not a variable name (letters, digits and _, not first a digit)",
                name.escape_debug()
            ))),
        })
        .collect::<Result<_, _>>()?;
    let text = match &request.what {
        What::Shell(text) => text.len(),
        What::Argv(argv) => argv.iter().map(String::len).sum(),
    };
    if text + env.iter().map(String::len).sum::<usize>() > wrapper::MAX_REQUEST {
        return Err(Failure::new(
            super::protocol::Code::TooLarge,
            format!(
                "the command text, arguments and `env` take at most {} bytes together",
                wrapper::MAX_REQUEST
            ),
        ));
    }
    // The kernel passes no longer string to a program (MAX_ARG_STRLEN).
    if let Some(long) = env.iter().find(|entry| entry.len() >= 128 * 1024) {
        return Err(Failure::new(
            super::protocol::Code::TooLarge,
            format!(
                "`env`: {} is {} bytes; a variable reaches programs only up to 131071 bytes (NAME=value), the kernel's limit",
                long.split('=').next().unwrap_or_default(),
                long.len()
            ),
        ));
    }
    let nul = match &request.what {
        What::Shell(text) => text.contains('\0'),
        What::Argv(argv) => argv.iter().any(|arg| arg.contains('\0')),
    };
    if nul || env.iter().any(|entry| entry.contains('\0')) {
        return Err(Failure::bad(
            "the command and `env` cannot hold a NUL character",
        ));
    }
    // Limits: one foreground exec per session (unless concurrent), and the server's running
    // execs. The permits live as long as the task.
    let foreground_permit = match foreground {
        true => Some(session.claim_foreground().ok_or_else(|| {
            Failure::new(
                super::protocol::Code::SessionBusy,
                format!(
                    "session {} is running a command; wait for it, cancel it, or create the session with `concurrent: true`",
                    session.id
                ),
            )
        })?),
        false => None,
    };
    let exec_permit = service.exec_permit()?;
    let id = request.exec_id.clone().unwrap_or_else(|| random_id("e"));
    // A request too long for the environment goes in a file first: before the exec is
    // registered, so a request dropped meanwhile leaves no record without an ending.
    let (command_text, argv) = match &request.what {
        What::Shell(text) => (Some(text.as_str()), &[][..]),
        What::Argv(argv) => (None, &argv[..]),
    };
    let request_file = match wrapper::request_file(command_text, argv, &env) {
        Some(text) => Some(session.place_request(&id, &text).await?),
        None => None,
    };
    let budget = request.max_output.unwrap_or(DEFAULT_OUTPUT);
    let (exec, controls) = Exec::new(
        id,
        session.id.clone(),
        budget,
        foreground,
        request.fingerprint(),
    );
    if request.keep_whole {
        exec.keep_whole();
    }
    let registered = service.add_exec(&exec);
    if !Arc::ptr_eq(&registered, &exec) {
        // Another request took the id meanwhile: that one answers.
        return Ok((registered, false));
    }
    session.add_exec(exec.clone());
    let input: Option<Input> = match request.stdin_open {
        true => {
            let input = exec.open_stdin();
            if let Some(bytes) = request.stdin {
                exec.write_stdin(bytes, false).await;
            }
            Some(input)
        }
        false => request
            .stdin
            .map(|bytes| Box::pin(std::io::Cursor::new(bytes)) as Input),
    };
    // The wrapper sets each default only where the session (or an earlier export) has none.
    let defaults = super::pty::defaults(
        quiet_env(request.terminal.is_some()),
        request.terminal.is_some(),
    );
    let state_file = session.state_file();
    let save_state = foreground && command_text.is_some();
    if save_state && let Some(note) = session.state_note() {
        // Its `cd` and `export` will not last: said in its answer.
        exec.set_end_note(Some(note));
    }
    let mut command = Wrapped {
        shell: &session.shell,
        state_file: &state_file,
        save_state,
        command: command_text,
        argv,
        env: &env,
        defaults: &defaults,
        cwd: request.cwd.as_deref(),
        request_file: request_file.as_deref(),
    }
    .command(timeout);
    command.drain_limit = Some(DRAIN_LIMIT);
    if let Some(size) = request.terminal {
        (command.tty, command.size) = (true, Some(size));
        exec.attach_screen(size);
    }
    let (stdout, stderr) = match sinks {
        Sinks::Streamed(tx) => (
            exec.streaming_sink(Stream::Stdout, tx.clone()),
            exec.streaming_sink(Stream::Stderr, tx),
        ),
        Sinks::Kept => (exec.sink(Stream::Stdout), exec.sink(Stream::Stderr)),
    };
    let (started, on_start) = tokio::sync::oneshot::channel();
    let io = ExecIo {
        stdin: input,
        stdout,
        stderr,
        control: Some(controls),
        started: Some(started),
    };
    let begun = exec.clone();
    tokio::spawn(async move {
        if on_start.await.is_ok() {
            begun.mark_begun();
        }
    });
    let service = service.clone();
    let task_exec = exec.clone();
    tokio::spawn(async move {
        let result = session.engine.run(&session.prepared, &command, io).await;
        let duration_ms = task_exec.started.elapsed().as_millis() as u64;
        // A stop in a paused container cannot be seen to work: say what became of it.
        let stopped = matches!(
            &result,
            Ok(finished) if matches!(finished.end, End::Cancelled | End::TimedOut(_))
        );
        let note = match stopped {
            true => session.paused_note().await,
            false => None,
        };
        let state = match result {
            Ok(finished) => State::from_finished(&finished),
            // Started, then the engine failed: the command's end is unknown, not a failure to
            // start (it may well run on in the container).
            Err(err) if task_exec.has_begun() => State::EngineLost(format!(
                "{err}; the command started, and may still run in the container"
            )),
            Err(err) => State::FailedToStart(err.to_string()),
        };
        let (out, err) = task_exec.totals();
        service.log.info(&format!(
            "exec {} session {}: {} exit={:?} signal={:?} stdout={out} B stderr={err} B {duration_ms} ms",
            task_exec.id,
            session.id,
            state.name(),
            state.exit_code(),
            state.signal(),
        ));
        drop((exec_permit, foreground_permit));
        session.touch();
        task_exec.finish_noted(Ending { state, duration_ms }, note);
    });
    Ok((exec, true))
}
