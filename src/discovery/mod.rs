//! Which container a request means: `--container-id`, then `--id-label`, then the workspace folder.
//!
//! The precedence of spec FR-001, each selector matched as the reference CLI matches it:
//!
//! * `--container-id`: inspected directly (id, name or unique prefix). The id labels used for the
//!   metadata rule are the given `--id-label`s, else the workspace's default labels (`undefined`
//!   where there is no workspace or config, as the reference writes them), of which only the first
//!   is kept when the container has no `devcontainer.config_file` label.
//! * `--id-label`s: the newest container carrying all of them.
//! * workspace: the newest container with `devcontainer.local_folder=<W>` and
//!   `devcontainer.config_file=<C>`; else one with only the legacy `local_folder` label, unless
//!   that one has a `config_file` label (it then belongs to another config).
//!
//! A stopped or paused container is an error of [`resolve`], before any exec is attempted; [`find`]
//! takes it as it is (for `dcx logs` and `dcx top`).

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
    #[error("Container {name} is paused.")]
    Paused { name: String },
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
    if target.container.paused {
        return Err(DiscoveryError::Paused {
            name: target.container.name,
        });
    }
    if !target.container.running {
        return Err(DiscoveryError::NotRunning {
            hint: runtime.start_hint(&target.container),
            name: target.container.name,
            status: target.container.status,
        });
    }
    Ok(target)
}

/// Resolves a selection to a container, running or not.
pub async fn find(runtime: &dyn Runtime, selection: &Selection) -> Result<Target, DiscoveryError> {
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

#[cfg(test)]
mod tests {
    //! Selection rules against a small in-memory engine.

    use std::collections::BTreeMap;

    use async_trait::async_trait;

    use super::*;
    use crate::runtime::{ExecSpec, Session};

    /// Containers listed newest first, as the Docker daemon lists them.
    struct Fake(Vec<Container>);

    fn container(id: &str, running: bool, labels: &[(&str, &str)]) -> Container {
        Container {
            id: id.into(),
            name: id.into(),
            running,
            status: if running { "running" } else { "exited" }.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            ..Container::default()
        }
    }

    #[async_trait]
    impl Runtime for Fake {
        async fn inspect(&self, id: &str) -> Result<Container, RuntimeError> {
            self.0
                .iter()
                .find(|c| c.id == id)
                .cloned()
                .ok_or_else(|| RuntimeError::NoSuchContainer(id.into()))
        }

        async fn find_by_labels(
            &self,
            labels: &[String],
        ) -> Result<Option<Container>, RuntimeError> {
            Ok(self
                .0
                .iter()
                .find(|c| {
                    labels.iter().all(|label| {
                        let (name, value) = label.split_once('=').unwrap();
                        c.labels.get(name).map(String::as_str) == Some(value)
                    })
                })
                .cloned())
        }

        fn endpoint(&self) -> &str {
            "fake"
        }

        fn name(&self) -> &'static str {
            "fake"
        }

        fn start_hint(&self, _container: &Container) -> String {
            "Start it.".into()
        }

        async fn start(&self, _: &Container, _: &ExecSpec) -> Result<Session, RuntimeError> {
            panic!("selection starts nothing")
        }
    }

    fn workspace() -> Selection {
        Selection {
            workspace: Some(Workspace {
                folder: "/ws".into(),
                config_file: Some("/ws/.devcontainer/devcontainer.json".into()),
            }),
            ..Selection::default()
        }
    }

    const FOLDER: (&str, &str) = ("devcontainer.local_folder", "/ws");
    const CONFIG: (&str, &str) = (
        "devcontainer.config_file",
        "/ws/.devcontainer/devcontainer.json",
    );

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn the_newest_match_of_both_labels_wins() {
        let fake = Fake(vec![
            container("new", true, &[FOLDER, CONFIG]),
            container("old", true, &[FOLDER, CONFIG]),
        ]);
        let target = run(resolve(&fake, &workspace())).unwrap();
        assert_eq!(target.container.id, "new");
        assert_eq!(target.matched_by, MatchedBy::WorkspaceFolder);
        assert_eq!(target.id_labels.len(), 2);
    }

    #[test]
    fn a_legacy_container_is_found_by_its_folder_alone() {
        let fake = Fake(vec![container("legacy", true, &[FOLDER])]);
        let target = run(resolve(&fake, &workspace())).unwrap();
        assert_eq!(target.container.id, "legacy");
        assert_eq!(target.matched_by, MatchedBy::WorkspaceFolderLegacy);
        assert_eq!(target.id_labels, ["devcontainer.local_folder=/ws"]);
    }

    #[test]
    fn a_folder_match_with_another_config_is_not_ours() {
        let other = ("devcontainer.config_file", "/ws/other.json");
        let fake = Fake(vec![container("other", true, &[FOLDER, other])]);
        let err = run(resolve(&fake, &workspace())).unwrap_err();
        insta::assert_snapshot!(err, @"Dev container not found.");
    }

    #[test]
    fn precedence_is_container_id_then_labels_then_workspace() {
        let fake = Fake(vec![
            container("by-label", true, &[("team", "a")]),
            container("by-folder", true, &[FOLDER, CONFIG]),
            container("by-id", true, &[]),
        ]);
        let mut selection = workspace();
        selection.id_labels = vec!["team=a".into()];
        let target = run(resolve(&fake, &selection)).unwrap();
        assert_eq!(target.container.id, "by-label");
        selection.container_id = Some("by-id".into());
        let target = run(resolve(&fake, &selection)).unwrap();
        assert_eq!(target.container.id, "by-id");
        assert_eq!(target.matched_by, MatchedBy::ContainerId);
        // Given id labels are the ones in force for the metadata rule.
        assert_eq!(target.id_labels, ["team=a"]);
        // Else the workspace's; without a config_file label on the container only the folder
        // label is kept, as the reference does.
        selection.id_labels.clear();
        let target = run(resolve(&fake, &selection)).unwrap();
        assert_eq!(target.id_labels, ["devcontainer.local_folder=/ws"]);
    }

    #[test]
    fn a_container_id_without_workspace_writes_undefined_as_the_reference() {
        let fake = Fake(vec![container("c", true, &[CONFIG])]);
        let selection = Selection {
            container_id: Some("c".into()),
            ..Selection::default()
        };
        let target = run(resolve(&fake, &selection)).unwrap();
        assert_eq!(
            target.id_labels,
            [
                "devcontainer.local_folder=undefined",
                "devcontainer.config_file=undefined"
            ]
        );
    }

    #[test]
    fn a_stopped_container_is_refused_with_the_engine_hint() {
        let fake = Fake(vec![container("stopped", false, &[FOLDER, CONFIG])]);
        let err = run(resolve(&fake, &workspace())).unwrap_err();
        insta::assert_snapshot!(err, @"Container stopped is not running (state: exited). Start it.");
    }
}
