//! Short helper execs whose output dcx reads itself, killed when they overrun.
//!
//! The passwd lookup, the env probe and its in-container cache, the home folder test, the Docker
//! file calls' `chown` and `mv`, the zombie count: each started through any [`Runtime`] without a
//! TTY, given its input (most often none) and then EOF, its output gathered up to [`LIMIT`], and
//! killed (with its process group) when it overruns its time or its caller stops waiting for it.
//! The probe's input is held open instead ([`capture_watched`]), for a watcher in the container
//! that ends it when dcx goes away in a way no code of dcx's can see (SIGKILL).

use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::ExitStatus;
use super::{Chunk, Container, ExecSpec, Runtime, RuntimeError, SignalTarget};

/// More output than this from a helper is cut (an environment is a few KiB).
pub const LIMIT: usize = 16 * 1024 * 1024;

/// What a helper process produced.
#[derive(Debug)]
pub struct Captured {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// More than [`LIMIT`] came on stdout or stderr; the rest was dropped.
    pub cut: bool,
}

/// How a helper run ended.
#[derive(Debug)]
pub enum Outcome {
    Finished(Captured),
    /// It ran longer than allowed and was killed; the output so far.
    TimedOut {
        stdout: Vec<u8>,
    },
}

/// The kills of helpers whose caller went away, until they are done (see [`settle`]).
static ABANDONED: std::sync::LazyLock<tokio_util::task::TaskTracker> =
    std::sync::LazyLock::new(tokio_util::task::TaskTracker::new);

/// Kills a helper's process group unless it was seen to the end: a caller that stops waiting
/// (dcx interrupted during the probe) leaves nothing running in the container.
struct KillUnlessDone {
    process: Option<std::sync::Arc<dyn super::Process>>,
}

impl Drop for KillUnlessDone {
    fn drop(&mut self) {
        let (Some(process), Ok(runtime)) =
            (self.process.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        ABANDONED.spawn_on(
            async move {
                let _ = process.signal(libc::SIGKILL, SignalTarget::Group).await;
            },
            &runtime,
        );
    }
}

/// Waits (up to `limit`) until the helpers abandoned so far are killed; a front end calls it
/// before exiting after an interruption.
pub async fn settle(limit: Duration) {
    ABANDONED.close();
    let _ = tokio::time::timeout(limit, ABANDONED.wait()).await;
}

/// Runs `spec` (without a TTY) with `stdin` as its input and gathers its output; kills it after
/// `limit`, or when the caller stops waiting for it.
pub async fn capture(
    runtime: &dyn Runtime,
    container: &Container,
    spec: &ExecSpec,
    stdin: &[u8],
    limit: Duration,
) -> Result<Outcome, RuntimeError> {
    run(runtime, container, spec, Some(stdin), limit).await
}

/// Runs `spec` as [`capture`] does, with its stdin held open (nothing written) until its output
/// has ended: a process in the container that watches its stdin sees it close when dcx goes
/// away, however dcx ends (the userEnvProbe's watcher is one).
pub async fn capture_watched(
    runtime: &dyn Runtime,
    container: &Container,
    spec: &ExecSpec,
    limit: Duration,
) -> Result<Outcome, RuntimeError> {
    run(runtime, container, spec, None, limit).await
}

/// `stdin`: written then closed; `None`: held open until the end.
async fn run(
    runtime: &dyn Runtime,
    container: &Container,
    spec: &ExecSpec,
    stdin: Option<&[u8]>,
    limit: Duration,
) -> Result<Outcome, RuntimeError> {
    let mut session = runtime.start(container, spec).await?;
    let mut guard = KillUnlessDone {
        process: Some(session.process.clone()),
    };
    if let Some(stdin) = stdin {
        if !stdin.is_empty() {
            let _ = session.input.write_all(stdin).await;
        }
        let _ = session.input.shutdown().await;
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut cut = false;
    let gather = async {
        while let Some(chunk) = session.output.next().await {
            let (buffer, bytes) = match chunk? {
                Chunk::Stdout(bytes) => (&mut stdout, bytes),
                Chunk::Stderr(bytes) => (&mut stderr, bytes),
            };
            let room = LIMIT.saturating_sub(buffer.len());
            cut |= bytes.len() > room;
            buffer.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        Ok::<(), RuntimeError>(())
    };
    match tokio::time::timeout(limit, gather).await {
        Ok(gathered) => {
            gathered?;
            let status = session.process.wait().await?;
            guard.process = None;
            Ok(Outcome::Finished(Captured {
                status,
                stdout,
                stderr,
                cut,
            }))
        }
        Err(_) => {
            guard.process = None;
            let _ = session
                .process
                .signal(libc::SIGKILL, SignalTarget::Group)
                .await;
            Ok(Outcome::TimedOut { stdout })
        }
    }
}
