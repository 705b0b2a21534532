//! The host terminal: what dcx's standard streams are, the terminal's size, and raw mode.
//!
//! [`HostTerminal`] tells whether stdin and stdout are terminals and whether the streams could
//! be handed to the process as they are.
//!
//! Raw mode is entered only for a PTY session whose stdin is a terminal, and the saved settings
//! are restored on every way out: the [`RawMode`] guard's drop (normal exit, errors, and the
//! forwarded SIGTERM/SIGHUP, which end through the normal path), and a panic hook for panics
//! (release builds abort on panic, after the hook has run).

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::sync::{Mutex, Once};

use rustix::termios::{OptionalActions, Termios, tcgetattr, tcgetwinsize, tcsetattr};

use crate::runtime::TermSize;

/// What the host's standard streams are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostTerminal {
    pub stdin_tty: bool,
    pub stdout_tty: bool,
    /// stdin, stdout and stderr are each a pipe, a socket or `/dev/null` (see `shareable`).
    pub stdio_shareable: bool,
}

impl HostTerminal {
    /// Whether `dcx exec` gives the command a terminal (the host's stdin and stdout are one,
    /// or `--log-format json` asks for it), and its size then: `fixed` (`--terminal-rows`/
    /// `--terminal-columns`), else the host terminal's.
    pub fn command_terminal(
        &self,
        json: bool,
        fixed: Option<TermSize>,
    ) -> (bool, Option<TermSize>) {
        let tty = (self.stdin_tty && self.stdout_tty) || json;
        let size = match fixed {
            Some(fixed) => Some(fixed),
            None if tty && self.stdout_tty => host_size(),
            None => None,
        };
        (tty, size.filter(|_| tty))
    }

    pub fn detect() -> Self {
        Self {
            stdin_tty: std::io::stdin().is_terminal(),
            stdout_tty: std::io::stdout().is_terminal(),
            stdio_shareable: shareable(std::io::stdin().as_fd())
                && shareable(std::io::stdout().as_fd())
                && shareable(std::io::stderr().as_fd()),
        }
    }
}

/// Whether the process could hold this stream itself instead of a pipe from dcx: a pipe, a
/// socket or `/dev/null` gives it nothing a relay's pipe would not. A terminal would (its
/// settings; typing into it with TIOCSTI), and so would a file (its mode and owner, its
/// content through `/proc/self/fd`).
fn shareable(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    use rustix::fs::FileType;
    let Ok(stat) = rustix::fs::fstat(fd) else {
        return false;
    };
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::Fifo | FileType::Socket => true,
        FileType::CharacterDevice => {
            let device = stat.st_rdev;
            (rustix::fs::major(device), rustix::fs::minor(device)) == (1, 3)
        }
        _ => false,
    }
}

/// The size of the terminal on stdout (else stdin), if either is one with a non-zero size.
pub fn host_size() -> Option<TermSize> {
    let from = |fd: std::os::fd::BorrowedFd<'_>| {
        tcgetwinsize(fd)
            .ok()
            .filter(|size| size.ws_row > 0 && size.ws_col > 0)
            .map(|size| TermSize {
                rows: size.ws_row,
                cols: size.ws_col,
            })
    };
    from(std::io::stdout().as_fd()).or_else(|| from(std::io::stdin().as_fd()))
}

/// Settings to restore, shared with the panic hook.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

/// Whether dcx has the terminal in raw mode now (its own lines then need `\r\n`).
pub fn is_raw() -> bool {
    SAVED.lock().unwrap_or_else(|e| e.into_inner()).is_some()
}

fn restore() {
    if let Some(saved) = SAVED.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = tcsetattr(std::io::stdin().as_fd(), OptionalActions::Now, &saved);
    }
}

/// Puts the terminal on stdin in raw mode until dropped.
pub struct RawMode(());

impl RawMode {
    /// Enters raw mode; `None` when stdin is not a terminal or refuses.
    pub fn enter() -> Option<Self> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        *SAVED.lock().unwrap_or_else(|e| e.into_inner()) = Some(saved);
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        if tcsetattr(stdin.as_fd(), OptionalActions::Now, &raw).is_err() {
            restore();
            return None;
        }
        Some(Self(()))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_sockets_and_dev_null_are_shareable_files_and_terminals_are_not() {
        let (read, write) = std::io::pipe().unwrap();
        assert!(shareable(read.as_fd()) && shareable(write.as_fd()));
        let (one, _two) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(shareable(one.as_fd()));
        let null = std::fs::File::open("/dev/null").unwrap();
        assert!(shareable(null.as_fd()));
        let zero = std::fs::File::open("/dev/zero").unwrap();
        assert!(!shareable(zero.as_fd()));
        let file = tempfile::tempfile().unwrap();
        assert!(!shareable(file.as_fd()));
        let pty = rustix::pty::openpt(rustix::pty::OpenptFlags::RDWR).unwrap();
        assert!(!shareable(pty.as_fd()));
    }
}
