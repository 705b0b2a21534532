//! The CLI's errors: what the user reads on stderr, the `hint:` lines, the exit code.
//!
//! [`Error`] is every way a dcx run can fail before the command's own exit status is known;
//! each variant's text is the message after `error: `. Hints for engine failures start from
//! the engine's one classification, [`EngineError::kind`]. The exit code is 1, as the
//! reference CLI uses for every failure of its own, except a `--timeout` expiry (124).

use std::time::Duration;

use super::args::UsageError;
use super::request::ExecRequest;
use crate::engine::{EngineError, ErrorKind};

/// Exit code of a run ended by `--timeout` (as coreutils' `timeout`).
pub const TIMEOUT_EXIT: u8 = 124;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot listen for signals: {0}")]
    Signals(std::io::Error),
    #[error("Timed out after {}.", humantime::format_duration(*.0))]
    TimedOut(Duration),
    #[error("{0}")]
    Io(std::io::Error),
}

impl Error {
    /// Next steps for the user, printed as `hint:` lines after the message.
    pub fn hints(&self, request: Option<&ExecRequest>) -> Vec<String> {
        match self {
            Self::Usage(err) => err.hints().to_vec(),
            Self::Engine(err) => engine_hints(err, request),
            _ => Vec::new(),
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::TimedOut(_) => TIMEOUT_EXIT,
            _ => 1,
        }
    }
}

/// Next steps for an engine failure, by its [`ErrorKind`]; the workspace folder's hint is for
/// the selection by its labels only, and the paused one names the container.
fn engine_hints(err: &EngineError, request: Option<&ExecRequest>) -> Vec<String> {
    use crate::discovery::DiscoveryError;
    match (err.kind(), err) {
        (ErrorKind::Permission, _) => vec![
            "add your user to the `docker` group (`sudo usermod -aG docker $USER`, then log in again), or run dcx as root".to_owned(),
        ],
        (ErrorKind::NoSuchContainer, EngineError::Discovery(DiscoveryError::NotFound)) => {
            let Some(folder) = request.and_then(|r| r.prepare.workspace_folder.as_ref()) else {
                return Vec::new();
            };
            vec![
                format!(
                    "no running container carries the labels of the workspace folder {}",
                    folder.display()
                ),
                format!(
                    "start one with `devcontainer up --workspace-folder {}`",
                    folder.display()
                ),
            ]
        }
        (ErrorKind::NotRunning, EngineError::Discovery(DiscoveryError::Paused { name })) => {
            match request.map(|r| &r.settings) {
                Some(crate::engine::EngineSettings::Crun { root, .. }) => {
                    let root = root.as_ref().map_or_else(String::new, |root| {
                        format!(" --root {}", root.display())
                    });
                    vec![format!("resume it with `crun{root} resume {name}`")]
                }
                _ => vec![format!("unpause it with `docker unpause {name}`")],
            }
        }
        _ => Vec::new(),
    }
}

impl From<crate::runtime::RuntimeError> for Error {
    fn from(err: crate::runtime::RuntimeError) -> Self {
        Self::Engine(err.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::DiscoveryError;
    use crate::runtime::RuntimeError;

    /// The lines dcx prints for an error, as a person sees them.
    fn shown(err: Error) -> String {
        let mut text = format!("error: {err}\n");
        for hint in err.hints(None) {
            text.push_str(&format!("hint: {hint}\n"));
        }
        text
    }

    fn runtime(err: RuntimeError) -> Error {
        Error::Engine(EngineError::Runtime(err))
    }

    #[test]
    fn every_error_text() {
        let texts = [
            shown(runtime(RuntimeError::NoPermission {
                endpoint: "unix:///var/run/docker.sock".into(),
            })),
            shown(runtime(RuntimeError::Unreachable {
                endpoint: "ssh://me@box".into(),
                reason: "ssh: connect to host box port 22: Connection refused".into(),
            })),
            shown(runtime(RuntimeError::NoSuchContainer("web".into()))),
            shown(runtime(RuntimeError::AmbiguousContainer {
                prefix: "ab".into(),
                matches: vec!["abc".into(), "abd".into()],
            })),
            shown(runtime(RuntimeError::UnknownUser("bob".into()))),
            shown(runtime(RuntimeError::UnknownGroup("staff".into()))),
            shown(runtime(RuntimeError::Spawn {
                program: "crun".into(),
                reason: "No such file or directory".into(),
            })),
            shown(runtime(RuntimeError::NotRunning("web".into()))),
            shown(runtime(RuntimeError::Workdir {
                dir: "/x".into(),
                reason: "no such file or directory".into(),
            })),
            shown(runtime(RuntimeError::Engine {
                endpoint: "unix:///var/run/docker.sock".into(),
                message: "conflict".into(),
            })),
            shown(Error::Engine(EngineError::Discovery(
                DiscoveryError::NotFound,
            ))),
            shown(Error::Engine(EngineError::Discovery(
                DiscoveryError::Paused { name: "web".into() },
            ))),
            shown(Error::Engine(EngineError::Discovery(
                DiscoveryError::NotRunning {
                    name: "web".into(),
                    status: "exited".into(),
                    hint: "Start it with `docker start web`.".into(),
                },
            ))),
            shown(Error::TimedOut(std::time::Duration::from_secs(90))),
        ];
        insta::assert_snapshot!(texts.concat(), @r"
        error: Permission denied on the Docker socket unix:///var/run/docker.sock: the daemon is there, but this user may not use it.
        hint: add your user to the `docker` group (`sudo usermod -aG docker $USER`, then log in again), or run dcx as root
        error: Cannot connect to the Docker daemon at ssh://me@box (ssh: connect to host box port 22: Connection refused). Is it running? Otherwise point DOCKER_HOST at one that is.
        error: No such container: web
        error: Container id prefix ab matches more than one container (abc, abd); give more of the id.
        error: Unknown user bob: the container's /etc/passwd has no such user.
        error: Unknown group staff: the container's /etc/group has no such group.
        error: Cannot run crun: No such file or directory
        error: Container web is not running.
        error: Cannot use the working directory /x in the container: no such file or directory.
        error: Docker Engine error (unix:///var/run/docker.sock): conflict
        error: Dev container not found.
        error: Container web is paused.
        hint: unpause it with `docker unpause web`
        error: Container web is not running (state: exited). Start it with `docker start web`.
        error: Timed out after 1m 30s.
        ");
    }
}
