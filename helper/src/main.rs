//! `dcx-helper`: forks each command of a dcx session inside a container, framed over one stream.
//!
//! dcx starts it once per (container, user) by the same engine exec that user's commands would
//! get, so every process attribute it passes on is the engine's own; it then talks to dcx over
//! that exec's stdin and stdout (`docs/helper-protocol.md`), and writes diagnostics only to
//! stderr. All the work is in [`server`]; this file maps its outcome to an exit code.
//!
//! `dcx-helper --exec PATH ARGV0 [ARG...]` only runs `PATH` with that argv and the environment
//! it was given: dcx's own OCI exec into a crun container (`src/runtime/crun/direct.rs`) enters
//! the container itself and ends by starting this program from a sealed in-memory copy, so
//! that no process in the container ever runs, or can reach through `/proc/PID/exe`, the
//! host's dcx binary (CVE-2019-5736).

mod server;

use std::ffi::OsString;
use std::process::ExitCode;

/// The first argument that selects the exec mode.
const EXEC: &str = "--exec";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|first| first == EXEC) {
        return exec(args.collect());
    }
    match server::serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("dcx-helper: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Replaces this process with `PATH`, run as `ARGV0 ARG...` with this environment, by a plain
/// `execve` (no `PATH` search, no shell for a file the kernel will not run), as crun's final
/// `execv`; SIGPIPE goes back to its default action first (std's runtime ignores it, and an
/// ignored signal stays ignored across exec). Returns only on failure, which it reports as
/// crun does: `exec: <reason>`, exit code 1.
fn exec(args: Vec<OsString>) -> ExitCode {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let cstring = |text: &std::ffi::OsStr| CString::new(text.as_bytes()).ok();
    let Some(path) = args.first().and_then(|path| cstring(path)) else {
        eprintln!("exec: usage: dcx-helper --exec PATH ARGV0 [ARG...]");
        return ExitCode::FAILURE;
    };
    let argv: Option<Vec<CString>> = args.iter().skip(1).map(|arg| cstring(arg)).collect();
    let envp: Option<Vec<CString>> = std::env::vars_os()
        .map(|(name, value)| CString::new([name.as_bytes(), b"=", value.as_bytes()].concat()).ok())
        .collect();
    let (Some(argv), Some(envp)) = (argv, envp) else {
        eprintln!("exec: an argument holds a NUL byte");
        return ExitCode::FAILURE;
    };
    if argv.is_empty() {
        eprintln!("exec: usage: dcx-helper --exec PATH ARGV0 [ARG...]");
        return ExitCode::FAILURE;
    }
    let pointers = |strings: &[CString]| -> Vec<*const libc::c_char> {
        strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let (argv_ptrs, envp_ptrs) = (pointers(&argv), pointers(&envp));
    #[allow(unsafe_code)]
    // SAFETY: `signal` with SIG_DFL, and `execve` with NUL-terminated strings and
    // NULL-terminated pointer arrays that outlive the call.
    let err = unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr());
        std::io::Error::last_os_error()
    };
    eprintln!("exec: {}", strerror(&err));
    ExitCode::FAILURE
}

/// The C library's wording of an error, as crun prints it (std adds " (os error N)").
fn strerror(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}
