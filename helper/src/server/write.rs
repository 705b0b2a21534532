//! One FS_WRITE: its thread, its temporary file, and the rename that replaces the target.
//!
//! The thread prepares the target when FS_WRITE comes: it follows a final symlink (the link's
//! file is written, as `echo > link` does), creates missing parent folders as `mkdir -p` does,
//! and creates `.NAME.dcx-RANDOM` beside the target (`O_CREAT | O_EXCL`, mode 0600), or opens
//! the target for appending. FS_WRITE_DATA's bytes, passed on by the main loop, are written as
//! they come; at FS_WRITE_END the file gets its mode and the real time (nanoseconds included)
//! as its mtime, and is renamed over the target in one step. Nothing is answered before
//! FS_WRITE_END: an error on the way is kept and answered then. The temporary file is removed
//! on any failure, and when the helper ends first.

use std::collections::hash_map::RandomState;
use std::ffi::CString;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{SystemTime, UNIX_EPOCH};

use dcx_helper::{FileKind, FileStat, FromHelper};
use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, CWD, Mode, OFlags, Stat, Timespec, Timestamps};
use rustix::io::Errno;

use super::Session;
use super::files::{absolute, failure, file_stat, kind_of, not_regular};

/// The most symlinks followed to the target (Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// The most bytes of the target's name kept in the temporary file's (`.`, `.dcx-` and 16 hex
/// digits make it 255, `NAME_MAX`).
const KEPT_NAME: usize = 255 - 22;

/// What FS_WRITE asks for.
pub struct WriteSpec {
    /// Append to the target instead of replacing it.
    pub append: bool,
    /// The mode to give the file.
    pub mode: Option<u32>,
    /// The target, absolute.
    pub path: Vec<u8>,
}

/// What the main loop passes to a write's thread.
pub enum Piece {
    /// FS_WRITE_DATA's bytes.
    Data(Vec<u8>),
    /// The data went over [`dcx_helper::FS_WRITE_LIMIT`]: the write fails with `EFBIG`.
    TooLarge,
    /// FS_WRITE_END: finish and answer.
    End,
}

/// Serves one write until FS_WRITE_END, or until the helper ends (the queue closes).
pub fn write(session: &Session, id: u32, spec: &WriteSpec, pieces: &Receiver<Piece>) {
    let mut target = Target::open(spec);
    // A closed queue: the helper is ending; dropping `target` removes the temporary file.
    while let Ok(piece) = pieces.recv() {
        match piece {
            Piece::Data(bytes) => {
                if let Ok(open) = &mut target
                    && let Err(errno) = open.write(&bytes)
                {
                    target = Err(errno);
                }
            }
            Piece::TooLarge => {
                if target.is_ok() {
                    target = Err(Errno::FBIG);
                }
            }
            Piece::End => {
                let answer = target
                    .and_then(|open| open.finish(spec.mode, session.umask))
                    .map_or_else(failure, FromHelper::FsStat);
                session.finish_call(id, &answer);
                return;
            }
        }
    }
}

/// The file being written and where it goes.
struct Target {
    /// The target's folder (an `O_PATH` descriptor).
    folder: OwnedFd,
    /// The target's name in it.
    name: CString,
    /// The file written: the temporary one, or the target itself when appending.
    file: OwnedFd,
    /// The temporary file's name until it is renamed over the target; `None` when appending.
    temporary: Option<CString>,
}

impl Target {
    fn open(spec: &WriteSpec) -> Result<Self, Errno> {
        let resolved = resolve(absolute(&spec.path)?)?;
        if let Some(errno) = resolved.existing.as_ref().and_then(not_regular) {
            return Err(errno);
        }
        let folder = open_folder(&resolved.folder)?;
        let name = CString::new(resolved.name).map_err(|_| Errno::INVAL)?;
        if spec.append {
            let flags = OFlags::WRONLY
                | OFlags::APPEND
                | OFlags::CREATE
                | OFlags::NONBLOCK
                | OFlags::NOFOLLOW
                | OFlags::NOCTTY
                | OFlags::CLOEXEC;
            // 0666, less the umask (the kernel's).
            let file = rustix::fs::openat(&folder, &name, flags, Mode::from_raw_mode(0o666))?;
            if let Some(errno) = not_regular(&rustix::fs::fstat(&file)?) {
                return Err(errno);
            }
            let _ = rustix::fs::fcntl_setfl(&file, OFlags::APPEND);
            return Ok(Self {
                folder,
                name,
                file,
                temporary: None,
            });
        }
        let (temporary, file) = create_temporary(&folder, name.as_bytes())?;
        Ok(Self {
            folder,
            name,
            file,
            temporary: Some(temporary),
        })
    }

    fn write(&mut self, mut bytes: &[u8]) -> Result<(), Errno> {
        while !bytes.is_empty() {
            match rustix::io::write(&self.file, bytes) {
                Ok(0) => return Err(Errno::IO),
                Ok(written) => bytes = &bytes[written..],
                Err(Errno::INTR) => {}
                Err(errno) => return Err(errno),
            }
        }
        Ok(())
    }

    /// Gives the file its mode and (replacing) renames it over the target: the file's stat.
    /// The mode is `mode`, else the replaced file's, else `0o666 & !umask`; when appending,
    /// only a given `mode` changes it.
    fn finish(mut self, mode: Option<u32>, umask: Mode) -> Result<FileStat, Errno> {
        let Some(temporary) = &self.temporary else {
            if let Some(mode) = mode {
                rustix::fs::fchmod(&self.file, Mode::from_raw_mode(mode))?;
            }
            // Only the file's owner may set a time of its choosing: a file the user may merely
            // write keeps the kernel's stamp.
            match stamp_now(&self.file) {
                Ok(()) | Err(Errno::PERM | Errno::ACCESS) => {}
                Err(errno) => return Err(errno),
            }
            let stat = rustix::fs::fstat(&self.file)?;
            return Ok(file_stat(&stat, self.name.to_bytes(), Vec::new()));
        };
        let mode = mode
            .or_else(|| self.replaced_mode())
            .unwrap_or(0o666 & !umask.as_raw_mode());
        rustix::fs::fchmod(&self.file, Mode::from_raw_mode(mode))?;
        stamp_now(&self.file)?;
        rustix::fs::renameat(&self.folder, temporary, &self.folder, &self.name)?;
        self.temporary = None;
        let stat = rustix::fs::statat(&self.folder, &self.name, AtFlags::SYMLINK_NOFOLLOW)
            .or_else(|_| rustix::fs::fstat(&self.file))?;
        Ok(file_stat(&stat, self.name.to_bytes(), Vec::new()))
    }

    /// The mode of the regular file the write replaces, if there is one.
    fn replaced_mode(&self) -> Option<u32> {
        let stat: Stat =
            rustix::fs::statat(&self.folder, &self.name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        (kind_of(&stat) == FileKind::File).then_some(stat.st_mode & 0o7777)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(temporary) = self.temporary.take() {
            let _ = rustix::fs::unlinkat(&self.folder, &temporary, AtFlags::empty());
        }
    }
}

/// Gives `file` the real time, nanoseconds included, as its mtime. The kernel stamps a write
/// with a clock that advances by ticks (milliseconds), so a file written just after a build
/// output was touched could carry the same time and look no newer to `make` or `[ -nt ]`; the
/// real time is never behind that tick.
fn stamp_now(file: &OwnedFd) -> Result<(), Errno> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let omit = Timespec {
        tv_sec: 0,
        tv_nsec: rustix::fs::UTIME_OMIT,
    };
    let times = Timestamps {
        last_access: omit,
        last_modification: Timespec {
            tv_sec: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: now.subsec_nanos().into(),
        },
    };
    rustix::fs::futimens(file, &times)
}

/// Where a write goes, a final symlink followed.
struct Resolved {
    /// The folder.
    folder: Vec<u8>,
    /// The name in it.
    name: Vec<u8>,
    /// What is there now; `None`: nothing.
    existing: Option<Stat>,
}

/// Where a write to `path` goes: a final symlink is followed (`ELOOP` past [`MAX_LINKS`]).
fn resolve(path: &[u8]) -> Result<Resolved, Errno> {
    let mut path = path.to_vec();
    for _ in 0..=MAX_LINKS {
        let (folder, name) = split(&path)?;
        match rustix::fs::statat(CWD, &path, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if kind_of(&stat) == FileKind::Symlink => {
                let link = rustix::fs::readlinkat(CWD, &path, Vec::new())?.into_bytes();
                path = if link.first() == Some(&b'/') {
                    link
                } else {
                    join(folder, &link)
                };
            }
            found => {
                let existing = match found {
                    Ok(stat) => Some(stat),
                    Err(Errno::NOENT) => None,
                    Err(errno) => return Err(errno),
                };
                return Ok(Resolved {
                    folder: folder.to_vec(),
                    name: name.to_vec(),
                    existing,
                });
            }
        }
    }
    Err(Errno::LOOP)
}

/// An absolute path's folder and last component; a path naming no file in a folder (`/`, a
/// trailing slash, `.` or `..` last) is `EISDIR`, as `open(O_CREAT)` says of it.
fn split(path: &[u8]) -> Result<(&[u8], &[u8]), Errno> {
    let slash = path
        .iter()
        .rposition(|&byte| byte == b'/')
        .ok_or(Errno::INVAL)?;
    let (folder, name) = (&path[..slash], &path[slash + 1..]);
    if matches!(name, b"" | b"." | b"..") {
        return Err(Errno::ISDIR);
    }
    Ok((if folder.is_empty() { b"/" } else { folder }, name))
}

/// `name` inside `folder`.
fn join(folder: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = folder.to_vec();
    if !path.ends_with(b"/") {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

/// The target's folder, created first (with its missing parents) if it does not exist.
fn open_folder(folder: &[u8]) -> Result<OwnedFd, Errno> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    match rustix::fs::openat(CWD, folder, flags, Mode::empty()) {
        Err(Errno::NOENT) => {
            make_folders(folder)?;
            rustix::fs::openat(CWD, folder, flags, Mode::empty())
        }
        other => other,
    }
}

/// `mkdir -p folder`: each missing folder from the top, mode 0777 less the umask (the
/// kernel's); one that exists is no error (a file there fails the next step, `ENOTDIR`).
fn make_folders(folder: &[u8]) -> Result<(), Errno> {
    let ends = folder
        .iter()
        .enumerate()
        .filter(|&(at, &byte)| byte == b'/' && at > 0 && folder[at - 1] != b'/')
        .map(|(at, _)| at)
        .chain(std::iter::once(folder.len()));
    for end in ends {
        match rustix::fs::mkdirat(CWD, &folder[..end], Mode::from_raw_mode(0o777)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

/// A new file `.NAME.dcx-RANDOM` in `folder`, mode 0600, that nothing else had.
fn create_temporary(folder: &OwnedFd, name: &[u8]) -> Result<(CString, OwnedFd), Errno> {
    let flags = OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC;
    let kept = &name[..name.len().min(KEPT_NAME)];
    for _ in 0..8 {
        let mut temporary = Vec::with_capacity(kept.len() + 22);
        temporary.push(b'.');
        temporary.extend_from_slice(kept);
        temporary.extend_from_slice(format!(".dcx-{:016x}", random()).as_bytes());
        let temporary = CString::new(temporary).map_err(|_| Errno::INVAL)?;
        match rustix::fs::openat(folder, &temporary, flags, Mode::from_raw_mode(0o600)) {
            Ok(file) => return Ok((temporary, file)),
            Err(Errno::EXIST) => {}
            Err(errno) => return Err(errno),
        }
    }
    Err(Errno::EXIST)
}

/// 64 unpredictable bits: std's hasher keys come from the system's randomness.
fn random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_splits_into_its_folder_and_a_name() {
        assert_eq!(split(b"/a/b"), Ok((&b"/a"[..], &b"b"[..])));
        assert_eq!(split(b"/b"), Ok((&b"/"[..], &b"b"[..])));
        assert_eq!(split(b"//b"), Ok((&b"/"[..], &b"b"[..])));
        for named_no_file in [&b"/"[..], b"/a/", b"/a/.", b"/a/.."] {
            assert_eq!(split(named_no_file), Err(Errno::ISDIR));
        }
        assert_eq!(join(b"/", b"x"), b"/x");
        assert_eq!(join(b"/a", b"../x"), b"/a/../x");
    }

    #[test]
    fn random_suffixes_differ() {
        assert_ne!(random(), random());
    }
}
