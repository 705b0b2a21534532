//! The stdin pump: a plain thread does blocking reads of fd 0 (a tokio stdin read could not be
//! abandoned when the command ends first), and hands 64 KiB chunks through a small bounded
//! channel to [`forward`], which writes them to the exec and shuts the input down on EOF.
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

/// Copies chunks to the exec's input until EOF, then shuts the input down so the process sees
/// EOF. A write error means the process no longer reads: stop quietly.
pub async fn forward(mut chunks: mpsc::Receiver<Bytes>, mut input: InputSink) {
    while let Some(chunk) = chunks.recv().await {
        if input.write_all(&chunk).await.is_err() {
            return;
        }
    }
    let _ = input.flush().await;
    let _ = input.shutdown().await;
}
