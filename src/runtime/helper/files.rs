//! File calls run by the helper as its user: stat, list, read and write in one step.
//!
//! The helper does them with its own (the session user's) rights in the container's view, so
//! permissions and links are the kernel's, as they would be for a command of that user, and
//! written files carry the kernel's nanosecond times. A failure comes back as the error number
//! the kernel gave ([`UserFileError::Denied`] and the rest); the engine words it.

use dcx_helper::{FileStat, FromHelper, ToHelper};

use super::Warm;
use crate::runtime::{FileKind, PathStat};

/// The most bytes a FS_WRITE_DATA frame carries.
const CHUNK: usize = 64 * 1024;

/// Why a file call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserFileError {
    /// The kernel's error number and words, for the path.
    Errno { errno: i32, message: String },
    /// The helper is gone (and could not be started again): the caller falls back.
    Lost,
}

/// A read's outcome: the file's stat and the bytes of the range.
pub struct UserRead {
    pub stat: PathStat,
    pub bytes: Vec<u8>,
}

fn path_stat(stat: FileStat) -> PathStat {
    PathStat {
        name: String::from_utf8_lossy(&stat.name).into_owned(),
        name_bytes: crate::runtime::tree::not_utf8(&stat.name),
        kind: match stat.kind {
            dcx_helper::FileKind::File => FileKind::File,
            dcx_helper::FileKind::Directory => FileKind::Directory,
            dcx_helper::FileKind::Symlink => FileKind::Symlink,
            dcx_helper::FileKind::Other => FileKind::Other,
        },
        size: stat.size,
        mode: stat.mode & 0o7777,
        mtime: stat.mtime,
        mtime_nsec: stat.mtime_nsec,
        link_target: (!stat.link_target.is_empty())
            .then(|| String::from_utf8_lossy(&stat.link_target).into_owned()),
    }
}

fn failed(answer: Option<FromHelper>) -> UserFileError {
    match answer {
        Some(FromHelper::FsErr { errno, message }) => UserFileError::Errno { errno, message },
        _ => UserFileError::Lost,
    }
}

impl Warm {
    /// Sends a file call to the running helper (started again if it died).
    async fn answers(
        &self,
        first: ToHelper,
        rest: &[ToHelper],
    ) -> Result<super::conn::Answers, UserFileError> {
        let conn = self.conn().await.ok_or(UserFileError::Lost)?;
        Ok(conn.call(&first, rest))
    }

    /// What `path` is (a final symlink followed when `follow`).
    pub async fn user_stat(&self, path: &[u8], follow: bool) -> Result<PathStat, UserFileError> {
        let first = ToHelper::FsStat {
            follow,
            path: path.to_vec(),
        };
        let mut answers = self.answers(first, &[]).await?;
        match answers.next().await {
            Some(FromHelper::FsStat(stat)) => Ok(path_stat(stat)),
            other => Err(failed(other)),
        }
    }

    /// The folder's entries, sorted by name; `E2BIG` over `limit`.
    pub async fn user_list(
        &self,
        path: &[u8],
        limit: usize,
    ) -> Result<Vec<PathStat>, UserFileError> {
        let first = ToHelper::FsList {
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            path: path.to_vec(),
        };
        let mut answers = self.answers(first, &[]).await?;
        let mut entries = Vec::new();
        loop {
            match answers.next().await {
                Some(FromHelper::FsEntries(found)) => {
                    entries.extend(found.into_iter().map(path_stat));
                }
                Some(FromHelper::FsEnd) => return Ok(entries),
                other => return Err(failed(other)),
            }
        }
    }

    /// Up to `length` bytes (`None`: the rest) of the file from `offset`; `EFBIG` when more
    /// than `limit` would come.
    pub async fn user_read(
        &self,
        path: &[u8],
        offset: u64,
        length: Option<u64>,
        limit: u64,
    ) -> Result<UserRead, (UserFileError, Option<PathStat>)> {
        let first = ToHelper::FsRead {
            offset,
            length: length.unwrap_or(u64::MAX),
            limit,
            path: path.to_vec(),
        };
        let mut answers = self.answers(first, &[]).await.map_err(|err| (err, None))?;
        let mut stat = None;
        let mut bytes = Vec::new();
        loop {
            match answers.next().await {
                Some(FromHelper::FsStat(found)) => stat = Some(path_stat(found)),
                Some(FromHelper::FsData(data)) => bytes.extend_from_slice(&data),
                Some(FromHelper::FsEnd) => {
                    return match stat {
                        Some(stat) => Ok(UserRead { stat, bytes }),
                        None => Err((UserFileError::Lost, None)),
                    };
                }
                other => return Err((failed(other), stat)),
            }
        }
    }

    /// Writes `data` to `path` in one step (or appends it), parents created; the written
    /// file's stat.
    pub async fn user_write(
        &self,
        path: &[u8],
        data: &[u8],
        mode: Option<u32>,
        append: bool,
    ) -> Result<PathStat, UserFileError> {
        let first = ToHelper::FsWrite {
            append,
            mode,
            path: path.to_vec(),
        };
        let mut rest: Vec<ToHelper> = data
            .chunks(CHUNK)
            .map(|chunk| ToHelper::FsWriteData(chunk.to_vec()))
            .collect();
        rest.push(ToHelper::FsWriteEnd);
        let mut answers = self.answers(first, &rest).await?;
        match answers.next().await {
            Some(FromHelper::FsStat(stat)) => Ok(path_stat(stat)),
            other => Err(failed(other)),
        }
    }
}
