//! [`ExecRequest`]: what the user asked for, validated, before anything touches an engine.

use std::time::Duration;

use crate::cli;
use crate::discovery::Selector;
use crate::log::Format;
use crate::runtime::TermSize;

/// A validated `exec` request.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub selector: Selector,
    /// The command vector, never empty.
    pub command: Vec<String>,
    pub log_format: Format,
    /// `--terminal-rows`/`--terminal-columns`: a fixed size for the container's terminal.
    pub terminal_size: Option<TermSize>,
    pub timeout: Option<Duration>,
}

impl TryFrom<cli::ExecArgs> for ExecRequest {
    type Error = cli::UsageError;

    fn try_from(args: cli::ExecArgs) -> Result<Self, Self::Error> {
        let selector = match args.container_id.filter(|id| !id.is_empty()) {
            Some(id) => Selector::ContainerId(id),
            None => {
                return Err(cli::UsageError::exec(
                    "Missing required argument: One of --container-id, --id-label or --workspace-folder is required.",
                ));
            }
        };
        if args.command.is_empty() {
            return Err(cli::UsageError::exec(
                "no command given: dcx exec [OPTIONS] <CMD> [ARGS]...",
            ));
        }
        let terminal_size = match (args.terminal_rows, args.terminal_columns) {
            (Some(rows), Some(cols)) => Some(TermSize { rows, cols }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(cli::UsageError::exec(
                    "--terminal-rows requires --terminal-columns",
                ));
            }
            (None, Some(_)) => {
                return Err(cli::UsageError::exec(
                    "--terminal-columns requires --terminal-rows",
                ));
            }
        };
        Ok(Self {
            selector,
            command: args.command,
            log_format: args.log_format.into(),
            terminal_size,
            timeout: args.timeout,
        })
    }
}
