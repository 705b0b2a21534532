//! `dcx mcp`: the dev container as MCP tools over stdio, on the agent's typed methods.
//!
//! One process per client (Claude Code, Cursor, VS Code agents), with the maintained Rust SDK
//! (`rmcp`). Its session, on the same session layer as `dcx serve`
//! ([`crate::agent::methods`]), is created on the first tool call and kept warm, so each command
//! costs one engine exec; the tools call the typed methods directly (no protocol JSON in
//! between). A selection that fails (no container, a stopped one, a bad config) is a tool error
//! with `dcx exec`'s message, and the next call tries again. `render.rs` writes what a model
//! reads.
//!
//! stdout carries only protocol messages; diagnostics go to stderr. When stdin closes (or on
//! SIGTERM/SIGINT), the server cancels what it started and exits.

mod render;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::agent::engines::Connected;
use crate::agent::envelope::Envelope;
use crate::agent::launch::{ExecRequest, What};
use crate::agent::methods::{self, exec::Signal, session::Create};
use crate::agent::params::Text;
use crate::agent::protocol::Failure;
use crate::agent::service::{Limits, Service};
use crate::engine::TargetSpec;

/// `start_command`'s lifetime for a background command.
const START_TIMEOUT: Duration = Duration::from_secs(600);
/// How long `read_output` waits for something new.
const READ_WAIT_MS: u64 = 1000;
use crate::log::{Level, Log};

/// Which dev container the tools work in: `dcx exec`'s selectors, and the user to run as.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The container and its engine (paths absolute).
    pub spec: TargetSpec,
    /// Run as this user (wins over `remoteUser`).
    pub user: Option<String>,
}

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
    /// Text to write to the command's stdin (add "\n" to end a line).
    pub data: String,
    /// Close stdin after writing (the command then reads end of file).
    pub eof: Option<bool>,
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

/// The tools.
#[derive(Clone)]
pub struct DevContainer {
    service: Arc<Service>,
    target: Arc<Target>,
    session: Arc<tokio::sync::Mutex<Option<String>>>,
    tool_router: ToolRouter<Self>,
}

fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// A successful result: `data` as structured content, `text` for hosts that read text only.
fn structured(data: &impl Serialize, text: impl Into<String>) -> CallToolResult {
    let mut result = CallToolResult::structured(serde_json::to_value(data).unwrap_or_default());
    result.content = vec![ContentBlock::text(text.into())];
    result
}

/// A tool's outcome: its result, or the failure as a tool error the model reads.
fn outcome<T>(
    answer: Result<T, Failure>,
    shown: impl FnOnce(T) -> CallToolResult,
) -> Result<CallToolResult, ErrorData> {
    Ok(match answer {
        Ok(value) => shown(value),
        Err(failure) => tool_error(failure.message),
    })
}

fn envelope_result(envelope: Envelope) -> CallToolResult {
    let text = render::envelope(&envelope);
    structured(&envelope, text)
}

fn env_pairs(env: Option<BTreeMap<String, String>>) -> Vec<(String, String)> {
    env.map(|env| env.into_iter().collect()).unwrap_or_default()
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
    runtime: &'static str,
    /// How commands start: `helper` (forked in the container) or `exec` (an engine exec each).
    transport: &'static str,
}

/// `read_output`'s answer: `exec.read`'s, with the offsets to pass next.
#[derive(Debug, Serialize)]
struct Output {
    #[serde(flatten)]
    read: serde_json::Value,
    next_offset: u64,
    next_stderr_offset: u64,
}

#[tool_router]
impl DevContainer {
    pub fn new(service: Arc<Service>, target: Target) -> Self {
        Self {
            service,
            target: Arc::new(target),
            session: Arc::new(tokio::sync::Mutex::new(None)),
            tool_router: Self::tool_router(),
        }
    }

    /// The session, created on first use (and again after a failed attempt).
    async fn session(&self) -> Result<String, Failure> {
        let mut session = self.session.lock().await;
        if let Some(id) = session.as_ref() {
            return Ok(id.clone());
        }
        let create = Create {
            target: self.target.spec.clone(),
            user: self.target.user.clone(),
            // A host may call tools in parallel: one session, commands side by side.
            concurrent: true,
            ..Create::default()
        };
        let created = methods::session::create(&self.service, create).await?;
        *session = Some(created.session_id.clone());
        Ok(created.session_id)
    }

    /// A command of the session: a shell line with the tool's cwd and env.
    async fn request(
        &self,
        command: String,
        cwd: Option<String>,
        env: Option<BTreeMap<String, String>>,
    ) -> Result<ExecRequest, Failure> {
        Ok(ExecRequest {
            session_id: self.session().await?,
            what: What::Shell(command),
            stdin: None,
            stdin_open: false,
            env: env_pairs(env),
            cwd,
            timeout: None,
            max_output: None,
            exec_id: None,
        })
    }

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
        description = "Start a long-running shell command in the dev container (a dev server, a watch build, a long test run) without waiting for it. Returns an `exec_id` at once; follow it with read_output, write to it with send_input, stop it with cancel_command. It runs like run_command (same user, environment and working directory) in a process group of its own."
    )]
    async fn start_command(
        &self,
        Parameters(params): Parameters<StartCommand>,
    ) -> Result<CallToolResult, ErrorData> {
        let answer = async {
            let mut request = self.request(params.command, params.cwd, params.env).await?;
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
        description = "Read what a command started with start_command has printed since an offset (waits up to a second for something new). Pass the `next_offset` (and `next_stderr_offset`) of the previous read to get only new output. Says whether it is still running; once it has ended, the result includes its exit state."
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
            let text = render::read(&read);
            let output = Output {
                next_offset: read.stdout.offset,
                next_stderr_offset: read.stderr.offset,
                read: serde_json::to_value(&read).unwrap_or_default(),
            };
            structured(&output, text)
        })
    }

    #[tool(
        description = "Write text to the stdin of a command started with start_command; `eof: true` closes its stdin afterwards."
    )]
    async fn send_input(
        &self,
        Parameters(params): Parameters<SendInput>,
    ) -> Result<CallToolResult, ErrorData> {
        let write = methods::exec::WriteParams {
            exec_id: Text(params.exec_id),
            data: Some(params.data),
            data_b64: None,
            eof: params.eof,
        };
        outcome(
            methods::exec::write_stdin(&self.service, write).await,
            |written| structured(&written, "written"),
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

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DevContainer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("dcx", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Tools that run commands inside the project's dev container, with the container's own user and environment. Use run_command for commands that finish; start_command, read_output, send_input and cancel_command for long-running ones; container_info to see where commands run.",
            )
    }
}

/// Why the MCP server could not run.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("cannot start: {0}")]
    Io(#[from] std::io::Error),
    #[error("MCP over stdio failed: {0}")]
    Protocol(String),
}

/// Serves the tools on stdin/stdout until stdin closes.
pub fn serve(target: Target, log: Log) -> Result<(), McpError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(async move {
        // The engine's own diagnostics could name commands and env: warnings and errors only.
        let engine_log = log.at_least(Level::Warning);
        let limits = Limits {
            max_sessions: 4,
            max_execs: 64,
            idle_timeout: Duration::from_secs(365 * 24 * 3600),
            max_timeout: Duration::from_secs(600),
        };
        let service = Service::new(
            limits,
            log.clone(),
            engine_log,
            std::env::current_dir()?,
            Box::new(Connected),
            crate::agent::service::helper_wanted(),
        );
        let tools = DevContainer::new(service.clone(), target);
        let running = tools
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|err| McpError::Protocol(err.to_string()))?;
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let stop = running.cancellation_token();
        tokio::select! {
            _ = running.waiting() => log.info("stdin closed: stopping what was started"),
            _ = terminate.recv() => {
                log.info("SIGTERM: stopping what was started");
                stop.cancel();
            }
            _ = interrupt.recv() => {
                log.info("SIGINT: stopping what was started");
                stop.cancel();
            }
        }
        service.shutdown(Duration::from_secs(4)).await;
        service.destroy_all().await;
        Ok(())
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
