//! Why the helper refuses a frame from dcx: the typed reasons behind ERROR frames.

use std::fmt;

use dcx_helper::{DecodeError, STDIN_WINDOW};
use rustix::io::Errno;

/// A frame the helper could not use; its text becomes an ERROR frame's message.
#[derive(Debug)]
pub enum Refusal {
    /// The payload is not a message of its kind.
    Malformed {
        /// The frame's kind.
        kind: u8,
        /// What is wrong with it.
        error: DecodeError,
    },
    /// RUN or a file call under id 0, the helper's own.
    IdZero,
    /// RUN or a file call under an id still in use.
    IdInUse(u32),
    /// FS_WRITE_DATA or FS_WRITE_END under an id with no write under way.
    NoWrite(u32),
    /// A frame about an id no command has (never started, or finished).
    UnknownId(u32),
    /// STDIN or STDIN_EOF for a command whose stdin is `/dev/null`.
    StdinNotOpen(u32),
    /// STDIN or STDIN_EOF after STDIN_EOF.
    StdinClosed(u32),
    /// STDIN beyond the unacknowledged window; the bytes were dropped.
    StdinWindow(u32),
    /// RESIZE for a command without a PTY.
    NoPty(u32),
    /// A signal number the helper cannot send.
    Signal(u8),
    /// `kill` failed for another reason than the target being gone.
    Kill(u32, Errno),
    /// `TIOCSWINSZ` failed.
    Resize(u32, Errno),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed { kind, error } => {
                write!(f, "malformed frame of kind {kind:#04x}: {error}")
            }
            Self::IdZero => {
                f.write_str("id 0 is the helper's own: no command or file call can use it")
            }
            Self::IdInUse(id) => write!(f, "id {id} is in use"),
            Self::NoWrite(id) => write!(f, "no file write is under way under id {id}"),
            Self::UnknownId(id) => write!(f, "unknown id {id}"),
            Self::StdinNotOpen(id) => write!(f, "command {id}'s stdin is not open"),
            Self::StdinClosed(id) => write!(f, "command {id}'s stdin is already closed"),
            Self::StdinWindow(id) => write!(
                f,
                "command {id}: more than {STDIN_WINDOW} STDIN bytes unacknowledged; these were dropped"
            ),
            Self::NoPty(id) => write!(f, "command {id} has no PTY"),
            Self::Signal(signo) => write!(f, "signal {signo} is not supported"),
            Self::Kill(id, errno) => write!(f, "cannot signal command {id}: {errno}"),
            Self::Resize(id, errno) => write!(f, "cannot resize command {id}'s PTY: {errno}"),
        }
    }
}

impl std::error::Error for Refusal {}
