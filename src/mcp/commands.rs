//! The command tools: `run_command`, `start_command`, `read_output`, `send_input`, `resize_terminal`,
//! `cancel_command` and `container_info`, each a call of the agent's typed methods.

use std::collections::BTreeMap;
use std::time::Duration;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{ErrorData, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DevContainer, envelope_result, outcome, render, structured};
use crate::agent::methods::{self, exec::Signal};
use crate::agent::params::Text;
use crate::agent::protocol::Failure;

/// `start_command`'s lifetime for a background command.
const START_TIMEOUT: Duration = Duration::from_secs(600);
/// How long `read_output` waits for something new.
const READ_WAIT_MS: u64 = 1000;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunCommand {
    /// The shell command line, run by the user's shell with `-c` (pipes, `&&`, `cd` work).
    pub command: String,
    /// Working directory for this command (relative paths start from the session's).
    pub cwd: Option<String>,
    /// Stop it after this many milliseconds (default 120000, at most 600000).
    pub timeout_ms: Option<u64>,
    /// Extra environment variables for this command only.
    pub env: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct StartCommand {
    /// The shell command line, run by the user's shell with `-c`.
    pub command: String,
    /// Working directory (relative paths start from the session's).
    pub cwd: Option<String>,
    /// Extra environment variables for this command only.
    pub env: Option<BTreeMap<String, String>>,
    /// PTY mode: run it on a terminal (for full-screen programs like vi or top, REPLs, password
    /// or y/n prompts, anything that needs a TTY). read_output then shows the rendered screen.
    pub tty: Option<bool>,
    /// Terminal rows (PTY mode; default 24).
    pub rows: Option<u64>,
    /// Terminal columns (PTY mode; default 80).
    pub cols: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadOutput {
    /// The id `start_command` returned.
    pub exec_id: String,
    /// Byte offset in stdout to read from: the `next_offset` of the previous read (0 at first).
    pub offset: Option<u64>,
    /// Byte offset in stderr to read from: the `next_stderr_offset` of the previous read.
    pub stderr_offset: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SendInput {
    /// The id `start_command` returned.
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
pub struct ResizeTerminal {
    /// The id `start_command` (with `tty: true`) returned.
    pub exec_id: String,
    /// New number of rows.
    pub rows: u64,
    /// New number of columns.
    pub cols: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CancelCommand {
    /// The id `start_command` returned.
    pub exec_id: String,
    /// INT, TERM (default), KILL or HUP; TERM, INT and HUP become KILL after 2 seconds.
    pub signal: Option<Signal>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NoParams {}

/// `container_info`'s answer.
#[derive(Debug, Serialize)]
pub(super) struct ContainerInfo {
    pub(super) container_id: String,
    pub(super) container_name: String,
    pub(super) image: Option<String>,
    pub(super) remote_user: String,
    pub(super) workspace_folder: Option<std::path::PathBuf>,
    pub(super) remote_workspace_folder: Option<String>,
    pub(super) cwd: Option<String>,
    pub(super) runtime: &'static str,
    /// How commands start: `helper` (forked in the container) or `exec` (an engine exec each).
    pub(super) transport: &'static str,
}

/// `read_output`'s answer: `exec.read`'s, with the offsets to pass next.
#[derive(Debug, Serialize)]
struct Output {
    #[serde(flatten)]
    read: serde_json::Value,
    next_offset: u64,
    next_stderr_offset: u64,
}

#[tool_router(router = commands, vis = "pub(super)")]
impl DevContainer {
    #[tool(
        description = "Run a shell command in the dev container and wait for it to finish. It runs as the dev container's user with its full environment (userEnvProbe, remoteEnv), in the workspace folder unless `cwd` says otherwise; `cd` and `export` carry over to later commands like in a terminal. Stdin is empty and pagers are off (PAGER=cat, GIT_TERMINAL_PROMPT=0), so nothing waits for input. The result starts with the exit state (exited with code N, killed by signal, timed out, cancelled), then stdout and stderr; long output keeps its start and end and says how many bytes there were. Use start_command instead for servers, watchers or anything that runs for long."
    )]
    async fn run_command(
        &self,
        Parameters(params): Parameters<RunCommand>,
    ) -> Result<CallToolResult, ErrorData> {
        let answer = async {
            let mut request = self.request(params.command, params.cwd, params.env).await?;
            request.timeout = params.timeout_ms.map(Duration::from_millis);
            if request.timeout.is_some_and(|timeout| timeout.is_zero()) {
                return Err(Failure::bad("`timeout_ms` must be more than 0"));
            }
            methods::exec::run(&self.service, request).await
        };
        outcome(answer.await, envelope_result)
    }

    #[tool(
        description = "Start a long-running shell command in the dev container (a dev server, a watch build, a long test run) without waiting for it. Returns an `exec_id` at once; follow it with read_output, write to it with send_input, stop it with cancel_command. It runs like run_command (same user, environment and working directory) in a process group of its own. PTY mode (`tty: true`, optional `rows`/`cols`, default 24x80) runs it on a terminal: use it for full-screen programs (vi, top, less), REPLs (python3, node, sh -i) and interactive prompts; then read_output shows the rendered screen, send_input types text and named keys (Enter, Esc, C-c, Up…), and resize_terminal changes the size."
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
            request.timeout = Some(START_TIMEOUT);
            methods::exec::start(&self.service, request, Duration::ZERO).await
        };
        outcome(answer.await, |envelope| {
            let text = format!(
                "started: exec_id {} ({})",
                envelope.exec_id,
                envelope.state.name()
            );
            structured(&envelope, text)
        })
    }

    #[tool(
        description = "Read what a command started with start_command has printed since an offset (waits up to a second for something new). Pass the `next_offset` (and `next_stderr_offset`) of the previous read to get only new output. Says whether it is still running; once it has ended, the result includes its exit state. For a PTY-mode command (start_command with `tty: true`) the text is the terminal's screen as it is now (rows and cursor); the raw stream and the screen are in the structured result."
    )]
    async fn read_output(
        &self,
        Parameters(params): Parameters<ReadOutput>,
    ) -> Result<CallToolResult, ErrorData> {
        let read = methods::exec::ReadParams {
            exec_id: Text(params.exec_id),
            offset: None,
            stdout_offset: Some(params.offset.unwrap_or(0)),
            stderr_offset: Some(params.stderr_offset.unwrap_or(0)),
            wait_ms: Some(READ_WAIT_MS),
        };
        outcome(methods::exec::read(&self.service, read).await, |read| {
            let text = match &read.screen {
                Some(shot) => render::screen(&read, shot),
                None => render::read(&read),
            };
            let output = Output {
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
        description = "Stop a command started with start_command: the signal (TERM unless told) goes to its whole process group, then KILL after 2 seconds. Returns once it is gone, with its final output."
    )]
    async fn cancel_command(
        &self,
        Parameters(params): Parameters<CancelCommand>,
    ) -> Result<CallToolResult, ErrorData> {
        let cancel = methods::exec::CancelParams {
            exec_id: Text(params.exec_id),
            signal: params.signal,
        };
        outcome(
            methods::exec::cancel(&self.service, cancel).await,
            envelope_result,
        )
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
            let data = ContainerInfo {
                container_id: info.container_id,
                container_name: info.container_name,
                image: info.image,
                remote_user: info.user,
                workspace_folder: info.workspace_folder,
                remote_workspace_folder: info.remote_workspace_folder,
                cwd: info.cwd,
                runtime: info.runtime,
                transport: info.transport,
            };
            let text = render::container(&data);
            structured(&data, text)
        })
    }
}
