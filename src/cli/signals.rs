//! OS signals sent to dcx, turned into the engine's control messages.
//!
//! SIGINT, SIGTERM, SIGHUP and SIGQUIT are passed on to the command, SIGWINCH becomes a
//! terminal resize. Listening replaces the default action, so once a run is under way these
//! signals no longer end dcx: they reach the process, and dcx ends with that process's exit
//! status (or, when delivery is impossible, with 128+N at once).

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::terminal;
use crate::engine::Control;

/// Starts listening; from here on these signals are dcx's to handle. With `follow_resize`,
/// host terminal resizes become [`Control::Resize`] with the new size. The listener ends when
/// the receiver is dropped.
pub fn listen(follow_resize: bool) -> std::io::Result<mpsc::Receiver<Control>> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut resize = signal(SignalKind::window_change())?;
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                () = tx.closed() => break,
                _ = interrupt.recv() => Control::Signal(libc::SIGINT),
                _ = terminate.recv() => Control::Signal(libc::SIGTERM),
                _ = hangup.recv() => Control::Signal(libc::SIGHUP),
                _ = quit.recv() => Control::Signal(libc::SIGQUIT),
                _ = resize.recv(), if follow_resize => match terminal::host_size() {
                    Some(size) => Control::Resize(size),
                    None => continue,
                },
            };
            if tx.send(message).await.is_err() {
                break;
            }
        }
    });
    Ok(rx)
}
