//! `dcx mcp`: the dev container as MCP tools over stdio, on the agent's typed methods.
//!
//! One process per client (Claude Code, Cursor, VS Code agents), with the maintained Rust SDK
//! (`rmcp`). Its session, on the same session layer as `dcx serve`
//! ([`crate::agent::methods`]), is created on the first tool call and kept warm, so each command
//! costs one engine exec; the tools call the typed methods directly (no protocol JSON in
//! between). A selection that fails (no container, a stopped one, a bad config) is a tool error
//! with `dcx exec`'s message, and the next call tries again. The tools live in
//! `commands.rs` (run and follow commands); `render.rs` writes what a model reads.
//!
//! stdout carries only protocol messages; diagnostics go to stderr. When stdin closes (or on
//! SIGTERM/SIGINT), the server cancels what it started and exits.

mod commands;
mod files;
mod render;
mod stdio;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, ServiceExt, tool_handler};
use serde::Serialize;

use crate::agent::engines::Connected;
use crate::agent::launch::{ExecRequest, What};
use crate::agent::methods::{self, session::Create};
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

/// Which argument of `tool` does not fit its parameters, and why: `argument `PATH`: WHY`.
fn bad_argument(tool: &str, arguments: rmcp::model::JsonObject) -> Option<String> {
    fn check<T: serde::de::DeserializeOwned>(arguments: rmcp::model::JsonObject) -> Option<String> {
        let value = serde_json::Value::Object(arguments);
        serde_path_to_error::deserialize::<_, T>(value)
            .err()
            .map(|err| match err.path().to_string().as_str() {
                "." => format!("arguments: {}", err.inner()),
                path => format!("argument `{path}`: {}", err.inner()),
            })
    }
    match tool {
        "run_command" => check::<commands::RunCommand>(arguments),
        "start_command" => check::<commands::StartCommand>(arguments),
        "read_output" => check::<commands::ReadOutput>(arguments),
        "send_input" => check::<commands::SendInput>(arguments),
        "resize_terminal" => check::<commands::ResizeTerminal>(arguments),
        "cancel_command" => check::<commands::CancelCommand>(arguments),
        "read_file" => check::<files::ReadFile>(arguments),
        "write_file" => check::<files::WriteFile>(arguments),
        "edit_file" => check::<files::EditFile>(arguments),
        "list_directory" => check::<files::ListDirectory>(arguments),
        _ => None,
    }
}

fn env_pairs(env: Option<BTreeMap<String, String>>) -> Vec<(String, String)> {
    env.map(|env| env.into_iter().collect()).unwrap_or_default()
}

impl DevContainer {
    pub fn new(service: Arc<Service>, target: Target) -> Self {
        Self {
            service,
            target: Arc::new(target),
            session: Arc::new(tokio::sync::Mutex::new(None)),
            tool_router: Self::commands() + Self::files(),
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

    /// The session's user, when its file calls do not act as that user (no helper).
    async fn files_not_as_user(&self) -> Option<String> {
        let id = self.session.lock().await.clone()?;
        let session = self.service.session(&id).ok()?;
        (!session.files_as_user()).then(|| session.prepared.user.clone())
    }

    /// The session's note for this answer, once (it moved to a rebuilt container).
    async fn pending_note(&self) -> Option<String> {
        let id = self.session.lock().await.clone()?;
        self.service.session(&id).ok()?.take_note()
    }

    /// A call's error as the model should read it: a tool that does not exist named with the
    /// ones that do, an argument that does not fit named by its path (rmcp says only what
    /// type it expected).
    fn explained(
        &self,
        tool: &str,
        arguments: rmcp::model::JsonObject,
        err: ErrorData,
    ) -> ErrorData {
        let known: Vec<String> = self
            .tool_router
            .list_all()
            .into_iter()
            .map(|tool| tool.name.to_string())
            .collect();
        if !known.iter().any(|name| name == tool) {
            return ErrorData::invalid_params(
                format!("no tool named `{tool}`; the tools are {}", known.join(", ")),
                None,
            );
        }
        match bad_argument(tool, arguments) {
            Some(why) => ErrorData::invalid_params(format!("{tool}: {why}"), None),
            None => err,
        }
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
            keep_whole: true,
            terminal: None,
        })
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DevContainer {
    /// Each tool's answer, led by the session's pending note (it moved to a rebuilt container)
    /// when there is one, in the text and as `note` in the structured result.
    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, ErrorData> {
        let file_tool = matches!(
            &*request.name,
            "read_file" | "write_file" | "edit_file" | "list_directory"
        );
        let (name, arguments) = (request.name.to_string(), request.arguments.clone());
        let call = rmcp::handler::server::tool::ToolCallContext::new(self, request, context);
        let response = self
            .tool_router
            .call(call)
            .await
            .map_err(|err| self.explained(&name, arguments.clone().unwrap_or_default(), err))?;
        let rmcp::model::CallToolResponse::Complete(mut result) = response else {
            return Ok(response);
        };
        // Arguments that do not fit come back as a tool error in rmcp's words: name the argument.
        if result.is_error.unwrap_or(false)
            && let Some(ContentBlock::Text(text)) = result.content.first_mut()
            && text.text.starts_with("failed to deserialize parameters")
            && let Some(why) = bad_argument(&name, arguments.unwrap_or_default())
        {
            text.text = format!("{name}: {why}");
        }
        if file_tool
            && !result.is_error.unwrap_or(false)
            && let Some(user) = self.files_not_as_user().await
        {
            if let Some(ContentBlock::Text(last)) = result.content.last_mut() {
                last.text.push_str(&format!(
                    "\n(no in-container helper here: the file tools act with the engine's rights, root, not as {user})"
                ));
            }
            if let Some(serde_json::Value::Object(fields)) = result.structured_content.as_mut() {
                fields.insert("as_user".to_owned(), serde_json::Value::Bool(false));
            }
        }
        if let Some(note) = self.pending_note().await {
            if let Some(ContentBlock::Text(first)) = result.content.first_mut() {
                first.text = format!("{note}\n{}", first.text);
            }
            if let Some(serde_json::Value::Object(fields)) = result.structured_content.as_mut() {
                fields.insert("note".to_owned(), serde_json::Value::String(note));
            }
        }
        Ok(result.into())
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("dcx", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Tools that run commands inside the project's dev container, with the container's own user and environment. Use run_command for commands that finish (its answer keeps to a character budget; give yield_ms for long ones); start_command, read_output, send_input and cancel_command for long-running ones (start_command with `tty: true` for full-screen programs, REPLs and prompts, then resize_terminal if needed); container_info to see where commands run. Use read_file, write_file, edit_file and list_directory for files in the container (relative paths start from the session's current directory; they act as the same user).",
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
        let (transport, writer) = stdio::filtered(tokio::io::stdin(), tokio::io::stdout());
        let running = tools
            .serve(transport)
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
        // The last answers out (the SDK's side closed with the service).
        let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
        Ok(())
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arguments(value: serde_json::Value) -> rmcp::model::JsonObject {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_bad_argument_is_named_by_its_path() {
        let bad = |tool, value| bad_argument(tool, arguments(value)).unwrap_or_default();
        insta::assert_snapshot!(
            bad("run_command", serde_json::json!({"command": "ls", "timeout_ms": "x"})),
            @r#"argument `timeout_ms`: invalid type: string "x", expected u64"#
        );
        insta::assert_snapshot!(
            bad("run_command", serde_json::json!({"command": "ls", "env": {"A": 1}})),
            @"argument `env.A`: invalid type: integer `1`, expected a string"
        );
        insta::assert_snapshot!(
            bad("read_file", serde_json::json!({})),
            @"arguments: missing field `path`"
        );
        assert_eq!(
            bad_argument(
                "run_command",
                arguments(serde_json::json!({"command": "ls"}))
            ),
            None
        );
    }
}
