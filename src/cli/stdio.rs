//! dcx's own fd 0, 1 and 2: the engine's I/O, dcx's printing, and the log's sink.
//!
//! fd 0 is the command's input, fd 1 and 2 its output sinks, or, in `--log-format json`, the
//! output goes as JSON `raw` events on stderr; [`print`] and [`stderr_line`] are dcx's own
//! writes, and [`StderrSink`] the log's, with passing status lines on a terminal.
//!
//! * fd 0 is read by a plain thread with blocking reads (a tokio stdin read could not be
//!   abandoned when the command ends first), in 64 KiB chunks through a small bounded channel,
//!   so memory stays bounded whatever the input size; a closed or unreadable stdin is EOF. The
//!   thread is never joined: a read on a terminal may never return, and the process exits
//!   without waiting for it.
//! * fd 1 and 2 are written by a thread each, behind a small bounded channel (as fd 0 is read),
//!   byte-exact and in order, so a reader that stalls never blocks the runtime: the relay serves
//!   `--timeout`, signals and resizes meanwhile. Shutting a sink down hands what is queued to its
//!   thread (the streams stay open for dcx's own messages); [`written`] waits until it is out,
//!   and the front end decides how long that may take.
//! * raw events keep the tail of an incomplete UTF-8 sequence until the stream's next chunk, so
//!   a character split across chunks arrives whole; what is left at the end is shown lossily.

use std::future::Future;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;
use tokio::sync::{mpsc, oneshot};
use tokio_util::io::StreamReader;

use crate::engine::{Input, Output};
use crate::log::Log;

const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the reader thread and the exec.
const DEPTH: usize = 4;

/// The command's input from fd 0: the reader thread starts at the first read, which the engine
/// makes only once the command has started.
pub fn stdin_input() -> Input {
    Box::pin(LazyStdin(None))
}

struct LazyStdin(Option<Input>);

impl tokio::io::AsyncRead for LazyStdin {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.0.is_none() {
            self.0 = Some(spawn_reader()?);
        }
        match self.0.as_mut() {
            Some(input) => input.as_mut().poll_read(cx, buf),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// Starts the fd 0 reader thread and returns its chunks as a stream.
fn spawn_reader() -> std::io::Result<Input> {
    let (tx, rx) = mpsc::channel::<Bytes>(DEPTH);
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
        })?;
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    Ok(Box::pin(StreamReader::new(Box::pin(chunks))))
}

/// Which of dcx's own output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A sink writing to fd 1 or fd 2 through a writer thread of its own (started at the first
/// write), behind a bounded channel: a reader that stalls holds the thread in its `write(2)`,
/// and the relay only waits (asynchronously) for room in the channel, so timeouts, signals and
/// resizes are still served. Shutting it down closes the channel; the thread writes what is
/// queued and ends ([`written`] waits for that).
struct FdSink {
    stream: Stream,
    state: SinkState,
}

enum SinkState {
    Idle,
    Open {
        tx: mpsc::Sender<Bytes>,
        /// Waiting for room in the channel.
        reserving: Option<Reserving>,
        /// The error that stopped the thread.
        failed: Arc<Mutex<Option<std::io::Error>>>,
    },
    Closed,
}

type Reserving = Pin<
    Box<dyn Future<Output = Result<mpsc::OwnedPermit<Bytes>, mpsc::error::SendError<()>>> + Send>,
>;

/// The writer threads started so far, each telling when it has written all it was given.
static WRITERS: Mutex<Vec<oneshot::Receiver<()>>> = Mutex::new(Vec::new());

/// Waits until every fd 1/2 writer thread started so far has written what its sink was given
/// and ended (its sink shut down or dropped). Never blocks the runtime.
pub async fn written() {
    let pending = std::mem::take(&mut *WRITERS.lock().unwrap_or_else(|e| e.into_inner()));
    for done in pending {
        let _ = done.await;
    }
}

impl FdSink {
    fn start(stream: Stream) -> std::io::Result<SinkState> {
        let (tx, mut rx) = mpsc::channel::<Bytes>(DEPTH);
        let (done, on_done) = oneshot::channel();
        let failed = Arc::new(Mutex::new(None));
        let failure = failed.clone();
        std::thread::Builder::new()
            .name(format!("dcx-{stream:?}").to_lowercase())
            .spawn(move || {
                while let Some(chunk) = rx.blocking_recv() {
                    if let Err(err) = write_fd(stream, &chunk) {
                        *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(err);
                        break;
                    }
                }
                drop(rx);
                let _ = done.send(());
            })?;
        WRITERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(on_done);
        Ok(SinkState::Open {
            tx,
            reserving: None,
            failed,
        })
    }
}

impl AsyncWrite for FdSink {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if matches!(this.state, SinkState::Idle) {
            this.state = Self::start(this.stream)?;
        }
        let SinkState::Open {
            tx,
            reserving,
            failed,
        } = &mut this.state
        else {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        };
        let reserve = reserving.get_or_insert_with(|| Box::pin(tx.clone().reserve_owned()));
        match reserve.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(permit)) => {
                *reserving = None;
                permit.send(Bytes::copy_from_slice(bytes));
                Poll::Ready(Ok(bytes.len()))
            }
            Poll::Ready(Err(_)) => {
                *reserving = None;
                let failure = failed.lock().unwrap_or_else(|e| e.into_inner()).take();
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
        self.get_mut().state = SinkState::Closed;
        Poll::Ready(Ok(()))
    }
}

/// Writes all of `bytes` to fd 1 or 2 directly (not through std's locked handles, which a
/// thread stuck on a stalled reader would hold while dcx writes its own messages or exits).
fn write_fd(stream: Stream, mut bytes: &[u8]) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let fd = match stream {
        Stream::Stdout => stdout.as_fd(),
        Stream::Stderr => stderr.as_fd(),
    };
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            // A non-blocking stream (shared with a process that set O_NONBLOCK): wait a little.
            Err(rustix::io::Errno::AGAIN) => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// A sink turning one output stream into JSON `raw` events.
struct RawEvents {
    log: Log,
    tail: Vec<u8>,
}

impl AsyncWrite for RawEvents {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.tail.extend_from_slice(bytes);
        let text = take_text(&mut this.tail);
        if !text.is_empty()
            && let Err(err) = this.log.raw_event(&text)
        {
            // A reader that went away ends the run as it would on stdout.
            return Poll::Ready(Err(err));
        }
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.tail.is_empty() {
            let written = this.log.raw_event(&String::from_utf8_lossy(&this.tail));
            this.tail.clear();
            return Poll::Ready(written);
        }
        Poll::Ready(Ok(()))
    }
}

/// The sink for one of the command's streams: our own fd, or raw events through `log`.
pub fn output(stream: Stream, events: Option<&Log>) -> Output {
    match events {
        Some(log) => Box::pin(RawEvents {
            log: log.clone(),
            tail: Vec::new(),
        }),
        None => Box::pin(FdSink {
            stream,
            state: SinkState::Idle,
        }),
    }
}

/// Writes `text` to stdout; a reader that went away is not an error.
pub fn print(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Writes one diagnostic line to stderr; a closed stderr must not turn a diagnostic into a
/// crash.
pub fn stderr_line(line: &[u8]) {
    let _ = std::io::stderr().lock().write_all(line);
}

/// How long a step runs before its status line shows.
const PROGRESS_AFTER: std::time::Duration = std::time::Duration::from_millis(300);

/// The log sink the CLI installs: lines to stderr and, when stderr is a terminal, a step that
/// takes longer than [`PROGRESS_AFTER`] as a one-line status that erases itself when it ends.
pub struct StderrSink {
    status: Option<std::sync::Arc<std::sync::Mutex<Status>>>,
}

#[derive(Default)]
struct Status {
    /// Bumped by every start and end, so a late timer knows its step is over.
    generation: u64,
    shown: bool,
}

impl StderrSink {
    /// `statuses`: show passing status lines (stderr is a terminal, text format).
    pub fn new(statuses: bool) -> Self {
        Self {
            status: statuses.then(Default::default),
        }
    }
}

impl crate::log::LogSink for StderrSink {
    fn write_line(&self, line: &[u8]) {
        let _ = self.write_line_checked(line);
    }

    fn write_line_checked(&self, line: &[u8]) -> std::io::Result<()> {
        if let Some(status) = &self.status {
            let mut status = status.lock().unwrap_or_else(|e| e.into_inner());
            if std::mem::take(&mut status.shown) {
                stderr_line(b"\r\x1b[K");
            }
        }
        let mut stderr = std::io::stderr().lock();
        // In raw mode the terminal no longer turns `\n` into `\r\n`.
        if super::terminal::is_raw() && stderr.is_terminal() {
            let mut crlf = Vec::with_capacity(line.len() + 2);
            for &byte in line {
                if byte == b'\n' {
                    crlf.push(b'\r');
                }
                crlf.push(byte);
            }
            stderr.write_all(&crlf)
        } else {
            stderr.write_all(line)
        }
    }

    fn progress(&self, step: Option<&str>) {
        let Some(status) = &self.status else {
            return;
        };
        let mut state = status.lock().unwrap_or_else(|e| e.into_inner());
        state.generation += 1;
        if std::mem::take(&mut state.shown) {
            stderr_line(b"\r\x1b[K");
        }
        let Some(step) = step else {
            return;
        };
        let generation = state.generation;
        let status = status.clone();
        let line = format!("\r{step}\u{2026}\x1b[K");
        let _ = std::thread::Builder::new()
            .name("dcx-status".into())
            .spawn(move || {
                std::thread::sleep(PROGRESS_AFTER);
                let mut state = status.lock().unwrap_or_else(|e| e.into_inner());
                if state.generation == generation {
                    stderr_line(line.as_bytes());
                    state.shown = true;
                }
            });
    }
}

/// Takes the longest prefix of `buf` that can be decoded now, leaving an incomplete trailing
/// UTF-8 sequence in `buf`. Invalid bytes become U+FFFD.
fn take_text(buf: &mut Vec<u8>) -> String {
    let mut text = String::new();
    let mut rest: &[u8] = buf;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                text.push_str(valid);
                rest = &[];
                break;
            }
            Err(err) => {
                let (valid, after) = rest.split_at(err.valid_up_to());
                text.push_str(&String::from_utf8_lossy(valid));
                match err.error_len() {
                    Some(len) => {
                        text.push(char::REPLACEMENT_CHARACTER);
                        rest = &after[len..];
                    }
                    None => {
                        rest = after;
                        break;
                    }
                }
            }
        }
    }
    let keep = rest.to_vec();
    *buf = keep;
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_four_byte_character_arrives_whole() {
        let emoji = "🦀".as_bytes();
        let mut tail = b"a".to_vec();
        tail.extend_from_slice(&emoji[..2]);
        assert_eq!(take_text(&mut tail), "a");
        assert_eq!(tail, &emoji[..2]);
        tail.extend_from_slice(&emoji[2..]);
        tail.extend_from_slice(b"b");
        assert_eq!(take_text(&mut tail), "🦀b");
        assert!(tail.is_empty());
    }

    #[tokio::test]
    async fn raw_events_hold_a_split_character_and_flush_the_rest_at_the_end() {
        use std::sync::{Arc, Mutex};
        use tokio::io::AsyncWriteExt;
        let lines = Arc::new(Mutex::new(Vec::<serde_json::Value>::new()));
        let kept = lines.clone();
        let log = Log::new(
            crate::log::Level::Info,
            crate::log::Format::Json,
            Arc::new(move |line: &[u8]| {
                kept.lock()
                    .unwrap()
                    .push(serde_json::from_slice(line).unwrap());
            }),
        );
        let mut sink = output(Stream::Stdout, Some(&log));
        let crab = "🦀".as_bytes();
        sink.write_all(b"a").await.unwrap();
        sink.write_all(&crab[..2]).await.unwrap();
        sink.write_all(&crab[2..]).await.unwrap();
        sink.write_all(&crab[..1]).await.unwrap();
        sink.shutdown().await.unwrap();
        let texts: Vec<String> = lines
            .lock()
            .unwrap()
            .iter()
            .map(|event| {
                assert_eq!(event["type"], "raw");
                event["text"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(texts, ["a", "🦀", "\u{fffd}"]);
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut buf = vec![b'x', 0xff, b'y', 0xe2, 0x82];
        assert_eq!(take_text(&mut buf), "x\u{fffd}y");
        assert_eq!(buf, [0xe2, 0x82]);
    }
}
