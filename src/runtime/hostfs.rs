//! Files of a container whose root the host can see, handled on the host.
//!
//! That is crun's (and the in-memory engine's of the tests): through `/proc/PID/root` of its first
//! process while it runs (the container's own mount tree: its bind mounts included), else its root
//! filesystem (crun's bundle). Every path is resolved inside that root by the kernel
//! ([`Root::container`]), so no `..` or symlink the container holds can reach a host file. The tree
//! work is blocking and runs on a worker thread.

use std::path::PathBuf;

use crate::runtime::tree::{Owner, PathStat, Root};
use crate::runtime::{ArchiveStream, Container, RuntimeError, bridge};

/// The container's root as the host sees it.
pub(crate) fn root_dir(container: &Container) -> Result<PathBuf, RuntimeError> {
    if container.running
        && let Some(pid) = container.init_pid
    {
        return Ok(PathBuf::from(format!("/proc/{pid}/root")));
    }
    container
        .rootfs
        .clone()
        .ok_or_else(|| RuntimeError::FileAccess {
            container: container.name.clone(),
            path: "/".to_owned(),
            reason: "crun's state names no root filesystem".to_owned(),
        })
}

/// Runs `work` on the container's root on a worker thread; its I/O errors are `path`'s.
async fn on_root<T: Send + 'static>(
    container: &Container,
    path: &str,
    work: impl FnOnce(&Root) -> std::io::Result<T> + Send + 'static,
) -> Result<T, RuntimeError> {
    let dir = root_dir(container)?;
    let done = tokio::task::spawn_blocking(move || work(&Root::container(&dir)?))
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
    let dir = root_dir(container)?;
    let owned = path.to_owned();
    let failed = {
        let container = container.clone();
        let path = path.to_owned();
        move |err: std::io::Error| RuntimeError::file(&container, &path, &err)
    };
    Ok(bridge::writer(
        move |out| Root::container(&dir)?.pack(&owned, &stat.name, out),
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
    unpacked.map(drop)
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
