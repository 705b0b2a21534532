//! [`ExecRequest`]: what the user asked for, validated, before anything touches an engine.

use crate::cli;
use crate::discovery::Selector;

/// A validated `exec` request.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub selector: Selector,
    /// The command vector, never empty.
    pub command: Vec<String>,
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
        Ok(Self {
            selector,
            command: args.command,
        })
    }
}
