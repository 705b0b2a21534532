//! The Docker Engine API runtime, on bollard.
//!
//! The endpoint comes from `DOCKER_HOST` (`unix://` or `tcp://`), else the default socket. The
//! first request negotiates the API version (`GET /version`): bollard addresses `/v1.53/…` by
//! default, which an older daemon (Docker 20.10 speaks 1.41) refuses, and unversioned paths
//! would give a newer daemon's newest API. That request also tells whether a daemon answers at
//! all, so an unreachable one is reported by name before any other work.
//!
//! An exec's exit status is read with `GET /exec/{id}/json` after its output stream has ended;
//! the daemon reports a process killed by signal N as 128+N.

use std::time::Duration;

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use futures_util::StreamExt;

use super::{Chunk, Container, ExecSpec, Process, Runtime, RuntimeError, Session};
use crate::exec::ExitStatus;
use crate::log::Log;

const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// Seconds bollard waits for a response (not for an exec's output, which may take any time).
const REQUEST_TIMEOUT: u64 = 120;

/// A connection to one Docker daemon.
pub struct Docker {
    client: bollard::Docker,
    endpoint: String,
}

/// Where `DOCKER_HOST` points.
#[derive(Debug, PartialEq, Eq)]
pub enum Endpoint {
    Unix(String),
    Tcp(String),
}

impl Endpoint {
    /// Reads a `DOCKER_HOST` value; `None` or empty means the default socket.
    pub fn parse(docker_host: Option<&str>) -> Result<Self, RuntimeError> {
        let host = docker_host.unwrap_or_default().trim();
        if host.is_empty() {
            return Ok(Self::Unix(DEFAULT_SOCKET.into()));
        }
        if let Some(path) = host.strip_prefix("unix://") {
            return Ok(Self::Unix(path.into()));
        }
        if let Some(addr) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            return Ok(Self::Tcp(addr.trim_end_matches('/').into()));
        }
        Err(RuntimeError::UnsupportedHost(host.into()))
    }

    fn display(&self) -> String {
        match self {
            Self::Unix(path) => format!("unix://{path}"),
            Self::Tcp(addr) => format!("tcp://{addr}"),
        }
    }
}

impl Docker {
    /// Connects to the daemon named by `DOCKER_HOST` and negotiates the API version.
    pub async fn connect(log: &Log) -> Result<Self, RuntimeError> {
        let endpoint = Endpoint::parse(std::env::var("DOCKER_HOST").ok().as_deref())?;
        let shown = endpoint.display();
        let unreachable = |reason: String| RuntimeError::Unreachable {
            endpoint: shown.clone(),
            reason,
        };
        let client = match &endpoint {
            Endpoint::Unix(path) => bollard::Docker::connect_with_unix(
                path,
                REQUEST_TIMEOUT,
                bollard::API_DEFAULT_VERSION,
            ),
            Endpoint::Tcp(addr) => bollard::Docker::connect_with_http(
                addr,
                REQUEST_TIMEOUT,
                bollard::API_DEFAULT_VERSION,
            ),
        }
        .map_err(|err| unreachable(reason(&err)))?;
        let client = client
            .negotiate_version()
            .await
            .map_err(|err| unreachable(reason(&err)))?;
        log.debug(&format!(
            "Docker Engine at {shown}, API {}",
            client.client_version()
        ));
        Ok(Self {
            client,
            endpoint: shown,
        })
    }

    fn engine_error(&self, err: BollardError) -> RuntimeError {
        match err {
            BollardError::DockerResponseServerError { message, .. } => RuntimeError::Engine {
                endpoint: self.endpoint.clone(),
                message,
            },
            other => RuntimeError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: reason(&other),
            },
        }
    }
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
    let text = source.to_string();
    // io::Error's text ends with " (os error N)", which says nothing more to a user.
    match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Container names and ids are `[A-Za-z0-9][A-Za-z0-9_.-]*`; anything else could not name a
/// container, and must not reach a URL path.
fn plausible_container_ref(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[async_trait]
impl Runtime for Docker {
    async fn inspect(&self, id: &str) -> Result<Container, RuntimeError> {
        if !plausible_container_ref(id) {
            return Err(RuntimeError::NoSuchContainer(id.into()));
        }
        let info = self
            .client
            .inspect_container(id, None)
            .await
            .map_err(|err| match err {
                BollardError::DockerResponseServerError {
                    status_code: 404, ..
                } => RuntimeError::NoSuchContainer(id.into()),
                BollardError::DockerResponseServerError { ref message, .. }
                    if message.contains("multiple") =>
                {
                    RuntimeError::AmbiguousContainer(id.into())
                }
                other => self.engine_error(other),
            })?;
        let state = info.state.unwrap_or_default();
        let config = info.config.unwrap_or_default();
        Ok(Container {
            id: info.id.unwrap_or_default(),
            name: info
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            running: state.running.unwrap_or(false),
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            user: config.user.filter(|user| !user.is_empty()),
            env: config.env.unwrap_or_default(),
            labels: config.labels.unwrap_or_default().into_iter().collect(),
        })
    }

    async fn start(&self, container: &Container, spec: &ExecSpec) -> Result<Session, RuntimeError> {
        let config = ExecConfig {
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(spec.tty),
            env: (!spec.env.is_empty()).then(|| spec.env.clone()),
            cmd: Some(spec.argv.clone()),
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
            unreachable!("start_exec attaches unless asked to detach");
        };
        let endpoint = self.endpoint.clone();
        let output = output.filter_map(move |item| {
            let chunk = match item {
                Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                    Some(Ok(Chunk::Stdout(message)))
                }
                Ok(LogOutput::StdErr { message }) => Some(Ok(Chunk::Stderr(message))),
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
            process: Box::new(DockerProcess {
                client: self.client.clone(),
                endpoint: self.endpoint.clone(),
                exec_id: created.id,
            }),
        })
    }
}

struct DockerProcess {
    client: bollard::Docker,
    endpoint: String,
    exec_id: String,
}

#[async_trait]
impl Process for DockerProcess {
    async fn wait(&mut self) -> Result<ExitStatus, RuntimeError> {
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
                return Ok(ExitStatus::from_code(info.exit_code));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_forms() {
        assert_eq!(
            Endpoint::parse(None).unwrap(),
            Endpoint::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            Endpoint::parse(Some("")).unwrap(),
            Endpoint::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            Endpoint::parse(Some("unix:///tmp/d.sock")).unwrap(),
            Endpoint::Unix("/tmp/d.sock".into())
        );
        assert_eq!(
            Endpoint::parse(Some("tcp://127.0.0.1:2375")).unwrap(),
            Endpoint::Tcp("127.0.0.1:2375".into())
        );
        insta::assert_snapshot!(
            Endpoint::parse(Some("ssh://me@host")).unwrap_err(),
            @"Unsupported DOCKER_HOST ssh://me@host: dcx speaks to unix:// and tcp:// endpoints."
        );
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
