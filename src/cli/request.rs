//! [`ExecRequest`]: what the user asked for, validated, before anything touches an engine: the
//! engine's [`EngineSettings`] and [`PrepareRequest`], and the command with the front end's own
//! choices.
//! Texts of the validation errors are the reference's (`Unmatched argument format: …`) and the
//! spec's (`Missing required argument: …`), printed exactly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::args::{self, UsageError};
use crate::engine::{EngineSettings, PrepareRequest, TermSize, default_workspace};
use crate::env::{ProbeCache, ProbeMode, parse_remote_env_arg};
use crate::log::Format;

/// A validated `exec` request: the engine's request values, and what the front end decides.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub settings: EngineSettings,
    pub prepare: PrepareRequest,
    /// The command vector, never empty.
    pub command: Vec<String>,
    pub log_format: Format,
    /// `--terminal-rows`/`--terminal-columns`: a fixed size for the container's terminal.
    pub terminal_size: Option<TermSize>,
    pub timeout: Option<Duration>,
    pub dry_run: bool,
}

/// An empty string counts as absent, as in the reference.
pub(super) fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// `--id-label`s must each be `name=value`, both parts non-empty.
/// The longest `--container-id` taken: ids are 64 characters, names far shorter.
pub const MAX_CONTAINER_ID: usize = 256;
/// The longest `--id-label` taken.
pub const MAX_ID_LABEL: usize = 4096;

/// `--container-id` and `--id-label`: bounded, and labels as `name=value`.
pub(super) fn check_selectors(
    container_id: Option<&str>,
    labels: &[String],
) -> Result<(), UsageError> {
    if let Some(id) = container_id.filter(|id| id.chars().count() > MAX_CONTAINER_ID) {
        return Err(UsageError::exact(format!(
            "--container-id is {} characters long: a container id or name has at most {MAX_CONTAINER_ID}.",
            id.chars().count()
        )));
    }
    if let Some(label) = labels
        .iter()
        .find(|label| label.chars().count() > MAX_ID_LABEL)
    {
        return Err(UsageError::exact(format!(
            "--id-label is {} characters long: at most {MAX_ID_LABEL} are taken.",
            label.chars().count()
        )));
    }
    check_id_labels(labels)
}

pub fn check_id_labels(labels: &[String]) -> Result<(), UsageError> {
    for label in labels {
        match label.split_once('=') {
            Some((name, value)) if !name.is_empty() && !value.is_empty() => {}
            _ => {
                return Err(UsageError::exact(
                    "Unmatched argument format: id-label must match <name>=<value>",
                ));
            }
        }
    }
    Ok(())
}

/// The engine the flags name: Docker at `DOCKER_HOST` (podman's socket for a podman
/// `--docker-path`), or crun with its root (relative to `cwd`) and binary.
pub(super) fn engine_settings(
    runtime: args::RuntimeKind,
    docker_path: Option<String>,
    crun_root: Option<String>,
    crun_path: Option<String>,
    cwd: &Path,
) -> EngineSettings {
    match runtime {
        args::RuntimeKind::Docker => EngineSettings::Docker {
            env: crate::engine::DockerEnv::from_vars(|name| std::env::var(name).ok()),
            docker_path: present(docker_path),
        },
        args::RuntimeKind::Crun => EngineSettings::Crun {
            root: present(crun_root).map(|root| cwd.join(root)),
            path: present(crun_path).map(PathBuf::from),
        },
    }
}

impl ExecRequest {
    /// Validates parsed arguments; `cwd` is the process's current directory.
    pub fn from_args(args: args::ExecArgs, cwd: &Path) -> Result<Self, UsageError> {
        check_selectors(args.container_id.as_deref(), &args.id_label)?;
        let remote_env = args
            .remote_env
            .iter()
            .map(|pair| parse_remote_env_arg(pair))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| UsageError::exact(err.to_string()))?;
        if !args.compat.allow_cross_origin_auth_host.is_empty()
            && args.compat.oci_auth_hardening != Some(true)
        {
            return Err(UsageError::exact(
                "--allow-cross-origin-auth-host requires --oci-auth-hardening.",
            ));
        }
        let container_id = present(args.container_id);
        let workspace_folder = default_workspace(
            cwd,
            container_id.as_deref(),
            &args.id_label,
            present(args.workspace_folder).map(PathBuf::from),
            present(args.config.clone()).is_some(),
        )
        .map_err(|err| missing_selector(&err, cwd))?;
        let terminal_size = match (args.terminal_rows, args.terminal_columns) {
            (Some(rows), Some(cols)) => Some(TermSize { rows, cols }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(UsageError::exec(
                    "--terminal-rows requires --terminal-columns",
                ));
            }
            (None, Some(_)) => {
                return Err(UsageError::exec(
                    "--terminal-columns requires --terminal-rows",
                ));
            }
        };
        if args.command.is_empty() {
            return Err(UsageError::exec(
                "no command given: dcx exec [OPTIONS] <CMD> [ARGS]...",
            ));
        }
        let probe = match args.default_user_env_probe {
            args::UserEnvProbe::None => ProbeMode::None,
            args::UserEnvProbe::LoginInteractiveShell => ProbeMode::LoginInteractiveShell,
            args::UserEnvProbe::InteractiveShell => ProbeMode::InteractiveShell,
            args::UserEnvProbe::LoginShell => ProbeMode::LoginShell,
        };
        let settings = engine_settings(
            args.runtime,
            args.compat.docker_path,
            args.crun_root,
            args.crun_path,
            cwd,
        );
        let prepare = PrepareRequest {
            cwd: cwd.to_path_buf(),
            container_id,
            id_labels: args.id_label,
            workspace_folder,
            config: present(args.config).map(PathBuf::from),
            override_config: present(args.override_config).map(PathBuf::from),
            mount_workspace_git_root: args.mount_workspace_git_root.unwrap_or(true),
            mount_git_worktree_common_dir: args.mount_git_worktree_common_dir.unwrap_or(false),
            user: present(args.user),
            workdir: present(args.workdir),
            remote_env,
            default_user_env_probe: probe,
            probe_cache: ProbeCache::default_dir(),
            probe_cache_refresh: args.no_probe_cache == Some(true),
            container_session_data_folder: present(args.container_session_data_folder),
            read_only: args.dry_run,
            host_env: crate::config::LocalContext::process_env(),
        };
        Ok(Self {
            settings,
            prepare,
            command: args.command,
            log_format: args.log_format.into(),
            terminal_size,
            timeout: args.timeout,
            dry_run: args.dry_run,
        })
    }
}

/// The missing-selector error, with where dcx looked and the nearest config above it.
fn missing_selector(err: &crate::engine::SelectorError, cwd: &Path) -> UsageError {
    let error = UsageError::exact(err.to_string()).with_hint(format!(
        "no dev container config in {} (.devcontainer/devcontainer.json or .devcontainer.json)",
        cwd.display()
    ));
    match cwd
        .ancestors()
        .skip(1)
        .find(|dir| crate::config::has_config(dir))
    {
        Some(root) => error.with_hint(format!(
            "the nearest is in {0}: pass --workspace-folder {0}",
            root.display()
        )),
        None => error,
    }
}
