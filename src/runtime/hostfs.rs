//! Files of a container whose root the host can see, handled on the host.
//!
//! That is crun's (and the in-memory engine's of the tests): through `/proc/PID/root` of its first
//! process while it runs (the container's own mount tree: its bind mounts included), else its root
//! filesystem (crun's bundle). Every path is resolved inside that root by the kernel
//! ([`Root::container`]), so no `..` or symlink the container holds can reach a host file. The tree
//! work is blocking and runs on a worker thread.
//!
//! A pid is only a number: once the container is gone, a host process may be given the same one,
//! and its `/proc/PID/root` is the host's `/`. So the root is opened only while the pid is still
//! the process the container was created with (its start time, recorded by crun and kept in the
//! [`Container`] from the session's creation on, read before and after the open: a process alive
//! with that start time at both ends was alive in between, so its pid was not reused), and every
//! call works through that one opened root. A process that is gone or not the recorded one is
//! `container_not_running`, never a fall back to the host.

use std::path::{Path, PathBuf};

use crate::runtime::tree::{Owner, PathStat, Root};
use crate::runtime::{ArchiveStream, Container, RuntimeError, bridge};

/// The container's root as the host sees it, checked to be the container's own at this moment
/// (for a caller that opens it at once; [`open_root`] closes even that gap).
pub(crate) fn root_dir(container: &Container) -> Result<PathBuf, RuntimeError> {
    if let Some(pid) = live_pid(container) {
        let pid = pid?;
        return Ok(PathBuf::from(format!("/proc/{pid}/root")));
    }
    rootfs(container)
}

/// The container's first process while it runs: `None` when it was not running when looked up
/// (its root filesystem serves then), an error when it has gone since (or its pid is another
/// process's now).
fn live_pid(container: &Container) -> Option<Result<i64, RuntimeError>> {
    let pid = container.init_pid.filter(|_| container.running)?;
    Some(if is_recorded(pid, container.init_start) {
        Ok(pid)
    } else {
        Err(RuntimeError::NotRunning(container.name.clone()))
    })
}

fn rootfs(container: &Container) -> Result<PathBuf, RuntimeError> {
    container
        .rootfs
        .clone()
        .ok_or_else(|| RuntimeError::FileAccess {
            container: container.name.clone(),
            path: "/".to_owned(),
            reason: "crun's state names no root filesystem".to_owned(),
        })
}

/// The container's root, opened: `/proc/PID/root` of its first process, checked to be the
/// recorded process before and after the open (see the module doc), else its root filesystem.
pub(crate) fn open_root(container: &Container) -> Result<Root, RuntimeError> {
    let Some(pid) = live_pid(container) else {
        let dir = rootfs(container)?;
        return Root::container(&dir).map_err(|err| RuntimeError::file(container, "/", &err));
    };
    let pid = pid?;
    let gone = || RuntimeError::NotRunning(container.name.clone());
    let opened = Root::container(Path::new(&format!("/proc/{pid}/root")));
    if !is_recorded(pid, container.init_start) {
        return Err(gone());
    }
    match opened {
        Ok(root) => Ok(root),
        // A process on its way out has no root left to open.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(gone()),
        Err(err) => Err(RuntimeError::file(container, "/", &err)),
    }
}

/// Whether `pid` is a live process (not a zombie) started at `recorded` (clock ticks since boot,
/// `/proc/PID/stat`'s field 22); with nothing recorded, whether it is alive.
fn is_recorded(pid: i64, recorded: Option<u64>) -> bool {
    match (start_time(pid), recorded) {
        (Some(now), Some(recorded)) => now == recorded,
        (now, None) => now.is_some(),
        (None, Some(_)) => false,
    }
}

/// Field 22 of `/proc/PID/stat` (the start time), for a process that has not exited.
fn start_time(pid: i64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Runs `work` on the container's root on a worker thread; its I/O errors are `path`'s.
async fn on_root<T: Send + 'static>(
    container: &Container,
    path: &str,
    work: impl FnOnce(&Root) -> std::io::Result<T> + Send + 'static,
) -> Result<T, RuntimeError> {
    let root = open_root(container)?;
    let done = tokio::task::spawn_blocking(move || work(&root))
        .await
        .map_err(|err| RuntimeError::Unsupported(err.to_string()))?;
    done.map_err(|err| RuntimeError::file(container, path, &err))
}

pub async fn stat_path(container: &Container, path: &str) -> Result<PathStat, RuntimeError> {
    let owned = path.to_owned();
    on_root(container, path, move |root| root.stat(&owned)).await
}

pub async fn read_archive(
    container: &Container,
    path: &str,
) -> Result<ArchiveStream, RuntimeError> {
    // Fail before the stream for a path that is not there: the caller's message is exact.
    let stat = stat_path(container, path).await?;
    let root = open_root(container)?;
    let owned = path.to_owned();
    let failed = {
        let container = container.clone();
        let path = path.to_owned();
        move |err: std::io::Error| RuntimeError::file(&container, &path, &err)
    };
    Ok(bridge::writer(
        move |out| root.pack(&owned, &stat.name, out),
        failed,
    ))
}

pub async fn write_archive(
    container: &Container,
    dir: &str,
    tar: ArchiveStream,
    owner: Option<Owner>,
) -> Result<(), RuntimeError> {
    let (read, failure) = bridge::reader(tar);
    let owned = dir.to_owned();
    let unpacked = on_root(container, dir, move |root| {
        root.unpack(&owned, read, owner, None)
    })
    .await;
    if let Some(err) = failure.take() {
        return Err(err);
    }
    // A device or socket in the archive is not created there: said, never dropped silently.
    let unpacked = unpacked?;
    match unpacked.skipped.as_slice() {
        [] => Ok(()),
        [first, rest @ ..] => Err(RuntimeError::FileAccess {
            container: container.name.clone(),
            path: format!("{}/{first}", dir.trim_end_matches('/')),
            reason: format!(
                "a device or socket in the archive{}, not created (dcx cp copies files, folders, symbolic links and fifos)",
                match rest.len() {
                    0 => String::new(),
                    more => format!(" (and {more} more)"),
                }
            ),
        }),
    }
}

pub async fn list_dir(
    container: &Container,
    path: &str,
    limit: usize,
) -> Result<Option<Vec<PathStat>>, RuntimeError> {
    let owned = path.to_owned();
    let listed = on_root(container, path, move |root| root.list(&owned)).await?;
    Ok((listed.len() <= limit).then_some(listed))
}

pub async fn rename_path(container: &Container, from: &str, to: &str) -> Result<(), RuntimeError> {
    let (from, owned) = (from.to_owned(), to.to_owned());
    on_root(container, to, move |root| root.rename(&from, &owned)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_is_the_container_s_only_with_its_recorded_start_time() {
        let own = i64::from(std::process::id());
        let started = start_time(own);
        assert!(started.is_some());
        let container = Container {
            name: "c1".into(),
            running: true,
            init_pid: Some(own),
            init_start: started,
            ..Container::default()
        };
        assert_eq!(
            root_dir(&container).unwrap(),
            PathBuf::from(format!("/proc/{own}/root"))
        );
        assert!(open_root(&container).is_ok());
        // The same pid, another process (as after a reuse): not running, never the host's root.
        let reused = Container {
            init_start: started.map(|t| t + 1),
            ..container.clone()
        };
        assert!(matches!(
            open_root(&reused),
            Err(RuntimeError::NotRunning(name)) if name == "c1"
        ));
        assert!(matches!(
            root_dir(&reused),
            Err(RuntimeError::NotRunning(_))
        ));
        let gone = Container {
            init_pid: Some(i64::from(i32::MAX)),
            init_start: None,
            ..container
        };
        assert!(matches!(open_root(&gone), Err(RuntimeError::NotRunning(_))));
    }
}
