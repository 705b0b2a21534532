//! Files around exec: `dcx cp` both ways and the agent's `fs.*`, on any engine.
//!
//! All go through the engine's file calls ([`crate::runtime::Runtime`]: archives, stats, listings,
//! renames). Copies follow docker cp's rules: a destination folder that exists receives the source
//! under its own name; otherwise the source lands under the destination's name, whose parent must
//! exist; a source ending in `/.` gives its contents; a destination ending in `/` must be a folder;
//! a folder never replaces a file. Symlinks travel as links. What is written into a container
//! belongs to the target's user (`--user`, else `remoteUser`, …), numerically resolved in the
//! container's own `/etc/passwd` and `/etc/group` (read without an exec: on the host where it sees
//! the container's root, else through the archive call). On the host, what is written belongs to
//! the caller, and nothing leaves the destination folder. Trees stream in pieces: memory stays
//! bounded whatever their size.
//!
//! The agent calls ([`Engine::read_file`], [`Engine::write_file`], …) follow links inside the
//! container, refuse reads over a limit, and replace files in one step (a temporary name in the
//! same folder, then a rename).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use super::{Engine, EngineError, Input, Output, PrepareRequest};
use crate::passwd::{ACCOUNTS_LIMIT, numeric_ids};
use crate::runtime::helper::UserFileError;
pub use crate::runtime::paths::container_path;
use crate::runtime::paths::{self, Followed, split};
use crate::runtime::peek;
use crate::runtime::tree::{FileKind, FileRead, Owner, PathStat, Root, pax_time_value};
use crate::runtime::{ArchiveStream, Container, RuntimeError, bridge};

/// A container and the user its written files belong to.
#[derive(Debug, Clone)]
pub struct FileTarget {
    pub container: Container,
    /// The whole user string (`vscode`, `1000:1000`).
    pub user: String,
    /// Where a relative container path starts: the remote workspace folder, else `/`.
    pub cwd: String,
}

/// Where a copy into the container comes from.
pub enum CopySource {
    /// A host path: a file, a folder (`…/.` for its contents) or a symlink.
    Host(PathBuf),
    /// A tar stream (`-`), extracted into an existing folder.
    Tar(Input),
}

/// Where a copy out of the container goes.
pub enum CopyDestination {
    Host(PathBuf),
    /// A tar stream (`-`).
    Tar(Output),
}

/// What a copy moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The size of the tar stream.
    pub bytes: u64,
    /// The paths (as in the archive) of entries not created: devices, sockets.
    pub skipped: Vec<String>,
}

/// The bytes of a file read for an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    pub bytes: Vec<u8>,
    /// The file's stat (its whole size, not the range's).
    pub stat: PathStat,
    /// The path read, links followed.
    pub path: String,
}

/// How the file calls fail; each message is the line the user sees.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("No such file or directory: {0}")]
    NoSuchHostPath(String),
    #[error("The destination directory {0} does not exist.")]
    NoSuchDirectory(String),
    #[error("{0} is not a directory.")]
    NotADirectory(String),
    #[error("{0} is a directory.")]
    IsADirectory(String),
    #[error("{0} is not a regular file.")]
    NotAFile(String),
    #[error("Cannot copy the directory {src} onto the file {dst}.")]
    DirectoryOntoFile { src: String, dst: String },
    #[error(
        "{path} is {size} bytes: more than the {limit} bytes one read may return; read it in ranges (offset, length)."
    )]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{path} holds more than {limit} entries.")]
    TooManyEntries { path: String, limit: usize },
    /// The session's user may not do this (the kernel's answer to the in-container helper).
    #[error("Cannot access {path}: {reason} (as the session's user).")]
    Denied { path: String, reason: String },
    #[error("Too many levels of symbolic links: {0}")]
    TooManyLinks(String),
    #[error("Cannot copy {path}: {reason}")]
    Host { path: String, reason: String },
    /// A path that is not UTF-8 where only UTF-8 paths can go (the engine's archive call).
    #[error(
        "{0} is not UTF-8: such a path is reached through the in-container helper, or where the container's root is visible from this host, not through the engine's archive call."
    )]
    NotUtf8(String),
    /// A copy's source is a socket or a device (or the engine sent nothing for it).
    #[error(
        "Cannot copy {path}: it is {what}; dcx cp copies files, folders, symbolic links and fifos."
    )]
    NotCopied { path: String, what: &'static str },
}

fn host_error(path: &Path, err: &std::io::Error) -> FileError {
    if err.kind() == std::io::ErrorKind::NotFound {
        return FileError::NoSuchHostPath(path.display().to_string());
    }
    FileError::Host {
        path: path.display().to_string(),
        reason: crate::runtime::io_reason(err),
    }
}

/// `source`'s pieces counted into `count`.
fn counted(source: ArchiveStream, count: Arc<AtomicU64>) -> ArchiveStream {
    source
        .inspect_ok(move |piece| {
            count.fetch_add(piece.len() as u64, Ordering::Relaxed);
        })
        .boxed()
}

fn input_stream(input: Input) -> ArchiveStream {
    ReaderStream::new(input)
        .map_err(|err| RuntimeError::Unsupported(format!("Cannot read the tar stream: {err}")))
        .boxed()
}

impl Engine {
    /// The container the request's selectors mean and the user files are written as; no
    /// environment is probed.
    pub async fn file_target(&self, request: &PrepareRequest) -> Result<FileTarget, EngineError> {
        let (container, user, folder) =
            super::prepare::user_of(self.runtime.as_ref(), request, &self.log).await?;
        Ok(FileTarget {
            container,
            user,
            cwd: folder.unwrap_or_else(|| "/".to_owned()),
        })
    }

    /// `user` (`name`, `uid`, `name:group`, `uid:gid`) as numbers, from the container's
    /// `/etc/passwd` and `/etc/group`.
    pub async fn owner(&self, container: &Container, user: &str) -> Result<Owner, EngineError> {
        let passwd = self.account_file(container, "/etc/passwd").await;
        // The group file is read only for a group given by name.
        let group = match user.split_once(':') {
            Some((_, group)) if group.parse::<u32>().is_err() => {
                self.account_file(container, "/etc/group").await
            }
            _ => String::new(),
        };
        let (uid, gid) = numeric_ids(user, &passwd, || group).map_err(RuntimeError::from)?;
        Ok(Owner { uid, gid })
    }

    /// A small file of the container's, empty when it cannot be read.
    async fn account_file(&self, container: &Container, path: &str) -> String {
        match peek::read_small(self.runtime.as_ref(), container, path, ACCOUNTS_LIMIT).await {
            Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            _ => String::new(),
        }
    }

    /// What `path` is (a final symlink not followed).
    pub async fn stat_path(
        &self,
        container: &Container,
        path: &str,
    ) -> Result<PathStat, EngineError> {
        if let Some(warm) = self.user_files(container) {
            match warm.user_stat(path.as_bytes(), false).await {
                Err(UserFileError::Lost) => {}
                done => return done.map_err(|err| user_error(container, path, err, None)),
            }
        }
        Ok(self.runtime.stat_path(container, path).await?)
    }

    /// Whether `owner` may write in the folder `dir` (links followed as the kernel follows them
    /// for that user, in the container's own view), asked of the container itself: `test -w`
    /// run as that user. What dcx writes for a user goes only where the user could write:
    /// a link the user planted (`notes.md -> /etc/target`, `proj -> /etc`) must not make
    /// root write a file elsewhere and give it to the user. Root needs no asking.
    async fn user_may_write(
        &self,
        container: &Container,
        owner: Owner,
        dir: &str,
    ) -> Result<(), EngineError> {
        self.user_may_write_with(
            container,
            owner,
            dir,
            vec!["test".into(), "-w".into(), dir.to_owned()],
        )
        .await
    }

    /// [`Self::user_may_write`] for a folder whose path is not UTF-8 (bytes an argv of text
    /// cannot carry): `sh` rebuilds it from octal escapes (`printf`), `/.` appended so no final
    /// newline is lost.
    async fn user_may_write_bytes(
        &self,
        container: &Container,
        owner: Owner,
        dir: &[u8],
    ) -> Result<(), EngineError> {
        use std::fmt::Write as _;
        let mut escaped = String::new();
        for byte in dir {
            let _ = write!(escaped, "\\{byte:03o}");
        }
        let argv = ["sh", "-c", "test -w \"$(printf \"$1\")/.\"", "sh", &escaped]
            .map(str::to_owned)
            .to_vec();
        self.user_may_write_with(container, owner, &String::from_utf8_lossy(dir), argv)
            .await
    }

    async fn user_may_write_with(
        &self,
        container: &Container,
        owner: Owner,
        dir: &str,
        argv: Vec<String>,
    ) -> Result<(), EngineError> {
        use crate::runtime::capture::{Outcome, capture};
        use crate::runtime::{ExecSpec, ExitStatus};
        if owner.uid == 0 {
            return Ok(());
        }
        let spec = ExecSpec {
            argv,
            user: Some(format!("{}:{}", owner.uid, owner.gid)),
            ..ExecSpec::default()
        };
        let limit = std::time::Duration::from_secs(30);
        let denied = |reason: String| FileError::Denied {
            path: dir.to_owned(),
            reason,
        };
        match capture(self.runtime.as_ref(), container, &spec, b"", limit).await {
            Ok(Outcome::Finished(done)) => match done.status {
                ExitStatus::Code(0) => Ok(()),
                ExitStatus::Code(1) => Err(denied(format!(
                    "the user {}:{} may not write there, so dcx does not either",
                    owner.uid, owner.gid
                ))
                .into()),
                other => Err(denied(format!(
                    "cannot check that the user {}:{} may write there (`test -w` ended with status {}: {})",
                    owner.uid,
                    owner.gid,
                    other.exit_code(),
                    String::from_utf8_lossy(&done.stderr).trim()
                ))
                .into()),
            },
            Ok(Outcome::TimedOut { .. }) => Err(denied(
                "cannot check that the user may write there (`test -w` took too long)".into(),
            )
            .into()),
            Err(err) => Err(denied(format!(
                "cannot check that the user may write there: {err}"
            ))
            .into()),
        }
    }

    /// The in-container helper, when this engine's commands in `container` go through it:
    /// the agent's file calls then run there, as the session's user (see
    /// [`crate::runtime::helper`]); when it is lost they fall back to the engine's own.
    fn user_files(&self, container: &Container) -> Option<&crate::runtime::helper::Warm> {
        self.warm.as_deref().filter(|warm| warm.serves(container))
    }

    /// `path` with every symlink followed (inside the container), and what it is; `None` for a
    /// path that does not exist (the path is then the last one reached).
    async fn follow(
        &self,
        container: &Container,
        path: &str,
    ) -> Result<(String, Option<PathStat>), EngineError> {
        match paths::follow(self.runtime.as_ref(), container, path).await? {
            Followed::Found(path, stat) => Ok((path, Some(stat))),
            Followed::Missing(path) => Ok((path, None)),
            Followed::TooManyLinks(path) => Err(FileError::TooManyLinks(path).into()),
        }
    }

    /// [`Engine::follow`] for a path that must exist: what it leads to, and its kind.
    async fn follow_existing(
        &self,
        container: &Container,
        path: &str,
    ) -> Result<(String, FileKind), EngineError> {
        match self.follow(container, path).await? {
            (followed, Some(stat)) => Ok((followed, stat.kind)),
            (_, None) => Err(RuntimeError::NoSuchPath {
                container: container.name.clone(),
                path: path.to_owned(),
            }
            .into()),
        }
    }

    /// Copies `source` to `dst` (absolute, or relative to the target's `cwd`) in the container.
    pub async fn copy_into(
        &self,
        target: &FileTarget,
        source: CopySource,
        dst: &str,
    ) -> Result<Copied, EngineError> {
        let container = &target.container;
        let owner = self.owner(container, &target.user).await?;
        let dst = container_path(&target.cwd, dst);
        let wants_folder = dst.ends_with('/');
        let (followed, found) = self.follow(container, &dst).await?;
        let count = Arc::new(AtomicU64::new(0));
        let (dir, stream) = match source {
            CopySource::Tar(input) => match found {
                Some(stat) if stat.kind == FileKind::Directory => (followed, input_stream(input)),
                Some(_) => return Err(FileError::NotADirectory(dst).into()),
                None => return Err(FileError::NoSuchDirectory(dst).into()),
            },
            CopySource::Host(src) => {
                let contents = src.as_os_str().as_encoded_bytes().ends_with(b"/.");
                // `.`, `..`: the folder they name, under its own name.
                let src = match src.file_name() {
                    None if !contents => {
                        std::fs::canonicalize(&src).map_err(|err| host_error(&src, &err))?
                    }
                    _ => src,
                };
                let meta = std::fs::symlink_metadata(&src).map_err(|err| host_error(&src, &err))?;
                if let Some(what) = special(&meta) {
                    return Err(FileError::NotCopied {
                        path: src.display().to_string(),
                        what,
                    }
                    .into());
                }
                // The host's name as it is (any bytes: docker cp keeps them).
                let src_name = if contents {
                    std::ffi::OsString::new()
                } else {
                    src.file_name()
                        .map(std::ffi::OsStr::to_os_string)
                        .ok_or_else(|| FileError::Host {
                            path: src.display().to_string(),
                            reason: "it names no file".to_owned(),
                        })?
                };
                let (dir, name) = match found {
                    Some(stat) if stat.kind == FileKind::Directory => (followed, src_name),
                    Some(_) if meta.is_dir() => {
                        return Err(FileError::DirectoryOntoFile {
                            src: src.display().to_string(),
                            dst,
                        }
                        .into());
                    }
                    Some(_) => {
                        let (dir, name) = split(&followed);
                        (dir, name.into())
                    }
                    None => {
                        if wants_folder && !meta.is_dir() {
                            return Err(FileError::NoSuchDirectory(dst).into());
                        }
                        let (parent, name) = split(&followed);
                        match self.follow(container, &parent).await? {
                            (parent, Some(stat)) if stat.kind == FileKind::Directory => {
                                (parent, name.into())
                            }
                            _ => return Err(FileError::NoSuchDirectory(parent).into()),
                        }
                    }
                };
                (dir, pack_host(&src, contents, name)?)
            }
        };
        self.user_may_write(container, owner, &dir).await?;
        let stream = counted(stream, count.clone());
        self.runtime
            .write_archive(container, &dir, stream, Some(owner))
            .await?;
        Ok(Copied {
            bytes: count.load(Ordering::Relaxed),
            skipped: Vec::new(),
        })
    }

    /// Copies `src` (absolute, or relative to `cwd`) out of the container to `destination`.
    pub async fn copy_out_of(
        &self,
        container: &Container,
        cwd: &str,
        src: &str,
        destination: CopyDestination,
    ) -> Result<Copied, EngineError> {
        let contents = src.ends_with("/.");
        let src = container_path(cwd, src);
        let stat = self.runtime.stat_path(container, &src).await?;
        let count = Arc::new(AtomicU64::new(0));
        let archive = self.runtime.read_archive(container, &src).await?;
        let mut archive = counted(archive, count.clone());
        let skipped = match destination {
            CopyDestination::Tar(mut out) => {
                while let Some(piece) = archive.next().await {
                    let piece: Bytes = piece?;
                    if out.write_all(&piece).await.is_err() {
                        // The reader went away (`| head`): done.
                        break;
                    }
                }
                let _ = out.flush().await;
                Vec::new()
            }
            CopyDestination::Host(dst) => {
                let is_dir = stat.kind == FileKind::Directory
                    || (contents && stat.kind == FileKind::Symlink);
                let (dir, rename) = match std::fs::metadata(&dst) {
                    Ok(meta) if meta.is_dir() => (
                        dst.clone(),
                        if contents {
                            Vec::new()
                        } else {
                            stat.name.clone().into_bytes()
                        },
                    ),
                    Ok(_) if is_dir => {
                        return Err(FileError::DirectoryOntoFile {
                            src,
                            dst: dst.display().to_string(),
                        }
                        .into());
                    }
                    _ if dst.as_os_str().as_encoded_bytes().ends_with(b"/") && !is_dir => {
                        return Err(FileError::NoSuchDirectory(dst.display().to_string()).into());
                    }
                    _ => {
                        let parent = dst
                            .parent()
                            .filter(|p| !p.as_os_str().is_empty())
                            .unwrap_or(Path::new("."))
                            .to_path_buf();
                        if !parent.is_dir() {
                            return Err(
                                FileError::NoSuchDirectory(parent.display().to_string()).into()
                            );
                        }
                        (parent, host_name(&dst)?)
                    }
                };
                let root = Root::beneath(&dir).map_err(|err| host_error(&dir, &err))?;
                let (read, failure) = bridge::reader(archive);
                let unpacked =
                    tokio::task::spawn_blocking(move || root.unpack("", read, None, Some(&rename)))
                        .await
                        .map_err(|err| RuntimeError::Unsupported(err.to_string()))?;
                if let Some(err) = failure.take() {
                    return Err(err.into());
                }
                let unpacked = unpacked.map_err(|err| host_error(&dst, &err))?;
                // Nothing written: the source is a device (the engine's archive holds one) or a
                // socket (the engine sends nothing for one).
                if unpacked.entries == 0 || (unpacked.written == 0 && !unpacked.skipped.is_empty())
                {
                    return Err(FileError::NotCopied {
                        path: src,
                        what: "a device or socket",
                    }
                    .into());
                }
                unpacked.skipped
            }
        };
        Ok(Copied {
            bytes: count.load(Ordering::Relaxed),
            skipped,
        })
    }

    /// Up to `length` bytes (default: the rest) of the file at `path`, from `offset`; links
    /// followed. A read of more than `limit` bytes is refused.
    pub async fn read_file(
        &self,
        container: &Container,
        path: &str,
        offset: u64,
        length: Option<u64>,
        limit: u64,
    ) -> Result<FileContent, EngineError> {
        if let Some(warm) = self.user_files(container) {
            match warm.user_read(path.as_bytes(), offset, length, limit).await {
                Err((UserFileError::Lost, _)) => {}
                Ok(read) => {
                    return Ok(FileContent {
                        bytes: read.bytes,
                        stat: read.stat,
                        path: path.to_owned(),
                    });
                }
                Err((err, stat)) => {
                    return Err(user_error(
                        container,
                        path,
                        err,
                        stat.map(|s| (s.size, limit)),
                    ));
                }
            }
        }
        let host = self.on_host_root(container, {
            let path = path.to_owned();
            move |root| root.read_range(&path, offset, length, limit)
        });
        let (followed, read) = match host.await {
            Some(read) => (
                path.to_owned(),
                read.map_err(|err| RuntimeError::file(container, path, &err))?,
            ),
            None => {
                self.read_archived(container, path, offset, length, limit)
                    .await?
            }
        };
        match read {
            FileRead::Read(bytes, stat) => Ok(FileContent {
                bytes,
                stat,
                path: followed,
            }),
            FileRead::NotAFile(stat) if stat.kind == FileKind::Directory => {
                Err(FileError::IsADirectory(path.into()).into())
            }
            FileRead::NotAFile(_) => Err(FileError::NotAFile(path.into()).into()),
            FileRead::TooLarge(stat) => Err(FileError::TooLarge {
                path: path.into(),
                size: stat.size,
                limit,
            }
            .into()),
        }
    }

    /// Runs `work` on the container's root as this host sees it, on a worker thread; `None`
    /// where there is no such view (a remote engine) or it cannot be opened. There a file call
    /// costs what it returns: a listing the stat of a folder's entries, a ranged read the
    /// range, where the engine's archive call would stream the folder's whole subtree, or the
    /// file up to the range.
    async fn on_host_root<T: Send + 'static>(
        &self,
        container: &Container,
        work: impl FnOnce(&Root) -> std::io::Result<T> + Send + 'static,
    ) -> Option<std::io::Result<T>> {
        let root = peek::open_host_root(self.runtime.as_ref(), container)?;
        tokio::task::spawn_blocking(move || work(&root)).await.ok()
    }

    /// A range of the file at `path` through the engine's archive call (links followed first):
    /// the path followed, and what was read.
    async fn read_archived(
        &self,
        container: &Container,
        path: &str,
        offset: u64,
        length: Option<u64>,
        limit: u64,
    ) -> Result<(String, FileRead), EngineError> {
        // Named as asked (a link's own name), as the host-root view names it.
        let (followed, stat) = match self.follow(container, path).await? {
            (followed, Some(stat)) => (
                followed,
                PathStat {
                    name: split(path).1,
                    ..stat
                },
            ),
            (_, None) => {
                return Err(RuntimeError::NoSuchPath {
                    container: container.name.clone(),
                    path: path.to_owned(),
                }
                .into());
            }
        };
        match stat.kind {
            FileKind::Directory => return Err(FileError::IsADirectory(path.into()).into()),
            FileKind::File => {}
            _ => return Err(FileError::NotAFile(path.into()).into()),
        }
        let available = stat.size.saturating_sub(offset);
        let wanted = length.map_or(available, |length| length.min(available));
        if wanted > limit {
            return Ok((followed, FileRead::TooLarge(stat)));
        }
        // Less than the whole file: the archive call would stream it all up to the range.
        if wanted < stat.size
            && let Some(bytes) = self
                .read_range_by_exec(container, &followed, offset, wanted)
                .await
        {
            return Ok((followed, FileRead::Read(bytes, stat)));
        }
        let read = match peek::read_archived(
            self.runtime.as_ref(),
            container,
            &followed,
            offset,
            length,
            limit,
        )
        .await?
        {
            FileRead::Read(bytes, archived) => FileRead::Read(
                bytes,
                PathStat {
                    name: stat.name,
                    ..archived
                },
            ),
            other => other,
        };
        Ok((followed, read))
    }

    /// `wanted` bytes of the file `path` (links already followed) from `offset`, by one exec as
    /// root (`tail -c +N | head -c LEN`: GNU tail seeks to the offset of a regular file), where
    /// the engine's archive call would stream the whole file; `None` where that exec cannot
    /// run or fails (no shell, no `tail`), and the caller takes the archive call.
    async fn read_range_by_exec(
        &self,
        container: &Container,
        path: &str,
        offset: u64,
        wanted: u64,
    ) -> Option<Vec<u8>> {
        if wanted == 0 {
            return Some(Vec::new());
        }
        let argv = [
            "sh",
            "-c",
            "tail -c +\"$1\" -- \"$2\" | head -c \"$3\"",
            "sh",
            &(offset + 1).to_string(),
            path,
            &wanted.to_string(),
        ];
        let done = self.root_exec(container, &argv).await?;
        (done.len() as u64 == wanted).then_some(done)
    }

    /// The entries of the folder `path` (links already followed) as the host-root view lists
    /// them, where the engine's archive call would stream the folder's whole subtree: the names
    /// by one exec (`find -mindepth 1 -maxdepth 1 -print0`), then one stat of each, sent
    /// together. `None` where that exec cannot run or fails, or a name is not UTF-8 (the
    /// engine's stat takes text), and the caller takes the archive call.
    async fn list_by_exec(
        &self,
        container: &Container,
        path: &str,
        limit: usize,
    ) -> Option<Option<Vec<PathStat>>> {
        let folder = format!("{}/", path.trim_end_matches('/'));
        let argv = [
            "find",
            &folder,
            "-mindepth",
            "1",
            "-maxdepth",
            "1",
            "-print0",
        ];
        let found = self.root_exec(container, &argv).await?;
        let mut paths = Vec::new();
        for name in found
            .split(|byte| *byte == 0)
            .filter(|name| !name.is_empty())
        {
            paths.push(String::from_utf8(name.to_vec()).ok()?);
            if paths.len() > limit {
                return Some(None);
            }
        }
        paths.sort();
        // One entry stat'ed alone first: where the engine refuses what is inside the folder
        // (Docker: a tmpfs mount point, whose entries its stats would take from the folder
        // hidden beneath the mount), the archive call answers, in its own words.
        if let Some(first) = paths.first() {
            self.runtime.stat_path(container, first).await.ok()?;
        }
        let mut entries = Vec::with_capacity(paths.len());
        for stat in self.runtime.stat_paths(container, &paths).await {
            // An entry gone meanwhile, or seen otherwise by the stats: the archive call.
            entries.push(stat.ok()?);
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Some(Some(entries))
    }

    /// The stdout of `argv` run as root in the container, when it ends with status 0 and
    /// nothing was cut.
    async fn root_exec(&self, container: &Container, argv: &[&str]) -> Option<Vec<u8>> {
        use crate::runtime::capture::{Outcome, capture};
        use crate::runtime::{ExecSpec, ExitStatus};
        let spec = ExecSpec {
            argv: argv.iter().map(|arg| (*arg).to_owned()).collect(),
            user: Some("0:0".to_owned()),
            ..ExecSpec::default()
        };
        let limit = std::time::Duration::from_secs(60);
        match capture(self.runtime.as_ref(), container, &spec, b"", limit).await {
            Ok(Outcome::Finished(done)) if done.status == ExitStatus::Code(0) && !done.cut => {
                Some(done.stdout)
            }
            _ => None,
        }
    }

    /// Writes `data` to the file at `path` (links followed, missing parent folders created),
    /// replacing it in one step, or appending to it; owned by the target's user. `mode`
    /// defaults to the replaced file's, else 0644. Appending reads the file first, and refuses
    /// a file whose new size would pass `limit`.
    pub async fn write_file(
        &self,
        target: &FileTarget,
        path: &str,
        data: &[u8],
        mode: Option<u32>,
        append: bool,
        limit: u64,
    ) -> Result<PathStat, EngineError> {
        let container = &target.container;
        if let Some(warm) = self.user_files(container) {
            match warm.user_write(path.as_bytes(), data, mode, append).await {
                Err(UserFileError::Lost) => {}
                done => return done.map_err(|err| user_error(container, path, err, None)),
            }
        }
        let owner = self.owner(container, &target.user).await?;
        let (followed, found) = self.follow(container, path).await?;
        let mut content = Vec::new();
        let mode = match &found {
            Some(stat) if stat.kind == FileKind::Directory => {
                return Err(FileError::IsADirectory(path.into()).into());
            }
            Some(stat) if stat.kind != FileKind::File => {
                return Err(FileError::NotAFile(path.into()).into());
            }
            Some(stat) => {
                if append {
                    let room = limit.saturating_sub(data.len() as u64);
                    content = self
                        .read_file(container, &followed, 0, None, room)
                        .await?
                        .bytes;
                }
                mode.unwrap_or(stat.mode)
            }
            None => mode.unwrap_or(0o644),
        } & 0o7777;
        content.extend_from_slice(data);

        // The deepest folder that exists, and the ones to make below it.
        let (parent, name) = split(&followed);
        let mut base = parent.clone();
        let mut missing: Vec<String> = Vec::new();
        loop {
            match self.follow(container, &base).await? {
                (dir, Some(stat)) if stat.kind == FileKind::Directory => {
                    base = dir;
                    break;
                }
                (_, Some(_)) => return Err(FileError::NotADirectory(base).into()),
                (_, None) => {
                    let (up, last) = split(&base);
                    missing.insert(0, last);
                    if up == base {
                        return Err(FileError::NoSuchDirectory(base).into());
                    }
                    base = up;
                }
            }
        }
        self.user_may_write(container, owner, &base).await?;
        let temporary = format!(".{}.dcx-{:016x}", name_start(&name), random());
        // The time with its nanoseconds (a PAX record: the engine's extraction keeps them), so
        // a file written just after a build output is newer for `make` and `[ -nt ]`.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or((0, 0), |at| {
                (
                    i64::try_from(at.as_secs()).unwrap_or(i64::MAX),
                    at.subsec_nanos(),
                )
            });
        let tar = one_file_tar(&missing, &temporary, &content, mode, now)
            .map_err(|err| RuntimeError::file(container, path, &err))?;
        let stream: ArchiveStream =
            futures_util::stream::once(async move { Ok(Bytes::from(tar)) }).boxed();
        self.runtime
            .write_archive(container, &base, stream, Some(owner))
            .await?;
        let mut folder = base.trim_end_matches('/').to_owned();
        for dir in &missing {
            folder.push('/');
            folder.push_str(dir);
        }
        let written = format!("{folder}/{temporary}");
        let final_path = format!("{folder}/{name}");
        self.runtime
            .rename_path(container, &written, &final_path)
            .await?;
        Ok(self.runtime.stat_path(container, &final_path).await?)
    }

    /// The entries of the folder at `path`, quickly, for shell completion: read through the
    /// container's root where this host sees it (resolved inside that root, with no archive of
    /// the whole folder), else by [`Self::list_dir`].
    pub async fn quick_list(
        &self,
        container: &Container,
        path: &str,
        limit: usize,
    ) -> Result<Vec<PathStat>, EngineError> {
        let folder = path.to_owned();
        if let Some(Ok(entries)) = self
            .on_host_root(container, move |root| root.list(&folder))
            .await
        {
            return Ok(entries);
        }
        Ok(self.list_dir(container, path, limit).await?.1)
    }

    /// The entries of the folder at `path` (links followed), at most `limit` of them.
    pub async fn list_dir(
        &self,
        container: &Container,
        path: &str,
        limit: usize,
    ) -> Result<(String, Vec<PathStat>), EngineError> {
        if let Some(warm) = self.user_files(container) {
            match warm.user_list(path.as_bytes(), limit).await {
                Err(UserFileError::Lost) => {}
                Ok(entries) => return Ok((path.to_owned(), entries)),
                Err(UserFileError::Errno { errno, .. }) if errno == libc::E2BIG => {
                    return Err(FileError::TooManyEntries {
                        path: path.into(),
                        limit,
                    }
                    .into());
                }
                Err(err) => return Err(user_error(container, path, err, None)),
            }
        }
        let listed = self.on_host_root(container, {
            let path = path.to_owned();
            move |root| root.list(&path)
        });
        if let Some(listed) = listed.await {
            let entries = listed.map_err(|err| match err.raw_os_error() {
                Some(libc::ENOTDIR) => FileError::NotADirectory(path.into()).into(),
                _ => EngineError::from(RuntimeError::file(container, path, &err)),
            })?;
            if entries.len() > limit {
                return Err(FileError::TooManyEntries {
                    path: path.into(),
                    limit,
                }
                .into());
            }
            return Ok((path.to_owned(), entries));
        }
        let (followed, kind) = self.follow_existing(container, path).await?;
        match kind {
            FileKind::Directory => {}
            _ => return Err(FileError::NotADirectory(path.into()).into()),
        }
        if let Some(listed) = self.list_by_exec(container, &followed, limit).await {
            return match listed {
                Some(entries) => Ok((followed, entries)),
                None => Err(FileError::TooManyEntries {
                    path: path.into(),
                    limit,
                }
                .into()),
            };
        }
        match self.runtime.list_dir(container, &followed, limit).await? {
            Some(entries) => Ok((followed, entries)),
            None => Err(FileError::TooManyEntries {
                path: path.into(),
                limit,
            }
            .into()),
        }
    }
}

/// The agent's file calls on a path of bytes that are not UTF-8 (`path_b64`), which the engine's
/// archive call (its paths are text) cannot name: through the in-container helper (its paths are
/// bytes), else on the container's root where this host sees it (all but a write).
impl Engine {
    pub async fn stat_bytes(
        &self,
        container: &Container,
        path: &[u8],
    ) -> Result<PathStat, EngineError> {
        let shown = String::from_utf8_lossy(path).into_owned();
        if let Some(warm) = self.user_files(container) {
            match warm.user_stat(path, false).await {
                Err(UserFileError::Lost) => {}
                done => return done.map_err(|err| user_error(container, &shown, err, None)),
            }
        }
        let owned = path.to_vec();
        match self
            .on_host_root(container, move |root| root.stat(&owned))
            .await
        {
            Some(stat) => Ok(stat.map_err(|err| RuntimeError::file(container, &shown, &err))?),
            None => Err(FileError::NotUtf8(shown).into()),
        }
    }

    pub async fn list_bytes(
        &self,
        container: &Container,
        path: &[u8],
        limit: usize,
    ) -> Result<Vec<PathStat>, EngineError> {
        let shown = String::from_utf8_lossy(path).into_owned();
        if let Some(warm) = self.user_files(container) {
            match warm.user_list(path, limit).await {
                Err(UserFileError::Lost) => {}
                Ok(entries) => return Ok(entries),
                Err(UserFileError::Errno { errno, .. }) if errno == libc::E2BIG => {
                    return Err(FileError::TooManyEntries { path: shown, limit }.into());
                }
                Err(err) => return Err(user_error(container, &shown, err, None)),
            }
        }
        let owned = path.to_vec();
        let Some(listed) = self
            .on_host_root(container, move |root| root.list(&owned))
            .await
        else {
            return Err(FileError::NotUtf8(shown).into());
        };
        let entries = listed.map_err(|err| match err.raw_os_error() {
            Some(libc::ENOTDIR) => FileError::NotADirectory(shown.clone()).into(),
            _ => EngineError::from(RuntimeError::file(container, &shown, &err)),
        })?;
        if entries.len() > limit {
            return Err(FileError::TooManyEntries { path: shown, limit }.into());
        }
        Ok(entries)
    }

    pub async fn read_bytes(
        &self,
        container: &Container,
        path: &[u8],
        offset: u64,
        length: Option<u64>,
        limit: u64,
    ) -> Result<FileContent, EngineError> {
        let shown = String::from_utf8_lossy(path).into_owned();
        if let Some(warm) = self.user_files(container) {
            match warm.user_read(path, offset, length, limit).await {
                Err((UserFileError::Lost, _)) => {}
                Ok(read) => {
                    return Ok(FileContent {
                        bytes: read.bytes,
                        stat: read.stat,
                        path: shown,
                    });
                }
                Err((err, stat)) => {
                    let too_large = stat.map(|s| (s.size, limit));
                    return Err(user_error(container, &shown, err, too_large));
                }
            }
        }
        let owned = path.to_vec();
        let read = self
            .on_host_root(container, move |root| {
                root.read_range(&owned, offset, length, limit)
            })
            .await;
        let Some(read) = read else {
            return Err(FileError::NotUtf8(shown).into());
        };
        match read.map_err(|err| RuntimeError::file(container, &shown, &err))? {
            FileRead::Read(bytes, stat) => Ok(FileContent {
                bytes,
                stat,
                path: shown,
            }),
            FileRead::NotAFile(stat) if stat.kind == FileKind::Directory => {
                Err(FileError::IsADirectory(shown).into())
            }
            FileRead::NotAFile(_) => Err(FileError::NotAFile(shown).into()),
            FileRead::TooLarge(stat) => Err(FileError::TooLarge {
                path: shown,
                size: stat.size,
                limit,
            }
            .into()),
        }
    }

    /// Through the helper, which writes as the session's user; else on the container's root
    /// seen from this host, with [`Self::write_file`]'s rules: final links followed inside the
    /// container, the user's right to write in the folder asked of the container (`test -w` as
    /// the user), a temporary name then a rename, owned by the target's user. The folder must
    /// exist.
    pub async fn write_bytes(
        &self,
        target: &FileTarget,
        path: &[u8],
        data: &[u8],
        mode: Option<u32>,
        append: bool,
        limit: u64,
    ) -> Result<PathStat, EngineError> {
        let container = &target.container;
        let shown = String::from_utf8_lossy(path).into_owned();
        if let Some(warm) = self.user_files(container) {
            match warm.user_write(path, data, mode, append).await {
                Err(UserFileError::Lost) => {}
                done => return done.map_err(|err| user_error(container, &shown, err, None)),
            }
        }
        let owner = self.owner(container, &target.user).await?;
        let asked = path.to_vec();
        let Some(followed) = self
            .on_host_root(container, move |root| root.write_target(&asked))
            .await
        else {
            return Err(FileError::NotUtf8(shown).into());
        };
        let followed = followed.map_err(|err| bytes_error(container, &shown, &err))?;
        let end = followed.iter().rposition(|b| *b == b'/').unwrap_or(0);
        let folder = if end == 0 {
            b"/".to_vec()
        } else {
            followed[..end].to_vec()
        };
        self.user_may_write_bytes(container, owner, &folder).await?;
        let data = data.to_vec();
        let written = self
            .on_host_root(container, move |root| {
                root.write_file(&followed, &data, mode, append, owner, limit)
            })
            .await
            .ok_or_else(|| FileError::NotUtf8(shown.clone()))?;
        written.map_err(|err| bytes_error(container, &shown, &err))
    }
}

/// A host-root file call's failure on `path`, in the engine's words.
fn bytes_error(container: &Container, path: &str, err: &std::io::Error) -> EngineError {
    match err.raw_os_error() {
        Some(libc::EISDIR) => FileError::IsADirectory(path.to_owned()).into(),
        Some(libc::ENOTDIR) => FileError::NotADirectory(path.to_owned()).into(),
        Some(libc::EINVAL) => FileError::NotAFile(path.to_owned()).into(),
        Some(libc::ELOOP) => FileError::TooManyLinks(path.to_owned()).into(),
        _ => RuntimeError::file(container, path, err).into(),
    }
}

/// A file call's failure in the helper, in the engine's words; `too_large` is the file's size
/// and the limit, for a read refused as too large.
fn user_error(
    container: &Container,
    path: &str,
    err: UserFileError,
    too_large: Option<(u64, u64)>,
) -> EngineError {
    let (errno, reason) = match err {
        UserFileError::Errno { errno, message } => (errno, message),
        UserFileError::Lost => (0, "the in-container helper is gone".to_owned()),
    };
    let path = path.to_owned();
    match errno {
        libc::ENOENT => RuntimeError::NoSuchPath {
            container: container.name.clone(),
            path,
        }
        .into(),
        libc::EISDIR => FileError::IsADirectory(path).into(),
        libc::ENOTDIR => FileError::NotADirectory(path).into(),
        libc::EINVAL => FileError::NotAFile(path).into(),
        libc::ELOOP => FileError::TooManyLinks(path).into(),
        libc::EACCES | libc::EPERM => FileError::Denied { path, reason }.into(),
        libc::EFBIG => {
            let (size, limit) = too_large.unwrap_or((0, 0));
            FileError::TooLarge { path, size, limit }.into()
        }
        _ => RuntimeError::FileAccess {
            container: container.name.clone(),
            path,
            reason,
        }
        .into(),
    }
}

/// The start of a file name that leaves room, within a name's 255 bytes, for the temporary
/// name's dot and suffix (cut at a character boundary).
fn name_start(name: &str) -> &str {
    let mut end = name.len().min(200);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// What a host file is when dcx cp does not copy it (a socket, a device).
fn special(meta: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_socket() {
        Some("a socket")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else {
        None
    }
}

/// A host path's last component, as the name a copy gives it (its bytes as they are).
fn host_name(path: &Path) -> Result<Vec<u8>, FileError> {
    use std::os::unix::ffi::OsStrExt;
    path.file_name()
        .map(|name| name.as_bytes().to_vec())
        .ok_or_else(|| FileError::Host {
            path: path.display().to_string(),
            reason: "it names no file".to_owned(),
        })
}

/// A tar of the host path `src` (its contents with `contents`), its top entry named `name`.
/// Host names are bytes, kept as they are.
fn pack_host(
    src: &Path,
    contents: bool,
    name: std::ffi::OsString,
) -> Result<ArchiveStream, EngineError> {
    let shown = src.display().to_string();
    let failed =
        move |err: std::io::Error| RuntimeError::Unsupported(format!("Cannot copy {shown}: {err}"));
    if contents {
        let root = Root::beneath(src).map_err(|err| host_error(src, &err))?;
        return Ok(bridge::writer(
            move |out| root.pack(".", &name.to_string_lossy(), out),
            failed,
        ));
    }
    let parent = src
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let top = src
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .ok_or_else(|| FileError::Host {
            path: src.display().to_string(),
            reason: "it names no file".to_owned(),
        })?;
    let root = Root::beneath(parent).map_err(|err| host_error(src, &err))?;
    Ok(bridge::writer(
        move |out| root.pack_top(&top, Path::new(&name), out),
        failed,
    ))
}

/// A tar of the folders `dirs` (each inside the one before) and the file `name` in the last,
/// each modified at `mtime` (seconds and nanoseconds: a PAX record before each entry).
fn one_file_tar(
    dirs: &[String],
    name: &str,
    content: &[u8],
    mode: u32,
    mtime: (i64, u32),
) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let seconds = u64::try_from(mtime.0).unwrap_or(0);
    let record = pax_time_value(mtime);
    let mut path = PathBuf::new();
    for dir in dirs {
        path.push(dir);
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_mtime(seconds);
        header.set_size(0);
        builder.append_pax_extensions([("mtime", record.as_bytes())])?;
        builder.append_data(&mut header, &path, std::io::empty())?;
    }
    path.push(name);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(mode);
    header.set_mtime(seconds);
    header.set_size(content.len() as u64);
    builder.append_pax_extensions([("mtime", record.as_bytes())])?;
    builder.append_data(&mut header, &path, content)?;
    builder.into_inner()
}

fn random() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}
