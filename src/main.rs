//! The `dcx` binary: hand argv to the CLI front end and turn its answer into the exit code.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(dcx::cli::run(std::env::args_os()))
}
