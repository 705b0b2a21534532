//! A session: one prepared dev container and what its commands share.
//!
//! Prepared once at `session.create` (selection, config, user, probe), a session holds the
//! engine it runs on, the shell and state file its wrapper uses, its foreground permit (one
//! `exec.run`/`exec.stream` at a time unless it is concurrent), its execs, and when it was last
//! used (for the idle sweep).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::exec::Exec;
use crate::engine::{Command, Engine, ExecIo, Prepared, TargetSpec};

/// A session to create, typed (what `dcx mcp` builds directly).
#[derive(Debug, Clone, Default)]
pub struct Create {
    /// The dev container and its engine; relative paths already resolved.
    pub target: TargetSpec,
    pub user: Option<String>,
    /// `remoteEnv`-like variables for every command of the session.
    pub env: Vec<(String, String)>,
    /// The session's first working directory.
    pub cwd: Option<String>,
    /// `None`: the server's `--idle-timeout`.
    pub idle_timeout: Option<Duration>,
    pub concurrent: bool,
    /// `Some(false)`: no helper for this session; `None`: the server's choice.
    pub helper: Option<bool>,
}

/// A session: a prepared dev container and what its commands share.
pub struct Session {
    pub id: String,
    pub engine: Arc<Engine>,
    pub prepared: Prepared,
    /// The shell the wrapper runs in (the user's, when it is a POSIX one; else `/bin/sh`).
    pub shell: String,
    /// Foreground commands may run side by side.
    pub concurrent: bool,
    /// How its commands start: the in-container helper, or a plain engine exec (and why).
    pub transport: Transport,
    pub idle_timeout: Duration,
    /// What it was created from: after a rebuild, its dev container is found again by it.
    pub origin: Create,
    created: SystemTime,
    last_used: Mutex<(Instant, SystemTime)>,
    /// Bumped by `session.reset`: a new state file.
    generation: AtomicU64,
    /// One permit: the foreground command of a session that is not concurrent.
    foreground: Arc<Semaphore>,
    /// Execs of this session, oldest first.
    execs: Mutex<VecDeque<Arc<Exec>>>,
    /// A line for the next answer on this session (it moved to a rebuilt container).
    note: Mutex<Option<String>>,
    /// What `session.info` last learned from the engine (the current directory, whether it was
    /// removed), answered when the engine does not answer in time.
    pub last_known: Mutex<Option<(String, bool)>>,
    /// The container's zombie count `system.stats` last learned.
    pub last_zombies: Mutex<Option<u64>>,
    /// The `state` `session.info` last learned ([`container_state`]).
    pub last_state: Mutex<&'static str>,
    /// Where its state folder is ([`STATE_ROOTS`]), and why it keeps no state when none can be
    /// written ([`Session::place_state`]).
    state_root: Mutex<(&'static str, Option<String>)>,
}

/// Where a session's state folder may go, in order: the container's `/tmp`, else `/dev/shm`
/// (a tmpfs every Docker container has, writable by everyone, a read-only root included).
pub const STATE_ROOTS: [&str; 2] = ["/tmp", "/dev/shm"];

/// How long [`Session::paused_note`] waits for the engine.
pub const PAUSE_CHECK: Duration = Duration::from_millis(800);

/// How a session's commands start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Forked by the helper in the container (2–3 ms).
    Helper,
    /// A plain engine exec each; why, when the helper was wanted.
    Exec(Option<String>),
}

impl Transport {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Helper => "helper",
            Self::Exec(_) => "exec",
        }
    }
}

/// `session.info`'s answer (and `session.list`'s entries).
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub session_id: String,
    pub container_id: String,
    pub container_name: String,
    pub image: Option<String>,
    pub workspace_folder: Option<std::path::PathBuf>,
    pub remote_workspace_folder: Option<String>,
    pub runtime: &'static str,
    pub user: String,
    pub concurrent: bool,
    /// `helper` or `exec`.
    pub transport: &'static str,
    /// Why a session that wanted the helper runs plain engine execs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_note: Option<String>,
    pub running_execs: Vec<String>,
    pub last_exit: Option<LastExit>,
    pub created_ms: u64,
    pub last_used_ms: u64,
    /// The current directory (only `session.info` reads it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The current directory was removed: the next command fails once, saying so, and the
    /// session goes back to its starting directory.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cwd_removed: bool,
    /// The engine did not answer in time: what was answered instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_note: Option<String>,
    /// Why the session keeps no state (`cd`, `export`) between commands, when it keeps none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_note: Option<String>,
    /// Whether its commands can run: `ready`, `container_paused`, `container_not_running`,
    /// `no_such_container` or `engine_unreachable` (asked of the engine by `session.info`;
    /// `session.list` says what it learned last).
    pub state: &'static str,
}

/// What the engine says of a session's container, as `session.info`'s `state` names it.
pub fn container_state(
    seen: Result<crate::runtime::Container, crate::engine::EngineError>,
) -> &'static str {
    use crate::engine::ErrorKind;
    match seen {
        Ok(container) if container.paused => "container_paused",
        Ok(container) if !container.running => "container_not_running",
        Ok(_) => "ready",
        Err(err) => match err.kind() {
            ErrorKind::NoSuchContainer => "no_such_container",
            ErrorKind::NotRunning => "container_not_running",
            _ => "engine_unreachable",
        },
    }
}

/// The last exec of a session that has ended.
#[derive(Debug, Clone, Serialize)]
pub struct LastExit {
    pub exec_id: String,
    pub state: &'static str,
    pub exit_code: Option<i64>,
    pub signal: Option<&'static str>,
}

fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

impl Session {
    pub fn new(
        id: String,
        (engine, transport): (Arc<Engine>, Transport),
        prepared: Prepared,
        origin: Create,
        idle_timeout: Duration,
    ) -> Self {
        let shell = match prepared.environment.shell.rsplit('/').next() {
            Some("bash" | "sh" | "dash" | "ash" | "zsh" | "ksh" | "mksh") => {
                prepared.environment.shell.clone()
            }
            _ => "/bin/sh".to_owned(),
        };
        Self {
            id,
            engine,
            prepared,
            shell,
            concurrent: origin.concurrent,
            transport,
            idle_timeout,
            origin,
            created: SystemTime::now(),
            last_used: Mutex::new((Instant::now(), SystemTime::now())),
            generation: AtomicU64::new(0),
            foreground: Arc::new(Semaphore::new(1)),
            execs: Mutex::new(VecDeque::new()),
            note: Mutex::new(None),
            last_known: Mutex::new(None),
            last_zombies: Mutex::new(None),
            last_state: Mutex::new("ready"),
            state_root: Mutex::new((STATE_ROOTS[0], None)),
        }
    }

    /// Whether file calls act as the session's user: through the helper, or when that user is
    /// root anyway (without the helper they act with the engine's rights, as `docker cp` does).
    pub fn files_as_user(&self) -> bool {
        let user = self.prepared.user.as_str();
        self.transport == Transport::Helper
            || user == "root"
            || user == "0"
            || user.starts_with("0:")
            || user.starts_with("root:")
    }

    /// Keeps `note` for the next answer on this session.
    pub fn set_note(&self, note: String) {
        *self.note.lock().unwrap_or_else(|e| e.into_inner()) = Some(note);
    }

    /// The note for this answer, once.
    pub fn take_note(&self) -> Option<String> {
        self.note.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    pub fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) =
            (Instant::now(), SystemTime::now());
    }

    /// The foreground permit, unless another foreground command holds it (a concurrent
    /// session needs none: `Some(None)`).
    pub fn claim_foreground(&self) -> Option<Option<OwnedSemaphorePermit>> {
        if self.concurrent {
            return Some(None);
        }
        self.foreground.clone().try_acquire_owned().ok().map(Some)
    }

    /// The folder of the session's state files, in the container's `/tmp` or `/dev/shm` (mode
    /// 0700, see [`Session::place_state`]).
    pub fn state_dir(&self) -> String {
        let root = self.state_root.lock().unwrap_or_else(|e| e.into_inner()).0;
        format!("{root}/.dcx-agent-{}", self.id)
    }

    /// Makes the session's state folder, as its user, in the first of [`STATE_ROOTS`] that
    /// takes it (a read-only root filesystem has no writable `/tmp` unless a tmpfs is mounted
    /// there). Where none does, the session keeps no state between commands, and says so
    /// ([`Session::state_note`]) instead of losing `cd` and `export` silently.
    pub async fn place_state(&self) {
        for root in STATE_ROOTS {
            let dir = format!("{root}/.dcx-agent-{}", self.id);
            if self
                .housekeeping(&["mkdir", "-p", "-m", "700", "--", &dir])
                .await
            {
                *self.state_root.lock().unwrap_or_else(|e| e.into_inner()) = (root, None);
                return;
            }
        }
        let note = format!(
            "The session keeps no state between commands: the container's user {} can write neither {} (a read-only root filesystem without a tmpfs there?), so `cd` and `export` last for their own command only. Give the command its `cwd` and `env`, or chain it (`cd dir && …`).",
            self.prepared.user,
            STATE_ROOTS.join(" nor ")
        );
        *self.state_root.lock().unwrap_or_else(|e| e.into_inner()) = (STATE_ROOTS[0], Some(note));
    }

    /// Why the session keeps no state between commands, when it keeps none.
    pub fn state_note(&self) -> Option<String> {
        self.state_root
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// The state file of the current generation.
    pub fn state_file(&self) -> String {
        format!(
            "{}/state-{}",
            self.state_dir(),
            self.generation.load(Ordering::SeqCst)
        )
    }

    /// Starts a new generation (`session.reset`); returns the old state file.
    pub fn reset(&self) -> String {
        let old = self.state_file();
        self.generation.fetch_add(1, Ordering::SeqCst);
        old
    }

    pub fn add_exec(&self, exec: Arc<Exec>) {
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(exec);
    }

    /// Its execs that have not ended.
    pub fn running(&self) -> Vec<Arc<Exec>> {
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|exec| exec.ending().is_none())
            .cloned()
            .collect()
    }

    /// Nothing runs and no request came for its idle timeout.
    pub fn idle(&self) -> bool {
        self.running().is_empty()
            && self
                .last_used
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .0
                .elapsed()
                > self.idle_timeout
    }

    /// Forgets finished execs beyond the newest `keep` that ended more than `age` ago;
    /// returns their ids.
    pub fn forget_old(&self, keep: usize, age: Duration) -> Vec<String> {
        let mut execs = self.execs.lock().unwrap_or_else(|e| e.into_inner());
        let finished = execs.iter().filter(|e| e.ending().is_some()).count();
        let mut surplus = finished.saturating_sub(keep);
        let mut dropped = Vec::new();
        execs.retain(|exec| {
            let old = exec.finished_at().is_some_and(|at| at.elapsed() > age);
            if surplus > 0 && old {
                surplus -= 1;
                dropped.push(exec.id.clone());
                false
            } else {
                true
            }
        });
        dropped
    }

    /// Its finished execs, oldest first.
    pub fn finished(&self) -> Vec<Arc<Exec>> {
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|exec| exec.ending().is_some())
            .cloned()
            .collect()
    }

    /// Forgets the execs `ids` names.
    pub fn forget(&self, ids: &std::collections::HashSet<String>) {
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|exec| !ids.contains(&exec.id));
    }

    /// Forgets every exec; returns their ids.
    pub fn forget_all(&self) -> Vec<String> {
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .map(|exec| exec.id.clone())
            .collect()
    }

    /// What `session.info` says of it (without the current directory).
    pub fn info(&self) -> SessionInfo {
        let last_exit = self
            .execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .rev()
            .find_map(|exec| {
                exec.ending().map(|ending| LastExit {
                    exec_id: exec.id.clone(),
                    state: ending.state.name(),
                    exit_code: ending.state.exit_code(),
                    signal: ending.state.signal(),
                })
            });
        let container = &self.prepared.container;
        SessionInfo {
            session_id: self.id.clone(),
            container_id: container.id.clone(),
            container_name: container.name.clone(),
            image: container.image.clone(),
            workspace_folder: self.prepared.workspace_folder.clone(),
            remote_workspace_folder: self.prepared.remote_workspace_folder.clone(),
            runtime: self.engine.name(),
            user: self.prepared.user.clone(),
            concurrent: self.concurrent,
            transport: self.transport.name(),
            transport_note: match &self.transport {
                Transport::Exec(note) => note.clone(),
                Transport::Helper => None,
            },
            running_execs: self.running().iter().map(|e| e.id.clone()).collect(),
            last_exit,
            created_ms: epoch_ms(self.created),
            last_used_ms: epoch_ms(self.last_used.lock().unwrap_or_else(|e| e.into_inner()).1),
            cwd: None,
            cwd_removed: false,
            engine_note: None,
            state_note: self.state_note(),
            state: *self.last_state.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// The session's current directory: the one its last command left (read from the state
    /// file through the engine's file call, no exec), else the prepared one.
    pub async fn current_cwd(&self) -> String {
        let file = format!("{}.cwd", self.state_file());
        match self
            .engine
            .read_file(&self.prepared.container, &file, 0, None, 64 * 1024)
            .await
        {
            Ok(content) if !content.bytes.is_empty() => {
                String::from_utf8_lossy(&content.bytes).into_owned()
            }
            _ => self.prepared.cwd.clone(),
        }
    }

    /// When the session's container is paused (asked of the engine, at most [`PAUSE_CHECK`]):
    /// what a stop of one of its commands does then. A frozen process runs nothing, its signal
    /// handlers included: a signal sent from this host (crun, a local daemon) stays pending and
    /// SIGKILL ends it the moment it is thawed; the helper, frozen too, passes the stop on then;
    /// a remote daemon starts no exec in a paused container, so nothing reaches the command.
    pub async fn paused_note(&self) -> Option<String> {
        let container = &self.prepared.container;
        let now = tokio::time::timeout(PAUSE_CHECK, self.engine.inspect(container))
            .await
            .ok()?
            .ok()?;
        if !now.paused {
            return None;
        }
        let visible = self.engine.name() == "crun"
            || now
                .init_pid
                .is_some_and(|pid| crate::runtime::procfs::container_root(pid, &now.id).is_some());
        Some(match (&self.transport, visible) {
            (Transport::Helper, _) => format!(
                "The container {} is paused: its processes, the helper's too, cannot run until it is unpaused; the stop is queued with the helper, which ends the command's process group (SIGKILL after 2 s) as soon as the container is unpaused.",
                container.name
            ),
            (Transport::Exec(_), true) => format!(
                "The container {} is paused: the stop (then SIGKILL, 2 s later) was sent to the command's process group from this host; a frozen process takes signals only when it is thawed, so it ends as soon as the container is unpaused.",
                container.name
            ),
            (Transport::Exec(_), false) => format!(
                "The container {} is paused and the engine starts nothing in it (its processes are not visible from this host): the stop could not reach the command, which runs on once the container is unpaused; cancel it again then.",
                container.name
            ),
        })
    }

    /// Writes a request file for exec `exec_id` into the session's folder (made first, mode
    /// 0700), as the session's user, mode 0600; its path.
    pub async fn place_request(
        &self,
        exec_id: &str,
        text: &str,
    ) -> Result<String, super::protocol::Failure> {
        let dir = self.state_dir();
        self.housekeeping(&["mkdir", "-p", "-m", "700", "--", &dir])
            .await;
        let path = format!("{dir}/request-{exec_id}");
        let target = crate::engine::FileTarget {
            container: self.prepared.container.clone(),
            user: self.prepared.user.clone(),
            cwd: self.prepared.cwd.clone(),
        };
        self.engine
            .write_file(
                &target,
                &path,
                text.as_bytes(),
                Some(0o600),
                false,
                super::wrapper::MAX_REQUEST as u64 * 2,
            )
            .await?;
        Ok(path)
    }

    /// Runs a short bookkeeping command in `/` (no state saved, 10 s at most); true when it
    /// exited 0.
    pub async fn housekeeping(&self, argv: &[&str]) -> bool {
        // From `/`: the session's own directory may be gone (or never have been there).
        let command = Command {
            timeout: Some(Duration::from_secs(10)),
            cwd: Some("/".to_owned()),
            ..Command::new(argv.iter().copied())
        };
        let io = ExecIo {
            stdin: None,
            stdout: Box::pin(tokio::io::sink()),
            stderr: Box::pin(tokio::io::sink()),
            control: None,
            started: None,
        };
        self.engine
            .run(&self.prepared, &command, io)
            .await
            .is_ok_and(|finished| finished.status.exit_code() == 0)
    }
}
