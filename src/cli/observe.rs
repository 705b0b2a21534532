//! `dcx logs` and `dcx top`: the selected dev container's own output and its processes.
//!
//! The container is found by the selector flags, as for `dcx exec` (no environment is
//! probed). Output goes to fd 1 and 2 as it comes; `logs -f` ends with Ctrl-C.

use std::io::Write;

use futures_util::StreamExt;

use super::args::{LogsArgs, RuntimeKind, Tail, TargetArgs};
use super::error::Error;
use super::request::target_request;
use super::{UsageError, report, stderr_log, stdio};
use crate::engine::{Chunk, Engine, EngineSettings, LogOptions, PrepareRequest};
use crate::log::{Format, Level, Log};

/// The engine and selection `target` names, from the current directory.
pub(super) fn request(target: TargetArgs) -> Result<(EngineSettings, PrepareRequest), Error> {
    let cwd = std::env::current_dir().map_err(Error::Io)?;
    Ok(target_request(target, &cwd)?)
}

pub(super) fn block_on<T>(
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Io)?
        .block_on(work)
}

pub(super) fn finish(log: &Log, outcome: Result<(), Error>) -> u8 {
    match outcome {
        Ok(()) => 0,
        Err(err) => report(log, &err, None),
    }
}

/// `dcx top`.
pub(super) fn top(target: TargetArgs) -> u8 {
    let log = stderr_log(Level::Info, Format::Text);
    let outcome = request(target).and_then(|(settings, request)| {
        block_on(async {
            let engine = Engine::connect(&settings, log.clone()).await?;
            let container = engine.locate(&request).await?;
            let processes = engine.top(&container).await?;
            let width = processes
                .iter()
                .map(|process| process.user.len())
                .max()
                .unwrap_or(0)
                .max(4);
            let mut table = format!(
                "{:<width$}  {:>7}  {:<8}  COMMAND\n",
                "USER", "PID", "STATE"
            );
            for process in &processes {
                let state = if process.zombie() {
                    format!("{} zombie", process.state)
                } else {
                    process.state.clone()
                };
                table.push_str(&format!(
                    "{:<width$}  {:>7}  {:<8}  {}\n",
                    process.user,
                    process.pid,
                    state,
                    one_line(&process.command)
                ));
            }
            stdio::print(&table);
            Ok(())
        })
    });
    finish(&log, outcome)
}

/// A process's command line as one table cell: every control character (the newlines of a
/// multi-line `sh -c` script, tabs) becomes a space, as `ps` and `docker top` show it.
fn one_line(command: &str) -> String {
    command
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `dcx logs`.
pub(super) fn logs(args: LogsArgs) -> u8 {
    let log = stderr_log(Level::Info, Format::Text);
    let now = std::time::SystemTime::now();
    let options = LogOptions {
        follow: args.follow,
        tail: match args.tail {
            None | Some(Tail::All) => None,
            Some(Tail::Lines(lines)) => Some(lines),
        },
        since: args.since.map(|time| time.at(now)),
        until: args.until.map(|time| time.at(now)),
        timestamps: args.timestamps,
    };
    if options.until.is_some() && args.target.runtime == RuntimeKind::Crun {
        let err = UsageError::exact(
            "crun keeps no timestamps of a container's output: --until needs Docker.",
        );
        return report(&log, &err.into(), None);
    }
    let outcome = request(args.target).and_then(|(settings, request)| {
        block_on(async {
            let engine = Engine::connect(&settings, log.clone()).await?;
            let container = engine.locate(&request).await?;
            let mut chunks = engine.logs(&container, &options)?;
            while let Some(chunk) = chunks.next().await {
                let written = match chunk.map_err(crate::engine::EngineError::from)? {
                    Chunk::Stdout(bytes) => write(&mut std::io::stdout().lock(), &bytes),
                    Chunk::Stderr(bytes) => write(&mut std::io::stderr().lock(), &bytes),
                };
                if written.is_err() {
                    // The reader went away (`dcx logs | head`): done.
                    break;
                }
            }
            Ok(())
        })
    });
    finish(&log, outcome)
}

fn write(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_multi_line_command_is_one_table_line() {
        assert_eq!(
            super::one_line("sh -c set -e\nwhile true; do\n\tsleep 1\ndone"),
            "sh -c set -e while true; do  sleep 1 done"
        );
    }
}
