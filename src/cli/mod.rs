//! The CLI front end: dcx's argv, terminal, signals, standard streams and exit codes.
//!
//! argv ([`args`], clap) becomes a validated request ([`request`]: every subcommand's selector
//! flags become one [`crate::engine::TargetSpec`]) before anything touches an engine. Each
//! subcommand has its module (`exec`, `cp`, `observe` for `logs` and `top`; `serve` and `mcp`
//! start [`crate::agent`] and [`crate::mcp`]), and `dropin` runs dcx named `devcontainer`.
//! Around them: the host terminal and raw mode ([`terminal`]), OS signals as control messages
//! (`signals`), fd 0, 1 and 2 as the engine's I/O (`stdio`), errors, hints and exit codes
//! ([`Error`]). The work itself is the engine's ([`crate::engine`]).

pub mod args;
mod copy;
mod dropin;
mod error;
mod exec;
mod observe;
pub mod request;
mod signals;
mod stdio;
pub mod terminal;

use std::ffi::OsString;
use std::sync::Arc;

pub use args::{ParseOutcome, UsageError, parse};
pub use error::{Error, TIMEOUT_EXIT};

use crate::log::{Format, Level, Log};

/// Runs dcx with the given argv (program name first) and returns the process exit code.
pub fn run(argv: impl IntoIterator<Item = OsString>) -> u8 {
    let argv: Vec<OsString> = argv.into_iter().collect();
    if dropin::invoked_as_devcontainer(&argv) && argv.get(1).is_none_or(|word| word != "exec") {
        let log = stderr_log(Level::Info, Format::Text);
        let failure = dropin::pass_through(&argv);
        log.error(&failure.to_string());
        if let Some(hint) = failure.hint() {
            log.hint(&hint);
        }
        return failure.exit_code();
    }
    let parsed = match args::parse(argv) {
        Ok(parsed) => parsed,
        Err(ParseOutcome::Print(text)) => {
            stdio::print(&text);
            return 0;
        }
        Err(ParseOutcome::Usage(err)) => {
            return report(&stderr_log(Level::Info, Format::Text), &err.into(), None);
        }
    };
    match parsed.command {
        args::Command::Exec(exec_args) => exec::command(*exec_args),
        args::Command::Serve(serve_args) => serve(serve_args),
        args::Command::Mcp(mcp_args) => mcp(mcp_args),
        args::Command::Logs(logs_args) => observe::logs(logs_args),
        args::Command::Top(target) => observe::top(target),
        args::Command::Cp(cp_args) => copy::command(cp_args),
        args::Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut <args::Cli as clap::CommandFactory>::command(),
                "dcx",
                &mut script,
            );
            stdio::print(&String::from_utf8_lossy(&script));
            0
        }
        args::Command::Man => {
            let mut page = Vec::new();
            let rendered = clap_mangen::Man::new(<args::Cli as clap::CommandFactory>::command())
                .render(&mut page);
            match rendered {
                Ok(()) => {
                    stdio::print(&String::from_utf8_lossy(&page));
                    0
                }
                Err(err) => {
                    stderr_log(Level::Info, Format::Text).error(&err.to_string());
                    1
                }
            }
        }
    }
}

/// Reports a failure (`error:` and its `hint:` lines) and returns its exit code.
fn report(log: &Log, err: &Error, request: Option<&request::ExecRequest>) -> u8 {
    log.error(&one_line(&err.to_string()));
    for hint in err.hints(request) {
        log.hint(&one_line(&hint));
    }
    err.exit_code()
}

/// A message as one line: control characters the user's input carried into it (a newline in
/// a container id) are shown escaped. A usage error's own layout (clap's blank lines, tips) is
/// kept.
fn one_line(text: &str) -> String {
    if text.contains("\n\n") {
        return text.to_owned();
    }
    text.chars()
        .flat_map(|c| match c {
            c if c.is_control() => c.escape_default().collect::<Vec<_>>(),
            c => vec![c],
        })
        .collect()
}

/// The log the CLI installs: diagnostics on its own stderr, with passing status lines for slow
/// steps when stderr is a terminal (text format only).
fn stderr_log(level: Level, format: Format) -> Log {
    use std::io::IsTerminal;
    let statuses = format == Format::Text && std::io::stderr().is_terminal();
    Log::new(level, format, Arc::new(stdio::StderrSink::new(statuses)))
}

/// `dcx serve`: the agent service until SIGTERM or SIGINT.
fn serve(serve_args: args::ServeArgs) -> u8 {
    let log = stderr_log(serve_args.log_level.into(), serve_args.log_format.into());
    let options = crate::agent::ServeOptions {
        socket: serve_args
            .socket
            .unwrap_or_else(crate::agent::default_socket),
        http: serve_args.http,
        limits: crate::agent::Limits {
            max_sessions: serve_args.max_sessions as usize,
            max_execs: serve_args.max_execs as usize,
            idle_timeout: serve_args.idle_timeout,
            max_timeout: serve_args.max_timeout,
        },
        helper: !serve_args.no_helper && crate::agent::service::helper_wanted(),
    };
    match crate::agent::serve(options, log.clone()) {
        Ok(()) => 0,
        Err(err) => {
            log.error(&err.to_string());
            1
        }
    }
}

/// `dcx mcp`: MCP tools on stdio until stdin closes. The selection's paths are made absolute
/// against the current directory, as [`crate::mcp::Target`] holds them.
fn mcp(mcp_args: args::McpArgs) -> u8 {
    let log = stderr_log(mcp_args.log_level.into(), Format::Text);
    let mut spec = request::target_spec(mcp_args.target);
    if let Ok(cwd) = std::env::current_dir() {
        for path in [
            &mut spec.workspace_folder,
            &mut spec.config,
            &mut spec.crun_root,
        ]
        .into_iter()
        .flatten()
        {
            *path = cwd.join(&*path);
        }
    }
    let target = crate::mcp::Target {
        spec,
        user: mcp_args.user.filter(|user| !user.is_empty()),
    };
    match crate::mcp::serve(target, log.clone()) {
        Ok(()) => 0,
        Err(err) => {
            log.error(&err.to_string());
            1
        }
    }
}
