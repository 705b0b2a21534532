//! The CLI's errors: every way a dcx run can fail before the command's own exit status is
//! known. Each variant's text is the one line the user sees on stderr; the exit code is 1, as
//! the reference CLI uses for every failure of its own, except a `--timeout` expiry (124).

use std::time::Duration;

use super::args::UsageError;
use crate::engine::EngineError;

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
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::TimedOut(_) => TIMEOUT_EXIT,
            _ => 1,
        }
    }
}

impl From<crate::runtime::RuntimeError> for Error {
    fn from(err: crate::runtime::RuntimeError) -> Self {
        Self::Engine(err.into())
    }
}
