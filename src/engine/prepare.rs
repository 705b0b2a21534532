//! Preparing a target once: selection, config, effective config, user and env into [`Prepared`].
//!
//! In pipeline order: the config is located and read, the selectors resolve to a running container,
//! the container's metadata label is merged with the config into the effective config
//! (`${devcontainerId}` and the container pass of substitution included), and the env layer decides
//! user, home and env. The working directory is `--workdir`, else the remote workspace folder, else
//! the user's home. The result, [`Prepared`], is a plain value: every command of the target starts
//! from it.
//!
//! Two shorter walks serve the calls that need less: the selected container alone, running or not
//! (`dcx logs`, `dcx top`), and the container with the user its files are written as, no
//! environment probed (the file calls).

use std::path::{Path, PathBuf};

use super::{Command, EngineError, PrepareRequest};
use crate::config::{self, Object};
use crate::discovery::{self, MatchedBy};
use crate::env::{self, resolve::Environment};
use crate::log::Log;
use crate::runtime::{Container, ExecSpec, Runtime};

/// A target resolved once, for any number of commands.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub container: Container,
    pub matched_by: MatchedBy,
    /// The id labels in force (the metadata rule, `${devcontainerId}`).
    pub id_labels: Vec<String>,
    /// The whole user string, as the engine takes it (`vscode`, `1000:1000`).
    pub user: String,
    pub home: String,
    /// The default working directory.
    pub cwd: String,
    /// The command's environment: `NAME=value` entries on top of the container's own.
    pub env: Vec<String>,
    /// Names removed from the container's own environment (a `null` in `remoteEnv`).
    pub unset: Vec<String>,
    /// How the environment was decided, layer by layer (for the plan).
    pub environment: Environment,
    /// The config file that was read.
    pub config_file: Option<PathBuf>,
    /// The workspace folder on the host, when the target was found through one.
    pub workspace_folder: Option<PathBuf>,
    /// The workspace folder in the container (the config's, or the one computed for it).
    pub remote_workspace_folder: Option<String>,
    pub(super) shown: Shown,
}

/// What the plan needs to show the whole merged configuration as the reference would.
#[derive(Debug, Clone)]
pub(super) struct Shown {
    pub(super) local: Object,
    pub(super) label_entries: Vec<Object>,
    pub(super) updates_only: bool,
    pub(super) devcontainer_id: String,
    pub(super) config_path: Option<PathBuf>,
}

impl Prepared {
    /// The exec of `command` in this target.
    pub fn spec(&self, command: &Command) -> ExecSpec {
        let mut env = self.env.clone();
        env.extend(command.env.iter().cloned());
        ExecSpec {
            argv: command.argv.clone(),
            user: Some(self.user.clone()),
            env,
            unset: self.unset.clone(),
            cwd: Some(command.cwd.clone().unwrap_or_else(|| self.cwd.clone())),
            tty: command.tty,
            size: command.size.filter(|_| command.tty),
        }
    }
}

/// No selector was given and the current directory holds no config.
#[derive(Debug, thiserror::Error)]
#[error(
    "Missing required argument: One of --container-id, --id-label or --workspace-folder is required."
)]
pub struct SelectorError;

/// The workspace folder a request means: the one given, else (with no other selector) the
/// current directory when a config was given (`--config`) or the directory holds one, as the
/// reference decides.
pub fn default_workspace(
    cwd: &Path,
    container_id: Option<&str>,
    id_labels: &[String],
    workspace_folder: Option<PathBuf>,
    config_given: bool,
) -> Result<Option<PathBuf>, SelectorError> {
    if container_id.is_some() || !id_labels.is_empty() || workspace_folder.is_some() {
        return Ok(workspace_folder);
    }
    if config_given || config::has_config(cwd) {
        Ok(Some(cwd.to_path_buf()))
    } else {
        Err(SelectorError)
    }
}

/// Where the config is, and what the selectors say, by the request.
fn selection(request: &PrepareRequest) -> (config::Located, discovery::Selection) {
    let located = config::locate(
        &request.cwd,
        request.workspace_folder.as_deref(),
        request.config.as_deref(),
        request.override_config.as_deref(),
    );
    let selection = discovery::Selection {
        container_id: request.container_id.clone(),
        id_labels: request.id_labels.clone(),
        workspace: located
            .workspace_folder
            .clone()
            .map(|folder| discovery::Workspace {
                folder,
                config_file: located.config_path.clone(),
            }),
    };
    (located, selection)
}

/// The container the request's selectors mean, running or not (for `logs` and `top`, which
/// need no environment).
pub(super) async fn locate(
    runtime: &dyn Runtime,
    request: &PrepareRequest,
) -> Result<Container, EngineError> {
    let (_, selection) = selection(request);
    Ok(discovery::find(runtime, &selection).await?.container)
}

/// The selected container and its effective config: everything before the environment.
struct Effective {
    located: config::Located,
    loaded: config::LoadedConfig,
    target: discovery::Target,
    label_entries: Vec<Object>,
    updates_only: bool,
    devcontainer_id: String,
    config: config::EffectiveConfig,
}

/// The container and who runs in it (`--user`, else `remoteUser`, else the container's user),
/// with no environment probed: for the file calls, which write as that user.
pub(super) async fn user_of(
    runtime: &dyn Runtime,
    request: &PrepareRequest,
    log: &Log,
) -> Result<(Container, String, Option<String>), EngineError> {
    let effective = effective(runtime, request, log).await?;
    let (user, _) = env::choose_user(
        request.user.as_deref(),
        effective.config.remote_user.as_deref(),
        effective.target.container.user.as_deref(),
    );
    let folder = effective
        .loaded
        .remote_workspace_folder
        .filter(|folder| !folder.is_empty());
    Ok((effective.target.container, user, folder))
}

async fn effective(
    runtime: &dyn Runtime,
    request: &PrepareRequest,
    log: &Log,
) -> Result<Effective, EngineError> {
    let (located, selection) = selection(request);
    let loaded = config::load(
        &located,
        request.host_env.clone(),
        request.mount_workspace_git_root,
        request.mount_git_worktree_common_dir,
    )?;
    if let Some(path) = &located.read_path {
        log.debug(&format!("Dev container config: {}", path.display()));
    }
    let target = discovery::resolve(runtime, &selection).await?;
    let container = &target.container;
    log.debug(&format!("Container: {} ({})", container.name, container.id));

    // The image metadata label merged with the local config, then `${devcontainerId}` and the
    // container pass of substitution.
    let labels = &container.labels;
    let (mut label_entries, problem) =
        config::parse_metadata_label(labels.get(config::METADATA_LABEL).map(String::as_str));
    if let Some(problem) = problem {
        log.debug(&problem);
    }
    for entry in &mut label_entries {
        for value in entry.values_mut() {
            config::substitute_local(value, &loaded.context)?;
        }
    }
    let updates_only = config::updates_only(labels, &target.id_labels);
    let mut effective = config::merge(&label_entries, &loaded.config, updates_only);
    let devcontainer_id = config::devcontainer_id(&config::id_labels_to_map(&target.id_labels));
    effective.substitute_devcontainer_id(&devcontainer_id);
    effective.substitute_container(&container.env, located.config_path.as_deref())?;
    config::check_container_pass(
        &label_entries,
        &loaded.config,
        updates_only,
        &container.env,
        located.config_path.as_deref(),
    )?;
    Ok(Effective {
        located,
        loaded,
        target,
        label_entries,
        updates_only,
        devcontainer_id,
        config: effective,
    })
}

pub(super) async fn prepare(
    runtime: &dyn Runtime,
    request: &PrepareRequest,
    log: &Log,
) -> Result<Prepared, EngineError> {
    let Effective {
        located,
        loaded,
        target,
        label_entries,
        updates_only,
        devcontainer_id,
        config: effective,
    } = effective(runtime, request, log).await?;
    let container = &target.container;
    let cache = request.probe_cache.clone().map(env::ProbeCache::new);
    let environment = env::resolve::resolve(
        runtime,
        container,
        &effective,
        &loaded.context,
        &env::resolve::EnvRequest {
            user: request.user.as_deref(),
            default_probe: &request.default_user_env_probe,
            remote_env: &request.remote_env,
            cache: cache.as_ref(),
            refresh: request.probe_cache_refresh,
            session_data_folder: request.container_session_data_folder.as_deref(),
            config_file: located.config_path.as_deref(),
            read_only: request.read_only,
        },
        log,
    )
    .await?;
    let cwd = request
        .workdir
        .clone()
        .or_else(|| {
            loaded
                .remote_workspace_folder
                .clone()
                .filter(|folder| !folder.is_empty())
        })
        .unwrap_or_else(|| environment.home.clone());
    Ok(Prepared {
        container: target.container,
        matched_by: target.matched_by,
        id_labels: target.id_labels,
        user: environment.user.clone(),
        home: environment.home.clone(),
        cwd,
        env: environment.env.to_env_list(),
        unset: environment.env.removed.clone(),
        environment,
        config_file: located.read_path,
        workspace_folder: located.workspace_folder.clone(),
        remote_workspace_folder: loaded
            .remote_workspace_folder
            .clone()
            .filter(|folder| !folder.is_empty()),
        shown: Shown {
            local: loaded.config,
            label_entries,
            updates_only,
            devcontainer_id,
            config_path: located.config_path,
        },
    })
}
