//! `dcx-helper`: forks each command of a dcx session inside a container, framed over one stream.
//!
//! dcx starts it once per (container, user) by the same engine exec that user's commands would
//! get, so every process attribute it passes on is the engine's own; it then talks to dcx over
//! that exec's stdin and stdout (`docs/helper-protocol.md`), and writes diagnostics only to
//! stderr. All the work is in [`server`]; this file maps its outcome to an exit code.

mod server;

use std::process::ExitCode;

fn main() -> ExitCode {
    match server::serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("dcx-helper: {err}");
            ExitCode::FAILURE
        }
    }
}
