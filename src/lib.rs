//! dcx runs commands inside dev containers: a drop-in, exact-parity `devcontainer exec`.
//!
//! The pipeline runs in one direction and passes plain values forward:
//! `cli` (parse) → [`request::ExecRequest`] (validated) → `discovery` (which container) →
//! `exec` (plan, relay the I/O, exit status), with `runtime` the only module that talks to an
//! engine and `log` the only one that writes diagnostics.

pub mod cli;
pub mod config;
pub mod discovery;
pub mod env;
pub mod error;
pub mod exec;
pub mod log;
pub mod request;
pub mod runtime;

use std::ffi::OsString;

use crate::error::Error;
use crate::log::Log;
use crate::request::ExecRequest;

/// Runs dcx with the given argv (program name first) and returns the process exit code.
pub fn run(argv: impl IntoIterator<Item = OsString>) -> u8 {
    let parsed = match cli::parse(argv) {
        Ok(parsed) => parsed,
        Err(cli::ParseOutcome::Print(text)) => {
            print!("{text}");
            return 0;
        }
        Err(cli::ParseOutcome::Usage(err)) => {
            Log::default().error(&err.to_string());
            return Error::from(err).exit_code();
        }
    };
    match parsed.command {
        cli::Command::Exec(args) => exec_command(*args),
    }
}

fn exec_command(args: cli::ExecArgs) -> u8 {
    let log = Log::new(args.log_level.into(), args.log_format.into());
    let outcome = ExecRequest::try_from(args)
        .map_err(Error::from)
        .and_then(|request| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(Error::Io)?;
            let result = runtime.block_on(execute(&request, &log));
            // Never wait for the stdin reader: it may sit in a read on a terminal forever.
            runtime.shutdown_background();
            result
        });
    match outcome {
        Ok(status) => status.exit_code(),
        Err(err) => {
            log.error(&err.to_string());
            err.exit_code()
        }
    }
}

/// The exec pipeline: select the container, plan the run, run it.
async fn execute(request: &ExecRequest, log: &Log) -> Result<exec::ExitStatus, Error> {
    let engine = runtime::docker::Docker::connect(log).await?;
    let target = discovery::resolve(&engine, &request.selector).await?;
    log.debug(&format!(
        "Container: {} ({})",
        target.container.name, target.container.id
    ));
    let plan = exec::ExecPlan::new(
        request,
        &target.container,
        exec::terminal::HostTerminal::detect(),
    );
    Ok(exec::run(&engine, &target.container, &plan, log).await?)
}
