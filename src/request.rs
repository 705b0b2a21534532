//! [`ExecRequest`]: what the user asked for, validated, before anything touches an engine.
//! Texts of the validation errors are the reference's (`Unmatched argument format: …`) and the
//! spec's (`Missing required argument: …`), printed exactly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli;
use crate::config::has_config;
use crate::env::{ProbeMode, parse_remote_env_arg};
use crate::log::Format;
use crate::runtime::TermSize;

/// A validated `exec` request.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// The process's working directory: relative paths are resolved against it.
    pub cwd: PathBuf,
    pub container_id: Option<String>,
    /// `name=value`, both non-empty.
    pub id_labels: Vec<String>,
    /// `--workspace-folder`, or the current directory when it holds a config and no selector
    /// was given.
    pub workspace_folder: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub override_config: Option<PathBuf>,
    pub mount_workspace_git_root: bool,
    pub mount_git_worktree_common_dir: bool,
    /// `--remote-env` pairs, unsubstituted.
    pub remote_env: Vec<(String, String)>,
    pub default_user_env_probe: ProbeMode,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub container_session_data_folder: Option<String>,
    pub probe_cache: bool,
    pub dry_run: bool,
    /// `--docker-path`: only its being podman matters (the socket to use).
    pub docker_path: Option<String>,
    pub runtime: cli::RuntimeKind,
    pub crun_root: Option<PathBuf>,
    pub crun_path: Option<PathBuf>,
    /// The command vector, never empty.
    pub command: Vec<String>,
    pub log_format: Format,
    /// `--terminal-rows`/`--terminal-columns`: a fixed size for the container's terminal.
    pub terminal_size: Option<TermSize>,
    pub timeout: Option<Duration>,
}

const MISSING_SELECTOR: &str = "Missing required argument: One of --container-id, --id-label or --workspace-folder is required.";

/// An empty string counts as absent, as in the reference.
fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

impl ExecRequest {
    /// Validates parsed arguments; `cwd` is the process's current directory.
    pub fn from_args(args: cli::ExecArgs, cwd: &Path) -> Result<Self, cli::UsageError> {
        for label in &args.id_label {
            match label.split_once('=') {
                Some((name, value)) if !name.is_empty() && !value.is_empty() => {}
                _ => {
                    return Err(cli::UsageError::exact(
                        "Unmatched argument format: id-label must match <name>=<value>",
                    ));
                }
            }
        }
        let remote_env = args
            .remote_env
            .iter()
            .map(|pair| parse_remote_env_arg(pair))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| cli::UsageError::exact(err.to_string()))?;
        if !args.compat.allow_cross_origin_auth_host.is_empty()
            && args.compat.oci_auth_hardening != Some(true)
        {
            return Err(cli::UsageError::exact(
                "--allow-cross-origin-auth-host requires --oci-auth-hardening.",
            ));
        }
        let container_id = present(args.container_id);
        let resolve = PathBuf::from;
        let mut workspace_folder = present(args.workspace_folder).map(resolve);
        if container_id.is_none() && args.id_label.is_empty() && workspace_folder.is_none() {
            if has_config(cwd) {
                workspace_folder = Some(cwd.to_path_buf());
            } else {
                return Err(cli::UsageError::exact(MISSING_SELECTOR));
            }
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
        if args.command.is_empty() {
            return Err(cli::UsageError::exec(
                "no command given: dcx exec [OPTIONS] <CMD> [ARGS]...",
            ));
        }
        let probe = match args.default_user_env_probe {
            cli::UserEnvProbe::None => ProbeMode::None,
            cli::UserEnvProbe::LoginInteractiveShell => ProbeMode::LoginInteractiveShell,
            cli::UserEnvProbe::InteractiveShell => ProbeMode::InteractiveShell,
            cli::UserEnvProbe::LoginShell => ProbeMode::LoginShell,
        };
        Ok(Self {
            cwd: cwd.to_path_buf(),
            container_id,
            id_labels: args.id_label,
            workspace_folder,
            config: present(args.config).map(resolve),
            override_config: present(args.override_config).map(resolve),
            mount_workspace_git_root: args.mount_workspace_git_root.unwrap_or(true),
            mount_git_worktree_common_dir: args.mount_git_worktree_common_dir.unwrap_or(false),
            remote_env,
            default_user_env_probe: probe,
            user: present(args.user),
            workdir: present(args.workdir),
            container_session_data_folder: present(args.container_session_data_folder),
            probe_cache: args.no_probe_cache != Some(true),
            dry_run: args.dry_run,
            docker_path: present(args.compat.docker_path),
            runtime: args.runtime,
            crun_root: present(args.crun_root).map(|root| cwd.join(root)),
            crun_path: present(args.crun_path).map(PathBuf::from),
            command: args.command,
            log_format: args.log_format.into(),
            terminal_size,
            timeout: args.timeout,
        })
    }
}
