//! The dev container configuration as exec sees it: where `devcontainer.json` is
//! ([`locate`]), reading it as JSONC ([`read`]), the remote workspace folder and the id-label
//! paths ([`workspace`]), `${…}` variable substitution ([`substitute`]), and the container's
//! `devcontainer.metadata` label merged with the local file into an [`EffectiveConfig`]
//! ([`metadata`]).
//!
//! Everything here is pure logic over paths, strings and JSON values: no engine, no network.
//! The one process it may start is `git rev-parse --show-cdup`, for
//! `--mount-workspace-git-root`. The order of the steps (section 5.3 of the reference notes):
//!
//! 1. [`load`]: locate, read, compute the remote workspace folder, local substitution;
//! 2. parse the container's metadata label ([`parse_metadata_label`]) and substitute each entry
//!    with the same [`LocalContext`];
//! 3. [`merge`] the entries with the local config (which keys of the local file take part
//!    depends on [`updates_only`]);
//! 4. [`EffectiveConfig::substitute_container`] with the container's `Config.Env`.
//!
//! JSON objects keep their insertion order (serde_json's `preserve_order`), as JavaScript
//! objects do, because the order of `remoteEnv` becomes the order of the `-e` pairs.

pub mod locate;
pub mod parse;
pub mod substitute;
pub mod workspace;

use std::path::PathBuf;

use serde_json::{Map, Value};

pub use locate::{Located, has_config, locate};
pub use parse::read;
pub use substitute::{
    ContainerEnv, LocalContext, devcontainer_id, id_labels_to_map, substitute_container,
    substitute_container_str, substitute_devcontainer_id, substitute_devcontainer_id_str,
    substitute_local, substitute_local_str,
};
pub use workspace::{
    CONFIG_FILE_LABEL, LOCAL_FOLDER_LABEL, default_id_labels, normalize_label_path,
    remote_workspace_folder,
};

/// A JSON object, as read from `devcontainer.json` or a metadata label entry.
pub type Object = Map<String, Value>;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is missing, unreadable, a directory, or empty. `path` is the file that was
    /// actually tried (the reference always names `.devcontainer/devcontainer.json` here).
    #[error("Dev container config ({}) not found.", path.display())]
    NotFound { path: PathBuf },
    /// A JSONC syntax error. The reference ignores these and uses whatever it recovered.
    #[error(
        "Dev container config ({}) has a syntax error at line {line}, column {column}: {message}",
        path.display()
    )]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("Dev container config ({}) must contain a JSON object literal.", path.display())]
    NotAnObject { path: PathBuf },
    /// `${localEnv}`, `${env}` or `${containerEnv}` without a variable name. `config_file` is
    /// the base name of the config file, when there is one.
    #[error(
        "'{matched}'{} can not be resolved because no environment variable name is given.",
        config_file.as_ref().map(|name| format!(" in {name}")).unwrap_or_default()
    )]
    MissingVariableName {
        matched: String,
        config_file: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts() {
        insta::assert_snapshot!(
            ConfigError::NotFound { path: "/w/.devcontainer.json".into() },
            @"Dev container config (/w/.devcontainer.json) not found."
        );
        insta::assert_snapshot!(
            ConfigError::NotAnObject { path: "/w/c.json".into() },
            @"Dev container config (/w/c.json) must contain a JSON object literal."
        );
        insta::assert_snapshot!(
            ConfigError::MissingVariableName {
                matched: "${localEnv}".into(),
                config_file: Some("devcontainer.json".into()),
            },
            @"'${localEnv}' in devcontainer.json can not be resolved because no environment variable name is given."
        );
        insta::assert_snapshot!(
            ConfigError::MissingVariableName { matched: "${containerEnv}".into(), config_file: None },
            @"'${containerEnv}' can not be resolved because no environment variable name is given."
        );
    }
}
