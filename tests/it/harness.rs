//! The fluent test harness: [`dcx`] and [`reference`] build a command, [`Cmd::run`] runs it
//! with a hang guard and returns an [`Outcome`] to assert on; [`TestContainer`] starts a
//! container with a unique name and label and removes it on drop, a failing test included.
//! No daemon, image or reference CLI: the test fails, pointing at scripts/setup.sh.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const DEBIAN: &str = "dcx-test/debian:bookworm";
pub const BUSYBOX: &str = "dcx-test/busybox";
const SETUP_HINT: &str =
    "run scripts/setup.sh (as root) to provision the daemon, the test images and the reference CLI";
/// A guard against hangs, not a timing assertion: a run this long is a bug in itself.
const HANG_GUARD: Duration = Duration::from_secs(300);

/// Runs the docker CLI and returns its stdout, panicking on failure.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("cannot run docker ({err}); {SETUP_HINT}"));
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("docker prints UTF-8")
}

fn require_daemon() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let out = Command::new("docker")
            .args(["version", "--format", "{{.Server.APIVersion}}"])
            .output()
            .map_err(|err| format!("cannot run docker: {err}"))?;
        if !out.status.success() {
            return Err(format!(
                "no Docker daemon answers: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        for image in [DEBIAN, BUSYBOX] {
            let found = Command::new("docker")
                .args(["image", "inspect", image])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|err| err.to_string())?;
            if !found.success() {
                return Err(format!("the test image {image} is missing"));
            }
        }
        Ok(())
    });
    if let Err(why) = ready {
        panic!("{why}; {SETUP_HINT}");
    }
}

/// A container for one test, removed when dropped.
pub struct TestContainer {
    pub id: String,
    pub name: String,
}

impl TestContainer {
    pub fn start(image: &str) -> Self {
        Self::start_with(image, &[])
    }

    /// With more `docker run` options (labels, `-e`, …) before the image.
    pub fn start_with(image: &str, run_options: &[&str]) -> Self {
        Self::start_running(image, run_options, &["sleep", "1000000"])
    }

    /// Running `command` as its main process.
    pub fn start_running(image: &str, run_options: &[&str], command: &[&str]) -> Self {
        require_daemon();
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "dcx-it-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut args = vec!["run", "-d", "--name", &name, "--label", "dcx.test=1"];
        args.extend_from_slice(run_options);
        args.push(image);
        args.extend_from_slice(command);
        let id = docker(&args).trim().to_owned();
        Self { id, name }
    }

    /// Runs `script` with `sh -c` in the container through docker itself (not dcx); its
    /// stdout.
    pub fn sh(&self, script: &str) -> String {
        docker(&["exec", &self.id, "sh", "-c", script])
    }

    /// Stops the container (it stays, stopped, until dropped).
    pub fn stop(&self) {
        docker(&["stop", "-t", "0", &self.id]);
    }

    /// `dcx exec --container-id <id> <command…>`.
    pub fn dcx<I, S>(&self, command: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        dcx()
            .args(["exec", "--container-id", &self.id])
            .args(command)
    }

    /// The same through the reference CLI.
    pub fn reference<I, S>(&self, command: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        reference()
            .args(["exec", "--container-id", &self.id])
            .args(command)
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A command under test.
pub struct Cmd {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, Option<String>)>,
    stdin: Input,
    current_dir: Option<PathBuf>,
}

enum Input {
    Null,
    Bytes(Vec<u8>),
    Closed,
}

/// The dcx binary built by cargo for these tests, with a probe cache private to this test run
/// (never the user's own).
pub fn dcx() -> Cmd {
    Cmd::new(PathBuf::from(env!("CARGO_BIN_EXE_dcx")))
        .env("XDG_CACHE_HOME", &test_cache_home().display().to_string())
}

/// The `XDG_CACHE_HOME` dcx runs with in these tests.
pub fn test_cache_home() -> PathBuf {
    std::env::temp_dir().join(format!("dcx-it-cache-{}", std::process::id()))
}

/// The path of dcx's binary, for shell pipelines.
pub fn dcx_path() -> &'static str {
    env!("CARGO_BIN_EXE_dcx")
}

/// A setting scripts/setup.sh wrote to its env file (`$DCX_CACHE/env`, default
/// `/var/cache/dcx/env`): from the environment when the file was sourced, else read from the
/// file itself. Endpoints and their ports are never assumed: setup chooses them.
pub fn setting(name: &str) -> String {
    if let Ok(value) = std::env::var(name) {
        return value;
    }
    let cache = std::env::var("DCX_CACHE").unwrap_or_else(|_| "/var/cache/dcx".into());
    let file = Path::new(&cache).join("env");
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let prefix = format!("export {name}=");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{name} is not set nor in {}; {SETUP_HINT}", file.display()))
}

/// The reference CLI (`DCX_REFERENCE_CLI`, else where scripts/setup.sh installs it).
/// Where the reference CLI is (`DCX_REFERENCE_CLI`, else setup's place).
pub fn reference_cli() -> PathBuf {
    std::env::var_os("DCX_REFERENCE_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/dcx/reference/node_modules/.bin/devcontainer"))
}

pub fn reference() -> Cmd {
    let path = reference_cli();
    assert!(
        path.exists(),
        "the reference CLI is not at {}; {SETUP_HINT}",
        path.display()
    );
    Cmd::new(path)
}

impl Cmd {
    /// The command line for `sh -c` (environment settings not included).
    /// With the environment set by [`Cmd::env`] (`env` unsets what was removed).
    pub fn shell_line(&self) -> String {
        let quote = |word: &str| format!("'{}'", word.replace('\'', r"'\''"));
        let mut words = Vec::new();
        if !self.env.is_empty() {
            words.push("env".to_owned());
        }
        for (name, value) in &self.env {
            match value {
                Some(value) => words.push(quote(&format!("{name}={value}"))),
                None => words.extend(["-u".to_owned(), quote(name)]),
            }
        }
        words.extend(
            std::iter::once(self.program.as_os_str())
                .chain(self.args.iter().map(OsString::as_os_str))
                .map(|word| quote(&word.to_string_lossy())),
        );
        words.join(" ")
    }

    /// Any program (found on PATH).
    pub fn program(name: &str) -> Self {
        Self::new(PathBuf::from(name))
    }

    fn new(program: PathBuf) -> Self {
        Self {
            program,
            args: Vec::new(),
            env: Vec::new(),
            stdin: Input::Null,
            current_dir: None,
        }
    }

    /// Runs in this directory (the test process's otherwise).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), Some(value.into())));
        self
    }

    /// Feeds these bytes on stdin, then EOF (stdin is /dev/null otherwise).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Input::Bytes(bytes.into());
        self
    }

    /// Runs with file descriptor 0 closed.
    pub fn stdin_closed(mut self) -> Self {
        self.stdin = Input::Closed;
        self
    }

    pub fn run(self) -> Outcome {
        let description = format!(
            "{} {}",
            self.program.display(),
            self.args
                .iter()
                .map(|arg| arg.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut running = self.spawn();
        let code = running.wait();
        for reader in running.readers.drain(..) {
            reader.join().expect("an output reader");
        }
        Outcome {
            description,
            code,
            stdout: running.stdout.bytes(),
            stderr: running.stderr.bytes(),
        }
    }
}

/// What a run produced; the assertion methods chain and show everything on failure.
#[derive(Debug)]
pub struct Outcome {
    pub description: String,
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Outcome {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    fn context(&self) -> String {
        format!(
            "{}\n  exit code: {:?}\n  stdout: {:?}\n  stderr: {:?}",
            self.description,
            self.code,
            self.stdout_text(),
            self.stderr_text()
        )
    }

    #[track_caller]
    pub fn code(self, expected: i32) -> Self {
        assert_eq!(self.code, Some(expected), "{}", self.context());
        self
    }

    #[track_caller]
    pub fn stdout(self, expected: &str) -> Self {
        assert_eq!(self.stdout_text(), expected, "{}", self.context());
        self
    }

    #[track_caller]
    pub fn stdout_bytes(self, expected: &[u8]) -> Self {
        assert!(
            self.stdout == expected,
            "stdout differs: {}",
            self.context()
        );
        self
    }

    #[track_caller]
    pub fn stderr(self, expected: &str) -> Self {
        assert_eq!(self.stderr_text(), expected, "{}", self.context());
        self
    }

    /// Asserts that dcx and the reference agree on exit code and stdout.
    #[track_caller]
    pub fn same_as(self, reference: &Outcome) -> Self {
        assert_eq!(
            self.code,
            reference.code,
            "exit codes differ\n dcx: {}\n reference: {}",
            self.context(),
            reference.context()
        );
        assert!(
            self.stdout == reference.stdout,
            "stdout differs\n dcx: {}\n reference: {}",
            self.context(),
            reference.context()
        );
        self
    }
}

/// Output collected by a reader thread while the process runs.
#[derive(Clone, Default)]
pub struct Collected(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Collected {
    fn spawn_reader(&self, mut source: impl Read + Send + 'static) -> std::thread::JoinHandle<()> {
        let sink = self.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 64 * 1024];
            // A pty master reports EIO once the last slave is closed: that is its EOF.
            while let Ok(n) = source.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.0.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    /// Waits (under the hang guard) until the output contains `needle`.
    #[track_caller]
    pub fn wait_for(&self, needle: &str) {
        let started = Instant::now();
        while !self.text().contains(needle) {
            assert!(
                started.elapsed() < HANG_GUARD,
                "never saw {needle:?}; got {:?}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A process under test that is still running.
pub struct Running {
    child: std::process::Child,
    pub stdout: Collected,
    pub stderr: Collected,
    readers: Vec<std::thread::JoinHandle<()>>,
    terminal: Option<pty_process::blocking::Pty>,
    /// The terminal's slave side, where its settings live.
    terminal_path: Option<PathBuf>,
    /// The read end of a stdout pipe nobody reads (a stalled reader).
    _stalled: Option<std::io::PipeReader>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `INT`, …) to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits (under the hang guard) until the process has a handler for signal `number`
    /// (read from `SigCgt` in /proc), so that a signal sent next is one it handles.
    pub fn wait_catching(&self, number: u32) {
        let started = Instant::now();
        loop {
            let status =
                std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
            let caught = status
                .lines()
                .find_map(|line| line.strip_prefix("SigCgt:"))
                .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
                .unwrap_or(0);
            if caught & (1 << (number - 1)) != 0 {
                return;
            }
            assert!(
                started.elapsed() < HANG_GUARD,
                "never caught signal {number}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Types into the terminal (terminal runs only).
    pub fn type_in(&self, bytes: &[u8]) {
        let mut pty = self.terminal.as_ref().expect("a terminal run");
        pty.write_all(bytes).expect("write to the terminal");
    }

    /// Resizes the terminal; the kernel sends SIGWINCH to its foreground process group.
    pub fn resize(&self, rows: u16, cols: u16) {
        self.terminal
            .as_ref()
            .expect("a terminal run")
            .resize(pty_process::Size::new(rows, cols))
            .expect("resize the terminal");
    }

    /// The terminal's local flags have canonical mode and echo on (not raw).
    pub fn terminal_is_cooked(&self) -> bool {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.terminal_path.as_ref().expect("a terminal run");
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)
            .expect("open the terminal's slave side");
        let termios = rustix::termios::tcgetattr(&slave).expect("tcgetattr");
        termios
            .local_modes
            .contains(rustix::termios::LocalModes::ICANON | rustix::termios::LocalModes::ECHO)
    }

    /// Waits for the exit (under the hang guard); returns the exit code.
    pub fn wait(&mut self) -> Option<i32> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                self.settle_readers();
                return status.code();
            }
            if started.elapsed() > HANG_GUARD {
                let _ = self.child.kill();
                panic!("hung for {HANG_GUARD:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Gives the pipe readers a moment to take what the process wrote before it ended, so
    /// that `stdout`/`stderr` read right after [`Running::wait`] are whole (a process it left
    /// behind may hold the pipes open: then this does not wait past two seconds).
    fn settle_readers(&self) {
        if self.terminal.is_some() {
            return;
        }
        let started = Instant::now();
        while self.readers.iter().any(|reader| !reader.is_finished())
            && started.elapsed() < Duration::from_secs(2)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the exit and for the output readers (pipe runs; a terminal's reader ends
    /// when the terminal is dropped).
    pub fn finish(mut self) -> Option<i32> {
        let code = self.wait();
        if self.terminal.is_none() {
            for reader in self.readers.drain(..) {
                reader.join().expect("reader");
            }
        }
        code
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cmd {
    fn command(&self) -> Command {
        let mut command = match self.stdin {
            // A closed fd 0 needs a shell to close it after fork.
            Input::Closed => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg("exec \"$@\" <&-")
                    .arg("sh")
                    .arg(&self.program);
                sh
            }
            _ => Command::new(&self.program),
        };
        command.args(&self.args);
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        for (name, value) in &self.env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        command
    }

    /// Starts the command with piped stdout and stderr (and stdin bytes, if given).
    pub fn spawn(self) -> Running {
        let mut command = self.command();
        command
            .stdin(match self.stdin {
                Input::Bytes(_) => Stdio::piped(),
                _ => Stdio::null(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn");
        if let Input::Bytes(bytes) = &self.stdin {
            let mut pipe = child.stdin.take().expect("piped stdin");
            let bytes = bytes.clone();
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        let stdout = Collected::default();
        let stderr = Collected::default();
        let readers = vec![
            stdout.spawn_reader(child.stdout.take().expect("stdout")),
            stderr.spawn_reader(child.stderr.take().expect("stderr")),
        ];
        Running {
            child,
            stdout,
            stderr,
            readers,
            terminal: None,
            terminal_path: None,
            _stalled: None,
        }
    }

    /// Starts the command with stdout a pipe that nobody reads (a stalled reader: once the
    /// pipe is full, every write to it blocks) and stderr piped as in [`Cmd::spawn`].
    pub fn spawn_with_stalled_stdout(self) -> Running {
        let mut command = self.command();
        let (stalled, writer) = std::io::pipe().expect("a pipe");
        command
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn");
        let stderr = Collected::default();
        let readers = vec![stderr.spawn_reader(child.stderr.take().expect("stderr"))];
        Running {
            child,
            stdout: Collected::default(),
            stderr,
            readers,
            terminal: None,
            terminal_path: None,
            _stalled: Some(stalled),
        }
    }

    /// Starts the command on a new pseudo-terminal of the given size (stdin, stdout and stderr
    /// all on it, as in an interactive shell); its output is collected as `stdout`.
    pub fn spawn_in_terminal(self, rows: u16, cols: u16) -> Running {
        let (pty, pts) = pty_process::blocking::open().expect("open a pty");
        pty.resize(pty_process::Size::new(rows, cols))
            .expect("size the pty");
        let mut command = pty_process::blocking::Command::new(&self.program).args(&self.args);
        if let Some(dir) = &self.current_dir {
            command = command.current_dir(dir);
        }
        for (name, value) in &self.env {
            command = match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        let child = command.spawn(pts).expect("spawn on the pty");
        let terminal_path = rustix::pty::ptsname(&pty, Vec::new())
            .ok()
            .map(|name| PathBuf::from(std::ffi::OsStr::from_bytes(name.as_bytes())));
        let reader = std::os::fd::AsFd::as_fd(&pty)
            .try_clone_to_owned()
            .expect("dup the pty");
        let stdout = Collected::default();
        let readers = vec![stdout.spawn_reader(std::fs::File::from(reader))];
        Running {
            child,
            stdout,
            stderr: Collected::default(),
            readers,
            terminal: Some(pty),
            terminal_path,
            _stalled: None,
        }
    }
}

/// A copy of a fixture workspace (`fixtures/workspaces/<name>`) at a path of its own, so its
/// id labels are this test's alone; `up` brings its dev container up with the reference CLI.
/// The container and the copy are removed on drop.
pub struct TestWorkspace {
    pub path: PathBuf,
    containers: std::sync::Mutex<Vec<String>>,
}

impl TestWorkspace {
    pub fn copy(fixture: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/workspaces")
            .join(fixture);
        let path = std::env::temp_dir().join(format!(
            "dcx-ws-{}-{}/{fixture}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let status = Command::new("cp")
            .arg("-r")
            .arg(&source)
            .arg(&path)
            .status()
            .expect("cp");
        assert!(status.success(), "copy {}", source.display());
        Self {
            path,
            containers: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().expect("UTF-8 temp path")
    }

    /// `devcontainer up` with the given extra arguments; returns the container id.
    pub fn up(&self, extra: &[&str]) -> String {
        require_daemon();
        let out = reference()
            .args(["up", "--workspace-folder", self.path_str()])
            .args(extra.iter().copied())
            .run();
        assert_eq!(
            out.code,
            Some(0),
            "devcontainer up failed: {}",
            out.stderr_text()
        );
        let text = out.stdout_text();
        let json: serde_json::Value =
            serde_json::from_str(text.trim().lines().last().unwrap_or(""))
                .unwrap_or_else(|e| panic!("devcontainer up printed {text:?}: {e}"));
        let id = json["containerId"]
            .as_str()
            .expect("containerId")
            .to_owned();
        self.containers.lock().unwrap().push(id.clone());
        id
    }
}

impl TestWorkspace {
    /// Removes the container `id` (one made for this workspace another way) on drop too.
    pub fn adopt(&self, id: &str) {
        if !id.is_empty() {
            self.containers.lock().unwrap().push(id.to_owned());
        }
    }
}

impl Drop for TestWorkspace {
    fn drop(&mut self) {
        for id in self.containers.lock().unwrap().iter() {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v", id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if let Some(parent) = self.path.parent() {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
}

/// A container run directly by crun from an unpacked test root filesystem (`busybox` or
/// `debian`), under a crun root private to this test run; deleted on drop.
pub struct CrunContainer {
    pub id: String,
    pub root: PathBuf,
}

/// The unpacked test root filesystem `name` (`busybox`, `debian`).
pub fn test_rootfs(name: &str) -> PathBuf {
    std::env::var_os("DCX_TEST_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/dcx/rootfs"))
        .join(name)
}

/// A copy of the unpacked test root filesystem `name` at `dest` (the test may change it).
pub fn copy_rootfs(name: &str, dest: &Path) {
    let copied = Command::new("cp")
        .arg("-a")
        .arg(test_rootfs(name))
        .arg(dest)
        .status()
        .expect("run cp");
    assert!(
        copied.success(),
        "cp -a of the {name} root filesystem failed"
    );
}

/// The crun state root of this test run.
pub fn crun_root() -> PathBuf {
    std::env::temp_dir().join(format!("dcx-it-crun-{}", std::process::id()))
}

impl CrunContainer {
    /// The dcx flags that select it (`--runtime crun --crun-root R --container-id ID`).
    pub fn selectors(&self) -> [&str; 6] {
        [
            "--runtime",
            "crun",
            "--crun-root",
            self.root_str(),
            "--container-id",
            &self.id,
        ]
    }

    pub fn start(rootfs: &str, annotations: &[&str]) -> Self {
        Self::start_in(crun_root(), rootfs, annotations)
    }

    /// Under another crun root (for tests that list every container of their root).
    pub fn start_in(root: PathBuf, rootfs: &str, annotations: &[&str]) -> Self {
        let rootfs_dir = test_rootfs(rootfs);
        assert!(
            rootfs_dir.join(".complete").exists(),
            "no unpacked {rootfs} root filesystem at {}; {SETUP_HINT}",
            rootfs_dir.display()
        );
        Self::start_from(root, &rootfs_dir, annotations)
    }

    /// From a root filesystem of the test's own (a copy it may change), under `root`.
    pub fn start_from(root: PathBuf, rootfs_dir: &Path, annotations: &[&str]) -> Self {
        Self::started(root, rootfs_dir, annotations, false)
    }

    /// From a copy of the test's own, mounted writable (the container may change it).
    pub fn start_writable(rootfs_dir: &Path) -> Self {
        Self::started(crun_root(), rootfs_dir, &[], true)
    }

    /// With its config changed as `fixtures/crun/run.sh` allows (`DCX_CRUN_CAPS_ADD`,
    /// `DCX_CRUN_SECCOMP_DENY`).
    pub fn start_configured(rootfs: &str, config: &[(&str, &str)]) -> Self {
        Self::started_with(crun_root(), &test_rootfs(rootfs), &[], false, config)
    }

    fn started(root: PathBuf, rootfs_dir: &Path, annotations: &[&str], writable: bool) -> Self {
        Self::started_with(root, rootfs_dir, annotations, writable, &[])
    }

    fn started_with(
        root: PathBuf,
        rootfs_dir: &Path,
        annotations: &[&str],
        writable: bool,
        config: &[(&str, &str)],
    ) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "dcx-it-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/crun/run.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(&root)
            .arg(&id)
            .arg(rootfs_dir)
            .args(annotations)
            .env("DCX_CRUN_WRITABLE", if writable { "1" } else { "0" })
            .envs(config.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run fixtures/crun/run.sh");
        let container = Self { id, root };
        assert!(
            out.status.success(),
            "crun run failed: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(container.bundle().join("crun.log")).unwrap_or_default()
        );
        container
    }

    fn bundle(&self) -> PathBuf {
        PathBuf::from(format!("{}-bundles/{}", self.root.display(), self.id))
    }

    pub fn root_str(&self) -> &str {
        self.root.to_str().expect("UTF-8 temp path")
    }

    /// Runs crun itself with these arguments after `--root R`; returns its stdout.
    pub fn crun(&self, args: &[&str]) -> String {
        let out = Command::new("crun")
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run crun");
        assert!(
            out.status.success(),
            "crun {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for CrunContainer {
    fn drop(&mut self) {
        let _ = Command::new("crun")
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "-f", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(self.bundle());
    }
}

/// A container under test on either runtime: the scenarios that must behave the same on
/// Docker and on crun take one of these.
pub trait Subject {
    /// `dcx exec <runtime and container flags> <args…>`.
    fn dcx(&self, args: &[&str]) -> Cmd;
    /// The same as a shell command line (for pipelines).
    fn dcx_line(&self, args: &[&str]) -> String {
        self.dcx(args).shell_line()
    }
    /// The command lines of the processes running in the container (`ps -o args`).
    fn processes(&self) -> Vec<String>;
    /// How many processes in the container run exactly this command line.
    fn count_running(&self, cmdline: &str) -> usize {
        self.processes().iter().filter(|p| *p == cmdline).count()
    }
    /// Waits (up to a minute) until a process with exactly this command line runs.
    fn wait_until_running(&self, cmdline: &str) {
        let started = std::time::Instant::now();
        while self.count_running(cmdline) == 0 {
            assert!(started.elapsed().as_secs() < 60, "{cmdline} never started");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Subject for TestContainer {
    fn dcx(&self, args: &[&str]) -> Cmd {
        TestContainer::dcx(self, args.iter().copied())
    }

    fn processes(&self) -> Vec<String> {
        parse_cmdlines(&docker(&["exec", &self.id, "sh", "-c", LIST_CMDLINES]))
    }
}

impl Subject for CrunContainer {
    fn dcx(&self, args: &[&str]) -> Cmd {
        dcx()
            .args(["exec", "--runtime", "crun", "--crun-root", self.root_str()])
            .args(["--container-id", &self.id])
            .args(args.iter().copied())
    }

    fn processes(&self) -> Vec<String> {
        parse_cmdlines(&self.crun(&["exec", &self.id, "sh", "-c", LIST_CMDLINES]))
    }
}

/// `stty size` under a 24x80 terminal with the size fixed at 33x101, `attempts` times: the
/// process must see the fixed size from its first instruction, every time.
pub fn assert_fixed_size_from_the_start(subject: &dyn Subject, attempts: usize) {
    for attempt in 0..attempts {
        let mut run = subject
            .dcx(&[
                "--terminal-rows",
                "33",
                "--terminal-columns",
                "101",
                "stty",
                "size",
            ])
            .spawn_in_terminal(24, 80);
        assert_eq!(run.wait(), Some(0), "attempt {attempt}");
        run.stdout.wait_for("\n");
        assert_eq!(run.stdout.text().trim(), "33 101", "attempt {attempt}");
    }
}

/// Prints every process's command line, one a line (works with busybox and coreutils).
const LIST_CMDLINES: &str =
    r#"for f in /proc/[0-9]*/cmdline; do tr '\000' ' ' < "$f" 2>/dev/null; echo; done"#;

fn parse_cmdlines(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.trim().to_owned())
        .filter(|line| !line.is_empty())
        .collect()
}

/// A relay in front of the Docker daemon's socket that counts what crosses it: connections,
/// HTTP requests (method and path, in order) and round trips. A round trip is a connection or
/// a request made while nothing else was on its way to the daemon and back (no request waiting
/// for the first byte of its answer): requests pipelined or sent side by side, a connection
/// opened while a request waits, and connections opened one right after the other (nothing
/// sent or answered between them: dialed side by side) count once, as they cost one wait on a
/// slow link. After a request that takes the connection over (an `Upgrade`, as exec
/// start does), the bytes are relayed without being read.
///
/// It listens on a unix socket ([`CountingProxy::unix`]: an engine dcx takes for a local one)
/// or on a TCP port of the loopback ([`CountingProxy::tcp`]: a remote one to dcx, behind a
/// link that holds what the client sends [`CountingProxy::LINK`] before the daemon gets it, so
/// that requests sent side by side are seen side by side however the machine's load delays
/// their writes, as on a real remote link, and not as one answered before the next went out).
pub struct CountingProxy {
    /// `unix://…` or `tcp://…`, for `DOCKER_HOST`.
    pub host: String,
    seen: std::sync::Arc<std::sync::Mutex<Traffic>>,
    _dir: tempfile::TempDir,
}

/// What a [`CountingProxy`] has seen.
#[derive(Default, Clone)]
pub struct Traffic {
    pub connections: usize,
    /// `METHOD PATH` of each request, in the order they came.
    pub requests: Vec<String>,
    pub round_trips: usize,
    /// Per connection: whether a request on it waits for the first byte of its answer.
    waiting: Vec<bool>,
    /// Whether the last thing seen was a connection being opened.
    dialing: bool,
    /// Each connection and request, with the round trip it was part of.
    log: Vec<(usize, String)>,
}

impl std::fmt::Debug for Traffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} connections, {} requests, {} round trips:",
            self.connections,
            self.requests.len(),
            self.round_trips
        )?;
        for (mark, what) in &self.log {
            writeln!(f, "  {mark}: {what}")?;
        }
        Ok(())
    }
}

impl Traffic {
    /// The requests whose `METHOD PATH` contains `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.requests.iter().filter(|r| r.contains(needle)).count()
    }

    /// How many round trips the requests whose `METHOD PATH` contains `needle` took.
    pub fn round_trips_of(&self, needle: &str) -> usize {
        let mut marks: Vec<usize> = self
            .log
            .iter()
            .filter(|(_, what)| what.contains(needle))
            .map(|(mark, _)| *mark)
            .collect();
        marks.dedup();
        marks.len()
    }

    fn waits(&self) -> bool {
        self.waiting.iter().any(|waiting| *waiting)
    }

    fn connected(&mut self) -> usize {
        if !self.waits() && !self.dialing {
            self.round_trips += 1;
        }
        self.dialing = true;
        self.connections += 1;
        self.log.push((self.round_trips, "(connect)".to_owned()));
        self.waiting.push(false);
        self.waiting.len() - 1
    }

    fn requested(&mut self, index: usize, request: String) {
        if !self.waits() {
            self.round_trips += 1;
        }
        self.dialing = false;
        self.log.push((self.round_trips, request.clone()));
        self.requests.push(request);
        self.waiting[index] = true;
    }

    fn answered(&mut self, index: usize) {
        self.dialing = false;
        self.waiting[index] = false;
    }
}

impl CountingProxy {
    const DAEMON: &str = "/var/run/docker.sock";
    /// The TCP proxy's one-way delay towards the daemon.
    const LINK: std::time::Duration = std::time::Duration::from_millis(20);

    pub fn unix() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let proxy = Self {
            host: format!("unix://{}", path.display()),
            seen: std::sync::Arc::default(),
            _dir: dir,
        };
        let seen = proxy.seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let back = client.try_clone().unwrap();
                Self::relay(&seen, client, back, std::time::Duration::ZERO);
            }
        });
        proxy
    }

    pub fn tcp() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = Self {
            host: format!("tcp://{}", listener.local_addr().unwrap()),
            seen: std::sync::Arc::default(),
            _dir: tempfile::tempdir().unwrap(),
        };
        let seen = proxy.seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                client.set_nodelay(true).unwrap();
                let back = client.try_clone().unwrap();
                Self::relay(&seen, client, back, Self::LINK);
            }
        });
        proxy
    }

    /// What it has seen so far, and a fresh start.
    pub fn take(&self) -> Traffic {
        let mut seen = self.seen.lock().unwrap();
        let waiting = seen.waiting.clone();
        let taken = std::mem::take(&mut *seen);
        seen.waiting = waiting;
        taken
    }

    fn relay(
        seen: &std::sync::Arc<std::sync::Mutex<Traffic>>,
        mut from_client: impl Read + Send + 'static,
        mut to_client: impl ClientEnd + 'static,
        link: std::time::Duration,
    ) {
        let daemon = std::os::unix::net::UnixStream::connect(Self::DAEMON).unwrap();
        let mut to_daemon = daemon.try_clone().unwrap();
        let mut from_daemon = daemon;
        let index = seen.lock().unwrap().connected();
        let up = seen.clone();
        std::thread::spawn(move || {
            let mut parser = RequestParser::default();
            let mut buffer = vec![0; 64 * 1024];
            loop {
                let n = match from_client.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                // Counted before it is passed on, so the answer cannot come first.
                for request in parser.feed(&buffer[..n]) {
                    up.lock().unwrap().requested(index, request);
                }
                std::thread::sleep(link);
                if to_daemon.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
            up.lock().unwrap().waiting[index] = false;
            let _ = to_daemon.shutdown(std::net::Shutdown::Write);
        });
        let down = seen.clone();
        std::thread::spawn(move || {
            let mut buffer = vec![0; 64 * 1024];
            loop {
                let n = match from_daemon.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                down.lock().unwrap().answered(index);
                if to_client.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
            down.lock().unwrap().waiting[index] = false;
            // The daemon's end of a hijacked stream: the client's reader sees EOF, even while
            // the client still holds its own writing half open (an exec's stdin kept open).
            to_client.close_write();
        });
    }
}

/// The proxy's writing half towards a client: closed on its own when the daemon's side ends.
trait ClientEnd: Write + Send {
    fn close_write(&self);
}

impl ClientEnd for std::os::unix::net::UnixStream {
    fn close_write(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

impl ClientEnd for std::net::TcpStream {
    fn close_write(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

/// Reads HTTP/1.1 requests out of a client's byte stream as it comes: heads, then bodies by
/// `Content-Length` or chunks; after a request that upgrades the connection, nothing more.
#[derive(Default)]
struct RequestParser {
    pending: Vec<u8>,
    state: ParseState,
}

#[derive(Default)]
enum ParseState {
    #[default]
    Head,
    Body(usize),
    /// A chunked body: waiting for a chunk's size line, or inside a chunk (its bytes and CRLF).
    ChunkSize,
    Chunk(usize),
    /// The trailer after the last chunk.
    Trailer,
    Raw,
}

impl RequestParser {
    fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut found = Vec::new();
        if matches!(self.state, ParseState::Raw) {
            return found;
        }
        self.pending.extend_from_slice(bytes);
        loop {
            match self.state {
                ParseState::Raw => {
                    self.pending.clear();
                    return found;
                }
                ParseState::Head => {
                    let Some(end) = find(&self.pending, b"\r\n\r\n") else {
                        return found;
                    };
                    let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
                    self.pending.drain(..end + 4);
                    let mut lines = head.split("\r\n");
                    let first = lines.next().unwrap_or_default();
                    let mut words = first.split(' ');
                    let method = words.next().unwrap_or_default();
                    let path = words.next().unwrap_or_default();
                    found.push(format!("{method} {path}"));
                    let (mut length, mut chunked, mut upgrade) = (0, false, false);
                    for line in lines {
                        let Some((name, value)) = line.split_once(':') else {
                            continue;
                        };
                        let (name, value) = (name.trim().to_lowercase(), value.trim());
                        match name.as_str() {
                            "content-length" => length = value.parse().unwrap_or(0),
                            "transfer-encoding" => chunked = value.contains("chunked"),
                            "upgrade" => upgrade = true,
                            _ => {}
                        }
                    }
                    self.state = if upgrade {
                        ParseState::Raw
                    } else if chunked {
                        ParseState::ChunkSize
                    } else {
                        ParseState::Body(length)
                    };
                }
                ParseState::Body(length) => {
                    let take = length.min(self.pending.len());
                    self.pending.drain(..take);
                    self.state = if take == length {
                        ParseState::Head
                    } else {
                        ParseState::Body(length - take)
                    };
                    if take < length {
                        return found;
                    }
                }
                ParseState::ChunkSize => {
                    let Some(end) = find(&self.pending, b"\r\n") else {
                        return found;
                    };
                    let line = String::from_utf8_lossy(&self.pending[..end]).into_owned();
                    self.pending.drain(..end + 2);
                    let size =
                        usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                            .unwrap_or(0);
                    self.state = if size == 0 {
                        ParseState::Trailer
                    } else {
                        ParseState::Chunk(size + 2)
                    };
                }
                ParseState::Chunk(left) => {
                    let take = left.min(self.pending.len());
                    self.pending.drain(..take);
                    if take < left {
                        self.state = ParseState::Chunk(left - take);
                        return found;
                    }
                    self.state = ParseState::ChunkSize;
                }
                ParseState::Trailer => {
                    let Some(end) = find(&self.pending, b"\r\n") else {
                        return found;
                    };
                    self.pending.drain(..end + 2);
                    if end == 0 {
                        self.state = ParseState::Head;
                    }
                }
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// A `dcx serve` on a socket of its own, for `dcx exec` through it (`DCX_SERVER`); its log is
/// collected, and it is stopped on drop.
pub struct TestServer {
    child: std::process::Child,
    pub socket: PathBuf,
    pub log: Collected,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let socket = dir.path().join("dcx.sock");
        Self::start_at(dir, socket)
    }

    /// Serving on `socket` (in `dir`, removed with the server).
    pub fn start_at(dir: tempfile::TempDir, socket: PathBuf) -> Self {
        require_daemon();
        let mut child = Command::new(env!("CARGO_BIN_EXE_dcx"))
            .args(["serve", "--socket"])
            .arg(&socket)
            .env("XDG_CACHE_HOME", test_cache_home())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dcx serve");
        let log = Collected::default();
        log.spawn_reader(child.stderr.take().expect("the server's stderr"));
        log.wait_for("listening on");
        Self {
            child,
            socket,
            log,
            _dir: dir,
        }
    }

    pub fn socket_str(&self) -> &str {
        self.socket.to_str().expect("UTF-8 temp path")
    }

    /// How many `dcx exec` runs it has served to their end (its log's `exec.attach ended`).
    pub fn attaches(&self) -> usize {
        self.log.text().matches("exec.attach ended").count()
    }

    /// Asserts that it has served `expected` runs to their end, giving its log's reader a
    /// moment to catch up with lines written before the last client ended.
    #[track_caller]
    pub fn assert_attaches(&self, expected: usize) {
        let started = Instant::now();
        while self.attaches() < expected && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(self.attaches(), expected, "{}", self.log.text());
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Cmd {
    /// Runs through `server` (`DCX_SERVER` set to its socket).
    pub fn via(self, server: &TestServer) -> Self {
        self.env("DCX_SERVER", server.socket_str())
    }
}

/// A [`Subject`] whose `dcx exec` runs go through a server: the scenarios written for a
/// subject run unchanged through the server path.
pub struct ViaServer<'a> {
    pub subject: &'a dyn Subject,
    pub server: &'a TestServer,
}

impl Subject for ViaServer<'_> {
    fn dcx(&self, args: &[&str]) -> Cmd {
        self.subject.dcx(args).via(self.server)
    }

    fn dcx_line(&self, args: &[&str]) -> String {
        format!(
            "DCX_SERVER='{}' {}",
            self.server.socket_str(),
            self.subject.dcx_line(args)
        )
    }

    fn processes(&self) -> Vec<String> {
        self.subject.processes()
    }
}
