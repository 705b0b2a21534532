//! crun's terminal: the `--console-socket` directory, the master received over it, its size.
//!
//! The socket lives in a private directory (mode 0700, removed on every way out); crun sends the
//! terminal's master over it as one byte and SCM_RIGHTS, and dcx sets its size.

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

use crate::runtime::{RuntimeError, TermSize, io_reason};

/// How long crun may take to hand over the terminal.
pub(super) const CONSOLE_WAIT: Duration = Duration::from_secs(10);

/// A private directory for the console socket, removed when dropped (on every way out).
pub(super) struct ConsoleDir(PathBuf);

impl ConsoleDir {
    pub(super) fn socket(&self) -> PathBuf {
        self.0.join("console.sock")
    }
}

impl Drop for ConsoleDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates the console socket's directory.
pub(super) fn console_dir() -> Result<ConsoleDir, RuntimeError> {
    use std::os::unix::fs::DirBuilderExt;
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dcx-console-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|err| RuntimeError::Spawn {
            program: "crun".into(),
            reason: format!("cannot create {}: {}", dir.display(), io_reason(&err)),
        })?;
    Ok(ConsoleDir(dir))
}

/// Receives the terminal master crun sends: one byte with one descriptor (SCM_RIGHTS).
pub(super) async fn receive_fd(stream: tokio::net::UnixStream) -> Result<OwnedFd, String> {
    let stream = stream.into_std().map_err(|err| err.to_string())?;
    stream
        .set_nonblocking(false)
        .map_err(|err| err.to_string())?;
    tokio::task::spawn_blocking(move || {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut byte = [0u8; 8];
        rustix::net::recvmsg(
            &stream,
            &mut [IoSliceMut::new(&mut byte)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(|err| err.to_string())?;
        control
            .drain()
            .find_map(|message| match message {
                RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
                _ => None,
            })
            .ok_or_else(|| "crun sent no terminal".to_owned())
    })
    .await
    .map_err(|err| err.to_string())?
}

pub(super) fn set_size(master: &OwnedFd, size: TermSize) -> std::io::Result<()> {
    rustix::termios::tcsetwinsize(
        master,
        rustix::termios::Winsize {
            ws_row: size.rows,
            ws_col: size.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .map_err(Into::into)
}
