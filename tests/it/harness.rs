//! The fluent test harness: [`dcx`] and [`reference`] build a command, [`Cmd::run`] runs it
//! with a hang guard and returns an [`Outcome`] to assert on; [`TestContainer`] starts a
//! container with a unique name and label and removes it on drop, a failing test included.
//! No daemon, image or reference CLI: the test fails, pointing at scripts/setup.sh.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
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
        require_daemon();
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "dcx-it-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let id = docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            "dcx.test=1",
            image,
            "sleep",
            "1000000",
        ])
        .trim()
        .to_owned();
        Self { id, name }
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
}

enum Input {
    Null,
    Bytes(Vec<u8>),
    Closed,
}

/// The dcx binary built by cargo for these tests.
pub fn dcx() -> Cmd {
    Cmd::new(PathBuf::from(env!("CARGO_BIN_EXE_dcx")))
}

/// The path of dcx's binary, for shell pipelines.
pub fn dcx_path() -> &'static str {
    env!("CARGO_BIN_EXE_dcx")
}

/// The reference CLI (`DCX_REFERENCE_CLI`, else where scripts/setup.sh installs it).
pub fn reference() -> Cmd {
    let path = std::env::var_os("DCX_REFERENCE_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from("/var/cache/dcx/reference/node_modules/.bin/devcontainer")
        });
    assert!(
        path.exists(),
        "the reference CLI is not at {}; {SETUP_HINT}",
        path.display()
    );
    Cmd::new(path)
}

impl Cmd {
    fn new(program: PathBuf) -> Self {
        Self {
            program,
            args: Vec::new(),
            env: Vec::new(),
            stdin: Input::Null,
        }
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
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
        let mut command = match self.stdin {
            // A closed fd 0 needs a shell to close it after fork.
            Input::Closed => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg("exec \"$@\" <&-")
                    .arg("sh")
                    .arg(&self.program)
                    .args(&self.args);
                sh
            }
            _ => {
                let mut direct = Command::new(&self.program);
                direct.args(&self.args);
                direct
            }
        };
        for (name, value) in &self.env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        command
            .stdin(match self.stdin {
                Input::Bytes(_) => Stdio::piped(),
                _ => Stdio::null(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {description}: {err}"));
        if let Input::Bytes(bytes) = self.stdin {
            let mut pipe = child.stdin.take().expect("piped stdin");
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        let stdout = drain(child.stdout.take().expect("piped stdout"));
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the child") {
                break status;
            }
            if started.elapsed() > HANG_GUARD {
                let _ = child.kill();
                panic!("{description} hung for {HANG_GUARD:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Outcome {
            description,
            code: status.code(),
            stdout: stdout.join().expect("stdout reader"),
            stderr: stderr.join().expect("stderr reader"),
        }
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
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
