//! The top-level error: every way a dcx run can fail before the command's own exit status is
//! known. Each variant's text is the one line the user sees on stderr; the exit code is 1, as
//! the reference CLI uses for every failure of its own, except a `--timeout` expiry (124).

use crate::{cli, config, discovery, env, exec, runtime};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Usage(#[from] cli::UsageError),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    #[error(transparent)]
    Discovery(#[from] discovery::DiscoveryError),
    #[error(transparent)]
    Exec(#[from] exec::ExecError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Env(#[from] env::resolve::ResolveError),
    #[error("{0}")]
    Io(std::io::Error),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Exec(err) => err.exit_code(),
            _ => 1,
        }
    }
}
