//! A client's own file descriptors as a run's I/O: its stdin read, its stdout and stderr written,
//! by the server, for `dcx exec` through a running server (`methods::attach`).
//!
//! The descriptors came over the unix socket (SCM_RIGHTS); they are shared with the client
//! and with whatever else holds them (a shell, a pipeline), so their file status flags are
//! never changed (no `O_NONBLOCK`): each is served by a thread of its own.
//!
//! * The input thread starts at the first read (the engine reads only once the command has
//!   started), and waits in `poll(2)` on the descriptor and on a wake-up socket: dropping the
//!   [`Input`] ends it at once, so a terminal's next keystroke after the run belongs to the
//!   client's shell again, never to a thread left reading in the server. It reads in 64 KiB
//!   chunks through a small bounded channel; a closed or unreadable descriptor is EOF.
//! * Each output thread writes its chunks byte-exact and in order, behind a small bounded
//!   channel, so a stalled reader holds that thread and never the relay (timeouts, signals and
//!   resizes are still served). Shutting a sink down lets its thread write what is queued and
//!   close its descriptor; [`Written`] tells when that is done. A descriptor another process
//!   made non-blocking is waited on with `poll(2)`.

use std::future::Future;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use rustix::event::{PollFd, PollFlags, poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_util::io::StreamReader;

use crate::engine::{Input, Output};

const CHUNK: usize = 64 * 1024;
/// Chunks in flight between a thread and the relay.
const DEPTH: usize = 4;

/// The command's input from `fd`, read from the first read on, until EOF or until dropped.
pub fn input(fd: OwnedFd) -> Input {
    Box::pin(LazyInput {
        fd: Some(fd),
        reading: None,
    })
}

struct LazyInput {
    fd: Option<OwnedFd>,
    /// The chunks, and the wake-up end whose drop stops the thread.
    reading: Option<(Input, std::os::unix::net::UnixStream)>,
}

impl AsyncRead for LazyInput {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.reading.is_none() {
            let Some(fd) = self.fd.take() else {
                return Poll::Ready(Ok(()));
            };
            self.reading = Some(spawn_reader(fd)?);
        }
        match self.reading.as_mut() {
            Some((chunks, _)) => chunks.as_mut().poll_read(cx, buf),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// Starts the reader thread of `fd`; its chunks, and the end whose drop stops it.
fn spawn_reader(fd: OwnedFd) -> std::io::Result<(Input, std::os::unix::net::UnixStream)> {
    let (tx, rx) = mpsc::channel::<Bytes>(DEPTH);
    let (wake, woken) = std::os::unix::net::UnixStream::pair()?;
    std::thread::Builder::new()
        .name("dcx-attach-stdin".into())
        .spawn(move || {
            let mut file = std::fs::File::from(fd);
            loop {
                let mut fds = [
                    PollFd::new(&file, PollFlags::IN),
                    PollFd::new(&woken, PollFlags::IN),
                ];
                match poll(&mut fds, None) {
                    Ok(_) => {}
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(_) => break,
                }
                // Woken (the input was dropped): stop before reading anything more.
                if !fds[1].revents().is_empty() {
                    break;
                }
                let mut buf = BytesMut::zeroed(CHUNK);
                match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.blocking_send(buf.freeze()).is_err() {
                            break;
                        }
                    }
                    Err(err)
                        if matches!(
                            err.kind(),
                            std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                        ) => {}
                    Err(_) => break,
                }
            }
        })?;
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    Ok((Box::pin(StreamReader::new(Box::pin(chunks))), wake))
}

/// Resolves once an output thread has written all it was given and closed its descriptor.
pub type Written = oneshot::Receiver<()>;

/// A sink writing to `fd` through a thread of its own; and when that thread is done.
pub fn output(fd: OwnedFd) -> std::io::Result<(Output, Written)> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(DEPTH);
    let (done, written) = oneshot::channel();
    let failed = Arc::new(Mutex::new(None));
    let failure = failed.clone();
    std::thread::Builder::new()
        .name("dcx-attach-out".into())
        .spawn(move || {
            while let Some(chunk) = rx.blocking_recv() {
                if let Err(err) = write_all(&fd, &chunk) {
                    *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(err);
                    break;
                }
            }
            drop(rx);
            drop(fd);
            let _ = done.send(());
        })?;
    let sink = FdSink {
        tx: Some(tx),
        reserving: None,
        failed,
    };
    Ok((Box::pin(sink), written))
}

type Reserving = Pin<
    Box<dyn Future<Output = Result<mpsc::OwnedPermit<Bytes>, mpsc::error::SendError<()>>> + Send>,
>;

struct FdSink {
    /// `None` once shut down.
    tx: Option<mpsc::Sender<Bytes>>,
    reserving: Option<Reserving>,
    failed: Arc<Mutex<Option<std::io::Error>>>,
}

impl AsyncWrite for FdSink {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let Some(tx) = &this.tx else {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        };
        let reserve = this
            .reserving
            .get_or_insert_with(|| Box::pin(tx.clone().reserve_owned()));
        match reserve.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(permit)) => {
                this.reserving = None;
                permit.send(Bytes::copy_from_slice(bytes));
                Poll::Ready(Ok(bytes.len()))
            }
            Poll::Ready(Err(_)) => {
                this.reserving = None;
                let failure = this.failed.lock().unwrap_or_else(|e| e.into_inner()).take();
                Poll::Ready(Err(
                    failure.unwrap_or_else(|| std::io::ErrorKind::BrokenPipe.into())
                ))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        this.tx = None;
        this.reserving = None;
        Poll::Ready(Ok(()))
    }
}

/// Writes all of `bytes` to `fd`, waiting in `poll(2)` when another holder made it
/// non-blocking.
fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::OUT)];
                let _ = poll(&mut fds, None);
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// Whether `fd` is open for reading (its access mode allows it).
pub fn readable(fd: impl AsFd) -> bool {
    use rustix::fs::OFlags;
    rustix::fs::fcntl_getfl(fd).is_ok_and(|flags| {
        let mode = flags & OFlags::RWMODE;
        mode == OFlags::RDONLY || mode == OFlags::RDWR
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_written_to_a_sink_reach_its_descriptor_in_order_and_it_closes() {
        let (mut read, write) = std::io::pipe().unwrap();
        let (mut sink, written) = output(OwnedFd::from(write)).unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            read.read_to_end(&mut got).unwrap();
            got
        });
        // More than a pipe holds: written as the reader reads.
        let data: Vec<u8> = (0..200_000u32).map(|n| (n % 251) as u8).collect();
        for part in data.chunks(7_000) {
            sink.write_all(part).await.unwrap();
        }
        sink.shutdown().await.unwrap();
        written.await.unwrap();
        assert_eq!(reader.join().unwrap(), data);
    }

    #[tokio::test]
    async fn a_gone_reader_is_a_broken_pipe() {
        let (read, write) = std::io::pipe().unwrap();
        drop(read);
        let (mut sink, written) = output(OwnedFd::from(write)).unwrap();
        sink.write_all(b"x").await.unwrap();
        written.await.unwrap();
        let err = sink.write_all(b"y").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    }

    #[tokio::test]
    async fn an_input_reads_to_eof_and_a_dropped_one_stops_reading() {
        let (read, mut write) = std::io::pipe().unwrap();
        std::io::Write::write_all(&mut write, b"hello").unwrap();
        drop(write);
        let mut got = Vec::new();
        input(OwnedFd::from(read))
            .read_to_end(&mut got)
            .await
            .unwrap();
        assert_eq!(got, b"hello");

        // A reader whose writer never writes nor closes: dropped, it leaves the pipe alone,
        // and what is written afterwards is still there for the next reader.
        let (mut read, mut write) = std::io::pipe().unwrap();
        let mut waiting = input(OwnedFd::from(read.try_clone().unwrap()));
        let mut byte = [0u8; 1];
        let pending = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            waiting.read(&mut byte),
        )
        .await;
        assert!(pending.is_err(), "nothing was written yet");
        drop(waiting);
        // The thread, woken in its poll, checks the wake-up first: a byte written now is read
        // here, not by it, however late it runs.
        std::io::Write::write_all(&mut write, b"z").unwrap();
        read.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"z");
    }

    #[test]
    fn write_only_descriptors_are_not_readable() {
        let (read, write) = std::io::pipe().unwrap();
        assert!(readable(&read));
        assert!(!readable(&write));
    }
}
