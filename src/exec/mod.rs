//! Running the command: the [`ExecPlan`] (what to start, as whom, where, with which env and
//! terminal), and [`run`], which starts it through the [`Runtime`], relays stdin and output, and
//! returns the process's [`ExitStatus`].
//!
//! The relay rules (non-PTY path):
//! * stdout and stderr stay separate and byte-exact; in `--log-format json` the output becomes
//!   `raw` events on stderr, as the reference writes them, never splitting a UTF-8 sequence;
//! * stdin is copied byte-exact and its EOF is passed on (the exec's input is shut down), so
//!   `cat` ends; it is read on a thread of its own, so a stdin that never ends (a terminal)
//!   never holds dcx up once the command has finished;
//! * nothing is gathered in memory: chunks flow through a small bounded channel;
//! * when the output stream has ended the exit status is read from the engine.

mod output;
mod status;
mod stdin;

pub use status::{ExitStatus, signal_number};

use futures_util::StreamExt;

use crate::log::Log;
use crate::request::ExecRequest;
use crate::runtime::{Chunk, Container, ExecSpec, Runtime, RuntimeError};

/// What to run, fully decided.
#[derive(Debug, Clone)]
pub struct ExecPlan {
    pub spec: ExecSpec,
}

impl ExecPlan {
    pub fn new(request: &ExecRequest, _container: &Container) -> Self {
        Self {
            spec: ExecSpec {
                argv: request.command.clone(),
                ..ExecSpec::default()
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("cannot write the command's output: {0}")]
    Output(std::io::Error),
}

/// Runs the plan in the container and returns how the process ended.
pub async fn run(
    runtime: &dyn Runtime,
    container: &Container,
    plan: &ExecPlan,
    log: &Log,
) -> Result<ExitStatus, ExecError> {
    log.debug(&format!("Run in container: {}", plan.spec.argv.join(" ")));
    let mut session = runtime.start(container, &plan.spec).await?;
    let pump = tokio::spawn(stdin::forward(stdin::spawn_reader(), session.input));
    let mut sink = output::Sink::new(log);
    let mut broken_pipe = false;
    while let Some(chunk) = session.output.next().await {
        let written = match chunk? {
            Chunk::Stdout(bytes) => sink.stdout(&bytes),
            Chunk::Stderr(bytes) => sink.stderr(&bytes),
        };
        match written {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
                // Our reader went away (`dcx exec … | head`). Let the connection close so the
                // process sees its output pipe closed, and end as a local process would.
                broken_pipe = true;
                break;
            }
            Err(err) => return Err(ExecError::Output(err)),
        }
    }
    pump.abort();
    if broken_pipe {
        log.debug("stdout closed by its reader; ending with SIGPIPE's status");
        return Ok(ExitStatus::Signal(libc::SIGPIPE));
    }
    sink.finish().map_err(ExecError::Output)?;
    let status = session.process.wait().await?;
    log.debug(&format!("Exit status: {status:?}"));
    Ok(status)
}
