//! The relay loop through its own API, on the in-memory engine with in-memory I/O.

use std::task::{Context, Poll};

use super::*;
use crate::runtime::memory::{Buffer, Memory, Received};

/// A sink whose reader goes away after `room` bytes.
struct Closing {
    room: usize,
}

impl AsyncWrite for Closing {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.room < bytes.len() {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        self.room -= bytes.len();
        Poll::Ready(Ok(bytes.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// An input that never ends and never yields.
struct Endless;

impl AsyncRead for Endless {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Pending
    }
}

struct Run {
    engine: Memory,
    spec: ExecSpec,
    timeout: Option<Duration>,
    drain_limit: Option<Duration>,
    stdin: Option<Input>,
    stdout: Buffer,
    stderr: Buffer,
    sink: Option<Output>,
    controls: Vec<Control>,
}

impl Run {
    fn new(argv: &[&str]) -> Self {
        Self {
            engine: Memory::with_container("c"),
            spec: ExecSpec {
                argv: argv.iter().map(|word| (*word).to_owned()).collect(),
                ..ExecSpec::default()
            },
            timeout: None,
            drain_limit: None,
            stdin: None,
            stdout: Buffer::default(),
            stderr: Buffer::default(),
            sink: None,
            controls: Vec::new(),
        }
    }

    fn stdin(mut self, bytes: &'static [u8]) -> Self {
        self.stdin = Some(Box::pin(bytes));
        self
    }

    fn control(mut self, message: Control) -> Self {
        self.controls.push(message);
        self
    }

    async fn go(mut self) -> (Finished, Self) {
        let (tx, rx) = mpsc::channel(8);
        let controls = std::mem::take(&mut self.controls);
        let io = ExecIo {
            stdin: self.stdin.take(),
            stdout: self
                .sink
                .take()
                .unwrap_or_else(|| Box::pin(self.stdout.clone())),
            stderr: Box::pin(self.stderr.clone()),
            control: Some(rx),
            started: None,
        };
        let container = self.engine.containers[0].clone();
        let sender = tokio::spawn(async move {
            for message in controls {
                // Let the program start before each message.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = tx.send(message).await;
            }
            tx
        });
        let finished = run(
            &self.engine,
            &container,
            &self.spec,
            self.timeout,
            self.drain_limit,
            io,
            &Log::discard(),
        )
        .await
        .unwrap();
        drop(sender.await);
        (finished, self)
    }
}

/// [`run`] with no timeout, no drain limit and no log.
async fn run_untimed(
    runtime: &dyn Runtime,
    container: &Container,
    spec: &ExecSpec,
    io: ExecIo,
) -> Result<Finished, ExecError> {
    run(runtime, container, spec, None, None, io, &Log::discard()).await
}

fn exited(code: i64) -> Finished {
    Finished {
        status: ExitStatus::Code(code),
        end: End::Exited,
    }
}

#[tokio::test]
async fn separate_streams_and_the_exit_code() {
    let (finished, run) = Run::new(&["echo", "out", "err", "7"]).go().await;
    assert_eq!(finished, exited(7));
    assert_eq!(run.stdout.text(), "out");
    assert_eq!(run.stderr.text(), "err");
}

#[tokio::test]
async fn input_reaches_the_process_and_its_eof_too() {
    let (finished, run) = Run::new(&["cat"]).stdin(b"hello\0world").go().await;
    assert_eq!(finished, exited(0));
    assert_eq!(run.stdout.text(), "hello\0world");
    assert_eq!(
        run.engine.received(),
        [Received::Input(b"hello\0world".to_vec())]
    );
}

#[tokio::test]
async fn no_input_is_an_immediate_eof() {
    let (finished, run) = Run::new(&["cat"]).go().await;
    assert_eq!(finished, exited(0));
    assert_eq!(run.stdout.text(), "");
}

#[tokio::test]
async fn an_input_that_never_ends_does_not_hold_the_run() {
    let mut run = Run::new(&["echo", "done"]);
    run.stdin = Some(Box::pin(Endless));
    let (finished, run) = run.go().await;
    assert_eq!(finished, exited(0));
    assert_eq!(run.stdout.text(), "done");
}

#[tokio::test]
async fn a_terminal_stream_its_size_resizes_and_the_eof_character() {
    let mut run = Run::new(&["tty"])
        .stdin(b"partial")
        .control(Control::Resize(TermSize {
            rows: 30,
            cols: 100,
        }));
    run.spec.tty = true;
    run.spec.size = Some(TermSize { rows: 24, cols: 80 });
    // The resize comes before the input ends the program: input after a pause.
    let (tx, rx) = tokio::io::duplex(64);
    run.stdin = Some(Box::pin(rx));
    let writer = tokio::spawn(async move {
        let mut tx = tx;
        tokio::time::sleep(Duration::from_millis(200)).await;
        tx.write_all(b"partial").await.unwrap();
    });
    let (finished, run) = run.go().await;
    writer.await.unwrap();
    assert_eq!(finished, exited(0));
    assert_eq!(run.stdout.text(), "tty 24x80\r\ntty 30x100\r\n");
    // After a partial line the EOF character goes twice, as at a terminal.
    assert!(
        run.engine
            .received()
            .contains(&Received::Input(b"partial\x04\x04".to_vec())),
        "{:?}",
        run.engine.received()
    );
}

#[tokio::test]
async fn a_signal_reaches_the_process_group_and_its_status_is_the_result() {
    let (finished, run) = Run::new(&["sleep"])
        .control(Control::Signal(libc::SIGINT))
        .go()
        .await;
    assert_eq!(finished, exited(130));
    // The whole group, as a terminal's ^C reaches it (a pipeline's every process).
    assert_eq!(
        run.engine.received(),
        [Received::Signal(libc::SIGINT, SignalTarget::Group)]
    );
}

#[tokio::test]
async fn an_undeliverable_signal_ends_the_run_at_once() {
    let (finished, _) = Run::new(&["nosignal"])
        .control(Control::Signal(libc::SIGTERM))
        .go()
        .await;
    assert_eq!(
        finished,
        Finished {
            status: ExitStatus::Signal(libc::SIGTERM),
            end: End::Abandoned
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_signal_the_engine_never_delivers_ends_the_run_after_the_limit() {
    let (finished, _) = Run::new(&["stalled"])
        .control(Control::Signal(libc::SIGINT))
        .go()
        .await;
    assert_eq!(
        finished,
        Finished {
            status: ExitStatus::Signal(libc::SIGINT),
            end: End::Abandoned
        }
    );
}

#[tokio::test]
async fn a_second_signal_while_the_first_is_on_its_way_ends_the_run() {
    let (finished, _) = Run::new(&["stalled"])
        .control(Control::Signal(libc::SIGINT))
        .control(Control::Signal(libc::SIGTERM))
        .go()
        .await;
    assert_eq!(
        finished,
        Finished {
            status: ExitStatus::Signal(libc::SIGTERM),
            end: End::Abandoned
        }
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_signals_the_group_then_kills_it() {
    let (finished, run) = Run::new(&["stubborn"])
        .control(Control::Cancel {
            signal: libc::SIGTERM,
        })
        .go()
        .await;
    assert_eq!(
        finished,
        Finished {
            status: ExitStatus::Code(137),
            end: End::Cancelled
        }
    );
    assert_eq!(
        run.engine.received(),
        [
            Received::Signal(libc::SIGTERM, SignalTarget::Group),
            Received::Signal(libc::SIGKILL, SignalTarget::Group)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_terminates_the_group() {
    let mut run = Run::new(&["sleep"]);
    run.timeout = Some(Duration::from_secs(1));
    let started = Instant::now();
    let (finished, run) = run.go().await;
    assert_eq!(
        finished,
        Finished {
            status: ExitStatus::Code(143),
            end: End::TimedOut(Duration::from_secs(1))
        }
    );
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(
        run.engine.received(),
        [Received::Signal(libc::SIGTERM, SignalTarget::Group)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_process_that_outlives_sigkill_is_given_up_on() {
    let mut run = Run::new(&["deaf"]);
    run.timeout = Some(Duration::from_secs(1));
    let started = Instant::now();
    let (finished, _) = run.go().await;
    assert_eq!(
        finished,
        Finished {
            status: ExitStatus::Unknown,
            end: End::TimedOut(Duration::from_secs(1))
        }
    );
    assert_eq!(started.elapsed(), Duration::from_secs(1) + KILL_GRACE * 2);
}

#[tokio::test]
async fn an_endless_timeout_never_expires() {
    let mut run = Run::new(&["echo", "x"]);
    run.timeout = Some(Duration::MAX);
    let (finished, _) = run.go().await;
    assert_eq!(finished, exited(0));
}

#[tokio::test]
async fn a_reader_that_goes_away_ends_the_run_with_sigpipe() {
    let mut run = Run::new(&["yes"]);
    run.sink = Some(Box::pin(Closing { room: 1000 }));
    let (finished, run) = run.go().await;
    // The signal was sent; let the program take it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        finished,
        Finished {
            status: ExitStatus::Signal(libc::SIGPIPE),
            end: End::OutputClosed
        }
    );
    assert_eq!(
        run.engine.received(),
        [Received::Signal(libc::SIGPIPE, SignalTarget::Group)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_background_child_that_keeps_writing_holds_the_run_no_longer_than_the_drain_limit() {
    let mut run = Run::new(&["chatty"]);
    run.drain_limit = Some(Duration::from_millis(500));
    let started = tokio::time::Instant::now();
    let (finished, run) = run.go().await;
    assert_eq!(finished, exited(0));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(run.stdout.text().starts_with("hi"), "{}", run.stdout.text());
}

#[tokio::test(start_paused = true)]
async fn a_slow_reader_gets_all_the_output_the_process_wrote_before_it_exited() {
    let mut run = Run::new(&["burst"]);
    // Ten writes of 100 ms: the whole drain takes 1 s, five times the drain limit.
    run.drain_limit = Some(Duration::from_millis(200));
    let buffer = Buffer::default();
    run.sink = Some(Box::pin(Slow {
        out: buffer.clone(),
        nap: None,
    }));
    let (finished, _) = run.go().await;
    assert_eq!(finished, exited(0));
    assert_eq!(buffer.text(), "0123456789");
}

#[tokio::test(start_paused = true)]
async fn a_background_child_holding_the_output_does_not_hold_the_run() {
    let started = Instant::now();
    let (finished, run) = Run::new(&["background"]).go().await;
    assert_eq!(finished, exited(0));
    assert_eq!(run.stdout.text(), "hi");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_names_the_end_even_when_the_reader_goes_away_after_it() {
    let mut run = Run::new(&["late"]);
    run.timeout = Some(Duration::from_secs(1));
    run.sink = Some(Box::pin(Closing { room: 0 }));
    let (finished, _) = run.go().await;
    assert_eq!(finished.end, End::TimedOut(Duration::from_secs(1)));
}

#[tokio::test]
async fn a_closed_control_channel_changes_nothing() {
    let mut run = Run::new(&["echo", "fine"]);
    let (tx, rx) = mpsc::channel(1);
    drop(tx);
    let container = run.engine.containers[0].clone();
    let io = ExecIo {
        stdin: None,
        stdout: Box::pin(run.stdout.clone()),
        stderr: Box::pin(run.stderr.clone()),
        control: Some(rx),
        started: None,
    };
    let finished = run_untimed(&run.engine, &container, &run.spec, io)
        .await
        .unwrap();
    assert_eq!(finished, exited(0));
    assert_eq!(run.stdout.text(), "fine");
    run.controls.clear();
}

/// A sink that takes a tenth of a second per write.
struct Slow {
    out: Buffer,
    nap: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl AsyncWrite for Slow {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        use std::future::Future;
        let this = self.get_mut();
        let nap = this
            .nap
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(100))));
        if nap.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.nap = None;
        Pin::new(&mut this.out).poll_write(cx, bytes)
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(start_paused = true)]
async fn output_in_flight_at_the_exit_reaches_a_slow_reader_whole() {
    let mut run = Run::new(&["burst"]);
    let out = Buffer::default();
    run.sink = Some(Box::pin(Slow {
        out: out.clone(),
        nap: None,
    }));
    let (finished, _) = run.go().await;
    assert_eq!(finished, exited(0));
    // A second's worth of writes, well past the drain's silence: nothing was cut.
    assert_eq!(out.text(), "0123456789");
}

/// A sink whose reader never reads: every write waits forever.
struct Stuck;

impl AsyncWrite for Stuck {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Pending
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(start_paused = true)]
async fn a_forwarded_signal_ends_the_run_while_the_reader_stalls() {
    let mut run = Run::new(&["yes"]).control(Control::Signal(libc::SIGTERM));
    run.sink = Some(Box::pin(Stuck));
    let (finished, _) = tokio::time::timeout(Duration::from_secs(60), run.go())
        .await
        .expect("the run ended");
    assert_eq!(finished.status, ExitStatus::Code(143));
    assert_eq!(finished.end, End::Exited);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_ends_the_run_while_the_reader_stalls() {
    let mut run = Run::new(&["yes"]);
    run.timeout = Some(Duration::from_secs(1));
    run.sink = Some(Box::pin(Stuck));
    let (finished, _) = tokio::time::timeout(Duration::from_secs(60), run.go())
        .await
        .expect("the run ended");
    assert_eq!(finished.end, End::TimedOut(Duration::from_secs(1)));
}

/// An engine whose process has exited at once and whose output comes exactly [`DRAIN`] later:
/// when the drain's timer fires, the output is there too (a runtime starved that long sees
/// both at once).
struct Late;

struct Gone;

#[async_trait::async_trait]
impl crate::runtime::Process for Gone {
    async fn wait(&self) -> Result<ExitStatus, RuntimeError> {
        Ok(ExitStatus::Code(0))
    }
    async fn resize(&self, _: TermSize) -> Result<(), RuntimeError> {
        Ok(())
    }
    async fn signal(
        &self,
        _: i32,
        _: crate::runtime::SignalTarget,
    ) -> Result<(), crate::runtime::SignalError> {
        Ok(())
    }
    fn exited(&self) -> crate::runtime::ExitWatch {
        Box::pin(std::future::ready(()))
    }
}

#[async_trait::async_trait]
impl Runtime for Late {
    async fn inspect(&self, _: &str) -> Result<Container, RuntimeError> {
        Ok(Container::default())
    }
    async fn find_by_labels(&self, _: &[String]) -> Result<Option<Container>, RuntimeError> {
        Ok(None)
    }
    fn endpoint(&self) -> &str {
        "late"
    }
    fn name(&self) -> &'static str {
        "late"
    }
    fn start_hint(&self, _: &Container) -> String {
        String::new()
    }
    async fn start(
        &self,
        _: &Container,
        _: &ExecSpec,
    ) -> Result<crate::runtime::Session, RuntimeError> {
        let output = futures_util::stream::once(async {
            tokio::time::sleep(DRAIN).await;
            Ok(crate::runtime::Chunk::Stdout(bytes::Bytes::from_static(
                b"late\n",
            )))
        });
        Ok(crate::runtime::Session {
            output: Box::pin(output),
            input: Box::pin(tokio::io::sink()),
            process: std::sync::Arc::new(Gone),
        })
    }
}

#[tokio::test(start_paused = true)]
async fn output_there_when_the_drain_ends_is_not_lost() {
    // The drain's timer and the output are ready at the same instant: each time, the output.
    for _ in 0..32 {
        let out = Buffer::default();
        let io = ExecIo::stdout_to(out.clone());
        let finished = run_untimed(&Late, &Container::default(), &ExecSpec::default(), io)
            .await
            .unwrap();
        assert_eq!(finished.status, ExitStatus::Code(0));
        assert_eq!(out.text(), "late\n");
    }
}
