//! The `dcx` binary: hands argv to the CLI front end and exits with its code.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(dcx::cli::run(std::env::args_os()))
}
