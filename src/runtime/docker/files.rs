//! Files in a Docker container, through the Engine API's archive endpoint.
//!
//! `HEAD` for a path's stat (the `X-Docker-Container-Path-Stat` header; a symlink's target as the
//! link holds it comes from the first entry of its archive, as the header gives it resolved), `GET`
//! for a tar of a path (a folder's listing too), `PUT` to extract a tar into a folder
//! (`noOverwriteDirNonDir`, as docker cp sends it). Nothing is exec'd to move bytes. The daemon
//! makes extracted files root's; for another owner, and for a rename (which the API lacks), one
//! short exec as root runs `chown` / `mv` in the container. The `chown` is given each path the
//! archive wrote (NUL-separated on its stdin, through `xargs -0`), never a whole folder: it
//! touches only what was written.
//!
//! The archive call sees the container's root filesystem with its volumes and binds, but not its
//! tmpfs mounts (`--tmpfs`, `--mount type=tmpfs`: moby#22020): it would write beneath such a
//! mount, where no process of the container sees the files, while the `chown` exec sees the
//! mount. So a write into a tmpfs mount, or one that reaches a tmpfs mount point, is refused
//! with an error naming the mount, never reported as done; a stat or an archive of a path on
//! a tmpfs mount (which would answer from the folder hidden beneath it) is refused the same
//! way. The mounts are asked of the daemon once per container (they are fixed at creation).

use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    ContainerArchiveInfoOptions, DownloadFromContainerOptions, UploadToContainerOptions,
};
use futures_util::{StreamExt, TryStreamExt};

use super::Docker;
use crate::runtime::capture::{Outcome, capture};
use crate::runtime::tree::{self, FileKind, Owner, PathStat};
use crate::runtime::{ArchiveStream, Container, ExecSpec, ExitStatus, RuntimeError, bridge};

/// How long the `chown` or `mv` helper may take.
const HELPER_LIMIT: Duration = Duration::from_secs(60);

/// Go's `os.FileMode` bits, as the daemon encodes a stat's mode.
const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_SPECIAL: u32 = (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19);
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_STICKY: u32 = 1 << 20;

/// A file call's failure on `path`, as the user reads it.
fn path_error(
    endpoint: &str,
    container: &Container,
    path: &str,
    err: BollardError,
) -> RuntimeError {
    match err {
        BollardError::DockerResponseServerError {
            status_code: 404, ..
        } => RuntimeError::NoSuchPath {
            container: container.name.clone(),
            path: path.to_owned(),
        },
        BollardError::DockerResponseServerError {
            status_code: 400,
            message,
        } => RuntimeError::FileAccess {
            container: container.name.clone(),
            path: path.to_owned(),
            reason: message,
        },
        other => super::engine_error(endpoint, other),
    }
}

impl Docker {
    fn path_error(&self, container: &Container, path: &str, err: BollardError) -> RuntimeError {
        path_error(&self.endpoint, container, path, err)
    }

    pub(super) async fn stat_path(
        &self,
        container: &Container,
        path: &str,
    ) -> Result<PathStat, RuntimeError> {
        // The mount point itself is left to the caller: a write there is refused in its own
        // words, a read of it by the archive call.
        let mounts = self.tmpfs_mounts(container).await?;
        let clean = path.trim_end_matches('/');
        let inside: Vec<String> = mounts
            .into_iter()
            .filter(|mount| clean != mount.trim_end_matches('/'))
            .collect();
        refuse_beneath_tmpfs(container, path, &inside)?;
        let options = ContainerArchiveInfoOptions {
            path: path.to_owned(),
        };
        let stat = self
            .client
            .get_container_archive_info(&container.id, Some(options))
            .await
            .map_err(|err| self.path_error(container, path, err))?;
        let stat = from_go(
            stat.name,
            stat.size,
            stat.file_mode,
            stat.modification_time.as_deref(),
            stat.link_target,
        );
        if stat.kind != FileKind::Symlink {
            return Ok(stat);
        }
        // The daemon gives a link's target resolved; the link itself holds it as written.
        let (read, failure) = bridge::reader(self.read_archive(container, path));
        let first = tokio::task::spawn_blocking(move || tree::first_stat(read))
            .await
            .map_err(|err| RuntimeError::Unsupported(err.to_string()))?;
        if let Some(err) = failure.take() {
            return Err(err);
        }
        let first = first.map_err(|err| RuntimeError::file(container, path, &err))?;
        Ok(PathStat {
            link_target: first.link_target,
            ..stat
        })
    }

    /// A tar of `path`; refused (when the stream is first polled) for a path on a tmpfs mount,
    /// where the archive call would read the folder hidden beneath the mount.
    pub(super) fn read_archive(&self, container: &Container, path: &str) -> ArchiveStream {
        let options = DownloadFromContainerOptions {
            path: path.to_owned(),
        };
        let client = self.client.clone();
        let endpoint = self.endpoint.clone();
        let container = container.clone();
        let path = path.to_owned();
        futures_util::stream::once(async move {
            let mounts = tmpfs_mounts(&client, &endpoint, &container).await?;
            refuse_beneath_tmpfs(&container, &path, &mounts)?;
            Ok::<_, RuntimeError>(
                client
                    .download_from_container(&container.id.clone(), Some(options))
                    .map_err(move |err| path_error(&endpoint, &container, &path, err)),
            )
        })
        .try_flatten()
        .boxed()
    }

    pub(super) async fn write_archive(
        &self,
        container: &Container,
        dir: &str,
        tar: ArchiveStream,
        owner: Option<Owner>,
    ) -> Result<(), RuntimeError> {
        let tmpfs = self.tmpfs_mounts(container).await?;
        let dir = dir.trim_end_matches('/');
        let dir = if dir.is_empty() { "/" } else { dir };
        if let Some(mount) = tmpfs.iter().find(|mount| beneath(dir, mount)) {
            return Err(beneath_tmpfs(container, dir, mount));
        }
        let failure = bridge::Failure::default();
        let kept = failure.clone();
        // The archive's paths, read from a copy of the stream as it goes up: a tmpfs mount
        // point among them means the archive wrote beneath it; another owner than root needs
        // them for the chown afterwards.
        let owner = owner.filter(|owner| owner.uid != 0 || owner.gid != 0);
        let (tar, names) = match (owner, tmpfs.is_empty()) {
            (None, true) => (tar, None),
            _ => {
                let (tar, names) = tee_paths(tar);
                (tar, Some(names))
            }
        };
        let body = tar.map_err(move |err| kept.keep(err));
        let options = UploadToContainerOptions {
            path: dir.to_owned(),
            no_overwrite_dir_non_dir: Some("true".to_owned()),
            copy_uidgid: None,
        };
        let uploaded = self
            .client
            .upload_to_container(&container.id, Some(options), bollard::body_try_stream(body))
            .await;
        if let Some(err) = failure.take() {
            return Err(err);
        }
        uploaded.map_err(|err| self.path_error(container, dir, err))?;
        let Some(names) = names else {
            return Ok(());
        };
        let paths = names.await.ok().and_then(Result::ok).unwrap_or_default();
        let mut written = Vec::new();
        for path in &paths {
            let mut full = dir.trim_end_matches('/').as_bytes().to_vec();
            full.push(b'/');
            full.extend_from_slice(path);
            let shown = String::from_utf8_lossy(&full).into_owned();
            if let Some(mount) = tmpfs.iter().find(|mount| beneath(&shown, mount)) {
                return Err(beneath_tmpfs(container, &shown, mount));
            }
            written.extend_from_slice(&full);
            written.push(0);
        }
        let Some(owner) = owner.filter(|_| !written.is_empty()) else {
            return Ok(());
        };
        let argv = [
            "xargs",
            "-0",
            "chown",
            "-h",
            &format!("{}:{}", owner.uid, owner.gid),
            "--",
        ]
        .map(str::to_owned)
        .to_vec();
        self.helper_with_input(container, dir, argv, &written).await
    }

    /// Where the container has tmpfs mounts (`HostConfig.Tmpfs`, and `Mounts` of type
    /// `tmpfs`), which the archive call does not see.
    async fn tmpfs_mounts(&self, container: &Container) -> Result<Vec<String>, RuntimeError> {
        tmpfs_mounts(&self.client, &self.endpoint, container).await
    }

    pub(super) async fn list_dir(
        &self,
        container: &Container,
        path: &str,
        limit: usize,
    ) -> Result<Option<Vec<PathStat>>, RuntimeError> {
        let folder = format!("{}/", path.trim_end_matches('/'));
        let (read, failure) = bridge::reader(self.read_archive(container, &folder));
        let listed = tokio::task::spawn_blocking(move || tree::list_archive(read, limit))
            .await
            .map_err(|err| RuntimeError::Unsupported(err.to_string()))?;
        if let Some(err) = failure.take() {
            return Err(err);
        }
        listed.map_err(|err| RuntimeError::file(container, path, &err))
    }

    pub(super) async fn rename_path(
        &self,
        container: &Container,
        from: &str,
        to: &str,
    ) -> Result<(), RuntimeError> {
        let argv = ["mv", "-f", "--", from, to].map(str::to_owned).to_vec();
        self.helper(container, to, argv).await
    }

    /// Runs a file helper as root; its failure is the path's.
    async fn helper(
        &self,
        container: &Container,
        path: &str,
        argv: Vec<String>,
    ) -> Result<(), RuntimeError> {
        self.helper_with_input(container, path, argv, b"").await
    }

    /// [`Self::helper`], `input` on its stdin.
    async fn helper_with_input(
        &self,
        container: &Container,
        path: &str,
        argv: Vec<String>,
        input: &[u8],
    ) -> Result<(), RuntimeError> {
        let spec = ExecSpec {
            argv,
            user: Some("root".to_owned()),
            ..ExecSpec::default()
        };
        let failed = |reason: String| RuntimeError::FileAccess {
            container: container.name.clone(),
            path: path.to_owned(),
            reason,
        };
        match capture(self, container, &spec, input, HELPER_LIMIT).await? {
            Outcome::Finished(done) if matches!(done.status, ExitStatus::Code(0)) => Ok(()),
            Outcome::Finished(done) => Err(failed(format!(
                "{} failed: {}",
                spec.argv[0],
                String::from_utf8_lossy(&done.stderr).trim()
            ))),
            Outcome::TimedOut { .. } => Err(failed(format!("{} took too long", spec.argv[0]))),
        }
    }
}

/// Whether the clean absolute `path` is the mount point `mount` or beneath it.
fn beneath(path: &str, mount: &str) -> bool {
    let mount = mount.trim_end_matches('/');
    mount.is_empty()
        || path == mount
        || path
            .strip_prefix(mount)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The tmpfs mounts of each container seen (they are fixed when it is created), by id.
static TMPFS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, Vec<String>>>,
> = std::sync::LazyLock::new(Default::default);

/// Where `container` has tmpfs mounts (`HostConfig.Tmpfs`, and `Mounts` of type `tmpfs`), which
/// the archive call does not see; asked of the daemon once per container.
async fn tmpfs_mounts(
    client: &bollard::Docker,
    endpoint: &str,
    container: &Container,
) -> Result<Vec<String>, RuntimeError> {
    if let Some(known) = TMPFS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&container.id)
    {
        return Ok(known.clone());
    }
    let info = client
        .inspect_container(&container.id, None)
        .await
        .map_err(|err| path_error(endpoint, container, "/", err))?;
    let mut found: Vec<String> = info
        .host_config
        .and_then(|host| host.tmpfs)
        .unwrap_or_default()
        .into_keys()
        .collect();
    found.extend(
        info.mounts
            .unwrap_or_default()
            .into_iter()
            .filter(|mount| mount.typ.as_deref() == Some("tmpfs"))
            .filter_map(|mount| mount.destination),
    );
    TMPFS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(container.id.clone(), found.clone());
    Ok(found)
}

/// A read of `path` (a stat, an archive) refused where it is on one of the tmpfs `mounts`: the
/// archive call would answer from the folder hidden beneath the mount (moby#22020), a silent
/// wrong answer.
fn refuse_beneath_tmpfs(
    container: &Container,
    path: &str,
    mounts: &[String],
) -> Result<(), RuntimeError> {
    let clean = path.trim_end_matches('/');
    let clean = if clean.is_empty() { "/" } else { clean };
    match mounts.iter().find(|mount| beneath(clean, mount)) {
        Some(mount) => Err(RuntimeError::FileAccess {
            container: container.name.clone(),
            path: clean.to_owned(),
            reason: format!(
                "it is on the tmpfs mount {mount}, which Docker's archive call cannot reach (it reads the folder hidden beneath the mount: moby#22020); read it with a command in the container instead"
            ),
        }),
        None => Ok(()),
    }
}

fn beneath_tmpfs(container: &Container, path: &str, mount: &str) -> RuntimeError {
    RuntimeError::FileAccess {
        container: container.name.clone(),
        path: path.to_owned(),
        reason: format!(
            "it is on the tmpfs mount {mount}, which Docker's archive call cannot reach (it writes beneath the mount, where the container does not see it: moby#22020); write it with a command in the container instead"
        ),
    }
}

/// `tar` passed on as it is, and the paths of its entries (as in the archive, bytes), read from
/// a copy of each piece on a worker thread (a few pieces held at most).
fn tee_paths(
    tar: ArchiveStream,
) -> (
    ArchiveStream,
    tokio::task::JoinHandle<std::io::Result<Vec<Vec<u8>>>>,
) {
    let (to_names, names_from) = tokio::sync::mpsc::channel(4);
    let tar = tar
        .then(move |piece| {
            let to_names = to_names.clone();
            async move {
                if let Ok(bytes) = &piece {
                    let _ = to_names.send(Ok(bytes.clone())).await;
                }
                piece
            }
        })
        .boxed();
    let copy: ArchiveStream = futures_util::stream::unfold(names_from, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed();
    let (read, _) = bridge::reader(copy);
    (
        tar,
        tokio::task::spawn_blocking(move || tree::entry_paths(read)),
    )
}

/// A daemon stat (Go's `os.FileMode`, an RFC 3339 mtime) as dcx's.
pub(super) fn from_go(
    name: String,
    size: i64,
    mode: u32,
    mtime: Option<&str>,
    link_target: String,
) -> PathStat {
    let kind = if mode & GO_DIR != 0 {
        FileKind::Directory
    } else if mode & GO_SYMLINK != 0 {
        FileKind::Symlink
    } else if mode & GO_SPECIAL != 0 {
        FileKind::Other
    } else {
        FileKind::File
    };
    let time = mtime.and_then(unix_time).unwrap_or((0, 0));
    let mut bits = mode & 0o777;
    for (go, unix) in [
        (GO_SETUID, 0o4000),
        (GO_SETGID, 0o2000),
        (GO_STICKY, 0o1000),
    ] {
        if mode & go != 0 {
            bits |= unix;
        }
    }
    PathStat {
        name,
        name_bytes: None,
        kind,
        size: u64::try_from(size).unwrap_or(0),
        mode: bits,
        mtime: time.0,
        mtime_nsec: time.1,
        link_target: (kind == FileKind::Symlink && !link_target.is_empty()).then_some(link_target),
    }
}

/// Seconds since the epoch, and nanoseconds, of an RFC 3339 time with any UTC offset (the
/// daemon writes its own).
fn unix_time(text: &str) -> Option<(i64, u32)> {
    let (utc, offset) = match text.strip_suffix('Z') {
        Some(_) => (text.to_owned(), 0),
        None => {
            let at = text.len().checked_sub(6)?;
            let (time, zone) = text.split_at(at);
            let sign = match zone.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hours: i64 = zone.get(1..3)?.parse().ok()?;
            let minutes: i64 = zone.get(4..6)?.parse().ok()?;
            (format!("{time}Z"), sign * (hours * 3600 + minutes * 60))
        }
    };
    let at = humantime::parse_rfc3339_weak(utc.trim_end_matches('Z')).ok()?;
    let since = at.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some((
        i64::try_from(since.as_secs()).ok()? - offset,
        since.subsec_nanos(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_stats_read_as_unix_ones() {
        let stat = from_go(
            "bin".into(),
            7,
            GO_SYMLINK | 0o777,
            Some("2024-05-01T10:00:00.5+02:00"),
            "usr/bin".into(),
        );
        assert_eq!(stat.kind, FileKind::Symlink);
        assert_eq!(stat.link_target.as_deref(), Some("usr/bin"));
        assert_eq!((stat.mtime, stat.mtime_nsec), (1_714_550_400, 500_000_000));
        let dir = from_go(
            "tmp".into(),
            0,
            GO_DIR | GO_STICKY | 0o777,
            None,
            String::new(),
        );
        assert_eq!((dir.kind, dir.mode), (FileKind::Directory, 0o1777));
        assert_eq!(unix_time("2024-05-01T08:00:00Z"), Some((1_714_550_400, 0)));
        assert_eq!(unix_time("garbage"), None);
    }
}
