//! The crun runtime: containers run directly by the crun OCI runtime, without a daemon.
//!
//! Everything about a container is read from crun's state directory, with no crun process:
//! `<root>/<id>/status` (pid, process start time, bundle, rootfs, created) and
//! `<root>/<id>/config.json` (the create-time config: env, user, cwd, annotations). A container
//! is running when its pid is alive and is still the process crun recorded (same start time).
//! `--id-label` and `--workspace-folder` match annotations, whose keys are the Docker label names.
//!
//! An exec runs `crun --root R exec [--env …] [--cwd D] --user UID:GID [-t --console-socket S]
//! -- <id> <cmd…>` from a sealed copy of the crun binary (`binary.rs`): spawned and relayed by
//! [`Runtime::start`], or, with nothing to relay, in place of dcx ([`Runtime::hand_over`]). It
//! follows crun 1.8.1's rules (see shared/reference/crun-backend.md):
//! * `--env` replaces the whole environment, so the container's env is always passed first,
//!   followed by dcx's variables (later entries win);
//! * `--user` takes numbers only: names are resolved in the container's `/etc/passwd` and
//!   `/etc/group`, read from the rootfs on the host;
//! * crun's exit code is the process's (128+N for a signal); its own failure to enter the
//!   working directory is turned into dcx's working-directory error;
//! * crun forwards catchable signals to the process; SIGKILL (and a group signal) goes to the
//!   process itself, found as crun's child;
//! * relayed, crun runs in a process group of its own, so a terminal's ^C reaches the process
//!   once, through dcx's forwarding, not twice; handed over, crun is in the caller's group and
//!   forwards the ^C itself.
//!
//! TTY: crun creates the terminal and passes its master over `--console-socket` (one byte and
//! SCM_RIGHTS); dcx relays it and resizes it (crun 1.8.1 forwards no resizes). The size is also
//! set by the `stty` wrapper before the command starts, since the process may run before the
//! master arrives.

mod binary;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use serde::Deserialize;
use tokio_util::io::ReaderStream;

use super::{
    Chunk, Container, ExecSpec, HandOver, Mount, Process, Runtime, RuntimeError, Session,
    SignalError, SignalTarget, TermSize, WorkdirGuard, io_reason, plausible_container_ref,
    sized_argv,
};
use crate::exec::ExitStatus;
use binary::CrunBinary;

/// How long crun may take to hand over the terminal.
const CONSOLE_WAIT: Duration = Duration::from_secs(10);

/// A crun state root and the crun binary to run.
pub struct Crun {
    root: PathBuf,
    program: PathBuf,
    endpoint: String,
}

#[derive(Deserialize)]
struct Status {
    pid: i64,
    #[serde(rename = "process-start-time")]
    process_start_time: Option<u64>,
    bundle: Option<String>,
    rootfs: Option<String>,
    created: Option<String>,
}

#[derive(Deserialize, Default)]
struct Config {
    #[serde(default)]
    process: ProcessConfig,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    mounts: Vec<MountConfig>,
}

#[derive(Deserialize)]
struct MountConfig {
    destination: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    options: Vec<String>,
}

impl MountConfig {
    fn into_mount(self) -> Mount {
        let bind = self.kind.as_deref() == Some("bind")
            || self
                .options
                .iter()
                .any(|option| option == "bind" || option == "rbind");
        Mount {
            destination: self.destination,
            bind_source: self
                .source
                .filter(|source| bind && source.starts_with('/'))
                .map(PathBuf::from),
        }
    }
}

#[derive(Deserialize, Default)]
struct ProcessConfig {
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    user: UserConfig,
}

#[derive(Deserialize, Default)]
struct UserConfig {
    #[serde(default)]
    uid: u32,
    #[serde(default)]
    gid: u32,
}

impl Crun {
    /// `root`: `--crun-root` (default crun's own: `/run/crun` for root, else
    /// `$XDG_RUNTIME_DIR/crun`); `program`: `--crun-path` (default `crun` on PATH).
    pub fn new(root: Option<PathBuf>, program: Option<PathBuf>) -> Self {
        let root = root.unwrap_or_else(default_root);
        let endpoint = format!("crun:{}", root.display());
        Self {
            root,
            program: program.unwrap_or_else(|| PathBuf::from("crun")),
            endpoint,
        }
    }

    fn read(&self, id: &str) -> Result<Container, RuntimeError> {
        let dir = self.root.join(id);
        let status: Status = read_json(&dir.join("status"))
            .ok_or_else(|| RuntimeError::NoSuchContainer(id.to_owned()))?;
        let config: Config = read_json(&dir.join("config.json")).unwrap_or_default();
        let running = status.pid > 0 && alive(status.pid, status.process_start_time);
        let rootfs = status.rootfs.as_deref().map(|rootfs| {
            let rootfs = Path::new(rootfs);
            match &status.bundle {
                Some(bundle) if rootfs.is_relative() => Path::new(bundle).join(rootfs),
                _ => rootfs.to_path_buf(),
            }
        });
        let user = config.process.user;
        Ok(Container {
            id: id.to_owned(),
            name: id.to_owned(),
            running,
            status: if running { "running" } else { "stopped" }.to_owned(),
            user: (user.uid != 0 || user.gid != 0).then(|| format!("{}:{}", user.uid, user.gid)),
            env: config.process.env,
            labels: config.annotations,
            started_at: format!(
                "{}/{}",
                status.created.unwrap_or_default(),
                status.process_start_time.unwrap_or_default()
            ),
            rootfs,
            mounts: config
                .mounts
                .into_iter()
                .map(MountConfig::into_mount)
                .collect(),
        })
    }

    /// The ids under the root.
    fn ids(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|entry| entry.path().join("status").is_file())
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        ids.sort();
        ids
    }

    /// `user` as crun's `UID:GID`, resolved in the container's passwd and group files.
    fn numeric_user(&self, container: &Container, user: &str) -> Result<String, RuntimeError> {
        let (name, group) = match user.split_once(':') {
            Some((name, group)) => (name, Some(group)),
            None => (user, None),
        };
        let rootfs = container.rootfs.as_deref();
        let read = |file: &str| {
            rootfs
                .and_then(|root| std::fs::read_to_string(root.join(file)).ok())
                .unwrap_or_default()
        };
        let name = if name == "0" { "root" } else { name };
        let entry = crate::env::find_passwd_entry(&read("etc/passwd"), name);
        let uid = match (&entry, name.parse::<u32>()) {
            (Some(entry), _) => entry.uid.clone(),
            (None, Ok(uid)) => uid.to_string(),
            (None, Err(_)) => return Err(RuntimeError::UnknownUser(name.to_owned())),
        };
        let gid = match group {
            Some(group) if group.parse::<u32>().is_ok() => group.to_owned(),
            Some(group) => read("etc/group")
                .lines()
                .map(|line| line.split(':').collect::<Vec<_>>())
                .find(|fields| fields.len() >= 3 && fields[0] == group)
                .map(|fields| fields[2].to_owned())
                .ok_or_else(|| RuntimeError::UnknownGroup(group.to_owned()))?,
            None => entry.map_or_else(|| "0".to_owned(), |entry| entry.gid),
        };
        Ok(format!("{uid}:{gid}"))
    }

    /// The arguments of `crun --root R exec [--env …] [--cwd D] --user UID:GID [-t
    /// --console-socket S] -- <id> <argv…>`, with the argv behind the `stty` size wrapper on a
    /// terminal of a given size.
    fn exec_args(
        &self,
        container: &Container,
        spec: &ExecSpec,
        console_socket: Option<&Path>,
    ) -> Result<Vec<OsString>, RuntimeError> {
        let user = self.numeric_user(container, spec.user.as_deref().unwrap_or("root"))?;
        let argv = match spec.size.filter(|_| spec.tty) {
            // The wrapper needs a shell; without one the size is set when the terminal arrives.
            Some(size) if has_shell(container) => sized_argv(&spec.argv, size),
            _ => spec.argv.clone(),
        };
        let mut args: Vec<OsString> =
            vec!["--root".into(), self.root.clone().into(), "exec".into()];
        if !spec.env.is_empty() || !spec.unset.is_empty() {
            let base: Vec<String> = container
                .env
                .iter()
                .filter(|entry| {
                    let name = entry.split('=').next().unwrap_or_default();
                    !spec.unset.iter().any(|unset| unset == name)
                })
                .cloned()
                .collect();
            for entry in full_env(&base, &spec.env) {
                args.extend(["--env".into(), entry.into()]);
            }
        }
        if let Some(cwd) = &spec.cwd {
            args.extend(["--cwd".into(), cwd.into()]);
        }
        args.extend(["--user".into(), user.into()]);
        if let Some(socket) = console_socket {
            args.extend(["-t".into(), "--console-socket".into(), socket.into()]);
        }
        args.extend(["--".into(), container.id.clone().into()]);
        args.extend(argv.into_iter().map(OsString::from));
        Ok(args)
    }

    fn spawn_error(&self, err: &std::io::Error) -> RuntimeError {
        RuntimeError::Spawn {
            program: self.program.display().to_string(),
            reason: io_reason(err),
        }
    }
}

fn default_root() -> PathBuf {
    match std::env::var("XDG_RUNTIME_DIR") {
        Ok(dir) if !dir.is_empty() && !rustix::process::geteuid().is_root() => {
            Path::new(&dir).join("crun")
        }
        _ => PathBuf::from("/run/crun"),
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Field 22 of `/proc/<pid>/stat`, the process's start time in clock ticks since boot, for a
/// process that has not exited (a zombie or dead entry gives `None`).
fn start_time(pid: i64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let mut fields = stat[stat.rfind(')')? + 2..].split_whitespace();
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
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

fn alive(pid: i64, recorded_start: Option<u64>) -> bool {
    match (start_time(pid), recorded_start) {
        (Some(now), Some(recorded)) => now == recorded,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// The container's env, then `extra` (later entries win), as one list.
fn full_env(base: &[String], extra: &[String]) -> Vec<String> {
    let mut merged: Vec<String> = Vec::with_capacity(base.len() + extra.len());
    for entry in base.iter().chain(extra) {
        let name = entry.split('=').next().unwrap_or_default();
        merged.retain(|kept| kept.split('=').next() != Some(name));
        merged.push(entry.clone());
    }
    merged
}

/// A failure reading crun's output or waiting for it.
fn stream_error(err: std::io::Error) -> RuntimeError {
    RuntimeError::Spawn {
        program: "crun".into(),
        reason: err.to_string(),
    }
}

/// Whether the container has the shell that the `stty` size wrapper needs (assumed without a
/// known rootfs).
fn has_shell(container: &Container) -> bool {
    container
        .rootfs
        .as_ref()
        .is_none_or(|rootfs| std::fs::symlink_metadata(rootfs.join("bin/sh")).is_ok())
}

/// Whether `cwd` is certainly a directory in the container, as seen from the host:
/// * `cwd` is absolute, without `.` or `..`, and the rootfs is known;
/// * no mount's destination goes through a symlink of the rootfs (crun follows those when it
///   mounts, so such a mount lands where the destination does not say);
/// * the mount that shows `cwd` is the last one, in config order (later mounts cover earlier
///   ones), whose destination holds it. At its mount point, a bind mount's source must be a
///   directory; any other mount point is one. Below it, a bind mount's source (or, with no
///   mount, the rootfs) must hold a directory at every component, and no symlink (which would
///   resolve on the host, not in the container); below any other kind of mount (tmpfs, proc)
///   nothing can be seen.
fn workdir_visible(container: &Container, cwd: &str) -> bool {
    let cwd = Path::new(cwd);
    let Some(rootfs) = &container.rootfs else {
        return false;
    };
    if !cwd.is_absolute()
        || cwd
            .components()
            .skip(1)
            .any(|part| !matches!(part, std::path::Component::Normal(_)))
    {
        return false;
    }
    let through_symlink = |destination: &Path| {
        let mut path = rootfs.clone();
        destination.components().skip(1).any(|part| {
            path.push(part);
            // A missing component is created by crun, as a directory: nothing to follow.
            std::fs::symlink_metadata(&path).is_ok_and(|meta| meta.file_type().is_symlink())
        })
    };
    if container
        .mounts
        .iter()
        .any(|mount| through_symlink(Path::new(&mount.destination)))
    {
        return false;
    }
    let holder = container
        .mounts
        .iter()
        .rev()
        .find(|mount| cwd.starts_with(&mount.destination));
    let (base, rest) = match holder {
        Some(mount) if cwd == Path::new(&mount.destination) => {
            return mount
                .bind_source
                .as_ref()
                .is_none_or(|source| source.is_dir());
        }
        Some(mount) => match &mount.bind_source {
            Some(source) => (
                source.as_path(),
                cwd.strip_prefix(&mount.destination).unwrap_or(cwd),
            ),
            None => return false,
        },
        None => (rootfs.as_path(), cwd.strip_prefix("/").unwrap_or(cwd)),
    };
    let mut path = base.to_path_buf();
    rest.components().all(|part| {
        path.push(part);
        std::fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_dir())
    })
}

/// crun's own failure to enter the working directory (``chdir `/x`: No such file…``; on a
/// terminal coloured and behind a timestamp).
fn chdir_failure(first_output: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(first_output);
    let line = text.lines().next()?;
    let rest = &line[line.find("chdir `")? + "chdir `".len()..];
    let reason = rest.split_once("`: ")?.1;
    // Drop a trailing colour reset (ESC[0m) and spaces.
    let reason = reason.split('\u{1b}').next().unwrap_or(reason).trim();
    Some(reason.to_lowercase())
}

#[async_trait]
impl Runtime for Crun {
    async fn inspect(&self, id: &str) -> Result<Container, RuntimeError> {
        if !plausible_container_ref(id) {
            return Err(RuntimeError::NoSuchContainer(id.into()));
        }
        if self.root.join(id).join("status").is_file() {
            return self.read(id);
        }
        let matches: Vec<String> = self
            .ids()
            .into_iter()
            .filter(|candidate| candidate.starts_with(id))
            .collect();
        match matches.as_slice() {
            [] => Err(RuntimeError::NoSuchContainer(id.into())),
            [only] => self.read(only),
            _ => Err(RuntimeError::AmbiguousContainer {
                prefix: id.into(),
                matches,
            }),
        }
    }

    async fn find_by_labels(&self, labels: &[String]) -> Result<Option<Container>, RuntimeError> {
        let wanted: Vec<(&str, &str)> = labels
            .iter()
            .filter_map(|label| label.split_once('='))
            .collect();
        let mut found: Vec<(String, Container)> = Vec::new();
        for id in self.ids() {
            let Ok(container) = self.read(&id) else {
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
    fn hand_over(&self, container: &Container, spec: &ExecSpec) -> HandOver {
        if spec.tty
            || !spec
                .cwd
                .as_deref()
                .is_none_or(|cwd| workdir_visible(container, cwd))
        {
            return HandOver::Declined;
        }
        let args = match self.exec_args(container, spec, None) {
            Ok(args) => args,
            Err(err) => return HandOver::Failed(err),
        };
        use std::os::unix::process::CommandExt;
        let binary = CrunBinary::prepare(&self.program);
        let mut err = binary.command().args(&args).exec();
        if binary.is_sealed() {
            // A sealed copy the system would not run (a policy, no /proc): crun from its path.
            err = binary.run_from_path().command().args(&args).exec();
        }
        HandOver::Failed(self.spawn_error(&err))
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
        let args = self.exec_args(container, spec, socket.as_deref())?;
        let spawn = |binary: &CrunBinary| {
            let mut command = tokio::process::Command::from(binary.command());
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
        let mut child = match spawn(&binary) {
            // A sealed copy the system would not run (a policy, no /proc): crun from its path.
            Err(_) if binary.is_sealed() => spawn(&binary.run_from_path()),
            other => other,
        }
        .map_err(|err| self.spawn_error(&err))?;
        drop(binary);
        let pid = child.id().unwrap_or_default();
        let stderr = child.stderr.take().expect("piped stderr");
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
                process: Box::new(CrunProcess {
                    child,
                    pid,
                    master: Some(master),
                }),
            });
        }

        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = ReaderStream::with_capacity(stdout, 64 * 1024)
            .map(|item| item.map(Chunk::Stdout).map_err(stream_error));
        Ok(Session {
            output: Box::pin(futures_util::stream::select(stdout, stderr)),
            input: Box::pin(stdin),
            process: Box::new(CrunProcess {
                child,
                pid,
                master: None,
            }),
        })
    }
}

/// A private directory for the console socket, removed when dropped (on every way out).
struct ConsoleDir(PathBuf);

impl ConsoleDir {
    fn socket(&self) -> PathBuf {
        self.0.join("console.sock")
    }
}

impl Drop for ConsoleDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates the console socket's directory.
fn console_dir() -> Result<ConsoleDir, RuntimeError> {
    use std::os::unix::fs::DirBuilderExt;
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dcx-console-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|err| RuntimeError::Spawn {
            program: "crun".into(),
            reason: format!("cannot create {}: {}", dir.display(), io_reason(&err)),
        })?;
    Ok(ConsoleDir(dir))
}

/// Receives the terminal master crun sends: one byte with one descriptor (SCM_RIGHTS).
async fn receive_fd(stream: tokio::net::UnixStream) -> Result<OwnedFd, String> {
    let stream = stream.into_std().map_err(|err| err.to_string())?;
    stream
        .set_nonblocking(false)
        .map_err(|err| err.to_string())?;
    tokio::task::spawn_blocking(move || {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut byte = [0u8; 8];
        rustix::net::recvmsg(
            &stream,
            &mut [IoSliceMut::new(&mut byte)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(|err| err.to_string())?;
        control
            .drain()
            .find_map(|message| match message {
                RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
                _ => None,
            })
            .ok_or_else(|| "crun sent no terminal".to_owned())
    })
    .await
    .map_err(|err| err.to_string())?
}

fn set_size(master: &OwnedFd, size: TermSize) -> std::io::Result<()> {
    rustix::termios::tcsetwinsize(
        master,
        rustix::termios::Winsize {
            ws_row: size.rows,
            ws_col: size.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .map_err(Into::into)
}

struct CrunProcess {
    child: tokio::process::Child,
    pid: u32,
    master: Option<OwnedFd>,
}

impl CrunProcess {
    /// The exec'd process: crun's child.
    fn target(&self) -> Option<i32> {
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.pid)).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }
}

#[async_trait]
impl Process for CrunProcess {
    async fn wait(&mut self) -> Result<ExitStatus, RuntimeError> {
        let status = self.child.wait().await.map_err(stream_error)?;
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
                let group = process.and_then(|pid| process_group(pid.as_raw_nonzero().get()));
                match group.and_then(rustix::process::Pid::from_raw) {
                    Some(group) => rustix::process::kill_process_group(group, sig)
                        .map_err(|err| fail(err.to_string())),
                    None => Ok(()), // the process has already ended
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_env_comes_first_and_later_entries_win() {
        let base = ["PATH=/bin".to_owned(), "TERM=xterm".to_owned()];
        let extra = ["FOO=1".to_owned(), "PATH=/usr/bin:/bin".to_owned()];
        assert_eq!(
            full_env(&base, &extra),
            ["TERM=xterm", "FOO=1", "PATH=/usr/bin:/bin"]
        );
    }

    #[test]
    fn crun_chdir_failures_are_recognised() {
        assert_eq!(
            chdir_failure(b"chdir `/nope`: No such file or directory\n").as_deref(),
            Some("no such file or directory")
        );
        assert_eq!(chdir_failure(b"executable file `x` not found"), None);
    }

    #[test]
    fn process_group_reads_field_5() {
        let own = std::process::id() as i32;
        assert_eq!(
            process_group(own),
            Some(rustix::process::getpgrp().as_raw_nonzero().get())
        );
    }

    #[test]
    fn start_time_reads_field_22() {
        let own = std::process::id() as i64;
        assert!(start_time(own).is_some());
        assert!(alive(own, start_time(own)));
        assert!(!alive(own, start_time(own).map(|t| t + 1)));
        assert!(!alive(i64::from(i32::MAX), None));
    }

    #[test]
    fn a_working_directory_is_visible_only_when_certainly_a_directory() {
        let base = tempfile::tempdir().unwrap();
        let base = base.path();
        let rootfs = base.join("rootfs");
        let bound = base.join("bound");
        let other = base.join("other");
        for dir in [
            "rootfs/home/u",
            "rootfs/tmp",
            "rootfs/ws",
            "rootfs/data/sub",
            "bound/src",
            "other/sub",
        ] {
            std::fs::create_dir_all(base.join(dir)).unwrap();
        }
        std::fs::write(rootfs.join("home/file"), "").unwrap();
        std::fs::write(base.join("hosts"), "").unwrap();
        std::os::unix::fs::symlink("/", rootfs.join("home/link")).unwrap();
        let mount = |destination: &str, source: Option<PathBuf>| Mount {
            destination: destination.into(),
            bind_source: source,
        };
        let container = Container {
            rootfs: Some(rootfs.clone()),
            mounts: vec![
                mount("/tmp", None),
                mount("/ws", Some(bound.clone())),
                mount("/etc/hosts", Some(base.join("hosts"))),
                // A later mount covers an earlier, deeper one.
                mount("/data/sub", Some(bound.clone())),
                mount("/data", Some(other.clone())),
            ],
            ..Container::default()
        };
        let visible = |cwd: &str| workdir_visible(&container, cwd);
        // In the rootfs.
        assert!(visible("/"));
        assert!(visible("/home/u"));
        assert!(!visible("/home/missing"));
        assert!(!visible("/home/file"));
        // A symlink would resolve on the host, not in the container.
        assert!(!visible("/home/link"));
        assert!(!visible("/home/link/tmp"));
        // Relative or dotted paths are not judged.
        assert!(!visible("home/u"));
        assert!(!visible("/home/../home/u"));
        // A mount point is a directory, unless a bind mount shows a file there; under a bind
        // mount, its source decides; under another kind of mount, nothing can be seen.
        assert!(visible("/tmp"));
        assert!(!visible("/tmp/anything"));
        assert!(visible("/ws"));
        assert!(visible("/ws/src"));
        assert!(!visible("/ws/missing"));
        assert!(!visible("/etc/hosts"));
        // A longer name is not under the mount.
        assert!(!visible("/tmpfoo"));
        // The last mount holding the directory shows it: /data's source, not /data/sub's.
        assert!(visible("/data/sub"));
        assert!(!visible("/data/sub/src"));
        // No rootfs known: nothing is judged.
        let unknown = Container {
            mounts: container.mounts.clone(),
            ..Container::default()
        };
        assert!(!workdir_visible(&unknown, "/tmp"));
        // A mount through a symlink of the rootfs lands elsewhere: nothing is judged.
        std::os::unix::fs::symlink("/tmp", rootfs.join("run")).unwrap();
        let mut through = container.clone();
        through.mounts.push(mount("/run/shm", None));
        assert!(!workdir_visible(&through, "/home/u"));
    }

    #[test]
    fn mounts_know_their_bind_sources() {
        let mount = |json: &str| {
            serde_json::from_str::<MountConfig>(json)
                .unwrap()
                .into_mount()
        };
        assert_eq!(
            mount(r#"{"destination":"/w","type":"bind","source":"/host/w"}"#).bind_source,
            Some(PathBuf::from("/host/w"))
        );
        assert_eq!(
            mount(r#"{"destination":"/w","source":"/host/w","options":["rbind","ro"]}"#)
                .bind_source,
            Some(PathBuf::from("/host/w"))
        );
        assert_eq!(
            mount(r#"{"destination":"/tmp","type":"tmpfs","source":"tmpfs"}"#).bind_source,
            None
        );
    }
}
