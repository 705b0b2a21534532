//! The `dcx` binary: hand argv to the library and turn its answer into the process exit code.
//! Everything else, parsing included, lives in the library so that it can be tested.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(dcx::run(std::env::args_os()))
}
