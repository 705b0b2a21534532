//! The file calls FS_STAT, FS_LIST and FS_READ, each answered from its own thread.
//!
//! They run as the helper's user: the kernel checks permissions and follows links as it would
//! for any of that user's programs, in the container's own view. Each answers with frames about
//! its id and ends it with its last one (FS_STAT, FS_END or FS_ERR, see
//! [`Session::finish_call`]); an error before the first answer is FS_ERR alone. The stats come
//! straight from the kernel's (`st_mode & 0o7777`, nanosecond `mtime`).

use std::ffi::CString;

use dcx_helper::{FS_CHUNK, FileKind, FileStat, FromHelper, HEADER_LEN, frame_header, kind};
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, CWD, Dir, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::Session;
use super::strerror;

/// The bits of `st_mode` a stat carries: permissions, setuid, setgid, sticky.
const MODE_BITS: u32 = 0o7777;

/// FS_ERR for `errno`, with `strerror`'s words.
pub fn failure(errno: Errno) -> FromHelper {
    FromHelper::FsErr {
        errno: errno.raw_os_error(),
        message: strerror::words(errno),
    }
}

/// `path` if it is absolute; a relative one is `EINVAL` (the helper's cwd means nothing to dcx).
pub fn absolute(path: &[u8]) -> Result<&[u8], Errno> {
    if path.first() == Some(&b'/') {
        Ok(path)
    } else {
        Err(Errno::INVAL)
    }
}

/// The last component of `path` as written, trailing slashes ignored; empty for `/`.
pub fn last_name(path: &[u8]) -> &[u8] {
    let end = path.len() - path.iter().rev().take_while(|&&byte| byte == b'/').count();
    let trimmed = &path[..end];
    let start = trimmed
        .iter()
        .rposition(|&byte| byte == b'/')
        .map_or(0, |slash| slash + 1);
    &trimmed[start..]
}

/// What a kernel stat describes.
pub fn kind_of(stat: &Stat) -> FileKind {
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => FileKind::File,
        FileType::Directory => FileKind::Directory,
        FileType::Symlink => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

/// A protocol stat from a kernel one.
pub fn file_stat(stat: &Stat, name: &[u8], link_target: Vec<u8>) -> FileStat {
    FileStat {
        kind: kind_of(stat),
        size: int(stat.st_size),
        mode: stat.st_mode & MODE_BITS,
        mtime: int(stat.st_mtime),
        mtime_nsec: int(stat.st_mtime_nsec),
        name: name.to_vec(),
        link_target,
    }
}

/// A `struct stat` field as the protocol's type (their C types differ between architectures);
/// a value out of range (a negative size) is 0.
fn int<T: TryInto<U>, U: Default>(value: T) -> U {
    value.try_into().unwrap_or_default()
}

/// FS_STAT: `lstat` (or `stat` with `follow`), and a symlink's target.
pub fn stat(session: &Session, id: u32, follow: bool, path: &[u8]) {
    let answer = stat_path(follow, path).map_or_else(failure, FromHelper::FsStat);
    session.finish_call(id, &answer);
}

fn stat_path(follow: bool, path: &[u8]) -> Result<FileStat, Errno> {
    let path = absolute(path)?;
    let flags = if follow {
        AtFlags::empty()
    } else {
        AtFlags::SYMLINK_NOFOLLOW
    };
    let stat = rustix::fs::statat(CWD, path, flags)?;
    let target = if kind_of(&stat) == FileKind::Symlink {
        rustix::fs::readlinkat(CWD, path, Vec::new())?.into_bytes()
    } else {
        Vec::new()
    };
    Ok(file_stat(&stat, last_name(path), target))
}

/// FS_LIST: the folder's entries sorted by name (bytewise), `.` and `..` left out, in
/// FS_ENTRIES frames of at most [`FS_CHUNK`] bytes, then FS_END; `E2BIG` over `limit`.
pub fn list(session: &Session, id: u32, limit: u32, path: &[u8]) {
    let entries = match list_dir(limit, path) {
        Ok(entries) => entries,
        Err(errno) => return session.finish_call(id, &failure(errno)),
    };
    let mut batch = Vec::new();
    let mut used = 4;
    for entry in entries {
        if !batch.is_empty() && used + entry.wire_len() > FS_CHUNK {
            session
                .out
                .send(id, &FromHelper::FsEntries(std::mem::take(&mut batch)));
            used = 4;
        }
        used += entry.wire_len();
        batch.push(entry);
    }
    if !batch.is_empty() {
        session.out.send(id, &FromHelper::FsEntries(batch));
    }
    session.finish_call(id, &FromHelper::FsEnd);
}

fn list_dir(limit: u32, path: &[u8]) -> Result<Vec<FileStat>, Errno> {
    let path = absolute(path)?;
    let folder = rustix::fs::openat(
        CWD,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut names: Vec<CString> = Vec::new();
    let mut dir = Dir::new(folder)?;
    for entry in dir.by_ref() {
        let entry = entry?;
        let name = entry.file_name();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        if names.len() == limit {
            return Err(Errno::TOOBIG);
        }
        names.push(name.to_owned());
    }
    names.sort_unstable();
    let folder = dir.fd()?;
    let mut entries = Vec::with_capacity(names.len());
    for name in names {
        if let Some(entry) = entry_stat(folder, &name)? {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// One entry's stat, `None` if it went away since the listing.
fn entry_stat(folder: BorrowedFd<'_>, name: &CString) -> Result<Option<FileStat>, Errno> {
    let stat = match rustix::fs::statat(folder, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::NOENT) => return Ok(None),
        Err(errno) => return Err(errno),
    };
    let target = if kind_of(&stat) == FileKind::Symlink {
        match rustix::fs::readlinkat(folder, name, Vec::new()) {
            Ok(target) => target.into_bytes(),
            Err(Errno::NOENT) => return Ok(None),
            Err(errno) => return Err(errno),
        }
    } else {
        Vec::new()
    };
    Ok(Some(file_stat(&stat, name.to_bytes(), target)))
}

/// FS_READ: the file's stat, then its bytes from `offset` in FS_DATA frames of at most
/// [`FS_CHUNK`] (read with `pread`, so nothing before `offset` is read), then FS_END.
pub fn read(session: &Session, id: u32, offset: u64, length: u64, limit: u64, path: &[u8]) {
    let (file, stat) = match open_regular(path) {
        Ok(opened) => opened,
        Err(errno) => return session.finish_call(id, &failure(errno)),
    };
    let size: u64 = int(stat.st_size);
    let wanted = length.min(size.saturating_sub(offset));
    if wanted > limit {
        return session.finish_call(id, &failure(Errno::FBIG));
    }
    session.out.send(
        id,
        &FromHelper::FsStat(file_stat(&stat, last_name(path), Vec::new())),
    );
    // The bytes as of the stat: a file that grows meanwhile gives no more, one that shrinks
    // fewer.
    let mut buf = vec![0u8; HEADER_LEN + chunk(wanted)];
    let (mut at, mut left) = (offset, wanted);
    while left > 0 {
        let len = chunk(left);
        let read = match rustix::io::pread(&file, &mut buf[HEADER_LEN..HEADER_LEN + len], at) {
            Ok(0) => break,
            Ok(read) => read,
            Err(Errno::INTR) => continue,
            Err(errno) => return session.finish_call(id, &failure(errno)),
        };
        buf[..HEADER_LEN].copy_from_slice(&frame_header(kind::FS_DATA, id, read));
        session.out.write_frame(&buf[..HEADER_LEN + read]);
        at += read as u64;
        left -= read as u64;
    }
    session.finish_call(id, &FromHelper::FsEnd);
}

/// The bytes of the next FS_DATA frame when `left` remain.
fn chunk(left: u64) -> usize {
    usize::try_from(left).map_or(FS_CHUNK, |left| left.min(FS_CHUNK))
}

/// The regular file at `path` (followed), open for reading, and its stat: `EISDIR` for a
/// folder, `EINVAL` for anything else that is not a regular file. It is opened non-blocking
/// (a fifo never holds the thread) and checked before anything is read.
fn open_regular(path: &[u8]) -> Result<(OwnedFd, Stat), Errno> {
    let path = absolute(path)?;
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let file = match rustix::fs::openat(CWD, path, flags, Mode::empty()) {
        Ok(file) => file,
        // A folder or a socket that cannot be opened is still named for what it is.
        Err(errno) => {
            return Err(match rustix::fs::statat(CWD, path, AtFlags::empty()) {
                Ok(stat) => not_regular(&stat).unwrap_or(errno),
                Err(_) => errno,
            });
        }
    };
    let stat = rustix::fs::fstat(&file)?;
    if let Some(errno) = not_regular(&stat) {
        return Err(errno);
    }
    // A regular file's reads never wait; some filesystems still honour the flag.
    let _ = rustix::fs::fcntl_setfl(&file, OFlags::empty());
    Ok((file, stat))
}

/// Why a stat is no file to read or replace: `EISDIR`, `EINVAL`; `None` for a regular file.
pub fn not_regular(stat: &Stat) -> Option<Errno> {
    match kind_of(stat) {
        FileKind::File => None,
        FileKind::Directory => Some(Errno::ISDIR),
        FileKind::Symlink | FileKind::Other => Some(Errno::INVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_name_ignores_trailing_slashes_and_is_empty_for_the_root() {
        assert_eq!(last_name(b"/a/b"), b"b");
        assert_eq!(last_name(b"/a/b//"), b"b");
        assert_eq!(last_name(b"/a"), b"a");
        assert_eq!(last_name(b"/"), b"");
        assert_eq!(last_name(b"//"), b"");
        assert_eq!(last_name(b"/a/.."), b"..");
    }

    #[test]
    fn only_absolute_paths_are_taken() {
        assert_eq!(absolute(b"/x"), Ok(&b"/x"[..]));
        assert_eq!(absolute(b"x"), Err(Errno::INVAL));
        assert_eq!(absolute(b""), Err(Errno::INVAL));
    }
}
