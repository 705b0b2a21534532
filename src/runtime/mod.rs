//! The one seam to container engines. Everything that talks to Docker or crun sits behind
//! [`Runtime`]; the rest of dcx works on the plain values defined here.
//!
//! An exec is started with [`Runtime::start`] and comes back as a [`Session`]: a stream of
//! output chunks, a byte sink for the process's stdin (shut it down to send EOF), and a
//! [`Process`] to ask for the exit status once the output has ended. An engine whose own exec
//! command needs no relay may instead take dcx's place ([`Runtime::hand_over`]).

pub mod bridge;
pub mod capture;
pub mod crun;
pub mod docker;
pub mod helper;
pub mod hostfs;
#[cfg(test)]
pub mod memory;
pub mod paths;
pub mod peek;
pub mod procfs;
pub mod replay;
mod status;
pub mod tree;
pub mod zombies;

pub use status::{ExitStatus, signal_name};
pub use tree::{FileKind, Owner, PathStat};

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use tokio::io::AsyncWrite;

/// What dcx needs to know about a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Container {
    /// The full id.
    pub id: String,
    /// The name, without docker's leading `/`.
    pub name: String,
    pub running: bool,
    /// Running but frozen (`docker pause`): nothing can be exec'd in it.
    pub paused: bool,
    /// The engine's word for its state (`running`, `exited`, `created`, …).
    pub status: String,
    /// The configured user (`Config.User`), if any.
    pub user: Option<String>,
    /// The image it was created from, when the engine tells (Docker's `Config.Image`).
    pub image: Option<String>,
    /// The configured environment (`Config.Env`), `NAME=value` entries.
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// When the container was last started (Docker's `State.StartedAt`; crun's creation and
    /// process start times): a restart changes it.
    pub started_at: String,
    /// Its root filesystem as seen from this host, when the engine tells (crun's bundle).
    pub rootfs: Option<std::path::PathBuf>,
    /// Its mounts, where they appear in it (crun's `config.json`; Docker's `Mounts` and
    /// `HostConfig.Tmpfs`).
    pub mounts: Vec<Mount>,
    /// The host pid of its first process, when the engine tells (crun's state, Docker's
    /// `State.Pid`).
    pub init_pid: Option<i64>,
    /// That process's start time (clock ticks since boot, `/proc/PID/stat`), as the engine
    /// recorded it (crun's state): tells it from a later process given the same pid.
    pub init_start: Option<u64>,
}

/// A filesystem mounted in a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    /// Where it appears in the container (absolute).
    pub destination: String,
    /// For a bind mount, the host directory it shows.
    pub bind_source: Option<std::path::PathBuf>,
}

/// One process to start in a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecSpec {
    pub argv: Vec<String>,
    pub user: Option<String>,
    /// `NAME=value` entries added to the container's environment.
    pub env: Vec<String>,
    /// Names to remove from the container's own environment (a `null` in `remoteEnv`).
    pub unset: Vec<String>,
    pub cwd: Option<String>,
    pub tty: bool,
    /// The terminal size the process must see from its first instruction (TTY only).
    pub size: Option<TermSize>,
}

/// The requests a warm run is foreseen to make before its command starts (see
/// [`crate::runtime::replay`]): the stats of the shell's startup files, as one batch, and
/// the exec.
#[derive(Debug, Clone, Default)]
pub struct Forecast {
    /// The full id of the container they are for.
    pub container_id: String,
    pub stats: Vec<String>,
    pub exec: Option<ExecSpec>,
}

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermSize {
    pub rows: u16,
    pub cols: u16,
}

/// A chunk of the process's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    Stdout(Bytes),
    Stderr(Bytes),
}

pub type OutputStream = Pin<Box<dyn Stream<Item = Result<Chunk, RuntimeError>> + Send>>;
/// A tar archive in pieces, as the engine's file calls read and write it.
pub type ArchiveStream = Pin<Box<dyn Stream<Item = Result<Bytes, RuntimeError>> + Send>>;
pub type InputSink = Pin<Box<dyn AsyncWrite + Send>>;

/// A started exec.
pub struct Session {
    pub output: OutputStream,
    pub input: InputSink,
    pub process: Arc<dyn Process>,
}

/// The process behind a [`Session`].
#[async_trait]
pub trait Process: Send + Sync {
    /// The exit status; call it after the output stream has ended. Shared (`Arc`), so that a
    /// signal can be delivered beside the relay while the output keeps flowing.
    async fn wait(&self) -> Result<ExitStatus, RuntimeError>;

    /// Resizes the process's terminal (TTY sessions only).
    async fn resize(&self, size: TermSize) -> Result<(), RuntimeError>;

    /// Delivers a signal (Linux number) to the process, or to its whole process group (the
    /// process and the children it started; engines start an exec as a group leader). A group
    /// once signalled can be signalled again after its leader has exited (to end stragglers).
    async fn signal(&self, signal: i32, target: SignalTarget) -> Result<(), SignalError>;

    /// Resolves once the process itself has exited, whether or not its output has ended (a
    /// background child may hold it open). An engine that cannot tell never resolves it.
    fn exited(&self) -> ExitWatch {
        Box::pin(std::future::pending())
    }
}

/// See [`Process::exited`].
pub type ExitWatch = Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Who receives a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalTarget {
    Process,
    Group,
}

/// Why a signal could not be delivered.
#[derive(Debug, thiserror::Error)]
#[error("cannot deliver signal {signal} to the process: {reason}")]
pub struct SignalError {
    pub signal: i32,
    pub reason: String,
}

/// A container engine.
#[async_trait]
pub trait Runtime: Send + Sync {
    /// Looks a container up by full id, name or unique id prefix.
    async fn inspect(&self, id: &str) -> Result<Container, RuntimeError>;

    /// The most recently created container carrying all these `name=value` labels, stopped ones
    /// included (containers being removed are skipped), as `docker ps -a --filter label=…`.
    async fn find_by_labels(&self, labels: &[String]) -> Result<Option<Container>, RuntimeError>;

    /// The engine's endpoint, as shown to the user (and keyed on by the probe cache).
    fn endpoint(&self) -> &str;

    /// The engine's name for `--dry-run` (`docker`, `crun`).
    fn name(&self) -> &'static str;

    /// What to tell the user about a container that is not running.
    fn start_hint(&self, container: &Container) -> String;

    /// Starts a process in a running container, attached to its stdio.
    async fn start(&self, container: &Container, spec: &ExecSpec) -> Result<Session, RuntimeError>;

    /// The running containers (id, name, labels), for shell completion; none where the engine
    /// cannot list them.
    async fn running(&self) -> Result<Vec<Listed>, RuntimeError> {
        Ok(Vec::new())
    }

    /// The container's processes.
    async fn top(&self, _container: &Container) -> Result<Vec<ProcessInfo>, RuntimeError> {
        Err(RuntimeError::Unsupported(format!(
            "{} cannot list a container's processes.",
            self.name()
        )))
    }

    /// The container's own output (its main process's stdout and stderr), as chunks.
    fn logs(
        &self,
        _container: &Container,
        _options: &LogOptions,
    ) -> Result<OutputStream, RuntimeError> {
        Err(RuntimeError::Unsupported(format!(
            "{} keeps no log of a container's output.",
            self.name()
        )))
    }

    /// What `path` in the container is; a final symlink is not followed (unless the path ends
    /// in `/`). Paths are absolute, resolved as the container resolves them.
    async fn stat_path(
        &self,
        _container: &Container,
        _path: &str,
    ) -> Result<PathStat, RuntimeError> {
        Err(self.no_files())
    }

    /// [`Runtime::stat_path`] of each of `paths`, in order: here [`Runtime::calls_at_once`] at
    /// a time, in groups; an engine whose calls each cost a round trip sends them all together.
    async fn stat_paths(
        &self,
        container: &Container,
        paths: &[String],
    ) -> Vec<Result<PathStat, RuntimeError>> {
        let mut stats = Vec::with_capacity(paths.len());
        for some in paths.chunks(self.calls_at_once().max(1)) {
            let mut calls = Vec::with_capacity(some.len());
            for path in some {
                calls.push(self.stat_path(container, path));
            }
            stats.extend(futures_util::future::join_all(calls).await);
        }
        stats
    }

    /// A tar of `path` in the container, its top entry named by the path's last component; a
    /// final symlink is archived as the link (unless the path ends in `/`).
    async fn read_archive(
        &self,
        _container: &Container,
        _path: &str,
    ) -> Result<ArchiveStream, RuntimeError> {
        Err(self.no_files())
    }

    /// Extracts `tar` into the existing folder `dir` of the container. With `owner`, all that
    /// was written belongs to it (else to the engine's default, root).
    async fn write_archive(
        &self,
        _container: &Container,
        _dir: &str,
        _tar: ArchiveStream,
        _owner: Option<Owner>,
    ) -> Result<(), RuntimeError> {
        Err(self.no_files())
    }

    /// The entries of the folder `path` (followed), sorted by name; `None` when there are more
    /// than `limit`.
    async fn list_dir(
        &self,
        _container: &Container,
        _path: &str,
        _limit: usize,
    ) -> Result<Option<Vec<PathStat>>, RuntimeError> {
        Err(self.no_files())
    }

    /// Renames `from` to `to` in the container (replacing a file at `to`) in one step.
    async fn rename_path(
        &self,
        _container: &Container,
        _from: &str,
        _to: &str,
    ) -> Result<(), RuntimeError> {
        Err(self.no_files())
    }

    /// The container's root as this host sees it (`/proc/PID/root` of its first process, its
    /// mounts included), when the engine runs here and names that process; `None` otherwise (a
    /// remote engine). Read only through [`tree::Root::container`], and only by this user
    /// where the kernel lets it.
    fn host_root(&self, _container: &Container) -> Option<std::path::PathBuf> {
        None
    }

    /// The container's architecture as the engine names it (`amd64`, `arm64`, `x86_64`…);
    /// `None` when the engine does not say.
    async fn architecture(&self, _container: &Container) -> Option<String> {
        None
    }

    /// How many file calls may be in flight at once: several on a socket or TCP, one where
    /// each connection costs a process (ssh).
    fn calls_at_once(&self) -> usize {
        8
    }

    /// What an engine without file calls answers them.
    fn no_files(&self) -> RuntimeError {
        RuntimeError::Unsupported(format!("{} cannot reach a container's files.", self.name()))
    }

    /// Whether sending a run's requests ahead ([`Runtime::foresee`]) saves it round trips: a
    /// remote engine's, where each costs a wait on the link.
    fn foresees(&self) -> bool {
        false
    }

    /// Sends the requests of `forecast` ahead, beside the ones the run makes meanwhile; an
    /// answer is taken later only for the very request it was sent for (the same container,
    /// the same paths, the same exec), and any other is left unused.
    fn foresee(&self, _forecast: Forecast) {}

    /// The engine's own exec command, for a front end that would have nothing to relay: run in
    /// the front end's place (`exec`), it gives the process the caller's own stdio and ends with
    /// its exit status, forwarding signals meanwhile, as [`Runtime::start`] and the relay would.
    /// `None` when the engine has no such command, or not for this exec.
    fn hand_over(
        &self,
        _container: &Container,
        _spec: &ExecSpec,
    ) -> Result<Option<HandOver>, RuntimeError> {
        Ok(None)
    }
}

/// One process of a container, as `dcx top` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub user: String,
    /// The pid as the engine shows it (the host's, for Docker and crun).
    pub pid: i64,
    /// The process state letter (`R`, `S`, `Z`…).
    pub state: String,
    pub command: String,
}

impl ProcessInfo {
    pub fn zombie(&self) -> bool {
        self.state.starts_with('Z')
    }
}

/// A running container as an engine lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// What of a container's own output `dcx logs` wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep following new output.
    pub follow: bool,
    /// Only the last this many lines.
    pub tail: Option<u64>,
    /// Only output since this Unix time (seconds).
    pub since: Option<i64>,
    /// Only output before this Unix time (seconds).
    pub until: Option<i64>,
    /// Each line led by its RFC 3339 time.
    pub timestamps: bool,
}

/// The ways to run an exec with the caller's own stdio ([`Runtime::hand_over`]): the caller
/// starts it with [`HandOver::spawn`] (the first attempt that starts), passes the signals it
/// receives on with [`HandOver::signal`], and ends with its status. Only a front end that owns
/// its process may do this; it keeps the value alive until the command has ended.
pub struct HandOver {
    attempts: Vec<Attempt>,
    program: String,
    /// How the attempt that started delivers a signal to the exec'd process's whole group.
    started: Option<fn(u32, i32)>,
    /// What the started program needs alive until it has ended (a sealed binary's descriptor).
    keep: Option<Box<dyn Send>>,
}

/// One way to start a handed-over exec, and how its process group is signalled given the
/// started process's pid.
pub(crate) struct Attempt {
    pub(crate) start: Start,
    pub(crate) signal: fn(u32, i32),
}

/// How an [`Attempt`] starts.
pub(crate) enum Start {
    /// Programs (the engine's own exec command), made only if this attempt is reached, tried in
    /// order with the caller's stdio, each in a process group of its own.
    Programs(Box<dyn FnOnce() -> Result<Programs, RuntimeError> + Send>),
    /// A process the runtime starts itself, with the caller's stdio.
    Direct(Box<dyn FnOnce() -> std::io::Result<tokio::process::Child> + Send>),
}

/// Commands to try in order, and what they need alive until the one started has ended.
pub(crate) struct Programs {
    pub(crate) commands: Vec<std::process::Command>,
    pub(crate) keep: Box<dyn Send>,
}

impl HandOver {
    pub(crate) fn new(attempts: Vec<Attempt>, program: String) -> Self {
        Self {
            attempts,
            program,
            started: None,
            keep: None,
        }
    }

    /// Starts the first attempt that starts; the error is the last attempt's, worded for the
    /// user. Must be called inside the Tokio runtime.
    pub fn spawn(&mut self) -> Result<tokio::process::Child, RuntimeError> {
        let mut failure = std::io::Error::other("nothing to run");
        for attempt in std::mem::take(&mut self.attempts) {
            let started = match attempt.start {
                Start::Direct(start) => start(),
                Start::Programs(make) => {
                    let Programs { commands, keep } = make()?;
                    self.keep = Some(keep);
                    let mut started = Err(std::io::Error::other("no program to run"));
                    for mut command in commands {
                        use std::os::unix::process::CommandExt;
                        command.process_group(0);
                        started = tokio::process::Command::from(command).spawn();
                        if started.is_ok() {
                            break;
                        }
                    }
                    started
                }
            };
            match started {
                Ok(child) => {
                    self.started = Some(attempt.signal);
                    return Ok(child);
                }
                Err(err) => failure = err,
            }
        }
        Err(RuntimeError::Spawn {
            program: self.program.clone(),
            reason: io_reason(&failure),
        })
    }

    /// Passes `signal` on to the whole process group of what the started attempt `pid`
    /// started (what a terminal's ^C reaches), and to the command itself.
    pub fn signal(&self, pid: u32, signal: i32) {
        if let Some(deliver) = self.started {
            deliver(pid, signal);
        }
    }
}

/// Failures of an engine, worded for the user.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "Cannot connect to the Docker daemon at {endpoint} ({reason}). Is it running? Otherwise point DOCKER_HOST at one that is."
    )]
    Unreachable { endpoint: String, reason: String },
    #[error(
        "Permission denied on the Docker socket {endpoint}: the daemon is there, but this user may not use it."
    )]
    NoPermission { endpoint: String },
    #[error(transparent)]
    Endpoint(#[from] docker::endpoint::EndpointError),
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error(
        "No crun state root at {0}: no container runs there (--crun-root names crun's --root; crun's default is /run/crun as root)."
    )]
    NoCrunRoot(std::path::PathBuf),
    #[error("Container id prefix {prefix} matches more than one container{}; give more of the id.",
        if .matches.is_empty() { String::new() } else { format!(" ({})", .matches.join(", ")) })]
    AmbiguousContainer {
        prefix: String,
        matches: Vec<String>,
    },
    #[error("Unknown user {0}: the container's /etc/passwd has no such user.")]
    UnknownUser(String),
    #[error("Unknown group {0}: the container's /etc/group has no such group.")]
    UnknownGroup(String),
    #[error("Cannot run {program}: {reason}")]
    Spawn { program: String, reason: String },
    #[error("Container {0} is not running.")]
    NotRunning(String),
    #[error("Cannot use the working directory {dir} in the container: {reason}.")]
    Workdir { dir: String, reason: String },
    #[error("Docker Engine error ({endpoint}): {message}")]
    Engine { endpoint: String, message: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("No such file or directory in container {container}: {path}")]
    NoSuchPath { container: String, path: String },
    #[error("Cannot access {path} in container {container}: {reason}")]
    FileAccess {
        container: String,
        path: String,
        reason: String,
    },
}

impl From<crate::passwd::IdsError> for RuntimeError {
    fn from(err: crate::passwd::IdsError) -> Self {
        match err {
            crate::passwd::IdsError::UnknownUser(name) => Self::UnknownUser(name),
            crate::passwd::IdsError::UnknownGroup(group) => Self::UnknownGroup(group),
        }
    }
}

impl RuntimeError {
    /// A file call's I/O failure on `path`, as the user reads it.
    pub(crate) fn file(container: &Container, path: &str, err: &std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::NotFound {
            return Self::NoSuchPath {
                container: container.name.clone(),
                path: path.to_owned(),
            };
        }
        Self::FileAccess {
            container: container.name.clone(),
            path: path.to_owned(),
            reason: io_reason(err),
        }
    }
}

/// Watches the first output of an exec for the engine's own failure to enter the working
/// directory, which arrives as output (the process never started), and turns it into
/// [`RuntimeError::Workdir`]. `recognise` knows the engine's wording and returns the reason.
pub(crate) struct WorkdirGuard {
    dir: String,
    recognise: fn(&[u8]) -> Option<String>,
    first: bool,
}

impl WorkdirGuard {
    pub(crate) fn new(dir: Option<&str>, recognise: fn(&[u8]) -> Option<String>) -> Self {
        Self {
            dir: dir.unwrap_or_default().to_owned(),
            recognise,
            first: true,
        }
    }

    /// Checks a chunk where the engine reports the failure; only the first chunk counts.
    pub(crate) fn check(&mut self, bytes: &[u8]) -> Result<(), RuntimeError> {
        if !std::mem::take(&mut self.first) {
            return Ok(());
        }
        match (self.recognise)(bytes) {
            Some(reason) => Err(RuntimeError::Workdir {
                dir: self.dir.clone(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Output on another stream came first: the process started.
    pub(crate) fn started(&mut self) {
        self.first = false;
    }
}

/// A short reason for an I/O failure, as users read it.
pub(crate) fn io_reason(err: &std::io::Error) -> String {
    without_os_error(err.to_string())
}

/// Drops the " (os error N)" an `io::Error`'s text ends with: it says nothing more to a user.
pub(crate) fn without_os_error(text: String) -> String {
    match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// The argv that sets the terminal size before `argv` starts (for daemons below API 1.42, and
/// for crun, whose terminal reaches dcx only after the process may have started).
pub(crate) fn sized_argv(argv: &[String], size: TermSize) -> Vec<String> {
    let mut wrapped = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        // A missing command still fails as the engine's own exec would (126), not as sh's.
        format!(
            "stty rows {} cols {} 2>/dev/null; command -v \"$1\" >/dev/null 2>&1 || {{ printf 'exec: \"%s\": executable file not found in $PATH\\n' \"$1\" >&2; exit 126; }}; exec \"$@\"",
            size.rows, size.cols
        ),
        "sh".to_owned(),
    ];
    wrapped.extend(argv.iter().cloned());
    wrapped
}

/// Container names and ids are `[A-Za-z0-9][A-Za-z0-9_.-]*`; anything else could not name a
/// container, and must not reach a URL path.
pub(crate) fn plausible_container_ref(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}
