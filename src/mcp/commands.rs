//! The command tools: `run_command`, `start_command`, `read_output`, `send_input`, `resize_terminal`,
//! `cancel_command` and `container_info`, each a call of the agent's typed methods.
//!
//! What they answer is shaped for a model ([`render`]): text within a character budget, with
//! the whole output kept where the marker says (copied into the container when a finished
//! command's text is cut). A command that outlives `yield_ms` answers with its exec id and runs
//! on; `read_output` waits for new output or the end; a cancelled tool call
//! (`notifications/cancelled`) stops the command's group.

use std::collections::BTreeMap;
use std::time::Duration;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{ErrorData, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::render::{self, Shape, Whole};
use super::{DevContainer, outcome, structured, tool_error};
use crate::agent::envelope::{Data, Envelope, Output, Stream};
use crate::agent::methods::{self, exec::Signal};
use crate::agent::params::Text;
use crate::agent::protocol::Failure;

/// How long `read_output` waits for new output unless told.
const READ_WAIT_MS: u64 = 10_000;
/// The longest `yield_ms` and `wait_ms`.
const MAX_WAIT_MS: u64 = 30_000;
/// The shortest `yield_ms`.
const MIN_YIELD_MS: u64 = 250;
/// The largest `max_output_chars`.
const MAX_BUDGET: usize = 1_000_000;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunCommand {
    /// The shell command line, run by the user's shell with `-c` (pipes, `&&`, `cd` work).
    pub command: String,
    /// Working directory for this command (relative paths start from the session's).
    pub cwd: Option<String>,
    /// Stop it after this many milliseconds (default 120000, at most 600000).
    pub timeout_ms: Option<u64>,
    /// Extra environment variables for this command only.
    pub env: Option<BTreeMap<String, String>>,
    /// Answer after this many milliseconds (250 to 30000) if it is still running, with its
    /// exec_id and the output so far; it runs on (follow it with read_output). Unset: wait for
    /// the end.
    pub yield_ms: Option<u64>,
    /// Characters of output in the answer (default 30000); longer output keeps its start and
    /// end and says where the whole is.
    pub max_output_chars: Option<usize>,
    /// Keep colours and `\r` progress frames (default: cleaned away).
    pub raw: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartCommand {
    /// The shell command line, run by the user's shell with `-c`.
    pub command: String,
    /// Working directory (relative paths start from the session's).
    pub cwd: Option<String>,
    /// Extra environment variables for this command only.
    pub env: Option<BTreeMap<String, String>>,
    /// Stop it after this many milliseconds (at most 600000). Unset: it runs until it ends,
    /// is cancelled, or the MCP server stops.
    pub timeout_ms: Option<u64>,
    /// PTY mode: run it on a terminal (for full-screen programs like vi or top, REPLs, password
    /// or y/n prompts, anything that needs a TTY). read_output then shows the rendered screen.
    pub tty: Option<bool>,
    /// Terminal rows (PTY mode; default 24).
    pub rows: Option<u64>,
    /// Terminal columns (PTY mode; default 80).
    pub cols: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadOutput {
    /// The id start_command (or a yielded run_command) returned.
    pub exec_id: String,
    /// Byte offset in stdout to read from: the `next_offset` of the previous read (0 at first).
    pub offset: Option<u64>,
    /// Byte offset in stderr to read from: the `next_stderr_offset` of the previous read.
    pub stderr_offset: Option<u64>,
    /// Wait up to this many milliseconds (default 10000, at most 30000) for new output or the
    /// end; it answers as soon as either comes.
    pub wait_ms: Option<u64>,
    /// Characters of output in the answer (default 30000); the offsets say where to go on.
    pub max_output_chars: Option<usize>,
    /// Keep colours and `\r` progress frames (default: cleaned away).
    pub raw: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendInput {
    /// The id start_command returned.
    pub exec_id: String,
    /// Text to write to the command's stdin (add "\n" to end a line; on a terminal, Enter is
    /// "\r").
    pub data: Option<String>,
    /// Keys to type after `data`, by name: Enter, Esc, Tab, Backspace, Space, Up, Down, Left,
    /// Right, Home, End, PageUp, PageDown, Delete, F1-F12, C-c, C-d (any C-letter), M-x, or a
    /// single character.
    pub keys: Option<Vec<String>>,
    /// Close stdin after writing (the command then reads end of file).
    pub eof: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResizeTerminal {
    /// The id `start_command` (with `tty: true`) returned.
    pub exec_id: String,
    /// New number of rows.
    pub rows: u64,
    /// New number of columns.
    pub cols: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelCommand {
    /// The id start_command (or a yielded run_command) returned.
    pub exec_id: String,
    /// INT, TERM (default), KILL or HUP; TERM, INT and HUP become KILL after 2 seconds.
    pub signal: Option<Signal>,
    /// Characters of output in the answer (default 30000).
    pub max_output_chars: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// The structured result of a command tool: the state and counts; the output is the text.
#[derive(Debug, Serialize)]
struct CommandResult {
    exec_id: String,
    /// A line to read first (the session moved to a rebuilt container).
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    state: &'static str,
    exit_code: Option<i64>,
    signal: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    stdout_bytes: u64,
    stderr_bytes: u64,
    /// Where the whole of a stream whose text was cut is, in the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stderr_file: Option<String>,
    /// Each stream's text as shown (within the budget, cleaned unless `raw`).
    stdout: String,
    stderr: String,
    /// The exact bytes of a stream that is not UTF-8 (when it fits the budget).
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout_b64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stderr_b64: Option<String>,
    /// Where read_output goes on, while it runs.
    next_offset: u64,
    next_stderr_offset: u64,
}

/// A budget asked for, checked.
fn shape(max_output_chars: Option<usize>, raw: Option<bool>) -> Result<Shape, Failure> {
    let budget = match max_output_chars {
        None => render::DEFAULT_BUDGET,
        Some(0) => return Err(Failure::bad("`max_output_chars` must be more than 0")),
        Some(chars) if chars > MAX_BUDGET => {
            return Err(Failure::bad(format!(
                "`max_output_chars` must be at most {MAX_BUDGET}"
            )));
        }
        Some(chars) => chars,
    };
    Ok(Shape {
        budget,
        raw: raw.unwrap_or(false),
    })
}

/// A wait asked for, checked.
fn wait(name: &str, ms: Option<u64>, min: u64) -> Result<Option<Duration>, Failure> {
    match ms {
        Some(ms) if !(min..=MAX_WAIT_MS).contains(&ms) => Err(Failure::bad(format!(
            "`{name}` must be from {min} to {MAX_WAIT_MS}"
        ))),
        other => Ok(other.map(Duration::from_millis)),
    }
}

impl DevContainer {
    /// An envelope as a tool result within `shape`: a stream whose text is cut is first copied
    /// whole into the container (when it was kept whole), and the marker says where.
    async fn command_result(&self, envelope: Envelope, shape: Shape) -> CallToolResult {
        let layout = render::layout(&envelope, shape);
        let cut = layout.as_ref().map_or([false, false], render::Layout::cut);
        let mut whole = Whole {
            exec_id: envelope.exec_id.clone(),
            files: [None, None],
        };
        if envelope.duration_ms.is_some() {
            for (index, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
                if cut[index] {
                    whole.files[index] =
                        methods::exec::save_whole(&self.service, &envelope.exec_id, stream)
                            .await
                            .ok();
                }
            }
        }
        let rendered = render::laid_out(&envelope, layout, &whole);
        let (stdout_bytes, stderr_bytes) = envelope.bytes().unwrap_or_default();
        let b64 = |index: usize| {
            let Output::Kept { stdout, stderr } = &envelope.output else {
                return None;
            };
            let shown = [stdout, stderr][index];
            match &shown.data {
                Data::Bytes(bytes) if !cut[index] => {
                    use base64::Engine as _;
                    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
                _ => None,
            }
        };
        let [stdout_file, stderr_file] = whole.files.clone();
        let data = CommandResult {
            exec_id: envelope.exec_id.clone(),
            note: envelope.note.clone(),
            state: envelope.state.name(),
            exit_code: envelope.state.exit_code(),
            signal: envelope.state.signal(),
            duration_ms: envelope.duration_ms,
            stdout_bytes,
            stderr_bytes,
            stdout: rendered.streams[0].clone(),
            stderr: rendered.streams[1].clone(),
            stdout_file,
            stderr_file,
            stdout_b64: b64(0),
            stderr_b64: b64(1),
            next_offset: stdout_bytes,
            next_stderr_offset: stderr_bytes,
        };
        let text = rendered.text;
        let text = match envelope.duration_ms {
            Some(_) => text,
            None => format!(
                "{text}It runs on as exec_id {id}: follow it with read_output (exec_id {id}, offset {stdout_bytes}, stderr_offset {stderr_bytes}), stop it with cancel_command.\n",
                id = envelope.exec_id
            ),
        };
        structured(&data, text)
    }
}

/// `container_info`'s answer.
#[derive(Debug, Serialize)]
struct ContainerInfo {
    container_id: String,
    container_name: String,
    image: Option<String>,
    remote_user: String,
    workspace_folder: Option<std::path::PathBuf>,
    remote_workspace_folder: Option<String>,
    cwd: Option<String>,
    /// The current directory was removed (the next command fails once, saying so).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cwd_removed: bool,
    runtime: &'static str,
    /// How commands start: `helper` (forked in the container) or `exec` (an engine exec each).
    transport: &'static str,
}

/// `read_output`'s answer: `exec.read`'s, with the offsets to pass next.
#[derive(Debug, Serialize)]
struct ReadResult {
    #[serde(flatten)]
    read: serde_json::Value,
    next_offset: u64,
    next_stderr_offset: u64,
}

#[tool_router(router = commands, vis = "pub(super)")]
impl DevContainer {
    #[tool(
        description = "Run a shell command in the dev container and wait for it to finish. It runs as the dev container's user with its full environment (userEnvProbe, remoteEnv), in the workspace folder unless `cwd` says otherwise; `cd` and `export` carry over to later commands like in a terminal. Nothing can wait for input: stdin is empty, and pagers, prompts, editors and colours are off (PAGER=cat, GIT_EDITOR=:, EDITOR=false, NO_COLOR=1, TERM=dumb). The answer starts with the exit state, then stdout and stderr as text: at most `max_output_chars` (30000 unless told), keeping the start and the end of longer output with one marker line that gives the whole size and a file in the container holding all of it; colours and `\\r` progress frames are cleaned away unless `raw`. For a command that may take long, give `yield_ms`: it then answers after that long with an exec_id and the output so far, and runs on (poll with read_output). Use start_command, not `&`, for servers, watchers and anything that should keep running; a full-screen program (vi, top) or a REPL needs start_command's PTY mode."
    )]
    async fn run_command(
        &self,
        Parameters(params): Parameters<RunCommand>,
        stop: CancellationToken,
    ) -> Result<CallToolResult, ErrorData> {
        let answer = async {
            let shape = shape(params.max_output_chars, params.raw)?;
            let yield_after = wait("yield_ms", params.yield_ms, MIN_YIELD_MS)?;
            let mut request = self.request(params.command, params.cwd, params.env).await?;
            request.timeout = params.timeout_ms.map(Duration::from_millis);
            if request.timeout.is_some_and(|timeout| timeout.is_zero()) {
                return Err(Failure::bad("`timeout_ms` must be more than 0"));
            }
            let envelope =
                methods::exec::run_until(&self.service, request, yield_after, stop).await?;
            Ok((envelope, shape))
        };
        match answer.await {
            Ok((envelope, shape)) => Ok(self.command_result(envelope, shape).await),
            Err(failure) => Ok(tool_error(failure.message)),
        }
    }

    #[tool(
        description = "Start a long-running shell command in the dev container (a dev server, a watch build, a long test run) without waiting for it. Returns an `exec_id` at once; follow it with read_output, write to it with send_input, stop it with cancel_command. It runs like run_command (same user, environment and working directory) in a process group of its own, with no time limit unless `timeout_ms` is given: it lives until it ends, is cancelled, or the MCP server stops. PTY mode (`tty: true`, optional `rows`/`cols`, default 24x80) runs it on a terminal: use it for full-screen programs (vi, top, less), REPLs (python3, node, sh -i) and interactive prompts; then read_output shows the rendered screen, send_input types text and named keys (Enter, Esc, C-c, Up…), and resize_terminal changes the size."
    )]
    async fn start_command(
        &self,
        Parameters(params): Parameters<StartCommand>,
    ) -> Result<CallToolResult, ErrorData> {
        let answer = async {
            let mut request = self.request(params.command, params.cwd, params.env).await?;
            request.terminal =
                crate::agent::pty::requested(params.tty, params.rows, params.cols, true)?;
            request.stdin_open = true;
            request.timeout = params.timeout_ms.map(Duration::from_millis);
            if request.timeout.is_some_and(|timeout| timeout.is_zero()) {
                return Err(Failure::bad("`timeout_ms` must be more than 0"));
            }
            methods::exec::start(&self.service, request, Duration::ZERO).await
        };
        outcome(answer.await, |envelope| {
            let text = format!(
                "started: exec_id {id} ({}). Follow it with read_output (exec_id {id}; it waits up to wait_ms for new output), write to its stdin with send_input, stop it with cancel_command.",
                envelope.state.name(),
                id = envelope.exec_id,
            );
            structured(&envelope, text)
        })
    }

    #[tool(
        description = "Read what a command started with start_command (or a run_command that yielded) has printed since an offset. Waits up to `wait_ms` (10000 unless told, at most 30000) and answers as soon as there is new output or the command has ended. Pass the `next_offset` and `next_stderr_offset` of the previous read to get only new output; at most `max_output_chars` (30000) characters come per call, and the offsets say where to go on. Says whether it is still running; once it has ended, the answer starts with its exit state. For a PTY-mode command (start_command with `tty: true`) the text is the terminal's screen as it is now (rows and cursor); the raw stream and the screen are in the structured result."
    )]
    async fn read_output(
        &self,
        Parameters(params): Parameters<ReadOutput>,
        stop: CancellationToken,
    ) -> Result<CallToolResult, ErrorData> {
        let answer = async {
            let shape = shape(params.max_output_chars, params.raw)?;
            let wait_ms = wait("wait_ms", params.wait_ms, 0)?
                .map_or(READ_WAIT_MS, |wait| wait.as_millis() as u64);
            let read = methods::exec::ReadParams {
                exec_id: Text(params.exec_id),
                offset: None,
                stdout_offset: Some(params.offset.unwrap_or(0)),
                stderr_offset: Some(params.stderr_offset.unwrap_or(0)),
                wait_ms: Some(wait_ms),
                // Bytes are at least characters: half the budget a stream.
                max_bytes: Some((shape.budget / 2).max(4) as u64),
            };
            tokio::select! {
                read = methods::exec::read(&self.service, read) => read.map(|read| (read, shape)),
                _ = stop.cancelled() => Err(Failure::bad("cancelled")),
            }
        };
        outcome(answer.await, |(read, shape)| {
            let text = match &read.screen {
                Some(shot) => render::screen(&read, shot),
                None => render::read(&read, shape),
            };
            let output = ReadResult {
                next_offset: read.stdout.offset,
                next_stderr_offset: read.stderr.offset,
                read: serde_json::to_value(&read).unwrap_or_default(),
            };
            structured(&output, text)
        })
    }

    #[tool(
        description = "Write text, then named keys, to the stdin of a command started with start_command; `eof: true` closes its stdin afterwards. `keys` are tmux-like names typed after `data`: Enter, Esc, Tab, Backspace, Space, Up, Down, Left, Right, Home, End, PageUp, PageDown, Delete, F1-F12, C-c (interrupt), C-d (end of input), any C-letter, M-x, or a single character; in PTY mode they are what a terminal sends (for vi: data `ihello`, keys [\"Esc\"], data `:wq`, keys [\"Enter\"])."
    )]
    async fn send_input(
        &self,
        Parameters(params): Parameters<SendInput>,
    ) -> Result<CallToolResult, ErrorData> {
        let write = methods::exec::WriteParams {
            exec_id: Text(params.exec_id),
            data: params.data,
            data_b64: None,
            keys: params.keys.map(|keys| keys.into_iter().map(Text).collect()),
            eof: params.eof,
        };
        outcome(
            methods::exec::write_stdin(&self.service, write).await,
            |written| structured(&written, "written"),
        )
    }

    #[tool(
        description = "Resize the terminal of a command started with start_command and `tty: true` (the program is told, as by a window resize; read_output's screen takes the new size)."
    )]
    async fn resize_terminal(
        &self,
        Parameters(params): Parameters<ResizeTerminal>,
    ) -> Result<CallToolResult, ErrorData> {
        let resize = methods::terminal::ResizeParams {
            exec_id: Text(params.exec_id),
            rows: params.rows,
            cols: params.cols,
        };
        outcome(
            methods::terminal::resize(&self.service, resize).await,
            |resized| {
                let text = format!("resized to {}x{}", resized.rows, resized.cols);
                structured(&resized, text)
            },
        )
    }

    #[tool(
        description = "Stop a command started with start_command (or a run_command that yielded): the signal (TERM unless told) goes to its whole process group, then KILL after 2 seconds. Returns once it is gone, with its final output."
    )]
    async fn cancel_command(
        &self,
        Parameters(params): Parameters<CancelCommand>,
    ) -> Result<CallToolResult, ErrorData> {
        let answer = async {
            let shape = shape(params.max_output_chars, None)?;
            let cancel = methods::exec::CancelParams {
                exec_id: Text(params.exec_id),
                signal: params.signal,
            };
            Ok::<_, Failure>((
                methods::exec::cancel_within(&self.service, cancel, None).await?,
                shape,
            ))
        };
        match answer.await {
            Ok((envelope, shape)) => Ok(self.command_result(envelope, shape).await),
            Err(failure) => Ok(tool_error(failure.message)),
        }
    }

    #[tool(
        description = "Describe the dev container the commands run in: container id and name, image, the user commands run as, the workspace folder (on the host and in the container) and the engine (docker or crun)."
    )]
    async fn container_info(
        &self,
        Parameters(_): Parameters<NoParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let answer = async {
            let id = self.session().await?;
            methods::session::info(&self.service, &id).await
        };
        outcome(answer.await, |info| {
            let text = render::container(&info);
            let data = ContainerInfo {
                container_id: info.container_id,
                container_name: info.container_name,
                image: info.image,
                remote_user: info.user,
                workspace_folder: info.workspace_folder,
                remote_workspace_folder: info.remote_workspace_folder,
                cwd: info.cwd,
                cwd_removed: info.cwd_removed,
                runtime: info.runtime,
                transport: info.transport,
            };
            structured(&data, text)
        })
    }
}
