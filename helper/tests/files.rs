//! The built `dcx-helper`'s file calls on this host, driven through its protocol.
//!
//! Each test starts its own helper under umask 022, as the current user or (when that is root)
//! as `nobody` through `setpriv`, and checks its answers against the files it touched.

// A failed unwrap in a test (or its client) is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable
)]

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

mod client;

use client::{Helper, WAIT};
use dcx_helper::{FS_CHUNK, FS_WRITE_LIMIT, FileKind, FileStat, FromHelper, RunSpec, ToHelper};

const ENOENT: i32 = 2;
const E2BIG: i32 = 7;
const EACCES: i32 = 13;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const EINVAL: i32 = 22;
const EFBIG: i32 = 27;
const NOBODY: u32 = 65534;

/// A file call's FS_ERR: errno and message.
type Failed = (i32, String);

impl Helper {
    /// A helper under umask 022, as the current user.
    fn start() -> Self {
        Self::wrapped(&[])
    }

    /// A helper as `nobody` (uid and gid 65534, no supplementary groups).
    fn start_as_nobody() -> Self {
        let ids = format!("{NOBODY}");
        Self::wrapped(&[
            "setpriv",
            &format!("--reuid={ids}"),
            &format!("--regid={ids}"),
            "--clear-groups",
        ])
    }

    fn wrapped(wrapper: &[&str]) -> Self {
        let mut command = Command::new("sh");
        command
            .args(["-c", "umask 022 && exec \"$@\"", "sh"])
            .args(wrapper)
            .arg(client::program());
        Helper::spawn(command)
    }

    fn stat_answer(&mut self, id: u32) -> Result<FileStat, Failed> {
        match self.expect(id) {
            FromHelper::FsStat(stat) => Ok(stat),
            FromHelper::FsErr { errno, message } => Err((errno, message)),
            other => panic!("expected FS_STAT or FS_ERR, got {other:?}"),
        }
    }

    fn stat(&mut self, path: &Path, follow: bool) -> Result<FileStat, Failed> {
        let id = self.id();
        let path = bytes_of(path);
        self.send(id, &ToHelper::FsStat { follow, path });
        self.stat_answer(id)
    }

    /// FS_LIST: the entries, and how many FS_ENTRIES frames brought them.
    fn list(&mut self, path: &Path, limit: u32) -> Result<(Vec<FileStat>, usize), Failed> {
        let id = self.id();
        let path = bytes_of(path);
        self.send(id, &ToHelper::FsList { limit, path });
        let (mut entries, mut frames) = (Vec::new(), 0);
        loop {
            match self.expect(id) {
                FromHelper::FsEntries(more) => {
                    frames += 1;
                    entries.extend(more);
                }
                FromHelper::FsEnd => return Ok((entries, frames)),
                FromHelper::FsErr { errno, message } => {
                    assert_eq!(frames, 0, "FS_ERR after FS_ENTRIES");
                    return Err((errno, message));
                }
                other => panic!("expected FS_ENTRIES, FS_END or FS_ERR, got {other:?}"),
            }
        }
    }

    /// FS_READ: the file's stat and the bytes.
    fn read(
        &mut self,
        path: &Path,
        offset: u64,
        length: u64,
        limit: u64,
    ) -> Result<(FileStat, Vec<u8>), Failed> {
        let id = self.id();
        let path = bytes_of(path);
        self.send(
            id,
            &ToHelper::FsRead {
                offset,
                length,
                limit,
                path,
            },
        );
        let stat = self.stat_answer(id)?;
        let mut data = Vec::new();
        loop {
            match self.expect(id) {
                FromHelper::FsData(bytes) => {
                    assert!(bytes.len() <= FS_CHUNK);
                    data.extend(bytes);
                }
                FromHelper::FsEnd => return Ok((stat, data)),
                other => panic!("expected FS_DATA or FS_END, got {other:?}"),
            }
        }
    }

    /// FS_WRITE with `data` in chunks, then FS_WRITE_END.
    fn write(
        &mut self,
        path: &Path,
        data: &[u8],
        mode: Option<u32>,
        append: bool,
    ) -> Result<FileStat, Failed> {
        let id = self.id();
        self.send(
            id,
            &ToHelper::FsWrite {
                append,
                mode,
                path: bytes_of(path),
            },
        );
        for chunk in data.chunks(FS_CHUNK) {
            self.send(id, &ToHelper::FsWriteData(chunk.to_vec()));
        }
        self.send(id, &ToHelper::FsWriteEnd);
        self.stat_answer(id)
    }

    /// Closes the helper's stdin and waits for it to exit.
    fn close_and_wait(&mut self) {
        self.input = None;
        let deadline = Instant::now() + WAIT;
        while self.process.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the helper still runs");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

fn bytes_of(path: &Path) -> Vec<u8> {
    path.as_os_str().as_encoded_bytes().to_vec()
}

/// A fresh folder of this test's, mode 0755.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dcx-helper-fs-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The names in `dir` that look like a write's temporary file.
fn temporaries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".dcx-"))
        .collect()
}

/// Whether the tests run as root (the only way to run the helper as another user).
fn root() -> bool {
    rustix::process::geteuid().is_root()
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn stat_describes_files_folders_and_symlinks_followed_or_not() {
    let dir = scratch_dir("stat");
    let file = dir.join("file");
    fs::write(&file, b"12345").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o4751)).unwrap();
    std::os::unix::fs::symlink("file", dir.join("link")).unwrap();
    std::os::unix::fs::symlink("missing", dir.join("dangling")).unwrap();
    let mut helper = Helper::start();

    let stat = helper.stat(&file, false).unwrap();
    let meta = fs::metadata(&file).unwrap();
    assert_eq!(stat.kind, FileKind::File);
    assert_eq!(stat.size, 5);
    assert_eq!(stat.mode, 0o4751);
    assert_eq!(stat.mtime, meta.mtime());
    assert_eq!(i64::from(stat.mtime_nsec), meta.mtime_nsec());
    assert_eq!(stat.name, b"file");
    assert!(stat.link_target.is_empty());

    let folder = helper.stat(&dir, true).unwrap();
    assert_eq!(folder.kind, FileKind::Directory);
    assert_eq!(folder.mode, 0o755);
    assert_eq!(helper.stat(Path::new("/"), false).unwrap().name, b"");
    let trailing = PathBuf::from(format!("{}/", dir.display()));
    assert_eq!(
        helper.stat(&trailing, false).unwrap().name,
        bytes_of(Path::new(dir.file_name().unwrap()))
    );

    let link = helper.stat(&dir.join("link"), false).unwrap();
    assert_eq!(link.kind, FileKind::Symlink);
    assert_eq!(link.link_target, b"file");
    assert_eq!(link.size, 4);
    assert_eq!(link.name, b"link");
    let followed = helper.stat(&dir.join("link"), true).unwrap();
    assert_eq!(followed.kind, FileKind::File);
    assert_eq!(followed.size, 5);
    assert_eq!(followed.name, b"link");
    assert!(followed.link_target.is_empty());

    let dangling = helper.stat(&dir.join("dangling"), false).unwrap();
    assert_eq!(dangling.link_target, b"missing");
    assert_eq!(
        helper.stat(&dir.join("dangling"), true),
        Err((ENOENT, "No such file or directory".into()))
    );
    assert_eq!(
        helper.stat(&file.join("below"), false).map_err(|e| e.0),
        Err(ENOTDIR)
    );
    assert_eq!(
        helper.stat(Path::new("relative"), false),
        Err((EINVAL, "Invalid argument".into()))
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn list_gives_sorted_stats_without_dots_in_frames_within_a_chunk_and_e2big_over_the_limit() {
    let dir = scratch_dir("list");
    fs::write(dir.join("b"), b"bb").unwrap();
    fs::create_dir(dir.join("a")).unwrap();
    std::os::unix::fs::symlink("/etc", dir.join("C")).unwrap();
    let mut helper = Helper::start();

    let (entries, frames) = helper.list(&dir, 3).unwrap();
    assert_eq!(frames, 1);
    let names: Vec<&[u8]> = entries.iter().map(|e| &e.name[..]).collect();
    assert_eq!(names, [&b"C"[..], b"a", b"b"]);
    assert_eq!(entries[0].kind, FileKind::Symlink);
    assert_eq!(entries[0].link_target, b"/etc");
    assert_eq!(entries[1].kind, FileKind::Directory);
    assert_eq!((entries[2].kind, entries[2].size), (FileKind::File, 2));

    assert_eq!(
        helper.list(&dir, 2),
        Err((E2BIG, "Argument list too long".into()))
    );
    assert_eq!(
        helper.list(&dir.join("b"), 10).map_err(|e| e.0),
        Err(ENOTDIR)
    );
    assert_eq!(
        helper.list(&dir.join("none"), 10).map_err(|e| e.0),
        Err(ENOENT)
    );
    // A link to a folder is followed.
    assert!(helper.list(&dir.join("C"), 100_000).is_ok());

    // Many long names: several frames, each within FS_CHUNK, in order.
    let many = dir.join("many");
    fs::create_dir(&many).unwrap();
    let mut expected: Vec<Vec<u8>> = (0..1000)
        .map(|n| format!("{n:04}{}", "x".repeat(200)).into_bytes())
        .collect();
    for name in &expected {
        fs::write(many.join(String::from_utf8_lossy(name).as_ref()), b"").unwrap();
    }
    expected.sort();
    let (entries, frames) = helper.list(&many, 1000).unwrap();
    assert!(frames >= 3, "{frames} frames");
    let names: Vec<Vec<u8>> = entries.into_iter().map(|e| e.name).collect();
    assert_eq!(names, expected);
    let (empty, frames) = helper.list(&dir.join("a"), 0).unwrap();
    assert!(empty.is_empty() && frames == 0);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn read_gives_the_stat_then_the_range_and_refuses_folders_large_reads_and_fifos() {
    let dir = scratch_dir("read");
    let file = dir.join("file");
    let content: Vec<u8> = (0..200_000u32).map(|n| (n % 251) as u8).collect();
    fs::write(&file, &content).unwrap();
    let mut helper = Helper::start();

    let (stat, data) = helper.read(&file, 0, u64::MAX, 1 << 20).unwrap();
    assert_eq!(stat.size, 200_000);
    assert_eq!(stat.name, b"file");
    assert_eq!(data, content);
    let (_, data) = helper.read(&file, 70_000, 100_000, 100_000).unwrap();
    assert_eq!(data, &content[70_000..170_000]);
    let (_, data) = helper.read(&file, 199_990, u64::MAX, 10).unwrap();
    assert_eq!(data, &content[199_990..]);
    let (stat, data) = helper.read(&file, 300_000, u64::MAX, 0).unwrap();
    assert_eq!((stat.size, data.len()), (200_000, 0));

    // The limit counts the bytes the range returns, not the file's size.
    assert_eq!(
        helper.read(&file, 0, u64::MAX, 199_999),
        Err((EFBIG, "File too large".into()))
    );
    assert_eq!(
        helper.read(&dir, 0, u64::MAX, 10),
        Err((EISDIR, "Is a directory".into()))
    );
    assert_eq!(
        helper.read(&dir.join("none"), 0, u64::MAX, 10),
        Err((ENOENT, "No such file or directory".into()))
    );
    assert!(
        Command::new("mkfifo")
            .arg(dir.join("fifo"))
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(
        helper.read(&dir.join("fifo"), 0, u64::MAX, 10),
        Err((EINVAL, "Invalid argument".into()))
    );
    assert_eq!(
        helper.read(Path::new("/dev/null"), 0, u64::MAX, 10),
        Err((EINVAL, "Invalid argument".into()))
    );
    // Through a link to the file.
    std::os::unix::fs::symlink(&file, dir.join("link")).unwrap();
    let (stat, data) = helper.read(&dir.join("link"), 0, 5, 5).unwrap();
    assert_eq!(
        (stat.kind, stat.name.as_slice()),
        (FileKind::File, &b"link"[..])
    );
    assert_eq!(data, &content[..5]);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_end_of_a_4_gib_sparse_file_is_read_without_reading_what_comes_before() {
    let dir = scratch_dir("sparse");
    let path = dir.join("sparse");
    let size = 4u64 << 30;
    let file = fs::File::create(&path).unwrap();
    file.set_len(size).unwrap();
    file.write_all_at(b"0123456789", size - 10).unwrap();
    drop(file);
    let mut helper = Helper::start();
    let (stat, data) = helper.read(&path, size - 10, u64::MAX, 16 << 20).unwrap();
    assert_eq!(stat.size, size);
    assert_eq!(data, b"0123456789");
    let (_, data) = helper.read(&path, size - 10, 4, 4).unwrap();
    assert_eq!(data, b"0123");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn write_replaces_with_the_given_the_replaced_or_the_default_mode_and_creates_parents() {
    let dir = scratch_dir("write");
    let mut helper = Helper::start();

    let new = dir.join("new");
    let stat = helper.write(&new, b"hello", None, false).unwrap();
    assert_eq!(fs::read(&new).unwrap(), b"hello");
    assert_eq!(
        (stat.kind, stat.size, stat.mode),
        (FileKind::File, 5, 0o644)
    );
    assert_eq!(stat.name, b"new");
    assert_eq!(mode_of(&new), 0o644);
    let meta = fs::metadata(&new).unwrap();
    assert_eq!(
        (stat.mtime, i64::from(stat.mtime_nsec)),
        (meta.mtime(), meta.mtime_nsec())
    );
    assert_ne!(stat.mtime_nsec, 0, "the kernel's nanoseconds");

    let given = dir.join("given");
    assert_eq!(
        helper.write(&given, b"x", Some(0o600), false).unwrap().mode,
        0o600
    );
    assert_eq!(mode_of(&given), 0o600);

    // The replaced file's mode is kept, its contents replaced (shorter).
    fs::write(&new, b"a much longer content").unwrap();
    fs::set_permissions(&new, fs::Permissions::from_mode(0o751)).unwrap();
    assert_eq!(
        helper.write(&new, b"short", None, false).unwrap().mode,
        0o751
    );
    assert_eq!(fs::read(&new).unwrap(), b"short");
    assert_eq!(mode_of(&new), 0o751);
    assert_eq!(helper.write(&new, b"", Some(0o640), false).unwrap().size, 0);
    assert_eq!(mode_of(&new), 0o640);

    // Missing parents, as `mkdir -p` (0777 less the umask).
    let deep = dir.join("a/b/c/file");
    let stat = helper.write(&deep, &[7; 100_000], None, false).unwrap();
    assert_eq!(stat.size, 100_000);
    assert_eq!(fs::read(&deep).unwrap(), vec![7; 100_000]);
    for folder in ["a", "a/b", "a/b/c"] {
        assert_eq!(mode_of(&dir.join(folder)), 0o755, "{folder}");
    }

    // Through a symlink: the link's file is replaced, the link stays.
    std::os::unix::fs::symlink("given", dir.join("link")).unwrap();
    let stat = helper
        .write(&dir.join("link"), b"via link", None, false)
        .unwrap();
    assert_eq!((stat.name.as_slice(), stat.mode), (&b"given"[..], 0o600));
    assert_eq!(fs::read(&given).unwrap(), b"via link");
    assert!(fs::symlink_metadata(dir.join("link")).unwrap().is_symlink());

    assert_eq!(
        helper.write(&dir.join("a"), b"x", None, false),
        Err((EISDIR, "Is a directory".into()))
    );
    assert_eq!(
        helper
            .write(&new.join("below"), b"x", None, false)
            .map_err(|e| e.0),
        Err(ENOTDIR)
    );
    assert_eq!(
        helper
            .write(Path::new("/"), b"x", None, false)
            .map_err(|e| e.0),
        Err(EISDIR)
    );
    assert!(temporaries(&dir).is_empty(), "{:?}", temporaries(&dir));
    assert!(temporaries(&dir.join("a/b/c")).is_empty());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn append_adds_to_the_file_or_creates_it_and_applies_a_given_mode() {
    let dir = scratch_dir("append");
    let mut helper = Helper::start();
    let log = dir.join("sub/log");
    let stat = helper.write(&log, b"one\n", None, true).unwrap();
    assert_eq!(
        (stat.size, stat.mode, stat.name.as_slice()),
        (4, 0o644, &b"log"[..])
    );
    let stat = helper.write(&log, b"two\n", Some(0o600), true).unwrap();
    assert_eq!((stat.size, stat.mode), (8, 0o600));
    assert_eq!(fs::read(&log).unwrap(), b"one\ntwo\n");
    assert_eq!(mode_of(&log), 0o600);
    assert!(temporaries(&dir.join("sub")).is_empty());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_written_10_ms_after_another_is_newer() {
    let dir = scratch_dir("newer");
    let mut helper = Helper::start();
    let (older, new) = (dir.join("older"), dir.join("new"));
    for round in 0..10 {
        helper.write(&older, b"older", None, false).unwrap();
        thread::sleep(Duration::from_millis(10));
        helper.write(&new, b"new", None, false).unwrap();
        let newer = Command::new("sh")
            .arg("-c")
            .arg("[ \"$1\" -nt \"$2\" ]")
            .arg("sh")
            .arg(&new)
            .arg(&older)
            .status()
            .unwrap();
        assert!(newer.success(), "round {round}");
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_write_over_16_mib_fails_efbig_and_leaves_nothing() {
    let dir = scratch_dir("toolarge");
    let target = dir.join("target");
    fs::write(&target, b"before").unwrap();
    let mut helper = Helper::start();
    let id = helper.id();
    helper.send(
        id,
        &ToHelper::FsWrite {
            append: false,
            mode: None,
            path: bytes_of(&target),
        },
    );
    let chunk = vec![b'x'; FS_CHUNK];
    let chunks = FS_WRITE_LIMIT / FS_CHUNK as u64;
    for _ in 0..chunks {
        helper.send(id, &ToHelper::FsWriteData(chunk.clone()));
    }
    helper.send(id, &ToHelper::FsWriteData(vec![b'y']));
    helper.send(id, &ToHelper::FsWriteData(chunk));
    helper.send(id, &ToHelper::FsWriteEnd);
    assert_eq!(
        helper.stat_answer(id),
        Err((EFBIG, "File too large".into()))
    );
    assert_eq!(fs::read(&target).unwrap(), b"before");
    assert!(temporaries(&dir).is_empty(), "{:?}", temporaries(&dir));
    // Exactly the limit is taken.
    let data = vec![b'z'; usize::try_from(FS_WRITE_LIMIT).unwrap()];
    assert_eq!(
        helper.write(&target, &data, None, false).unwrap().size,
        FS_WRITE_LIMIT
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn file_calls_block_nothing_else_and_take_their_ids() {
    let dir = scratch_dir("concurrent");
    let target = dir.join("slow");
    let mut helper = Helper::start();
    // A write under way, its end not sent yet.
    helper.send(
        50,
        &ToHelper::FsWrite {
            append: false,
            mode: None,
            path: bytes_of(&target),
        },
    );
    helper.send(50, &ToHelper::FsWriteData(b"part one, ".to_vec()));
    // Its id is taken.
    helper.send(
        50,
        &ToHelper::Run(RunSpec {
            argv: vec![b"true".to_vec()],
            ..RunSpec::default()
        }),
    );
    assert!(matches!(helper.expect(50), FromHelper::Error(m) if m.contains("in use")));
    helper.send(
        50,
        &ToHelper::FsStat {
            follow: false,
            path: b"/".to_vec(),
        },
    );
    assert!(matches!(helper.expect(50), FromHelper::Error(m) if m.contains("in use")));
    // Meanwhile: other calls and a command.
    assert_eq!(helper.stat(&dir, false).unwrap().kind, FileKind::Directory);
    assert_eq!(
        helper
            .read(&dir.join("fifo-less"), 0, 1, 1)
            .map_err(|e| e.0),
        Err(ENOENT)
    );
    helper.send(
        51,
        &ToHelper::Run(RunSpec {
            argv: vec![b"true".to_vec()],
            ..RunSpec::default()
        }),
    );
    assert!(matches!(helper.expect(51), FromHelper::Started { .. }));
    // Nothing is there yet but the temporary file.
    assert!(!target.exists());
    assert_eq!(temporaries(&dir).len(), 1);
    helper.send(50, &ToHelper::FsWriteData(b"part two".to_vec()));
    helper.send(50, &ToHelper::FsWriteEnd);
    assert_eq!(helper.stat_answer(50).unwrap().size, 18);
    assert_eq!(fs::read(&target).unwrap(), b"part one, part two");
    // Frames of a write under ids without one.
    helper.send(50, &ToHelper::FsWriteEnd);
    assert!(matches!(helper.expect(50), FromHelper::Error(m) if m.contains("unknown id 50")));
    helper.send(
        0,
        &ToHelper::FsStat {
            follow: false,
            path: b"/".to_vec(),
        },
    );
    assert!(matches!(helper.expect(0), FromHelper::Error(m) if m.contains("id 0")));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_malformed_file_call_gets_error_and_still_ends() {
    let mut helper = Helper::start();
    helper.send(
        3,
        &ToHelper::FsStat {
            follow: true,
            path: b"/etc\0passwd".to_vec(),
        },
    );
    assert!(matches!(helper.expect(3), FromHelper::Error(m) if m.contains("NUL")));
    assert!(matches!(
        helper.expect(3),
        FromHelper::FsErr { errno: EINVAL, .. }
    ));
    // A write: its data is dropped, its end answered.
    helper.send(
        4,
        &ToHelper::FsWrite {
            append: false,
            mode: None,
            path: b"/tmp/\0x".to_vec(),
        },
    );
    assert!(matches!(helper.expect(4), FromHelper::Error(m) if m.contains("NUL")));
    helper.send(4, &ToHelper::FsWriteData(b"dropped".to_vec()));
    helper.send(4, &ToHelper::FsWriteEnd);
    assert!(matches!(
        helper.expect(4),
        FromHelper::FsErr { errno: EINVAL, .. }
    ));
    assert!(helper.next_for(4, Duration::from_millis(200)).is_none());
}

#[test]
fn the_end_of_the_stream_removes_a_write_s_temporary_file() {
    let dir = scratch_dir("abandoned");
    let mut helper = Helper::start();
    helper.send(
        9,
        &ToHelper::FsWrite {
            append: false,
            mode: None,
            path: bytes_of(&dir.join("never")),
        },
    );
    helper.send(9, &ToHelper::FsWriteData(b"half".to_vec()));
    let deadline = Instant::now() + WAIT;
    while temporaries(&dir).is_empty() {
        assert!(Instant::now() < deadline, "no temporary file");
        thread::sleep(Duration::from_millis(10));
    }
    helper.close_and_wait();
    assert!(temporaries(&dir).is_empty(), "{:?}", temporaries(&dir));
    assert!(!dir.join("never").exists());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn as_nobody_the_kernel_checks_every_call_and_written_files_belong_to_nobody() {
    if !root() {
        eprintln!("skipped: only root can run the helper as nobody");
        return;
    }
    let dir = scratch_dir("nobody");
    let secret = dir.join("secret");
    fs::write(&secret, b"root only").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let open = dir.join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::symlink(&secret, open.join("planted")).unwrap();
    let mut helper = Helper::start_as_nobody();

    let denied = Some((EACCES, "Permission denied".to_owned()));
    assert_eq!(helper.read(&secret, 0, u64::MAX, 100).err(), denied);
    let planted = open.join("planted");
    assert_eq!(helper.read(&planted, 0, u64::MAX, 100).err(), denied);
    // Stat needs no read permission.
    assert_eq!(helper.stat(&secret, false).unwrap().size, 9);
    // Writing into a root-owned 0755 folder, replacing or appending.
    let new = dir.join("new");
    assert_eq!(helper.write(&new, b"x", None, false).err(), denied);
    assert_eq!(helper.write(&new, b"x", None, true).err(), denied);
    assert_eq!(helper.write(&secret, b"x", None, true).err(), denied);
    let below = dir.join("sub/new");
    assert_eq!(helper.write(&below, b"x", None, false).err(), denied);
    assert!(!dir.join("sub").exists());
    assert_eq!(fs::read(&secret).unwrap(), b"root only");

    let mine = open.join("deep/mine");
    helper.write(&mine, b"nobody's", None, false).unwrap();
    for path in [&mine, &open.join("deep")] {
        let meta = fs::metadata(path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (NOBODY, NOBODY), "{path:?}");
    }
    assert_eq!(helper.read(&mine, 0, u64::MAX, 100).unwrap().1, b"nobody's");
    assert!(temporaries(&open).is_empty());
    fs::remove_dir_all(&dir).unwrap();
}
