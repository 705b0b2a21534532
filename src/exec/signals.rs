//! The signals dcx passes on to the process in the container (SIGINT, SIGTERM, SIGHUP,
//! SIGQUIT), and SIGWINCH for terminal resizes. Listening replaces the default action, so once
//! a session is under way these signals no longer end dcx: they reach the process, and dcx ends
//! with that process's exit status (or, when delivery is impossible, with 128+N at once).

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The signals to forward.
pub struct Forwarded {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
    quit: Signal,
}

/// Host terminal resizes.
pub struct Resizes(Signal);

/// Starts listening; from here on these signals are dcx's to handle.
pub fn listen() -> std::io::Result<(Forwarded, Resizes)> {
    Ok((
        Forwarded {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
            quit: signal(SignalKind::quit())?,
        },
        Resizes(signal(SignalKind::window_change())?),
    ))
}

impl Forwarded {
    /// The next signal to forward, as its Linux number.
    pub async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.interrupt.recv() => libc::SIGINT,
            _ = self.terminate.recv() => libc::SIGTERM,
            _ = self.hangup.recv() => libc::SIGHUP,
            _ = self.quit.recv() => libc::SIGQUIT,
        }
    }
}

impl Resizes {
    /// The next terminal resize.
    pub async fn next(&mut self) {
        self.0.recv().await;
    }
}
