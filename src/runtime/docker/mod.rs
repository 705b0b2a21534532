//! The Docker Engine API runtime, on bollard.
//!
//! The endpoint is chosen by the docker CLI's rules ([`endpoint`]: `DOCKER_HOST`, contexts, TLS,
//! ssh, podman's socket); every request travels over the connections one `Link` keeps
//! (`dial.rs`): one kept alive for all requests, and a spare dialed beside it for the requests
//! after an exec start has taken one over. Connecting dials them, so an unreachable daemon (no
//! socket, a refused port, a certificate refused) is reported by name before any other work;
//! over ssh, ssh's own words come with the first request that fails. There is no ping: the API
//! version is the `Api-Version` header of the daemon's answers, capped at bollard's own version
//! (the docker CLI's rule; bollard 0.21 sends most paths unversioned, #736); it decides
//! `ConsoleSize` and the TTY start's path (asked with a ping only if nothing has been answered
//! yet).
//!
//! An exec's exit status is read with `GET /exec/{id}/json` once its output stream has ended
//! (one request as a rule: see `ExitLook`); the daemon reports a process killed by signal N as
//! 128+N. A variable removed from the container's own environment (a `null` in `remoteEnv`) is
//! removed by starting the command through `env -u NAME --`.
//!
//! TTY execs are started by dcx itself (hyper, HTTP/1.1 upgrade, on the link) instead of bollard's
//! `start_exec`: bollard's output decoder takes TTY output whose chunk starts with a byte 0x00–0x02
//! for a multiplexing header and mangles it. The raw stream is passed on as is.
//!
//! Terminal size before the first instruction: API ≥ 1.42 takes it in exec-create (`ConsoleSize`);
//! older daemons ignore that and a resize after start comes too late for a quick command, so there
//! the command is started through
//! `/bin/sh -c 'stty rows R cols C 2>/dev/null; …; exec "$@"' sh CMD…` (the container needs a
//! `/bin/sh`, as the reference's own shell server does; a missing command still fails with the
//! engine's own message and 126).
//!
//! Signals: the Engine API cannot signal an exec. On a local daemon the exec's `Pid` (a host pid)
//! is checked to belong to the container (its `/proc/<pid>/cgroup` names the container id), its pid
//! inside the container is read from the `NSpid:` line of `/proc/<pid>/status`, and a second exec
//! as root runs `kill -s SIG <pid>` (`-<pid>` for its process group, which can still be signalled
//! once the process has exited). When that exec cannot start (a paused container), the signal goes
//! from this host to the host pid (its group): a frozen process keeps it pending until it is
//! thawed. Elsewhere (a remote daemon, another pid namespace) the signal cannot be delivered and
//! [`SignalError`] says why.
//!
//! Files go through the archive endpoint (`files.rs`; several stats at once in `batch.rs`);
//! `dcx top` reads the host's `/proc` on a local daemon (zombies included) and the top API
//! elsewhere; `dcx logs` is the logs API.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ContainerSummaryStateEnum;
use bollard::models::ExecConfig;
use bollard::query_parameters::{ListContainersOptions, ResizeExecOptions};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::io::ReaderStream;

use super::ExitStatus;
use super::{
    ArchiveStream, Chunk, Container, ExecSpec, ExitWatch, LogOptions, Owner, PathStat, Process,
    ProcessInfo, Runtime, RuntimeError, Session, SignalError, SignalTarget, TermSize, WorkdirGuard,
    io_reason, plausible_container_ref, without_os_error,
};
use crate::log::Log;

mod ahead;
mod batch;
mod dial;
pub mod endpoint;
mod files;

use dial::{Link, SshErrors};
use endpoint::Transport;
pub use endpoint::{DockerEnv, Endpoint};
/// Seconds bollard waits for a response (not for an exec's output, which may take any time).
const REQUEST_TIMEOUT: u64 = 120;

/// The first API version whose exec-create honours `ConsoleSize`.
const CONSOLE_SIZE_API: (usize, usize) = (1, 42);

/// A connection to one Docker daemon.
pub struct Docker {
    client: bollard::Docker,
    link: std::sync::Arc<Link>,
    endpoint: String,
    /// The requests a forecast sent ahead ([`Runtime::foresee`]), until the run takes them.
    ahead: std::sync::Mutex<Option<ahead::Ahead>>,
}

impl Docker {
    /// Connects to the daemon the docker CLI's rules pick from `env` (see [`endpoint`]) and
    /// negotiates the API version. `docker_path` is `--docker-path`: when it names podman,
    /// podman's socket is used.
    pub async fn connect(
        log: &Log,
        env: &DockerEnv,
        docker_path: Option<&str>,
    ) -> Result<Self, RuntimeError> {
        let podman = docker_path.is_some_and(is_podman);
        let endpoint = endpoint::select(env, podman)?;
        let shown = endpoint.shown.clone();
        log.debug(&format!(
            "Docker endpoint: {shown} (from {})",
            endpoint.source
        ));
        let ssh_errors = SshErrors::default();
        let unreachable = |reason: String| {
            if reason.contains("ermission denied") {
                RuntimeError::NoPermission {
                    endpoint: shown.clone(),
                }
            } else {
                RuntimeError::Unreachable {
                    endpoint: shown.clone(),
                    reason,
                }
            }
        };
        let opened = Link::open(&endpoint, &ssh_errors);
        let link = match tokio::time::timeout(Duration::from_secs(REQUEST_TIMEOUT), opened).await {
            Ok(Ok(link)) => link,
            Ok(Err(err)) => {
                return Err(unreachable(match &endpoint.transport {
                    Transport::Unix(path) if err.kind() == std::io::ErrorKind::NotFound => {
                        format!("no socket at {path}")
                    }
                    _ => io_reason(&err),
                }));
            }
            Err(_) => return Err(unreachable("no connection".to_owned())),
        };
        let client = dial::client(&link, REQUEST_TIMEOUT, bollard::API_DEFAULT_VERSION)
            .map_err(|err| unreachable(reason(&err)))?;
        log.debug(&format!("Docker Engine at {shown}: connected"));
        Ok(Self {
            client,
            link,
            endpoint: shown,
            ahead: std::sync::Mutex::new(None),
        })
    }

    /// The API version to speak: the one the daemon's answers name, capped at bollard's own
    /// (the docker CLI's rule); a daemon that has not answered yet is asked with a ping.
    async fn api_version(&self) -> (usize, usize) {
        let ours = bollard::API_DEFAULT_VERSION;
        let ours = (ours.major_version, ours.minor_version);
        if self.link.api_version().is_none() {
            let _ = self.client.ping().await;
        }
        // A daemon that names none: the oldest this code path knows (no ConsoleSize).
        self.link.api_version().unwrap_or((1, 41)).min(ours)
    }

    async fn api_at_least(&self, wanted: (usize, usize)) -> bool {
        self.api_version().await >= wanted
    }

    /// Starts a TTY exec on a connection of our own and returns its raw byte stream halves.
    async fn start_raw(
        &self,
        exec_id: &str,
    ) -> Result<
        (
            impl AsyncRead + Send + 'static,
            impl AsyncWrite + Send + 'static,
        ),
        RuntimeError,
    > {
        let unreachable = |reason: String| RuntimeError::Unreachable {
            endpoint: self.endpoint.clone(),
            reason,
        };
        let (major, minor) = self.api_version().await;
        let request = http::Request::post(format!("/v{major}.{minor}/exec/{exec_id}/start"))
            .header(http::header::HOST, "docker")
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::CONNECTION, "Upgrade")
            .header(http::header::UPGRADE, "tcp")
            .body(dial::Body::Left(Full::new(Bytes::from_static(
                br#"{"Detach":false,"Tty":true}"#,
            ))))
            .map_err(|err| unreachable(err.to_string()))?;
        let response = self
            .link
            .send(request)
            .await
            .map_err(|err| unreachable(io_reason(&err)))?;
        let status = response.status();
        if status != http::StatusCode::SWITCHING_PROTOCOLS && !status.is_success() {
            let body = response
                .into_body()
                .collect()
                .await
                .map(|body| body.to_bytes())
                .unwrap_or_default();
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|json| json["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
            return Err(RuntimeError::Engine {
                endpoint: self.endpoint.clone(),
                message,
            });
        }
        let upgraded = hyper::upgrade::on(response)
            .await
            .map_err(|err| unreachable(err.to_string()))?;
        Ok(tokio::io::split(TokioIo::new(upgraded)))
    }

    fn engine_error(&self, err: BollardError) -> RuntimeError {
        engine_error(&self.endpoint, err)
    }
}

/// A daemon's refusal, or a failure to reach it, as the user reads it.
fn engine_error(endpoint: &str, err: BollardError) -> RuntimeError {
    match err {
        BollardError::DockerResponseServerError { message, .. } => RuntimeError::Engine {
            endpoint: endpoint.to_owned(),
            message,
        },
        other => RuntimeError::Unreachable {
            endpoint: endpoint.to_owned(),
            reason: reason(&other),
        },
    }
}

/// The OCI runtime's own failure to enter the working directory, which the daemon sends as the
/// exec's first output (exit 126) instead of an API error: its reason, if this is one.
fn chdir_failure(first_output: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(first_output).ok()?;
    if !text.starts_with("OCI runtime exec failed") || !text.contains("chdir to cwd") {
        return None;
    }
    let tail = text.rsplit_once("failed: ")?.1.trim_end();
    Some(tail.trim_end_matches(": unknown").to_owned())
}

fn is_podman(docker_path: &str) -> bool {
    Path::new(docker_path)
        .file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with("podman"))
}

/// The argv that starts `argv` without the variables in `unset`: the daemon always passes the
/// container's own environment, so removing one of its variables takes `env -u`.
fn unset_argv(argv: &[String], unset: &[String]) -> Vec<String> {
    if unset.is_empty() {
        return argv.to_vec();
    }
    let mut wrapped = vec!["env".to_owned()];
    for name in unset {
        wrapped.push("-u".to_owned());
        wrapped.push(name.clone());
    }
    wrapped.push("--".to_owned());
    wrapped.extend(argv.iter().cloned());
    wrapped
}

/// A short reason for a transport failure: the innermost cause, which names the real problem
/// (`No such file or directory`, `Connection refused`).
fn reason(err: &BollardError) -> String {
    if let BollardError::SocketNotFoundError(path) = err {
        return format!("no socket at {path}");
    }
    let mut source: &dyn std::error::Error = err;
    while let Some(next) = source.source() {
        source = next;
    }
    without_os_error(source.to_string())
}

#[async_trait]
impl Runtime for Docker {
    async fn inspect(&self, id: &str) -> Result<Container, RuntimeError> {
        // `/name`, as `docker inspect` prints names, names the same container.
        let id = id.strip_prefix('/').unwrap_or(id);
        if !plausible_container_ref(id) {
            return Err(RuntimeError::NoSuchContainer(id.into()));
        }
        let info = self
            .client
            .inspect_container(id, None)
            .await
            .map_err(|err| match err {
                // Docker: "Multiple IDs found with provided prefix"; podman: "more than one".
                BollardError::DockerResponseServerError { ref message, .. }
                    if message.to_lowercase().contains("multiple")
                        || message.contains("more than one") =>
                {
                    RuntimeError::AmbiguousContainer {
                        prefix: id.into(),
                        matches: Vec::new(),
                    }
                }
                BollardError::DockerResponseServerError {
                    status_code: 404, ..
                } => RuntimeError::NoSuchContainer(id.into()),
                other => self.engine_error(other),
            })?;
        let state = info.state.unwrap_or_default();
        let config = info.config.unwrap_or_default();
        // Where mounts appear in it: volumes and binds, and tmpfs mounts (`--tmpfs`).
        let mut mounts: Vec<super::Mount> = info
            .mounts
            .unwrap_or_default()
            .into_iter()
            .filter_map(|mount| {
                let destination = mount.destination?;
                Some(super::Mount {
                    destination,
                    bind_source: None,
                })
            })
            .collect();
        mounts.extend(
            info.host_config
                .and_then(|host| host.tmpfs)
                .unwrap_or_default()
                .into_keys()
                .map(|destination| super::Mount {
                    destination,
                    bind_source: None,
                }),
        );
        Ok(Container {
            id: info.id.unwrap_or_default(),
            name: info
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            running: state.running.unwrap_or(false),
            paused: state.paused.unwrap_or(false),
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            user: config.user.filter(|user| !user.is_empty()),
            image: config.image.filter(|image| !image.is_empty()),
            env: config.env.unwrap_or_default(),
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            started_at: state.started_at.unwrap_or_default(),
            rootfs: None,
            mounts,
            init_pid: state.pid.filter(|pid| *pid > 0),
            init_start: None,
        })
    }

    async fn find_by_labels(&self, labels: &[String]) -> Result<Option<Container>, RuntimeError> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_owned(), labels.to_vec())])),
            ..Default::default()
        };
        let listed = self
            .client
            .list_containers(Some(options))
            .await
            .map_err(|err| self.engine_error(err))?;
        // The daemon lists the newest first.
        let newest = listed
            .into_iter()
            .find(|summary| summary.state != Some(ContainerSummaryStateEnum::REMOVING));
        match newest.and_then(|summary| summary.id) {
            Some(id) => self.inspect(&id).await.map(Some),
            None => Ok(None),
        }
    }

    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn name(&self) -> &'static str {
        "docker"
    }

    async fn running(&self) -> Result<Vec<super::Listed>, RuntimeError> {
        let listed = self
            .client
            .list_containers(Some(ListContainersOptions::default()))
            .await
            .map_err(|err| self.engine_error(err))?;
        Ok(listed
            .into_iter()
            .filter_map(|summary| {
                let name = summary
                    .names
                    .unwrap_or_default()
                    .into_iter()
                    .next()
                    .map(|name| name.trim_start_matches('/').to_owned())
                    .unwrap_or_default();
                Some(super::Listed {
                    id: summary.id?,
                    name,
                    labels: summary.labels.unwrap_or_default().into_iter().collect(),
                })
            })
            .collect())
    }

    /// On a local daemon, the host's `/proc` (zombies included, which the top API's cgroup
    /// listing drops); elsewhere the top API.
    async fn top(&self, container: &Container) -> Result<Vec<ProcessInfo>, RuntimeError> {
        if let Some(found) = container
            .init_pid
            .filter(|_| container.running)
            .and_then(|init| {
                std::fs::read_to_string(format!("/proc/{init}/cgroup"))
                    .ok()
                    .filter(|cgroup| cgroup.contains(&container.id))
                    .and_then(|_| super::procfs::processes_like(init))
            })
        {
            return Ok(found);
        }
        let options = bollard::query_parameters::TopOptions {
            ps_args: "-eo user,pid,stat,args".into(),
        };
        let top = self
            .client
            .top_processes(&container.id, Some(options))
            .await
            .map_err(|err| self.engine_error(err))?;
        let titles = top.titles.unwrap_or_default();
        let column = |name: &str| titles.iter().position(|title| title == name);
        let (user, pid, stat, args) = (
            column("USER"),
            column("PID"),
            column("STAT"),
            column("COMMAND").or_else(|| column("CMD")),
        );
        Ok(top
            .processes
            .unwrap_or_default()
            .into_iter()
            .map(|row| {
                let field = |index: Option<usize>| {
                    index
                        .and_then(|index| row.get(index).cloned())
                        .unwrap_or_default()
                };
                ProcessInfo {
                    user: field(user),
                    pid: field(pid).parse().unwrap_or(0),
                    state: field(stat),
                    command: field(args),
                }
            })
            .collect())
    }

    fn logs(
        &self,
        container: &Container,
        options: &LogOptions,
    ) -> Result<super::OutputStream, RuntimeError> {
        let query = bollard::query_parameters::LogsOptions {
            follow: options.follow,
            stdout: true,
            stderr: true,
            since: options
                .since
                .map_or(0, |since| i32::try_from(since).unwrap_or(i32::MAX)),
            until: options
                .until
                .map_or(0, |until| i32::try_from(until).unwrap_or(i32::MAX)),
            timestamps: options.timestamps,
            tail: options
                .tail
                .map_or_else(|| "all".to_owned(), |tail| tail.to_string()),
        };
        let endpoint = self.endpoint.clone();
        let stream = self
            .client
            .logs(&container.id, Some(query))
            .filter_map(move |item| {
                std::future::ready(match item {
                    Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                        Some(Ok(Chunk::Stdout(message)))
                    }
                    Ok(LogOutput::StdErr { message }) => Some(Ok(Chunk::Stderr(message))),
                    Ok(LogOutput::StdIn { .. }) => None,
                    Err(err) => Some(Err(RuntimeError::Unreachable {
                        endpoint: endpoint.clone(),
                        reason: reason(&err),
                    })),
                })
            });
        Ok(Box::pin(stream))
    }

    async fn stat_path(&self, container: &Container, path: &str) -> Result<PathStat, RuntimeError> {
        self.stat_path(container, path).await
    }

    async fn stat_paths(
        &self,
        container: &Container,
        paths: &[String],
    ) -> Vec<Result<PathStat, RuntimeError>> {
        self.stat_paths(container, paths).await
    }

    fn calls_at_once(&self) -> usize {
        match self.link.endpoint().transport {
            // Each connection is an ssh process: the calls share one.
            Transport::Ssh(_) => 1,
            _ => 8,
        }
    }

    fn foresees(&self) -> bool {
        !matches!(self.link.endpoint().transport, Transport::Unix(_))
    }

    fn foresee(&self, forecast: super::Forecast) {
        self.send_ahead(forecast);
    }

    fn host_root(&self, container: &Container) -> Option<std::path::PathBuf> {
        if !matches!(self.link.endpoint().transport, Transport::Unix(_)) || !container.running {
            return None;
        }
        super::procfs::container_root(container.init_pid?, &container.id)
    }

    async fn read_archive(
        &self,
        container: &Container,
        path: &str,
    ) -> Result<ArchiveStream, RuntimeError> {
        Ok(Docker::read_archive(self, container, path))
    }

    async fn write_archive(
        &self,
        container: &Container,
        dir: &str,
        tar: ArchiveStream,
        owner: Option<Owner>,
    ) -> Result<(), RuntimeError> {
        self.write_archive(container, dir, tar, owner).await
    }

    async fn list_dir(
        &self,
        container: &Container,
        path: &str,
        limit: usize,
    ) -> Result<Option<Vec<PathStat>>, RuntimeError> {
        self.list_dir(container, path, limit).await
    }

    async fn rename_path(
        &self,
        container: &Container,
        from: &str,
        to: &str,
    ) -> Result<(), RuntimeError> {
        self.rename_path(container, from, to).await
    }

    fn start_hint(&self, container: &Container) -> String {
        format!("Start it with `docker start {}`.", container.name)
    }

    async fn architecture(&self, container: &Container) -> Option<String> {
        // The image the container runs (by id: its tag may have moved since).
        let image = self
            .client
            .inspect_container(&container.id, None)
            .await
            .ok()?
            .image?;
        self.client.inspect_image(&image).await.ok()?.architecture
    }

    async fn start(&self, container: &Container, spec: &ExecSpec) -> Result<Session, RuntimeError> {
        let size = spec.size.filter(|_| spec.tty);
        let console_size_honoured = size.is_some() && self.api_at_least(CONSOLE_SIZE_API).await;
        let config = ahead::exec_config(spec, console_size_honoured);
        let ahead = self.exec_ahead(container, &config).await;
        // The start below uses its connection up: keep another for the requests after it.
        self.link.keep_two();
        let exec_id = match ahead {
            Some(id) => id,
            None => {
                self.client
                    .create_exec(&container.id, config)
                    .await
                    .map_err(|err| match err {
                        BollardError::DockerResponseServerError {
                            status_code: 409, ..
                        } => RuntimeError::NotRunning(container.name.clone()),
                        other => self.engine_error(other),
                    })?
                    .id
            }
        };
        let process = std::sync::Arc::new(DockerProcess {
            client: self.client.clone(),
            endpoint: self.endpoint.clone(),
            container_id: container.id.clone(),
            exec_id: exec_id.clone(),
            pid: std::sync::Mutex::new(None),
            exit: ExitLook::default(),
        });
        if spec.tty {
            let (read, write) = self.start_raw(&exec_id).await?;
            let endpoint = self.endpoint.clone();
            let mut guard = WorkdirGuard::new(spec.cwd.as_deref(), chdir_failure);
            let output = ReaderStream::with_capacity(read, 64 * 1024).map(move |item| {
                let bytes = item.map_err(|err| RuntimeError::Unreachable {
                    endpoint: endpoint.clone(),
                    reason: io_reason(&err),
                })?;
                guard.check(&bytes)?;
                Ok(Chunk::Stdout(bytes))
            });
            if let Some(size) = size {
                // Keeps the daemon's record of the size; the process already has it.
                let _ = process.resize(size).await;
            }
            return Ok(Session {
                output: Box::pin(output),
                input: Box::pin(write),
                process,
            });
        }
        let options = StartExecOptions {
            detach: false,
            tty: spec.tty,
            output_capacity: Some(64 * 1024),
        };
        let started = self
            .client
            .start_exec(&exec_id, Some(options))
            .await
            .map_err(|err| self.engine_error(err))?;
        let StartExecResults::Attached { output, input } = started else {
            return Err(RuntimeError::Engine {
                endpoint: self.endpoint.clone(),
                message: "the daemon started the exec detached".to_owned(),
            });
        };
        let endpoint = self.endpoint.clone();
        let mut guard = WorkdirGuard::new(spec.cwd.as_deref(), chdir_failure);
        let output = output.filter_map(move |item| {
            let chunk = match item {
                Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                    Some(guard.check(&message).map(|()| Chunk::Stdout(message)))
                }
                Ok(LogOutput::StdErr { message }) => {
                    guard.started();
                    Some(Ok(Chunk::Stderr(message)))
                }
                Ok(LogOutput::StdIn { .. }) => None,
                Err(err) => Some(Err(RuntimeError::Unreachable {
                    endpoint: endpoint.clone(),
                    reason: reason(&err),
                })),
            };
            std::future::ready(chunk)
        });
        Ok(Session {
            output: Box::pin(output),
            input,
            process,
        })
    }
}

struct DockerProcess {
    client: bollard::Docker,
    endpoint: String,
    container_id: String,
    exec_id: String,
    /// The process's pid in the container, once a signal has needed it: its group can still be
    /// signalled after it has exited.
    pid: std::sync::Mutex<Option<String>>,
    /// How the exec ended, as its one watcher sees it.
    exit: ExitLook,
}

/// When the exec's state is first looked at while its output is open: a command that ends
/// sooner (most do) is never looked at before its output ends.
const FIRST_LOOK: Duration = Duration::from_millis(100);
/// The longest pause between looks while the output is open.
const SLOWEST_LOOK: Duration = Duration::from_millis(250);
/// The first pause, and the longest, between looks after the output has ended while the daemon
/// still reports the exec running (a moment late, or a process that closed its output early).
const LATE_LOOK: Duration = Duration::from_millis(5);
const LATE_LOOK_MAX: Duration = Duration::from_millis(100);

/// What the exec's one watcher task has seen: `None` while it runs, then its exit code (as the
/// daemon reports it) or why it could not be read.
type Seen = Option<Result<Option<i64>, String>>;

/// The exec's watcher: one task, the only one that inspects the exec for its state, so that
/// looks never overlap (each would take a connection of its own) and the first exit seen is the
/// answer (the daemon replaces the code with 126 when the attach connection is closed after
/// the process has ended: a run that stopped reading a background child's output). While the
/// output is open it looks rarely ([`FIRST_LOOK`], then slower); once told the output has ended
/// it looks at once, and again after short pauses while the daemon still says running.
#[derive(Default)]
struct ExitLook {
    seen: std::sync::OnceLock<tokio::sync::watch::Sender<Seen>>,
    ended: std::sync::Arc<tokio::sync::Notify>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ExitLook {
    /// The watcher's findings, starting it on first use.
    fn watch(&self, client: &bollard::Docker, exec_id: &str) -> tokio::sync::watch::Receiver<Seen> {
        let sender = self
            .seen
            .get_or_init(|| tokio::sync::watch::channel(None).0);
        let mut task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if task.is_none() {
            *task = Some(tokio::spawn(Self::look(
                client.clone(),
                exec_id.to_owned(),
                sender.clone(),
                self.ended.clone(),
            )));
        }
        sender.subscribe()
    }

    async fn look(
        client: bollard::Docker,
        exec_id: String,
        seen: tokio::sync::watch::Sender<Seen>,
        ended: std::sync::Arc<tokio::sync::Notify>,
    ) {
        let mut output_ended = false;
        let mut pause = FIRST_LOOK;
        loop {
            if !output_ended {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = ended.notified() => {
                        output_ended = true;
                        pause = LATE_LOOK;
                    }
                }
            }
            match client.inspect_exec(&exec_id).await {
                Ok(info) if info.running != Some(true) => {
                    seen.send_replace(Some(Ok(info.exit_code)));
                    return;
                }
                Ok(_) => {}
                Err(err) if output_ended => {
                    seen.send_replace(Some(Err(reason(&err))));
                    return;
                }
                // No answer while the output is open: this cannot tell; the output's end
                // still can.
                Err(_) => {
                    ended.notified().await;
                    output_ended = true;
                    pause = LATE_LOOK;
                    continue;
                }
            }
            if output_ended {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LATE_LOOK_MAX);
            } else {
                pause = (pause * 2).min(SLOWEST_LOOK);
            }
        }
    }
}

impl Drop for ExitLook {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

impl DockerProcess {
    /// The process's pid inside the container, when its host pid is visible and belongs to the
    /// container (see the module docs).
    fn container_pid(&self, host_pid: i64) -> Result<String, String> {
        let cgroup = std::fs::read_to_string(format!("/proc/{host_pid}/cgroup")).map_err(|_| {
            format!("its host pid {host_pid} is not visible here (a remote engine, or another pid namespace)")
        })?;
        if !cgroup.contains(&self.container_id) {
            return Err(format!(
                "host pid {host_pid} does not belong to the container here (a remote engine, or another pid namespace)"
            ));
        }
        let status = std::fs::read_to_string(format!("/proc/{host_pid}/status"))
            .map_err(|err| format!("cannot read /proc/{host_pid}/status: {err}"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("NSpid:"))
            .and_then(|pids| pids.split_whitespace().last())
            .map(str::to_owned)
            .ok_or_else(|| format!("/proc/{host_pid}/status has no NSpid line"))
    }

    async fn run_kill(&self, name: &str, target: &str) -> Result<(), String> {
        let config = ExecConfig {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            user: Some("0".into()),
            cmd: Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                // A process group's negative id needs `--` for dash's kill, which busybox's
                // refuses (and busybox needs none): ask which with signal 0, which delivers
                // nothing, then send the signal once.
                r#"case "$1" in -*) if kill -s 0 -- "$1" 2>/dev/null; then kill -s "$0" -- "$1"; else kill -s "$0" "$1"; fi 2>/dev/null; exit 0;; *) exec kill -s "$0" "$1";; esac"#.into(),
                name.into(),
                target.into(),
            ]),
            ..Default::default()
        };
        let created = self
            .client
            .create_exec(&self.container_id, config)
            .await
            .map_err(|err| reason(&err))?;
        let started = self
            .client
            .start_exec(&created.id, None::<StartExecOptions>)
            .await
            .map_err(|err| reason(&err))?;
        // The kill is done when its output ends (podman reports an exec running long after
        // its process is gone, so its `Running` flag is not waited on); bounded all the same.
        let mut said = Vec::new();
        if let StartExecResults::Attached { mut output, .. } = started {
            let drained = tokio::time::timeout(Duration::from_secs(5), async {
                while let Some(Ok(piece)) = output.next().await {
                    said.extend_from_slice(&piece.into_bytes());
                }
            })
            .await;
            if drained.is_err() {
                return Err(format!(
                    "`kill -s {name} {target}` in the container did not finish within 5 s"
                ));
            }
        }
        let info = self
            .client
            .inspect_exec(&created.id)
            .await
            .map_err(|err| reason(&err))?;
        match (info.running, info.exit_code) {
            (_, Some(0)) | (Some(true), _) => Ok(()),
            (_, code) => Err(format!(
                "`kill -s {name} {target}` in the container exited with {code:?}: {}",
                String::from_utf8_lossy(&said).trim()
            )),
        }
    }
}

#[async_trait]
impl Process for DockerProcess {
    /// The output has ended: the watcher looks at once (one inspect, as a rule), and again
    /// after short pauses while the daemon still reports the exec running (its record can lag
    /// the stream's end by a moment; a process that closed its output early runs on).
    async fn wait(&self) -> Result<ExitStatus, RuntimeError> {
        let mut seen = self.exit.watch(&self.client, &self.exec_id);
        self.exit.ended.notify_one();
        let found = seen
            .wait_for(Option::is_some)
            .await
            .map(|found| found.clone())
            .map_err(|err| RuntimeError::Engine {
                endpoint: self.endpoint.clone(),
                message: err.to_string(),
            })?;
        match found {
            Some(Ok(code)) => Ok(ExitStatus::from_code(code)),
            Some(Err(message)) => Err(RuntimeError::Engine {
                endpoint: self.endpoint.clone(),
                message,
            }),
            None => Err(RuntimeError::Engine {
                endpoint: self.endpoint.clone(),
                message: "the exec's state was not read".to_owned(),
            }),
        }
    }

    async fn resize(&self, size: TermSize) -> Result<(), RuntimeError> {
        self.client
            .resize_exec(
                &self.exec_id,
                ResizeExecOptions {
                    h: i32::from(size.rows),
                    w: i32::from(size.cols),
                },
            )
            .await
            .map_err(|err| RuntimeError::Engine {
                endpoint: self.endpoint.clone(),
                message: reason(&err),
            })
    }

    /// The watcher's first exit seen (see [`ExitLook`]): a command that ends with its output
    /// costs no look before that.
    fn exited(&self) -> ExitWatch {
        let mut seen = self.exit.watch(&self.client, &self.exec_id);
        Box::pin(async move {
            if seen
                .wait_for(|found| matches!(found, Some(Ok(_))))
                .await
                .is_err()
            {
                std::future::pending::<()>().await;
            }
        })
    }

    async fn signal(&self, signal: i32, target: SignalTarget) -> Result<(), SignalError> {
        let fail = |reason: String| SignalError { signal, reason };
        let name = super::signal_name(signal)
            .ok_or_else(|| fail(format!("signal {signal} has no name")))?;
        // The daemon can report a running exec without its pid for a moment (seen right after
        // the attach connection closes): ask again, briefly.
        let mut host_pid = None;
        for _ in 0..50 {
            let info = self
                .client
                .inspect_exec(&self.exec_id)
                .await
                .map_err(|err| fail(reason(&err)))?;
            if info.running != Some(true) {
                // Gone: only the group it led may still have members to reach.
                let known = self.pid.lock().unwrap_or_else(|e| e.into_inner()).clone();
                return match (target, known) {
                    (SignalTarget::Group, Some(pid)) => {
                        self.run_kill(name, &format!("-{pid}")).await.map_err(fail)
                    }
                    _ => Ok(()),
                };
            }
            host_pid = info.pid.filter(|pid| *pid > 0);
            if host_pid.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let host_pid =
            host_pid.ok_or_else(|| fail("the engine did not report the process id".into()))?;
        let pid = self.container_pid(host_pid).map_err(fail)?;
        *self.pid.lock().unwrap_or_else(|e| e.into_inner()) = Some(pid.clone());
        let in_container = match target {
            SignalTarget::Process => pid,
            SignalTarget::Group => format!("-{pid}"),
        };
        match self.run_kill(name, &in_container).await {
            Ok(()) => Ok(()),
            // No exec can start in a paused container: its pid is this host's (checked above),
            // so the signal goes from here. A frozen process keeps it pending until it is
            // thawed, then takes it (SIGKILL ends it at once then).
            Err(why) => host_kill(host_pid, signal, target)
                .map_err(|host| fail(format!("{why}; from this host: {host}"))),
        }
    }
}

/// Sends `signal` from this host to the process `host_pid` (this host's pid of an exec, which
/// leads its own group) or to its group.
fn host_kill(host_pid: i64, signal: i32, target: SignalTarget) -> Result<(), String> {
    let sig = rustix::process::Signal::from_named_raw(signal)
        .ok_or_else(|| format!("signal {signal} is not known"))?;
    let pid = i32::try_from(host_pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| format!("{host_pid} is not a pid"))?;
    match target {
        SignalTarget::Process => rustix::process::kill_process(pid, sig),
        SignalTarget::Group => rustix::process::kill_process_group(pid, sig),
    }
    .map_err(|err| format!("kill({host_pid}): {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_working_directory_is_recognised() {
        let runc = b"OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd (\"/nope\") set in config.json failed: no such file or directory: unknown\r\n";
        assert_eq!(
            chdir_failure(runc).as_deref(),
            Some("no such file or directory")
        );
        assert_eq!(
            chdir_failure(b"OCI runtime exec failed: exec: \"x\": not found"),
            None
        );
        assert_eq!(chdir_failure(b"chdir to cwd"), None);
    }

    #[test]
    fn a_podman_docker_path_selects_podman() {
        assert!(is_podman("podman"));
        assert!(is_podman("/usr/bin/podman"));
        assert!(is_podman("/opt/podman-remote"));
        assert!(!is_podman("docker"));
        assert!(!is_podman("/usr/local/bin/docker"));
    }

    #[test]
    fn only_plausible_names_reach_the_engine() {
        assert!(plausible_container_ref("dcx-it_1.a"));
        assert!(plausible_container_ref("0123abcdef"));
        assert!(!plausible_container_ref(""));
        assert!(!plausible_container_ref("../version"));
        assert!(!plausible_container_ref("a/b"));
        assert!(!plausible_container_ref("a?b"));
        assert!(!plausible_container_ref("-a"));
    }
}
