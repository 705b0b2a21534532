//! `dcx cp`: copies between the host and the selected dev container, docker cp style.
//!
//! docker cp's syntax, with `:PATH` meaning the container the selector flags name (as for
//! `dcx exec`; no environment is probed). Parses the two sides, wires `-` to fd 0 or fd 1, and
//! reports what was copied on stderr, as docker cp does.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::args::CpArgs;
use super::error::Error;
use super::observe::{block_on, finish};
use super::request::target_request;
use super::{UsageError, stderr_log, stdio};
use crate::engine::{CopyDestination, CopySource, Engine};
use crate::log::{Format, Level};

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Side {
    Host(PathBuf),
    Container(String),
    Stream,
}

/// A side as written: `-`, `:PATH` (in the container: UTF-8, as the engine's API takes it) or
/// a host path (any bytes, as the host's file names are).
fn side(name: &str, text: &OsStr, cwd: &Path) -> Result<Side, UsageError> {
    use std::os::unix::ffi::OsStrExt;
    if text == "-" {
        return Ok(Side::Stream);
    }
    match text.as_bytes().strip_prefix(b":") {
        Some(path) => match std::str::from_utf8(path) {
            Ok("") => Ok(Side::Container("/".into())),
            Ok(path) => Ok(Side::Container(path.into())),
            Err(_) => Err(UsageError::exact(format!(
                "{name} names a container path that is not UTF-8: {}",
                text.to_string_lossy()
            ))),
        },
        None => Ok(Side::Host(cwd.join(text))),
    }
}

/// Which way a copy goes: out of the container (its path, the other side) or into it.
#[derive(Debug, PartialEq, Eq)]
enum Direction {
    Out(String, Side),
    In(Side, String),
}

/// The two sides, one of them the container.
fn sides(src: &OsStr, dst: &OsStr, cwd: &Path) -> Result<Direction, UsageError> {
    // An empty path names nothing (joined to the current directory, it would name that).
    for (name, text) in [("SRC", src), ("DST", dst)] {
        if text.is_empty() {
            return Err(UsageError::exact(format!(
                "{name} is empty: give a host path, :PATH in the container, or -."
            )));
        }
    }
    match (side("SRC", src, cwd)?, side("DST", dst, cwd)?) {
        (Side::Container(src), dst @ (Side::Host(_) | Side::Stream)) => {
            Ok(Direction::Out(src, dst))
        }
        (src @ (Side::Host(_) | Side::Stream), Side::Container(dst)) => Ok(Direction::In(src, dst)),
        (Side::Container(_), Side::Container(_)) => Err(UsageError::exact(
            "Copying from the container to itself is not supported: one of SRC and DST must be a host path or -.",
        )),
        _ => Err(UsageError::exact(
            "One of SRC and DST must be a path in the container, written :PATH (the container is the one the selector flags name).",
        )),
    }
}

/// A size as docker cp prints it (`512B`, `2.048kB`, `1.074GB`).
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value >= 100.0 {
        1
    } else if value >= 10.0 {
        2
    } else {
        3
    };
    let text = format!("{value:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    format!("{text}{}", UNITS[unit])
}

/// `dcx cp`.
pub(super) fn command(args: CpArgs) -> u8 {
    let log = stderr_log(Level::Info, Format::Text);
    let outcome = std::env::current_dir()
        .map_err(Error::Io)
        .and_then(|cwd| Ok((sides(&args.src, &args.dst, &cwd)?, cwd)))
        .and_then(|(sides, cwd)| {
            let (settings, mut prepare) = target_request(args.target, &cwd)?;
            prepare.user = args.user.clone();
            block_on(async {
                let engine = Engine::connect(&settings, log.clone()).await?;
                let target = engine.file_target(&prepare).await?;
                let (copied, shown) = match sides {
                    Direction::Out(src, destination) => {
                        let (destination, shown) = match destination {
                            Side::Host(path) => {
                                let shown = path.display().to_string();
                                (CopyDestination::Host(path), Some(shown))
                            }
                            _ => (
                                CopyDestination::Tar(stdio::output(stdio::Stream::Stdout, None)),
                                None,
                            ),
                        };
                        let copied = engine
                            .copy_out_of(&target.container, &target.cwd, &src, destination)
                            .await?;
                        // A tar on stdout is out before dcx says anything more or exits.
                        stdio::written().await;
                        (copied, shown)
                    }
                    Direction::In(source, dst) => {
                        let source = match source {
                            Side::Host(path) => CopySource::Host(path),
                            _ => CopySource::Tar(stdio::stdin_input()),
                        };
                        let copied = engine.copy_into(&target, source, &dst).await?;
                        (copied, Some(format!("{}:{dst}", target.container.name)))
                    }
                };
                // What the engine's archive held and dcx does not create, each by name.
                for path in &copied.skipped {
                    log.warn(&format!(
                        "{path} is a device or socket: not copied (dcx cp copies files, folders, symbolic links and fifos)."
                    ));
                }
                if let (Some(shown), false) = (shown, args.quiet) {
                    stdio::stderr_line(
                        format!(
                            "Successfully copied {} to {shown}\n",
                            human_size(copied.bytes)
                        )
                        .as_bytes(),
                    );
                }
                Ok(())
            })
        });
    finish(&log, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_follow_docker_cp_with_a_leading_colon() {
        let cwd = Path::new("/home/me");
        let sides = |src: &str, dst: &str, cwd: &Path| sides(src.as_ref(), dst.as_ref(), cwd);
        assert_eq!(
            sides("./a", ":/tmp/", cwd).unwrap(),
            Direction::In(Side::Host(PathBuf::from("/home/me/./a")), "/tmp/".into())
        );
        assert_eq!(
            sides(":/etc/os-release", "-", cwd).unwrap(),
            Direction::Out("/etc/os-release".into(), Side::Stream)
        );
        assert_eq!(
            sides("-", ":", cwd).unwrap(),
            Direction::In(Side::Stream, "/".into())
        );
        assert_eq!(
            sides("web:/tmp", "x", cwd).unwrap_err().to_string(),
            "One of SRC and DST must be a path in the container, written :PATH (the container is the one the selector flags name)."
        );
        assert!(sides(":a", ":b", cwd).is_err());
        assert!(sides("-", "-", cwd).is_err());
        // An empty path is refused by name, never taken for the current directory.
        assert_eq!(
            sides("", ":/tmp/", cwd).unwrap_err().to_string(),
            "SRC is empty: give a host path, :PATH in the container, or -."
        );
        assert_eq!(
            sides(":/etc/hosts", "", cwd).unwrap_err().to_string(),
            "DST is empty: give a host path, :PATH in the container, or -."
        );
    }

    #[test]
    fn a_host_path_may_be_any_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let name = OsStr::from_bytes(b"caf\xe9.txt");
        assert_eq!(
            super::sides(name, ":/tmp/".as_ref(), Path::new("/w")).unwrap(),
            Direction::In(Side::Host(Path::new("/w").join(name)), "/tmp/".into())
        );
        let inside = OsStr::from_bytes(b":/tmp/caf\xe9");
        assert!(super::sides(inside, "x".as_ref(), Path::new("/w")).is_err());
    }

    #[test]
    fn sizes_read_as_docker_cp_prints_them() {
        assert_eq!(human_size(5), "5B");
        assert_eq!(human_size(2048), "2.048kB");
        assert_eq!(human_size(1500), "1.5kB");
        assert_eq!(human_size(1_073_741_824), "1.074GB");
        assert_eq!(human_size(123_456_789), "123.5MB");
    }
}
