//! Where the config file is, and which file is actually read.
//!
//! Section 3.1 of the reference notes: `--config` against the process cwd, else
//! `.devcontainer/devcontainer.json` or `.devcontainer.json` in the workspace (a `.code-workspace`
//! file stands for its folder); the `--override-config` file, when given, is the one read. Paths
//! are made absolute the way Node's `path.resolve` does it: lexically, without resolving symlinks.

use std::path::{Component, Path, PathBuf};

/// The outcome of config discovery. Nothing here has been read yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Located {
    /// The resolved `--workspace-folder`: the text of the `devcontainer.local_folder` label.
    pub workspace_folder: Option<PathBuf>,
    /// The folder the config is looked up in and `${localWorkspaceFolder}` names: the workspace
    /// folder, or the parent of a `.code-workspace` file.
    pub root_folder: Option<PathBuf>,
    /// The config path of labels and messages: `--config`, the discovered file, the default
    /// `<root>/.devcontainer/devcontainer.json` when nothing was found (reading it then fails
    /// with "not found", as in the reference), or `--override-config` without a workspace.
    pub config_path: Option<PathBuf>,
    /// The file that is read: the override file when given, else `config_path`.
    pub read_path: Option<PathBuf>,
}

/// Finds the config for a `cwd`, an optional `--workspace-folder`, `--config` and
/// `--override-config` (each relative to `cwd` unless absolute).
pub fn locate(
    cwd: &Path,
    workspace: Option<&Path>,
    config: Option<&Path>,
    override_config: Option<&Path>,
) -> Located {
    let workspace_folder = workspace.map(|path| resolve(cwd, path));
    let root_folder = workspace_folder.as_deref().map(root_of);
    let override_path = override_config.map(|path| resolve(cwd, path));
    let config_path = match (config, root_folder.as_deref()) {
        (Some(config), _) => Some(resolve(cwd, config)),
        (None, Some(root)) => Some(
            well_known_paths(root)
                .into_iter()
                .find(|path| is_file(path))
                .unwrap_or_else(|| default_config_path(root)),
        ),
        (None, None) => override_path.clone(),
    };
    let read_path = override_path.or_else(|| config_path.clone());
    Located {
        workspace_folder,
        root_folder,
        config_path,
        read_path,
    }
}

/// Whether `dir` holds `.devcontainer/devcontainer.json` or `.devcontainer.json` as a regular
/// file (symlinks followed).
pub fn has_config(dir: &Path) -> bool {
    well_known_paths(dir).iter().any(|path| is_file(path))
}

fn well_known_paths(dir: &Path) -> [PathBuf; 2] {
    [default_config_path(dir), dir.join(".devcontainer.json")]
}

fn default_config_path(dir: &Path) -> PathBuf {
    dir.join(".devcontainer").join("devcontainer.json")
}

fn is_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| meta.is_file())
}

/// A `.code-workspace` file stands for its folder (`workspaces.ts`); anything else for itself.
fn root_of(workspace: &Path) -> PathBuf {
    let is_workspace_file = workspace
        .extension()
        .is_some_and(|ext| ext == "code-workspace");
    match workspace.parent() {
        Some(parent) if is_workspace_file => parent.to_path_buf(),
        _ => workspace.to_path_buf(),
    }
}

/// Node's `path.resolve(base, path)` on POSIX: absolute, `.` and `..` resolved lexically,
/// repeated and trailing separators dropped, symlinks left alone.
pub(crate) fn resolve(base: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    let mut out = PathBuf::from("/");
    for component in joined.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn touch(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn resolve_is_lexical_like_node() {
        let cwd = Path::new("/home/u/proj");
        assert_eq!(resolve(cwd, Path::new(".")), Path::new("/home/u/proj"));
        assert_eq!(
            resolve(cwd, Path::new("a/./b/../c/")),
            Path::new("/home/u/proj/a/c")
        );
        assert_eq!(resolve(cwd, Path::new("../../../../x")), Path::new("/x"));
        assert_eq!(resolve(cwd, Path::new("/abs//p/")), Path::new("/abs/p"));
        assert_eq!(resolve(cwd, Path::new("/")), Path::new("/"));
    }

    #[test]
    fn devcontainer_folder_wins_over_dot_file() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path();
        touch(&w.join(".devcontainer.json"), "{}");
        let located = locate(w, Some(Path::new(".")), None, None);
        assert_eq!(located.config_path, Some(w.join(".devcontainer.json")));
        assert!(has_config(w));

        touch(&w.join(".devcontainer/devcontainer.json"), "{}");
        let located = locate(w, Some(Path::new(".")), None, None);
        let expected = w.join(".devcontainer/devcontainer.json");
        assert_eq!(located.workspace_folder.as_deref(), Some(w));
        assert_eq!(located.root_folder.as_deref(), Some(w));
        assert_eq!(located.config_path.as_ref(), Some(&expected));
        assert_eq!(located.read_path.as_ref(), Some(&expected));
    }

    #[test]
    fn a_directory_is_not_a_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path();
        fs::create_dir_all(w.join(".devcontainer/devcontainer.json")).unwrap();
        touch(&w.join(".devcontainer.json"), "{}");
        let located = locate(w, Some(w), None, None);
        assert_eq!(located.config_path, Some(w.join(".devcontainer.json")));
    }

    #[test]
    fn nothing_found_gives_the_default_path() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path();
        assert!(!has_config(w));
        let located = locate(w, Some(Path::new("sub/..")), None, None);
        let default = w.join(".devcontainer/devcontainer.json");
        assert_eq!(located.config_path.as_ref(), Some(&default));
        assert_eq!(located.read_path.as_ref(), Some(&default));

        let located = locate(w, Some(w), None, Some(Path::new("o.json")));
        assert_eq!(located.config_path.as_ref(), Some(&default));
        assert_eq!(located.read_path, Some(w.join("o.json")));
    }

    #[test]
    fn explicit_config_is_resolved_against_cwd_not_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path();
        touch(&w.join(".devcontainer/devcontainer.json"), "{}");
        let cwd = Path::new("/elsewhere");
        let located = locate(cwd, Some(w), Some(Path::new("cfg/any-name.json")), None);
        assert_eq!(
            located.config_path,
            Some(PathBuf::from("/elsewhere/cfg/any-name.json"))
        );
        assert_eq!(located.read_path, located.config_path);

        let located = locate(
            cwd,
            Some(w),
            Some(Path::new("c.json")),
            Some(Path::new("o.json")),
        );
        assert_eq!(
            located.config_path,
            Some(PathBuf::from("/elsewhere/c.json"))
        );
        assert_eq!(located.read_path, Some(PathBuf::from("/elsewhere/o.json")));
    }

    #[test]
    fn without_a_workspace() {
        let cwd = Path::new("/c");
        assert_eq!(locate(cwd, None, None, None), Located::default());
        let located = locate(cwd, None, None, Some(Path::new("o.json")));
        assert_eq!(located.workspace_folder, None);
        assert_eq!(located.config_path, Some(PathBuf::from("/c/o.json")));
        assert_eq!(located.read_path, Some(PathBuf::from("/c/o.json")));
        let located = locate(cwd, None, Some(Path::new("/x/c.json")), None);
        assert_eq!(located.config_path, Some(PathBuf::from("/x/c.json")));
    }

    #[test]
    fn code_workspace_file_looks_up_in_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path();
        touch(&w.join(".devcontainer.json"), "{}");
        let located = locate(w, Some(Path::new("x.code-workspace")), None, None);
        assert_eq!(located.workspace_folder, Some(w.join("x.code-workspace")));
        assert_eq!(located.root_folder.as_deref(), Some(w));
        assert_eq!(located.config_path, Some(w.join(".devcontainer.json")));
        // A dot file has no extension, as with Node's `path.extname`.
        let located = locate(w, Some(Path::new(".code-workspace")), None, None);
        assert_eq!(located.root_folder, Some(w.join(".code-workspace")));
    }
}
