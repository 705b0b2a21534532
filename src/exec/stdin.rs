//! The stdin pump: a plain thread does blocking reads of fd 0 (a tokio stdin read could not be
//! abandoned when the command ends first), and hands 64 KiB chunks through a small bounded
//! channel to [`forward`], which writes them to the exec and passes EOF on (see [`Eof`]).
//! A closed or unreadable stdin counts as EOF.

use std::io::Read;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::runtime::InputSink;

const CHUNK: usize = 64 * 1024;
/// Chunks in flight: bounds memory whatever the input size.
const DEPTH: usize = 4;

/// Starts the reader thread; the receiver yields chunks and ends at EOF.
pub fn spawn_reader() -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(DEPTH);
    std::thread::Builder::new()
        .name("dcx-stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            loop {
                let mut buf = BytesMut::zeroed(CHUNK);
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.blocking_send(buf.freeze()).is_err() {
                            break;
                        }
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        })
        .expect("spawn the stdin reader thread");
    rx
}

/// How EOF on our stdin reaches the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eof {
    /// Shut the input down (pipes: the process reads EOF).
    Shutdown,
    /// Type the terminal's EOF character, ^D (twice after a partial line, as the first only
    /// ends the line). Shutting a TTY exec's input down would make Docker end its output too.
    SendEofChar,
}

/// Copies chunks to the exec's input until EOF, then passes EOF on. A write error means the
/// process no longer reads: stop quietly.
pub async fn forward(mut chunks: mpsc::Receiver<Bytes>, mut input: InputSink, eof: Eof) {
    let mut last = None;
    while let Some(chunk) = chunks.recv().await {
        if input.write_all(&chunk).await.is_err() {
            return;
        }
        last = chunk.last().copied().or(last);
    }
    match eof {
        Eof::Shutdown => {
            let _ = input.flush().await;
            let _ = input.shutdown().await;
        }
        Eof::SendEofChar => {
            let eof: &[u8] = match last {
                None | Some(b'\n') => b"\x04",
                Some(_) => b"\x04\x04",
            };
            let _ = input.write_all(eof).await;
            let _ = input.flush().await;
        }
    }
}
