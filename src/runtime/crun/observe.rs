//! A crun container's processes and its own output, read on the host.
//!
//! Its processes are those in the pid namespace of its first process (`dcx top`, see
//! `runtime::procfs`). Its own output (`dcx logs`) is the file its `dcx.log_path` annotation names,
//! else the file its first process's stdout is; followed while that process lives. crun itself
//! keeps no log and no timestamps, so `--timestamps` and `--since` are refused.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use crate::runtime::{Chunk, Container, LogOptions, OutputStream, ProcessInfo, RuntimeError};

/// The annotation naming a container's log file on the host.
pub(super) const LOG_ANNOTATION: &str = "dcx.log_path";

/// The processes in the pid namespace of the container's first process.
pub(super) fn top(container: &Container) -> Result<Vec<ProcessInfo>, RuntimeError> {
    let init = container
        .init_pid
        .ok_or_else(|| RuntimeError::NotRunning(container.name.clone()))?;
    crate::runtime::procfs::processes_like(init)
        .ok_or_else(|| RuntimeError::NotRunning(container.name.clone()))
}

/// The container's log file on the host.
fn log_file(container: &Container) -> Result<PathBuf, RuntimeError> {
    if let Some(path) = container.labels.get(LOG_ANNOTATION) {
        return Ok(PathBuf::from(path));
    }
    let no_log = || {
        RuntimeError::Unsupported(format!(
            "crun keeps no log of container {}: its first process's stdout is not a file, and it has no `{LOG_ANNOTATION}` annotation naming one.",
            container.name
        ))
    };
    let init = container.init_pid.ok_or_else(no_log)?;
    let target = std::fs::read_link(format!("/proc/{init}/fd/1")).map_err(|_| no_log())?;
    match std::fs::metadata(format!("/proc/{init}/fd/1")) {
        Ok(meta) if meta.is_file() => Ok(target),
        _ => Err(no_log()),
    }
}

/// Where the last `lines` lines of `file` start.
fn tail_start(file: &mut std::fs::File, lines: u64) -> std::io::Result<u64> {
    let end = file.seek(SeekFrom::End(0))?;
    let mut seen = 0;
    let mut at = end;
    let mut block = vec![0u8; 64 * 1024];
    let mut first = true;
    while at > 0 {
        let size = (at as usize).min(block.len());
        at -= size as u64;
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(&mut block[..size])?;
        for index in (0..size).rev() {
            if block[index] == b'\n' {
                // A final newline ends the last line; it does not start a new one.
                if first && at + index as u64 == end - 1 {
                    continue;
                }
                seen += 1;
                if seen == lines {
                    return Ok(at + index as u64 + 1);
                }
            }
        }
        first = false;
    }
    Ok(0)
}

/// The log as chunks (on stdout: crun's log file holds both streams as the process wrote them).
pub(super) fn logs(
    container: &Container,
    options: &LogOptions,
) -> Result<OutputStream, RuntimeError> {
    if options.timestamps || options.since.is_some() {
        return Err(RuntimeError::Unsupported(
            "crun keeps no timestamps of a container's output: --timestamps and --since need Docker."
                .into(),
        ));
    }
    let path = log_file(container)?;
    let unreadable = |err: std::io::Error| RuntimeError::Spawn {
        program: path.display().to_string(),
        reason: super::io_reason(&err),
    };
    let mut file = std::fs::File::open(&path).map_err(unreadable)?;
    let start = match options.tail {
        Some(0) => file.seek(SeekFrom::End(0)).map_err(unreadable)?,
        Some(lines) => tail_start(&mut file, lines).map_err(unreadable)?,
        None => 0,
    };
    file.seek(SeekFrom::Start(start)).map_err(unreadable)?;
    let follow = options.follow;
    let init = container.init_pid;
    let stream = futures_util::stream::unfold(Some(file), move |file| async move {
        let mut file = file?;
        loop {
            let mut buf = vec![0u8; 64 * 1024];
            match file.read(&mut buf) {
                Ok(0) if follow && init.is_some_and(super::state::alive_now) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(0) => return None,
                Ok(n) => {
                    buf.truncate(n);
                    return Some((Ok(Chunk::Stdout(Bytes::from(buf))), Some(file)));
                }
                Err(err) => {
                    return Some((
                        Err(RuntimeError::Spawn {
                            program: "the log".into(),
                            reason: super::io_reason(&err),
                        }),
                        None,
                    ));
                }
            }
        }
    });
    Ok(Box::pin(stream))
}
