//! One running helper: its frames over one exec's stream, and its commands as sessions.
//!
//! A reader task parses the helper's frames and routes them to the command they are about;
//! a writer task owns the exec's input and sends the frames every command queues. Each command
//! started through [`Conn::run`] comes back as a [`Session`] like any engine exec's: an output
//! stream (acknowledged as it is taken, so the helper never sends more than its window), an
//! input sink (sent as the helper's credit allows), and a [`Process`] to wait for, signal and
//! resize. When the stream ends (the helper was killed, the container stopped), every command
//! still running ends as the engine would report a kill (`SIGKILL`).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::{Buf, Bytes, BytesMut};
use dcx_helper::{Exit, Frame, FromHelper, RunSpec, ToHelper};
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio_util::sync::PollSender;

use crate::log::Log;
use crate::runtime::{
    Chunk, ExecSpec, ExitStatus, ExitWatch, Process, RuntimeError, Session, SignalError,
    SignalTarget, TermSize,
};

/// Stdin bytes a command may have sent and not yet acknowledged (the protocol's window).
const STDIN_WINDOW: usize = dcx_helper::STDIN_WINDOW;
/// The largest STDIN frame sent.
const STDIN_CHUNK: usize = 64 * 1024;

/// Why a command could not start through the helper.
#[derive(Debug)]
pub enum RunError {
    /// The helper says nothing ran (a missing program or working directory…): replay it
    /// through a plain engine exec, whose words are the engine's.
    Failed(String),
    /// The helper is gone.
    Lost,
}

/// What the reader routes to one command.
struct Slot {
    started: Option<oneshot::Sender<Result<u32, String>>>,
    output: Option<mpsc::UnboundedSender<Chunk>>,
    exit: watch::Sender<Option<ExitStatus>>,
    credit: Arc<Semaphore>,
    exited: bool,
}

type Slots = Arc<Mutex<HashMap<u32, Slot>>>;

/// The answers of file calls in flight, by id.
type Calls = Arc<Mutex<HashMap<u32, mpsc::UnboundedSender<FromHelper>>>>;

/// A running helper.
pub struct Conn {
    frames: mpsc::UnboundedSender<Vec<u8>>,
    /// Ends the helper's stream (the helper then ends what it started, and itself).
    closed: tokio_util::sync::CancellationToken,
    slots: Slots,
    calls: Calls,
    next: AtomicU32,
    alive: watch::Receiver<bool>,
    /// The helper's own exec, held for as long as the helper serves.
    _process: Arc<dyn Process>,
    /// The helper's pid in the container.
    pub pid: u32,
}

impl Conn {
    /// Takes over a started helper exec: waits for its HELLO (up to `limit`), then serves it.
    pub async fn open(
        session: Session,
        limit: std::time::Duration,
        log: Log,
    ) -> Result<Self, String> {
        let Session {
            mut output,
            mut input,
            process,
        } = session;
        let mut buffer = BytesMut::new();
        let hello = tokio::time::timeout(limit, async {
            loop {
                if let Some(frame) = next_frame(&mut buffer)? {
                    return match FromHelper::decode(&frame) {
                        Ok(FromHelper::Hello { protocol, pid, .. })
                            if protocol == dcx_helper::PROTOCOL =>
                        {
                            Ok(pid)
                        }
                        Ok(FromHelper::Hello { protocol, .. }) => {
                            Err(format!("the helper speaks protocol {protocol}"))
                        }
                        _ => Err("the helper's first frame is not its hello".to_owned()),
                    };
                }
                match output.next().await {
                    Some(Ok(Chunk::Stdout(bytes))) => buffer.extend_from_slice(&bytes),
                    Some(Ok(Chunk::Stderr(bytes))) => {
                        return Err(String::from_utf8_lossy(&bytes).trim().to_owned());
                    }
                    Some(Err(err)) => return Err(err.to_string()),
                    None => return Err("the helper ended before its hello".to_owned()),
                }
            }
        })
        .await;
        let pid = match hello {
            Ok(Ok(pid)) => pid,
            Ok(Err(reason)) => {
                let _ = process.signal(libc::SIGKILL, SignalTarget::Process).await;
                return Err(reason);
            }
            Err(_) => {
                let _ = process.signal(libc::SIGKILL, SignalTarget::Process).await;
                return Err(format!("no hello from the helper within {limit:?}"));
            }
        };
        let (frames, mut queued) = mpsc::unbounded_channel::<Vec<u8>>();
        let closed = tokio_util::sync::CancellationToken::new();
        let close = closed.clone();
        tokio::spawn(async move {
            loop {
                let frame = tokio::select! {
                    () = close.cancelled() => break,
                    frame = queued.recv() => frame,
                };
                let Some(frame) = frame else { break };
                if input.write_all(&frame).await.is_err() || input.flush().await.is_err() {
                    break;
                }
            }
            // The helper's stdin ends, and with it the helper and what it started.
            let _ = input.shutdown().await;
        });
        let slots: Slots = Arc::new(Mutex::new(HashMap::new()));
        let calls: Calls = Arc::new(Mutex::new(HashMap::new()));
        let (alive_tx, alive) = watch::channel(true);
        let reader_slots = slots.clone();
        let reader_calls = calls.clone();
        let reader_frames = frames.clone();
        tokio::spawn(async move {
            loop {
                while let Ok(Some(frame)) = next_frame(&mut buffer) {
                    route(&reader_slots, &reader_calls, &reader_frames, &frame, &log);
                }
                match output.next().await {
                    Some(Ok(Chunk::Stdout(bytes))) => buffer.extend_from_slice(&bytes),
                    Some(Ok(Chunk::Stderr(bytes))) => log.debug(&format!(
                        "helper: {}",
                        String::from_utf8_lossy(&bytes).trim()
                    )),
                    Some(Err(_)) | None => break,
                }
            }
            // The stream ended: what still runs ended as a kill would; file calls get no
            // more answers (their channels close).
            let _ = alive_tx.send(false);
            reader_calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            let lost: Vec<Slot> = reader_slots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain()
                .map(|(_, slot)| slot)
                .collect();
            for mut slot in lost {
                if let Some(started) = slot.started.take() {
                    let _ = started.send(Err(String::new()));
                }
                if !slot.exited {
                    slot.exit
                        .send_replace(Some(ExitStatus::Signal(libc::SIGKILL)));
                }
            }
        });
        Ok(Self {
            frames,
            closed,
            slots,
            calls,
            next: AtomicU32::new(1),
            alive,
            _process: process,
            pid,
        })
    }

    /// Whether the helper still answers.
    pub fn alive(&self) -> bool {
        *self.alive.borrow()
    }

    fn send(&self, id: u32, message: &ToHelper) {
        let _ = self.frames.send(message.encode(id));
    }

    /// Sends a file call (its first frame, then the rest under the same id); its answers, in
    /// order, until the channel closes (the call's last answer, or a lost helper).
    pub fn call(&self, first: &ToHelper, rest: &[ToHelper]) -> Answers {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        if self.alive() {
            self.calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, tx);
            self.send(id, first);
            for message in rest {
                self.send(id, message);
            }
        }
        Answers {
            id,
            rx,
            calls: self.calls.clone(),
        }
    }

    /// Starts `spec` through the helper.
    pub async fn run(self: &Arc<Self>, spec: &ExecSpec) -> Result<Session, RunError> {
        if !self.alive() {
            return Err(RunError::Lost);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (started_tx, started) = oneshot::channel();
        let (output_tx, output_rx) = mpsc::unbounded_channel();
        let (exit_tx, exit) = watch::channel(None);
        let credit = Arc::new(Semaphore::new(STDIN_WINDOW));
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).insert(
            id,
            Slot {
                started: Some(started_tx),
                output: Some(output_tx),
                exit: exit_tx,
                credit: credit.clone(),
                exited: false,
            },
        );
        let size = spec.size.unwrap_or(TermSize { rows: 0, cols: 0 });
        let bytes = |text: &String| text.as_bytes().to_vec();
        let run = RunSpec {
            tty: spec.tty,
            stdin_open: true,
            rows: size.rows,
            cols: size.cols,
            argv: spec.argv.iter().map(bytes).collect(),
            set: spec.env.iter().map(bytes).collect(),
            unset: spec.unset.iter().map(bytes).collect(),
            cwd: spec.cwd.as_ref().map(bytes).unwrap_or_default(),
        };
        self.send(id, &ToHelper::Run(run));
        match started.await {
            Ok(Ok(_pid)) => {}
            Ok(Err(message)) if !message.is_empty() => return Err(RunError::Failed(message)),
            _ => return Err(RunError::Lost),
        }
        let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(4);
        tokio::spawn(pump_stdin(self.frames.clone(), id, stdin_rx, credit));
        let output = Output {
            conn: self.clone(),
            id,
            chunks: output_rx,
            ended: false,
        };
        Ok(Session {
            output: Box::pin(output.map(Ok)),
            input: Box::pin(Input {
                tx: PollSender::new(stdin_tx),
            }),
            process: Arc::new(Command {
                conn: self.clone(),
                id,
                exit,
            }),
        })
    }
}

/// A file call's answers; dropped, the call is forgotten.
pub struct Answers {
    id: u32,
    rx: mpsc::UnboundedReceiver<FromHelper>,
    calls: Calls,
}

impl Answers {
    /// The next answer; `None` once the call has ended or the helper is gone.
    pub async fn next(&mut self) -> Option<FromHelper> {
        self.rx.recv().await
    }
}

impl Drop for Answers {
    fn drop(&mut self) {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}

/// One whole frame off the front of `buffer`, if it holds one.
fn next_frame(buffer: &mut BytesMut) -> Result<Option<Frame>, String> {
    match Frame::parse(buffer) {
        Ok(Some((frame, used))) => {
            buffer.advance(used);
            Ok(Some(frame))
        }
        Ok(None) => Ok(None),
        Err(err) => Err(format!("the helper's stream is broken: {err}")),
    }
}

/// Hands one frame to its command or file call.
fn route(
    slots: &Slots,
    calls: &Calls,
    frames: &mpsc::UnboundedSender<Vec<u8>>,
    frame: &Frame,
    log: &Log,
) {
    let message = match FromHelper::decode(frame) {
        Ok(message) => message,
        Err(err) => {
            log.debug(&format!("helper: a frame dcx cannot read: {err}"));
            return;
        }
    };
    {
        // A file call's answers go to its caller. It ends with FS_END or FS_ERR, or an ERROR
        // (a call the helper could not use: its caller falls back); a stat or write ends with
        // its FS_STAT, a read's FS_STAT comes first (the caller drops the channel at its end).
        let mut calls = calls.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(answers) = calls.get(&frame.id) {
            let last = matches!(
                message,
                FromHelper::FsEnd | FromHelper::FsErr { .. } | FromHelper::Error(_)
            );
            let _ = answers.send(message);
            if last {
                calls.remove(&frame.id);
            }
            return;
        }
    }
    let mut slots = slots.lock().unwrap_or_else(|e| e.into_inner());
    let Some(slot) = slots.get_mut(&frame.id) else {
        if let FromHelper::Stdout(bytes) | FromHelper::Stderr(bytes) = &message {
            // Output of a command nobody waits for any more: keep its credit flowing.
            let _ = frames.send(ToHelper::OutputAck(bytes.len() as u32).encode(frame.id));
        }
        return;
    };
    match message {
        FromHelper::Started { pid } => {
            if let Some(started) = slot.started.take() {
                let _ = started.send(Ok(pid));
            }
        }
        FromHelper::Failed { message, .. } => {
            if let Some(started) = slot.started.take() {
                let reason = if message.is_empty() {
                    "the command did not start".to_owned()
                } else {
                    message
                };
                let _ = started.send(Err(reason));
            }
            slots.remove(&frame.id);
        }
        FromHelper::Stdout(bytes) => {
            if let Some(output) = &slot.output {
                let _ = output.send(Chunk::Stdout(Bytes::from(bytes)));
            }
        }
        FromHelper::Stderr(bytes) => {
            if let Some(output) = &slot.output {
                let _ = output.send(Chunk::Stderr(Bytes::from(bytes)));
            }
        }
        FromHelper::Exited(exit) => {
            slot.exited = true;
            slot.exit.send_replace(Some(match exit {
                Exit::Code(code) => ExitStatus::Code(i64::from(code)),
                Exit::Signal(signal) => ExitStatus::Signal(signal),
            }));
            if slot.output.is_none() {
                slots.remove(&frame.id);
            }
        }
        FromHelper::OutputEnd => {
            slot.output = None;
            if slot.exited {
                slots.remove(&frame.id);
            }
        }
        FromHelper::StdinAck(bytes) => slot.credit.add_permits(bytes as usize),
        FromHelper::Error(message) => log.debug(&format!("helper: {message}")),
        // Hello comes once, first; file call answers were routed above.
        FromHelper::Hello { .. }
        | FromHelper::FsStat(_)
        | FromHelper::FsEntries(_)
        | FromHelper::FsData(_)
        | FromHelper::FsEnd
        | FromHelper::FsErr { .. } => {}
    }
}

/// Sends a command's stdin as its credit allows; its end is the command's stdin EOF.
async fn pump_stdin(
    frames: mpsc::UnboundedSender<Vec<u8>>,
    id: u32,
    mut chunks: mpsc::Receiver<Bytes>,
    credit: Arc<Semaphore>,
) {
    while let Some(mut chunk) = chunks.recv().await {
        while !chunk.is_empty() {
            let take = chunk.len().min(STDIN_CHUNK);
            let Ok(permits) = credit.acquire_many(take as u32).await else {
                return;
            };
            permits.forget();
            let part = chunk.split_to(take);
            if frames
                .send(ToHelper::Stdin(part.to_vec()).encode(id))
                .is_err()
            {
                return;
            }
        }
    }
    let _ = frames.send(ToHelper::StdinEof.encode(id));
}

/// A command's output, acknowledged as it is taken; dropped early, the command is detached.
struct Output {
    conn: Arc<Conn>,
    id: u32,
    chunks: mpsc::UnboundedReceiver<Chunk>,
    ended: bool,
}

impl Stream for Output {
    type Item = Chunk;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        match self.chunks.poll_recv(cx) {
            Poll::Ready(Some(chunk)) => {
                let len = match &chunk {
                    Chunk::Stdout(bytes) | Chunk::Stderr(bytes) => bytes.len(),
                };
                let id = self.id;
                self.conn.send(id, &ToHelper::OutputAck(len as u32));
                Poll::Ready(Some(chunk))
            }
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.ended {
            // Background children may still write: the helper reads it and lets it go.
            self.conn.send(self.id, &ToHelper::Detach);
            if let Some(slot) = self
                .conn
                .slots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&self.id)
            {
                slot.output = None;
            }
        }
    }
}

/// A command's stdin: chunks to its pump.
struct Input {
    tx: PollSender<Bytes>,
}

impl tokio::io::AsyncWrite for Input {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.tx.poll_reserve(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => {
                return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
            }
            Poll::Ready(Ok(())) => {}
        }
        match self.tx.send_item(Bytes::copy_from_slice(bytes)) {
            Ok(()) => Poll::Ready(Ok(bytes.len())),
            Err(_) => Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.tx.close();
        Poll::Ready(Ok(()))
    }
}

/// A command's process, as the relay waits for, signals and resizes it.
struct Command {
    conn: Arc<Conn>,
    id: u32,
    exit: watch::Receiver<Option<ExitStatus>>,
}

#[async_trait]
impl Process for Command {
    async fn wait(&self) -> Result<ExitStatus, RuntimeError> {
        let mut exit = self.exit.clone();
        let status = exit.wait_for(Option::is_some).await.map(|status| *status);
        Ok(status
            .ok()
            .flatten()
            .unwrap_or(ExitStatus::Signal(libc::SIGKILL)))
    }

    async fn resize(&self, size: TermSize) -> Result<(), RuntimeError> {
        self.conn.send(
            self.id,
            &ToHelper::Resize {
                rows: size.rows,
                cols: size.cols,
            },
        );
        Ok(())
    }

    async fn signal(&self, signal: i32, target: SignalTarget) -> Result<(), SignalError> {
        if !self.conn.alive() {
            return Err(SignalError {
                signal,
                reason: "the helper is gone".into(),
            });
        }
        self.conn.send(
            self.id,
            &ToHelper::Signal {
                signo: u8::try_from(signal).unwrap_or(libc::SIGKILL as u8),
                group: target == SignalTarget::Group,
            },
        );
        Ok(())
    }

    fn exited(&self) -> ExitWatch {
        let mut exit = self.exit.clone();
        Box::pin(async move {
            let _ = exit.wait_for(Option::is_some).await;
        })
    }
}
