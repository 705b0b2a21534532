//! Selectors to engine requests: the one conversion every front end uses.
//!
//! A dev container is named the same way everywhere (`--container-id` > `--id-label` >
//! `--workspace-folder`, else the current directory) on an engine (Docker with an optional podman
//! `--docker-path`, or crun with its root and binary). [`TargetSpec`] holds those words as given;
//! [`TargetSpec::settings`] and [`TargetSpec::prepare_request`] turn them into the engine's
//! [`EngineSettings`] and [`PrepareRequest`], with one rule and one text for every check. The
//! CLI's `exec`, `cp`, `logs`, `top` and `mcp` (through `cli::request::target_spec`) and the
//! agent's `session.create` all go through it.

use std::path::{Path, PathBuf};

use super::prepare::{SelectorError, default_workspace};
use super::{EngineSettings, PrepareRequest};
use crate::runtime::docker::DockerEnv;

/// The longest container id taken: ids are 64 characters, names far shorter.
pub const MAX_CONTAINER_ID: usize = 256;
/// The longest id label taken.
pub const MAX_ID_LABEL: usize = 4096;

/// Which kind of engine runs the container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RuntimeKind {
    /// A Docker Engine API daemon (podman's included).
    #[default]
    Docker,
    /// Containers run directly by the crun OCI runtime.
    Crun,
}

impl RuntimeKind {
    /// The engine's name as users write it (`docker`, `crun`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Crun => "crun",
        }
    }
}

/// A dev container and its engine, as a front end was told them. Empty strings count as
/// absent, as in the reference CLI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetSpec {
    pub container_id: Option<String>,
    /// `name=value` labels, all of which must match.
    pub id_labels: Vec<String>,
    pub workspace_folder: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub runtime: RuntimeKind,
    /// The docker CLI's path: one naming podman selects podman's socket.
    pub docker_path: Option<String>,
    /// crun's state root (relative to the current directory).
    pub crun_root: Option<PathBuf>,
    /// The crun binary.
    pub crun_path: Option<PathBuf>,
}

/// Selectors that cannot name a container.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "--container-id is {0} characters long: a container id or name has at most {MAX_CONTAINER_ID}."
    )]
    ContainerIdTooLong(usize),
    #[error("--id-label is {0} characters long: at most {MAX_ID_LABEL} are taken.")]
    IdLabelTooLong(usize),
    #[error("Unmatched argument format: id-label must match <name>=<value>")]
    IdLabelFormat,
    #[error(transparent)]
    NoSelector(#[from] SelectorError),
}

fn present<T: AsRef<std::ffi::OsStr>>(value: Option<T>) -> Option<T> {
    value.filter(|v| !v.as_ref().is_empty())
}

impl TargetSpec {
    /// The spec with empty values dropped (an empty string is no value).
    pub fn normalized(mut self) -> Self {
        self.container_id = present(self.container_id);
        self.workspace_folder = present(self.workspace_folder);
        self.config = present(self.config);
        self.docker_path = present(self.docker_path);
        self.crun_root = present(self.crun_root);
        self.crun_path = present(self.crun_path);
        self
    }

    /// Checks the selectors: bounded lengths, labels as `name=value` with both parts non-empty.
    pub fn check(&self) -> Result<(), TargetError> {
        if let Some(id) = &self.container_id {
            let length = id.chars().count();
            if length > MAX_CONTAINER_ID {
                return Err(TargetError::ContainerIdTooLong(length));
            }
        }
        for label in &self.id_labels {
            let length = label.chars().count();
            if length > MAX_ID_LABEL {
                return Err(TargetError::IdLabelTooLong(length));
            }
            match label.split_once('=') {
                Some((name, value)) if !name.is_empty() && !value.is_empty() => {}
                _ => return Err(TargetError::IdLabelFormat),
            }
        }
        Ok(())
    }

    /// The engine to connect to; a relative crun root is taken from `cwd`.
    pub fn settings(&self, cwd: &Path) -> EngineSettings {
        match self.runtime {
            RuntimeKind::Docker => EngineSettings::Docker {
                env: DockerEnv::from_vars(|name| std::env::var(name).ok()),
                docker_path: present(self.docker_path.clone()),
            },
            RuntimeKind::Crun => EngineSettings::Crun {
                root: present(self.crun_root.as_ref()).map(|root| cwd.join(root)),
                path: present(self.crun_path.clone()),
                direct: std::env::var("DCX_CRUN_DIRECT").as_deref() != Ok("0"),
            },
        }
    }

    /// The selection as a [`PrepareRequest`] resolving paths against `cwd` (its other fields
    /// at their defaults); the current directory stands for the workspace folder when no
    /// selector is given and it holds a config (or `config` is given).
    pub fn prepare_request(&self, cwd: &Path) -> Result<PrepareRequest, TargetError> {
        let spec = self.clone().normalized();
        spec.check()?;
        let workspace_folder = default_workspace(
            cwd,
            spec.container_id.as_deref(),
            &spec.id_labels,
            spec.workspace_folder,
            spec.config.is_some(),
        )?;
        let mut request = PrepareRequest::new(cwd);
        request.container_id = spec.container_id;
        request.id_labels = spec.id_labels;
        request.workspace_folder = workspace_folder;
        request.config = spec.config;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TargetSpec {
        TargetSpec {
            container_id: Some("web".into()),
            ..TargetSpec::default()
        }
    }

    #[test]
    fn every_check_has_one_text() {
        let texts: Vec<String> = [
            TargetSpec {
                container_id: Some("x".repeat(MAX_CONTAINER_ID + 1)),
                ..spec()
            },
            TargetSpec {
                id_labels: vec![format!("a={}", "x".repeat(MAX_ID_LABEL))],
                ..spec()
            },
            TargetSpec {
                id_labels: vec!["=v".into()],
                ..spec()
            },
            TargetSpec {
                id_labels: vec!["name".into()],
                ..spec()
            },
        ]
        .iter()
        .map(|spec| spec.check().unwrap_err().to_string())
        .collect();
        insta::assert_snapshot!(texts.join("\n"), @r"
        --container-id is 257 characters long: a container id or name has at most 256.
        --id-label is 4098 characters long: at most 4096 are taken.
        Unmatched argument format: id-label must match <name>=<value>
        Unmatched argument format: id-label must match <name>=<value>
        ");
    }

    #[test]
    fn empty_values_are_no_values_and_settings_follow_the_kind() {
        let dir = tempfile::tempdir().unwrap();
        let docker = TargetSpec {
            container_id: Some(String::new()),
            docker_path: Some("/usr/bin/podman".into()),
            ..TargetSpec::default()
        };
        assert!(matches!(
            docker.prepare_request(dir.path()),
            Err(TargetError::NoSelector(_))
        ));
        match docker.settings(dir.path()) {
            EngineSettings::Docker { docker_path, .. } => {
                assert_eq!(docker_path.as_deref(), Some("/usr/bin/podman"));
            }
            other => panic!("{other:?}"),
        }
        let crun = TargetSpec {
            runtime: RuntimeKind::Crun,
            crun_root: Some("state".into()),
            crun_path: Some(PathBuf::new()),
            ..spec()
        };
        assert_eq!(
            crun.settings(dir.path()),
            EngineSettings::Crun {
                root: Some(dir.path().join("state")),
                path: None,
                direct: true,
            }
        );
        let request = crun.prepare_request(dir.path()).unwrap();
        assert_eq!(request.container_id.as_deref(), Some("web"));
        assert_eq!(request.workspace_folder, None);
    }
}
