//! An in-memory [`Runtime`] for unit tests: plain containers, scripted programs, in-memory pipes.
//!
//! It serves the tests of everything above [`Runtime`]: containers are plain values, and an exec
//! runs one of a few scripted programs (chosen by `argv[0]`) as a tokio task on in-memory pipes,
//! reacting to signals and resizes as a process would. Every exec's argv and what the programs
//! receive are recorded for the tests to check.
//!
//! Programs: `echo OUT [ERR [CODE]]`; `cat` (stdin to stdout); `sleep` (until a signal);
//! `background` (prints `hi` and exits, leaving a child that holds the output open); `chatty`
//! (the same, its child writing `y` lines every 50 ms); `burst` (ten
//! chunks, then the exit); `stubborn` (ignores everything but SIGKILL); `late` (ignores the first
//! signal, then writes until the next); `deaf` (never ends); `yes` (`y` lines until a signal);
//! `tty` (prints its terminal size, again on each resize, ends at `^D`); `nosignal` (a process no
//! signal can reach); `stalled` (never ends, nor does a signal's delivery, as with a stalled
//! daemon); `/bin/sh` running the passwd lookup (answers from [`Memory::passwd`]);
//! `/bin/bash -lic`, the probe (its environment: `PATH` and the `export NAME=value` lines of the
//! root filesystem's `/etc/profile`); any other shell `-c SCRIPT NAME ARGS…` (the agent's wrapper)
//! runs ARGS, or without them the words of its `__DCX_CMD`. Anything else prints `not found` and
//! exits 127.
//!
//! Files live in a container's `rootfs`, a host folder the test makes, read and written as crun's
//! are; `top` and `logs` give nothing.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, DuplexStream};
use tokio::sync::{mpsc, watch};

use super::{
    ArchiveStream, Chunk, Container, ExecSpec, ExitStatus, ExitWatch, Owner, PathStat, Process,
    Runtime, RuntimeError, Session, SignalError, SignalTarget, TermSize,
};

/// An output sink a test can read afterwards.
#[derive(Clone, Default)]
pub struct Buffer(pub Arc<Mutex<Vec<u8>>>);

impl Buffer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl tokio::io::AsyncWrite for Buffer {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        bytes: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        std::task::Poll::Ready(Ok(bytes.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// What a program was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Signal(i32, SignalTarget),
    Resize(TermSize),
    Input(Vec<u8>),
}

/// The in-memory engine.
#[derive(Default)]
pub struct Memory {
    pub containers: Vec<Container>,
    /// The containers' `/etc/passwd`.
    pub passwd: String,
    /// Every exec's argv, in start order.
    pub started: Arc<Mutex<Vec<Vec<String>>>>,
    /// What the programs received, in order.
    pub received: Arc<Mutex<Vec<Received>>>,
    /// When set, it takes forecasts as a remote engine would ([`Runtime::foresee`]), and
    /// keeps them here.
    pub forecasts: Option<Arc<Mutex<Vec<super::Forecast>>>>,
}

impl Memory {
    /// One running container with this id.
    pub fn with_container(id: &str) -> Self {
        Self {
            containers: vec![Container {
                id: id.into(),
                name: id.into(),
                running: true,
                status: "running".into(),
                ..Container::default()
            }],
            passwd: "root:x:0:0:root:/root:/bin/sh\n".into(),
            ..Self::default()
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

enum Message {
    Signal(i32, SignalTarget),
    Resize(TermSize),
}

struct MemoryProcess {
    exit: watch::Receiver<Option<ExitStatus>>,
    messages: mpsc::UnboundedSender<Message>,
    signalable: Reach,
}

/// Whether a signal gets to the process.
#[derive(Clone, Copy)]
enum Reach {
    Yes,
    /// Refused at once (`nosignal`).
    Never,
    /// The delivery never ends (`stalled`: a daemon that stopped answering).
    Stalled,
}

#[async_trait]
impl Process for MemoryProcess {
    async fn wait(&self) -> Result<ExitStatus, RuntimeError> {
        let mut exit = self.exit.clone();
        let status = *exit
            .wait_for(Option::is_some)
            .await
            .map_err(|_| RuntimeError::Spawn {
                program: "memory".into(),
                reason: "the program vanished".into(),
            })?;
        Ok(status.unwrap_or(ExitStatus::Unknown))
    }

    async fn resize(&self, size: TermSize) -> Result<(), RuntimeError> {
        let _ = self.messages.send(Message::Resize(size));
        Ok(())
    }

    fn exited(&self) -> ExitWatch {
        let mut exit = self.exit.clone();
        Box::pin(async move {
            let _ = exit.wait_for(Option::is_some).await;
        })
    }

    async fn signal(&self, signal: i32, target: SignalTarget) -> Result<(), SignalError> {
        match self.signalable {
            Reach::Never => {
                return Err(SignalError {
                    signal,
                    reason: "no way to reach the process".into(),
                });
            }
            // An engine that never answers (a stalled daemon).
            Reach::Stalled => std::future::pending::<()>().await,
            Reach::Yes => {}
        }
        let _ = self.messages.send(Message::Signal(signal, target));
        Ok(())
    }
}

/// Waits for the next message, recording it.
async fn next(
    messages: &mut mpsc::UnboundedReceiver<Message>,
    received: &Mutex<Vec<Received>>,
) -> Option<Message> {
    let message = messages.recv().await?;
    received.lock().unwrap().push(match &message {
        Message::Signal(signal, target) => Received::Signal(*signal, *target),
        Message::Resize(size) => Received::Resize(*size),
    });
    Some(message)
}

/// The program's side of an exec.
struct Program {
    spec: ExecSpec,
    input: DuplexStream,
    output: mpsc::Sender<Result<Chunk, RuntimeError>>,
    messages: mpsc::UnboundedReceiver<Message>,
    received: Arc<Mutex<Vec<Received>>>,
    passwd: String,
    rootfs: Option<std::path::PathBuf>,
}

impl Program {
    async fn out(&self, text: impl Into<Bytes>) -> bool {
        self.output
            .send(Ok(Chunk::Stdout(text.into())))
            .await
            .is_ok()
    }

    async fn err(&self, text: impl Into<Bytes>) -> bool {
        self.output
            .send(Ok(Chunk::Stderr(text.into())))
            .await
            .is_ok()
    }

    fn record(&self, what: Received) {
        self.received.lock().unwrap().push(what);
    }

    /// Waits for the next message, recording it.
    async fn next(&mut self) -> Option<Message> {
        next(&mut self.messages, &self.received).await
    }

    /// Runs until a signal it does not ignore; returns the status it dies with.
    async fn until_signal(&mut self, ignores: &[i32]) -> ExitStatus {
        loop {
            match self.next().await {
                Some(Message::Signal(signal, _)) if !ignores.contains(&signal) => {
                    return ExitStatus::Code(128 + i64::from(signal));
                }
                Some(_) => {}
                None => std::future::pending::<()>().await,
            }
        }
    }

    async fn run(mut self) -> ExitStatus {
        let argv = self.spec.argv.clone();
        let arg = |n: usize| argv.get(n).cloned().unwrap_or_default();
        match argv.first().map(String::as_str) {
            Some("echo") => {
                self.out(arg(1)).await;
                if argv.len() > 2 {
                    self.err(arg(2)).await;
                }
                ExitStatus::Code(arg(3).parse().unwrap_or(0))
            }
            Some("cat") => {
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                loop {
                    match self.input.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            seen.extend_from_slice(&buf[..n]);
                            if !self.out(buf[..n].to_vec()).await {
                                break;
                            }
                        }
                    }
                }
                self.record(Received::Input(seen));
                ExitStatus::Code(0)
            }
            Some("sleep") => self.until_signal(&[]).await,
            Some("burst") => {
                // Ten chunks, then the exit: what is in flight must all arrive.
                for n in 0..10 {
                    self.out(format!("{n}")).await;
                }
                ExitStatus::Code(0)
            }
            Some("background") => {
                // A child that keeps the output open long after the process has exited.
                let held = self.output.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                    drop(held);
                });
                self.out("hi").await;
                ExitStatus::Code(0)
            }
            Some("chatty") => {
                // A child that keeps writing long after the process has exited.
                let held = self.output.clone();
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        if held
                            .send(Ok(Chunk::Stdout(Bytes::from_static(b"y\n"))))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                });
                self.out("hi").await;
                ExitStatus::Code(0)
            }
            Some("stubborn") => self.until_signal(&[libc::SIGTERM, libc::SIGINT]).await,
            Some("late") => {
                // Ignores the first signal, then writes until the next one.
                self.next().await;
                let output = self.output.clone();
                loop {
                    tokio::select! {
                        message = self.next() => {
                            if let Some(Message::Signal(signal, _)) = message {
                                break ExitStatus::Code(128 + i64::from(signal));
                            }
                        }
                        _ = output.send(Ok(Chunk::Stdout(Bytes::from_static(b"y\n")))) => {}
                    }
                }
            }
            Some("deaf") => {
                while self.next().await.is_some() {}
                std::future::pending().await
            }
            Some("nosignal" | "stalled") => std::future::pending().await,
            Some("yes") => {
                let output = self.output.clone();
                let mut open = true;
                loop {
                    tokio::select! {
                        message = self.next() => {
                            if let Some(Message::Signal(signal, _)) = message {
                                break ExitStatus::Code(128 + i64::from(signal));
                            }
                        }
                        sent = output.send(Ok(Chunk::Stdout(Bytes::from_static(b"y\n")))), if open => {
                            open = sent.is_ok();
                        }
                    }
                }
            }
            Some("tty") => {
                let size = self.spec.size.unwrap_or(TermSize { rows: 0, cols: 0 });
                self.out(format!("tty {}x{}\r\n", size.rows, size.cols))
                    .await;
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                loop {
                    tokio::select! {
                        read = self.input.read(&mut buf) => match read {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                seen.extend_from_slice(&buf[..n]);
                                if buf[..n].contains(&0x04) {
                                    break;
                                }
                            }
                        },
                        message = next(&mut self.messages, &self.received) => match message {
                            Some(Message::Resize(size)) => {
                                self.out(format!("tty {}x{}\r\n", size.rows, size.cols)).await;
                            }
                            Some(Message::Signal(signal, _)) => {
                                return ExitStatus::Code(128 + i64::from(signal));
                            }
                            None => {}
                        },
                    }
                }
                self.record(Received::Input(seen));
                ExitStatus::Code(0)
            }
            Some("/bin/sh") if arg(2).contains("getent passwd") => {
                let user = argv.last().cloned().unwrap_or_default();
                let line = self
                    .passwd
                    .lines()
                    .find(|line| {
                        let fields: Vec<&str> = line.split(':').collect();
                        fields.first() == Some(&user.as_str())
                            || fields.get(2) == Some(&user.as_str())
                    })
                    .map(|line| format!("{line}\n"))
                    .unwrap_or_default();
                self.out(line).await;
                ExitStatus::Code(0)
            }
            Some("/bin/bash") if arg(1) == "-lic" => {
                // The probe: `echo -n MARKER; cat /proc/self/environ; echo -n MARKER`.
                let marker = arg(2)
                    .strip_prefix("echo -n ")
                    .and_then(|rest| rest.split(';').next())
                    .unwrap_or_default()
                    .to_owned();
                let profile = self
                    .rootfs
                    .as_ref()
                    .and_then(|root| std::fs::read_to_string(root.join("etc/profile")).ok())
                    .unwrap_or_default();
                let mut environ = String::from("PATH=/bin\0");
                for line in profile.lines() {
                    if let Some(export) = line.strip_prefix("export ") {
                        environ.push_str(export);
                        environ.push('\0');
                    }
                }
                self.out(format!("{marker}{environ}{marker}")).await;
                ExitStatus::Code(0)
            }
            Some("test") if arg(1) == "-w" => {
                // Whether a user may write somewhere: the fake has no users, so wherever
                // there is something.
                let there = self
                    .rootfs
                    .as_ref()
                    .is_some_and(|root| root.join(arg(2).trim_start_matches('/')).exists());
                ExitStatus::Code(if there { 0 } else { 1 })
            }
            Some(_) if arg(1) == "-c" && argv.len() >= 4 => {
                // A shell running a script (the agent's wrapper): its arguments, as
                // `exec "$@"` would run them, else the words of `__DCX_CMD`.
                let words: Vec<String> = match argv.get(4..) {
                    Some(rest) if !rest.is_empty() => rest.to_vec(),
                    _ => self
                        .spec
                        .env
                        .iter()
                        .find_map(|entry| entry.strip_prefix("__DCX_CMD="))
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect(),
                };
                if words.is_empty() {
                    return ExitStatus::Code(0);
                }
                self.spec.argv = words;
                Box::pin(self.run()).await
            }
            _ => {
                self.err(format!("{}: not found\n", arg(0))).await;
                ExitStatus::Code(127)
            }
        }
    }
}

#[async_trait]
impl Runtime for Memory {
    async fn stat_path(&self, container: &Container, path: &str) -> Result<PathStat, RuntimeError> {
        super::hostfs::stat_path(container, path).await
    }

    async fn read_archive(
        &self,
        container: &Container,
        path: &str,
    ) -> Result<ArchiveStream, RuntimeError> {
        super::hostfs::read_archive(container, path).await
    }

    async fn write_archive(
        &self,
        container: &Container,
        dir: &str,
        tar: ArchiveStream,
        owner: Option<Owner>,
    ) -> Result<(), RuntimeError> {
        super::hostfs::write_archive(container, dir, tar, owner).await
    }

    async fn list_dir(
        &self,
        container: &Container,
        path: &str,
        limit: usize,
    ) -> Result<Option<Vec<PathStat>>, RuntimeError> {
        super::hostfs::list_dir(container, path, limit).await
    }

    async fn rename_path(
        &self,
        container: &Container,
        from: &str,
        to: &str,
    ) -> Result<(), RuntimeError> {
        super::hostfs::rename_path(container, from, to).await
    }

    fn host_root(&self, container: &Container) -> Option<std::path::PathBuf> {
        // Taking forecasts, it plays a remote engine: no view of the root from the host.
        if self.forecasts.is_some() {
            return None;
        }
        super::hostfs::root_dir(container).ok()
    }

    async fn inspect(&self, id: &str) -> Result<Container, RuntimeError> {
        self.containers
            .iter()
            .find(|c| c.id == id || c.name == id)
            .cloned()
            .ok_or_else(|| RuntimeError::NoSuchContainer(id.into()))
    }

    async fn find_by_labels(&self, labels: &[String]) -> Result<Option<Container>, RuntimeError> {
        Ok(self
            .containers
            .iter()
            .find(|c| {
                labels.iter().all(|label| {
                    label.split_once('=').is_some_and(|(name, value)| {
                        c.labels.get(name).map(String::as_str) == Some(value)
                    })
                })
            })
            .cloned())
    }

    fn endpoint(&self) -> &str {
        "memory"
    }

    fn foresees(&self) -> bool {
        self.forecasts.is_some()
    }

    fn foresee(&self, forecast: super::Forecast) {
        if let Some(forecasts) = &self.forecasts {
            forecasts.lock().unwrap().push(forecast);
        }
    }

    fn name(&self) -> &'static str {
        "memory"
    }

    fn start_hint(&self, _container: &Container) -> String {
        "Start it.".into()
    }

    async fn top(&self, _container: &Container) -> Result<Vec<super::ProcessInfo>, RuntimeError> {
        Ok(Vec::new())
    }

    fn logs(
        &self,
        _container: &Container,
        _options: &super::LogOptions,
    ) -> Result<super::OutputStream, RuntimeError> {
        Ok(Box::pin(futures_util::stream::empty()))
    }

    async fn start(&self, container: &Container, spec: &ExecSpec) -> Result<Session, RuntimeError> {
        if !container.running {
            return Err(RuntimeError::NotRunning(container.name.clone()));
        }
        self.started.lock().unwrap().push(spec.argv.clone());
        let (input, program_input) = tokio::io::duplex(64 * 1024);
        let (output_tx, output_rx) = mpsc::channel(8);
        let (messages_tx, messages_rx) = mpsc::unbounded_channel();
        let (exit_tx, exit_rx) = watch::channel(None);
        let program = Program {
            spec: spec.clone(),
            input: program_input,
            output: output_tx,
            messages: messages_rx,
            received: self.received.clone(),
            passwd: self.passwd.clone(),
            rootfs: container.rootfs.clone(),
        };
        let signalable = match spec.argv.first().map(String::as_str) {
            Some("nosignal") => Reach::Never,
            Some("stalled") => Reach::Stalled,
            _ => Reach::Yes,
        };
        tokio::spawn(async move {
            let status = program.run().await;
            let _ = exit_tx.send(Some(status));
        });
        let output = futures_util::stream::unfold(output_rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        });
        Ok(Session {
            output: Box::pin(output),
            input: Box::pin(input),
            process: std::sync::Arc::new(MemoryProcess {
                exit: exit_rx,
                messages: messages_tx,
                signalable,
            }),
        })
    }
}
