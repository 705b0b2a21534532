//! The input pump: the caller's stdin copied to the exec's input, then its EOF.
//!
//! Chunks of at most 64 KiB; EOF is passed on as [`Eof`] says. A read error counts as EOF; a write
//! error means the process no longer reads, and the pump stops quietly.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Input;
use crate::runtime::InputSink;

const CHUNK: usize = 64 * 1024;

/// How EOF on the caller's stdin reaches the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eof {
    /// Shut the input down (pipes: the process reads EOF).
    Shutdown,
    /// Type the terminal's EOF character, ^D (twice after a partial line, as the first only
    /// ends the line). Shutting a TTY exec's input down would make Docker end its output too.
    /// With no input at all, nothing is typed.
    SendEofChar,
}

/// Copies `input` to the exec's input until EOF, then passes EOF on.
pub async fn forward(input: Option<Input>, mut sink: InputSink, eof: Eof) {
    let mut last = None;
    let had_input = input.is_some();
    if let Some(mut input) = input {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match input.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if sink.write_all(&buf[..n]).await.is_err() {
                return;
            }
            last = Some(buf[n - 1]);
        }
    }
    match eof {
        Eof::Shutdown => {
            let _ = sink.flush().await;
            let _ = sink.shutdown().await;
        }
        Eof::SendEofChar if had_input => {
            let eof: &[u8] = match last {
                None | Some(b'\n') => b"\x04",
                Some(_) => b"\x04\x04",
            };
            let _ = sink.write_all(eof).await;
            let _ = sink.flush().await;
        }
        Eof::SendEofChar => {}
    }
}
