//! The exec engine as a library: the API every front end drives.
//!
//! The CLI, the agent service and the MCP server all take three steps, each a plain value passed
//! forward:
//!
//! 1. [`Engine::connect`]: once per engine, from [`EngineSettings`] (Docker with its endpoint, crun
//!    with its root and binary);
//! 2. [`Engine::prepare`]: once per target (once per agent session): selection → config → effective
//!    config → user, env and working directory, into a [`Prepared`] value that any number of
//!    commands reuse;
//! 3. [`Engine::run`]: once per [`Command`], with the caller's [`ExecIo`] (input stream, output
//!    sinks, control channel), returning how the process ended ([`Finished`]).
//!
//! [`Engine::plan`] is `--dry-run`'s plan as a value, and [`Engine::hand_over`] the engine's own
//! exec command for a front end that would have nothing to relay. Beside them: a container as it
//! is, running or not ([`Engine::locate`], [`Engine::top`], [`Engine::logs`], [`Engine::zombies`]),
//! the file calls of `dcx cp` and the agent's `fs.*` ([`Engine::file_target`],
//! [`Engine::copy_into`], [`Engine::read_file`], …), and the conversion from selectors to these
//! requests that `dcx mcp` and the agent share ([`TargetSpec`]). Nothing here reads or writes the
//! process's own stdio, installs signal handlers, touches a terminal or replaces the process: those
//! belong to the front ends. Diagnostics go through the [`Log`] the front end hands in; every
//! failure is an [`EngineError`], classified once ([`EngineError::kind`]).

mod error;
mod files;
mod foresee;
mod plan;
mod prepare;
mod target;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::exec::{Control, End, ExecIo, Finished, Input, KILL_GRACE, Output};
pub use crate::runtime::docker::DockerEnv;
pub use crate::runtime::helper::Unplaced;
pub use crate::runtime::{
    Chunk, Container, ExitStatus, HandOver, Listed, LogOptions, ProcessInfo, TermSize, signal_name,
};
pub use crate::runtime::{FileKind, Owner, PathStat};
pub use error::{EngineError, ErrorKind};
pub use files::{
    Copied, CopyDestination, CopySource, FileContent, FileError, FileTarget, container_path,
};
pub use plan::Plan;
pub use prepare::{Prepared, SelectorError, default_workspace};
pub use target::{MAX_CONTAINER_ID, MAX_ID_LABEL, RuntimeKind, TargetError, TargetSpec};

use crate::env::ProbeMode;
use crate::log::Log;
use crate::runtime::{ExecSpec, Runtime};

/// Which engine to connect to, and how (serialized as a `dcx exec` sends it to a server).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum EngineSettings {
    /// A Docker Engine API daemon.
    Docker {
        /// The variables that pick the endpoint (`DOCKER_HOST`, `DOCKER_CONTEXT`, TLS…), by the
        /// docker CLI's rules; the default gives the default socket.
        env: DockerEnv,
        /// `--docker-path`: only its naming podman matters (podman's socket is used).
        docker_path: Option<String>,
    },
    /// Containers run directly by crun.
    Crun {
        /// crun's state root; `None` for crun's own default.
        root: Option<PathBuf>,
        /// The crun binary; `None` for `crun` on PATH.
        path: Option<PathBuf>,
        /// Whether dcx may do a handed-over exec itself rather than through crun (off with
        /// `DCX_CRUN_DIRECT=0`).
        #[serde(default = "direct_by_default")]
        direct: bool,
    },
}

fn direct_by_default() -> bool {
    true
}

/// What to prepare: the target's selectors and everything that decides its environment
/// (serialized as a `dcx exec` sends it to a server).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrepareRequest {
    /// Relative paths are resolved against it.
    pub cwd: PathBuf,
    pub container_id: Option<String>,
    /// `name=value` strings, both parts non-empty.
    pub id_labels: Vec<String>,
    /// The workspace folder (see [`default_workspace`] for the current directory's rule).
    pub workspace_folder: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub override_config: Option<PathBuf>,
    pub mount_workspace_git_root: bool,
    pub mount_git_worktree_common_dir: bool,
    /// Run as this user (wins over `remoteUser`).
    pub user: Option<String>,
    /// The working directory (default: the remote workspace folder, else the user's home).
    pub workdir: Option<String>,
    /// `--remote-env` pairs, unsubstituted; they win over the config's.
    pub remote_env: Vec<(String, String)>,
    /// The `userEnvProbe` when the config sets none.
    pub default_user_env_probe: ProbeMode,
    /// The host folder of the probe cache; `None` probes every time.
    pub probe_cache: Option<PathBuf>,
    /// Probe anew even when the cache holds an entry, and store the fresh result
    /// (`--no-probe-cache`).
    pub probe_cache_refresh: bool,
    /// A folder in the container for the probe's cache, as the reference's `up` keeps it.
    pub container_session_data_folder: Option<String>,
    /// Store nothing (caches included): `--dry-run`.
    pub read_only: bool,
    /// The host environment, for `${localEnv:…}`.
    pub host_env: HashMap<String, String>,
}

impl PrepareRequest {
    /// A request with no selector, config or options yet, resolving paths against `cwd`.
    pub fn new(cwd: impl Into<PathBuf>) -> Self {
        Self {
            cwd: cwd.into(),
            container_id: None,
            id_labels: Vec::new(),
            workspace_folder: None,
            config: None,
            override_config: None,
            mount_workspace_git_root: true,
            mount_git_worktree_common_dir: false,
            user: None,
            workdir: None,
            remote_env: Vec::new(),
            default_user_env_probe: ProbeMode::LoginInteractiveShell,
            probe_cache: None,
            probe_cache_refresh: false,
            container_session_data_folder: None,
            read_only: false,
            host_env: HashMap::new(),
        }
    }
}

/// One command to run in a prepared target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    /// The program and its arguments, never empty.
    pub argv: Vec<String>,
    /// Give it a terminal; the output then comes as one stream (the stdout sink).
    pub tty: bool,
    /// The terminal's size from its first instruction (TTY only).
    pub size: Option<TermSize>,
    /// Stop it after this long (SIGTERM, then SIGKILL after [`KILL_GRACE`]).
    pub timeout: Option<Duration>,
    /// Once the process has exited, read its output (a background child's) at most this long;
    /// `None`: until it stays silent for the drain.
    pub drain_limit: Option<Duration>,
    /// `NAME=value` entries on top of the prepared env (later entries win).
    pub env: Vec<String>,
    /// A working directory other than the prepared one.
    pub cwd: Option<String>,
}

impl Command {
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            argv: argv.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

/// Waits (up to `limit`) until the helper commands of a preparation that was given up on (an
/// interrupted `prepare`) are killed; a front end calls it before it exits.
pub async fn settle_helpers(limit: Duration) {
    crate::runtime::capture::settle(limit).await;
}

/// A connected engine.
pub struct Engine {
    runtime: std::sync::Arc<dyn Runtime>,
    log: Log,
    /// The in-container helper the runtime starts commands through, for the file calls it
    /// does as its user ([`Engine::warm`]).
    warm: Option<std::sync::Arc<crate::runtime::helper::Warm>>,
}

impl Engine {
    /// Connects to the engine (for Docker: reaches the daemon and negotiates the API version).
    pub async fn connect(settings: &EngineSettings, log: Log) -> Result<Self, EngineError> {
        let runtime: Box<dyn Runtime> = match settings {
            EngineSettings::Docker { env, docker_path } => Box::new(
                crate::runtime::docker::Docker::connect(&log, env, docker_path.as_deref()).await?,
            ),
            // A crun the user names (`--crun-path`) is the one that runs every exec.
            EngineSettings::Crun { root, path, direct } => Box::new(
                crate::runtime::crun::Crun::new(root.clone(), path.clone())
                    .with_direct(*direct && path.is_none()),
            ),
        };
        Ok(Self::with_runtime(runtime, log))
    }

    /// An engine on a runtime of the caller's (another engine kind, an in-memory one in tests).
    pub fn with_runtime(runtime: Box<dyn Runtime>, log: Log) -> Self {
        Self {
            runtime: runtime.into(),
            log,
            warm: None,
        }
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The same engine (its connection, its helper) with its diagnostics going to `log`: a
    /// server gives each caller's run that caller's own log.
    pub fn with_log(&self, log: Log) -> Self {
        Self {
            runtime: self.runtime.clone(),
            log,
            warm: self.warm.clone(),
        }
    }

    /// The engine's name (`docker`, `crun`).
    pub fn name(&self) -> &'static str {
        self.runtime.name()
    }

    /// Resolves the target and everything its commands share.
    pub async fn prepare(&self, request: &PrepareRequest) -> Result<Prepared, EngineError> {
        prepare::prepare(self.runtime.as_ref(), request, &self.log).await
    }

    /// [`Engine::prepare`] for a run whose first command is `command`: on a remote engine, the
    /// requests that run will make before the command starts are foreseen from the last run's
    /// answers and sent ahead, beside the container's inspect (see `foresee.rs`).
    pub async fn prepare_for(
        &self,
        request: &PrepareRequest,
        command: &Command,
    ) -> Result<Prepared, EngineError> {
        let Some(store) = foresee::Store::of(self.runtime.as_ref(), request) else {
            return self.prepare(request).await;
        };
        let loaded = store.load(&self.log);
        if let Some(recorded) = &loaded
            && let Some(forecast) =
                foresee::forecast(self.runtime.as_ref(), recorded, request, command).await
        {
            self.log.debug(&format!(
                "Sending ahead: {} stats and the exec",
                forecast.stats.len()
            ));
            self.runtime.foresee(forecast);
        }
        let recording = crate::runtime::replay::Recording::new(self.runtime.as_ref());
        let prepared = prepare::prepare(&recording, request, &self.log).await?;
        let recorded = recording.finish();
        if loaded.as_ref() != Some(&recorded) {
            store.save(recorded, &self.log);
        }
        Ok(prepared)
    }

    /// The container the request's selectors mean, running or not; no config is merged and no
    /// environment probed (for `logs` and `top`).
    pub async fn locate(&self, request: &PrepareRequest) -> Result<Container, EngineError> {
        prepare::locate(self.runtime.as_ref(), request).await
    }

    /// The container as the engine sees it now (running, paused, gone).
    pub async fn inspect(&self, container: &Container) -> Result<Container, EngineError> {
        Ok(self.runtime.inspect(&container.id).await?)
    }

    /// The running containers, for shell completion (none where the engine cannot list them).
    pub async fn running(&self) -> Result<Vec<Listed>, EngineError> {
        Ok(self.runtime.running().await?)
    }

    /// The container's processes.
    pub async fn top(&self, container: &Container) -> Result<Vec<ProcessInfo>, EngineError> {
        Ok(self.runtime.top(container).await?)
    }

    /// An engine whose commands in `prepared`'s container, as its user, are run by the
    /// in-container helper (placed and started now: see [`crate::runtime::helper`]); why
    /// not, when it cannot be used (the plain engine exec then stays).
    pub async fn warm(&self, prepared: &Prepared) -> Result<Engine, Unplaced> {
        let warm = crate::runtime::helper::Warm::start(
            self.runtime.clone(),
            &prepared.container,
            &prepared.user,
            self.log.clone(),
        )
        .await?;
        let warm = std::sync::Arc::new(warm);
        Ok(Self {
            runtime: warm.clone(),
            log: self.log.clone(),
            warm: Some(warm),
        })
    }

    /// How many zombie processes the container holds (see [`crate::runtime::zombies`]);
    /// `None` when the engine cannot tell.
    pub async fn zombies(&self, container: &Container) -> Option<u64> {
        crate::runtime::zombies::count(self.runtime.as_ref(), container).await
    }

    /// The container's own output, as stdout and stderr chunks.
    pub fn logs(
        &self,
        container: &Container,
        options: &LogOptions,
    ) -> Result<crate::runtime::OutputStream, EngineError> {
        Ok(self.runtime.logs(container, options)?)
    }

    /// What `command` would run, as `--dry-run` shows it.
    pub fn plan(&self, prepared: &Prepared, command: &Command) -> Plan {
        plan::describe(self.runtime.name(), prepared, &prepared.spec(command))
    }

    /// The engine's own exec command for `command`, to be run in the caller's place, when the
    /// engine has one (crun) and the exec allows it (see [`Runtime::hand_over`]).
    pub fn hand_over(
        &self,
        prepared: &Prepared,
        command: &Command,
    ) -> Result<Option<HandOver>, EngineError> {
        Ok(self
            .runtime
            .hand_over(&prepared.container, &prepared.spec(command))?)
    }

    /// Runs `command` with the caller's I/O until the process has ended.
    pub async fn run(
        &self,
        prepared: &Prepared,
        command: &Command,
        io: ExecIo,
    ) -> Result<Finished, EngineError> {
        let spec: ExecSpec = prepared.spec(command);
        Ok(crate::exec::run(
            self.runtime.as_ref(),
            &prepared.container,
            &spec,
            command.timeout,
            command.drain_limit,
            io,
            &self.log,
        )
        .await?)
    }
}

#[cfg(test)]
mod tests;
