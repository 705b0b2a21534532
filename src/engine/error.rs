//! [`EngineError`], every way the engine fails, and its one classification, [`ErrorKind`].
//!
//! Each message is the line a user sees. [`EngineError::kind`] says what a failure means without
//! picking it apart: the agent's protocol codes and the CLI's hints start from it (the CLI keeps
//! two precise variants for what their hints name: the workspace's labels, a paused container's
//! name); MCP tool errors carry the message.

use super::files::FileError;
use crate::discovery::DiscoveryError;
use crate::runtime::RuntimeError;

/// Every way the engine can fail; each message is the line the user sees.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Env(#[from] crate::env::resolve::ResolveError),
    #[error(transparent)]
    Exec(#[from] crate::exec::ExecError),
    #[error(transparent)]
    Files(#[from] FileError),
}

/// What an engine failure means to a caller, whatever layer it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No container matches the selectors, or the one named is gone.
    NoSuchContainer,
    /// The container exists but is stopped or paused.
    NotRunning,
    /// The engine is there but refuses this user (socket permissions).
    Permission,
    /// The engine cannot be reached.
    Unreachable,
    /// The request or the dev container config is wrong.
    BadInput,
    /// A path in the container (or on the host) does not exist.
    NoSuchPath,
    /// A folder where a file was needed.
    IsADirectory,
    /// A file where a folder was needed.
    NotADirectory,
    /// More bytes or entries than one call takes.
    TooLarge,
    /// The session's user may not (a file call the in-container helper ran as that user).
    Denied,
    /// Anything else the engine refused or failed at.
    Engine,
}

impl EngineError {
    /// What the failure means (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Runtime(err)
            | Self::Discovery(DiscoveryError::Runtime(err))
            | Self::Exec(crate::exec::ExecError::Runtime(err)) => runtime_kind(err),
            Self::Discovery(DiscoveryError::NotFound) => ErrorKind::NoSuchContainer,
            Self::Discovery(DiscoveryError::NotRunning { .. } | DiscoveryError::Paused { .. }) => {
                ErrorKind::NotRunning
            }
            Self::Config(_) => ErrorKind::BadInput,
            Self::Files(err) => match err {
                FileError::NoSuchDirectory(_) | FileError::NoSuchHostPath(_) => {
                    ErrorKind::NoSuchPath
                }
                FileError::IsADirectory(_) => ErrorKind::IsADirectory,
                FileError::NotADirectory(_) => ErrorKind::NotADirectory,
                FileError::TooLarge { .. } | FileError::TooManyEntries { .. } => {
                    ErrorKind::TooLarge
                }
                FileError::NotAFile(_) | FileError::NotUtf8(_) | FileError::NotCopied { .. } => {
                    ErrorKind::BadInput
                }
                FileError::Denied { .. } => ErrorKind::Denied,
                _ => ErrorKind::Engine,
            },
            _ => ErrorKind::Engine,
        }
    }
}

fn runtime_kind(err: &RuntimeError) -> ErrorKind {
    match err {
        RuntimeError::NoSuchContainer(_) => ErrorKind::NoSuchContainer,
        RuntimeError::NotRunning(_) => ErrorKind::NotRunning,
        RuntimeError::NoPermission { .. } => ErrorKind::Permission,
        RuntimeError::Unreachable { .. } => ErrorKind::Unreachable,
        RuntimeError::NoSuchPath { .. } => ErrorKind::NoSuchPath,
        _ => ErrorKind::Engine,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_layer_s_failure_has_one_kind() {
        let cases: Vec<(EngineError, ErrorKind)> = vec![
            (
                RuntimeError::NoSuchContainer("web".into()).into(),
                ErrorKind::NoSuchContainer,
            ),
            (
                DiscoveryError::Runtime(RuntimeError::NoSuchContainer("web".into())).into(),
                ErrorKind::NoSuchContainer,
            ),
            (DiscoveryError::NotFound.into(), ErrorKind::NoSuchContainer),
            (
                DiscoveryError::Paused { name: "web".into() }.into(),
                ErrorKind::NotRunning,
            ),
            (
                RuntimeError::NotRunning("web".into()).into(),
                ErrorKind::NotRunning,
            ),
            (
                RuntimeError::NoPermission {
                    endpoint: "unix:///x".into(),
                }
                .into(),
                ErrorKind::Permission,
            ),
            (
                RuntimeError::Unreachable {
                    endpoint: "tcp://x".into(),
                    reason: "refused".into(),
                }
                .into(),
                ErrorKind::Unreachable,
            ),
            (
                RuntimeError::NoSuchPath {
                    container: "web".into(),
                    path: "/x".into(),
                }
                .into(),
                ErrorKind::NoSuchPath,
            ),
            (
                FileError::NoSuchDirectory("/x".into()).into(),
                ErrorKind::NoSuchPath,
            ),
            (
                FileError::IsADirectory("/x".into()).into(),
                ErrorKind::IsADirectory,
            ),
            (
                FileError::NotADirectory("/x".into()).into(),
                ErrorKind::NotADirectory,
            ),
            (
                FileError::TooManyEntries {
                    path: "/x".into(),
                    limit: 1,
                }
                .into(),
                ErrorKind::TooLarge,
            ),
            (FileError::NotAFile("/x".into()).into(), ErrorKind::BadInput),
            (
                crate::config::ConfigError::NotAnObject { path: "/x".into() }.into(),
                ErrorKind::BadInput,
            ),
            (
                RuntimeError::UnknownUser("bob".into()).into(),
                ErrorKind::Engine,
            ),
        ];
        for (err, kind) in cases {
            assert_eq!(err.kind(), kind, "{err}");
        }
    }
}
