//! The dev container configuration as exec sees it, from `devcontainer.json` to
//! [`EffectiveConfig`].
//!
//! Where `devcontainer.json` is ([`locate()`]), reading it as JSONC ([`read`]), the remote
//! workspace folder and the id-label paths ([`workspace`]), `${…}` variable substitution
//! ([`substitute`]), the container's `devcontainer.metadata` label merged with the local file into
//! an [`EffectiveConfig`] ([`metadata`]), and the reference's whole merged configuration that
//! `--dry-run` shows ([`merged`]).
//!
//! Everything here works on host paths, strings and JSON values: no engine, no network. The one
//! process it may start is `git rev-parse --show-cdup`, for `--mount-workspace-git-root`. The order
//! of the steps (section 5.3 of the reference notes):
//!
//! 1. [`load`]: locate, read, compute the remote workspace folder, local substitution;
//! 2. parse the container's metadata label ([`parse_metadata_label`]) and substitute each entry
//!    with the same [`LocalContext`];
//! 3. [`merge`] the entries with the local config (which keys of the local file take part depends
//!    on [`updates_only`]);
//! 4. [`EffectiveConfig::substitute_devcontainer_id`] (a pass the reference's exec skips: a
//!    divergence of dcx's), then [`EffectiveConfig::substitute_container`] with the container's
//!    `Config.Env`.
//!
//! JSON objects keep their insertion order (serde_json's `preserve_order`), as JavaScript objects
//! do, because the order of `remoteEnv` becomes the order of the `-e` pairs.

pub mod locate;
pub mod merged;
pub mod metadata;
pub mod parse;
pub mod substitute;
pub mod workspace;

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

pub use locate::{Located, has_config, locate};
pub use merged::{check_container_pass, merge_configuration};
pub use metadata::{
    EffectiveConfig, METADATA_LABEL, merge, metadata_entries, parse_metadata_label, updates_only,
};
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
    /// Not a regular file (a fifo, a device): reading it could block or never end.
    #[error("Dev container config ({}) is not a regular file.", path.display())]
    NotAFile { path: PathBuf },
    #[error(
        "Dev container config ({}) is larger than {} MiB, the most dcx reads.",
        path.display(),
        parse::MAX_CONFIG >> 20
    )]
    TooLarge { path: PathBuf },
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

/// The local configuration after reading and local substitution, with what later steps need.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The substituted `devcontainer.json` (the empty object when none was read).
    pub config: Object,
    /// The same, before substitution.
    pub raw: Object,
    /// The context of the local pass, to be applied to the metadata label entries too.
    pub context: LocalContext,
    /// The remote workspace folder (section 3.4): a string `workspaceFolder` of the substituted
    /// config, else the computed value (not substituted, as in the reference). The command's
    /// cwd when it is non-empty, else the user's home.
    pub remote_workspace_folder: Option<String>,
}

/// Locates nothing itself: reads `located`, computes the remote workspace folder and applies
/// the local substitution pass, as the reference does when it reads the config for exec.
/// `env` is the host environment.
pub fn load(
    located: &Located,
    env: HashMap<String, String>,
    mount_git_root: bool,
    mount_git_worktree_common_dir: bool,
) -> Result<LoadedConfig, ConfigError> {
    let Some(raw) = read(located)? else {
        // Without a config the local context knows only the host environment.
        return Ok(LoadedConfig {
            config: Object::new(),
            raw: Object::new(),
            context: LocalContext::new(env),
            remote_workspace_folder: None,
        });
    };
    let root = located.root_folder.as_deref();
    let container_folder =
        remote_workspace_folder(&raw, root, mount_git_root, mount_git_worktree_common_dir);
    let context = LocalContext {
        env,
        workspace_folder: root.map(|path| path.to_path_buf()),
        container_workspace_folder: container_folder.clone(),
        config_file: located.config_path.clone(),
    };
    let mut config = raw.clone();
    for value in config.values_mut() {
        substitute_local(value, &context)?;
    }
    let remote_workspace_folder = match config.get("workspaceFolder") {
        Some(Value::String(folder)) => Some(folder.clone()),
        _ => container_folder,
    };
    Ok(LoadedConfig {
        config,
        raw,
        context,
        remote_workspace_folder,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn workspace(config: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("proj/.devcontainer");
        fs::create_dir_all(&folder).unwrap();
        fs::write(folder.join("devcontainer.json"), config).unwrap();
        dir
    }

    #[test]
    fn load_substitutes_locally_with_the_computed_folder() {
        let dir = workspace(
            r#"{
                // comment
                "remoteEnv": {
                    "LW": "${localWorkspaceFolderBasename}",
                    "CW": "${containerWorkspaceFolder}",
                    "H": "${localEnv:HOST_VAR}",
                    "C": "${containerEnv:PATH}",
                },
            }"#,
        );
        let w = dir.path().join("proj");
        let located = locate(dir.path(), Some(Path::new("proj")), None, None);
        let loaded = load(&located, env(&[("HOST_VAR", "h")]), false, false).unwrap();
        assert_eq!(
            Value::Object(loaded.config["remoteEnv"].as_object().unwrap().clone()),
            serde_json::json!({
                "LW": "proj",
                "CW": "/workspaces/proj",
                "H": "h",
                "C": "${containerEnv:PATH}",
            })
        );
        assert_eq!(loaded.raw["remoteEnv"]["H"], "${localEnv:HOST_VAR}");
        assert_eq!(
            loaded.remote_workspace_folder.as_deref(),
            Some("/workspaces/proj")
        );
        assert_eq!(
            loaded.context.workspace_folder.as_deref(),
            Some(w.as_path())
        );
        assert_eq!(
            loaded.context.config_file,
            Some(w.join(".devcontainer/devcontainer.json"))
        );
    }

    #[test]
    fn load_uses_the_substituted_workspace_folder() {
        let dir = workspace(r#"{"workspaceFolder": "/src/${localWorkspaceFolderBasename}"}"#);
        let located = locate(dir.path(), Some(Path::new("proj")), None, None);
        let loaded = load(&located, HashMap::new(), true, false).unwrap();
        assert_eq!(loaded.remote_workspace_folder.as_deref(), Some("/src/proj"));
    }

    #[test]
    fn load_without_a_config() {
        let located = locate(Path::new("/"), None, None, None);
        let loaded = load(&located, env(&[("A", "1")]), false, false).unwrap();
        assert!(loaded.config.is_empty());
        assert_eq!(loaded.remote_workspace_folder, None);
        assert_eq!(loaded.context.workspace_folder, None);
        assert_eq!(loaded.context.env["A"], "1");
    }

    #[test]
    fn load_errors() {
        let dir = workspace(r#"{"remoteEnv": {"X": "${localEnv}"}}"#);
        let located = locate(dir.path(), Some(Path::new("proj")), None, None);
        insta::assert_snapshot!(
            load(&located, HashMap::new(), false, false).unwrap_err(),
            @"'${localEnv}' in devcontainer.json can not be resolved because no environment variable name is given."
        );
        let located = locate(dir.path(), Some(Path::new("nope")), None, None);
        let err = load(&located, HashMap::new(), false, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "Dev container config ({}/nope/.devcontainer/devcontainer.json) not found.",
                dir.path().display()
            )
        );
    }

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
