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
mod complete;
mod copy;
mod dropin;
mod error;
mod exec;
mod observe;
pub mod request;
mod server;
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
    if std::env::var_os(complete::VARIABLE).is_some_and(|shell| !shell.is_empty() && shell != "0") {
        // A completion script asking for candidates: answer on stdout, and nothing else.
        let cwd = std::env::current_dir().ok();
        if let Some(cwd) = &cwd {
            complete::set_typed(request::typed_selection(cwd));
        }
        let asked =
            clap_complete::CompleteEnv::with_factory(<args::Cli as clap::CommandFactory>::command)
                .var(complete::VARIABLE)
                .try_complete(argv.clone(), cwd.as_deref());
        match asked {
            Ok(true) => return 0,
            Ok(false) => {}
            Err(err) => {
                stderr_log(Level::Info, Format::Text).error(&err.to_string());
                return 1;
            }
        }
    }
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
            stdio::print(&styled(&text));
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
        args::Command::Top(top_args) => observe::top(top_args.target),
        args::Command::Cp(cp_args) => copy::command(cp_args),
        args::Command::Completions(completions) => {
            let mut script = Vec::new();
            let shells = clap_complete::env::Shells::builtins();
            let written = shells
                .completer(&completions.shell.to_string())
                .map(|shell| {
                    shell.write_registration(complete::VARIABLE, "dcx", "dcx", "dcx", &mut script)
                });
            match written {
                Some(Ok(())) => {
                    stdio::print(&String::from_utf8_lossy(&script));
                    0
                }
                Some(Err(err)) => report(
                    &stderr_log(Level::Info, Format::Text),
                    &Error::Io(err),
                    None,
                ),
                None => report(
                    &stderr_log(Level::Info, Format::Text),
                    &UsageError::exact(format!("no completion script for {}", completions.shell))
                        .into(),
                    None,
                ),
            }
        }
        args::Command::Man(man_args) => man(&man_args),
    }
}

/// Help text as the terminal shows it: clap's styles on a terminal, plain text elsewhere and
/// whenever `NO_COLOR` is set (to anything but an empty string).
fn styled(text: &clap::builder::StyledStr) -> String {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    let dumb = std::env::var_os("TERM").is_some_and(|term| term == "dumb");
    if !no_color && !dumb && std::io::stdout().is_terminal() {
        text.ansi().to_string()
    } else {
        text.to_string()
    }
}

/// The man pages: dcx's own, each subcommand's (named `dcx-SUBCOMMAND`), with every option.
pub fn man_pages() -> Vec<(String, clap_mangen::Man)> {
    let mut definition =
        <args::Cli as clap::CommandFactory>::command().disable_help_subcommand(true);
    definition.build();
    let mut pages = vec![("dcx".to_owned(), clap_mangen::Man::new(definition.clone()))];
    for sub in definition
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
    {
        let name = format!("dcx-{}", sub.get_name());
        let page = sub
            .clone()
            .display_name(name.clone())
            .bin_name(format!("dcx {}", sub.get_name()));
        pages.push((name, clap_mangen::Man::new(page)));
    }
    pages
}

/// `dcx man`.
fn man(man_args: &args::ManArgs) -> u8 {
    let log = stderr_log(Level::Info, Format::Text);
    let pages = man_pages();
    if let Some(dir) = &man_args.dir {
        for (name, page) in &pages {
            let path = dir.join(format!("{name}.1"));
            let mut text = Vec::new();
            if let Err(err) = page
                .render(&mut text)
                .and_then(|()| std::fs::write(&path, text))
            {
                log.error(&format!("cannot write {}: {err}", path.display()));
                return 1;
            }
        }
        return 0;
    }
    let wanted = match &man_args.subcommand {
        Some(sub) => format!("dcx-{sub}"),
        None => "dcx".to_owned(),
    };
    let Some((_, page)) = pages.iter().find(|(name, _)| *name == wanted) else {
        let known: Vec<&str> = pages.iter().skip(1).map(|(name, _)| &name[4..]).collect();
        let err = UsageError::exact(format!(
            "no man page for '{}': the subcommands are {}",
            man_args.subcommand.as_deref().unwrap_or_default(),
            known.join(", ")
        ));
        return report(&log, &err.into(), None);
    };
    let mut text = Vec::new();
    match page.render(&mut text) {
        Ok(()) => {
            stdio::print(&String::from_utf8_lossy(&text));
            0
        }
        Err(err) => {
            log.error(&err.to_string());
            1
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
