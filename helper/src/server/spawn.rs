//! Starting one command: pipes or a sized PTY, fork, session, cwd, `execve`, or FAILED's facts.
//!
//! `std::process::Command` forks, wires stdin/stdout/stderr (`dup2`) and reports an error of
//! the child back to `spawn()` through its close-on-exec pipe, so nothing runs unless `spawn`
//! says so. Our `pre_exec` hook then runs in the child: `setsid` (a new session and process
//! group, the command its leader), `TIOCSCTTY` for a PTY, `chdir` to RUN's cwd, and `execve`
//! itself, so it never returns to std's own exec. Doing the exec ourselves keeps two things
//! std cannot: the environment's order (std sorts the variables it is given) and the search of
//! `argv[0]` in the *command's* `PATH`, as `execvp` does (glibc's rules, without its fallback of
//! running a file that is not an executable through `/bin/sh`: runc does not do that either, so
//! `ENOEXEC` is FAILED and dcx replays the command through the engine).
//!
//! The child cannot tell std where it failed, only an errno. So the hook tags its error:
//! `(stage + 1) << 16 | errno`, decoded by [`failure`]; an untagged errno comes from std itself
//! (pipes, fork, `dup2`) and is stage 2. Everything the child touches is prepared before the
//! fork: after it, only async-signal-safe system calls run (no allocation, no locks).

use std::ffi::{CString, OsStr, c_char};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use dcx_helper::{RunSpec, Stage, env_name, kind};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::process::Pid;
use rustix::pty::{OpenptFlags, grantpt, ioctl_tiocgptpeer, openpt, ptsname, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};

/// `execvp`'s search path when the command's environment has no `PATH` (glibc's default).
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// A command that runs: its process, and the helper's ends of its stdio.
pub struct Spawned {
    /// The command's process (its stdio handles already taken out).
    pub child: Child,
    /// Its pid, also its session and process group id.
    pub pid: Pid,
    /// Output to relay: `(frame kind, descriptor)`: stdout and stderr pipes, or the PTY master.
    pub outputs: Vec<(u8, File)>,
    /// Where STDIN bytes go (the pipe or the PTY master), when stdin is open.
    pub stdin: Option<File>,
    /// The PTY master, kept for RESIZE.
    pub master: Option<OwnedFd>,
}

/// A command that did not run: FAILED's payload.
#[derive(Debug)]
pub struct Failure {
    /// Where it failed.
    pub stage: Stage,
    /// The error number.
    pub errno: i32,
    /// A short message.
    pub message: String,
}

impl Failure {
    fn other(errno: i32, what: &str) -> Self {
        Self {
            stage: Stage::Other,
            errno,
            message: format!("{what}: {}", io::Error::from_raw_os_error(errno)),
        }
    }
}

/// Starts `spec` with environment `env` (`NAME=value` entries in order).
///
/// # Errors
/// [`Failure`] when nothing ran: the working directory, the program, or the plumbing.
pub fn spawn(spec: &RunSpec, env: &[Vec<u8>]) -> Result<Spawned, Failure> {
    let Some(program) = spec.argv.first() else {
        return Err(Failure {
            stage: Stage::Exec,
            errno: Errno::NOENT.raw_os_error(),
            message: "RUN has no program (argc 0)".into(),
        });
    };
    let image = ExecImage::new(spec, env)
        .ok_or_else(|| Failure::other(Errno::INVAL.raw_os_error(), "a NUL byte in RUN"))?;

    let mut command = Command::new(OsStr::from_bytes(program));
    let mut pty = None;
    if spec.tty {
        let (master, slave) = open_pty(spec.rows, spec.cols)
            .map_err(|errno| Failure::other(errno.raw_os_error(), "cannot open a PTY"))?;
        let stdio = |fd: &OwnedFd| {
            fd.try_clone()
                .map(Stdio::from)
                .map_err(|err| Failure::other(os_errno(&err), "cannot duplicate the PTY"))
        };
        command
            .stdin(stdio(&slave)?)
            .stdout(stdio(&slave)?)
            .stderr(stdio(&slave)?);
        pty = Some((master, slave));
    } else {
        command
            .stdin(if spec.stdin_open {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
    }

    let ctty = pty
        .as_ref()
        .map(|(_, slave)| slave.try_clone())
        .transpose()
        .map_err(|err| Failure::other(os_errno(&err), "cannot duplicate the PTY"))?;
    let mut setup = ChildSetup { image, ctty };
    #[allow(unsafe_code)]
    // SAFETY: the hook runs in the forked child of a multithreaded process, where only
    // async-signal-safe calls are allowed. `ChildSetup::run` makes raw system calls only
    // (rustix's setsid, ioctl, chdir; libc's execve) on data prepared before the fork, and
    // builds its error with `io::Error::from_raw_os_error`, which does not allocate.
    unsafe {
        command.pre_exec(move || setup.run());
    }
    let spawned = command.spawn();
    // The Command holds the PTY slave's duplicates (and the hook's): close them now, so the
    // master reads end of file when the command and its children have closed theirs.
    drop(command);
    let mut child = spawned.map_err(|err| failure(&err, spec))?;

    let pid = Pid::from_child(&child);
    let (outputs, stdin, master) = if let Some((pty_master, slave)) = pty {
        drop(slave);
        let dup = |what| {
            pty_master
                .try_clone()
                .map(File::from)
                .map_err(|err| (err, what))
        };
        // The command runs now: if it cannot be wired, it is killed and reported as FAILED.
        let wired = dup("output").and_then(|out| {
            let input = if spec.stdin_open {
                Some(dup("input")?)
            } else {
                None
            };
            Ok((out, input))
        });
        match wired {
            Ok((out, input)) => (vec![(kind::STDOUT, out)], input, Some(pty_master)),
            Err((err, what)) => {
                kill_and_reap(&mut child);
                return Err(Failure::other(
                    os_errno(&err),
                    &format!("cannot duplicate the PTY master for {what}"),
                ));
            }
        }
    } else {
        let mut outputs = Vec::with_capacity(2);
        if let Some(out) = child.stdout.take() {
            outputs.push((kind::STDOUT, File::from(OwnedFd::from(out))));
        }
        if let Some(err) = child.stderr.take() {
            outputs.push((kind::STDERR, File::from(OwnedFd::from(err))));
        }
        let stdin = child
            .stdin
            .take()
            .map(|input| File::from(OwnedFd::from(input)));
        (outputs, stdin, None)
    };
    Ok(Spawned {
        child,
        pid,
        outputs,
        stdin,
        master,
    })
}

/// Kills a command that started but cannot be wired, and reaps it.
pub fn kill_and_reap(child: &mut Child) {
    let pid = Pid::from_child(child);
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    let _ = child.wait();
}

/// A new PTY pair from the container's `/dev/ptmx`, sized `rows` × `cols` before anyone uses
/// it: `(master, slave)`, both close-on-exec, the slave not yet anyone's controlling terminal.
fn open_pty(rows: u16, cols: u16) -> rustix::io::Result<(OwnedFd, OwnedFd)> {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let master = openpt(flags)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    tcsetwinsize(
        &master,
        Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )?;
    // TIOCGPTPEER (Linux 4.13) opens the slave without a path; before it, by its name.
    let slave = match ioctl_tiocgptpeer(&master, flags) {
        Ok(slave) => slave,
        Err(_) => {
            let name = ptsname(&master, Vec::new())?;
            rustix::fs::open(
                name.as_c_str(),
                OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
                Mode::empty(),
            )?
        }
    };
    Ok((master, slave))
}

/// The tag of an error from the child's setup: `(stage + 1) << 16 | errno`.
fn tagged(stage: Stage, errno: i32) -> io::Error {
    io::Error::from_raw_os_error(((i32::from(stage.as_u8()) + 1) << 16) | (errno & 0xffff))
}

/// FAILED's facts from `spawn`'s error: a tag from our hook, or std's own (stage 2).
fn failure(err: &io::Error, spec: &RunSpec) -> Failure {
    let raw = os_errno(err);
    let (stage, errno) = match raw >> 16 {
        1 => (Stage::Cwd, raw & 0xffff),
        2 => (Stage::Exec, raw & 0xffff),
        3 => (Stage::Other, raw & 0xffff),
        _ => (Stage::Other, raw),
    };
    let text = io::Error::from_raw_os_error(errno);
    let message = match stage {
        Stage::Cwd => format!(
            "cannot change to {}: {text}",
            String::from_utf8_lossy(&spec.cwd)
        ),
        Stage::Exec => format!(
            "cannot run {}: {text}",
            String::from_utf8_lossy(spec.argv.first().map_or(&[][..], Vec::as_slice))
        ),
        Stage::Other if raw >> 16 == 3 => format!("cannot make a session or terminal: {text}"),
        Stage::Other => format!("cannot start the command: {err}"),
    };
    Failure {
        stage,
        errno,
        message,
    }
}

/// An `io::Error`'s errno, EINVAL for one without (std's own checks).
fn os_errno(err: &io::Error) -> i32 {
    err.raw_os_error().unwrap_or(Errno::INVAL.raw_os_error())
}

/// What the forked child does before the program runs, all prepared before the fork.
struct ChildSetup {
    image: ExecImage,
    /// The PTY slave to make the controlling terminal (also the child's fd 0, 1 and 2).
    ctty: Option<OwnedFd>,
}

impl ChildSetup {
    /// In the child: session, terminal, cwd, exec. Returns only on failure, with a tagged error.
    fn run(&mut self) -> io::Result<()> {
        rustix::process::setsid().map_err(|errno| tagged(Stage::Other, errno.raw_os_error()))?;
        if let Some(tty) = &self.ctty {
            rustix::process::ioctl_tiocsctty(tty)
                .map_err(|errno| tagged(Stage::Other, errno.raw_os_error()))?;
        }
        if let Some(dir) = &self.image.cwd {
            rustix::process::chdir(dir.as_c_str())
                .map_err(|errno| tagged(Stage::Cwd, errno.raw_os_error()))?;
        }
        Err(tagged(Stage::Exec, self.image.exec()))
    }
}

/// `execve`'s arguments, built before the fork: candidate paths, argv and envp.
struct ExecImage {
    /// The paths to try in order: `argv[0]` itself when it has a `/`, else each `PATH` entry.
    candidates: Vec<CString>,
    /// Owns the strings `argv_ptrs` points to.
    _argv: Vec<CString>,
    /// Owns the strings `envp_ptrs` points to.
    _envp: Vec<CString>,
    /// The addresses of `_argv`'s strings and a final 0: a `char *const argv[]` (kept as
    /// addresses so the hook's closure is `Send + Sync`, as `pre_exec` asks).
    argv_ptrs: Vec<usize>,
    /// The same for `_envp`.
    envp_ptrs: Vec<usize>,
    /// RUN's cwd, if not empty.
    cwd: Option<CString>,
}

impl ExecImage {
    /// `None` when a string holds a NUL (the decoder refuses those before).
    fn new(spec: &RunSpec, env: &[Vec<u8>]) -> Option<Self> {
        let cstrings = |list: &[Vec<u8>]| -> Option<Vec<CString>> {
            list.iter()
                .map(|s| CString::new(s.as_slice()).ok())
                .collect()
        };
        let argv = cstrings(&spec.argv)?;
        let envp = cstrings(env)?;
        let program = spec.argv.first()?;
        let candidates = if program.is_empty() {
            Vec::new()
        } else if program.contains(&b'/') {
            vec![CString::new(program.as_slice()).ok()?]
        } else {
            let path = env
                .iter()
                .rev()
                .find(|entry| env_name(entry) == b"PATH")
                .map_or(DEFAULT_PATH, |entry| &entry[b"PATH=".len()..]);
            path.split(|&byte| byte == b':')
                .map(|dir| {
                    // An empty entry is the current directory (the command's cwd).
                    let mut full = dir.to_vec();
                    if !dir.is_empty() && !dir.ends_with(b"/") {
                        full.push(b'/');
                    }
                    full.extend_from_slice(program);
                    CString::new(full).ok()
                })
                .collect::<Option<Vec<_>>>()?
        };
        let addresses = |list: &[CString]| -> Vec<usize> {
            list.iter()
                .map(|s| s.as_ptr().expose_provenance())
                .chain(std::iter::once(0))
                .collect()
        };
        let cwd = if spec.cwd.is_empty() {
            None
        } else {
            Some(CString::new(spec.cwd.as_slice()).ok()?)
        };
        Some(Self {
            candidates,
            argv_ptrs: addresses(&argv),
            envp_ptrs: addresses(&envp),
            _argv: argv,
            _envp: envp,
            cwd,
        })
    }

    /// In the child: `execve` each candidate as glibc's `execvp` does; returns the errno when
    /// none ran (`EACCES` if any candidate was not executable, else the last error).
    fn exec(&self) -> i32 {
        let mut denied = false;
        let mut last = Errno::NOENT;
        for path in &self.candidates {
            #[allow(unsafe_code)]
            // SAFETY: `path` is a NUL-terminated string; `argv_ptrs` and `envp_ptrs` hold the
            // addresses of NUL-terminated strings owned by `self` (alive for this call) and end
            // with 0, the layout `execve` reads. execve is async-signal-safe.
            let errno = unsafe {
                libc::execve(
                    path.as_ptr(),
                    self.argv_ptrs.as_ptr().cast::<*const c_char>(),
                    self.envp_ptrs.as_ptr().cast::<*const c_char>(),
                );
                Errno::from_raw_os_error(io::Error::last_os_error().raw_os_error().unwrap_or(0))
            };
            match errno {
                Errno::ACCESS => denied = true,
                Errno::NOENT | Errno::NOTDIR | Errno::STALE | Errno::NODEV | Errno::TIMEDOUT => {}
                other => return other.raw_os_error(),
            }
            last = errno;
        }
        if denied { Errno::ACCESS } else { last }.raw_os_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(argv: &[&str]) -> RunSpec {
        RunSpec {
            argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
            ..RunSpec::default()
        }
    }

    fn candidates(image: &ExecImage) -> Vec<&str> {
        image
            .candidates
            .iter()
            .map(|c| c.to_str().unwrap())
            .collect()
    }

    #[test]
    fn a_bare_name_is_searched_in_the_command_path() {
        let env = vec![b"PATH=/usr/local/bin:/bin/::rel".to_vec()];
        let image = ExecImage::new(&spec(&["ls", "-l"]), &env).unwrap();
        assert_eq!(
            candidates(&image),
            ["/usr/local/bin/ls", "/bin/ls", "ls", "rel/ls"]
        );
        assert_eq!(image.argv_ptrs.len(), 3);
        assert_eq!(image.argv_ptrs.last(), Some(&0));
        assert_eq!(image.envp_ptrs.len(), 2);
    }

    #[test]
    fn a_path_with_a_slash_is_not_searched_and_no_path_means_the_default() {
        let image = ExecImage::new(&spec(&["./run"]), &[]).unwrap();
        assert_eq!(candidates(&image), ["./run"]);
        let image = ExecImage::new(&spec(&["ls"]), &[]).unwrap();
        assert_eq!(candidates(&image), ["/bin/ls", "/usr/bin/ls"]);
        let image = ExecImage::new(&spec(&[""]), &[]).unwrap();
        assert!(candidates(&image).is_empty());
    }

    #[test]
    fn tags_carry_the_stage_through_an_errno() {
        let cwd = RunSpec {
            cwd: b"/nowhere".to_vec(),
            ..spec(&["true"])
        };
        let f = failure(&tagged(Stage::Cwd, 2), &cwd);
        assert_eq!((f.stage, f.errno), (Stage::Cwd, 2));
        assert!(f.message.contains("/nowhere"), "{}", f.message);
        let f = failure(&tagged(Stage::Exec, 13), &cwd);
        assert_eq!((f.stage, f.errno), (Stage::Exec, 13));
        let f = failure(&tagged(Stage::Other, 1), &cwd);
        assert_eq!((f.stage, f.errno), (Stage::Other, 1));
        let f = failure(&io::Error::from_raw_os_error(11), &cwd);
        assert_eq!((f.stage, f.errno), (Stage::Other, 11));
        let f = failure(&io::Error::other("nul byte"), &cwd);
        assert_eq!((f.stage, f.errno), (Stage::Other, 22));
    }
}
