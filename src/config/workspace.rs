//! Paths derived from the workspace: the remote workspace folder and the default id labels.
//!
//! The remote workspace folder (section 3.4 of the reference notes) is the command's default
//! working directory and `${containerWorkspaceFolder}`; the default id labels and their path
//! normalisation are section 2.4. Finding the git root for `--mount-workspace-git-root` runs
//! `git rev-parse --show-cdup` in the workspace: the only process this module starts
//! (`--mount-git-worktree-common-dir` reads a worktree's `.git` file too).

use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::Object;
use super::locate::resolve;

/// The id label naming the workspace folder.
pub const LOCAL_FOLDER_LABEL: &str = "devcontainer.local_folder";
/// The id label naming the config file.
pub const CONFIG_FILE_LABEL: &str = "devcontainer.config_file";

/// The folder the workspace appears at in the container, from the raw (unsubstituted) config:
/// a Docker Compose config's `workspaceFolder` or `/`; else a non-empty `workspaceFolder`;
/// else, with a workspace, `/workspaces/<name of the mounted folder>/<path of the workspace
/// below it>`; else the configured value, if it is a string.
pub fn remote_workspace_folder(
    raw_config: &Object,
    workspace: Option<&Path>,
    mount_git_root: bool,
    mount_git_worktree_common_dir: bool,
) -> Option<String> {
    let configured = match raw_config.get("workspaceFolder") {
        Some(Value::String(folder)) => Some(folder.as_str()),
        _ => None,
    };
    if raw_config.contains_key("dockerComposeFile") {
        return Some(
            configured
                .filter(|f| !f.is_empty())
                .unwrap_or("/")
                .to_owned(),
        );
    }
    if let Some(folder) = configured.filter(|f| !f.is_empty()) {
        return Some(folder.to_owned());
    }
    let Some(workspace) = workspace else {
        return configured.map(str::to_owned);
    };
    let host_mount = if mount_git_root {
        git_root(workspace).unwrap_or_else(|| workspace.to_path_buf())
    } else {
        workspace.to_path_buf()
    };
    let mut container_mount = posix_join(&["/workspaces", &file_name(&host_mount)]);
    if mount_git_root
        && mount_git_worktree_common_dir
        && let Some(folder) = worktree_mount_folder(&host_mount)
    {
        container_mount = folder;
    }
    Some(posix_join(&[
        &container_mount,
        &relative(&host_mount, workspace),
    ]))
}

/// `git rev-parse --show-cdup` in `folder`, resolved against it (symlinks kept, unlike
/// `--show-toplevel`). `None` when git is missing or `folder` is not in a repository.
fn git_root(folder: &Path) -> Option<PathBuf> {
    let output = Command::new("git")
        .args(["rev-parse", "--show-cdup"])
        .current_dir(folder)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let cdup = String::from_utf8_lossy(&output.stdout);
    Some(resolve(folder, Path::new(cdup.trim())))
}

/// For a worktree whose `.git` file has a relative `gitdir:`, the container folder that keeps
/// the worktree and the repository's common dir in the same relative places: `/workspaces/`
/// plus the segments from the common ancestor of both down to the mounted folder.
fn worktree_mount_folder(host_mount: &Path) -> Option<String> {
    let dot_git = host_mount.join(".git");
    if !std::fs::metadata(&dot_git).is_ok_and(|meta| meta.is_file()) {
        return None;
    }
    let text = std::fs::read(&dot_git).ok()?;
    let text = String::from_utf8_lossy(&text);
    let gitdir = text.split('\n').find_map(|line| {
        let rest = line.strip_prefix("gitdir:")?.trim_start();
        let value = rest.split('\r').next().unwrap_or_default();
        (!value.is_empty()).then_some(value)
    })?;
    if gitdir.starts_with('/') {
        return None;
    }
    let common_dir = resolve(host_mount, &Path::new(gitdir).join("..").join(".."));
    let common_dir = common_dir.to_string_lossy();
    let mut segments = Vec::new();
    let mut current = host_mount.to_path_buf();
    while let Some(parent) = current.parent() {
        let prefix = format!("{}/", current.to_string_lossy());
        if common_dir.starts_with(&prefix) {
            break;
        }
        segments.push(file_name(&current));
        current = parent.to_path_buf();
    }
    segments.reverse();
    let mut parts = vec!["/workspaces"];
    parts.extend(segments.iter().map(String::as_str));
    Some(posix_join(&parts))
}

/// The default id labels for a workspace folder and a config path.
pub fn default_id_labels(workspace: &Path, config: &Path) -> [(String, String); 2] {
    let windows = cfg!(windows);
    [
        (
            LOCAL_FOLDER_LABEL.to_owned(),
            normalize_label_path(&workspace.to_string_lossy(), windows),
        ),
        (
            CONFIG_FILE_LABEL.to_owned(),
            normalize_label_path(&config.to_string_lossy(), windows),
        ),
    ]
}

/// The label path normalisation: none on POSIX hosts; on Windows `path.win32.normalize` and
/// a lower-case drive letter.
pub fn normalize_label_path(path: &str, windows: bool) -> String {
    if !windows {
        return path.to_owned();
    }
    let normalized = win32_normalize(path);
    let mut chars = normalized.chars();
    match (chars.next(), chars.next()) {
        (Some(drive), Some(':')) => {
            let mut out: String = drive.to_lowercase().collect();
            out.push_str(&normalized[drive.len_utf8()..]);
            out
        }
        _ => normalized,
    }
}

/// Node's `path.win32.normalize`: separators become `\`, dot segments collapse, the root
/// (`C:`, `C:\`, `\\server\share\` or `\`) and a trailing separator are kept.
fn win32_normalize(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let path = path.replace('/', "\\");
    let bytes = path.as_bytes();
    let (device, absolute, tail) = if let Some(unc) = path.strip_prefix("\\\\") {
        // UNC: \\server\share\rest
        let mut parts = unc.splitn(3, '\\');
        let server = parts.next().unwrap_or_default();
        let share = parts.next().unwrap_or_default();
        if !server.is_empty() && !share.is_empty() {
            let rest = parts.next().unwrap_or_default();
            (format!("\\\\{server}\\{share}"), true, rest.to_owned())
        } else {
            (
                String::new(),
                true,
                path.trim_start_matches('\\').to_owned(),
            )
        }
    } else if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        let absolute = bytes.get(2) == Some(&b'\\');
        (path[..2].to_owned(), absolute, path[2..].to_owned())
    } else if path.starts_with('\\') {
        (String::new(), true, path.to_owned())
    } else {
        (String::new(), false, path.clone())
    };
    let tail = normalize_segments(&tail, '\\', absolute);
    format!("{device}{}{tail}", if absolute { "\\" } else { "" })
}

/// Node's segment normalisation, shared by the win32 and posix forms: `.` and empty segments
/// dropped, `..` resolved (kept at the start of a relative path), a trailing separator kept,
/// and `.` for an empty relative result. The leading separator is the caller's.
fn normalize_segments(tail: &str, separator: char, absolute: bool) -> String {
    let trailing = tail.ends_with(separator);
    let mut segments: Vec<&str> = Vec::new();
    for segment in tail.split(separator) {
        match segment {
            "" | "." => {}
            ".." => {
                if segments.last().is_some_and(|s| *s != "..") {
                    segments.pop();
                } else if !absolute {
                    segments.push("..");
                }
            }
            other => segments.push(other),
        }
    }
    let mut out = segments.join(&separator.to_string());
    if out.is_empty() && !absolute {
        out.push('.');
    }
    if !out.is_empty() && trailing {
        out.push(separator);
    }
    out
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Node's `path.relative` between two absolute, normalised paths.
fn relative(from: &Path, to: &Path) -> String {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let ups = std::iter::repeat_n("..".to_owned(), from.len() - common);
    let downs = to[common..]
        .iter()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    ups.chain(downs).collect::<Vec<_>>().join("/")
}

/// Node's `path.posix.join`: the non-empty parts joined with `/`, then normalised.
fn posix_join(parts: &[&str]) -> String {
    let joined = parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    if joined.is_empty() {
        return ".".to_owned();
    }
    let absolute = joined.starts_with('/');
    let out = normalize_segments(&joined, '/', absolute);
    if absolute { format!("/{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::fs;

    fn obj(value: Value) -> Object {
        value.as_object().unwrap().clone()
    }

    fn git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    // labelPathNormalization.test.ts

    #[test]
    fn lowercases_windows_drive_letters() {
        assert_eq!(
            normalize_label_path(r"C:\CodeBlocks\remill", true),
            r"c:\CodeBlocks\remill"
        );
    }

    #[test]
    fn normalizes_windows_path_separators() {
        assert_eq!(
            normalize_label_path("C:/CodeBlocks/remill/.devcontainer/devcontainer.json", true),
            r"c:\CodeBlocks\remill\.devcontainer\devcontainer.json"
        );
    }

    #[test]
    fn leaves_non_windows_paths_unchanged() {
        assert_eq!(
            normalize_label_path("/workspaces/remill", false),
            "/workspaces/remill"
        );
        assert_eq!(
            normalize_label_path("/a/./b/../C:/", false),
            "/a/./b/../C:/"
        );
    }

    #[test]
    fn win32_normalize_details() {
        assert_eq!(win32_normalize(r"C:\a\.\b\..\c\"), r"C:\a\c\");
        assert_eq!(win32_normalize("C:"), "C:.");
        assert_eq!(
            win32_normalize(r"\\server\share\x\..\y"),
            r"\\server\share\y"
        );
        assert_eq!(win32_normalize("a/../.."), "..");
        assert_eq!(normalize_label_path(r"\\srv\s\p", true), r"\\srv\s\p");
    }

    #[test]
    fn default_labels() {
        let labels = default_id_labels(
            Path::new("/tmp/dcx/ws1"),
            Path::new("/tmp/dcx/ws1/.devcontainer/devcontainer.json"),
        );
        assert_eq!(
            labels,
            [
                (
                    "devcontainer.local_folder".to_owned(),
                    "/tmp/dcx/ws1".to_owned()
                ),
                (
                    "devcontainer.config_file".to_owned(),
                    "/tmp/dcx/ws1/.devcontainer/devcontainer.json".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn configured_and_compose_folders() {
        let w = Some(Path::new("/w/proj"));
        let rwf =
            |config: Value, w: Option<&Path>| remote_workspace_folder(&obj(config), w, true, false);
        assert_eq!(
            rwf(json!({"workspaceFolder": "/src/${localEnv:X}"}), w).as_deref(),
            Some("/src/${localEnv:X}")
        );
        assert_eq!(
            rwf(json!({"dockerComposeFile": "c.yml"}), w).as_deref(),
            Some("/")
        );
        assert_eq!(
            rwf(
                json!({"dockerComposeFile": [], "workspaceFolder": "/app"}),
                None
            )
            .as_deref(),
            Some("/app")
        );
        assert_eq!(
            rwf(
                json!({"dockerComposeFile": "c.yml", "workspaceFolder": ""}),
                w
            )
            .as_deref(),
            Some("/")
        );
        assert_eq!(rwf(json!({}), None), None);
        assert_eq!(
            rwf(json!({"workspaceFolder": ""}), None).as_deref(),
            Some("")
        );
    }

    #[test]
    fn default_folder_without_git() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path().join("my proj");
        fs::create_dir(&w).unwrap();
        let name = "my proj";
        for git_root in [true, false] {
            assert_eq!(
                remote_workspace_folder(&Object::new(), Some(&w), git_root, false),
                Some(format!("/workspaces/{name}"))
            );
        }
        // An empty workspaceFolder counts as none.
        assert_eq!(
            remote_workspace_folder(&obj(json!({"workspaceFolder": ""})), Some(&w), false, false),
            Some(format!("/workspaces/{name}"))
        );
    }

    #[test]
    fn git_root_of_a_sub_folder() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("r");
        let sub = repo.join("sub/deeper");
        fs::create_dir_all(&sub).unwrap();
        git(&repo, &["init", "-q"]);
        assert_eq!(
            remote_workspace_folder(&Object::new(), Some(&sub), true, false).as_deref(),
            Some("/workspaces/r/sub/deeper")
        );
        assert_eq!(
            remote_workspace_folder(&Object::new(), Some(&sub), false, false).as_deref(),
            Some("/workspaces/deeper")
        );
        assert_eq!(
            remote_workspace_folder(&Object::new(), Some(&repo), true, false).as_deref(),
            Some("/workspaces/r")
        );
    }

    #[test]
    fn git_root_keeps_symlinked_paths() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("real");
        fs::create_dir_all(repo.join("sub")).unwrap();
        git(&repo, &["init", "-q"]);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&repo, &link).unwrap();
        assert_eq!(
            remote_workspace_folder(&Object::new(), Some(&link.join("sub")), true, false)
                .as_deref(),
            Some("/workspaces/link/sub")
        );
    }

    #[test]
    fn worktree_with_relative_gitdir() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("projects/main");
        let worktree = dir.path().join("projects/wt/feature");
        fs::create_dir_all(main.join(".git/worktrees/feature")).unwrap();
        fs::create_dir_all(&worktree).unwrap();
        fs::write(
            worktree.join(".git"),
            "gitdir: ../../main/.git/worktrees/feature\n",
        )
        .unwrap();
        // Not a real repository, so git finds no root and the worktree folder is the mount.
        assert_eq!(
            remote_workspace_folder(&Object::new(), Some(&worktree), true, true).as_deref(),
            Some("/workspaces/wt/feature")
        );
        assert_eq!(
            remote_workspace_folder(&Object::new(), Some(&worktree), true, false).as_deref(),
            Some("/workspaces/feature")
        );
        fs::write(
            worktree.join(".git"),
            "gitdir: /abs/main/.git/worktrees/feature\n",
        )
        .unwrap();
        assert_eq!(
            remote_workspace_folder(&Object::new(), Some(&worktree), true, true).as_deref(),
            Some("/workspaces/feature")
        );
    }

    #[test]
    fn path_helpers() {
        assert_eq!(relative(Path::new("/r"), Path::new("/r/a/b")), "a/b");
        assert_eq!(relative(Path::new("/r"), Path::new("/r")), "");
        assert_eq!(relative(Path::new("/r/x"), Path::new("/r/y")), "../y");
        assert_eq!(posix_join(&["/workspaces", ""]), "/workspaces");
        assert_eq!(posix_join(&["/workspaces", "a/../b/"]), "/workspaces/b/");
        assert_eq!(posix_join(&["", ""]), ".");
        assert_eq!(posix_join(&["/", ".."]), "/");
    }
}
