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
use std::os::unix::process::CommandExt;
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

/// Replaces this process with `PATH`, run as `ARGV0 ARG...`; std's exec also gives it the
/// default SIGPIPE disposition and an empty signal mask. Returns only on failure: 127 when
/// there is nothing to run, 126 when it could not be run (a shell's codes).
fn exec(args: Vec<OsString>) -> ExitCode {
    let mut args = args.into_iter();
    let (Some(path), Some(argv0)) = (args.next(), args.next()) else {
        eprintln!("dcx-helper: usage: dcx-helper --exec PATH ARGV0 [ARG...]");
        return ExitCode::from(127);
    };
    let err = std::process::Command::new(&path)
        .arg0(argv0)
        .args(args)
        .exec();
    eprintln!("dcx-helper: cannot run {}: {err}", path.to_string_lossy());
    ExitCode::from(if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    })
}
