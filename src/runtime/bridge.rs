//! Bridges between async tar streams and the blocking tree code on worker threads.
//!
//! The blocking code reads and writes trees ([`super::tree`]): an [`ArchiveStream`] is read as a
//! blocking `Read` on a worker thread ([`reader`]), and a worker thread's blocking `Write` is
//! turned into an [`ArchiveStream`] ([`writer`]). Both hold a few pieces at most, so a file of any
//! size passes in bounded memory; a failure on either side reaches the other.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::{ArchiveStream, RuntimeError};

/// How many pieces wait between the two sides, and how big a written piece is.
const PIECES: usize = 4;
const PIECE: usize = 64 * 1024;

/// The first failure of a stream read through [`reader`], kept for the caller to report
/// instead of the reader's `io::Error`.
#[derive(Clone, Default)]
pub struct Failure(Arc<Mutex<Option<RuntimeError>>>);

impl Failure {
    /// Keeps `err` (the first one only) and returns it as an `io::Error` for the reader.
    pub fn keep(&self, err: RuntimeError) -> io::Error {
        let text = err.to_string();
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert(err);
        }
        io::Error::other(text)
    }

    /// The stream's own failure, if it failed.
    pub fn take(&self) -> Option<RuntimeError> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// `stream` as a blocking reader, for a worker thread (`spawn_blocking`); call it inside the
/// runtime. The stream's failures are kept in the returned [`Failure`].
pub fn reader(stream: ArchiveStream) -> (impl Read + Send + 'static, Failure) {
    let failure = Failure::default();
    let kept = failure.clone();
    let stream = stream.map_err(move |err| kept.keep(err));
    (SyncIoBridge::new(StreamReader::new(stream)), failure)
}

/// Runs `work` on a worker thread, its writes coming out as the returned stream; an error of
/// `work`'s is the stream's last item (turned into a [`RuntimeError`] by `failed`).
pub fn writer<F>(
    work: F,
    failed: impl Fn(io::Error) -> RuntimeError + Send + 'static,
) -> ArchiveStream
where
    F: FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Result<Bytes, RuntimeError>>(PIECES);
    tokio::task::spawn_blocking(move || {
        let mut out = Pieces {
            tx: tx.clone(),
            buffer: BytesMut::with_capacity(PIECE),
        };
        // What was written before a failure still goes out, then the failure.
        let done = work(&mut out);
        let flushed = out.flush();
        let done = done.and(flushed);
        if let Err(err) = done {
            // Nobody listening (the reader went away) is not worth reporting.
            if err.kind() != io::ErrorKind::BrokenPipe {
                let _ = tx.blocking_send(Err(failed(err)));
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}

/// A blocking `Write` into the channel, in pieces of [`PIECE`] bytes.
struct Pieces {
    tx: mpsc::Sender<Result<Bytes, RuntimeError>>,
    buffer: BytesMut,
}

impl Write for Pieces {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = PIECE - self.buffer.len();
        let taken = bytes.len().min(room);
        self.buffer.extend_from_slice(&bytes[..taken]);
        if self.buffer.len() == PIECE {
            self.flush()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let piece = self.buffer.split().freeze();
        self.buffer.reserve(PIECE);
        self.tx
            .blocking_send(Ok(piece))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bytes_and_failures_cross_both_ways() {
        let stream = writer(
            |out| {
                out.write_all(&vec![7u8; 200_000])?;
                Err(io::Error::other("disk gone"))
            },
            |err| RuntimeError::Unsupported(err.to_string()),
        );
        let (mut read, failure) = reader(stream);
        let (bytes, err) = tokio::task::spawn_blocking(move || {
            let mut bytes = Vec::new();
            let err = read.read_to_end(&mut bytes).unwrap_err();
            (bytes, err)
        })
        .await
        .unwrap();
        assert_eq!(bytes.len(), 200_000);
        assert!(err.to_string().contains("disk gone"));
        assert!(matches!(failure.take(), Some(RuntimeError::Unsupported(_))));
    }
}
