//! The host terminal: whether stdin and stdout are terminals, their size, and raw mode.
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
}

impl HostTerminal {
    pub fn detect() -> Self {
        Self {
            stdin_tty: std::io::stdin().is_terminal(),
            stdout_tty: std::io::stdout().is_terminal(),
        }
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
