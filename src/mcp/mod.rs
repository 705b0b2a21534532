//! `dcx mcp`: the dev container as tools for an MCP client (Claude Code, Cursor, VS Code
//! agents), over stdio with the maintained Rust SDK (`rmcp`). One process per client; its
//! session, on the same session layer as `dcx serve` ([`crate::agent::service`]), is created on
//! the first tool call and kept warm, so each call costs one engine exec. A selection that fails
//! (no container, a stopped one, a bad config) is a tool error with `dcx exec`'s message, and
//! the next call tries again.
//!
//! stdout carries only protocol messages; diagnostics go to stderr. When stdin closes (or on
//! SIGTERM/SIGINT), the server cancels what it started and exits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::agent::protocol::Failure;
use crate::agent::service::{Limits, Service};
use crate::engine::TargetSpec;
use crate::log::{Level, Log};

/// Which dev container the tools work in: `dcx exec`'s selectors, and the user to run as.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The container and its engine (paths absolute).
    pub spec: TargetSpec,
    /// Run as this user (wins over `remoteUser`).
    pub user: Option<String>,
}

impl Target {
    fn create_params(&self) -> Value {
        let spec = &self.spec;
        let mut params = Map::new();
        let mut put = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                params.insert(key.to_owned(), Value::from(value));
            }
        };
        let text =
            |path: &Option<std::path::PathBuf>| path.as_ref().map(|p| p.display().to_string());
        put("workspace_folder", text(&spec.workspace_folder));
        put("container_id", spec.container_id.clone());
        put("config", text(&spec.config));
        put("crun_root", text(&spec.crun_root));
        put("crun_path", text(&spec.crun_path));
        put("docker_path", spec.docker_path.clone());
        put("user", self.user.clone());
        params.insert("runtime".into(), Value::from(spec.runtime.name()));
        // A host may call tools in parallel: one session, commands side by side.
        params.insert("concurrent".into(), Value::Bool(true));
        if !spec.id_labels.is_empty() {
            params.insert("id_labels".into(), json!(spec.id_labels));
        }
        Value::Object(params)
    }
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
    pub signal: Option<String>,
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

/// A result envelope as text a model reads: the exit state first, then the output.
pub fn render(envelope: &Value) -> String {
    let mut text = match envelope["state"].as_str().unwrap_or_default() {
        "exited" => format!("exited with code {}", envelope["exit_code"]),
        "signaled" => format!(
            "killed by signal {}",
            envelope["signal"].as_str().unwrap_or("?")
        ),
        "timed_out" => "timed out (the process group was killed)".to_owned(),
        "cancelled" => "cancelled".to_owned(),
        "failed_to_start" => format!(
            "failed to start: {}",
            envelope["message"].as_str().unwrap_or_default()
        ),
        "running" => "still running".to_owned(),
        other => other.to_owned(),
    };
    if let Some(ms) = envelope["duration_ms"].as_u64() {
        text.push_str(&format!(" after {ms} ms"));
    }
    text.push('\n');
    for stream in ["stdout", "stderr"] {
        let bytes = envelope[format!("{stream}_bytes")].as_u64().unwrap_or(0);
        match (
            envelope[stream].as_str(),
            envelope.get(format!("{stream}_b64")),
        ) {
            (Some(""), _) | (None, None) if bytes == 0 => {}
            (Some(output), _) => {
                text.push_str(&format!("--- {stream} ({bytes} bytes) ---\n{output}"));
                if !output.ends_with('\n') {
                    text.push('\n');
                }
            }
            (None, _) => text.push_str(&format!(
                "--- {stream} ({bytes} bytes, not UTF-8: base64 in the structured result) ---\n"
            )),
        }
        if envelope[format!("{stream}_truncated")] == true {
            text.push_str(&format!(
                "[{stream} truncated: {bytes} bytes in all; the start and the end are shown]\n"
            ));
        }
    }
    text
}

fn result(data: Value) -> CallToolResult {
    let text = render(&data);
    structured(data, text)
}

/// A successful result: `data` as structured content, `text` for hosts that read text only.
fn structured(data: Value, text: impl Into<String>) -> CallToolResult {
    let mut result = CallToolResult::structured(data);
    result.content = vec![ContentBlock::text(text.into())];
    result
}

fn env_value(env: Option<BTreeMap<String, String>>) -> Value {
    env.map_or(Value::Null, |env| json!(env))
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
        let created = self
            .service
            .call("session.create", self.target.create_params())
            .await?;
        let id = created["session_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        *session = Some(id.clone());
        Ok(id)
    }

    async fn call(&self, method: &str, mut params: Value) -> Result<Value, Failure> {
        let id = self.session().await?;
        if let Value::Object(map) = &mut params {
            map.insert("session_id".into(), Value::from(id));
        }
        self.service.call(method, params).await
    }

    #[tool(
        description = "Run a shell command in the dev container and wait for it to finish. It runs as the dev container's user with its full environment (userEnvProbe, remoteEnv), in the workspace folder unless `cwd` says otherwise; `cd` and `export` carry over to later commands like in a terminal. Stdin is empty and pagers are off (PAGER=cat, GIT_TERMINAL_PROMPT=0), so nothing waits for input. The result starts with the exit state (exited with code N, killed by signal, timed out, cancelled), then stdout and stderr; long output keeps its start and end and says how many bytes there were. Use start_command instead for servers, watchers or anything that runs for long."
    )]
    async fn run_command(
        &self,
        Parameters(params): Parameters<RunCommand>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = json!({
            "command": params.command,
            "cwd": params.cwd,
            "timeout_ms": params.timeout_ms,
            "env": env_value(params.env),
        });
        Ok(match self.call("exec.run", request).await {
            Ok(envelope) => result(envelope),
            Err(failure) => tool_error(failure.message),
        })
    }

    #[tool(
        description = "Start a long-running shell command in the dev container (a dev server, a watch build, a long test run) without waiting for it. Returns an `exec_id` at once; follow it with read_output, write to it with send_input, stop it with cancel_command. It runs like run_command (same user, environment and working directory) in a process group of its own."
    )]
    async fn start_command(
        &self,
        Parameters(params): Parameters<StartCommand>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = json!({
            "command": params.command,
            "cwd": params.cwd,
            "env": env_value(params.env),
            "stdin_open": true,
            "timeout_ms": 600_000,
        });
        Ok(match self.call("exec.start", request).await {
            Ok(data) => {
                let text = format!(
                    "started: exec_id {} ({})",
                    data["exec_id"].as_str().unwrap_or_default(),
                    data["state"].as_str().unwrap_or_default()
                );
                structured(data, text)
            }
            Err(failure) => tool_error(failure.message),
        })
    }

    #[tool(
        description = "Read what a command started with start_command has printed since an offset (waits up to a second for something new). Pass the `next_offset` (and `next_stderr_offset`) of the previous read to get only new output. Says whether it is still running; once it has ended, the result includes its exit state."
    )]
    async fn read_output(
        &self,
        Parameters(params): Parameters<ReadOutput>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = json!({
            "exec_id": params.exec_id,
            "stdout_offset": params.offset.unwrap_or(0),
            "stderr_offset": params.stderr_offset.unwrap_or(0),
            "wait_ms": 1000,
        });
        Ok(match self.service.call("exec.read", request).await {
            Ok(mut data) => {
                data["next_offset"] = data["stdout_offset"].clone();
                data["next_stderr_offset"] = data["stderr_offset"].clone();
                let mut text = render(&data);
                text.push_str(&format!(
                    "next_offset {}, next_stderr_offset {}{}\n",
                    data["next_offset"],
                    data["next_stderr_offset"],
                    match data["stdout_skipped"].as_u64().unwrap_or(0) {
                        0 => String::new(),
                        skipped => format!(" ({skipped} bytes of stdout were no longer kept)"),
                    }
                ));
                structured(data, text)
            }
            Err(failure) => tool_error(failure.message),
        })
    }

    #[tool(
        description = "Write text to the stdin of a command started with start_command; `eof: true` closes its stdin afterwards."
    )]
    async fn send_input(
        &self,
        Parameters(params): Parameters<SendInput>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = json!({"exec_id": params.exec_id, "data": params.data, "eof": params.eof.unwrap_or(false)});
        Ok(match self.service.call("exec.write_stdin", request).await {
            Ok(data) => structured(data, "written"),
            Err(failure) => tool_error(failure.message),
        })
    }

    #[tool(
        description = "Stop a command started with start_command: the signal (TERM unless told) goes to its whole process group, then KILL after 2 seconds. Returns once it is gone, with its final output."
    )]
    async fn cancel_command(
        &self,
        Parameters(params): Parameters<CancelCommand>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = json!({"exec_id": params.exec_id, "signal": params.signal});
        Ok(match self.service.call("exec.cancel", request).await {
            Ok(envelope) => result(envelope),
            Err(failure) => tool_error(failure.message),
        })
    }

    #[tool(
        description = "Describe the dev container the commands run in: container id and name, image, the user commands run as, the workspace folder (on the host and in the container) and the engine (docker or crun)."
    )]
    async fn container_info(
        &self,
        Parameters(_): Parameters<NoParams>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match self.call("session.info", json!({})).await {
            Ok(info) => {
                let data = json!({
                    "container_id": info["container_id"],
                    "container_name": info["container_name"],
                    "image": info["image"],
                    "remote_user": info["user"],
                    "workspace_folder": info["workspace_folder"],
                    "remote_workspace_folder": info["remote_workspace_folder"],
                    "cwd": info["cwd"],
                    "runtime": info["runtime"],
                });
                let text = format!(
                    "container {} ({}), image {}, user {}, workspace {} (in the container: {}), runtime {}",
                    data["container_name"].as_str().unwrap_or_default(),
                    data["container_id"].as_str().unwrap_or_default(),
                    data["image"].as_str().unwrap_or("unknown"),
                    data["remote_user"].as_str().unwrap_or_default(),
                    data["workspace_folder"].as_str().unwrap_or("none"),
                    data["remote_workspace_folder"].as_str().unwrap_or("none"),
                    data["runtime"].as_str().unwrap_or_default(),
                );
                structured(data, text)
            }
            Err(failure) => tool_error(failure.message),
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
        let service = Service::new(limits, log.clone(), engine_log, std::env::current_dir()?);
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
