//! The in-container helper against the plain engine exec, through `dcx serve` on real
//! containers: the same commands give the same answers (user, groups, capabilities,
//! no_new_privs, seccomp, cwd, env, exit codes, stdin, start failures) in several container
//! kinds, on Docker and crun; where it cannot run (a read-only root) the session says so and
//! uses the plain exec; faults (a killed helper, a restarted container, a killed server) leave
//! nothing running and the next command works; background children never stall the next one.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::agent::{Agent, Client};
use crate::harness::{BUSYBOX, CrunContainer, DEBIAN, TestContainer, copy_rootfs};

/// What a command shows of the process it runs in (its parent's pid aside, the one difference).
const IDENTITY: &str = "id; grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Umask)' /proc/self/status; pwd; env | grep -v -E '^(PPID|_)=' | sort; ulimit -a 2>/dev/null | sort; cat /proc/self/cgroup";

/// The same container through two sessions: the helper's and the plain exec's.
struct Pair<'a> {
    client: Client,
    helper: String,
    plain: String,
    _agent: &'a Agent,
}

impl<'a> Pair<'a> {
    fn new(agent: &'a Agent, create: Value) -> Self {
        let mut client = agent.client();
        let mut with = |helper: bool| {
            let mut params = create.clone();
            params["helper"] = json!(helper);
            client.ok("session.create", params)
        };
        let helper = with(true);
        let plain = with(false);
        assert_eq!(helper["transport"], "helper", "{helper}");
        assert_eq!(plain["transport"], "exec", "{plain}");
        let id = |created: &Value| created["session_id"].as_str().unwrap().to_owned();
        Self {
            helper: id(&helper),
            plain: id(&plain),
            client,
            _agent: agent,
        }
    }

    /// Runs `params` in both sessions; the two envelopes (timing aside).
    fn both(&mut self, params: Value) -> (Value, Value) {
        let mut run = |session: &str| {
            let mut params = params.clone();
            params["session_id"] = json!(session);
            let mut answer = self.client.ok("exec.run", params);
            let map = answer.as_object_mut().unwrap();
            map.remove("duration_ms");
            map.remove("exec_id");
            answer
        };
        let helper = run(&self.helper.clone());
        let plain = run(&self.plain.clone());
        (helper, plain)
    }

    fn same(&mut self, params: Value) -> Value {
        let (helper, plain) = self.both(params.clone());
        assert_eq!(helper, plain, "{params}");
        helper
    }
}

/// The parity cases, in one container.
fn parity(agent: &Agent, create: Value, shell: bool) {
    let mut pair = Pair::new(agent, create);
    let shown = pair.same(json!({"command": IDENTITY}));
    assert_eq!(shown["exit_code"], 0, "{shown}");
    pair.same(json!({"argv": ["sh", "-c", "echo out; echo err >&2; exit 3"]}));
    pair.same(json!({"argv": ["sh", "-c", "kill -TERM $$"]}));
    pair.same(json!({"argv": ["sh", "-c", "kill -KILL $$"]}));
    pair.same(json!({"argv": ["sh", "-c", "exit 137"]}));
    pair.same(json!({"argv": ["cat"], "stdin": "in\nput"}));
    pair.same(json!({"argv": ["wc", "-c"], "stdin_b64": "AAEC/w=="}));
    pair.same(json!({"argv": ["pwd"], "cwd": "/"}));
    pair.same(json!({"argv": ["sh", "-c", "echo $A $B"], "env": {"A": "1", "B": "two words"}}));
    // Start failures: nothing ran; the engine's own words and code.
    pair.same(json!({"argv": ["no-such-program"]}));
    pair.same(json!({"argv": ["/etc/passwd"]}));
    pair.same(json!({"argv": ["true"], "cwd": "/no/such/dir"}));
    if shell {
        // The session's state: `cd` and `export` carry over through either.
        pair.same(json!({"command": "cd /tmp && export KEPT=1"}));
        pair.same(json!({"command": "pwd; echo $KEPT"}));
    }
}

#[test]
fn the_helper_answers_as_the_engine_exec_does_on_docker() {
    let agent = Agent::start(&[]);
    let kinds: [(&str, &[&str]); 4] = [
        (DEBIAN, &[]),
        (
            DEBIAN,
            &[
                "--security-opt",
                "no-new-privileges",
                "--group-add",
                "4242",
                "--cap-add",
                "SYS_PTRACE",
                "--cap-drop",
                "NET_RAW",
            ],
        ),
        (DEBIAN, &["--cap-drop", "ALL"]),
        (BUSYBOX, &["--user", "1000:1000"]),
    ];
    for (image, options) in kinds {
        let container = TestContainer::start_with(image, options);
        parity(&agent, json!({"container_id": container.id}), true);
        // Another user of the same container gets a helper of its own.
        if image == DEBIAN {
            parity(
                &agent,
                json!({"container_id": container.id, "user": "nobody", "cwd": "/"}),
                true,
            );
        }
    }
}

#[test]
fn the_helper_answers_as_the_engine_exec_does_on_crun() {
    let agent = Agent::start(&[]);
    // A root filesystem of its own, writable: the helper is placed in it.
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    copy_rootfs("busybox", &rootfs);
    let container = CrunContainer::start_writable(&rootfs);
    let create =
        json!({"container_id": container.id, "runtime": "crun", "crun_root": container.root_str()});
    parity(&agent, create.clone(), true);
    // The shared test root filesystems are read-only: there, plain crun execs.
    let shared = CrunContainer::start("busybox", &[]);
    let created = agent.ok(
        "session.create",
        json!({"container_id": shared.id, "runtime": "crun", "crun_root": shared.root_str()}),
    );
    assert_eq!(created["transport"], "exec", "{created}");
}

#[test]
fn where_it_cannot_run_the_session_says_so_and_uses_the_engine_exec() {
    let agent = Agent::start(&[]);
    let mut client = agent.client();
    let read_only = TestContainer::start_with(BUSYBOX, &["--read-only"]);
    let created = client.ok("session.create", json!({"container_id": read_only.id}));
    assert_eq!(created["transport"], "exec", "{created}");
    let info = client.ok("session.info", json!({"session_id": created["session_id"]}));
    assert!(
        info["transport_note"]
            .as_str()
            .unwrap()
            .starts_with("cannot place the helper"),
        "{info}"
    );
    let done = client.ok(
        "exec.run",
        json!({"session_id": created["session_id"], "argv": ["echo", "hi"]}),
    );
    assert_eq!(done["stdout"], "hi\n");
    // A noexec /tmp does not matter: the helper is placed at the root.
    let noexec = TestContainer::start_with(BUSYBOX, &["--tmpfs", "/tmp:noexec"]);
    let created = client.ok("session.create", json!({"container_id": noexec.id}));
    assert_eq!(created["transport"], "helper", "{created}");
    // Off on request, or for the whole server.
    let created = client.ok(
        "session.create",
        json!({"container_id": noexec.id, "helper": false}),
    );
    assert_eq!(created["transport"], "exec");
    let info = client.ok("session.info", json!({"session_id": created["session_id"]}));
    assert!(info.get("transport_note").is_none(), "{info}");
    let plain = Agent::start(&["--no-helper"]);
    let created = plain.ok("session.create", json!({"container_id": noexec.id}));
    assert_eq!(created["transport"], "exec");
}

/// The helper's pid in the container, found by its path.
fn helper_pids(container: &TestContainer) -> Vec<String> {
    container
        .sh("for p in /proc/[0-9]*; do case $(readlink $p/exe 2>/dev/null) in /.dcx-helper-*) echo ${p#/proc/};; esac; done")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_killed_helper_or_restarted_container_ends_its_commands_and_the_next_one_works() {
    let agent = Agent::start(&[]);
    let container = TestContainer::start(BUSYBOX);
    let mut client = agent.client();
    let session = client.ok(
        "session.create",
        json!({"container_id": container.id, "concurrent": true}),
    )["session_id"]
        .clone();
    let running = client.ok(
        "exec.start",
        json!({"session_id": session, "argv": ["sleep", "300"]}),
    )["exec_id"]
        .clone();
    let pids = helper_pids(&container);
    assert_eq!(pids.len(), 1, "{pids:?}");
    container.sh(&format!("kill -9 {}", pids[0]));
    let ended = client.ok("exec.read", json!({"exec_id": running, "wait_ms": 10_000}));
    assert_eq!(
        (ended["state"].clone(), ended["signal"].clone()),
        (json!("signaled"), json!("KILL")),
        "{ended}"
    );
    let done = client.ok(
        "exec.run",
        json!({"session_id": session, "argv": ["echo", "again"]}),
    );
    assert_eq!(done["stdout"], "again\n");
    assert_eq!(helper_pids(&container).len(), 1, "started again");
    // A restart mid-command: the command ends as killed; the next one runs.
    let running = client.ok(
        "exec.start",
        json!({"session_id": session, "argv": ["sleep", "300"]}),
    )["exec_id"]
        .clone();
    crate::harness::docker(&["restart", "-t", "0", &container.id]);
    let ended = client.ok("exec.read", json!({"exec_id": running, "wait_ms": 20_000}));
    assert_eq!(ended["signal"], "KILL", "{ended}");
    let done = client.ok(
        "exec.run",
        json!({"session_id": session, "argv": ["echo", "back"]}),
    );
    assert_eq!(done["stdout"], "back\n", "{done}");
}

#[test]
fn a_killed_server_leaves_no_helper_and_no_command() {
    let mut agent = Agent::start(&[]);
    let container = TestContainer::start(BUSYBOX);
    let session =
        agent.ok("session.create", json!({"container_id": container.id}))["session_id"].clone();
    agent.ok(
        "exec.start",
        json!({"session_id": session, "argv": ["sh", "-c", "sleep 310 & sleep 311"]}),
    );
    wait_until(Duration::from_secs(10), "the command runs", || {
        container
            .sh("ps -o args | grep -c '^sleep 31[01]' || true")
            .trim()
            == "2"
    });
    agent.server.as_ref().unwrap().signal("KILL");
    agent.server.take().unwrap().wait();
    wait_until(Duration::from_secs(5), "helper and commands gone", || {
        helper_pids(&container).is_empty()
            && container
                .sh("ps -o args | grep -c '^sleep 31[01]' || true")
                .trim()
                == "0"
    });
}

#[test]
fn a_background_child_keeps_writing_and_never_holds_the_next_command() {
    let agent = Agent::start(&[]);
    let container = TestContainer::start(BUSYBOX);
    let mut client = agent.client();
    let session =
        client.ok("session.create", json!({"container_id": container.id}))["session_id"].clone();
    let started = Instant::now();
    let done = client.ok(
        "exec.run",
        json!({"session_id": session, "command": "(i=0; while :; do i=$((i+1)); echo $i > /tmp/bg-alive; echo tick; sleep 0.1; done) & echo started"}),
    );
    assert_eq!(done["exit_code"], 0, "{done}");
    // The child's first tick may come before the parent's line.
    assert!(
        done["stdout"]
            .as_str()
            .unwrap()
            .lines()
            .any(|line| line == "started"),
        "{done}"
    );
    // Not held by the child (bounds far above the drain limit, far below a hold).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    client.ok("exec.run", json!({"session_id": session, "argv": ["true"]}));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_secs(60));
    // Still alive and writing to its output (no SIGPIPE once nobody reads it).
    let first = container.sh("cat /tmp/bg-alive");
    std::thread::sleep(Duration::from_millis(500));
    assert_ne!(
        container.sh("cat /tmp/bg-alive"),
        first,
        "the background loop died"
    );
}

#[test]
fn two_hundred_commands_at_once_through_one_helper() {
    let agent = Agent::start(&["--max-execs", "256"]);
    let container = TestContainer::start(BUSYBOX);
    let session = agent.ok(
        "session.create",
        json!({"container_id": container.id, "concurrent": true}),
    )["session_id"]
        .clone();
    let threads: Vec<_> = (0..200)
        .map(|n| {
            let mut client = agent.client();
            let session = session.clone();
            std::thread::spawn(move || {
                let done = client.ok(
                    "exec.run",
                    json!({"session_id": session, "argv": ["sh", "-c", format!("echo {n}; exit {}", n % 7)]}),
                );
                assert_eq!(done["stdout"], format!("{n}\n"), "{done}");
                assert_eq!(done["exit_code"], n % 7, "{done}");
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(helper_pids(&container).len(), 1);
}

#[test]
fn output_and_input_of_any_size_pass_whole() {
    let agent = Agent::start(&[]);
    let container = TestContainer::start(BUSYBOX);
    let mut client = agent.client();
    let session =
        client.ok("session.create", json!({"container_id": container.id}))["session_id"].clone();
    // 100 MB streamed out.
    let id = client.send(
        "exec.stream",
        json!({"session_id": session, "command": "head -c 100000000 /dev/zero"}),
    );
    let mut end = Value::Null;
    while end.is_null() {
        let event = client.read();
        if event["id"] == id && event["event"] == "end" {
            end = event;
        }
    }
    assert_eq!(end["stdout_bytes"], 100_000_000u64, "{end}");
    // 32 MiB in and back, checked by its sum.
    let data: Vec<u8> = (0..32 * 1024 * 1024u32).map(|n| (n % 251) as u8).collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
    let done = client.ok(
        "exec.run",
        json!({"session_id": session, "command": "sha256sum | cut -c1-64", "stdin_b64": b64}),
    );
    use sha2::Digest;
    let expected: String = sha2::Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(done["stdout"], format!("{expected}\n"));
}

/// The engine's warm path through the library, beside the plain one, on one container.
mod engine {
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};
    use std::time::Duration;

    use dcx::engine::{
        Command, Control, Engine, EngineSettings, ExecIo, ExitStatus, PrepareRequest, TermSize,
    };
    use dcx::log::Log;
    use sha2::Digest;
    use tokio::io::AsyncWrite;
    use tokio::sync::mpsc;

    use crate::harness::{BUSYBOX, TestContainer};

    /// A sink that keeps the text, and the sha256 and count of everything.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<(Vec<u8>, sha2::Sha256, u64)>>);

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap().0).into_owned()
        }
        fn summed(&self) -> (String, u64) {
            let inner = self.0.lock().unwrap();
            let digest = inner.1.clone().finalize();
            (digest.iter().map(|b| format!("{b:02x}")).collect(), inner.2)
        }
    }

    impl AsyncWrite for Sink {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bytes: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let mut inner = self.0.lock().unwrap();
            if inner.0.len() < 64 * 1024 {
                inner.0.extend_from_slice(bytes);
            }
            inner.1.update(bytes);
            inner.2 += bytes.len() as u64;
            Poll::Ready(Ok(bytes.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Runs `command`; its status and output sink, after the controls (each after `pause`).
    async fn run(
        engine: &Engine,
        prepared: &dcx::engine::Prepared,
        command: Command,
        stdin: Option<dcx::engine::Input>,
        controls: Vec<(Duration, Control)>,
    ) -> (ExitStatus, Sink) {
        let out = Sink::default();
        let (tx, rx) = mpsc::channel(8);
        let io = ExecIo {
            stdin,
            stdout: Box::pin(out.clone()),
            stderr: Box::pin(out.clone()),
            control: Some(rx),
            started: None,
        };
        tokio::spawn(async move {
            for (pause, control) in controls {
                tokio::time::sleep(pause).await;
                let _ = tx.send(control).await;
            }
            // Held until the run ends.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        let finished = engine.run(prepared, &command, io).await.unwrap();
        (finished.status, out)
    }

    /// How a command that may not start ends: its status or the engine's error, and its output.
    async fn unstarted(
        engine: &Engine,
        prepared: &dcx::engine::Prepared,
        command: &Command,
    ) -> (Result<ExitStatus, String>, String) {
        let out = Sink::default();
        let io = ExecIo {
            stdin: None,
            stdout: Box::pin(out.clone()),
            stderr: Box::pin(out.clone()),
            control: None,
            started: None,
        };
        let done = engine.run(prepared, command, io).await;
        (
            done.map(|f| f.status).map_err(|e| e.to_string()),
            out.text(),
        )
    }

    /// A stdin of `size` bytes of a repeating pattern, and its sha256.
    fn pattern(size: u64) -> (dcx::engine::Input, String) {
        let block: Vec<u8> = (0..65536u32).map(|n| (n * 7 % 251) as u8).collect();
        let mut sum = sha2::Sha256::new();
        for _ in 0..size / block.len() as u64 {
            sum.update(&block);
        }
        let blocks = size / block.len() as u64;
        let stream = futures_util::stream::iter(
            (0..blocks).map(move |_| Ok::<_, std::io::Error>(bytes::Bytes::from(block.clone()))),
        );
        let reader = tokio_util::io::StreamReader::new(stream);
        let digest: String = sum.finalize().iter().map(|b| format!("{b:02x}")).collect();
        (Box::pin(reader), digest)
    }

    #[test]
    fn a_terminal_signals_and_a_gibibyte_through_the_helper_as_by_the_engine() {
        let container = TestContainer::start(BUSYBOX);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let settings = EngineSettings::Docker {
                env: dcx::engine::DockerEnv::from_vars(|name| std::env::var(name).ok()),
                docker_path: None,
            };
            let plain = Engine::connect(&settings, Log::discard()).await.unwrap();
            let mut request = PrepareRequest::new(std::env::temp_dir());
            request.container_id = Some(container.id.clone());
            request.default_user_env_probe = dcx::env::ProbeMode::None;
            let prepared = plain.prepare(&request).await.unwrap();
            let warm = plain.warm(&prepared).await.unwrap();
            for (engine, name) in [(&warm, "helper"), (&plain, "exec")] {
                // The terminal's size from the first instruction, then a resize.
                let command = Command {
                    tty: true,
                    size: Some(TermSize {
                        rows: 33,
                        cols: 101,
                    }),
                    ..Command::new(["sh", "-c", "stty size; sleep 1; stty size"])
                };
                let resize = Control::Resize(TermSize {
                    rows: 40,
                    cols: 120,
                });
                let (status, out) = run(
                    engine,
                    &prepared,
                    command,
                    None,
                    vec![(Duration::from_millis(400), resize)],
                )
                .await;
                assert_eq!(status, ExitStatus::Code(0), "{name}");
                assert_eq!(out.text(), "33 101\r\n40 120\r\n", "{name}");
                // A signal reaches the whole group: the background sleep too.
                let command = Command::new(["sh", "-c", "sleep 321 & sleep 322"]);
                let (status, _) = run(
                    engine,
                    &prepared,
                    command,
                    None,
                    vec![(Duration::from_millis(500), Control::Signal(libc::SIGTERM))],
                )
                .await;
                assert_eq!(status.exit_code(), 143, "{name}: {status:?}");
                assert_eq!(
                    container
                        .sh("ps -o args | grep -c '^sleep 32[12]' || true")
                        .trim(),
                    "0",
                    "{name}"
                );
                // What cannot start: nothing ran, and the engine's own words and code.
                for command in [
                    Command::new(["no-such-program"]),
                    Command::new(["/etc/passwd"]),
                    Command {
                        cwd: Some("/no/such/dir".into()),
                        ..Command::new(["true"])
                    },
                ] {
                    let outcome = unstarted(engine, &prepared, &command).await;
                    let plain_outcome = unstarted(&plain, &prepared, &command).await;
                    assert_eq!(outcome, plain_outcome, "{name}: {:?}", command.argv);
                }
                // 1 GiB in and out, byte for byte.
                let (stdin, digest) = pattern(1 << 30);
                let (status, out) = run(
                    engine,
                    &prepared,
                    Command::new(["cat"]),
                    Some(stdin),
                    vec![],
                )
                .await;
                assert_eq!(status, ExitStatus::Code(0), "{name}");
                assert_eq!(out.summed(), (digest, 1 << 30), "{name}");
            }
        });
    }
}

#[test]
fn file_calls_run_as_the_session_s_user_with_the_kernel_s_times() {
    let agent = Agent::start(&[]);
    let container = TestContainer::start(DEBIAN);
    let mut client = agent.client();
    let created = client.ok(
        "session.create",
        json!({"container_id": container.id, "user": "nobody", "cwd": "/tmp"}),
    );
    assert_eq!(created["transport"], "helper", "{created}");
    let session = created["session_id"].clone();
    // Written 10 ms apart, the later one is newer 10 times out of 10 (whole-second times
    // would tie).
    for n in 0..10 {
        let older = format!("/tmp/older-{n}");
        let newer = format!("/tmp/newer-{n}");
        client.ok(
            "fs.write",
            json!({"session_id": session, "path": older, "data": "a"}),
        );
        std::thread::sleep(Duration::from_millis(10));
        client.ok(
            "fs.write",
            json!({"session_id": session, "path": newer, "data": "b"}),
        );
        let test = client.ok(
            "exec.run",
            json!({"session_id": session, "argv": ["test", newer, "-nt", older]}),
        );
        assert_eq!(test["exit_code"], 0, "round {n}: {test}");
    }
    // What the user may not: as `cat` would refuse it.
    let (code, message) = client.error(
        "fs.read",
        json!({"session_id": session, "path": "/etc/shadow"}),
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "permission_denied",
            "Cannot access /etc/shadow: Permission denied (as the session's user)."
        )
    );
    let (code, _) = client.error(
        "fs.write",
        json!({"session_id": session, "path": "/root/planted", "data": "x"}),
    );
    assert_eq!(code, "permission_denied");
    // A link planted to a file only root may read leads nowhere for the user.
    client.ok(
        "exec.run",
        json!({"session_id": session, "command": "ln -sf /etc/shadow /tmp/link"}),
    );
    let (code, _) = client.error(
        "fs.read",
        json!({"session_id": session, "path": "/tmp/link"}),
    );
    assert_eq!(code, "permission_denied");
    // What it writes is its own, with the default mode, and reads back.
    let written = client.ok(
        "fs.write",
        json!({"session_id": session, "path": "sub/dir/notes.txt", "data": "hello"}),
    );
    assert_eq!(
        (
            written["path"].clone(),
            written["mode"].clone(),
            written["size"].clone()
        ),
        (json!("/tmp/sub/dir/notes.txt"), json!("0644"), json!(5))
    );
    assert_eq!(
        container.sh("stat -c '%U %a' /tmp/sub/dir/notes.txt /tmp/sub"),
        "nobody 644\nnobody 755\n"
    );
    let read = client.ok(
        "fs.read",
        json!({"session_id": session, "path": "sub/dir/notes.txt", "offset": 1}),
    );
    assert_eq!(
        (read["data"].clone(), read["eof"].clone()),
        (json!("ello"), json!(true))
    );
    let listed = client.ok("fs.list", json!({"session_id": session, "path": "sub/dir"}));
    assert_eq!(listed["entries"][0]["name"], "notes.txt");
    // By plain engine exec, the file calls are the engine's (root's), as documented.
    let plain = client.ok(
        "session.create",
        json!({"container_id": container.id, "user": "nobody", "cwd": "/tmp", "helper": false}),
    );
    client.ok(
        "fs.read",
        json!({"session_id": plain["session_id"], "path": "/etc/shadow"}),
    );
}
