//! Which container a request means (spec FR-001): `--container-id` first, then `--id-label`,
//! then the workspace folder's default labels, as the reference CLI finds them.
//!
//! * `--container-id`: inspected directly (id, name or unique prefix). The id labels used for
//!   the metadata rule are the given `--id-label`s, else the workspace's default labels
//!   (`undefined` where there is no workspace or config, as the reference writes them), of
//!   which only the first is kept when the container has no `devcontainer.config_file` label.
//! * `--id-label`s: the newest container carrying all of them.
//! * workspace: the newest container with `devcontainer.local_folder=<W>` and
//!   `devcontainer.config_file=<C>`; else one with only the legacy `local_folder` label, unless
//!   that one has a `config_file` label (it then belongs to another config).
//!
//! A stopped container is an error here, before any exec is attempted.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{CONFIG_FILE_LABEL, LOCAL_FOLDER_LABEL, default_id_labels};
use crate::runtime::{Container, Runtime, RuntimeError};

/// How the user named the container; several may be given, precedence decides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub container_id: Option<String>,
    /// `name=value` strings, validated.
    pub id_labels: Vec<String>,
    /// The workspace folder and the config path its labels use.
    pub workspace: Option<Workspace>,
}

/// A workspace folder (absolute) and its config file path, as the labels carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub folder: PathBuf,
    pub config_file: Option<PathBuf>,
}

/// Which selector found the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchedBy {
    ContainerId,
    IdLabel,
    WorkspaceFolder,
    /// The workspace folder, through the legacy `devcontainer.local_folder`-only label.
    WorkspaceFolderLegacy,
}

/// The container a request resolved to.
#[derive(Debug, Clone)]
pub struct Target {
    pub container: Container,
    /// The id labels in force (for the metadata rule and `${devcontainerId}`).
    pub id_labels: Vec<String>,
    pub matched_by: MatchedBy,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("Dev container not found.")]
    NotFound,
    #[error("Container {name} is not running (state: {status}). {hint}")]
    NotRunning {
        name: String,
        status: String,
        hint: String,
    },
}

fn path_text(path: Option<&Path>) -> String {
    path.map_or_else(|| "undefined".to_owned(), |p| p.display().to_string())
}

/// Resolves a selection to a running container.
pub async fn resolve(
    runtime: &dyn Runtime,
    selection: &Selection,
) -> Result<Target, DiscoveryError> {
    let target = find(runtime, selection).await?;
    if !target.container.running {
        return Err(DiscoveryError::NotRunning {
            hint: runtime.start_hint(&target.container),
            name: target.container.name,
            status: target.container.status,
        });
    }
    Ok(target)
}

async fn find(runtime: &dyn Runtime, selection: &Selection) -> Result<Target, DiscoveryError> {
    if let Some(id) = &selection.container_id {
        let container = runtime.inspect(id).await?;
        let id_labels = if selection.id_labels.is_empty() {
            let folder = selection.workspace.as_ref().map(|w| w.folder.as_path());
            let config = selection
                .workspace
                .as_ref()
                .and_then(|w| w.config_file.as_deref());
            let mut labels = vec![
                format!("{LOCAL_FOLDER_LABEL}={}", path_text(folder)),
                format!("{CONFIG_FILE_LABEL}={}", path_text(config)),
            ];
            if !container.labels.contains_key(CONFIG_FILE_LABEL) {
                labels.truncate(1);
            }
            labels
        } else {
            selection.id_labels.clone()
        };
        return Ok(Target {
            container,
            id_labels,
            matched_by: MatchedBy::ContainerId,
        });
    }
    if !selection.id_labels.is_empty() {
        let container = runtime
            .find_by_labels(&selection.id_labels)
            .await?
            .ok_or(DiscoveryError::NotFound)?;
        return Ok(Target {
            container,
            id_labels: selection.id_labels.clone(),
            matched_by: MatchedBy::IdLabel,
        });
    }
    let Some(workspace) = &selection.workspace else {
        return Err(DiscoveryError::NotFound);
    };
    let config = workspace.config_file.clone().unwrap_or_default();
    let new_labels: Vec<String> = default_id_labels(&workspace.folder, &config)
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    if let Some(container) = runtime.find_by_labels(&new_labels).await? {
        return Ok(Target {
            container,
            id_labels: new_labels,
            matched_by: MatchedBy::WorkspaceFolder,
        });
    }
    let old_labels = new_labels[..1].to_vec();
    match runtime.find_by_labels(&old_labels).await? {
        // A container with a config_file label belongs to another config of this folder.
        Some(container) if !container.labels.contains_key(CONFIG_FILE_LABEL) => Ok(Target {
            container,
            id_labels: old_labels,
            matched_by: MatchedBy::WorkspaceFolderLegacy,
        }),
        _ => Err(DiscoveryError::NotFound),
    }
}
