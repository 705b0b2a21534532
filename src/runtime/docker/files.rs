//! Files in a Docker container, through the Engine API's archive endpoint.
//!
//! `HEAD` for a path's stat (the `X-Docker-Container-Path-Stat` header; a symlink's target as the
//! link holds it comes from the first entry of its archive, as the header gives it resolved), `GET`
//! for a tar of a path (a folder's listing too), `PUT` to extract a tar into a folder
//! (`noOverwriteDirNonDir`, as docker cp sends it). Nothing is exec'd to move bytes. The daemon
//! makes extracted files root's; for another owner, and for a rename (which the API lacks), one
//! short exec as root runs `chown` / `mv` in the container.

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

    pub(super) fn read_archive(&self, container: &Container, path: &str) -> ArchiveStream {
        let options = DownloadFromContainerOptions {
            path: path.to_owned(),
        };
        let endpoint = self.endpoint.clone();
        let container = container.clone();
        let path = path.to_owned();
        self.client
            .download_from_container(&container.id.clone(), Some(options))
            .map_err(move |err| path_error(&endpoint, &container, &path, err))
            .boxed()
    }

    pub(super) async fn write_archive(
        &self,
        container: &Container,
        dir: &str,
        tar: ArchiveStream,
        owner: Option<Owner>,
    ) -> Result<(), RuntimeError> {
        let failure = bridge::Failure::default();
        let kept = failure.clone();
        // The daemon makes everything root's: another owner needs the archive's top-level
        // names for a chown afterwards, read from a copy of the stream as it goes up.
        let owner = owner.filter(|owner| owner.uid != 0 || owner.gid != 0);
        let (tar, names) = match owner {
            Some(_) => {
                let (tar, names) = tee_top_names(tar);
                (tar, Some(names))
            }
            None => (tar, None),
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
        let (Some(owner), Some(names)) = (owner, names) else {
            return Ok(());
        };
        let names = names.await.ok().and_then(Result::ok).unwrap_or_default();
        if names.is_empty() {
            return Ok(());
        }
        let dir = dir.trim_end_matches('/');
        let mut argv = vec![
            "chown".to_owned(),
            "-hR".to_owned(),
            format!("{}:{}", owner.uid, owner.gid),
            "--".to_owned(),
        ];
        argv.extend(names.iter().map(|name| format!("{dir}/{name}")));
        self.helper(container, dir, argv).await
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
        match capture(self, container, &spec, b"", HELPER_LIMIT).await? {
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

/// `tar` passed on as it is, and the top-level names of its entries, read from a copy of each
/// piece on a worker thread (a few pieces held at most).
fn tee_top_names(
    tar: ArchiveStream,
) -> (
    ArchiveStream,
    tokio::task::JoinHandle<std::io::Result<Vec<String>>>,
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
        tokio::task::spawn_blocking(move || tree::top_names(read)),
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
