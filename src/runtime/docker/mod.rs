//! The Docker Engine API runtime, on bollard.
//!
//! The endpoint is chosen by the docker CLI's rules ([`endpoint`]: `DOCKER_HOST`, contexts, TLS,
//! ssh, podman's socket); connections are dialed for every kind of it in `dial.rs`. On a unix
//! socket or plain TCP, the API version comes from a `GET /_ping` on a connection of its own, as
//! the docker CLI gets it: its `Api-Version` header, capped at bollard's own version (bollard
//! addresses `/v1.53/…` by default, which an older daemon such as Docker 20.10's 1.41 refuses, and
//! unversioned paths would give a newer daemon's newest API). Over TLS and ssh, or when the ping's
//! answer names no version, bollard negotiates it with `GET /version` on the connection the next
//! requests reuse. That first request also tells whether a daemon answers at all, so an unreachable
//! one is reported by name before any other work.
//!
//! An exec's exit status is read with `GET /exec/{id}/json` after its output stream has ended; the
//! daemon reports a process killed by signal N as 128+N. A variable removed from the container's
//! own environment (a `null` in `remoteEnv`) is removed by starting the command through
//! `env -u NAME --`.
//!
//! TTY execs are started on a connection of our own (hyper, HTTP/1.1 upgrade) instead of bollard's
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
//! Files go through the archive endpoint (`files.rs`); `dcx top` reads the host's `/proc` on a
//! local daemon (zombies included) and the top API elsewhere; `dcx logs` is the logs API.

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
    io_reason, plausible_container_ref, sized_argv, without_os_error,
};
use crate::log::Log;

mod dial;
pub mod endpoint;
mod files;

use dial::SshErrors;
use endpoint::Transport;
pub use endpoint::{DockerEnv, Endpoint};
/// Seconds bollard waits for a response (not for an exec's output, which may take any time).
const REQUEST_TIMEOUT: u64 = 120;

/// The first API version whose exec-create honours `ConsoleSize`.
const CONSOLE_SIZE_API: (usize, usize) = (1, 42);

/// A connection to one Docker daemon.
pub struct Docker {
    client: bollard::Docker,
    target: Endpoint,
    endpoint: String,
    ssh_errors: SshErrors,
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
        // On a local socket or plain TCP, the API version comes from a ping, as the docker
        // CLI gets it; elsewhere (ssh, TLS) from bollard's `/version`, on the connection the
        // next requests reuse.
        let pinged = match &endpoint.transport {
            Transport::Unix(_) | Transport::Tcp(_) => {
                let ping = dial::api_version(&endpoint, &ssh_errors);
                match tokio::time::timeout(Duration::from_secs(REQUEST_TIMEOUT), ping).await {
                    Ok(Ok(version)) => version,
                    Ok(Err(err)) => {
                        return Err(unreachable(match &endpoint.transport {
                            Transport::Unix(path) if err.kind() == std::io::ErrorKind::NotFound => {
                                format!("no socket at {path}")
                            }
                            _ => io_reason(&err),
                        }));
                    }
                    Err(_) => return Err(unreachable("no answer to a ping".to_owned())),
                }
            }
            Transport::Tls { .. } | Transport::Ssh(_) => None,
        };
        let ours = bollard::API_DEFAULT_VERSION;
        let version = match pinged {
            Some(theirs) => {
                let (major_version, minor_version) =
                    theirs.min((ours.major_version, ours.minor_version));
                &bollard::ClientVersion {
                    major_version,
                    minor_version,
                }
            }
            None => ours,
        };
        let client = match &endpoint.transport {
            Transport::Unix(path) => {
                bollard::Docker::connect_with_unix(path, REQUEST_TIMEOUT, version)
            }
            Transport::Tcp(addr) => {
                bollard::Docker::connect_with_http(addr, REQUEST_TIMEOUT, version)
            }
            Transport::Tls { .. } | Transport::Ssh(_) => {
                dial::client(&endpoint, &ssh_errors, REQUEST_TIMEOUT)
            }
        }
        .map_err(|err| unreachable(reason(&err)))?;
        let negotiated = match pinged {
            Some(_) => Ok(client),
            None => client.negotiate_version().await,
        };
        let client = match negotiated {
            Ok(client) => client,
            Err(err) => {
                let ssh_said = match endpoint.transport {
                    Transport::Ssh(_) => ssh_errors.last(Duration::from_secs(2)).await,
                    _ => None,
                };
                return Err(unreachable(ssh_said.unwrap_or_else(|| reason(&err))));
            }
        };
        log.debug(&format!(
            "Docker Engine at {shown}, API {}",
            client.client_version()
        ));
        Ok(Self {
            client,
            target: endpoint,
            endpoint: shown,
            ssh_errors,
        })
    }

    fn api_at_least(&self, (major, minor): (usize, usize)) -> bool {
        let version = self.client.client_version();
        (version.major_version, version.minor_version) >= (major, minor)
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
        let io = dial::dial(&self.target, &self.ssh_errors)
            .await
            .map_err(|err| unreachable(io_reason(&err)))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|err| unreachable(err.to_string()))?;
        tokio::spawn(connection.with_upgrades());
        let version = self.client.client_version();
        let request = http::Request::post(format!(
            "/v{}.{}/exec/{exec_id}/start",
            version.major_version, version.minor_version
        ))
        .header(http::header::HOST, "docker")
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "tcp")
        .body(Full::new(Bytes::from_static(
            br#"{"Detach":false,"Tty":true}"#,
        )))
        .map_err(|err| unreachable(err.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|err| unreachable(err.to_string()))?;
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

    fn calls_at_once(&self) -> usize {
        match self.target.transport {
            // Each connection is an ssh process: the calls share one.
            Transport::Ssh(_) => 1,
            _ => 8,
        }
    }

    fn host_root(&self, container: &Container) -> Option<std::path::PathBuf> {
        if !matches!(self.target.transport, Transport::Unix(_)) || !container.running {
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
        let console_size_honoured = self.api_at_least(CONSOLE_SIZE_API);
        let argv = unset_argv(&spec.argv, &spec.unset);
        let argv = match size {
            Some(size) if !console_size_honoured => sized_argv(&argv, size),
            _ => argv,
        };
        let config = ExecConfig {
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(spec.tty),
            console_size: size
                .filter(|_| console_size_honoured)
                .map(|size| vec![usize::from(size.rows), usize::from(size.cols)]),
            env: (!spec.env.is_empty()).then(|| spec.env.clone()),
            cmd: Some(argv),
            user: spec.user.clone(),
            working_dir: spec.cwd.clone(),
            ..Default::default()
        };
        let created = self
            .client
            .create_exec(&container.id, config)
            .await
            .map_err(|err| match err {
                BollardError::DockerResponseServerError {
                    status_code: 409, ..
                } => RuntimeError::NotRunning(container.name.clone()),
                other => self.engine_error(other),
            })?;
        let process = std::sync::Arc::new(DockerProcess {
            client: self.client.clone(),
            endpoint: self.endpoint.clone(),
            container_id: container.id.clone(),
            exec_id: created.id.clone(),
            pid: std::sync::Mutex::new(None),
            seen_exit: std::sync::Arc::new(std::sync::Mutex::new(None)),
        });
        if spec.tty {
            let (read, write) = self.start_raw(&created.id).await?;
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
            .start_exec(&created.id, Some(options))
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
    /// The exit code the exec was seen to end with: the daemon replaces it with 126 when the
    /// attach connection is closed after that (a run that stopped reading the output of a
    /// background child or a stalled reader), so the first one seen is the answer.
    seen_exit: std::sync::Arc<std::sync::Mutex<Option<Option<i64>>>>,
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
    async fn wait(&self) -> Result<ExitStatus, RuntimeError> {
        // The output stream can end a moment before the daemon records the exit, and a process
        // that closed its stdout and stderr may still run: poll until it has finished.
        loop {
            let info = self
                .client
                .inspect_exec(&self.exec_id)
                .await
                .map_err(|err| RuntimeError::Engine {
                    endpoint: self.endpoint.clone(),
                    message: reason(&err),
                })?;
            if info.running != Some(true) {
                let seen = *self.seen_exit.lock().unwrap_or_else(|e| e.into_inner());
                return Ok(ExitStatus::from_code(seen.unwrap_or(info.exit_code)));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
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

    /// Polls the exec's state, from rarely to every quarter second: a command that ends with
    /// its output never waits for this.
    fn exited(&self) -> ExitWatch {
        let client = self.client.clone();
        let exec_id = self.exec_id.clone();
        let seen_exit = self.seen_exit.clone();
        Box::pin(async move {
            let mut pause = Duration::from_millis(20);
            loop {
                tokio::time::sleep(pause).await;
                match client.inspect_exec(&exec_id).await {
                    Ok(info) if info.running == Some(false) => {
                        *seen_exit.lock().unwrap_or_else(|e| e.into_inner()) = Some(info.exit_code);
                        return;
                    }
                    Ok(_) => {}
                    // No answer: this cannot tell; the output's end still can.
                    Err(_) => std::future::pending::<()>().await,
                }
                pause = (pause * 2).min(Duration::from_millis(250));
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
