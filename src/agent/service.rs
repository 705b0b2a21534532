//! The service state behind every transport: sessions, execs, limits and engines.
//!
//! [`Service`] is the registry: sessions by id (each holding a session permit), execs by id,
//! the permits that bound running execs, the connected engines, and the shutdown flag. A
//! transport hands a parsed request to [`super::methods::handle`], whose methods act on it.
//! Limits are semaphore permits held by what they count (a session's
//! registry entry, an exec's task), released however that ends. Logs carry ids, methods,
//! states, byte counts and durations; never command text, env values, stdin, output or tokens.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::engines::{Connect, Engines};
use super::exec::Exec;
use super::protocol::{Code, Failure};
use super::session::Session;
use crate::log::Log;

/// The variable that holds the HTTP bearer token: never passed to a command.
pub const TOKEN_VARIABLE: &str = "DCX_AUTH_TOKEN";
/// Finished results are kept at least this long…
const KEEP_RESULTS: Duration = Duration::from_secs(600);
/// …and the last this many of each session, as long as all of them together hold at most
/// this many bytes of output (the oldest finished results are dropped first beyond it).
const KEEP_PER_SESSION: usize = 100;
pub const KEPT_BYTES: usize = 256 * 1024 * 1024;

/// The service's limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_sessions: usize,
    pub max_execs: usize,
    pub idle_timeout: Duration,
    pub max_timeout: Duration,
}

/// The helper is used unless `DCX_HELPER=0` (or `dcx serve --no-helper`) says otherwise.
pub fn helper_wanted() -> bool {
    std::env::var("DCX_HELPER").as_deref() != Ok("0")
}

/// A registered session and the permit it counts against `--max-sessions`.
struct Entry {
    session: Arc<Session>,
    _permit: OwnedSemaphorePermit,
}

/// The whole service.
pub struct Service {
    pub started: Instant,
    pub limits: Limits,
    pub log: Log,
    pub engines: Engines,
    /// The server's directory: relative workspace folders are resolved against it.
    pub cwd: PathBuf,
    /// The host environment for `${localEnv:…}`, without the token.
    pub host_env: HashMap<String, String>,
    /// Sessions run their commands through the in-container helper where it can run.
    pub helper: bool,
    /// The warm engines `dcx exec` attaches run on (`methods::attach`).
    pub warm: super::warm::WarmTargets,
    sessions: Mutex<HashMap<String, Entry>>,
    execs: Mutex<HashMap<String, Arc<Exec>>>,
    session_permits: Arc<Semaphore>,
    exec_permits: Arc<Semaphore>,
    stopping: AtomicBool,
    /// Bytes of output finished results may hold over the whole server.
    kept_budget: AtomicUsize,
}

impl Service {
    /// A service on the engines `connect` reaches (with the in-container helper where it runs,
    /// when `helper`); `engine_log` takes the engines' own diagnostics.
    pub fn new(
        limits: Limits,
        log: Log,
        engine_log: Log,
        cwd: PathBuf,
        connect: Box<dyn Connect>,
        helper: bool,
    ) -> Arc<Self> {
        let mut host_env = crate::config::LocalContext::process_env();
        host_env.remove(TOKEN_VARIABLE);
        Arc::new(Self {
            started: Instant::now(),
            session_permits: Arc::new(Semaphore::new(limits.max_sessions)),
            exec_permits: Arc::new(Semaphore::new(limits.max_execs)),
            limits,
            log,
            engines: Engines::new(connect, engine_log),
            cwd,
            host_env,
            helper,
            warm: super::warm::WarmTargets::default(),
            sessions: Mutex::new(HashMap::new()),
            execs: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            kept_budget: AtomicUsize::new(KEPT_BYTES),
        })
    }

    /// Refuses new work once shutting down.
    pub fn open(&self) -> Result<(), Failure> {
        match self.stopping.load(Ordering::SeqCst) {
            true => Err(Failure::new(
                Code::ShuttingDown,
                "the server is shutting down",
            )),
            false => Ok(()),
        }
    }

    /// A session permit, or `session_limit`.
    pub fn session_permit(&self) -> Result<OwnedSemaphorePermit, Failure> {
        self.session_permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                Failure::new(
                    Code::SessionLimit,
                    format!(
                        "the server holds {} sessions, its limit (--max-sessions)",
                        self.limits.max_sessions
                    ),
                )
            })
    }

    /// An exec permit, or `exec_limit`.
    pub fn exec_permit(&self) -> Result<OwnedSemaphorePermit, Failure> {
        self.exec_permits.clone().try_acquire_owned().map_err(|_| {
            Failure::new(
                Code::ExecLimit,
                format!(
                    "{} execs are running, the server's limit (--max-execs)",
                    self.limits.max_execs
                ),
            )
        })
    }

    /// Execs running now, over all sessions.
    pub fn running_execs(&self) -> usize {
        self.limits.max_execs - self.exec_permits.available_permits()
    }

    pub fn add_session(&self, session: Arc<Session>, permit: OwnedSemaphorePermit) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                session.id.clone(),
                Entry {
                    session,
                    _permit: permit,
                },
            );
    }

    /// Puts `session` in the place of the one registered under its id (a session that moved to
    /// a rebuilt container), keeping its permit; false when that one is gone meanwhile.
    pub fn replace_session(&self, session: Arc<Session>) -> bool {
        match self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&session.id)
        {
            Some(entry) => {
                entry.session = session;
                true
            }
            None => false,
        }
    }

    /// The session `id` (marked as used), or `no_such_session`.
    pub fn session(&self, id: &str) -> Result<Arc<Session>, Failure> {
        let session = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|entry| entry.session.clone())
            .ok_or_else(|| {
                let text = match id.is_empty() {
                    true => {
                        "`session_id` is empty: give the one session.create answered".to_owned()
                    }
                    false => format!("No such session: {}", id.escape_debug()),
                };
                Failure::new(Code::NoSuchSession, text)
            })?;
        session.touch();
        Ok(session)
    }

    pub fn sessions(&self) -> Vec<Arc<Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|entry| entry.session.clone())
            .collect()
    }

    /// The exec `id`, or `no_such_exec`.
    pub fn exec(&self, id: &str) -> Result<Arc<Exec>, Failure> {
        self.find_exec(id).ok_or_else(|| {
            let text = match id.is_empty() {
                true => "`exec_id` is empty: give the one the exec's start answered".to_owned(),
                false => format!("No such exec: {}", id.escape_debug()),
            };
            Failure::new(Code::NoSuchExec, text)
        })
    }

    pub fn find_exec(&self, id: &str) -> Option<Arc<Exec>> {
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Registers `exec` unless its id is taken; returns the one registered under that id.
    pub fn add_exec(&self, exec: &Arc<Exec>) -> Arc<Exec> {
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(exec.id.clone())
            .or_insert_with(|| exec.clone())
            .clone()
    }

    /// Forgets one exec (a failed start given again on a rebuilt container).
    pub fn forget_exec(&self, id: &str) {
        self.forget_execs(vec![id.to_owned()]);
    }

    fn forget_execs(&self, ids: Vec<String>) {
        let mut execs = self.execs.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            execs.remove(&id);
        }
    }

    /// Ends a session: out of the registry (its permit released), its commands killed and
    /// waited for, its state files removed, its results forgotten.
    pub async fn destroy(&self, session: &Arc<Session>) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&session.id);
        let running = session.running();
        for exec in &running {
            exec.cancel(libc::SIGKILL);
        }
        for exec in &running {
            exec.wait(None).await;
        }
        let dir = session.state_dir();
        session.housekeeping(&["rm", "-rf", "--", &dir]).await;
        self.forget_execs(session.forget_all());
    }

    /// Drops idle sessions and old results; called now and then.
    pub async fn sweep(&self) {
        for session in self.sessions().into_iter().filter(|s| s.idle()) {
            self.log
                .info(&format!("session {} idle: dropped", session.id));
            self.destroy(&session).await;
        }
        for session in self.sessions() {
            self.forget_execs(session.forget_old(KEEP_PER_SESSION, KEEP_RESULTS));
        }
        self.forget_over_budget();
        self.warm.sweep(self.limits.idle_timeout).await;
    }

    /// Sets the bytes finished results may hold over the whole server (tests make it small).
    pub fn set_kept_budget(&self, bytes: usize) {
        self.kept_budget.store(bytes, Ordering::SeqCst);
    }

    /// Forgets the oldest finished results until those left hold at most the kept budget.
    pub fn forget_over_budget(&self) {
        let sessions = self.sessions();
        let mut finished: Vec<(Instant, usize, Arc<Exec>, usize)> = Vec::new();
        for (index, session) in sessions.iter().enumerate() {
            for exec in session.finished() {
                let at = exec.finished_at().unwrap_or(self.started);
                finished.push((at, exec.held(), exec, index));
            }
        }
        let mut held: usize = finished.iter().map(|(_, bytes, _, _)| bytes).sum();
        let budget = self.kept_budget.load(Ordering::SeqCst);
        if held <= budget {
            return;
        }
        finished.sort_by_key(|(at, ..)| *at);
        let mut dropped = vec![std::collections::HashSet::new(); sessions.len()];
        let mut ids = Vec::new();
        for (_, bytes, exec, index) in finished {
            if held <= budget {
                break;
            }
            held -= bytes;
            dropped[index].insert(exec.id.clone());
            ids.push(exec.id.clone());
        }
        for (session, ids) in sessions.iter().zip(&dropped) {
            if !ids.is_empty() {
                session.forget(ids);
            }
        }
        self.log.info(&format!(
            "{} finished results dropped: kept output over {budget} bytes",
            ids.len()
        ));
        self.forget_execs(ids);
    }

    /// Destroys every session.
    pub async fn destroy_all(&self) {
        for session in self.sessions() {
            self.destroy(&session).await;
        }
    }

    /// Stops: no new sessions or execs, running execs cancelled; returns when they have ended
    /// or `limit` has passed.
    pub async fn shutdown(&self, limit: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        let running: Vec<Arc<Exec>> = self
            .execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|exec| exec.ending().is_none())
            .cloned()
            .collect();
        for exec in &running {
            exec.cancel(libc::SIGTERM);
        }
        let all = futures_util::future::join_all(running.iter().map(|exec| exec.wait(None)));
        let _ = tokio::time::timeout(limit, all).await;
    }
}
