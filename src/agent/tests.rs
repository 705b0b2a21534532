//! The agent service tested through the transports' entry point, on the in-memory engine.
//!
//! Every request goes through [`super::methods::handle`], as a transport's does, with no daemon and
//! no socket: every method, every error code, limits, idempotent ids, cancel, timeout, truncation,
//! stdin, streams, files, shutdown and the idle sweep.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::engines::Connect;
use super::protocol::Request;
use super::service::{Limits, Service};
use crate::engine::{Engine, EngineError, EngineSettings};
use crate::log::Log;
use crate::runtime::Container;
use crate::runtime::memory::Memory;

/// Connects every session to a fresh in-memory engine holding `c1` (running, with a root
/// filesystem in `root`) and `stopped`; records every exec's argv.
struct Fake {
    root: std::path::PathBuf,
    started: Arc<Mutex<Vec<Vec<String>>>>,
}

#[async_trait]
impl Connect for Fake {
    async fn connect(&self, _: &EngineSettings, log: Log) -> Result<Engine, EngineError> {
        let mut memory = Memory::with_container("c1");
        memory.passwd =
            "root:x:0:0:root:/root:/bin/sh\nvscode:x:1000:1000::/home/vscode:/bin/sh\n".into();
        memory.containers[0].rootfs = Some(self.root.clone());
        memory.containers.push(Container {
            id: "stopped".into(),
            name: "stopped".into(),
            status: "exited".into(),
            ..Container::default()
        });
        memory.started = self.started.clone();
        Ok(Engine::with_runtime(Box::new(memory), log))
    }
}

struct Harness {
    service: Arc<Service>,
    started: Arc<Mutex<Vec<Vec<String>>>>,
    root: tempfile::TempDir,
}

fn limits() -> Limits {
    Limits {
        max_sessions: 2,
        max_execs: 2,
        idle_timeout: Duration::from_secs(60),
        max_timeout: Duration::from_secs(60),
    }
}

fn harness(limits: Limits) -> Harness {
    let root = tempfile::tempdir().unwrap();
    let started = Arc::new(Mutex::new(Vec::new()));
    let fake = Fake {
        root: root.path().to_path_buf(),
        started: started.clone(),
    };
    let service = Service::new(
        limits,
        Log::discard(),
        Log::discard(),
        std::env::temp_dir(),
        Box::new(fake),
        true,
    );
    Harness {
        service,
        started,
        root,
    }
}

impl Harness {
    /// The whole answer line of one request.
    async fn line(&self, method: &str, params: Value) -> Value {
        let (events, _) = mpsc::channel(64);
        let request = Request {
            id: json!(1),
            method: method.into(),
            params: params.as_object().cloned().unwrap_or_default(),
        };
        super::methods::handle(&self.service, request, &events).await
    }

    async fn ok(&self, method: &str, params: Value) -> Value {
        let answer = self.line(method, params).await;
        assert_eq!(answer["ok"], true, "{method}: {answer}");
        answer["data"].clone()
    }

    /// `(code, message)` of a failed request.
    async fn error(&self, method: &str, params: Value) -> (String, String) {
        let answer = self.line(method, params).await;
        assert_eq!(answer["ok"], false, "{method}: {answer}");
        let text = |key: &str| answer["error"][key].as_str().unwrap().to_owned();
        (text("code"), text("message"))
    }

    async fn session(&self, extra: Value) -> String {
        let mut params = json!({"container_id": "c1", "user": "vscode"});
        for (key, value) in extra.as_object().unwrap() {
            params[key] = value.clone();
        }
        self.ok("session.create", params).await["session_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

#[tokio::test]
async fn system_methods_and_unknown_ones() {
    let h = harness(limits());
    let pong = h.ok("system.ping", json!({})).await;
    assert_eq!(
        (pong["pong"].clone(), pong["version"].clone()),
        (json!(true), json!(env!("CARGO_PKG_VERSION")))
    );
    let id = h.session(json!({})).await;
    let stats = h.ok("system.stats", json!({})).await;
    assert_eq!(stats["sessions"], 1);
    assert_eq!(stats["running_execs"], 0);
    assert_eq!(stats["limits"]["max_execs"], 2);
    assert_eq!(stats["per_session"][0]["session_id"], id.as_str());
    // The in-memory engine's root is the host's view: no zombies there.
    assert_eq!(stats["per_session"][0]["container_zombies"], 0);
    assert_eq!(h.error("no.such", json!({})).await.0, "unknown_method");
    assert_eq!(
        h.error("system.ping", json!({"x": 1})).await,
        (
            "bad_request".into(),
            "unknown parameter `x` (this method takes nothing)".into()
        )
    );
}

#[tokio::test]
async fn sessions_are_created_listed_reset_and_destroyed() {
    let h = harness(limits());
    let created = h
        .ok(
            "session.create",
            json!({"container_id": "c1", "user": "vscode", "env": {"GREETING": "hi"}}),
        )
        .await;
    assert_eq!(created["container_id"], "c1");
    assert_eq!(created["user"], "vscode");
    assert_eq!(created["cwd"], "/home/vscode");
    assert_eq!(created["runtime"], "memory");
    let id = created["session_id"].as_str().unwrap();
    assert!(id.len() > 20, "{id}");
    // The in-memory engine names no architecture: no helper, and the session says why.
    assert_eq!(created["transport"], "exec");
    let info = h.ok("session.info", json!({"session_id": id})).await;
    assert_eq!(
        (info["transport"].clone(), info["transport_note"].clone()),
        (
            json!("exec"),
            json!("the engine does not say the container's architecture")
        )
    );
    let info = h.ok("session.info", json!({"session_id": id})).await;
    assert_eq!(
        (info["cwd"].clone(), info["concurrent"].clone()),
        (json!("/home/vscode"), json!(false))
    );
    let listed = h.ok("session.list", json!({})).await;
    assert_eq!(listed["sessions"][0]["session_id"], id);
    assert!(listed["sessions"][0].get("cwd").is_none());
    let reset = h.ok("session.reset", json!({"session_id": id})).await;
    assert_eq!(reset["cwd"], "/home/vscode");
    let destroyed = h.ok("session.destroy", json!({"session_id": id})).await;
    assert_eq!(destroyed["destroyed"], true);
    let (code, message) = h.error("session.info", json!({"session_id": id})).await;
    assert_eq!(
        (code.as_str(), message),
        ("no_such_session", format!("No such session: {id}"))
    );
}

#[tokio::test]
async fn session_create_errors_carry_their_codes() {
    let h = harness(Limits {
        max_sessions: 1,
        ..limits()
    });
    let cases = [
        (
            json!({"container_id": 3}),
            "bad_request",
            "`container_id` must be a string",
        ),
        (
            json!({"container_id": "c1", "colour": "red"}),
            "bad_request",
            "unknown parameter `colour` (this method takes `workspace_folder`, `container_id`, `id_labels`, `config`, `runtime`, `crun_root`, `crun_path`, `docker_path`, `user`, `env`, `cwd`, `idle_timeout_s`, `concurrent`, `helper`)",
        ),
        (
            json!({"id_labels": ["nolabel"]}),
            "bad_request",
            "Unmatched argument format: id-label must match <name>=<value>",
        ),
        (
            json!({"container_id": "c1", "runtime": "lxc"}),
            "bad_request",
            "`runtime` must be `docker` or `crun`",
        ),
        (
            json!({"container_id": "gone"}),
            "no_such_container",
            "No such container: gone",
        ),
        (
            json!({"container_id": "c1", "user": "nosuchuser"}),
            "engine_error",
            "Unknown user nosuchuser: the container's /etc/passwd has no such user.",
        ),
    ];
    for (params, code, message) in cases {
        assert_eq!(
            h.error("session.create", params).await,
            (code.into(), message.into())
        );
    }
    let (code, message) = h
        .error("session.create", json!({"container_id": "stopped"}))
        .await;
    assert_eq!(code, "container_not_running", "{message}");
    h.session(json!({})).await;
    assert_eq!(
        h.error("session.create", json!({"container_id": "c1"}))
            .await
            .0,
        "session_limit"
    );
}

#[tokio::test]
async fn a_command_runs_with_its_output_and_exit_state() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    let done = h
        .ok(
            "exec.run",
            json!({"session_id": id, "argv": ["echo", "out", "err", "3"]}),
        )
        .await;
    assert_eq!(done["state"], "exited");
    assert_eq!(done["exit_code"], 3);
    assert_eq!(
        (done["stdout"].clone(), done["stderr"].clone()),
        (json!("out"), json!("err"))
    );
    assert_eq!(
        (
            done["stdout_bytes"].clone(),
            done["stdout_truncated"].clone()
        ),
        (json!(3), json!(false))
    );
    // A shell line reaches the wrapper in its environment, never its argv.
    let done = h
        .ok(
            "exec.run",
            json!({"session_id": id, "command": "echo line"}),
        )
        .await;
    assert_eq!(done["stdout"], "line");
    let argv = h.started.lock().unwrap().last().unwrap().clone();
    assert!(
        !argv.iter().any(|word| word.contains("echo line")),
        "{argv:?}"
    );
    // Truncation keeps head and tail with the real count.
    let done = h
        .ok(
            "exec.run",
            json!({"session_id": id, "argv": ["burst"], "max_output_bytes": 4}),
        )
        .await;
    assert_eq!(done["stdout"], "01\n[… 6 bytes left out …]\n89");
    assert_eq!(
        (
            done["stdout_truncated"].clone(),
            done["stdout_bytes"].clone()
        ),
        (json!(true), json!(10))
    );
    // A command the engine cannot find exits 127 with its message.
    let done = h
        .ok("exec.run", json!({"session_id": id, "argv": ["nosuch"]}))
        .await;
    assert_eq!(
        (done["exit_code"].clone(), done["stderr"].clone()),
        (json!(127), json!("nosuch: not found\n"))
    );
}

#[tokio::test]
async fn exec_parameters_are_checked() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    let cases = [
        (json!({}), "`session_id` is missing"),
        (
            json!({"session_id": id}),
            "`command` (or `argv`) is missing",
        ),
        (
            json!({"session_id": id, "command": "x", "argv": ["x"]}),
            "give `command` or `argv`, not both",
        ),
        (
            json!({"session_id": id, "command": "  "}),
            "`command` is empty",
        ),
        (
            json!({"session_id": id, "command": "x", "timeout_ms": 0}),
            "`timeout_ms` must be more than 0",
        ),
        (
            json!({"session_id": id, "command": "x", "timeout_ms": 61_000}),
            "`timeout_ms` must be at most 60000",
        ),
        (
            json!({"session_id": id, "command": "x", "env": {"1X": "y"}}),
            "`env`: `1X` is not a variable name (letters, digits and _, not first a digit)",
        ),
        (
            json!({"session_id": id, "command": "x", "stdin": "a", "stdin_b64": "YQ=="}),
            "give `stdin` or `stdin_b64`, not both",
        ),
        (
            json!({"session_id": id, "command": "x", "yield_ms": 5}),
            "`yield_ms` is for exec.start only",
        ),
        (
            json!({"session_id": id, "command": "a\u{0}b"}),
            "`command` must not contain a NUL byte",
        ),
    ];
    for (params, message) in cases {
        assert_eq!(
            h.error("exec.run", params).await,
            ("bad_request".into(), message.into())
        );
    }
    assert_eq!(
        h.error("exec.run", json!({"session_id": "s-nope", "command": "x"}))
            .await
            .0,
        "no_such_session"
    );
    assert_eq!(
        h.error("exec.read", json!({"exec_id": "e-nope"})).await.0,
        "no_such_exec"
    );
}

#[tokio::test]
async fn a_caller_s_exec_id_answers_once_and_belongs_to_its_session() {
    let h = harness(limits());
    let one = h.session(json!({})).await;
    let two = h.session(json!({})).await;
    let first = h
        .ok(
            "exec.run",
            json!({"session_id": one, "argv": ["echo", "a"], "exec_id": "mine"}),
        )
        .await;
    let count = h.started.lock().unwrap().len();
    let again = h
        .ok(
            "exec.run",
            json!({"session_id": one, "argv": ["echo", "a"], "exec_id": "mine"}),
        )
        .await;
    assert_eq!(first, again);
    assert_eq!(h.started.lock().unwrap().len(), count, "ran once");
    assert_eq!(
        h.error(
            "exec.run",
            json!({"session_id": two, "argv": ["echo"], "exec_id": "mine"})
        )
        .await,
        (
            "bad_request".into(),
            "exec_id mine belongs to another session".into()
        )
    );
}

#[tokio::test]
async fn limits_are_permits_released_when_the_command_ends() {
    let h = harness(Limits {
        max_execs: 1,
        ..limits()
    });
    let id = h.session(json!({})).await;
    let sleeping = h
        .ok("exec.start", json!({"session_id": id, "argv": ["sleep"]}))
        .await;
    assert_eq!(
        sleeping,
        json!({"exec_id": sleeping["exec_id"], "state": "running"})
    );
    assert_eq!(
        h.error("exec.run", json!({"session_id": id, "argv": ["echo"]}))
            .await
            .0,
        "exec_limit"
    );
    let cancelled = h
        .ok(
            "exec.cancel",
            json!({"exec_id": sleeping["exec_id"], "signal": "KILL"}),
        )
        .await;
    assert_eq!(cancelled["state"], "cancelled");
    h.ok("exec.run", json!({"session_id": id, "argv": ["echo"]}))
        .await;
    // One foreground command per session unless it is concurrent.
    let h = harness(limits());
    let id = h.session(json!({})).await;
    let service = h.service.clone();
    let busy_id = id.clone();
    let running = tokio::spawn(async move {
        let (events, _) = mpsc::channel(8);
        let params = json!({"session_id": busy_id, "argv": ["sleep"], "exec_id": "fg"});
        let request = Request {
            id: json!(2),
            method: "exec.run".into(),
            params: params.as_object().cloned().unwrap(),
        };
        super::methods::handle(&service, request, &events).await
    });
    while h.service.find_exec("fg").is_none() {
        tokio::task::yield_now().await;
    }
    let (code, _) = h
        .error("exec.run", json!({"session_id": id, "argv": ["echo"]}))
        .await;
    assert_eq!(code, "session_busy");
    assert_eq!(
        h.error("exec.cancel", json!({"exec_id": "fg", "signal": "USR1"}))
            .await
            .0,
        "bad_request"
    );
    h.ok("exec.cancel", json!({"exec_id": "fg"})).await;
    assert_eq!(running.await.unwrap()["data"]["state"], "cancelled");
    h.ok("exec.run", json!({"session_id": id, "argv": ["echo"]}))
        .await;
    let concurrent = h.session(json!({"concurrent": true})).await;
    h.ok(
        "exec.start",
        json!({"session_id": concurrent, "argv": ["sleep"], "exec_id": "bg"}),
    )
    .await;
    h.ok(
        "exec.run",
        json!({"session_id": concurrent, "argv": ["echo"]}),
    )
    .await;
    h.ok("exec.cancel", json!({"exec_id": "bg"})).await;
}

#[tokio::test]
async fn a_timeout_ends_the_command() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    let done = h
        .ok(
            "exec.run",
            json!({"session_id": id, "argv": ["sleep"], "timeout_ms": 50}),
        )
        .await;
    assert_eq!(
        (done["state"].clone(), done["exit_code"].clone()),
        (json!("timed_out"), Value::Null)
    );
}

#[tokio::test]
async fn stdin_is_written_read_back_and_closed() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    let started = h
        .ok(
            "exec.start",
            json!({"session_id": id, "argv": ["cat"], "stdin_open": true, "stdin": "a"}),
        )
        .await;
    let exec = started["exec_id"].clone();
    h.ok(
        "exec.write_stdin",
        json!({"exec_id": exec, "data_b64": "Yg=="}),
    )
    .await;
    let read = h
        .ok("exec.read", json!({"exec_id": exec, "wait_ms": 5000}))
        .await;
    assert!(read["stdout"] == "ab" || read["stdout"] == "a", "{read}");
    let written = h
        .ok(
            "exec.write_stdin",
            json!({"exec_id": exec, "data": "c", "eof": true}),
        )
        .await;
    assert_eq!(written, json!({"exec_id": exec, "eof": true}));
    // Waiting past the end of what was written returns at the end.
    let ended = h
        .ok(
            "exec.read",
            json!({"exec_id": exec, "offset": 3, "wait_ms": 10_000}),
        )
        .await;
    assert_eq!(ended["done"], true, "{ended}");
    let read = h
        .ok("exec.read", json!({"exec_id": exec, "offset": 1}))
        .await;
    assert_eq!(
        (
            read["stdout"].clone(),
            read["stdout_offset"].clone(),
            read["exit_code"].clone()
        ),
        (json!("bc"), json!(3), json!(0))
    );
    let (code, message) = h
        .error("exec.write_stdin", json!({"exec_id": exec, "data": "x"}))
        .await;
    assert_eq!(code, "bad_request", "{message}");
    let read = h
        .error("exec.read", json!({"exec_id": exec, "wait_ms": 30_001}))
        .await;
    assert_eq!(read.1, "`wait_ms` must be at most 30000");
}

#[tokio::test]
async fn a_stream_sends_start_output_and_end() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    let (events, mut lines) = mpsc::channel(64);
    let params = json!({"session_id": id, "argv": ["burst"]});
    let request = Request {
        id: json!("s"),
        method: "exec.stream".into(),
        params: params.as_object().cloned().unwrap(),
    };
    let end = super::methods::handle(&h.service, request, &events).await;
    drop(events);
    let mut seen = Vec::new();
    while let Some(line) = lines.recv().await {
        seen.push(line);
    }
    assert_eq!(seen[0]["event"], "start");
    let text: String = seen[1..]
        .iter()
        .map(|event| event["data"].as_str().unwrap())
        .collect();
    assert_eq!(text, "0123456789");
    assert_eq!(seen.last().unwrap()["offset"], 9);
    assert_eq!(end["event"], "end");
    assert_eq!(
        (
            end["id"].clone(),
            end["exit_code"].clone(),
            end["stdout_bytes"].clone()
        ),
        (json!("s"), json!(0), json!(10))
    );
}

#[tokio::test]
async fn files_are_written_read_listed_and_their_errors_coded() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    std::fs::create_dir_all(h.root.path().join("home/vscode")).unwrap();
    std::fs::create_dir_all(h.root.path().join("etc")).unwrap();
    std::fs::write(
        h.root.path().join("etc/passwd"),
        "vscode:x:1000:1000::/home/vscode:/bin/sh\n",
    )
    .unwrap();
    let written = h
        .ok(
            "fs.write",
            json!({"session_id": id, "path": "notes/a.txt", "data": "hello", "mode": "0640"}),
        )
        .await;
    assert_eq!(
        (
            written["path"].clone(),
            written["kind"].clone(),
            written["size"].clone(),
            written["mode"].clone()
        ),
        (
            json!("/home/vscode/notes/a.txt"),
            json!("file"),
            json!(5),
            json!("0640")
        )
    );
    let read = h
        .ok(
            "fs.read",
            json!({"session_id": id, "path": "notes/a.txt", "offset": 1, "length": 3}),
        )
        .await;
    assert_eq!(
        (
            read["data"].clone(),
            read["length"].clone(),
            read["eof"].clone()
        ),
        (json!("ell"), json!(3), json!(false))
    );
    let stat = h
        .ok(
            "fs.stat",
            json!({"session_id": id, "path": "/home/vscode/notes"}),
        )
        .await;
    assert_eq!(stat["kind"], "directory");
    let listed = h
        .ok("fs.list", json!({"session_id": id, "path": "notes"}))
        .await;
    assert_eq!(listed["entries"][0]["name"], "a.txt");
    assert!(listed["entries"][0].get("path").is_none());
    std::fs::write(h.root.path().join("big"), vec![b'x'; 16 * 1024 * 1024 + 1]).unwrap();
    let cases = [
        (
            "fs.read",
            json!({"session_id": id, "path": "nothing"}),
            "no_such_file",
        ),
        (
            "fs.read",
            json!({"session_id": id, "path": "notes"}),
            "is_a_directory",
        ),
        (
            "fs.list",
            json!({"session_id": id, "path": "notes/a.txt"}),
            "not_a_directory",
        ),
        (
            "fs.read",
            json!({"session_id": id, "path": "/big"}),
            "too_large",
        ),
        (
            "fs.write",
            json!({"session_id": id, "path": "x", "data": "a", "mode": "0999"}),
            "bad_request",
        ),
        (
            "fs.write",
            json!({"session_id": id, "path": "x"}),
            "bad_request",
        ),
        (
            "fs.stat",
            json!({"session_id": "s-nope", "path": "x"}),
            "no_such_session",
        ),
    ];
    for (method, params, code) in cases {
        let (got, message) = h.error(method, params.clone()).await;
        assert_eq!(got, code, "{method} {params}: {message}");
    }
}

#[tokio::test]
async fn shutdown_cancels_what_runs_and_refuses_new_work() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    let sleeping = h
        .ok("exec.start", json!({"session_id": id, "argv": ["sleep"]}))
        .await;
    h.service.shutdown(Duration::from_secs(5)).await;
    let read = h
        .ok("exec.read", json!({"exec_id": sleeping["exec_id"]}))
        .await;
    assert_eq!(read["state"], "cancelled");
    assert_eq!(
        h.error("session.create", json!({"container_id": "c1"}))
            .await
            .0,
        "shutting_down"
    );
    assert_eq!(
        h.error("exec.run", json!({"session_id": id, "argv": ["echo"]}))
            .await
            .0,
        "shutting_down"
    );
}

#[tokio::test]
async fn an_idle_session_is_swept() {
    let h = harness(limits());
    let id = h.session(json!({"idle_timeout_s": 1})).await;
    let kept = h.session(json!({})).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.service.sweep().await;
    assert_eq!(
        h.error("session.info", json!({"session_id": id})).await.0,
        "no_such_session"
    );
    h.ok("session.info", json!({"session_id": kept})).await;
    // Its permit went with it.
    h.session(json!({})).await;
}
