//! Cheap looks at a container's files, costing no exec: small reads and path states.
//!
//! A small file's contents (its `/etc/passwd` and `/etc/group`: [`read_small`]), a byte range of a
//! file through the archive call (the agent's `fs.read`: [`read_archived`]), and the state of a few
//! paths (the shell's startup files, which say whether a cached probe is stale: [`states`]).
//!
//! Two routes, the first that works:
//! * the container's root as this host sees it, when the engine offers one ([`Runtime::host_root`]:
//!   crun, a local Docker or podman): plain system calls, every path resolved inside that root by
//!   the kernel ([`Root::container`]), no engine round trip;
//! * else the engine's file calls ([`Runtime::stat_paths`], [`Runtime::read_archive`],
//!   [`Runtime::list_dir`]): on a remote Docker, the stats of every path at once (one round trip,
//!   pipelined on one connection), one more request per link followed, and a folder's listing (a
//!   whole archive of it) only when asked for.
//!
//! The host route sees sizes, times and inodes; the engine's calls, sizes and modification times
//! (to the nanosecond on Docker). A state is only ever compared with one taken the same way.

use std::io;

use serde::Serialize;

use super::paths::{self, Followed};
use super::tree::{self, FileKind, FileRead, Root};
use super::{Container, Runtime, RuntimeError, bridge};

/// The most entries of one watched folder looked at.
pub const MAX_ENTRIES: usize = 1000;

/// A path whose state is watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub path: String,
    /// Whether a folder's entries are watched too (`/etc/profile.d`).
    pub entries: Entries,
}

/// Which entries of a watched folder are looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entries {
    /// None: the path alone.
    None,
    /// All of them, as the folder lists them now.
    Listed,
    /// The ones with these names (sorted), seen in an earlier listing. On the host they are
    /// listed anyway (a listing costs nothing there); through the engine, whose listing is a
    /// whole archive of the folder, only these are looked at, and the folder's own time tells
    /// whether names came or went since.
    Known(Vec<String>),
}

/// What a watched path was when looked at, links followed: `missing`, or its kind, size and
/// times, as precisely as the route tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileState {
    pub path: String,
    pub seen: String,
}

/// Runs `work` on the host's view of the container's root; `None` when there is no such view
/// or this user may not open it (another user's `/proc/PID/root`).
///
/// In place, not on a worker thread: these are a few metadata calls and small reads on a local
/// filesystem (tens of microseconds), while starting a worker thread and waiting for it costs
/// more than that, and much more on a busy machine, on every exec's way to the command.
async fn on_host<T: Send + 'static>(
    runtime: &dyn Runtime,
    container: &Container,
    work: impl FnOnce(&Root) -> T + Send + 'static,
) -> Option<T> {
    open_host_root(runtime, container).map(|root| work(&root))
}

/// The container's root as this host sees it, opened; `None` where there is no such view or it
/// cannot be opened. The engine is asked for it again once it is open: it checks that the
/// process is still the container's (crun: its recorded start time), so the root opened in
/// between was the container's, never a later process's given the same pid.
pub fn open_host_root(runtime: &dyn Runtime, container: &Container) -> Option<Root> {
    let dir = runtime.host_root(container)?;
    let root = Root::container(&dir).ok()?;
    runtime
        .host_root(container)
        .filter(|again| *again == dir)
        .map(|_| root)
}

/// The regular file `path` of the container (links followed), at most `limit` bytes; `None`
/// when nothing is there.
pub async fn read_small(
    runtime: &dyn Runtime,
    container: &Container,
    path: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>, RuntimeError> {
    let owned = path.to_owned();
    if let Some(read) = on_host(runtime, container, move |root| root.read(&owned, limit)).await {
        return match read {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(RuntimeError::file(container, path, &err)),
        };
    }
    let refused = |reason: String| RuntimeError::FileAccess {
        container: container.name.clone(),
        path: path.to_owned(),
        reason,
    };
    match paths::follow(runtime, container, path).await? {
        Followed::Missing(_) => Ok(None),
        Followed::TooManyLinks(_) => Err(refused("too many levels of symbolic links".into())),
        Followed::Found(followed, _) => {
            match read_archived(runtime, container, &followed, 0, None, limit).await? {
                FileRead::Read(bytes, _) => Ok(Some(bytes)),
                FileRead::NotAFile(_) => Err(refused("not a regular file".into())),
                FileRead::TooLarge(stat) => Err(refused(format!(
                    "{} bytes, more than the {limit} read",
                    stat.size
                ))),
            }
        }
    }
}

/// `length` bytes (default: the rest) from `offset` of the file `path` (not followed), through
/// the engine's archive call; a read of more than `limit` bytes is refused.
pub async fn read_archived(
    runtime: &dyn Runtime,
    container: &Container,
    path: &str,
    offset: u64,
    length: Option<u64>,
    limit: u64,
) -> Result<FileRead, RuntimeError> {
    let archive = runtime.read_archive(container, path).await?;
    let (read, failure) = bridge::reader(archive);
    let read =
        tokio::task::spawn_blocking(move || tree::read_archive_file(read, offset, length, limit))
            .await
            .map_err(|err| RuntimeError::Unsupported(err.to_string()))?;
    if let Some(err) = failure.take() {
        return Err(err);
    }
    read.map_err(|err| RuntimeError::file(container, path, &err))
}

/// The state of each watched path, in order, a watched folder's entries after it (sorted, at
/// most [`MAX_ENTRIES`]). An error means the paths could not be looked at at all (the engine
/// has no file calls, or is gone); a path that cannot be read is a state of its own.
pub async fn states(
    runtime: &dyn Runtime,
    container: &Container,
    watched: &[Watched],
) -> Result<Vec<FileState>, RuntimeError> {
    let list = watched.to_vec();
    if let Some(states) = on_host(runtime, container, move |root| host_states(root, &list)).await {
        return Ok(states);
    }
    // The engine's calls, all sent together (one round trip on Docker): the watched paths, and
    // the entries an earlier look found in the watched folders; only a folder to be listed
    // anew (a first look) costs a listing and a second batch.
    let known = |watched: &Watched| match &watched.entries {
        Entries::Known(names) => {
            let folder = watched.path.trim_end_matches('/').to_owned();
            names
                .iter()
                .map(|name| format!("{folder}/{name}"))
                .collect()
        }
        _ => Vec::new(),
    };
    let mut paths: Vec<String> = watched.iter().map(|w| w.path.clone()).collect();
    for watched in watched {
        paths.extend(known(watched));
    }
    let mut found = engine_states(runtime, container, &paths).await?.into_iter();
    let first: Vec<_> = found.by_ref().take(watched.len()).collect();
    let mut states = Vec::new();
    for (watched, (state, kind)) in watched.iter().zip(first) {
        states.push(state);
        let entries = known(watched);
        // Read in the same batch, whether or not the folder is still one.
        let entries_found: Vec<_> = found.by_ref().take(entries.len()).collect();
        if kind != Some(FileKind::Directory) {
            continue;
        }
        match &watched.entries {
            Entries::None => {}
            Entries::Known(_) => states.extend(entries_found.into_iter().map(|(state, _)| state)),
            Entries::Listed => {
                let names = match runtime
                    .list_dir(container, &watched.path, MAX_ENTRIES)
                    .await
                {
                    Ok(Some(entries)) => entries.into_iter().map(|entry| entry.name),
                    // More than the limit: the folder's own state stands for them.
                    Ok(None) => continue,
                    Err(err) => {
                        states.push(FileState {
                            path: format!("{}/", watched.path),
                            seen: unreadable(err)?,
                        });
                        continue;
                    }
                };
                // Each entry looked at on its own, as a later check with these names will.
                let folder = watched.path.trim_end_matches('/');
                let paths: Vec<String> = names.map(|name| format!("{folder}/{name}")).collect();
                let found = engine_states(runtime, container, &paths).await?;
                states.extend(found.into_iter().map(|(state, _)| state));
            }
        }
    }
    Ok(states)
}

fn host_states(root: &Root, watched: &[Watched]) -> Vec<FileState> {
    let mut states = Vec::new();
    for watched in watched {
        let stat = root.followed_stat(&watched.path);
        let is_dir = matches!(&stat, Ok(stat) if tree::kind_of(stat) == FileKind::Directory);
        states.push(FileState {
            path: watched.path.clone(),
            seen: host_seen(stat),
        });
        if watched.entries == Entries::None || !is_dir {
            continue;
        }
        match root.names(&watched.path) {
            Ok(names) => {
                for name in names.into_iter().take(MAX_ENTRIES) {
                    let path = format!("{}/{name}", watched.path.trim_end_matches('/'));
                    let seen = host_seen(root.followed_stat(&path));
                    states.push(FileState { path, seen });
                }
            }
            Err(err) => states.push(FileState {
                path: format!("{}/", watched.path),
                seen: format!("unreadable: {err}"),
            }),
        }
    }
    states
}

fn host_seen(stat: io::Result<rustix::fs::Stat>) -> String {
    match stat {
        Ok(stat) => format!(
            "{} of {} bytes, inode {}:{}, modified {}.{:09}, changed {}.{:09}",
            kind_word(tree::kind_of(&stat)),
            stat.st_size,
            stat.st_dev,
            stat.st_ino,
            stat.st_mtime,
            stat.st_mtime_nsec,
            stat.st_ctime,
            stat.st_ctime_nsec
        ),
        Err(err) if err.kind() == io::ErrorKind::NotFound => "missing".to_owned(),
        Err(err) => format!("unreadable: {err}"),
    }
}

/// The state of each path (links followed) as the engine's calls see it, and its kind, in
/// order: one [`Runtime::stat_paths`] for all of them, then one link at a time for the few
/// that are links.
async fn engine_states(
    runtime: &dyn Runtime,
    container: &Container,
    paths: &[String],
) -> Result<Vec<(FileState, Option<FileKind>)>, RuntimeError> {
    let stats = runtime.stat_paths(container, paths).await;
    let mut states = Vec::with_capacity(paths.len());
    for (path, stat) in paths.iter().zip(stats) {
        let followed = match stat {
            Ok(stat) if stat.kind == FileKind::Symlink => {
                paths::follow(runtime, container, path).await
            }
            Ok(stat) => Ok(Followed::Found(path.clone(), stat)),
            Err(RuntimeError::NoSuchPath { .. }) => Ok(Followed::Missing(path.clone())),
            Err(err) => Err(err),
        };
        let (seen, kind) = match followed {
            Ok(Followed::Found(_, stat)) => (
                format!(
                    "{} of {} bytes, modified {}.{:09}",
                    kind_word(stat.kind),
                    stat.size,
                    stat.mtime,
                    stat.mtime_nsec
                ),
                Some(stat.kind),
            ),
            Ok(Followed::Missing(_)) => ("missing".to_owned(), None),
            Ok(Followed::TooManyLinks(_)) => ("a loop of symbolic links".to_owned(), None),
            Err(err) => (unreadable(err)?, None),
        };
        states.push((
            FileState {
                path: path.clone(),
                seen,
            },
            kind,
        ));
    }
    Ok(states)
}

/// A file call's failure as a state of the path (a file that cannot be read), or the error
/// itself when it is not about the path (the engine is gone, or has no file calls).
fn unreadable(err: RuntimeError) -> Result<String, RuntimeError> {
    match err {
        RuntimeError::FileAccess { reason, .. } => Ok(format!("unreadable: {reason}")),
        err => Err(err),
    }
}

fn kind_word(kind: FileKind) -> &'static str {
    match kind {
        FileKind::File => "file",
        FileKind::Directory => "folder",
        FileKind::Symlink => "link",
        FileKind::Other => "special file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::memory::Memory;

    fn with_root(dir: &std::path::Path) -> (Memory, Container) {
        let mut memory = Memory::with_container("c1");
        memory.containers[0].rootfs = Some(dir.to_path_buf());
        let container = memory.containers[0].clone();
        (memory, container)
    }

    fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work)
    }

    #[test]
    fn a_small_file_is_read_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        // An absolute link means the container's own path, never the host's.
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        let (memory, c) = with_root(dir.path());
        block_on(async {
            let read = read_small(&memory, &c, "/link", 1024).await.unwrap();
            assert_eq!(read.as_deref(), Some(&b"root:x:0:0::/root:/bin/sh\n"[..]));
            assert_eq!(
                read_small(&memory, &c, "/nothing", 1024).await.unwrap(),
                None
            );
            let err = read_small(&memory, &c, "/etc/passwd", 4).await.unwrap_err();
            assert!(err.to_string().contains("larger than 4 bytes"), "{err}");
            let err = read_small(&memory, &c, "/etc", 1024).await.unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
            // A fifo is refused, not waited on.
            let fifo = dir.path().join("etc/fifo");
            assert!(
                std::process::Command::new("mkfifo")
                    .arg(&fifo)
                    .status()
                    .unwrap()
                    .success()
            );
            let err = read_small(&memory, &c, "/etc/fifo", 1024)
                .await
                .unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
        });
    }

    #[test]
    fn a_change_to_a_watched_file_or_folder_changes_its_state() {
        let dir = tempfile::tempdir().unwrap();
        let profile_d = dir.path().join("etc/profile.d");
        std::fs::create_dir_all(&profile_d).unwrap();
        std::fs::write(dir.path().join("etc/profile"), "x").unwrap();
        let (memory, c) = with_root(dir.path());
        let watched = [
            Watched {
                path: "/etc/profile".into(),
                entries: Entries::None,
            },
            Watched {
                path: "/etc/profile.d".into(),
                entries: Entries::Listed,
            },
            Watched {
                path: "/root/.bashrc".into(),
                entries: Entries::None,
            },
        ];
        let look = || block_on(states(&memory, &c, &watched)).unwrap();
        let first = look();
        assert_eq!(first.len(), 3);
        assert_eq!(first[2].seen, "missing");
        assert_eq!(look(), first, "nothing changed");
        std::fs::write(profile_d.join("a.sh"), "export A=1").unwrap();
        let second = look();
        assert_eq!(second.len(), 4);
        assert_eq!(second[2].path, "/etc/profile.d/a.sh");
        // The same size, written again: the change time tells.
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(profile_d.join("a.sh"), "export A=2").unwrap();
        assert_ne!(look(), second);
    }
}
