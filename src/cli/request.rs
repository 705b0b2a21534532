//! What the user asked for, validated into engine requests before anything touches an engine.
//!
//! `target_spec` is the one way from any subcommand's selector flags (`dcx exec`'s, and the
//! [`TargetArgs`] of `cp`, `logs`, `top` and `mcp`) to the engine's [`TargetSpec`], whose
//! checks and conversions are the engine's own; `target_error` is the one way from its
//! refusals to the CLI's [`UsageError`]. [`ExecRequest`] is `dcx exec`'s whole request: the
//! engine's [`EngineSettings`] and [`PrepareRequest`], and the command with the front end's
//! own choices. Texts of the validation errors are the reference's (`Unmatched argument
//! format: …`) and the spec's (`Missing required argument: …`), printed exactly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::args::{self, TargetArgs, UsageError};
use crate::engine::{EngineSettings, PrepareRequest, TargetError, TargetSpec, TermSize};
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
fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// The selector and engine flags as the engine's [`TargetSpec`], paths as given (empty values
/// dropped). Nothing is checked here: [`TargetSpec::check`] and
/// [`TargetSpec::prepare_request`] do that.
pub(super) fn target_spec(target: TargetArgs) -> TargetSpec {
    TargetSpec {
        container_id: target.container_id,
        id_labels: target.id_label,
        workspace_folder: target.workspace_folder.map(PathBuf::from),
        config: target.config.map(PathBuf::from),
        runtime: match target.runtime {
            args::RuntimeKind::Docker => crate::engine::RuntimeKind::Docker,
            args::RuntimeKind::Crun => crate::engine::RuntimeKind::Crun,
        },
        docker_path: target.docker_path,
        crun_root: target.crun_root.map(PathBuf::from),
        crun_path: target.crun_path.map(PathBuf::from),
    }
    .normalized()
}

/// A refused selection as the CLI reports it: the engine's text, and for a missing selector
/// where dcx looked and the nearest config above `cwd`.
pub(super) fn target_error(err: TargetError, cwd: &Path) -> UsageError {
    match err {
        TargetError::NoSelector(err) => missing_selector(&err, cwd),
        other => UsageError::exact(other.to_string()),
    }
}

/// The engine and the selection `target` names, relative paths resolved against `cwd` (for
/// `cp`, `logs` and `top`).
pub(super) fn target_request(
    target: TargetArgs,
    cwd: &Path,
) -> Result<(EngineSettings, PrepareRequest), UsageError> {
    let spec = target_spec(target);
    let prepare = spec
        .prepare_request(cwd)
        .map_err(|err| target_error(err, cwd))?;
    Ok((spec.settings(cwd), prepare))
}

impl ExecRequest {
    /// Validates parsed arguments; `cwd` is the process's current directory.
    pub fn from_args(args: args::ExecArgs, cwd: &Path) -> Result<Self, UsageError> {
        let target = target_spec(TargetArgs {
            container_id: args.container_id,
            id_label: args.id_label,
            workspace_folder: args.workspace_folder,
            config: args.config,
            runtime: args.runtime,
            docker_path: args.compat.docker_path,
            crun_root: args.crun_root,
            crun_path: args.crun_path,
        });
        // Selectors first: a bad one is reported before any other flag.
        target.check().map_err(|err| target_error(err, cwd))?;
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
        let selection = target
            .prepare_request(cwd)
            .map_err(|err| target_error(err, cwd))?;
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
                "no command given: name the command to run after the options",
            ));
        }
        let probe = match args.default_user_env_probe {
            args::UserEnvProbe::None => ProbeMode::None,
            args::UserEnvProbe::LoginInteractiveShell => ProbeMode::LoginInteractiveShell,
            args::UserEnvProbe::InteractiveShell => ProbeMode::InteractiveShell,
            args::UserEnvProbe::LoginShell => ProbeMode::LoginShell,
        };
        let prepare = PrepareRequest {
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
            ..selection
        };
        Ok(Self {
            settings: target.settings(cwd),
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

/// What the command line a completion script is completing selects (the words after `--` in
/// this process's argv, read leniently: what is half typed is ignored): its engine (Docker's
/// default when nothing names one), and its container when the selectors are whole.
pub(super) fn typed_selection(cwd: &Path) -> super::complete::Typed {
    let target = typed_target().unwrap_or(TargetArgs {
        container_id: None,
        id_label: Vec::new(),
        workspace_folder: None,
        config: None,
        runtime: args::RuntimeKind::Docker,
        crun_root: None,
        crun_path: None,
        docker_path: None,
    });
    let spec = target_spec(target);
    super::complete::Typed {
        settings: spec.settings(cwd),
        request: spec.prepare_request(cwd).ok(),
    }
}

/// The selection flags of the command line being completed.
fn typed_target() -> Option<TargetArgs> {
    use clap::CommandFactory;
    let words: Vec<std::ffi::OsString> = std::env::args_os()
        .skip_while(|word| word != "--")
        .skip(1)
        .collect();
    let matches = args::Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(words)
        .ok()?;
    let (_, sub) = matches.subcommand()?;
    let text = |id: &str| sub.try_get_one::<String>(id).ok().flatten().cloned();
    Some(TargetArgs {
        container_id: text("container_id"),
        id_label: sub
            .try_get_many::<String>("id_label")
            .ok()
            .flatten()
            .map(|values| values.cloned().collect())
            .unwrap_or_default(),
        workspace_folder: text("workspace_folder"),
        config: text("config"),
        runtime: sub
            .try_get_one::<args::RuntimeKind>("runtime")
            .ok()
            .flatten()
            .copied()
            .unwrap_or(args::RuntimeKind::Docker),
        crun_root: text("crun_root"),
        crun_path: text("crun_path"),
        docker_path: text("docker_path"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RuntimeKind;

    fn parsed(words: &[&str]) -> args::Command {
        match args::parse(words.iter().map(std::ffi::OsString::from)) {
            Ok(cli) => cli.command,
            Err(err) => panic!("{words:?}: {err:?}"),
        }
    }

    fn target_of(words: &[&str]) -> TargetSpec {
        match parsed(words) {
            args::Command::Top(top) => target_spec(top.target),
            args::Command::Logs(logs) => target_spec(logs.target),
            args::Command::Cp(cp) => target_spec(cp.target),
            args::Command::Mcp(mcp) => target_spec(mcp.target),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_subcommand_names_its_target_with_the_same_flags() {
        let expected = TargetSpec {
            container_id: Some("web".into()),
            id_labels: vec!["a=b".into()],
            workspace_folder: Some("ws".into()),
            config: Some("c.json".into()),
            runtime: RuntimeKind::Docker,
            docker_path: Some("/usr/bin/podman".into()),
            crun_root: None,
            crun_path: None,
        };
        let flags = [
            "--container-id",
            "web",
            "--id-label",
            "a=b",
            "--workspace-folder",
            "ws",
            "--config",
            "c.json",
            "--docker-path",
            "/usr/bin/podman",
        ];
        for words in [
            vec!["dcx", "top"],
            vec!["dcx", "logs"],
            vec!["dcx", "mcp"],
            vec!["dcx", "cp", ":/a", "b"],
        ] {
            let words: Vec<&str> = words.into_iter().chain(flags).collect();
            assert_eq!(target_of(&words), expected, "{words:?}");
        }
        // Empty values are none; crun's flags come as given.
        assert_eq!(
            target_of(&[
                "dcx",
                "top",
                "--container-id=",
                "--docker-path=",
                "--runtime",
                "crun",
                "--crun-root",
                "state",
                "--crun-path",
                "/bin/crun",
            ]),
            TargetSpec {
                runtime: RuntimeKind::Crun,
                crun_root: Some("state".into()),
                crun_path: Some("/bin/crun".into()),
                ..TargetSpec::default()
            }
        );
    }

    #[test]
    fn exec_s_selectors_take_the_same_path() {
        let dir = tempfile::tempdir().unwrap();
        let args::Command::Exec(exec) = parsed(&[
            "dcx",
            "exec",
            "--workspaceFolder",
            "ws",
            "--dockerPath",
            "podman",
            "--container-id",
            "",
            "true",
        ]) else {
            panic!("not exec")
        };
        let request = ExecRequest::from_args(*exec, dir.path()).unwrap();
        // Relative paths stay as given, resolved later against the request's cwd.
        assert_eq!(request.prepare.workspace_folder, Some(PathBuf::from("ws")));
        assert_eq!(request.prepare.container_id, None);
        assert_eq!(request.prepare.cwd, dir.path());
        match request.settings {
            EngineSettings::Docker { docker_path, .. } => {
                assert_eq!(docker_path.as_deref(), Some("podman"));
            }
            other => panic!("{other:?}"),
        }
        let args::Command::Exec(exec) = parsed(&[
            "dcx",
            "exec",
            "--runtime",
            "crun",
            "--crun-root",
            "state",
            "--container-id",
            "box",
            "true",
        ]) else {
            panic!("not exec")
        };
        let request = ExecRequest::from_args(*exec, dir.path()).unwrap();
        assert_eq!(
            request.settings,
            EngineSettings::Crun {
                root: Some(dir.path().join("state")),
                path: None,
                direct: true,
            }
        );
    }

    #[test]
    fn refused_selections_keep_their_texts_and_hints() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".devcontainer")).unwrap();
        std::fs::write(dir.path().join(".devcontainer/devcontainer.json"), "{}").unwrap();
        let below = dir.path().join("src");
        std::fs::create_dir(&below).unwrap();
        let shown = |words: &[&str], cwd: &Path| {
            let target = match parsed(words) {
                args::Command::Top(top) => top.target,
                other => panic!("{other:?}"),
            };
            let err = target_request(target, cwd).unwrap_err();
            let mut text = format!("error: {err}\n");
            for hint in err.hints() {
                text.push_str(&format!("hint: {hint}\n"));
            }
            text.replace(&dir.path().display().to_string(), "[DIR]")
        };
        let texts = [
            shown(&["dcx", "top"], &below),
            shown(&["dcx", "top", "--id-label", "x"], &below),
            shown(&["dcx", "top", "--container-id", &"x".repeat(300)], &below),
        ];
        insta::assert_snapshot!(texts.concat(), @r"
        error: Missing required argument: One of --container-id, --id-label or --workspace-folder is required.
        hint: no dev container config in [DIR]/src (.devcontainer/devcontainer.json or .devcontainer.json)
        hint: the nearest is in [DIR]: pass --workspace-folder [DIR]
        error: Unmatched argument format: id-label must match <name>=<value>
        error: --container-id is 300 characters long: a container id or name has at most 256.
        ");
        // The current directory's config is the selection.
        let (_, prepare) = target_request(
            match parsed(&["dcx", "top"]) {
                args::Command::Top(top) => top.target,
                other => panic!("{other:?}"),
            },
            dir.path(),
        )
        .unwrap();
        assert_eq!(prepare.workspace_folder.as_deref(), Some(dir.path()));
    }
}
