//! The service behind both transports: sessions bound to dev containers (prepared once by the
//! engine), their execs, the limits, and one handler per method. A transport parses a line or
//! a body into a [`Request`], calls [`Service::handle`], and writes what comes back: the answer,
//! preceded by stream events for `exec.stream`.
//!
//! Logs carry ids, methods, states, byte counts and durations; never command text, env values,
//! stdin, output or tokens.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::exec::{Ending, Exec, Stream, Wrapped};
use super::output::{text_or_b64, trim_partial_end};
use super::protocol::{Code, Failure, Params, Request, answer_err, answer_ok};
use crate::engine::{Engine, EngineError, EngineSettings, ExecIo, Input, PrepareRequest, Prepared};
use crate::env::{ProbeCache, ProbeMode};
use crate::log::Log;

/// The variable that holds the HTTP bearer token: never passed to a command.
pub const TOKEN_VARIABLE: &str = "DCX_AUTH_TOKEN";
/// Output kept per stream of an exec (head and tail halves).
pub const DEFAULT_OUTPUT: usize = 1024 * 1024;
/// The default command timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Finished results are kept at least this long…
const KEEP_RESULTS: Duration = Duration::from_secs(600);
/// …and the last this many of each session.
const KEEP_PER_SESSION: usize = 100;
/// How often a stream says it is alive.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// How long `exec.start` and `exec.read` may wait.
const MAX_WAIT_MS: u64 = 30_000;

/// Non-interactive defaults for every command, unless the session's env sets them (the wrapper
/// applies them only where unset).
const QUIET_ENV: [(&str, &str); 4] = [
    ("PAGER", "cat"),
    ("GIT_PAGER", "cat"),
    ("GIT_TERMINAL_PROMPT", "0"),
    ("DEBIAN_FRONTEND", "noninteractive"),
];

/// A shell variable name: the wrapper exports it by name.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// 128 random bits as hex: ids nobody can guess or plant files for.
fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The service's limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_sessions: usize,
    pub max_execs: usize,
    pub idle_timeout: Duration,
    pub max_timeout: Duration,
}

/// A session: a prepared dev container and what its commands share.
pub struct Session {
    pub id: String,
    engine: Arc<Engine>,
    prepared: Prepared,
    runtime: &'static str,
    shell: String,
    concurrent: bool,
    idle_timeout: Duration,
    created: SystemTime,
    last_used: Mutex<(Instant, SystemTime)>,
    generation: AtomicU64,
    foreground: AtomicBool,
    /// Execs of this session, oldest first.
    execs: Mutex<VecDeque<Arc<Exec>>>,
}

impl Session {
    pub(super) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(super) fn prepared(&self) -> &Prepared {
        &self.prepared
    }

    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) =
            (Instant::now(), SystemTime::now());
    }

    /// The session's state file, in a directory of its own (mode 0700, created by the first
    /// command) under the container's `/tmp`.
    fn state_file(&self) -> String {
        format!(
            "{}/state-{}",
            self.state_dir(),
            self.generation.load(Ordering::SeqCst)
        )
    }

    fn state_dir(&self) -> String {
        format!("/tmp/.dcx-agent-{}", self.id)
    }

    fn running(&self) -> Vec<Arc<Exec>> {
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|exec| exec.ending().is_none())
            .cloned()
            .collect()
    }

    fn idle(&self) -> bool {
        self.running().is_empty()
            && self
                .last_used
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .0
                .elapsed()
                > self.idle_timeout
    }
}

/// The whole service.
pub struct Service {
    started: Instant,
    limits: Limits,
    log: Log,
    engine_log: Log,
    /// The server's directory: relative workspace folders are resolved against it.
    cwd: PathBuf,
    /// The host environment for `${localEnv:…}`, without the token.
    host_env: HashMap<String, String>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    execs: Mutex<HashMap<String, Arc<Exec>>>,
    running: AtomicUsize,
    engines: tokio::sync::Mutex<Vec<(EngineSettings, Arc<Engine>)>>,
    stopping: AtomicBool,
}

fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// The protocol error for an engine failure, with `dcx exec`'s message.
fn engine_failure(err: &EngineError) -> Failure {
    use crate::discovery::DiscoveryError;
    use crate::runtime::RuntimeError;
    let code = match err {
        EngineError::Runtime(RuntimeError::NoSuchContainer(_))
        | EngineError::Discovery(
            DiscoveryError::NotFound | DiscoveryError::Runtime(RuntimeError::NoSuchContainer(_)),
        ) => Code::NoSuchContainer,
        EngineError::Discovery(DiscoveryError::NotRunning { .. })
        | EngineError::Runtime(RuntimeError::NotRunning(_)) => Code::NotRunning,
        EngineError::Config(_) => Code::BadRequest,
        _ => Code::EngineError,
    };
    Failure::new(code, err.to_string())
}

fn signal_number(name: &str) -> Option<i32> {
    match name.trim_start_matches("SIG") {
        "INT" => Some(libc::SIGINT),
        "TERM" => Some(libc::SIGTERM),
        "KILL" => Some(libc::SIGKILL),
        "HUP" => Some(libc::SIGHUP),
        _ => None,
    }
}

impl Service {
    pub fn new(limits: Limits, log: Log, engine_log: Log, cwd: PathBuf) -> Arc<Self> {
        let mut host_env = crate::config::LocalContext::process_env();
        host_env.remove(TOKEN_VARIABLE);
        Arc::new(Self {
            started: Instant::now(),
            limits,
            log,
            engine_log,
            cwd,
            host_env,
            sessions: Mutex::new(HashMap::new()),
            execs: Mutex::new(HashMap::new()),
            running: AtomicUsize::new(0),
            engines: tokio::sync::Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
        })
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    /// A new id: unguessable, so neither a caller's `exec_id` nor another user of the
    /// container can meet it.
    fn next_id(&self, prefix: &str) -> String {
        format!("{prefix}-{}", random_hex())
    }

    fn all_sessions(&self) -> Vec<Arc<Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn session(&self, params: &Params) -> Result<Arc<Session>, Failure> {
        let id = params.required_string("session_id")?;
        let session = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
            .ok_or_else(|| Failure::new(Code::NoSuchSession, format!("No such session: {id}")))?;
        session.touch();
        Ok(session)
    }

    fn exec(&self, params: &Params) -> Result<Arc<Exec>, Failure> {
        let id = params.required_string("exec_id")?;
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
            .ok_or_else(|| Failure::new(Code::NoSuchExec, format!("No such exec: {id}")))
    }

    /// Answers one request; stream events go to `events` first.
    pub async fn handle(self: &Arc<Self>, request: Request, events: &mpsc::Sender<Value>) -> Value {
        let started = Instant::now();
        let id = request.id.clone();
        let method = request.method.clone();
        let result = self.dispatch(&request, events).await;
        let elapsed = started.elapsed().as_millis();
        match result {
            Ok(Reply::Data(data)) => {
                self.log.info(&format!(
                    "{method} id={id} ok{} {elapsed} ms",
                    summary(&data)
                ));
                answer_ok(&id, data)
            }
            Ok(Reply::Event(event)) => {
                self.log.info(&format!(
                    "{method} id={id} ended{} {elapsed} ms",
                    summary(&event)
                ));
                event
            }
            Err(failure) => {
                self.log.info(&format!(
                    "{method} id={id} error={} {elapsed} ms",
                    failure.code.as_str()
                ));
                answer_err(&id, &failure)
            }
        }
    }

    /// One method called in-process (another front end on the same sessions, `dcx mcp`):
    /// its data, or the failure. Stream events are not available this way.
    pub async fn call(self: &Arc<Self>, method: &str, params: Value) -> Result<Value, Failure> {
        if method == "exec.stream" {
            return Err(Failure::bad(
                "exec.stream needs a transport: use exec.start and exec.read",
            ));
        }
        let params = match params {
            Value::Object(map) => Params(map),
            _ => Params::default(),
        };
        let request = Request {
            id: Value::Null,
            method: method.to_owned(),
            params,
        };
        let (events, _ignored) = mpsc::channel(1);
        match self.dispatch(&request, &events).await? {
            Reply::Data(data) | Reply::Event(data) => Ok(data),
        }
    }

    async fn dispatch(
        self: &Arc<Self>,
        request: &Request,
        events: &mpsc::Sender<Value>,
    ) -> Result<Reply, Failure> {
        let params = &request.params;
        let data = match request.method.as_str() {
            "system.ping" => json!({
                "pong": true,
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_ms": self.started.elapsed().as_millis() as u64,
            }),
            "system.stats" => self.stats().await,
            "session.create" => self.create(params).await?,
            "session.list" => {
                let sessions: Vec<Arc<Session>> = self
                    .sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .cloned()
                    .collect();
                json!({"sessions": sessions.iter().map(|s| self.describe(s)).collect::<Vec<_>>()})
            }
            "session.info" => {
                let session = self.session(params)?;
                let mut info = self.describe(&session);
                info["cwd"] = Value::from(self.current_cwd(&session).await);
                info
            }
            "session.reset" => {
                let session = self.session(params)?;
                let old = session.state_file();
                session.generation.fetch_add(1, Ordering::SeqCst);
                self.remove_state(&session, &old).await;
                json!({"session_id": session.id, "cwd": session.prepared.cwd})
            }
            "session.destroy" => {
                let session = self.session(params)?;
                self.destroy(&session).await;
                json!({"session_id": session.id, "destroyed": true})
            }
            "fs.read" | "fs.write" | "fs.list" | "fs.stat" => {
                let session = self.session(params)?;
                session.touch();
                let cwd = self.current_cwd(&session).await;
                super::files::call(&request.method, &session, &cwd, params).await?
            }
            "exec.run" => self.run(params).await?,
            "exec.stream" => return self.stream(request, events).await.map(Reply::Event),
            "exec.start" => self.start(params).await?,
            "exec.read" => self.read(params).await?,
            "exec.write_stdin" => {
                let exec = self.exec(params)?;
                let data = params.bytes("data")?.unwrap_or_default();
                let eof = params.bool("eof")?.unwrap_or(false);
                if !exec.write_stdin(data, eof).await {
                    return Err(Failure::bad(format!(
                        "the stdin of exec {} is not open (started without `stdin_open`, closed, or ended) or the command is not reading it",
                        exec.id
                    )));
                }
                json!({"exec_id": exec.id, "eof": eof})
            }
            "exec.cancel" => {
                let exec = self.exec(params)?;
                let signal = match params.string("signal")? {
                    None => libc::SIGTERM,
                    Some(name) => signal_number(&name).ok_or_else(|| {
                        Failure::bad("`signal` must be one of INT, TERM, KILL, HUP")
                    })?,
                };
                if exec.ending().is_none() {
                    exec.cancel(signal);
                }
                exec.wait(None).await;
                exec.envelope(true)
            }
            other => {
                return Err(Failure::new(
                    Code::UnknownMethod,
                    format!("unknown method `{other}`"),
                ));
            }
        };
        Ok(Reply::Data(data))
    }

    fn describe(&self, session: &Session) -> Value {
        let running: Vec<String> = session.running().iter().map(|e| e.id.clone()).collect();
        let last = session
            .execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .rev()
            .find_map(|exec| exec.ending().map(|ending| (exec.id.clone(), ending)));
        let last_used = session
            .last_used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1;
        json!({
            "session_id": session.id,
            "container_id": session.prepared.container.id,
            "container_name": session.prepared.container.name,
            "image": session.prepared.container.image,
            "workspace_folder": session.prepared.workspace_folder,
            "remote_workspace_folder": session.prepared.remote_workspace_folder,
            "runtime": session.runtime,
            "user": session.prepared.user,
            "concurrent": session.concurrent,
            "running_execs": running,
            "last_exit": last.map(|(id, ending)| json!({
                "exec_id": id, "state": ending.state, "exit_code": ending.exit_code, "signal": ending.signal,
            })),
            "created_ms": epoch_ms(session.created),
            "last_used_ms": epoch_ms(last_used),
        })
    }

    async fn engine(&self, settings: EngineSettings) -> Result<Arc<Engine>, Failure> {
        let mut engines = self.engines.lock().await;
        if let Some((_, engine)) = engines.iter().find(|(known, _)| *known == settings) {
            return Ok(engine.clone());
        }
        let engine = Arc::new(
            Engine::connect(&settings, self.engine_log.clone())
                .await
                .map_err(|err| engine_failure(&err))?,
        );
        engines.push((settings, engine.clone()));
        Ok(engine)
    }

    async fn create(&self, params: &Params) -> Result<Value, Failure> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(Failure::new(
                Code::ShuttingDown,
                "the server is shutting down",
            ));
        }
        let count = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        if count >= self.limits.max_sessions {
            return Err(Failure::new(
                Code::SessionLimit,
                format!(
                    "the server holds {} sessions, its limit (--max-sessions)",
                    self.limits.max_sessions
                ),
            ));
        }
        let settings = match params.string("runtime")?.as_deref() {
            None | Some("docker") => EngineSettings::Docker {
                env: crate::engine::DockerEnv::from_vars(|name| std::env::var(name).ok()),
                docker_path: params.string("docker_path")?,
            },
            Some("crun") => EngineSettings::Crun {
                root: params.string("crun_root")?.map(PathBuf::from),
                path: params.string("crun_path")?.map(PathBuf::from),
            },
            Some(_) => return Err(Failure::bad("`runtime` must be \"docker\" or \"crun\"")),
        };
        let container_id = params.string("container_id")?.filter(|id| !id.is_empty());
        let id_labels = params.strings("id_labels")?;
        for label in &id_labels {
            if !label
                .split_once('=')
                .is_some_and(|(name, value)| !name.is_empty() && !value.is_empty())
            {
                return Err(Failure::bad(
                    "`id_labels`: each label must match <name>=<value>",
                ));
            }
        }
        let workspace_folder = params
            .string("workspace_folder")?
            .filter(|folder| !folder.is_empty())
            .map(|folder| self.cwd.join(folder));
        let workspace_folder = crate::engine::default_workspace(
            &self.cwd,
            container_id.as_deref(),
            &id_labels,
            workspace_folder,
            params
                .string("config")?
                .is_some_and(|config| !config.is_empty()),
        )
        .map_err(|err| Failure::bad(err.to_string()))?;
        let idle_timeout = match params.uint("idle_timeout_s", 7 * 24 * 3600)? {
            Some(seconds) => Duration::from_secs(seconds.max(1)),
            None => self.limits.idle_timeout,
        };
        let concurrent = params.bool("concurrent")?.unwrap_or(false);
        let mut request = PrepareRequest::new(self.cwd.clone());
        request.container_id = container_id;
        request.id_labels = id_labels;
        request.workspace_folder = workspace_folder;
        request.config = params.string("config")?.map(|path| self.cwd.join(path));
        request.user = params.string("user")?.filter(|user| !user.is_empty());
        request.workdir = params.string("cwd")?;
        request.remote_env = params.string_map("env")?;
        request.default_user_env_probe = ProbeMode::LoginInteractiveShell;
        request.probe_cache = ProbeCache::default_dir();
        request.host_env = self.host_env.clone();
        let engine = self.engine(settings).await?;
        let mut prepared = engine
            .prepare(&request)
            .await
            .map_err(|err| engine_failure(&err))?;
        prepared
            .env
            .retain(|entry| entry.split('=').next() != Some(TOKEN_VARIABLE));
        let shell = match prepared.environment.shell.rsplit('/').next() {
            Some("bash" | "sh" | "dash" | "ash" | "zsh" | "ksh" | "mksh") => {
                prepared.environment.shell.clone()
            }
            _ => "/bin/sh".to_owned(),
        };
        let id = self.next_id("s");
        let session = Arc::new(Session {
            id: id.clone(),
            runtime: engine.name(),
            engine,
            shell,
            concurrent,
            idle_timeout,
            created: SystemTime::now(),
            last_used: Mutex::new((Instant::now(), SystemTime::now())),
            generation: AtomicU64::new(0),
            foreground: AtomicBool::new(false),
            execs: Mutex::new(VecDeque::new()),
            prepared,
        });
        let answer = json!({
            "session_id": id,
            "container_id": session.prepared.container.id,
            "container_name": session.prepared.container.name,
            "user": session.prepared.user,
            "cwd": session.prepared.cwd,
            "runtime": session.runtime,
        });
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.len() >= self.limits.max_sessions {
            return Err(Failure::new(
                Code::SessionLimit,
                "the session limit was reached",
            ));
        }
        sessions.insert(id, session);
        Ok(answer)
    }

    /// Runs a short helper command in the session (no state saved) and returns its stdout.
    async fn helper(&self, session: &Session, argv: &[&str]) -> Option<Vec<u8>> {
        let (exec, _controls) = Exec::new(String::new(), session.id.clone(), 64 * 1024, false);
        let command = crate::engine::Command {
            timeout: Some(Duration::from_secs(10)),
            ..crate::engine::Command::new(argv.iter().copied())
        };
        let io = ExecIo {
            stdin: None,
            stdout: exec.sink(Stream::Stdout),
            stderr: exec.sink(Stream::Stderr),
            control: None,
            started: None,
        };
        let finished = session
            .engine
            .run(&session.prepared, &command, io)
            .await
            .ok()?;
        (finished.status.exit_code() == 0).then(|| exec.read_from(0, 0)[0].0.clone())
    }

    /// The session's current directory: the one its last command left (read from the state
    /// file through the engine's file call, no exec), else the prepared one.
    async fn current_cwd(&self, session: &Session) -> String {
        let file = format!("{}.cwd", session.state_file());
        match session
            .engine
            .read_file(&session.prepared.container, &file, 0, None, 64 * 1024)
            .await
        {
            Ok(content) if !content.bytes.is_empty() => {
                String::from_utf8_lossy(&content.bytes).into_owned()
            }
            _ => session.prepared.cwd.clone(),
        }
    }

    async fn remove_state(&self, session: &Session, file: &str) {
        let cwd = format!("{file}.cwd");
        let _ = self.helper(session, &["rm", "-f", file, &cwd]).await;
    }

    async fn destroy(&self, session: &Arc<Session>) {
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
        let prefix = format!("/tmp/.dcx-agent-{}-", session.id);
        let _ = self
            .helper(session, &["/bin/sh", "-c", r#"rm -f "$1"*"#, "sh", &prefix])
            .await;
        let ids: Vec<String> = session
            .execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .map(|exec| exec.id.clone())
            .collect();
        let mut execs = self.execs.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            execs.remove(&id);
        }
    }

    /// Reads an exec's parameters and starts it; returns the exec (possibly an earlier one with
    /// the same `exec_id`) and whether it is new.
    async fn begin(
        self: &Arc<Self>,
        params: &Params,
        foreground: bool,
        stream: Option<mpsc::Sender<(Stream, Bytes)>>,
    ) -> Result<(Arc<Exec>, bool), Failure> {
        let session = self.session(params)?;
        let exec_id = params.string("exec_id")?;
        if let Some(id) = &exec_id
            && let Some(existing) = self
                .execs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(id)
                .cloned()
        {
            if existing.session_id != session.id {
                return Err(Failure::bad(format!(
                    "exec_id {id} belongs to another session"
                )));
            }
            return Ok((existing, false));
        }
        if self.stopping.load(Ordering::SeqCst) {
            return Err(Failure::new(
                Code::ShuttingDown,
                "the server is shutting down",
            ));
        }
        let command = params.string("command")?;
        let argv = params.strings("argv")?;
        match (&command, argv.is_empty()) {
            (Some(_), false) => return Err(Failure::bad("give `command` or `argv`, not both")),
            (None, true) => return Err(Failure::bad("`command` (or `argv`) is missing")),
            (Some(text), _) if text.trim().is_empty() => {
                return Err(Failure::bad("`command` is empty"));
            }
            _ => {}
        }
        let stdin = params.bytes("stdin")?;
        let stdin_open = params.bool("stdin_open")?.unwrap_or(false);
        let env: Vec<String> = params
            .string_map("env")?
            .into_iter()
            .filter(|(name, _)| name != TOKEN_VARIABLE)
            .map(|(name, value)| {
                if is_variable_name(&name) {
                    Ok(format!("{name}={value}"))
                } else {
                    Err(Failure::bad(format!(
                        "`env`: `{}` is not a variable name (letters, digits and _, not first a digit)",
                        name.escape_debug()
                    )))
                }
            })
            .collect::<Result<_, _>>()?;
        // The wrapper sets each only where the session (or an earlier export) has none.
        let defaults: Vec<String> = QUIET_ENV
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let cwd = params.string("cwd")?;
        let max_timeout_ms = self.limits.max_timeout.as_millis() as u64;
        let timeout = match params.uint("timeout_ms", max_timeout_ms)? {
            Some(0) => return Err(Failure::bad("`timeout_ms` must be more than 0")),
            Some(ms) => Duration::from_millis(ms),
            None => DEFAULT_TIMEOUT.min(self.limits.max_timeout),
        };
        let budget = params
            .uint("max_output_bytes", 64 * 1024 * 1024)?
            .map_or(DEFAULT_OUTPUT, |bytes| bytes.max(2) as usize);
        // Limits: one foreground exec per session (unless concurrent), and the running execs
        // of the server.
        let claims_foreground = foreground && !session.concurrent;
        if claims_foreground && session.foreground.swap(true, Ordering::SeqCst) {
            return Err(Failure::new(
                Code::SessionBusy,
                format!(
                    "session {} is running a command; wait for it, cancel it, or create the session with `concurrent: true`",
                    session.id
                ),
            ));
        }
        if self.running.fetch_add(1, Ordering::SeqCst) >= self.limits.max_execs {
            self.running.fetch_sub(1, Ordering::SeqCst);
            if claims_foreground {
                session.foreground.store(false, Ordering::SeqCst);
            }
            return Err(Failure::new(
                Code::ExecLimit,
                format!(
                    "{} execs are running, the server's limit (--max-execs)",
                    self.limits.max_execs
                ),
            ));
        }
        let id = exec_id.unwrap_or_else(|| self.next_id("e"));
        let (exec, controls) = Exec::new(id.clone(), session.id.clone(), budget, foreground);
        {
            let mut execs = self.execs.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(existing) = execs.get(&id).cloned() {
                drop(execs);
                self.running.fetch_sub(1, Ordering::SeqCst);
                if foreground && !session.concurrent {
                    session.foreground.store(false, Ordering::SeqCst);
                }
                return Ok((existing, false));
            }
            execs.insert(id.clone(), exec.clone());
        }
        session
            .execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(exec.clone());
        let input: Option<Input> = if stdin_open {
            let input = exec.open_stdin();
            if let Some(bytes) = stdin {
                exec.write_stdin(bytes, false).await;
            }
            Some(input)
        } else {
            stdin.map(|bytes| Box::pin(std::io::Cursor::new(bytes)) as Input)
        };
        let state_file = session.state_file();
        let command = Wrapped {
            shell: &session.shell,
            state_file: &state_file,
            save_state: foreground && command.is_some(),
            command: command.as_deref(),
            argv: &argv,
            env: &env,
            defaults: &defaults,
            cwd: cwd.as_deref(),
        }
        .command(timeout);
        let (stdout, stderr) = match stream {
            Some(tx) => (
                exec.streaming_sink(Stream::Stdout, tx.clone()),
                exec.streaming_sink(Stream::Stderr, tx),
            ),
            None => (exec.sink(Stream::Stdout), exec.sink(Stream::Stderr)),
        };
        let io = ExecIo {
            stdin: input,
            stdout,
            stderr,
            control: Some(controls),
            started: None,
        };
        let service = self.clone();
        let task_exec = exec.clone();
        tokio::spawn(async move {
            let result = session.engine.run(&session.prepared, &command, io).await;
            let ending = match result {
                Ok(finished) => Ending::from_finished(&finished, task_exec.started.elapsed()),
                Err(err) => Ending::failed(err.to_string(), task_exec.started.elapsed()),
            };
            let (out, err) = task_exec.totals();
            service.log.info(&format!(
                "exec {} session {}: {} exit={:?} signal={:?} stdout={out} B stderr={err} B {} ms",
                task_exec.id,
                session.id,
                ending.state,
                ending.exit_code,
                ending.signal,
                ending.duration_ms
            ));
            if task_exec.foreground && !session.concurrent {
                session.foreground.store(false, Ordering::SeqCst);
            }
            service.running.fetch_sub(1, Ordering::SeqCst);
            session.touch();
            task_exec.finish(ending);
        });
        Ok((exec, true))
    }

    async fn run(self: &Arc<Self>, params: &Params) -> Result<Value, Failure> {
        let (exec, _) = self.begin(params, true, None).await?;
        exec.wait(None).await;
        Ok(exec.envelope(true))
    }

    async fn start(self: &Arc<Self>, params: &Params) -> Result<Value, Failure> {
        let yield_ms = params.uint("yield_ms", MAX_WAIT_MS)?.unwrap_or(0);
        let (exec, _) = self.begin(params, false, None).await?;
        if yield_ms > 0 {
            exec.wait(Some(Duration::from_millis(yield_ms))).await;
        }
        Ok(match exec.ending() {
            Some(_) => exec.envelope(true),
            None => json!({"exec_id": exec.id, "state": "running"}),
        })
    }

    async fn read(&self, params: &Params) -> Result<Value, Failure> {
        let exec = self.exec(params)?;
        let both = params.uint("offset", u64::MAX)?;
        let stdout_at = params
            .uint("stdout_offset", u64::MAX)?
            .or(both)
            .unwrap_or(0);
        let stderr_at = params
            .uint("stderr_offset", u64::MAX)?
            .or(both)
            .unwrap_or(0);
        let wait_ms = params.uint("wait_ms", MAX_WAIT_MS)?.unwrap_or(0);
        if wait_ms > 0 && exec.ending().is_none() {
            let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
            loop {
                let changed = exec.changed.notified();
                // Something to show: a whole character at least.
                let [(out, _, _), (err, _, _)] = exec.read_from(stdout_at, stderr_at);
                if !trim_partial_end(&out).is_empty()
                    || !trim_partial_end(&err).is_empty()
                    || exec.ending().is_some()
                {
                    break;
                }
                if tokio::time::timeout_at(deadline, changed).await.is_err() {
                    break;
                }
            }
        }
        let done = exec.ending().is_some();
        let mut answer = match exec.envelope(false) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        for (stream, (bytes, skipped, next)) in ["stdout", "stderr"]
            .into_iter()
            .zip(exec.read_from(stdout_at, stderr_at))
        {
            // A running stream may end inside a character: leave it for the next read.
            let kept = if done {
                &bytes[..]
            } else {
                trim_partial_end(&bytes)
            };
            let next = next - (bytes.len() - kept.len()) as u64;
            let bytes = kept;
            text_or_b64(stream, bytes, &mut answer);
            answer.insert(format!("{stream}_skipped"), Value::from(skipped));
            answer.insert(format!("{stream}_offset"), Value::from(next));
        }
        answer.insert("done".into(), Value::Bool(done));
        Ok(Value::Object(answer))
    }

    async fn stream(
        self: &Arc<Self>,
        request: &Request,
        events: &mpsc::Sender<Value>,
    ) -> Result<Value, Failure> {
        let (tx, mut rx) = mpsc::channel::<(Stream, Bytes)>(8);
        let mut params = request.params.clone();
        // The kept output only counts: the stream carries the bytes.
        params
            .0
            .entry("max_output_bytes")
            .or_insert(Value::from(64 * 1024));
        let (exec, fresh) = self.begin(&params, true, Some(tx)).await?;
        let id = &request.id;
        let _ = events
            .send(json!({"id": id, "event": "start", "exec_id": exec.id}))
            .await;
        if fresh {
            let mut offsets = [0u64; 2];
            let mut gone = false;
            let mut tails: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
            loop {
                match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
                    Err(_) => {
                        if !gone
                            && events
                                .send(json!({"id": id, "event": "keepalive"}))
                                .await
                                .is_err()
                        {
                            gone = true;
                            exec.cancel(libc::SIGTERM);
                        }
                    }
                    Ok(None) => break,
                    Ok(Some((stream, bytes))) => {
                        let index = usize::from(stream == Stream::Stderr);
                        let tail = &mut tails[index];
                        tail.extend_from_slice(&bytes);
                        let whole = trim_partial_end(tail).len();
                        // Bytes that cannot be UTF-8 whatever follows go as base64 now.
                        let ready: Vec<u8> = if whole == 0 && tail.len() < 4 {
                            continue;
                        } else if whole == 0 {
                            std::mem::take(tail)
                        } else {
                            tail.drain(..whole).collect()
                        };
                        let mut event = Map::new();
                        event.insert("id".into(), id.clone());
                        event.insert("event".into(), Value::from(stream.name()));
                        text_or_b64("data", &ready, &mut event);
                        event.insert("offset".into(), Value::from(offsets[index]));
                        offsets[index] += ready.len() as u64;
                        // The caller went away: the command is stopped, once, and its output
                        // drained (so it never waits on a reader that is gone).
                        if !gone && events.send(Value::Object(event)).await.is_err() {
                            gone = true;
                            exec.cancel(libc::SIGTERM);
                        }
                    }
                }
            }
            for (index, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
                if !tails[index].is_empty() {
                    let mut event = Map::new();
                    event.insert("id".into(), id.clone());
                    event.insert("event".into(), Value::from(stream.name()));
                    text_or_b64("data", &tails[index], &mut event);
                    event.insert("offset".into(), Value::from(offsets[index]));
                    let _ = events.send(Value::Object(event)).await;
                }
            }
        }
        exec.wait(None).await;
        let mut end = match exec.envelope(false) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        end.insert("id".into(), id.clone());
        end.insert("event".into(), Value::from("end"));
        Ok(Value::Object(end))
    }

    async fn stats(&self) -> Value {
        let sessions: Vec<Arc<Session>> = self.all_sessions();
        // Zombies, once per container.
        let mut containers: Vec<(String, Arc<Session>)> = Vec::new();
        for session in &sessions {
            if !containers
                .iter()
                .any(|(id, _)| *id == session.prepared.container.id)
            {
                containers.push((session.prepared.container.id.clone(), session.clone()));
            }
        }
        const COUNT_ZOMBIES: &str = r#"n=0; for f in /proc/[0-9]*/stat; do read -r line < "$f" 2>/dev/null || continue; case ${line##*) } in Z*) n=$((n+1));; esac; done; echo $n"#;
        let counts = futures_util::future::join_all(
            containers
                .iter()
                .map(|(_, session)| self.helper(session, &["/bin/sh", "-c", COUNT_ZOMBIES])),
        )
        .await;
        let zombies: HashMap<&str, Value> = containers
            .iter()
            .zip(counts)
            .map(|((id, _), count)| {
                let count = count
                    .and_then(|out| String::from_utf8_lossy(&out).trim().parse::<u64>().ok())
                    .map_or(Value::Null, Value::from);
                (id.as_str(), count)
            })
            .collect();
        json!({
            "sessions": sessions.len(),
            "running_execs": self.running.load(Ordering::SeqCst),
            "limits": {
                "max_sessions": self.limits.max_sessions,
                "max_execs": self.limits.max_execs,
                "idle_timeout_s": self.limits.idle_timeout.as_secs(),
                "max_timeout_ms": self.limits.max_timeout.as_millis() as u64,
            },
            "uptime_ms": self.started.elapsed().as_millis() as u64,
            "per_session": sessions.iter().map(|session| json!({
                "session_id": session.id,
                "container_id": session.prepared.container.id,
                "running_execs": session.running().iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
                "container_zombies": zombies.get(session.prepared.container.id.as_str()).cloned().unwrap_or(Value::Null),
            })).collect::<Vec<_>>(),
        })
    }

    /// Drops idle sessions and old results; called now and then.
    pub async fn sweep(&self) {
        let idle: Vec<Arc<Session>> = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|session| session.idle())
            .cloned()
            .collect();
        for session in idle {
            self.log
                .info(&format!("session {} idle: dropped", session.id));
            self.destroy(&session).await;
        }
        let sessions: Vec<Arc<Session>> = self.all_sessions();
        for session in sessions {
            let mut dropped = Vec::new();
            {
                let mut execs = session.execs.lock().unwrap_or_else(|e| e.into_inner());
                let finished = execs.iter().filter(|e| e.ending().is_some()).count();
                let mut surplus = finished.saturating_sub(KEEP_PER_SESSION);
                execs.retain(|exec| {
                    let old = exec
                        .finished_at()
                        .is_some_and(|at| at.elapsed() > KEEP_RESULTS);
                    if surplus > 0 && old {
                        surplus -= 1;
                        dropped.push(exec.id.clone());
                        false
                    } else {
                        true
                    }
                });
            }
            let mut execs = self.execs.lock().unwrap_or_else(|e| e.into_inner());
            for id in dropped {
                execs.remove(&id);
            }
        }
    }

    /// Destroys every session (their commands killed, their state files removed).
    pub async fn destroy_all(&self) {
        let sessions: Vec<Arc<Session>> = self.all_sessions();
        for session in sessions {
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

/// What a handler produced: data for an `ok` answer, or a whole final line (a stream's end).
enum Reply {
    Data(Value),
    Event(Value),
}

/// States and byte counts of an answer, for the log (never output or env).
fn summary(data: &Value) -> String {
    let mut parts = String::new();
    for key in [
        "session_id",
        "exec_id",
        "state",
        "exit_code",
        "stdout_bytes",
        "stderr_bytes",
    ] {
        if let Some(value) = data.get(key).filter(|value| !value.is_null()) {
            parts.push_str(&format!(" {key}={value}"));
        }
    }
    parts
}
