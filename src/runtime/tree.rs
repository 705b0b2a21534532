//! File trees read and written through directory descriptors, every path resolved inside a
//! [`Root`].
//!
//! Never through a path the host resolves on its own: the kernel resolves each one (`openat2`)
//! inside the root:
//! * [`Root::container`]: the root is the container's `/` (`/proc/PID/root` of its first process,
//!   its mounts included, or crun's bundle): `..` stops at it and an absolute symlink means the
//!   container's own path, so no link or `..` the container holds can lead to a host file;
//! * [`Root::beneath`]: a host folder (a `dcx cp` destination or source parent): a path or link
//!   that would leave it is refused.
//!
//! A final component is followed only where asked for: [`Root::stat`] and [`Root::pack`] take a
//! symlink as the link (a path ending in `/` is followed), and created files are opened
//! `O_NOFOLLOW | O_EXCL`; reads, listings and [`Root::followed_stat`] follow links, inside the
//! root. Trees travel as tar streams ([`Root::pack`], [`Root::unpack`]), read and written in
//! pieces, so a file of any size passes in bounded memory. Also here: the tar reading the engine
//! needs on streams an engine produced ([`list_archive`], [`entry_paths`], [`first_stat`],
//! [`read_archive_file`]).

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::Timespec;
use rustix::fs::{
    AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, Stat, Timestamps, chownat, fchmod, fchown,
    fstat, futimens, mkdirat, mknodat, openat, openat2, readlinkat, renameat, statat, symlinkat,
    unlinkat, utimensat,
};
use rustix::fs::{Gid, Uid};

/// What a path is, as `stat` (without following a final symlink) tells.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PathStat {
    /// The last component (`""` for `/`); U+FFFD for bytes that are not UTF-8.
    pub name: String,
    /// The last component's bytes, when they are not UTF-8 (`name` is then lossy).
    #[serde(skip)]
    pub name_bytes: Option<Vec<u8>>,
    pub kind: FileKind,
    pub size: u64,
    /// The permission bits, setuid, setgid and sticky included (`0o7777`).
    pub mode: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// And nanoseconds, where the source tells (not in a tar header).
    #[serde(skip)]
    pub mtime_nsec: u32,
    /// A symlink's target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
}

/// The kinds of file dcx tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Directory,
    Symlink,
    /// A fifo, socket or device.
    Other,
}

/// Numeric owner for written files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// What [`Root::unpack`] did.
#[derive(Debug, Default)]
pub struct Unpacked {
    /// The archive's top-level names, as written into the destination, in order.
    pub top: Vec<String>,
    /// The paths (as in the archive) of entries dcx does not create: devices, sockets, unknown
    /// kinds.
    pub skipped: Vec<String>,
    /// How many entries the archive held, and how many of them were written.
    pub entries: u64,
    pub written: u64,
}

/// A folder all paths are resolved in; see the module doc.
pub struct Root {
    fd: OwnedFd,
    resolve: ResolveFlags,
}

impl Root {
    /// `dir` as a container's `/`.
    pub fn container(dir: &Path) -> io::Result<Self> {
        Self::open(dir, ResolveFlags::IN_ROOT)
    }

    /// `dir` as a host folder nothing may leave.
    pub fn beneath(dir: &Path) -> io::Result<Self> {
        Self::open(dir, ResolveFlags::BENEATH)
    }

    fn open(dir: &Path, resolve: ResolveFlags) -> io::Result<Self> {
        let fd = rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self { fd, resolve })
    }

    /// Opens `path` (every component followed, inside the root); a path is bytes, as the
    /// kernel's are.
    fn resolve(&self, path: impl AsRef<[u8]>, flags: OFlags) -> io::Result<OwnedFd> {
        let flags = flags | OFlags::CLOEXEC;
        Ok(openat2(
            &self.fd,
            relative(path.as_ref()),
            flags,
            Mode::empty(),
            self.resolve,
        )?)
    }

    /// The folder holding `path`'s last component, and that component; `None` as the name when
    /// `path` is the root itself or ends in `/`, `.` or `..` (then the whole path, followed, is
    /// the folder).
    fn locate(&self, path: &[u8]) -> io::Result<(OwnedFd, Option<Vec<u8>>)> {
        let followed = path.ends_with(b"/");
        let path = trim_slashes(path);
        let (parent, name) = match path.iter().rposition(|b| *b == b'/') {
            Some(at) => (&path[..at], &path[at + 1..]),
            None => (&b""[..], path),
        };
        if followed || matches!(name, b"" | b"." | b"..") {
            return Ok((self.resolve(path, OFlags::PATH | OFlags::DIRECTORY)?, None));
        }
        let fd = self.resolve(parent, OFlags::PATH | OFlags::DIRECTORY)?;
        Ok((fd, Some(name.to_vec())))
    }

    /// What `path` is (any bytes); a final symlink is not followed.
    pub fn stat(&self, path: impl AsRef<[u8]>) -> io::Result<PathStat> {
        let path = path.as_ref();
        let (parent, name) = self.locate(path)?;
        match name {
            Some(name) => {
                let stat = statat(&parent, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)?;
                Ok(path_stat(&parent, &name, &stat))
            }
            None => {
                let stat = fstat(&parent)?;
                Ok(path_stat(&parent, last_name(path), &stat))
            }
        }
    }

    /// What `path` leads to, every symlink followed inside the root (the full `stat`, with
    /// nanosecond times and the inode, for telling whether a file changed).
    pub fn followed_stat(&self, path: &str) -> io::Result<Stat> {
        Ok(fstat(self.resolve(path, OFlags::PATH)?)?)
    }

    /// The names in the folder `path` (followed), sorted.
    pub fn names(&self, path: &str) -> io::Result<Vec<String>> {
        let dir = self.resolve(path, OFlags::RDONLY | OFlags::DIRECTORY)?;
        Ok(names(&dir)?
            .into_iter()
            .map(|name| String::from_utf8_lossy(&name).into_owned())
            .collect())
    }

    /// The contents of the regular file `path` (followed); a file of more than `limit` bytes
    /// is refused (`FileTooLarge`), as is anything but a regular file (`InvalidInput`).
    pub fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>> {
        // Non-blocking: a fifo planted there must not hold the open (a regular file's reads
        // are not affected).
        let file = std::fs::File::from(self.resolve(path, OFlags::RDONLY | OFlags::NONBLOCK)?);
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        let mut bytes = Vec::new();
        file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > limit {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("larger than {limit} bytes"),
            ));
        }
        Ok(bytes)
    }

    /// `length` bytes (default: the rest) from `offset` of the file `path` (followed), read
    /// where they are: nothing before `offset` is read. A read of more than `limit` bytes is
    /// refused ([`FileRead::TooLarge`]), as is anything but a regular file
    /// ([`FileRead::NotAFile`], a folder's kind telling it apart).
    pub fn read_range(
        &self,
        path: impl AsRef<[u8]>,
        offset: u64,
        length: Option<u64>,
        limit: u64,
    ) -> io::Result<FileRead> {
        use std::io::{Seek, SeekFrom};
        let path = path.as_ref();
        // Non-blocking: a fifo planted there must not hold the open.
        let fd = self.resolve(path, OFlags::RDONLY | OFlags::NONBLOCK)?;
        let stat = fstat(&fd)?;
        let name = last_name(path);
        let shown = PathStat {
            name: String::from_utf8_lossy(name).into_owned(),
            name_bytes: not_utf8(name),
            kind: kind_of(&stat),
            size: u64::try_from(stat.st_size).unwrap_or(0),
            mode: stat.st_mode & 0o7777,
            mtime: stat.st_mtime,
            mtime_nsec: u32::try_from(stat.st_mtime_nsec).unwrap_or(0),
            link_target: None,
        };
        if shown.kind != FileKind::File {
            return Ok(FileRead::NotAFile(shown));
        }
        let available = shown.size.saturating_sub(offset);
        let wanted = length.map_or(available, |length| length.min(available));
        if wanted > limit {
            return Ok(FileRead::TooLarge(shown));
        }
        let mut file = std::fs::File::from(fd);
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::with_capacity(usize::try_from(wanted).unwrap_or(0));
        file.take(wanted).read_to_end(&mut bytes)?;
        Ok(FileRead::Read(bytes, shown))
    }

    /// The entries of the folder `path` (followed, any bytes), sorted by name.
    pub fn list(&self, path: impl AsRef<[u8]>) -> io::Result<Vec<PathStat>> {
        let dir = self.resolve(path, OFlags::RDONLY | OFlags::DIRECTORY)?;
        let mut entries = Vec::new();
        for name in names(&dir)? {
            let stat = match statat(&dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                // Removed meanwhile.
                Err(rustix::io::Errno::NOENT) => continue,
                Err(err) => return Err(err.into()),
            };
            entries.push(path_stat(&dir, &name, &stat));
        }
        Ok(entries)
    }

    /// Writes a tar of `path` to `out`, its top entry named `as_name` (`""`: the folder's
    /// entries at the top level, for a copy of a folder's contents).
    pub fn pack(&self, path: &str, as_name: &str, out: impl Write) -> io::Result<()> {
        let (parent, name) = self.locate(path.as_bytes())?;
        let mut builder = tar::Builder::new(out);
        match name {
            Some(name) => {
                let stat = statat(&parent, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)?;
                pack_entry(&mut builder, &parent, &name, &stat, Path::new(as_name))?;
            }
            None => {
                let dir = self.resolve(path, OFlags::RDONLY | OFlags::DIRECTORY)?;
                let stat = fstat(&dir)?;
                pack_dir(&mut builder, dir, &stat, Path::new(as_name))?;
            }
        }
        builder.into_inner()?.flush()
    }

    /// Writes a tar of the entry `name` directly in the root (a host file name, any bytes), its
    /// top entry named `as_name` (any bytes too, as docker cp keeps them).
    pub fn pack_top(
        &self,
        name: &std::ffi::OsStr,
        as_name: &Path,
        out: impl Write,
    ) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let name = name.as_bytes();
        if name.is_empty() || name.contains(&b'/') || matches!(name, b"." | b"..") {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let parent = self.resolve("", OFlags::PATH | OFlags::DIRECTORY)?;
        let stat = statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let mut builder = tar::Builder::new(out);
        pack_entry(&mut builder, &parent, name, &stat, as_name)?;
        builder.into_inner()?.flush()
    }

    /// Extracts the tar `input` into the existing folder `dir`. With `owner`, everything written
    /// is owned by it (else by the caller). `rename_top` replaces the first component of every
    /// entry (`""` drops it). Existing files are replaced; a folder is never replaced by a file
    /// or the other way round.
    pub fn unpack(
        &self,
        dir: &str,
        input: impl Read,
        owner: Option<Owner>,
        rename_top: Option<&[u8]>,
    ) -> io::Result<Unpacked> {
        let base = dir.trim_end_matches('/').to_owned();
        let base_fd = self.resolve(&base, OFlags::PATH | OFlags::DIRECTORY)?;
        drop(base_fd);
        let mut archive = tar::Archive::new(input);
        let mut unpacked = Unpacked::default();
        let mut folders: Vec<(Vec<u8>, u32, Mtime)> = Vec::new();
        for entry in archive.entries()? {
            let mut entry = entry?;
            unpacked.entries += 1;
            let Some(parts) = entry_parts(&entry.path()?, rename_top)? else {
                continue;
            };
            let top = String::from_utf8_lossy(&parts[0]).into_owned();
            if !unpacked.top.contains(&top) {
                unpacked.top.push(top);
            }
            let Some((name, parents)) = parts.split_last() else {
                continue;
            };
            let parent = self.make_dirs(&base, parents, owner)?;
            // A PAX `mtime` record carries the nanoseconds the header's seconds cannot.
            let pax_mtime = entry.pax_extensions()?.and_then(|mut records| {
                records.find_map(|record| {
                    let record = record.ok()?;
                    (record.key() == Ok("mtime")).then(|| pax_time(record.value().ok()?))?
                })
            });
            let header = entry.header();
            let mode = header.mode()? & 0o7777;
            let mtime = match pax_mtime {
                Some(mtime) => mtime,
                None => (i64::try_from(header.mtime()?).unwrap_or(i64::MAX), 0),
            };
            let kind = header.entry_type();
            let creatable = kind.is_dir()
                || is_file(kind)
                || kind.is_symlink()
                || kind.is_hard_link()
                || kind.is_fifo();
            if !creatable {
                // A global PAX header describes the archive, not a file.
                if kind != tar::EntryType::XGlobalHeader {
                    let shown = parts.join(&b'/');
                    unpacked
                        .skipped
                        .push(String::from_utf8_lossy(&shown).into_owned());
                }
                continue;
            }
            let existing = match statat(&parent, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => Some(FileType::from_raw_mode(stat.st_mode)),
                Err(rustix::io::Errno::NOENT) => None,
                Err(err) => return Err(err.into()),
            };
            let shown = || String::from_utf8_lossy(name).into_owned();
            match (kind.is_dir(), existing) {
                (true, Some(FileType::Directory)) | (_, None) => {}
                (true, Some(_)) => {
                    return Err(io::Error::other(format!(
                        "cannot overwrite non-directory {} with a directory",
                        shown()
                    )));
                }
                (false, Some(FileType::Directory)) => {
                    return Err(io::Error::other(format!(
                        "cannot overwrite directory {} with a non-directory",
                        shown()
                    )));
                }
                // A file replaces what is there in one step, by its rename (below).
                (false, Some(_)) if is_file(kind) => {}
                (false, Some(_)) => unlinkat(&parent, name.as_slice(), AtFlags::empty())?,
            }
            let path = join(&base, &parts);
            if kind.is_dir() {
                if existing.is_none() {
                    mkdirat(&parent, name.as_slice(), Mode::from_raw_mode(0o700))?;
                }
                set_owner(&parent, name, owner)?;
                folders.push((path, mode, mtime));
            } else if is_file(kind) {
                write_whole(&parent, name, &mut entry, owner, mode, mtime)?;
            } else if kind.is_symlink() {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                symlinkat(target.as_slice(), &parent, name.as_slice())?;
                set_owner(&parent, name, owner)?;
                let times = timestamps(mtime);
                utimensat(&parent, name.as_slice(), &times, AtFlags::SYMLINK_NOFOLLOW)?;
            } else if kind.is_hard_link() {
                let Some(target) = entry.link_name()? else {
                    continue;
                };
                let Some(target_parts) = entry_parts(&target, rename_top)? else {
                    continue;
                };
                let Some((target_name, target_parents)) = target_parts.split_last() else {
                    continue;
                };
                let from = self.resolve(
                    join(&base, target_parents),
                    OFlags::PATH | OFlags::DIRECTORY,
                )?;
                rustix::fs::linkat(
                    &from,
                    target_name.as_slice(),
                    &parent,
                    name.as_slice(),
                    AtFlags::empty(),
                )?;
            } else if kind.is_fifo() {
                mknodat(
                    &parent,
                    name.as_slice(),
                    FileType::Fifo,
                    Mode::from_raw_mode(mode),
                    0,
                )?;
                set_owner(&parent, name, owner)?;
            }
            unpacked.written += 1;
        }
        // Read to the stream's end: a writer that failed after its archive's end (a tar writer
        // ends the archive as it goes) says so there, and that failure is the copy's.
        io::copy(&mut archive.into_inner(), &mut io::sink())?;
        // Folders last, deepest first: writing their entries would change their mtime, and a
        // read-only mode would have kept the entries out.
        for (path, mode, mtime) in folders.iter().rev() {
            let fd = self.resolve(path, OFlags::RDONLY | OFlags::DIRECTORY)?;
            fchmod(&fd, Mode::from_raw_mode(*mode))?;
            futimens(&fd, &timestamps(*mtime))?;
        }
        Ok(unpacked)
    }

    /// The folder `base/parents…`, created (mode 0755, owned by `owner`) where missing.
    fn make_dirs(
        &self,
        base: &str,
        parents: &[Vec<u8>],
        owner: Option<Owner>,
    ) -> io::Result<OwnedFd> {
        // Most often the folder is there already (a tar lists folders before their entries):
        // one resolution, not one per level (a deep tree's entries would cost its depth
        // squared each).
        match self.resolve(join(base, parents), OFlags::PATH | OFlags::DIRECTORY) {
            Ok(fd) => return Ok(fd),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        let mut fd = self.resolve(base, OFlags::PATH | OFlags::DIRECTORY)?;
        for depth in 0..parents.len() {
            let path = join(base, &parents[..=depth]);
            fd = match self.resolve(&path, OFlags::PATH | OFlags::DIRECTORY) {
                Ok(next) => next,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    let name = parents[depth].as_slice();
                    mkdirat(&fd, name, Mode::from_raw_mode(0o755))?;
                    set_owner(&fd, &parents[depth], owner)?;
                    self.resolve(&path, OFlags::PATH | OFlags::DIRECTORY)?
                }
                Err(err) => return Err(err),
            };
        }
        Ok(fd)
    }

    /// Where a write to `path` (any bytes) lands: its final symlinks followed inside the root
    /// (at most 40), as the folder holding it and its name there.
    pub fn write_target(&self, path: &[u8]) -> io::Result<Vec<u8>> {
        let mut path = path.to_vec();
        for _ in 0..40 {
            let (dir, name) = self.locate(&path)?;
            let Some(name) = name else {
                return Err(io::Error::from_raw_os_error(libc::EISDIR));
            };
            match statat(&dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) if kind_of(&stat) == FileKind::Symlink => {
                    let target = readlinkat(&dir, name.as_slice(), Vec::new())?.into_bytes();
                    if target.starts_with(b"/") {
                        path = target;
                    } else {
                        let trimmed = trim_slashes(&path);
                        let at = trimmed
                            .iter()
                            .rposition(|b| *b == b'/')
                            .map_or(0, |at| at + 1);
                        path = [&trimmed[..at], target.as_slice()].concat();
                    }
                }
                _ => return Ok(path),
            }
        }
        Err(io::Error::from_raw_os_error(libc::ELOOP))
    }

    /// Writes `data` to the file `path` (any bytes; its folder must exist, a final symlink is
    /// not followed: see [`Self::write_target`]), replacing it in one step (a temporary name in
    /// the same folder, then a rename), or appending to it; owned by `owner`, with `mode`
    /// (default: the replaced file's, else 0644). The new size may not pass `limit` (`EFBIG`).
    pub fn write_file(
        &self,
        path: &[u8],
        data: &[u8],
        mode: Option<u32>,
        append: bool,
        owner: Owner,
        limit: u64,
    ) -> io::Result<PathStat> {
        let (dir, name) = self.locate(path)?;
        let Some(name) = name else {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        };
        let mut content = Vec::new();
        let mode = match statat(&dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => match kind_of(&stat) {
                FileKind::Directory => return Err(io::Error::from_raw_os_error(libc::EISDIR)),
                FileKind::File => {
                    if append {
                        let fd = openat(
                            &dir,
                            name.as_slice(),
                            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                            Mode::empty(),
                        )?;
                        let room = limit.saturating_sub(data.len() as u64);
                        std::fs::File::from(fd)
                            .take(room.saturating_add(1))
                            .read_to_end(&mut content)?;
                        if content.len() as u64 > room {
                            return Err(io::Error::from_raw_os_error(libc::EFBIG));
                        }
                    }
                    mode.unwrap_or(stat.st_mode)
                }
                _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
            },
            Err(rustix::io::Errno::NOENT) => mode.unwrap_or(0o644),
            Err(err) => return Err(err.into()),
        } & 0o7777;
        content.extend_from_slice(data);
        let temporary = temporary_name(&name);
        let fd = openat(
            &dir,
            temporary.as_slice(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        let written = (|| {
            let mut file = std::fs::File::from(fd);
            file.write_all(&content)?;
            fchown(
                &file,
                Some(Uid::from_raw(owner.uid)),
                Some(Gid::from_raw(owner.gid)),
            )?;
            fchmod(&file, Mode::from_raw_mode(mode))?;
            file.sync_all()?;
            Ok::<_, io::Error>(renameat(&dir, temporary.as_slice(), &dir, name.as_slice())?)
        })();
        if let Err(err) = written {
            let _ = unlinkat(&dir, temporary.as_slice(), AtFlags::empty());
            return Err(err);
        }
        let stat = statat(&dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(path_stat(&dir, &name, &stat))
    }

    /// Renames `from` to `to` (replacing a file at `to`), both inside the root.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (from_dir, from_name) = self.locate(from.as_bytes())?;
        let (to_dir, to_name) = self.locate(to.as_bytes())?;
        let (Some(from_name), Some(to_name)) = (from_name, to_name) else {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        };
        Ok(renameat(
            &from_dir,
            from_name.as_slice(),
            &to_dir,
            to_name.as_slice(),
        )?)
    }
}

/// `path` without its trailing slashes.
fn trim_slashes(path: &[u8]) -> &[u8] {
    let end = path.iter().rposition(|b| *b != b'/').map_or(0, |at| at + 1);
    &path[..end]
}

/// `path`'s last component (`""` for `/`).
fn last_name(path: &[u8]) -> &[u8] {
    let path = trim_slashes(path);
    path.rsplit(|b| *b == b'/').next().unwrap_or_default()
}

/// `path` without its leading slashes (`.` for the root): resolution starts at the root's fd.
fn relative(path: &[u8]) -> &[u8] {
    let start = path.iter().position(|b| *b != b'/').unwrap_or(path.len());
    match &path[start..] {
        [] => b".",
        rest => rest,
    }
}

/// `base/part/part…`, the parts' bytes as they are (a name need not be UTF-8).
fn join(base: &str, parts: &[Vec<u8>]) -> Vec<u8> {
    let mut path = base.as_bytes().to_vec();
    for part in parts {
        path.push(b'/');
        path.extend_from_slice(part);
    }
    path
}

/// An entry's path as components under the destination: leading `/` and `.` dropped, the first
/// component renamed; `None` for the destination itself; `..` refused.
fn entry_parts(path: &Path, rename_top: Option<&[u8]>) -> io::Result<Option<Vec<Vec<u8>>>> {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.as_bytes().to_vec()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                return Err(io::Error::other(format!(
                    "refusing the archive entry {}: it leads outside the destination",
                    path.display()
                )));
            }
        }
    }
    if let (Some(new), false) = (rename_top, parts.is_empty()) {
        if new.is_empty() {
            parts.remove(0);
        } else {
            parts[0] = new.to_vec();
        }
    }
    Ok((!parts.is_empty()).then_some(parts))
}

/// A modification time: seconds since the epoch and nanoseconds.
type Mtime = (i64, u32);

/// A PAX time record's value (`1714550400.123456789`, `-1.5`, `12`) as seconds and nanoseconds
/// (digits past the ninth dropped); `None` for anything else.
pub fn pax_time(value: &str) -> Option<Mtime> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let negative = whole.starts_with('-');
    let digits = whole.strip_prefix('-').unwrap_or(whole);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = digits.parse().ok()?;
    let mut nanos = 0u32;
    for position in 0..9 {
        let digit = fraction
            .as_bytes()
            .get(position)
            .map_or(0, |b| u32::from(b - b'0'));
        nanos = nanos * 10 + digit;
    }
    Some(match (negative, nanos) {
        (false, _) => (secs, nanos),
        (true, 0) => (-secs, 0),
        // -1.25 s is -2 s + 0.75 s.
        (true, _) => (-secs - 1, 1_000_000_000 - nanos),
    })
}

/// The value of a PAX `mtime` record for `mtime` (seconds and nanoseconds).
pub fn pax_time_value((secs, nanos): Mtime) -> String {
    format!("{secs}.{nanos:09}")
}

fn timestamps((secs, nanos): Mtime) -> Timestamps {
    let at = Timespec {
        tv_sec: secs,
        tv_nsec: nanos.into(),
    };
    Timestamps {
        last_access: at,
        last_modification: at,
    }
}

fn set_owner(dir: &OwnedFd, name: &[u8], owner: Option<Owner>) -> io::Result<()> {
    if let Some(owner) = owner {
        chownat(
            dir,
            name,
            Some(Uid::from_raw(owner.uid)),
            Some(Gid::from_raw(owner.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    Ok(())
}

fn is_file(kind: tar::EntryType) -> bool {
    kind.is_file() || kind == tar::EntryType::Continuous
}

/// Writes the file `name` in `dir` from `data`, whole or not at all: under a temporary name in
/// the same folder (a dot, the name's start, a random suffix), renamed to `name` (replacing a
/// file there) once written, owned and dated. A failure removes the temporary file; a kill
/// leaves it, never a part of the file under its name.
fn write_whole(
    dir: &OwnedFd,
    name: &[u8],
    data: &mut impl Read,
    owner: Option<Owner>,
    mode: u32,
    mtime: Mtime,
) -> io::Result<()> {
    let temporary = temporary_name(name);
    let fd = openat(
        dir,
        temporary.as_slice(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let mut file = std::fs::File::from(fd);
    let written = io::copy(data, &mut file)
        .and_then(|_| finish_file(file.as_fd(), owner, mode, mtime))
        .and_then(|()| Ok(renameat(dir, temporary.as_slice(), dir, name)?));
    if written.is_err() {
        let _ = unlinkat(dir, temporary.as_slice(), AtFlags::empty());
    }
    written
}

/// A name for a file being written in place of `name`: `.` + its first 200 bytes at most (room
/// left within a name's 255) + `.dcx-` + 16 random hex digits.
pub fn temporary_name(name: &[u8]) -> Vec<u8> {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    let mut temporary = b".".to_vec();
    temporary.extend_from_slice(&name[..name.len().min(200)]);
    temporary.extend_from_slice(format!(".dcx-{:016x}", u64::from_le_bytes(bytes)).as_bytes());
    temporary
}

/// Owner first (a chown clears setuid bits), then mode and mtime.
fn finish_file(
    fd: BorrowedFd<'_>,
    owner: Option<Owner>,
    mode: u32,
    mtime: Mtime,
) -> io::Result<()> {
    if let Some(owner) = owner {
        fchown(
            fd,
            Some(Uid::from_raw(owner.uid)),
            Some(Gid::from_raw(owner.gid)),
        )?;
    }
    fchmod(fd, Mode::from_raw_mode(mode))?;
    futimens(fd, &timestamps(mtime))?;
    Ok(())
}

/// `name`'s bytes when they are not UTF-8 (a [`PathStat::name_bytes`]).
pub fn not_utf8(name: &[u8]) -> Option<Vec<u8>> {
    std::str::from_utf8(name).is_err().then(|| name.to_vec())
}

/// The kind of file `stat` describes.
pub fn kind_of(stat: &Stat) -> FileKind {
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => FileKind::File,
        FileType::Directory => FileKind::Directory,
        FileType::Symlink => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

fn path_stat(dir: &OwnedFd, name: &[u8], stat: &Stat) -> PathStat {
    let kind = kind_of(stat);
    let link_target = (kind == FileKind::Symlink)
        .then(|| readlinkat(dir, name, Vec::new()).ok())
        .flatten()
        .map(|target| String::from_utf8_lossy(target.as_bytes()).into_owned());
    PathStat {
        name: String::from_utf8_lossy(name).into_owned(),
        name_bytes: not_utf8(name),
        kind,
        size: u64::try_from(stat.st_size).unwrap_or(0),
        mode: stat.st_mode & 0o7777,
        mtime: stat.st_mtime,
        mtime_nsec: u32::try_from(stat.st_mtime_nsec).unwrap_or(0),
        link_target,
    }
}

/// The names in a folder, `.` and `..` left out, sorted.
fn names(dir: &OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in Dir::read_from(dir)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn header_for(stat: &Stat, kind: tar::EntryType) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(stat.st_mode & 0o7777);
    header.set_uid(u64::from(stat.st_uid));
    header.set_gid(u64::from(stat.st_gid));
    header.set_mtime(u64::try_from(stat.st_mtime).unwrap_or(0));
    header.set_size(0);
    header
}

/// Appends `name` (in the folder `dir`) to the archive as `as_name`, a folder with everything
/// under it ([`pack_dir`]).
fn pack_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &OwnedFd,
    name: &[u8],
    stat: &Stat,
    as_name: &Path,
) -> io::Result<()> {
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        return pack_leaf(builder, dir, name, stat, as_name);
    }
    let fd = openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    pack_dir(builder, fd, stat, as_name)
}

/// Appends one entry that is not a folder.
fn pack_leaf<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &OwnedFd,
    name: &[u8],
    stat: &Stat,
    as_name: &Path,
) -> io::Result<()> {
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => {
            // Non-blocking: a file swapped for a fifo meanwhile must not hang the copy.
            let fd = openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let stat = fstat(&fd)?;
            if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
                return Ok(());
            }
            let size = u64::try_from(stat.st_size).unwrap_or(0);
            let mut header = header_for(&stat, tar::EntryType::Regular);
            header.set_size(size);
            // Exactly `size` bytes, whatever the file does meanwhile: the archive stays whole.
            let data = std::fs::File::from(fd)
                .take(size)
                .chain(io::repeat(0))
                .take(size);
            builder.append_data(&mut header, as_name, data)
        }
        FileType::Symlink => {
            let target = readlinkat(dir, name, Vec::new())?;
            let mut header = header_for(stat, tar::EntryType::Symlink);
            builder.append_link(
                &mut header,
                as_name,
                Path::new(OsStr::from_bytes(target.as_bytes())),
            )
        }
        FileType::Fifo => {
            let mut header = header_for(stat, tar::EntryType::Fifo);
            builder.append_data(&mut header, as_name, io::empty())
        }
        // Sockets and devices have no place in a copy: said, never dropped silently.
        other => Err(not_copied(as_name, other)),
    }
}

/// The failure of a copy that meets a socket or a device, naming it.
fn not_copied(path: &Path, kind: FileType) -> io::Error {
    let what = match kind {
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        _ => "a special file",
    };
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} is {what}: dcx cp copies files, folders, symbolic links and fifos",
            path.display()
        ),
    )
}

/// A folder being archived by [`pack_dir`]: its names not yet archived, and where it is.
struct Level {
    /// Its device and inode, to know it again when climbing back to it through `..`.
    id: (u64, u64),
    names: std::vec::IntoIter<Vec<u8>>,
    as_name: PathBuf,
}

impl Level {
    /// Appends the folder `fd`'s own entry (unless `as_name` is empty: its contents at the top
    /// level) and reads its names.
    fn enter<W: Write>(
        builder: &mut tar::Builder<W>,
        fd: &OwnedFd,
        stat: &Stat,
        as_name: PathBuf,
    ) -> io::Result<Self> {
        if !as_name.as_os_str().is_empty() {
            // Folders end in `/`, as tar and docker write them.
            let mut named = as_name.as_os_str().as_bytes().to_vec();
            named.push(b'/');
            let mut header = header_for(stat, tar::EntryType::Directory);
            builder.append_data(
                &mut header,
                Path::new(OsStr::from_bytes(&named)),
                io::empty(),
            )?;
        }
        let own = fstat(fd)?;
        Ok(Self {
            id: (own.st_dev, own.st_ino),
            names: names(fd)?.into_iter(),
            as_name,
        })
    }
}

/// Appends the folder `fd` and everything under it, depth first, names sorted. A loop with a
/// stack of its own, whatever the depth (a tree's depth is the input's to choose): only the
/// folder being read is open; a finished one gives way to its parent, reopened through its `..`
/// and checked to be the same folder (device and inode), so the walk never goes anywhere else.
fn pack_dir<W: Write>(
    builder: &mut tar::Builder<W>,
    fd: OwnedFd,
    stat: &Stat,
    as_name: &Path,
) -> io::Result<()> {
    let mut fd = fd;
    let mut level = Level::enter(builder, &fd, stat, as_name.to_path_buf())?;
    let mut parents: Vec<Level> = Vec::new();
    loop {
        let Some(child) = level.names.next() else {
            let Some(parent) = parents.pop() else {
                return Ok(());
            };
            fd = climb(&fd, parent.id)?;
            level = parent;
            continue;
        };
        let stat = match statat(&fd, child.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            // Removed meanwhile.
            Err(rustix::io::Errno::NOENT) => continue,
            Err(err) => return Err(err.into()),
        };
        let path = level.as_name.join(OsStr::from_bytes(&child));
        if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
            pack_leaf(builder, &fd, &child, &stat, &path)?;
            continue;
        }
        fd = openat(
            &fd,
            child.as_slice(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let below = Level::enter(builder, &fd, &stat, path)?;
        parents.push(std::mem::replace(&mut level, below));
    }
}

/// The parent of the finished folder `fd`, through its `..`, when it is still the folder
/// `parent` (device and inode); a tree moved meanwhile is an error, never another folder.
fn climb(fd: &OwnedFd, parent: (u64, u64)) -> io::Result<OwnedFd> {
    let up = openat(
        fd,
        "..",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let stat = fstat(&up)?;
    if (stat.st_dev, stat.st_ino) != parent {
        return Err(io::Error::other("the tree was moved while it was copied"));
    }
    Ok(up)
}

/// The entries directly in the archive's top folder (a tar of one folder, as an engine's
/// archive call gives it), file contents skipped; at most `limit` of them (`None` past it).
pub fn list_archive(input: impl Read, limit: usize) -> io::Result<Option<Vec<PathStat>>> {
    let mut archive = tar::Archive::new(input);
    let mut found = Vec::new();
    for entry in archive.entries()? {
        let entry = entry?;
        let path = entry.path()?.into_owned();
        let parts: Vec<&OsStr> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(part) => Some(part),
                _ => None,
            })
            .collect();
        if parts.len() != 2 {
            continue;
        }
        if found.len() == limit {
            return Ok(None);
        }
        found.push(header_stat(&entry, parts[1])?);
    }
    found.sort_by(|a: &PathStat, b| a.name.cmp(&b.name));
    Ok(Some(found))
}

/// The paths of a tar stream's entries (`a`, `a/b`: leading `/` and `.` dropped; bytes, as the
/// archive holds them), in order, contents skipped.
pub fn entry_paths(input: impl Read) -> io::Result<Vec<Vec<u8>>> {
    let mut archive = tar::Archive::new(input);
    let mut paths = Vec::new();
    for entry in archive.entries()? {
        let entry = entry?;
        if let Some(parts) = entry_parts(&entry.path()?, None)? {
            paths.push(parts.join(&b'/'));
        }
    }
    Ok(paths)
}

/// The stat of an archive's first entry (a symlink's target as the link holds it).
pub fn first_stat(input: impl Read) -> io::Result<PathStat> {
    let mut archive = tar::Archive::new(input);
    let entry = archive
        .entries()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "empty archive"))??;
    let path = entry.path()?.into_owned();
    header_stat(&entry, path.file_name().unwrap_or_default())
}

/// How [`read_archive_file`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum FileRead {
    /// The bytes asked for, and the whole file's stat.
    Read(Vec<u8>, PathStat),
    /// The archive's entry is not a regular file.
    NotAFile(PathStat),
    /// More than the limit was asked for.
    TooLarge(PathStat),
}

/// `length` bytes (default: the rest) from `offset` of the file an archive holds as its first
/// entry (a tar of one file), refusing reads of more than `limit` bytes.
pub fn read_archive_file(
    input: impl Read,
    offset: u64,
    length: Option<u64>,
    limit: u64,
) -> io::Result<FileRead> {
    let mut archive = tar::Archive::new(input);
    let Some(entry) = archive.entries()?.next() else {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "empty archive",
        ));
    };
    let mut entry = entry?;
    let path = entry.path()?.into_owned();
    let name = path.file_name().unwrap_or_default().to_owned();
    let stat = header_stat(&entry, &name)?;
    if stat.kind != FileKind::File {
        return Ok(FileRead::NotAFile(stat));
    }
    let available = stat.size.saturating_sub(offset);
    let wanted = length.map_or(available, |length| length.min(available));
    if wanted > limit {
        return Ok(FileRead::TooLarge(stat));
    }
    io::copy(&mut (&mut entry).take(offset), &mut io::sink())?;
    let mut bytes = Vec::with_capacity(usize::try_from(wanted).unwrap_or(0));
    (&mut entry).take(wanted).read_to_end(&mut bytes)?;
    Ok(FileRead::Read(bytes, stat))
}

fn header_stat<R: Read>(entry: &tar::Entry<'_, R>, name: &OsStr) -> io::Result<PathStat> {
    let header = entry.header();
    let kind = match header.entry_type() {
        kind if kind.is_file() || kind == tar::EntryType::Continuous => FileKind::File,
        kind if kind.is_dir() => FileKind::Directory,
        kind if kind.is_symlink() => FileKind::Symlink,
        _ => FileKind::Other,
    };
    Ok(PathStat {
        name: name.to_string_lossy().into_owned(),
        name_bytes: not_utf8(name.as_bytes()),
        kind,
        size: header.size()?,
        mode: header.mode()? & 0o7777,
        mtime: i64::try_from(header.mtime()?).unwrap_or(i64::MAX),
        mtime_nsec: 0,
        link_target: entry
            .link_name()?
            .filter(|_| kind == FileKind::Symlink)
            .map(|target| target.to_string_lossy().into_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn pax_times_keep_their_nanoseconds() {
        assert_eq!(
            pax_time("1714550400.123456789"),
            Some((1_714_550_400, 123_456_789))
        );
        assert_eq!(pax_time("1714550400.5"), Some((1_714_550_400, 500_000_000)));
        assert_eq!(pax_time("12"), Some((12, 0)));
        assert_eq!(pax_time("12.0000000019"), Some((12, 1)));
        assert_eq!(pax_time("-1.25"), Some((-2, 750_000_000)));
        assert_eq!(pax_time("-3"), Some((-3, 0)));
        assert_eq!(pax_time(""), None);
        assert_eq!(pax_time("1.2x"), None);
        assert_eq!(pax_time("-"), None);
        assert_eq!(pax_time(&pax_time_value((7, 42))), Some((7, 42)));
        assert_eq!(pax_time_value((7, 42)), "7.000000042");
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/empty")).unwrap();
        std::fs::write(root.join("src/a.txt"), b"alpha").unwrap();
        std::fs::write(root.join("src/run.sh"), b"#!/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("a.txt", root.join("src/link")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            root.join("src/run.sh"),
            std::fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        dir
    }

    #[test]
    fn a_tree_round_trips_with_links_modes_and_empty_folders() {
        let from = tree();
        let mut tar = Vec::new();
        Root::beneath(from.path())
            .unwrap()
            .pack("src", "copy", &mut tar)
            .unwrap();
        let to = tempfile::tempdir().unwrap();
        let unpacked = Root::beneath(to.path())
            .unwrap()
            .unpack("", tar.as_slice(), None, None)
            .unwrap();
        assert_eq!(unpacked.top, ["copy"]);
        let copy = to.path().join("copy");
        assert_eq!(std::fs::read(copy.join("a.txt")).unwrap(), b"alpha");
        assert_eq!(
            std::fs::read_link(copy.join("link")).unwrap(),
            Path::new("a.txt")
        );
        assert!(copy.join("empty").is_dir());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(copy.join("run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o750);
        // Tar keeps whole seconds, as docker cp does.
        use std::os::unix::fs::MetadataExt;
        let stat = |p: &Path| std::fs::metadata(p).unwrap().mtime();
        assert_eq!(
            stat(&copy.join("a.txt")),
            stat(&from.path().join("src/a.txt"))
        );
    }

    #[test]
    fn contents_and_renames_land_where_asked() {
        let from = tree();
        let mut tar = Vec::new();
        let root = Root::beneath(from.path()).unwrap();
        root.pack("src", "", &mut tar).unwrap();
        let to = tempfile::tempdir().unwrap();
        let dest = Root::beneath(to.path()).unwrap();
        let unpacked = dest.unpack("", tar.as_slice(), None, None).unwrap();
        assert!(unpacked.top.contains(&"a.txt".to_owned()));
        assert!(to.path().join("a.txt").is_file());

        let mut tar = Vec::new();
        root.pack("src/a.txt", "a.txt", &mut tar).unwrap();
        dest.unpack("", tar.as_slice(), None, Some(b"b.txt"))
            .unwrap();
        assert_eq!(std::fs::read(to.path().join("b.txt")).unwrap(), b"alpha");
    }

    #[test]
    fn nothing_leaves_a_host_destination() {
        let outside = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), to.path().join("out")).unwrap();
        let dest = Root::beneath(to.path()).unwrap();

        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_mode(0o644);
        tar.append_data(&mut header, "out/x", &b"x"[..]).unwrap();
        let tar = tar.into_inner().unwrap();
        assert!(dest.unpack("", tar.as_slice(), None, None).is_err());
        assert!(!outside.path().join("x").exists());

        // `..` in an entry's name (written raw: the tar crate refuses to write one).
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..7].copy_from_slice(b"../evil");
        header.set_size(0);
        header.set_mode(0o644);
        header.set_cksum();
        let mut tar = header.as_bytes().to_vec();
        tar.extend_from_slice(&[0; 1024]);
        let err = dest.unpack("", tar.as_slice(), None, None).unwrap_err();
        assert!(err.to_string().contains("leads outside"), "{err}");
    }

    #[test]
    fn a_container_root_keeps_links_inside() {
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("secret"), b"host").unwrap();
        let rootfs = host.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(rootfs.join("etc/secret"), b"container").unwrap();
        let escape = format!("{}/secret", host.path().display());
        std::os::unix::fs::symlink("../../../../secret", rootfs.join("up")).unwrap();
        std::os::unix::fs::symlink(&escape, rootfs.join("abs")).unwrap();
        let root = Root::container(&rootfs).unwrap();
        // `..` stops at the root; both links resolve inside it, where there is no /secret.
        assert!(root.resolve("up", OFlags::RDONLY).is_err());
        assert_eq!(root.stat("up").unwrap().kind, FileKind::Symlink);
        assert!(root.resolve("abs", OFlags::RDONLY).is_err());
        assert!(root.resolve("/../../etc/secret", OFlags::RDONLY).is_ok());
        let mut tar = Vec::new();
        root.pack("/../etc/secret", "s", &mut tar).unwrap();
        match read_archive_file(tar.as_slice(), 0, None, 100).unwrap() {
            FileRead::Read(bytes, _) => assert_eq!(bytes, b"container"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_tree_deeper_than_any_stack_round_trips() {
        const DEPTH: usize = 2000;
        let from = tempfile::tempdir().unwrap();
        let mut deep = from.path().join("deep");
        std::fs::create_dir(&deep).unwrap();
        for _ in 0..DEPTH {
            deep.push("d");
            std::fs::create_dir(&deep).unwrap();
        }
        std::fs::write(deep.join("f"), b"bottom").unwrap();
        let to = tempfile::tempdir().unwrap();
        let (src, dst) = (from.path().to_path_buf(), to.path().to_path_buf());
        // A small stack: a walk whose depth were the tree's would overflow it.
        std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                let mut tar = Vec::new();
                Root::beneath(&src)
                    .unwrap()
                    .pack("deep", "copy", &mut tar)
                    .unwrap();
                Root::beneath(&dst)
                    .unwrap()
                    .unpack("", tar.as_slice(), None, None)
                    .unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
        let mut copy = to.path().join("copy");
        for _ in 0..DEPTH {
            copy.push("d");
        }
        assert_eq!(std::fs::read(copy.join("f")).unwrap(), b"bottom");
        for dir in [from.path(), to.path()] {
            // `rm` takes any depth (std's removal may not).
            assert!(
                Command::new("rm")
                    .arg("-rf")
                    .arg(dir)
                    .status()
                    .unwrap()
                    .success()
            );
        }
    }

    #[test]
    fn archives_are_listed_and_read_in_ranges() {
        let from = tree();
        let root = Root::beneath(from.path()).unwrap();
        let mut tar = Vec::new();
        root.pack("src", "src", &mut tar).unwrap();
        let listed = list_archive(tar.as_slice(), 100).unwrap().unwrap();
        let names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a.txt", "empty", "link", "run.sh"]);
        assert_eq!(listed[2].link_target.as_deref(), Some("a.txt"));
        assert_eq!(list_archive(tar.as_slice(), 3).unwrap(), None);

        let mut tar = Vec::new();
        root.pack("src/a.txt", "a.txt", &mut tar).unwrap();
        match read_archive_file(tar.as_slice(), 1, Some(3), 100).unwrap() {
            FileRead::Read(bytes, stat) => {
                assert_eq!(bytes, b"lph");
                assert_eq!(stat.size, 5);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read_archive_file(tar.as_slice(), 0, None, 4).unwrap(),
            FileRead::TooLarge(_)
        ));
        assert_eq!(root.list("src").unwrap().len(), 4);
        assert_eq!(root.stat("src/link").unwrap().kind, FileKind::Symlink);
    }
}
