//! The crun runtime: containers run directly by the crun OCI runtime, without a daemon.
//!
//! * `state.rs`: containers read from crun's state directory, with no crun process; found by
//!   id, unique prefix, or annotations (`--id-label`, `--workspace-folder`: their keys are the
//!   Docker label names);
//! * `command.rs`: the `crun exec` command line (full env, numeric user);
//! * `binary.rs`: crun run from a sealed copy of its binary;
//! * `direct.rs`: a handed-over exec done by dcx itself, as crun would do it;
//! * `console.rs`: the terminal crun passes over `--console-socket`;
//! * `process.rs`: a running exec's status, resizes and signals;
//! * `workdir.rs`: whether the working directory can be seen to exist from the host;
//! * `observe.rs`: its processes and its own output (`dcx top`, `dcx logs`), read on the host;
//! * its files (`dcx cp`, the agent's `fs.*`) are read and written on the host inside its
//!   root (`super::hostfs`).
//!
//! An exec is spawned and relayed by [`Runtime::start`], or, with nothing to relay, the front
//! end may start it with its own stdio ([`Runtime::hand_over`]: dcx's own exec, else `crun
//! exec`, and the signalling of the exec's group). crun's exit code is the process's (128+N for a signal);
//! its own failure to enter the working directory is turned into dcx's working-directory
//! error. Either way crun runs in a process group of its own, and crun starts the process in a
//! session of its own: a signal dcx receives reaches the process's whole group once, through
//! dcx (as a terminal's ^C would), not twice.
//!
//! TTY: crun creates the terminal and passes its master over `--console-socket` (one byte and
//! SCM_RIGHTS); dcx relays it and resizes it (crun 1.8.1 forwards no resizes). The size is also
//! set by the `stty` wrapper before the command starts (when the container has a `/bin/sh`),
//! since the process may run before the master arrives.

mod binary;
mod command;
mod console;
mod direct;
mod observe;
mod process;
mod state;
mod workdir;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio_util::io::ReaderStream;

use super::{
    Attempt, Chunk, Container, ExecSpec, HandOver, Programs, Runtime, RuntimeError, Session, Start,
    WorkdirGuard, io_reason, plausible_container_ref,
};
use binary::CrunBinary;
use command::{ExecProcess, exec_args};
use console::{CONSOLE_WAIT, console_dir, receive_fd, set_size};
use process::CrunProcess;
use workdir::{chdir_failure, workdir_visible};

/// A crun state root and the crun binary to run.
pub struct Crun {
    root: PathBuf,
    program: PathBuf,
    endpoint: String,
    /// Whether a handed-over exec may be done by dcx itself (`direct.rs`) rather than by crun.
    direct: bool,
}

impl Crun {
    /// `root`: `--crun-root` (default crun's own: `/run/crun` for root, else
    /// `$XDG_RUNTIME_DIR/crun`); `program`: `--crun-path` (default `crun` on PATH).
    pub fn new(root: Option<PathBuf>, program: Option<PathBuf>) -> Self {
        let root = root.unwrap_or_else(state::default_root);
        let endpoint = format!("crun:{}", root.display());
        Self {
            root,
            program: program.unwrap_or_else(|| PathBuf::from("crun")),
            endpoint,
            direct: true,
        }
    }

    /// With `false`, every exec is crun's own (`DCX_CRUN_DIRECT=0`).
    pub fn with_direct(mut self, direct: bool) -> Self {
        self.direct = direct;
        self
    }

    /// A state root that is not there is named, rather than every container being missing.
    fn check_root(&self) -> Result<(), RuntimeError> {
        if self.root.is_dir() {
            Ok(())
        } else {
            Err(RuntimeError::NoCrunRoot(self.root.clone()))
        }
    }

    fn spawn_error(&self, err: &std::io::Error) -> RuntimeError {
        RuntimeError::Spawn {
            program: self.program.display().to_string(),
            reason: io_reason(err),
        }
    }
}

/// A failure reading crun's output or waiting for it.
fn stream_error(err: std::io::Error) -> RuntimeError {
    RuntimeError::Spawn {
        program: "crun".into(),
        reason: err.to_string(),
    }
}

#[async_trait]
impl Runtime for Crun {
    async fn inspect(&self, id: &str) -> Result<Container, RuntimeError> {
        self.check_root()?;
        if !plausible_container_ref(id) {
            return Err(RuntimeError::NoSuchContainer(id.into()));
        }
        if self.root.join(id).join("status").is_file() {
            return state::read(&self.root, id);
        }
        let matches: Vec<String> = state::ids(&self.root)
            .into_iter()
            .filter(|candidate| candidate.starts_with(id))
            .collect();
        match matches.as_slice() {
            [] => Err(RuntimeError::NoSuchContainer(id.into())),
            [only] => state::read(&self.root, only),
            _ => Err(RuntimeError::AmbiguousContainer {
                prefix: id.into(),
                matches,
            }),
        }
    }

    async fn find_by_labels(&self, labels: &[String]) -> Result<Option<Container>, RuntimeError> {
        self.check_root()?;
        let wanted: Vec<(&str, &str)> = labels
            .iter()
            .filter_map(|label| label.split_once('='))
            .collect();
        let mut found: Vec<(String, Container)> = Vec::new();
        for id in state::ids(&self.root) {
            let Ok(container) = state::read(&self.root, &id) else {
                continue;
            };
            if wanted.iter().all(|(name, value)| {
                container.labels.get(*name).map(String::as_str) == Some(*value)
            }) {
                found.push((container.started_at.clone(), container));
            }
        }
        // The newest first, as the Docker daemon lists them.
        found.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(found.into_iter().next().map(|(_, container)| container))
    }

    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn name(&self) -> &'static str {
        "crun"
    }

    async fn stat_path(
        &self,
        container: &Container,
        path: &str,
    ) -> Result<super::PathStat, RuntimeError> {
        super::hostfs::stat_path(container, path).await
    }

    async fn read_archive(
        &self,
        container: &Container,
        path: &str,
    ) -> Result<super::ArchiveStream, RuntimeError> {
        super::hostfs::read_archive(container, path).await
    }

    async fn write_archive(
        &self,
        container: &Container,
        dir: &str,
        tar: super::ArchiveStream,
        owner: Option<super::Owner>,
    ) -> Result<(), RuntimeError> {
        super::hostfs::write_archive(container, dir, tar, owner).await
    }

    async fn list_dir(
        &self,
        container: &Container,
        path: &str,
        limit: usize,
    ) -> Result<Option<Vec<super::PathStat>>, RuntimeError> {
        super::hostfs::list_dir(container, path, limit).await
    }

    async fn rename_path(
        &self,
        container: &Container,
        from: &str,
        to: &str,
    ) -> Result<(), RuntimeError> {
        super::hostfs::rename_path(container, from, to).await
    }

    fn host_root(&self, container: &Container) -> Option<std::path::PathBuf> {
        super::hostfs::root_dir(container).ok()
    }

    async fn top(&self, container: &Container) -> Result<Vec<super::ProcessInfo>, RuntimeError> {
        observe::top(container)
    }

    fn logs(
        &self,
        container: &Container,
        options: &super::LogOptions,
    ) -> Result<super::OutputStream, RuntimeError> {
        observe::logs(container, options)
    }

    async fn architecture(&self, _container: &Container) -> Option<String> {
        // crun runs its containers on this host, natively.
        Some(std::env::consts::ARCH.to_owned())
    }

    fn start_hint(&self, container: &Container) -> String {
        format!(
            "A stopped OCI container cannot be restarted: delete it (`crun --root {} delete {}`) and run it again.",
            self.root.display(),
            container.id
        )
    }

    /// Without a terminal, `crun exec` itself gives the process dcx's stdio, forwards signals
    /// and exits with the process's status: dcx becomes it (as TCR's client does), unless the
    /// working directory cannot be seen to exist, so that crun's failure to enter it still
    /// reaches the user as dcx's working-directory error through [`Runtime::start`].
    fn hand_over(
        &self,
        container: &Container,
        spec: &ExecSpec,
    ) -> Result<Option<HandOver>, RuntimeError> {
        if spec.tty
            || !spec
                .cwd
                .as_deref()
                .is_none_or(|cwd| workdir_visible(container, cwd))
        {
            return Ok(None);
        }
        let process = ExecProcess::of(&self.root, container, spec, false)?;
        let mut attempts = Vec::new();
        if self.direct
            && let Some(entry) = direct::Entry::plan(&self.root, container, &process)
        {
            attempts.push(Attempt {
                start: Start::Direct(Box::new(move || entry.spawn())),
                signal: direct::signal_group,
            });
        }
        // crun's exec, made only if dcx's own did not start.
        let (root, program, container) =
            (self.root.clone(), self.program.clone(), container.clone());
        attempts.push(Attempt {
            start: Start::Programs(Box::new(move || {
                let (args, process_file) = exec_args(&root, &container, &process, None)?;
                let binary = CrunBinary::prepare(&program);
                let mut commands = binary.commands();
                for command in &mut commands {
                    command.args(&args);
                }
                Ok(Programs {
                    commands,
                    // The process file stays until crun has ended.
                    keep: Box::new((binary, process_file)),
                })
            })),
            signal: process::signal_exec_group,
        });
        Ok(Some(HandOver::new(
            attempts,
            self.program.display().to_string(),
        )))
    }

    async fn start(&self, container: &Container, spec: &ExecSpec) -> Result<Session, RuntimeError> {
        let console = if spec.tty {
            let dir = console_dir()?;
            let listener = tokio::net::UnixListener::bind(dir.socket())
                .map_err(|err| self.spawn_error(&err))?;
            Some((dir, listener))
        } else {
            None
        };
        let socket = console.as_ref().map(|(dir, _)| dir.socket());
        let process = ExecProcess::of(&self.root, container, spec, socket.is_some())?;
        let (args, process_file) = exec_args(&self.root, container, &process, socket.as_deref())?;
        let spawn = |command: std::process::Command| {
            let mut command = tokio::process::Command::from(command);
            command
                .args(&args)
                .process_group(0)
                .kill_on_drop(false)
                .stdin(if spec.tty {
                    Stdio::null()
                } else {
                    Stdio::piped()
                })
                .stdout(if spec.tty {
                    Stdio::null()
                } else {
                    Stdio::piped()
                })
                .stderr(Stdio::piped());
            command.spawn()
        };
        let binary = CrunBinary::prepare(&self.program);
        let mut started = Err(std::io::Error::other("no crun command"));
        for command in binary.commands() {
            started = spawn(command);
            if started.is_ok() {
                break;
            }
        }
        let mut child = started.map_err(|err| self.spawn_error(&err))?;
        drop(binary);
        let pid = child.id().unwrap_or_default();
        let Some(stderr) = child.stderr.take() else {
            return Err(self.spawn_error(&std::io::Error::other("started without a stderr pipe")));
        };
        let mut guard = WorkdirGuard::new(spec.cwd.as_deref(), chdir_failure);
        let stderr = ReaderStream::new(stderr).map(move |item| {
            let bytes = item.map_err(stream_error)?;
            guard.check(&bytes)?;
            Ok(Chunk::Stderr(bytes))
        });

        if let Some((dir, listener)) = console {
            // Biased: a quick command can be over, and crun gone, by the time dcx looks; the
            // terminal crun sent before starting it is still waiting in the socket.
            let received = tokio::select! {
                biased;
                accepted = tokio::time::timeout(CONSOLE_WAIT, listener.accept()) => match accepted {
                    Ok(Ok((stream, _))) => receive_fd(stream).await,
                    Ok(Err(err)) => Err(err.to_string()),
                    Err(_) => Err("crun did not hand over the terminal".into()),
                },
                status = child.wait() => Err(match status.ok().and_then(|s| s.code()) {
                    Some(code) => format!("crun exited with {code} before handing over the terminal:"),
                    None => "crun ended before handing over the terminal:".to_owned(),
                }),
            };
            drop(dir);
            let master = match received {
                Ok(master) => master,
                Err(reason) => {
                    // crun's own message explains more than ours.
                    let mut text = String::new();
                    let mut stderr = Box::pin(stderr);
                    while let Ok(Some(Ok(Chunk::Stderr(bytes)))) =
                        tokio::time::timeout(Duration::from_millis(200), stderr.next()).await
                    {
                        text.push_str(&String::from_utf8_lossy(&bytes));
                    }
                    let _ = child.start_kill();
                    return Err(RuntimeError::Spawn {
                        program: "crun exec -t".into(),
                        reason: format!("{reason} {}", text.trim()).trim().to_owned(),
                    });
                }
            };
            if let Some(size) = spec.size {
                let _ = set_size(&master, size);
            }
            let reader = tokio::fs::File::from_std(std::fs::File::from(
                master.try_clone().map_err(|err| self.spawn_error(&err))?,
            ));
            let writer = tokio::fs::File::from_std(std::fs::File::from(
                master.try_clone().map_err(|err| self.spawn_error(&err))?,
            ));
            // The master reads EIO once the terminal's last user has closed it: its end.
            let mut guard = WorkdirGuard::new(spec.cwd.as_deref(), chdir_failure);
            let output = ReaderStream::with_capacity(reader, 64 * 1024)
                .take_while(|item| {
                    std::future::ready(
                        !matches!(item, Err(err) if err.raw_os_error() == Some(libc::EIO)),
                    )
                })
                .map(move |item| {
                    let bytes = item.map_err(stream_error)?;
                    guard.check(&bytes)?;
                    Ok(Chunk::Stdout(bytes))
                });
            let output = futures_util::stream::select(output, stderr);
            return Ok(Session {
                output: Box::pin(output),
                input: Box::pin(writer),
                process: std::sync::Arc::new(CrunProcess {
                    child: tokio::sync::Mutex::new(child),
                    pid,
                    master: Some(master),
                    group: std::sync::Mutex::new(None),
                    _process_file: process_file,
                }),
            });
        }

        let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
            return Err(self.spawn_error(&std::io::Error::other("started without its pipes")));
        };
        let stdout = ReaderStream::with_capacity(stdout, 64 * 1024)
            .map(|item| item.map(Chunk::Stdout).map_err(stream_error));
        Ok(Session {
            output: Box::pin(futures_util::stream::select(stdout, stderr)),
            input: Box::pin(stdin),
            process: std::sync::Arc::new(CrunProcess {
                child: tokio::sync::Mutex::new(child),
                pid,
                master: None,
                group: std::sync::Mutex::new(None),
                _process_file: process_file,
            }),
        })
    }
}
