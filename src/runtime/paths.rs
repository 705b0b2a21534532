//! Container paths as the container resolves them: made absolute, cleaned, split, followed.
//!
//! Paths are made absolute and clean ([`container_path`]), split into folder and name ([`split`]),
//! and followed through symlinks with the engine's own stat call ([`follow`]), so on any engine,
//! remote ones included. What a path leads to is decided one link at a time, up to Linux's own
//! limit (40 links).

use super::tree::{FileKind, PathStat};
use super::{Container, Runtime, RuntimeError};

/// How many symlinks a path may go through before it is refused (Linux's own limit).
const MAX_LINKS: usize = 40;

/// `path` made absolute against `cwd` and cleaned (`.`, `..`, repeated `/`); a trailing `/` is
/// kept, as it asks for a folder.
pub fn container_path(cwd: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{path}", cwd.trim_end_matches('/'))
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    let mut clean = format!("/{}", parts.join("/"));
    if (path.ends_with('/') || path.ends_with("/.")) && clean != "/" {
        clean.push('/');
    }
    clean
}

/// The parent folder and last component of a clean absolute path.
pub fn split(path: &str) -> (String, String) {
    let path = path.trim_end_matches('/');
    match path.rsplit_once('/') {
        Some(("", name)) => ("/".to_owned(), name.to_owned()),
        Some((parent, name)) => (parent.to_owned(), name.to_owned()),
        None => ("/".to_owned(), path.to_owned()),
    }
}

/// What a path leads to once its symlinks are followed.
#[derive(Debug)]
pub enum Followed {
    /// The path reached, and what it is (not a symlink).
    Found(String, PathStat),
    /// Nothing is there: the last path reached.
    Missing(String),
    /// More than `MAX_LINKS` (40) links: the path where following stopped.
    TooManyLinks(String),
}

/// `path` with every symlink followed, inside the container, through [`Runtime::stat_path`].
pub async fn follow(
    runtime: &dyn Runtime,
    container: &Container,
    path: &str,
) -> Result<Followed, RuntimeError> {
    let mut path = path.to_owned();
    for _ in 0..MAX_LINKS {
        let stat = match runtime.stat_path(container, &path).await {
            Ok(stat) => stat,
            Err(RuntimeError::NoSuchPath { .. }) => return Ok(Followed::Missing(path)),
            Err(err) => return Err(err),
        };
        match (&stat.kind, &stat.link_target) {
            (FileKind::Symlink, Some(target)) => {
                let (parent, _) = split(&path);
                path = container_path(&parent, target);
            }
            _ => return Ok(Followed::Found(path, stat)),
        }
    }
    Ok(Followed::TooManyLinks(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_are_made_absolute_and_clean() {
        assert_eq!(
            container_path("/workspaces/app", "src/x"),
            "/workspaces/app/src/x"
        );
        assert_eq!(container_path("/w", "/etc//os-release"), "/etc/os-release");
        assert_eq!(container_path("/w", "../../../etc"), "/etc");
        assert_eq!(container_path("/w", "tmp/"), "/w/tmp/");
        assert_eq!(container_path("/w", "dir/."), "/w/dir/");
        assert_eq!(container_path("/", "."), "/");
        assert_eq!(split("/a/b/"), ("/a".to_owned(), "b".to_owned()));
        assert_eq!(split("/a"), ("/".to_owned(), "a".to_owned()));
    }
}
