//! One command of a session: its kept output, stdin pipe, controls and ending.
//!
//! The service's task drives the engine with sinks that keep the output ([`Kept`]) or stream it;
//! `exec.write_stdin` writes through the stdin pipe, `exec.cancel` sends a control, and the
//! result [`Envelope`] is read from the record at any time. An exec asked to keep its whole
//! output also writes each stream to an unlinked temporary file on the host ([`Spill`], up to
//! [`SPILL_LIMIT`] a stream), so every offset stays readable and the whole can be copied into
//! the container for a model to search.
//! A PTY-mode exec also feeds its stdout to a [`Screen`], which `exec.resize` sizes along with
//! its terminal.

use std::io::{Read, Seek, SeekFrom, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::PollSender;

use super::envelope::{Ending, Envelope, Output, State, Stream};
use super::output::Kept;
use super::screen::Screen;
use crate::engine::{Control, Input, TermSize};

/// The most bytes of one stream one read from a [`Spill`] gives.
pub const READ_LIMIT: u64 = 1024 * 1024;
/// The most bytes of one stream a [`Spill`] keeps.
pub const SPILL_LIMIT: u64 = 256 * 1024 * 1024;

/// Each stream's whole output, in unlinked temporary files (gone with the exec).
struct Spill {
    files: [std::fs::File; 2],
    /// Bytes written to each; a stream past [`SPILL_LIMIT`] (or whose write failed) stops.
    written: [u64; 2],
    complete: [bool; 2],
}

/// A running or finished exec.
pub struct Exec {
    /// The whole output, when it is kept ([`Exec::keep_whole`]).
    spill: Mutex<Option<Spill>>,
    pub id: String,
    pub session_id: String,
    /// Kept output: stdout, stderr.
    kept: Mutex<(Kept, Kept)>,
    /// Woken on new output and at the end.
    pub changed: Notify,
    ending: watch::Sender<Option<Ending>>,
    /// Set once the engine said the process started.
    begun: watch::Sender<bool>,
    control: mpsc::Sender<Control>,
    stdin: Mutex<Option<mpsc::Sender<Bytes>>>,
    pub started: Instant,
    finished_at: Mutex<Option<Instant>>,
    /// What the caller should know about how it ended (a cancel in a paused container).
    end_note: Mutex<Option<String>>,
    /// A foreground exec (`exec.run`, `exec.stream`) rather than `exec.start`'s.
    pub foreground: bool,
    /// Its request's [`crate::agent::launch::ExecRequest::fingerprint`].
    pub fingerprint: u64,
    /// A PTY-mode exec's rendered screen (fed with its stdout).
    screen: std::sync::OnceLock<Screen>,
}

impl Exec {
    /// A new exec record and the receiver of its control messages.
    pub fn new(
        id: String,
        session_id: String,
        budget: usize,
        foreground: bool,
        fingerprint: u64,
    ) -> (Arc<Self>, mpsc::Receiver<Control>) {
        let (control, controls) = mpsc::channel(8);
        let exec = Arc::new(Self {
            spill: Mutex::new(None),
            id,
            session_id,
            kept: Mutex::new((Kept::new(budget), Kept::new(budget))),
            changed: Notify::new(),
            ending: watch::channel(None).0,
            begun: watch::channel(false).0,
            control,
            stdin: Mutex::new(None),
            started: Instant::now(),
            finished_at: Mutex::new(None),
            end_note: Mutex::new(None),
            foreground,
            fingerprint,
            screen: std::sync::OnceLock::new(),
        });
        (exec, controls)
    }

    /// A stdin pipe the caller writes with [`Exec::write_stdin`].
    pub fn open_stdin(&self) -> Input {
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        *self.stdin.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
        });
        Box::pin(tokio_util::io::StreamReader::new(Box::pin(chunks)))
    }

    /// Writes to the exec's stdin; `eof` closes it. False when it is not open.
    pub async fn write_stdin(&self, data: Vec<u8>, eof: bool) -> bool {
        let sender = self.stdin.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(sender) = sender else {
            return false;
        };
        // A command that does not read its stdin must not hold the caller.
        if !data.is_empty() {
            match tokio::time::timeout(Duration::from_secs(10), sender.send(Bytes::from(data)))
                .await
            {
                Ok(Ok(())) => {}
                _ => return false,
            }
        }
        if eof {
            self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
        true
    }

    /// Keeps the whole output from now on (before the command starts), in temporary files;
    /// false when they cannot be made (the head and tail are kept as always).
    pub fn keep_whole(&self) -> bool {
        let files = (tempfile::tempfile(), tempfile::tempfile());
        let (Ok(stdout), Ok(stderr)) = files else {
            return false;
        };
        *self.spill.lock().unwrap_or_else(|e| e.into_inner()) = Some(Spill {
            files: [stdout, stderr],
            written: [0, 0],
            complete: [true, true],
        });
        true
    }

    fn push(&self, stream: Stream, bytes: &[u8]) {
        let index = usize::from(stream == Stream::Stderr);
        if let Some(spill) = self
            .spill
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .filter(|spill| spill.complete[index])
        {
            // A local file write of a chunk the engine just read: brief, so done in place.
            let fits = spill.written[index] + bytes.len() as u64 <= SPILL_LIMIT;
            if fits && spill.files[index].write_all(bytes).is_ok() {
                spill.written[index] += bytes.len() as u64;
            } else {
                spill.complete[index] = false;
            }
        }
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        match stream {
            Stream::Stdout => kept.0.push(bytes),
            Stream::Stderr => kept.1.push(bytes),
        }
        if let (Stream::Stdout, Some(screen)) = (stream, self.screen.get()) {
            screen.feed(bytes);
        }
        drop(kept);
        self.changed.notify_waiters();
    }

    /// Up to `limit` bytes of a stream's whole output from `offset`, when it is kept whole up
    /// to there.
    pub fn whole_from(&self, stream: Stream, offset: u64, limit: u64) -> Option<Vec<u8>> {
        let index = usize::from(stream == Stream::Stderr);
        let mut spill = self.spill.lock().unwrap_or_else(|e| e.into_inner());
        let spill = spill.as_mut()?;
        let written = spill.written[index];
        if !spill.complete[index] || offset > written {
            return None;
        }
        let file = &mut spill.files[index];
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(offset)).ok()?;
        let read = Read::by_ref(file)
            .take(limit.min(written - offset))
            .read_to_end(&mut bytes);
        file.seek(SeekFrom::End(0)).ok()?;
        read.ok().map(|_| bytes)
    }

    /// A stream's whole output, when it is kept whole and is at most `limit` bytes.
    pub fn whole(&self, stream: Stream, limit: u64) -> Option<Vec<u8>> {
        let index = usize::from(stream == Stream::Stderr);
        let size = self
            .spill
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|spill| spill.written[index])?;
        if size > limit {
            return None;
        }
        self.whole_from(stream, 0, size)
    }

    /// Gives a PTY-mode exec its screen, before its output starts.
    pub fn attach_screen(&self, size: TermSize) {
        let _ = self.screen.set(Screen::new(size));
    }

    /// The screen of a PTY-mode exec.
    pub fn screen(&self) -> Option<&Screen> {
        self.screen.get()
    }

    /// Resizes a PTY-mode exec's terminal and screen; false when it has none.
    pub fn resize(&self, size: TermSize) -> bool {
        let Some(screen) = self.screen.get() else {
            return false;
        };
        screen.resize(size);
        let _ = self.control.try_send(Control::Resize(size));
        true
    }

    /// A sink that keeps `stream`'s output.
    pub fn sink(self: &Arc<Self>, stream: Stream) -> Pin<Box<dyn AsyncWrite + Send>> {
        Box::pin(KeptSink {
            exec: self.clone(),
            stream,
        })
    }

    /// A sink that keeps the counts and passes `stream`'s output on, waiting when the
    /// receiver is behind (so memory stays bounded).
    pub fn streaming_sink(
        self: &Arc<Self>,
        stream: Stream,
        tx: mpsc::Sender<(Stream, Bytes)>,
    ) -> Pin<Box<dyn AsyncWrite + Send>> {
        Box::pin(StreamSink {
            exec: self.clone(),
            stream,
            tx: PollSender::new(tx),
        })
    }

    /// Ends it; a `note` its answers carry from then on replaces one set before.
    pub fn finish_noted(&self, ending: Ending, note: Option<String>) {
        if note.is_some() {
            self.set_end_note(note);
        }
        self.finish(ending);
    }

    /// A note its answers carry once it has ended (what a cancel found).
    pub fn set_end_note(&self, note: Option<String>) {
        *self.end_note.lock().unwrap_or_else(|e| e.into_inner()) = note;
    }

    /// The note of its ending, if any.
    pub fn end_note(&self) -> Option<String> {
        self.end_note
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn finish(&self, ending: Ending) {
        self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
        *self.finished_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.ending.send_replace(Some(ending));
        self.changed.notify_waiters();
    }

    /// The engine said the process started.
    pub fn mark_begun(&self) {
        self.begun.send_replace(true);
    }

    /// Whether the engine said the process started.
    pub fn has_begun(&self) -> bool {
        *self.begun.borrow()
    }

    /// Waits (at most `limit`) until the process has started or the exec has ended.
    pub async fn wait_begun(&self, limit: Duration) {
        let mut begun = self.begun.subscribe();
        let mut ending = self.ending.subscribe();
        let _ = tokio::time::timeout(limit, async {
            tokio::select! {
                _ = begun.wait_for(|begun| *begun) => {}
                _ = ending.wait_for(Option::is_some) => {}
            }
        })
        .await;
    }

    pub fn ending(&self) -> Option<Ending> {
        self.ending.borrow().clone()
    }

    pub fn finished_at(&self) -> Option<Instant> {
        *self.finished_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the end, at most `limit` (`None`: as long as it takes).
    pub async fn wait(&self, limit: Option<Duration>) -> Option<Ending> {
        let mut ending = self.ending.subscribe();
        let done = ending.wait_for(Option::is_some);
        match limit {
            None => done.await.ok().and_then(|e| e.clone()),
            Some(limit) => match tokio::time::timeout(limit, done).await {
                Ok(Ok(e)) => e.clone(),
                _ => None,
            },
        }
    }

    /// Asks the run to stop it; never waits (a stop already asked for is enough).
    pub fn cancel(&self, signal: i32) {
        let _ = self.control.try_send(Control::Cancel { signal });
    }

    /// The result envelope, with the kept output when `with_output` (else the byte counts).
    pub fn envelope(&self, with_output: bool) -> Envelope {
        let ending = self.ending();
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        Envelope {
            exec_id: self.id.clone(),
            state: ending.as_ref().map_or(State::Running, |e| e.state.clone()),
            duration_ms: ending.map(|e| e.duration_ms),
            output: match with_output {
                true => Output::Kept {
                    stdout: kept.0.shown(),
                    stderr: kept.1.shown(),
                },
                false => Output::Counts {
                    stdout: kept.0.total(),
                    stderr: kept.1.total(),
                },
            },
            note: self.end_note(),
        }
    }

    /// Output since the offsets: `(stdout, stdout skipped, next), (stderr, …)`; from the whole
    /// output when it is kept (at most [`READ_LIMIT`] bytes a stream then), else what the head
    /// and tail still hold.
    pub fn read_from(&self, stdout: u64, stderr: u64) -> [(Vec<u8>, u64, u64); 2] {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let held = [kept.0.read_from(stdout), kept.1.read_from(stderr)];
        drop(kept);
        let mut answer = held;
        for (index, (stream, offset)) in [(Stream::Stdout, stdout), (Stream::Stderr, stderr)]
            .into_iter()
            .enumerate()
        {
            if answer[index].1 > 0
                && let Some(bytes) = self.whole_from(stream, offset, READ_LIMIT)
            {
                let next = offset + bytes.len() as u64;
                answer[index] = (bytes, 0, next);
            }
        }
        answer
    }

    /// Bytes of output it holds in memory.
    pub fn held(&self) -> usize {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.0.held() + kept.1.held()
    }

    /// Bytes written so far on both streams.
    pub fn totals(&self) -> (u64, u64) {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        (kept.0.total(), kept.1.total())
    }
}

struct KeptSink {
    exec: Arc<Exec>,
    stream: Stream,
}

impl AsyncWrite for KeptSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.exec.push(self.stream, bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

struct StreamSink {
    exec: Arc<Exec>,
    stream: Stream,
    tx: PollSender<(Stream, Bytes)>,
}

impl AsyncWrite for StreamSink {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        match this.tx.poll_reserve(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
            Poll::Ready(Ok(())) => {}
        }
        if this
            .tx
            .send_item((this.stream, Bytes::copy_from_slice(bytes)))
            .is_err()
        {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        this.exec.push(this.stream, bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
