//! A running `crun exec`: its exit status, its terminal's size, and signals. crun forwards
//! catchable signals to the process; SIGKILL (and a group signal) goes to the process itself,
//! found as crun's child, or to the process group crun started it in.

use std::os::fd::OwnedFd;

use async_trait::async_trait;

use super::console::set_size;
use super::stream_error;
use crate::runtime::{
    ExitStatus, ExitWatch, Process, RuntimeError, SignalError, SignalTarget, TermSize,
};

pub(super) struct CrunProcess {
    pub(super) child: tokio::sync::Mutex<tokio::process::Child>,
    pub(super) pid: u32,
    pub(super) master: Option<OwnedFd>,
    /// The process group, once a group signal has needed it: it can still be signalled after
    /// the process has exited.
    pub(super) group: std::sync::Mutex<Option<i32>>,
    /// The `process.json` crun was started with, kept until this is dropped.
    pub(super) _process_file: super::command::ProcessFile,
}

impl CrunProcess {
    /// The exec'd process: crun's child.
    fn target(&self) -> Option<i32> {
        crun_child(self.pid)
    }
}

fn crun_child(crun: u32) -> Option<i32> {
    let children = std::fs::read_to_string(format!("/proc/{crun}/task/{crun}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// For a handed-over `crun exec` (pid `crun`): `signal` to the exec'd process's group (crun
/// starts it in a session of its own) and to crun (which passes it on to the process, and
/// ends with it).
pub(super) fn signal_exec_group(crun: u32, signal: i32) {
    let Some(sig) = rustix::process::Signal::from_named_raw(signal) else {
        return;
    };
    if let Some(group) = crun_child(crun)
        .and_then(process_group)
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(group, sig);
    }
    if let Some(crun) = rustix::process::Pid::from_raw(crun as i32) {
        let _ = rustix::process::kill_process(crun, sig);
    }
}

#[async_trait]
impl Process for CrunProcess {
    async fn wait(&self) -> Result<ExitStatus, RuntimeError> {
        let status = self.child.lock().await.wait().await.map_err(stream_error)?;
        use std::os::unix::process::ExitStatusExt;
        Ok(match (status.code(), status.signal()) {
            (Some(code), _) => ExitStatus::Code(i64::from(code)),
            (None, Some(signal)) => ExitStatus::Signal(signal),
            (None, None) => ExitStatus::Unknown,
        })
    }

    async fn resize(&self, size: TermSize) -> Result<(), RuntimeError> {
        if let Some(master) = &self.master {
            set_size(master, size).map_err(|err| RuntimeError::Spawn {
                program: "crun".into(),
                reason: format!("cannot resize the terminal: {err}"),
            })?;
        }
        Ok(())
    }

    /// crun exits when the process does: its `/proc` entry turns zombie (dcx reaps it only in
    /// [`Process::wait`]). Polled from rarely to every quarter second.
    fn exited(&self) -> ExitWatch {
        let pid = i64::from(self.pid);
        Box::pin(async move {
            let mut pause = std::time::Duration::from_millis(5);
            loop {
                tokio::time::sleep(pause).await;
                if !super::state::alive_now(pid) {
                    return;
                }
                pause = (pause * 2).min(std::time::Duration::from_millis(250));
            }
        })
    }

    async fn signal(&self, signal: i32, target: SignalTarget) -> Result<(), SignalError> {
        let fail = |reason: String| SignalError { signal, reason };
        let sig = rustix::process::Signal::from_named_raw(signal)
            .ok_or_else(|| fail(format!("signal {signal} has no name")))?;
        let crun = rustix::process::Pid::from_raw(self.pid as i32)
            .ok_or_else(|| fail("crun has no pid".into()))?;
        let process = self.target().and_then(rustix::process::Pid::from_raw);
        match target {
            SignalTarget::Process if signal != libc::SIGKILL => {
                // crun passes it on to the process.
                rustix::process::kill_process(crun, sig).map_err(|err| fail(err.to_string()))
            }
            SignalTarget::Process => match process {
                Some(pid) => {
                    rustix::process::kill_process(pid, sig).map_err(|err| fail(err.to_string()))
                }
                None => Ok(()), // the process has already ended
            },
            SignalTarget::Group => {
                // crun starts the process in a session and process group of its own (led by an
                // intermediate process that has already exited): signal that group.
                let mut known = self.group.lock().unwrap_or_else(|e| e.into_inner());
                let group = process
                    .and_then(|pid| process_group(pid.as_raw_nonzero().get()))
                    .or(*known);
                *known = group;
                drop(known);
                match group.and_then(rustix::process::Pid::from_raw) {
                    Some(group) => rustix::process::kill_process_group(group, sig)
                        .map_err(|err| fail(err.to_string())),
                    None => Ok(()), // the process has already ended
                }
            }
        }
    }
}

/// Field 5 of `/proc/<pid>/stat`: the process group.
fn process_group(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..]
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_group_reads_field_5() {
        let own = std::process::id() as i32;
        assert_eq!(
            process_group(own),
            Some(rustix::process::getpgrp().as_raw_nonzero().get())
        );
    }
}
