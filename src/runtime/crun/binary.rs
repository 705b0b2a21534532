//! The crun binary dcx runs, handed to crun as a sealed in-memory copy of itself.
//!
//! crun guards against CVE-2019-5736 (a container process overwriting the host's runtime binary
//! through `/proc/<pid>/exe`): before anything else, it re-executes itself from a read-only or
//! sealed copy, unless it already runs from one. A memfd sealed against writing, growing and
//! shrinking (`F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE`, exactly) counts as
//! such a copy. That second start of crun, dynamic loading and all, is a large share of a short
//! `crun exec`; dcx makes the sealed copy itself (one memfd, one in-kernel copy) and starts crun
//! from it, so crun starts once, with the same protection.
//!
//! crun runs from its path, and makes its own copy as it always does, when no sealed copy can be
//! made (memfds disabled, `vm.memfd_noexec = 2`, a binary dcx cannot read), when the program is
//! not an ELF binary (a wrapper script, whose interpreter could not open the copy: it is
//! close-on-exec), and when starting the copy fails ([`CrunBinary::commands`] gives the path as
//! the next command to try).

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use rustix::fs::{MemfdFlags, SealFlags};

/// The seals crun accepts as a copy of itself (its `CRUN_MEMFD_SEALS`).
const CRUN_SEALS: SealFlags = SealFlags::SEAL
    .union(SealFlags::SHRINK)
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE);

/// The crun program, with its sealed copy when one could be made. Keep it alive until the
/// command built by [`CrunBinary::commands`] has been spawned or exec'd.
pub(super) struct CrunBinary {
    /// The program as the user gave it (`--crun-path`, default `crun`): `argv[0]` and errors.
    program: PathBuf,
    sealed: Option<OwnedFd>,
}

impl CrunBinary {
    /// Finds `program` (on PATH when it has no `/`) and copies it into a sealed memfd.
    pub(super) fn prepare(program: &Path) -> Self {
        let sealed = find_program(program).and_then(|path| sealed_copy(&path).ok().flatten());
        Self {
            program: program.to_path_buf(),
            sealed,
        }
    }

    /// The commands that run crun, in the order to try them: from the sealed copy when there
    /// is one, then from its path (a sealed copy the system would not run: a policy, no
    /// /proc). The copy is opened close-on-exec: the kernel resolves `/proc/self/fd/N` before
    /// closing it, and crun's own process (and so the container's) never holds it.
    pub(super) fn commands(&self) -> Vec<std::process::Command> {
        let from_path = std::process::Command::new(&self.program);
        match &self.sealed {
            Some(fd) => {
                let mut sealed =
                    std::process::Command::new(format!("/proc/self/fd/{}", fd.as_raw_fd()));
                sealed.arg0(&self.program);
                vec![sealed, from_path]
            }
            None => vec![from_path],
        }
    }
}

/// `program` itself when it names a path, else the first file called so on PATH that this
/// user may execute (as execvp looks for it; glibc's PATH when there is none).
fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return Some(program.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/bin:/usr/bin"));
    std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate).is_ok_and(|meta| meta.is_file())
                && rustix::fs::access(candidate, rustix::fs::Access::EXEC_OK).is_ok()
        })
}

/// An executable memfd holding `path`'s bytes, sealed as crun expects; `None` when `path` is
/// not an ELF binary.
fn sealed_copy(path: &Path) -> std::io::Result<Option<OwnedFd>> {
    use std::io::{Read, Seek};
    let mut source = std::fs::File::open(path)?;
    let mut magic = [0u8; 4];
    if source.read_exact(&mut magic).is_err() || &magic != b"\x7fELF" {
        return Ok(None);
    }
    source.rewind()?;
    sealed_memfd("crun", true, source).map(Some)
}

/// A close-on-exec memfd named `name` holding what `source` reads, executable when asked, then
/// sealed against any change (crun's seals, which it also takes as a copy of itself): what
/// dcx hands to crun or to a container, which no process can alter afterwards.
pub(super) fn sealed_memfd(
    name: &str,
    executable: bool,
    mut source: impl std::io::Read,
) -> std::io::Result<OwnedFd> {
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    let memfd = if executable {
        // Kernels from 6.3 want executability said; older ones refuse the flag.
        match rustix::fs::memfd_create(name, flags | MemfdFlags::EXEC) {
            Err(rustix::io::Errno::INVAL) => rustix::fs::memfd_create(name, flags)?,
            other => other?,
        }
    } else {
        rustix::fs::memfd_create(name, flags)?
    };
    let mut copy = std::fs::File::from(memfd);
    std::io::copy(&mut source, &mut copy)?;
    let memfd = OwnedFd::from(copy);
    rustix::fs::fcntl_add_seals(&memfd, CRUN_SEALS)?;
    Ok(memfd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_carries_the_bytes_and_exactly_the_seals_crun_accepts() {
        let dir = std::env::temp_dir().join(format!("dcx-binary-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("program");
        std::fs::write(&file, b"\x7fELF not really").unwrap();
        let memfd = sealed_copy(&file).unwrap().expect("an ELF file is copied");
        assert_eq!(rustix::fs::fcntl_get_seals(&memfd).unwrap(), CRUN_SEALS);
        let copied = std::fs::read(format!("/proc/self/fd/{}", memfd.as_raw_fd())).unwrap();
        assert_eq!(copied, b"\x7fELF not really");
        // Sealed: no more writes.
        let mut writable = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{}", memfd.as_raw_fd()))
            .unwrap();
        use std::io::Write;
        assert!(writable.write_all(b"x").is_err());
        // A script is not copied: its interpreter could not open the copy.
        std::fs::write(&file, b"#!/bin/sh\nexec crun \"$@\"\n").unwrap();
        assert!(sealed_copy(&file).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn programs_are_found_on_path_or_taken_as_given() {
        assert_eq!(
            find_program(Path::new("./crun")),
            Some(PathBuf::from("./crun"))
        );
        assert_eq!(
            find_program(Path::new("/no/such/crun")),
            Some(PathBuf::from("/no/such/crun"))
        );
        let sh = find_program(Path::new("sh")).expect("sh is on PATH");
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(find_program(Path::new("no-such-program-dcx")), None);
    }

    #[test]
    fn a_missing_program_runs_by_its_name_and_fails_there() {
        let binary = CrunBinary::prepare(Path::new("/no/such/crun"));
        let commands = binary.commands();
        assert_eq!(commands.len(), 1, "no sealed copy");
        assert_eq!(commands[0].get_program(), "/no/such/crun");
    }

    #[test]
    fn a_program_found_runs_from_its_sealed_copy_under_its_own_name() {
        let binary = CrunBinary::prepare(Path::new("sh"));
        let mut commands = binary.commands();
        assert_eq!(commands.len(), 2, "a sealed copy, then the path");
        assert_eq!(commands[1].get_program(), "sh");
        let program = commands[0].get_program().to_string_lossy().into_owned();
        assert!(program.starts_with("/proc/self/fd/"), "{program}");
        let out = commands[0]
            .args(["-c", "echo \"$0\" ran"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "sh ran\n");
    }
}
