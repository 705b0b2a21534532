//! The engine as a library, on the real engines: a target prepared once runs 20 commands
//! (outputs, exit codes, input, a terminal), and leaves no thread, no task and no signal
//! handler behind. Each case runs in a child test process of its own (this binary, one test,
//! one thread), so that other tests running in parallel cannot blur the counts.

use std::path::PathBuf;
use std::pin::Pin;
use std::process::Command as Process;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use dcx::engine::{Command, End, Engine, EngineSettings, ExecIo, ExitStatus, PrepareRequest};
use dcx::log::Log;
use tokio::io::AsyncWrite;

use crate::harness::{BUSYBOX, CrunContainer, TestContainer};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn take(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.0.lock().unwrap())).into_owned()
    }
}

impl AsyncWrite for Buffer {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Poll::Ready(Ok(bytes.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A line of `/proc/self/status`.
fn status_field(name: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix(name).map(|rest| rest.trim().to_owned()))
        .unwrap()
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Prepares once and runs 20 commands; checks that nothing is left behind.
fn twenty_commands(settings: EngineSettings, container_id: &str, with_tty: bool) {
    let threads_before = threads();
    let signals = || {
        ["SigCgt:", "SigIgn:", "SigBlk:"]
            .map(status_field)
            .join(" ")
    };
    let signals_before = signals();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let engine = Engine::connect(&settings, Log::discard()).await.unwrap();
        let mut request = PrepareRequest::new(std::env::temp_dir());
        request.container_id = Some(container_id.to_owned());
        request.remote_env = vec![("FROM_PREPARE".into(), "yes".into())];
        let prepared = engine.prepare(&request).await.unwrap();
        let (stdout, stderr) = (Buffer::default(), Buffer::default());
        for n in 0..20 {
            let io = |stdin: Option<&'static [u8]>| ExecIo {
                stdin: stdin.map(|bytes| Box::pin(bytes) as dcx::engine::Input),
                stdout: Box::pin(stdout.clone()),
                stderr: Box::pin(stderr.clone()),
                control: None,
                started: None,
            };
            let script = format!("echo out{n} $FROM_PREPARE; echo err{n} >&2; exit {n}");
            let finished = engine
                .run(&prepared, &Command::new(["sh", "-c", &script]), io(None))
                .await
                .unwrap();
            assert_eq!(finished.status, ExitStatus::Code(n), "run {n}");
            assert_eq!(finished.end, End::Exited);
            assert_eq!(stdout.take(), format!("out{n} yes\n"));
            assert_eq!(stderr.take(), format!("err{n}\n"));
            if n % 5 == 0 {
                let finished = engine
                    .run(&prepared, &Command::new(["cat"]), io(Some(b"in\0put")))
                    .await
                    .unwrap();
                assert_eq!(finished.status, ExitStatus::Code(0));
                assert_eq!(stdout.take(), "in\0put");
            }
        }
        if with_tty {
            let command = Command {
                tty: true,
                ..Command::new(["sh", "-c", "[ -t 1 ] && echo terminal"])
            };
            let io = ExecIo {
                stdin: None,
                stdout: Box::pin(stdout.clone()),
                stderr: Box::pin(stderr.clone()),
                control: None,
                started: None,
            };
            let finished = engine.run(&prepared, &command, io).await.unwrap();
            assert_eq!(finished.status, ExitStatus::Code(0));
            assert_eq!(stdout.take(), "terminal\r\n");
        }
        drop(engine);
        // Let connections the client kept close.
        for _ in 0..100 {
            if tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
                == 0
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            0,
            "tasks left behind"
        );
    });
    drop(runtime);
    assert_eq!(threads(), threads_before, "threads left behind");
    assert_eq!(signals(), signals_before, "signal dispositions changed");
}

/// Runs one `#[ignore]`d case below in a child process of this binary, alone.
fn in_child(name: &str) {
    let out = Process::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{name}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_target_prepared_once_runs_twenty_commands_on_docker() {
    in_child("engine::child_docker");
}

#[test]
fn a_target_prepared_once_runs_twenty_commands_on_crun() {
    in_child("engine::child_crun");
}

#[test]
#[ignore = "run by a_target_prepared_once_runs_twenty_commands_on_docker in a process of its own"]
fn child_docker() {
    let container = TestContainer::start(BUSYBOX);
    let settings = EngineSettings::Docker {
        env: dcx::engine::DockerEnv::from_vars(|name| std::env::var(name).ok()),
        docker_path: None,
    };
    twenty_commands(settings, &container.id, true);
}

#[test]
#[ignore = "run by a_target_prepared_once_runs_twenty_commands_on_crun in a process of its own"]
fn child_crun() {
    let container = CrunContainer::start("busybox", &[]);
    let settings = EngineSettings::Crun {
        root: Some(PathBuf::from(container.root_str())),
        path: None,
        direct: true,
    };
    twenty_commands(settings, &container.id, true);
}
