//! dcx named `devcontainer`: `exec` runs itself, everything else goes to the reference CLI.
//!
//! Linked or copied under that name, dcx hands every subcommand and flag but `exec` (`up`,
//! `build`, `read-configuration`, `--version`, `--help`, …), argv untouched, to the reference
//! CLI, which then takes dcx's place (its exit code is the caller's). The reference is
//! `DCX_DEVCONTAINER_CLI` when set, else the next `devcontainer` on PATH that is not dcx
//! itself: never dcx again, so no loop.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// The variable naming the reference CLI.
pub const VARIABLE: &str = "DCX_DEVCONTAINER_CLI";

/// Whether dcx runs under the name `devcontainer`.
pub fn invoked_as_devcontainer(argv: &[OsString]) -> bool {
    argv.first()
        .and_then(|program| Path::new(program).file_name())
        .is_some_and(|name| name == "devcontainer")
}

/// Why the reference could not be run.
#[derive(Debug, thiserror::Error)]
pub enum DropInError {
    #[error(
        "`devcontainer {subcommand}` is the reference CLI's, and no reference `devcontainer` was found (dcx runs only `exec` itself)."
    )]
    NotFound { subcommand: String },
    #[error("{VARIABLE} names dcx itself ({}), not the reference CLI.", .0.display())]
    Loop(PathBuf),
    #[error("Cannot run the reference CLI {}: {reason}", path.display())]
    Exec { path: PathBuf, reason: String },
}

impl DropInError {
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NotFound { .. } | Self::Loop(_) => Some(format!(
                "install it (`npm install -g @devcontainers/cli`), or set {VARIABLE} to its path"
            )),
            Self::Exec { .. } => None,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NotFound { .. } => 127,
            _ => 1,
        }
    }
}

/// The same file as the running dcx (after links)?
fn is_dcx(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(this), Ok(that)) = (std::fs::metadata("/proc/self/exe"), std::fs::metadata(path))
    else {
        return false;
    };
    (this.dev(), this.ino()) == (that.dev(), that.ino())
}

fn executable(path: &Path) -> bool {
    rustix::fs::access(path, rustix::fs::Access::EXEC_OK).is_ok() && path.is_file()
}

/// The reference CLI to hand over to.
fn reference() -> Result<Option<PathBuf>, DropInError> {
    if let Some(path) = std::env::var_os(VARIABLE).filter(|path| !path.is_empty()) {
        let path = PathBuf::from(path);
        if is_dcx(&path) {
            return Err(DropInError::Loop(path));
        }
        return Ok(Some(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    Ok(std::env::split_paths(&path)
        .map(|dir| dir.join("devcontainer"))
        .find(|candidate| executable(candidate) && !is_dcx(candidate)))
}

/// Replaces dcx with the reference CLI, argv untouched; returns only on failure.
pub fn pass_through(argv: &[OsString]) -> DropInError {
    let path = match reference() {
        Ok(Some(path)) => path,
        Ok(None) => {
            return DropInError::NotFound {
                subcommand: argv
                    .get(1)
                    .map_or_else(String::new, |word| word.to_string_lossy().into_owned()),
            };
        }
        Err(err) => return err,
    };
    let err = std::process::Command::new(&path).args(&argv[1..]).exec();
    DropInError::Exec {
        path,
        reason: crate::runtime::io_reason(&err),
    }
}
