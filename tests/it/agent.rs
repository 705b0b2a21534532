//! `dcx serve` through real clients: this test's own unix socket client (newline-delimited
//! JSON, one connection many requests), `socat`, and `curl` for HTTP; against the real daemon
//! and real crun containers.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::harness::{
    BUSYBOX, CrunContainer, DEBIAN, Running, Subject, TestContainer, dcx, docker,
};

pub const TOKEN: &str = "test-token-5e1f";

/// A running `dcx serve`, stopped (SIGTERM) when dropped.
pub struct Agent {
    dir: tempfile::TempDir,
    pub server: Option<Running>,
    pub port: Option<u16>,
}

impl Agent {
    pub fn start(extra: &[&str]) -> Self {
        Self::start_with_http(false, extra)
    }

    pub fn start_with_http(http: bool, extra: &[&str]) -> Self {
        Self::start_with_env(http, extra, &[])
    }

    /// With variables in the server's environment.
    pub fn start_with_env(http: bool, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let port = http.then(|| {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        });
        let mut cmd = dcx()
            .args(["serve", "--socket", socket.to_str().unwrap()])
            .env("DCX_AUTH_TOKEN", TOKEN);
        if let Some(port) = port {
            cmd = cmd.args(["--http", &format!("127.0.0.1:{port}")]);
        }
        for (name, value) in env {
            cmd = cmd.env(name, value);
        }
        let server = cmd.args(extra.iter().copied()).stdin_closed().spawn();
        let agent = Self {
            dir,
            server: Some(server),
            port,
        };
        let started = Instant::now();
        while UnixStream::connect(agent.socket()).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "dcx serve did not listen: {}",
                agent.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }

    /// Waits until the server's log holds `needle` (a request's line is written once its
    /// answer has gone out, so a client may see the answer first).
    pub fn wait_log(&self, needle: &str) {
        if let Some(server) = self.server.as_ref() {
            server.stderr.wait_for(needle);
        }
    }

    pub fn log(&self) -> String {
        self.server
            .as_ref()
            .map(|server| server.stderr.text())
            .unwrap_or_default()
    }

    /// Waits (up to a minute) until session `sid` runs nothing.
    pub fn wait_idle(&self, sid: &Value) {
        let started = Instant::now();
        loop {
            let info = self.ok("session.info", json!({"session_id": sid}));
            if info["running_execs"] == json!([]) {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{info}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.socket())
    }

    /// One request on a connection of its own; the answer's `data`, panicking on an error.
    pub fn ok(&self, method: &str, params: Value) -> Value {
        self.client().ok(method, params)
    }

    /// `curl` to the HTTP listener with this token (or none); returns (status, body).
    pub fn curl(&self, token: Option<&str>, body: &Value) -> (u16, String) {
        let url = format!(
            "http://127.0.0.1:{}/",
            self.port.expect("started with HTTP")
        );
        let mut args = vec![
            "-sS".to_owned(),
            "-o".to_owned(),
            "-".to_owned(),
            "-w".to_owned(),
            "\n%{http_code}".to_owned(),
            "-H".to_owned(),
            "Content-Type: application/json".to_owned(),
            "--data-binary".to_owned(),
            body.to_string(),
        ];
        if let Some(token) = token {
            args.extend(["-H".to_owned(), format!("Authorization: Bearer {token}")]);
        }
        args.push(url);
        let out = std::process::Command::new("curl")
            .args(&args)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.trim().parse().unwrap(), body.to_owned())
    }

    /// Posts `body` to the HTTP listener with the token, and hangs up after `seconds` (a
    /// client that goes away before the answer).
    pub fn post_and_hang_up(&self, body: &Value, seconds: u32) {
        let url = format!(
            "http://127.0.0.1:{}/",
            self.port.expect("started with HTTP")
        );
        let _ = std::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                &seconds.to_string(),
                "-o",
                "/dev/null",
                "-H",
            ])
            .arg(format!("Authorization: Bearer {TOKEN}"))
            .args(["--data-binary", &body.to_string(), &url])
            .status();
    }

    /// Stops the server with SIGTERM and returns its exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut server = self.server.take()?;
        server.signal("TERM");
        server.wait()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.signal("TERM");
            drop(server);
        }
    }
}

/// One connection to the socket.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next: u64,
}

impl Client {
    pub fn connect(socket: &std::path::Path) -> Self {
        let stream = UnixStream::connect(socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(300)))
            .unwrap();
        Self {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            next: 0,
        }
    }

    pub fn send_line(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).unwrap();
        self.writer.write_all(b"\n").unwrap();
    }

    pub fn read(&mut self) -> Value {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).unwrap();
        assert!(n > 0, "the server closed the connection");
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("{err}: {line}"))
    }

    /// Sends a request and returns its id.
    pub fn send(&mut self, method: &str, params: Value) -> u64 {
        self.next += 1;
        let id = self.next;
        let line = json!({"id": id, "method": method, "params": params}).to_string();
        self.send_line(&line);
        id
    }

    /// The whole answer to one request (events of a stream are skipped).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params);
        loop {
            let answer = self.read();
            if answer["id"] == id && answer.get("event").is_none() {
                return answer;
            }
        }
    }

    pub fn ok(&mut self, method: &str, params: Value) -> Value {
        let answer = self.call(method, params.clone());
        assert_eq!(answer["ok"], true, "{method} {params}: {answer}");
        answer["data"].clone()
    }

    pub fn error(&mut self, method: &str, params: Value) -> (String, String) {
        let answer = self.call(method, params.clone());
        assert_eq!(answer["ok"], false, "{method} {params}: {answer}");
        (
            answer["error"]["code"].as_str().unwrap().to_owned(),
            answer["error"]["message"].as_str().unwrap().to_owned(),
        )
    }
}

fn run(client: &mut Client, session: &str, command: &str) -> Value {
    client.ok(
        "exec.run",
        json!({"session_id": session, "command": command}),
    )
}

/// The envelope cases, on any engine: `create` is session.create's params.
fn envelopes(agent: &Agent, create: Value, subject: &dyn Subject) {
    let mut client = agent.client();
    let session = client.ok("session.create", create);
    let sid = session["session_id"].as_str().unwrap().to_owned();
    let sid = sid.as_str();

    let ok = run(&mut client, sid, "echo out; echo err >&2");
    assert_eq!(ok["state"], "exited");
    assert_eq!(ok["exit_code"], 0);
    assert_eq!(ok["signal"], Value::Null);
    assert_eq!(
        (ok["stdout"].as_str(), ok["stderr"].as_str()),
        (Some("out\n"), Some("err\n"))
    );
    assert_eq!(
        (
            ok["stdout_bytes"].as_u64(),
            ok["stderr_truncated"].as_bool()
        ),
        (Some(4), Some(false))
    );

    assert_eq!(run(&mut client, sid, "exit 7")["exit_code"], 7);
    let killed = run(&mut client, sid, "kill -TERM $$");
    assert_eq!(
        (killed["state"].as_str(), killed["signal"].as_str()),
        (Some("signaled"), Some("TERM"))
    );
    assert_eq!(killed["exit_code"], Value::Null);
    let missing = run(&mut client, sid, "no-such-command-here");
    assert_eq!(missing["exit_code"], 127, "{missing}");

    // A timeout: partial output, nothing left running.
    let timed = client.ok(
        "exec.run",
        json!({"session_id": sid, "command": "echo started; sleep 41; echo never", "timeout_ms": 1500}),
    );
    assert_eq!(timed["state"], "timed_out", "{timed}");
    assert_eq!(timed["stdout"], "started\n");
    assert_eq!(subject.count_running("sleep 41"), 0);

    // Bytes that are not UTF-8.
    let bytes = client.ok(
        "exec.run",
        json!({"session_id": sid, "argv": ["cat"], "stdin_b64": base64::engine::general_purpose::STANDARD.encode((0..=255u8).collect::<Vec<_>>())}),
    );
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(bytes["stdout_b64"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, (0..=255u8).collect::<Vec<_>>());

    // The environment and the working directory persist like a terminal's; reset forgets.
    run(
        &mut client,
        sid,
        "mkdir -p /tmp/agent-wd && cd /tmp/agent-wd && export AGENT_VAR='a b'",
    );
    let seen = client.ok(
        "exec.run",
        json!({"session_id": sid, "command": "pwd; echo \"$AGENT_VAR|${ONCE-}|$PAGER|$GIT_TERMINAL_PROMPT\"", "env": {"ONCE": "1"}}),
    );
    assert_eq!(seen["stdout"], "/tmp/agent-wd\na b|1|cat|0\n");
    let once = run(&mut client, sid, "echo \"${ONCE-unset}\"");
    assert_eq!(
        once["stdout"], "unset\n",
        "a request's env is for that command only"
    );
    let info = client.ok("session.info", json!({"session_id": sid}));
    assert_eq!(info["cwd"], "/tmp/agent-wd");
    client.ok("session.reset", json!({"session_id": sid}));
    let reset = run(&mut client, sid, "pwd; echo \"${AGENT_VAR-gone}\"");
    assert_eq!(
        reset["stdout"],
        format!("{}\ngone\n", session["cwd"].as_str().unwrap())
    );
    // stdin is /dev/null-like unless given.
    assert_eq!(run(&mut client, sid, "cat; echo done")["stdout"], "done\n");

    // A background child does not hold the answer, and is not killed.
    let background = run(&mut client, sid, "sleep 43 >/dev/null 2>&1 & echo hi");
    assert_eq!(background["stdout"], "hi\n");
    let detached = run(&mut client, sid, "sleep 44 & echo held");
    assert_eq!(detached["stdout"], "held\n");
    assert_eq!(subject.count_running("sleep 44"), 1);

    // A caller-chosen exec id runs once.
    let first = client.ok(
        "exec.run",
        json!({"session_id": sid, "command": "echo $$", "exec_id": "once-1"}),
    );
    let again = client.ok(
        "exec.run",
        json!({"session_id": sid, "command": "echo $$", "exec_id": "once-1"}),
    );
    assert_eq!(first, again);

    // start, read, write, cancel.
    let started = client.ok(
        "exec.start",
        json!({"session_id": sid, "argv": ["cat"], "stdin_open": true}),
    );
    assert_eq!(started["state"], "running");
    let exec = started["exec_id"].clone();
    client.ok(
        "exec.write_stdin",
        json!({"exec_id": exec, "data": "hello\n"}),
    );
    let read = client.ok("exec.read", json!({"exec_id": exec, "wait_ms": 10000}));
    assert_eq!(read["stdout"], "hello\n", "{read}");
    assert_eq!(read["stdout_offset"], 6);
    client.ok("exec.write_stdin", json!({"exec_id": exec, "eof": true}));
    let read = client.ok(
        "exec.read",
        json!({"exec_id": exec, "offset": 6, "wait_ms": 10000}),
    );
    let read = if read["done"] == true {
        read
    } else {
        client.ok(
            "exec.read",
            json!({"exec_id": exec, "offset": 6, "wait_ms": 10000}),
        )
    };
    assert_eq!(
        (read["done"].as_bool(), read["exit_code"].as_i64()),
        (Some(true), Some(0)),
        "{read}"
    );

    let forever = client.ok(
        "exec.start",
        json!({"session_id": sid, "command": "while :; do echo tick; sleep 0.1; done", "yield_ms": 300}),
    );
    assert_eq!(forever["state"], "running");
    let read = client.ok(
        "exec.read",
        json!({"exec_id": forever["exec_id"], "wait_ms": 5000}),
    );
    assert!(
        read["stdout"].as_str().unwrap().starts_with("tick\n"),
        "{read}"
    );
    let cancelled = client.ok(
        "exec.cancel",
        json!({"exec_id": forever["exec_id"], "signal": "INT"}),
    );
    assert_eq!(cancelled["state"], "cancelled");
    assert!(cancelled["stdout"].as_str().unwrap().contains("tick"));

    // Destroy kills what the session runs.
    client.ok(
        "exec.start",
        json!({"session_id": sid, "command": "sleep 45"}),
    );
    subject.wait_until_running("sleep 45");
    client.ok("session.destroy", json!({"session_id": sid}));
    assert_eq!(subject.count_running("sleep 45"), 0);
    let (code, _) = client.error("session.info", json!({"session_id": sid}));
    assert_eq!(code, "no_such_session");
}

#[test]
fn every_envelope_state_on_docker() {
    let agent = Agent::start(&[]);
    let container = TestContainer::start(DEBIAN);
    // Through the in-container helper (the default), and by plain engine exec.
    envelopes(&agent, json!({"container_id": container.name}), &container);
    envelopes(
        &agent,
        json!({"container_id": container.name, "helper": false}),
        &container,
    );
}

#[test]
fn every_envelope_state_on_crun() {
    let agent = Agent::start(&[]);
    let container = CrunContainer::start("busybox", &[]);
    envelopes(
        &agent,
        json!({"container_id": container.id, "runtime": "crun", "crun_root": container.root_str()}),
        &container,
    );
}

#[test]
fn protocol_errors_keep_the_connection_usable() {
    let agent = Agent::start(&[]);
    let mut client = agent.client();
    client.send_line("{not json");
    let answer = client.read();
    assert_eq!(answer["error"]["code"], "bad_request");
    client.send_line(r#"{"id": 5, "params": {}}"#);
    assert_eq!(client.read()["error"]["message"], "`method` is missing");
    let (code, message) = client.error("exec.run", json!({}));
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("bad_request", "`session_id` is missing")
    );
    let (code, message) = client.error("session.create", json!({"container_id": 3}));
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("bad_request", "`container_id` must be a string")
    );
    let (code, _) = client.error("no.such", json!({}));
    assert_eq!(code, "unknown_method");
    let (code, _) = client.error("exec.read", json!({"exec_id": "nope"}));
    assert_eq!(code, "no_such_exec");
    let (code, message) = client.error(
        "session.create",
        json!({"container_id": "dcx-it-no-such-container"}),
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "no_such_container",
            "No such container: dcx-it-no-such-container"
        )
    );
    let ping = client.ok("system.ping", json!({}));
    assert_eq!(ping["pong"], true);
    assert_eq!(ping["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_stopped_container_is_the_same_error_as_for_dcx_exec() {
    let agent = Agent::start(&[]);
    let container = TestContainer::start(BUSYBOX);
    container.stop();
    let (code, message) = agent
        .client()
        .error("session.create", json!({"container_id": container.id}));
    let expected = dcx()
        .args(["exec", "--container-id", &container.id, "true"])
        .run()
        .code(1)
        .stderr_text();
    assert_eq!(code, "container_not_running");
    assert_eq!(format!("error: {message}\n"), expected);
}

#[test]
fn limits_answer_with_their_codes() {
    let agent = Agent::start(&["--max-sessions", "2", "--max-execs", "1"]);
    let container = TestContainer::start(BUSYBOX);
    let mut client = agent.client();
    let one = client.ok("session.create", json!({"container_id": container.id}));
    let two = client.ok(
        "session.create",
        json!({"container_id": container.id, "concurrent": true}),
    );
    let (code, _) = client.error("session.create", json!({"container_id": container.id}));
    assert_eq!(code, "session_limit");
    let sleeping = client.ok(
        "exec.start",
        json!({"session_id": one["session_id"], "command": "sleep 46"}),
    );
    let (code, _) = client.error(
        "exec.run",
        json!({"session_id": two["session_id"], "command": "true"}),
    );
    assert_eq!(code, "exec_limit");
    client.ok(
        "exec.cancel",
        json!({"exec_id": sleeping["exec_id"], "signal": "KILL"}),
    );

    // One foreground command per session unless it was created concurrent.
    let mut other = agent.client();
    let busy = other.send(
        "exec.run",
        json!({"session_id": one["session_id"], "command": "sleep 2"}),
    );
    std::thread::sleep(Duration::from_millis(500));
    let (code, _) = client.error(
        "exec.run",
        json!({"session_id": one["session_id"], "command": "true"}),
    );
    assert_eq!(code, "session_busy");
    loop {
        let answer = other.read();
        if answer["id"] == busy {
            assert_eq!(answer["data"]["exit_code"], 0);
            break;
        }
    }
    let stats = client.ok("system.stats", json!({}));
    assert_eq!(stats["sessions"], 2);
    assert_eq!(stats["limits"]["max_execs"], 1);
}

#[test]
fn many_sessions_many_commands_and_ping_under_load() {
    let agent = Agent::start(&["--max-execs", "400"]);
    let container = TestContainer::start(BUSYBOX);
    let sessions: Vec<String> = (0..32)
        .map(|_| {
            agent.ok(
                "session.create",
                json!({"container_id": container.id, "concurrent": true}),
            )["session_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    // 32 long commands, then ping answers while they run.
    let mut long = agent.client();
    let waiting: Vec<u64> = sessions
        .iter()
        .map(|sid| {
            long.send(
                "exec.run",
                json!({"session_id": sid, "command": "sleep 3; echo slept"}),
            )
        })
        .collect();
    let mut pinger = agent.client();
    let ping = pinger.ok("system.ping", json!({}));
    assert_eq!(ping["pong"], true);
    // 32 sessions × 10 concurrent commands, each checked.
    std::thread::scope(|scope| {
        for (n, sid) in sessions.iter().enumerate() {
            let socket = agent.socket();
            scope.spawn(move || {
                let mut client = Client::connect(&socket);
                let ids: Vec<(u64, String)> = (0..10)
                    .map(|k| {
                        let word = format!("s{n}c{k}");
                        (
                            client.send(
                                "exec.run",
                                json!({"session_id": sid, "command": format!("echo {word}; exit {k}")}),
                            ),
                            word,
                        )
                    })
                    .collect();
                let mut answers = std::collections::HashMap::new();
                while answers.len() < ids.len() {
                    let answer = client.read();
                    answers.insert(answer["id"].as_u64().unwrap(), answer);
                }
                for (k, (id, word)) in ids.iter().enumerate() {
                    let data = &answers[id]["data"];
                    assert_eq!(data["stdout"], format!("{word}\n"), "{}", answers[id]);
                    assert_eq!(data["exit_code"], k as i64);
                }
            });
        }
    });
    let mut done = 0;
    while done < waiting.len() {
        let answer = long.read();
        assert_eq!(answer["data"]["stdout"], "slept\n", "{answer}");
        done += 1;
    }
}

#[test]
fn output_is_truncated_with_counts_and_streamed_whole_in_bounded_memory() {
    let agent = Agent::start(&[]);
    let container = TestContainer::start(DEBIAN);
    let mut client = agent.client();
    let sid =
        client.ok("session.create", json!({"container_id": container.id}))["session_id"].clone();
    const SIZE: u64 = 50_000_000;
    let big = client.ok(
        "exec.run",
        json!({"session_id": sid, "command": format!("head -c {SIZE} /dev/zero | tr '\\0' a; echo tail >&2")}),
    );
    assert_eq!(big["stdout_bytes"], SIZE);
    assert_eq!(big["stdout_truncated"], true);
    assert_eq!(big["stderr"], "tail\n");
    let text = big["stdout"].as_str().unwrap();
    assert!(
        text.contains(&format!("[… {} bytes left out …]", SIZE - 1024 * 1024)),
        "{}",
        &text[..100]
    );

    let id = client.send(
        "exec.stream",
        json!({"session_id": sid, "command": format!("head -c {SIZE} /dev/urandom | base64 -w 0")}),
    );
    let expected = SIZE.div_ceil(3) * 4;
    let mut received = 0u64;
    let mut next_offset = 0u64;
    let end = loop {
        let event = client.read();
        assert_eq!(event["id"], id);
        match event["event"].as_str() {
            Some("start") => assert!(event["exec_id"].is_string()),
            Some("stdout") => {
                assert_eq!(event["offset"], next_offset);
                let n = event["data"].as_str().unwrap().len() as u64;
                received += n;
                next_offset += n;
            }
            Some("end") => break event,
            other => panic!("unexpected {other:?}: {event}"),
        }
    };
    assert_eq!(received, expected);
    assert_eq!(end["state"], "exited");
    assert_eq!(end["stdout_bytes"], expected);
    assert!(end.get("stdout").is_none());
    // The server's peak memory stayed far below the output's size.
    let pid = agent.server.as_ref().unwrap().pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").parse().ok())
        .unwrap();
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB");
}

#[test]
fn http_needs_the_token_and_streams_ndjson() {
    let agent = Agent::start_with_http(true, &[]);
    let container = TestContainer::start(BUSYBOX);
    let (code, body) = agent.curl(None, &json!({"id": 1, "method": "system.ping"}));
    assert_eq!(code, 401);
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["error"]["code"], "unauthorized");
    let (code, _) = agent.curl(Some("wrong"), &json!({"id": 1, "method": "system.ping"}));
    assert_eq!(code, 401);
    let (code, body) = agent.curl(Some(TOKEN), &json!({"id": 1, "method": "system.ping"}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["data"]["pong"],
        true
    );
    let (_, body) = agent.curl(
        Some(TOKEN),
        &json!({"id": 2, "method": "session.create", "params": {"container_id": container.id}}),
    );
    let sid = serde_json::from_str::<Value>(&body).unwrap()["data"]["session_id"].clone();
    let (code, body) = agent.curl(
        Some(TOKEN),
        &json!({"id": 3, "method": "exec.stream", "params": {"session_id": sid, "command": "echo one; echo two >&2; printenv DCX_AUTH_TOKEN || exit 3"}}),
    );
    assert_eq!(code, 200);
    let events: Vec<Value> = body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(events[0]["event"], "start");
    let out: String = events
        .iter()
        .filter(|e| e["event"] == "stdout")
        .map(|e| e["data"].as_str().unwrap())
        .collect();
    assert_eq!(out, "one\n");
    let end = events.last().unwrap();
    assert_eq!(
        (end["event"].as_str(), end["exit_code"].as_i64()),
        (Some("end"), Some(3)),
        "{body}"
    );
    // The token is never logged, nor the command's text or output.
    agent.wait_log("exec.stream");
    let log = agent.log();
    for secret in [TOKEN, "printenv", "one\n"] {
        assert!(!log.contains(secret), "{secret:?} in the log: {log}");
    }
    assert!(log.contains("exec.stream"), "{log}");
}

#[test]
fn sigterm_cancels_running_commands_and_removes_the_socket() {
    let mut agent = Agent::start(&[]);
    let container = TestContainer::start(BUSYBOX);
    let mut client = agent.client();
    let sid =
        client.ok("session.create", json!({"container_id": container.id}))["session_id"].clone();
    let id = client.send(
        "exec.stream",
        json!({"session_id": sid, "command": "echo begun; sleep 47"}),
    );
    container.wait_until_running("sleep 47");
    assert_eq!(agent.stop(), Some(0));
    let mut last = Value::Null;
    loop {
        let mut line = String::new();
        if client.reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let event: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(event["id"], id);
        last = event;
    }
    assert_eq!(
        (last["event"].as_str(), last["state"].as_str()),
        (Some("end"), Some("cancelled")),
        "{last}"
    );
    assert!(!agent.socket().exists());
    assert_eq!(container.count_running("sleep 47"), 0);
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let agent = Agent::start(&[]);
    let socket = agent.socket();
    let second = dcx()
        .args(["serve", "--socket", socket.to_str().unwrap()])
        .run()
        .code(1);
    assert_eq!(
        second.stderr_text(),
        format!(
            "error: Cannot serve on the socket {}: another server is listening on it (stop it, or give --socket another path)\n",
            socket.display()
        )
    );
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let mut cmd = dcx()
        .args(["serve", "--socket", stale.to_str().unwrap()])
        .stdin_closed()
        .spawn();
    let started = Instant::now();
    while UnixStream::connect(&stale).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            cmd.stderr.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&stale).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    cmd.signal("TERM");
    assert_eq!(cmd.wait(), Some(0));
    // HTTP without a token refuses to start.
    dcx()
        .args([
            "serve",
            "--socket",
            dir.path().join("x.sock").to_str().unwrap(),
            "--http",
            "127.0.0.1:1",
        ])
        .env("DCX_AUTH_TOKEN", "")
        .run()
        .code(1)
        .stderr("error: --http needs a token: set DCX_AUTH_TOKEN in the server's environment.\n");
}

#[test]
fn stats_count_the_containers_zombies() {
    let agent = Agent::start(&[]);
    let container = TestContainer::start(BUSYBOX);
    let mut client = agent.client();
    let sid =
        client.ok("session.create", json!({"container_id": container.id}))["session_id"].clone();
    // An orphan reparented to a PID 1 that never reaps (`sleep`) becomes a zombie.
    run(
        &mut client,
        sid.as_str().unwrap(),
        "sleep 0.2 >/dev/null 2>&1 &",
    );
    std::thread::sleep(Duration::from_millis(800));
    let stats = client.ok("system.stats", json!({}));
    let zombies = stats["per_session"][0]["container_zombies"]
        .as_u64()
        .unwrap();
    assert!(zombies >= 1, "{stats}");
}

#[test]
fn sessions_are_listed_dropped_when_idle_and_engine_errors_named() {
    let agent = Agent::start(&[]);
    let container = CrunContainer::start("busybox", &[]);
    let mut client = agent.client();
    let kept = client.ok(
        "session.create",
        json!({"container_id": container.id, "runtime": "crun", "crun_root": container.root_str()}),
    );
    let idle = client.ok(
        "session.create",
        json!({"container_id": container.id, "runtime": "crun", "crun_root": container.root_str(), "idle_timeout_s": 1}),
    );
    let listed = client.ok("session.list", json!({}));
    let ids: Vec<&str> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&kept["session_id"].as_str().unwrap())
            && ids.contains(&idle["session_id"].as_str().unwrap())
    );
    // Dropped after its idle timeout (the sweep runs every second); the other stays. (The
    // list touches no session, as any request naming one would.)
    let started = Instant::now();
    loop {
        let listed = client.ok("session.list", json!({}));
        if !listed["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["session_id"] == idle["session_id"])
        {
            let (code, _) = client.error("session.info", json!({"session_id": idle["session_id"]}));
            assert_eq!(code, "no_such_session");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "never dropped");
        std::thread::sleep(Duration::from_millis(500));
    }
    client.ok("session.info", json!({"session_id": kept["session_id"]}));
    // What the engine refuses: `engine_error`, with dcx exec's message.
    let (code, message) = client.error(
        "session.create",
        json!({"container_id": container.id, "runtime": "crun", "crun_root": container.root_str(), "user": "nosuchuser"}),
    );
    let expected = dcx()
        .args([
            "exec",
            "--runtime",
            "crun",
            "--crun-root",
            container.root_str(),
        ])
        .args([
            "--container-id",
            &container.id,
            "--user",
            "nosuchuser",
            "true",
        ])
        .run()
        .code(1)
        .stderr_text();
    assert_eq!(
        (code.as_str(), format!("error: {message}\n")),
        ("engine_error", expected)
    );
    // A command the engine cannot start: `failed_to_start`, saying why.
    let broken = client.ok(
        "session.create",
        json!({"container_id": container.id, "runtime": "crun", "crun_root": container.root_str(), "crun_path": "/nonexistent/crun"}),
    );
    let failed = client.ok(
        "exec.run",
        json!({"session_id": broken["session_id"], "argv": ["true"]}),
    );
    assert_eq!(failed["state"], "failed_to_start", "{failed}");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .starts_with("Cannot run /nonexistent/crun:"),
        "{failed}"
    );
}

#[test]
fn a_quiet_stream_says_it_is_alive() {
    let agent = Agent::start(&[]);
    let container = CrunContainer::start("busybox", &[]);
    let mut client = agent.client();
    let sid = client.ok(
        "session.create",
        json!({"container_id": container.id, "runtime": "crun", "crun_root": container.root_str()}),
    )["session_id"]
        .clone();
    client.send(
        "exec.stream",
        json!({"session_id": sid, "command": "sleep 16; echo woke"}),
    );
    let mut kinds = Vec::new();
    loop {
        let event = client.read();
        let kind = event["event"].as_str().unwrap().to_owned();
        kinds.push(kind.clone());
        if kind == "end" {
            break;
        }
    }
    assert_eq!(kinds.first().map(String::as_str), Some("start"));
    assert!(kinds.iter().any(|k| k == "keepalive"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "stdout"), "{kinds:?}");
}

#[test]
fn output_nobody_reads_is_kept_bounded_and_the_loss_counted() {
    let agent = Agent::start(&[]);
    let container = CrunContainer::start("busybox", &[]);
    let mut client = agent.client();
    let sid = client.ok(
        "session.create",
        json!({"container_id": container.id, "runtime": "crun", "crun_root": container.root_str()}),
    )["session_id"]
        .clone();
    // 10 000 bytes through a 1 000-byte budget: the first and last 500 are kept.
    let started = client.ok(
        "exec.start",
        json!({"session_id": sid, "command": "i=0; while [ $i -lt 1000 ]; do printf '%09d\\n' $i; i=$((i+1)); done", "max_output_bytes": 1000, "yield_ms": 10000}),
    );
    assert_eq!(started["state"], "exited", "{started}");
    assert_eq!(started["stdout_bytes"], 10_000);
    let read = client.ok(
        "exec.read",
        json!({"exec_id": started["exec_id"], "offset": 0}),
    );
    assert_eq!(read["stdout_skipped"], 9_000);
    assert_eq!(read["stdout_offset"], 10_000);
    let text = read["stdout"].as_str().unwrap();
    assert!(
        text.starts_with("000000000\n") && text.ends_with("000000999\n"),
        "{text}"
    );
    assert_eq!(text.len(), 1000);
}

#[test]
fn a_stream_whose_reader_goes_away_stops_its_command() {
    let agent = Agent::start_with_http(true, &[]);
    let container = TestContainer::start(BUSYBOX);
    let sid = agent.ok(
        "session.create",
        json!({"container_id": container.id, "concurrent": true}),
    )["session_id"]
        .clone();
    // Socket: read a little, then hang up.
    {
        let mut client = agent.client();
        client.send(
            "exec.stream",
            json!({"session_id": sid, "command": "yes socket"}),
        );
        for _ in 0..5 {
            client.read();
        }
    }
    // HTTP: curl gives up after a second.
    let body = json!({"id": 1, "method": "exec.stream", "params": {"session_id": sid, "command": "yes http"}});
    agent.post_and_hang_up(&body, 1);
    let started = Instant::now();
    while container.count_running("yes socket") + container.count_running("yes http") > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the commands went on"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Their records end a moment after their processes.
    agent.wait_idle(&sid);
}

#[test]
fn exec_ids_are_per_session_and_stream_events_keep_characters_whole() {
    let agent = Agent::start(&[]);
    let container = TestContainer::start(DEBIAN);
    let mut client = agent.client();
    let one =
        client.ok("session.create", json!({"container_id": container.id}))["session_id"].clone();
    let two =
        client.ok("session.create", json!({"container_id": container.id}))["session_id"].clone();
    client.ok(
        "exec.run",
        json!({"session_id": one, "command": "echo mine", "exec_id": "shared-1"}),
    );
    let (code, message) = client.error(
        "exec.run",
        json!({"session_id": two, "command": "echo theirs", "exec_id": "shared-1"}),
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("bad_request", "exec_id shared-1 belongs to another session")
    );
    // Generated ids cannot be guessed from the session's.
    let generated = client.ok("exec.run", json!({"session_id": one, "command": "true"}))["exec_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(generated.len() > 20, "{generated}");
    // 300 000 bytes of two-byte characters through 64 KiB chunks: never split.
    let id = client.send(
        "exec.stream",
        json!({"session_id": one, "command": "head -c 150000 /dev/zero | tr '\\0' x | sed 's/x/é/g'"}),
    );
    let mut text = String::new();
    loop {
        let event = client.read();
        assert_eq!(event["id"], id);
        match event["event"].as_str() {
            Some("stdout") => text.push_str(
                event["data"]
                    .as_str()
                    .unwrap_or_else(|| panic!("split: {event}")),
            ),
            Some("end") => break,
            _ => {}
        }
    }
    assert_eq!(text.chars().count(), 150_000);
    assert!(text.chars().all(|c| c == 'é'));
}

#[test]
fn a_destroyed_session_leaves_no_state_in_the_container() {
    let agent = Agent::start(&[]);
    let container = TestContainer::start(BUSYBOX);
    for helper in [true, false] {
        let session = agent.ok(
            "session.create",
            json!({"container_id": container.id, "helper": helper}),
        )["session_id"]
            .as_str()
            .unwrap()
            .to_owned();
        agent.ok(
            "exec.run",
            json!({"session_id": session, "command": "export SECRET=kept; cd /tmp"}),
        );
        let dir = format!("/tmp/.dcx-agent-{session}");
        let there = format!("test -e {dir} && echo there || echo gone");
        assert_eq!(container.sh(&there), "there\n", "helper: {helper}");
        agent.ok("session.destroy", json!({"session_id": session}));
        assert_eq!(container.sh(&there), "gone\n", "helper: {helper}");
    }
}

#[test]
fn a_method_name_cannot_forge_a_log_line() {
    let agent = Agent::start(&[]);
    let (code, _) = agent
        .client()
        .error("x\nforged exec.run id=9 ok", json!({}));
    assert_eq!(code, "unknown_method");
    let started = Instant::now();
    while !agent.log().contains("error=unknown_method") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = agent.log();
    assert!(log.contains(r"x\nforged exec.run id=9 ok id=1"), "{log}");
    assert!(!log.lines().any(|line| line.starts_with("forged")), "{log}");
}

#[test]
fn the_socket_is_private_from_its_creation_under_any_umask() {
    // A shared folder, and a server started with umask 000: the socket must never be open to
    // others, not even between its creation and a chmod.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let socket = dir.path().join("agent.sock");
    let server = crate::harness::Cmd::program("sh")
        .args(["-c", "umask 000; exec \"$0\" serve --socket \"$1\""])
        .arg(crate::harness::dcx_path())
        .arg(&socket)
        .stdin_closed()
        .spawn();
    let started = Instant::now();
    let mode = loop {
        if let Ok(meta) = std::fs::symlink_metadata(&socket) {
            break std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no socket");
        std::thread::yield_now();
    };
    assert_eq!(mode, 0o600, "the socket's mode when it first appeared");
    server.signal("TERM");
}

#[test]
fn a_long_file_name_is_written_by_the_engine_s_file_calls_too() {
    let agent = Agent::start(&[]);
    let container = TestContainer::start(BUSYBOX);
    // By the engine's own file calls (no helper), whose temporary name must still fit.
    let session = agent.ok(
        "session.create",
        json!({"container_id": container.id, "helper": false, "cwd": "/tmp"}),
    )["session_id"]
        .clone();
    let name = format!("{}.txt", "n".repeat(246));
    let written = agent.ok(
        "fs.write",
        json!({"session_id": session, "path": name, "data": "long"}),
    );
    assert_eq!(written["size"], 4, "{written}");
    let read = agent.ok("fs.read", json!({"session_id": session, "path": name}));
    assert_eq!(read["data"], "long");
    assert_eq!(container.sh("ls /tmp | grep -c dcx- || true"), "0\n");
}

#[test]
fn a_slow_http_body_does_not_hold_its_connection() {
    use std::io::{Read, Write as _};
    let agent = Agent::start_with_http(true, &[]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", agent.port.unwrap())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    // A body announced at 100 bytes, of which one ever comes.
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    )
    .unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("the request body did not arrive within 10 s"),
        "{answer}"
    );
    // Answered and closed at the limit, not held for the minute the client would wait.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

/// `exec.start` without `timeout_ms` has no built-in lifetime: it outlives the server's longest
/// timeout (here a stand-in of 1 s for the default 10 minutes), which still bounds `exec.run`.
#[test]
fn a_background_command_outlives_the_server_s_longest_timeout() {
    let agent = Agent::start(&["--max-timeout", "1s"]);
    let container = TestContainer::start(BUSYBOX);
    let mut client = agent.client();
    let session =
        client.ok("session.create", json!({"container_id": container.id}))["session_id"].clone();
    let started = client.ok(
        "exec.start",
        json!({"session_id": session, "command": "while :; do sleep 0.2; done"}),
    );
    let run = client.ok(
        "exec.run",
        json!({"session_id": session, "command": "sleep 5"}),
    );
    assert_eq!(run["state"], "timed_out", "{run}");
    std::thread::sleep(Duration::from_secs(2));
    let read = client.ok(
        "exec.read",
        json!({"exec_id": started["exec_id"], "wait_ms": 0}),
    );
    assert_eq!(read["state"], "running", "{read}");
    // A longer timeout than the server's is still refused by name.
    let (code, message) = client.error(
        "exec.start",
        json!({"session_id": session, "command": "true", "timeout_ms": 5000}),
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("bad_request", "`timeout_ms` must be at most 1000")
    );
}

/// A session whose container was removed (and not replaced) answers `no_such_container` for
/// commands and file calls alike, never `no_such_file`.
#[test]
fn a_removed_container_is_no_such_container() {
    let agent = Agent::start(&[]);
    let container = TestContainer::start(BUSYBOX);
    let mut client = agent.client();
    let session =
        client.ok("session.create", json!({"container_id": container.id}))["session_id"].clone();
    client.ok("exec.run", json!({"session_id": session, "argv": ["true"]}));
    crate::harness::docker(&["rm", "-f", &container.id]);
    for (method, params) in [
        ("exec.run", json!({"session_id": session, "argv": ["true"]})),
        ("fs.stat", json!({"session_id": session, "path": "/"})),
        (
            "fs.read",
            json!({"session_id": session, "path": "/etc/hostname"}),
        ),
    ] {
        let (code, message) = client.error(method, params);
        assert_eq!(code, "no_such_container", "{method}: {message}");
        assert!(message.contains("is gone"), "{method}: {message}");
    }
}

/// A caller's `exec_id` names one command: the same again answers with its result, another
/// command under it is `bad_request` and runs nothing.
#[test]
fn an_exec_id_reused_for_another_command_is_refused() {
    let agent = Agent::start(&[]);
    let container = TestContainer::start(BUSYBOX);
    let mut client = agent.client();
    let session =
        client.ok("session.create", json!({"container_id": container.id}))["session_id"].clone();
    let first = client.ok(
        "exec.run",
        json!({"session_id": session, "command": "echo once >> /tmp/ran; cat /tmp/ran", "exec_id": "mine"}),
    );
    let again = client.ok(
        "exec.run",
        json!({"session_id": session, "command": "echo once >> /tmp/ran; cat /tmp/ran", "exec_id": "mine"}),
    );
    assert_eq!(first, again);
    let (code, message) = client.error(
        "exec.run",
        json!({"session_id": session, "command": "echo other >> /tmp/ran", "exec_id": "mine"}),
    );
    assert_eq!(code, "bad_request", "{message}");
    assert!(
        message.contains("exec_id mine was given to another command"),
        "{message}"
    );
    assert_eq!(container.sh("cat /tmp/ran"), "once\n");
}

/// A command that ignores SIGTERM is cancelled while its container is paused, which is then
/// unpaused: the command ends (within ten seconds, a hang guard) and nothing of it runs on; the
/// answers say the container was paused (`expect_note`).
fn cancel_in_a_paused_container(
    agent: &Agent,
    create: Value,
    subject: &dyn Subject,
    pause: &dyn Fn(bool),
    expect_note: bool,
) {
    let sid = agent.ok("session.create", create.clone())["session_id"].clone();
    let started = agent.ok(
        "exec.start",
        json!({"session_id": sid, "command": "trap '' TERM; sleep 777; echo survived"}),
    );
    subject.wait_until_running("sleep 777");
    pause(true);
    let cancelled = agent.ok("exec.cancel", json!({"exec_id": started["exec_id"]}));
    if expect_note {
        let note = cancelled["note"].as_str().unwrap_or_default();
        assert!(note.contains("is paused"), "{create}: {cancelled}");
    }
    pause(false);
    let since = Instant::now();
    while subject.count_running("sleep 777") > 0 {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "{create}: the cancelled command still runs after the unpause: {}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ended = agent.ok(
        "exec.read",
        json!({"exec_id": started["exec_id"], "wait_ms": 10_000}),
    );
    assert_eq!(ended["state"], "cancelled", "{create}: {ended}");
    assert_eq!(ended["stdout"], "", "{create}: {ended}");
    if expect_note {
        let note = ended["note"].as_str().unwrap_or_default();
        assert!(note.contains("is paused"), "{create}: {ended}");
    }
    agent.ok("session.destroy", json!({"session_id": sid}));
}

#[test]
fn a_cancel_in_a_paused_container_ends_the_command() {
    let agent = Agent::start(&["--log-level", "debug"]);
    let container = TestContainer::start(BUSYBOX);
    let pause = |paused: bool| {
        docker(&[if paused { "pause" } else { "unpause" }, &container.id]);
    };
    for helper in [false, true] {
        cancel_in_a_paused_container(
            &agent,
            json!({"container_id": container.id, "helper": helper}),
            &container,
            &pause,
            true,
        );
    }
    let crun = CrunContainer::start("busybox", &[]);
    let pause = |paused: bool| {
        crun.crun(&[if paused { "pause" } else { "resume" }, &crun.id]);
    };
    cancel_in_a_paused_container(
        &agent,
        json!({"container_id": crun.id, "runtime": "crun", "crun_root": crun.root_str()}),
        &crun,
        &pause,
        true,
    );
    // dcx exec on the paused crun container says so, with crun's own way out.
    crun.crun(&["pause", &crun.id]);
    let out = crate::harness::Subject::dcx(&crun, &["true"]).run().code(1);
    assert_eq!(
        out.stderr_text(),
        format!(
            "error: Container {id} is paused.\nhint: resume it with `crun --root {root} resume {id}`\n",
            id = crun.id,
            root = crun.root_str()
        )
    );
    crun.crun(&["resume", &crun.id]);
}

#[test]
fn a_read_only_container_keeps_the_session_state_elsewhere_or_says_it_cannot() {
    let agent = Agent::start(&[]);
    // A read-only root: /tmp cannot be written, /dev/shm (Docker's tmpfs) can.
    let container = TestContainer::start_with(BUSYBOX, &["--read-only"]);
    for helper in [true, false] {
        let created = agent.ok(
            "session.create",
            json!({"container_id": container.id, "helper": helper}),
        );
        assert_eq!(created["note"], Value::Null, "{created}");
        let sid = created["session_id"].as_str().unwrap();
        let first = agent.ok(
            "exec.run",
            json!({"session_id": sid, "command": "cd /etc && export KEPT='a b'"}),
        );
        assert_eq!(first["note"], Value::Null, "{first}");
        let next = agent.ok(
            "exec.run",
            json!({"session_id": sid, "command": "echo \"$KEPT\"; pwd"}),
        );
        assert_eq!(next["stdout"], "a b\n/etc\n", "helper {helper}: {next}");
        let dir = format!("/dev/shm/.dcx-agent-{sid}");
        assert_eq!(
            container.sh(&format!("test -d {dir} && echo there")),
            "there\n"
        );
        agent.ok("session.destroy", json!({"session_id": sid}));
        assert_eq!(
            container.sh(&format!("test -e {dir} || echo gone")),
            "gone\n"
        );
    }
    // Nowhere to write: every answer that would keep state says it is not kept.
    let sealed = TestContainer::start_with(BUSYBOX, &["--read-only", "--tmpfs", "/dev/shm:ro"]);
    let created = agent.ok(
        "session.create",
        json!({"container_id": sealed.id, "helper": false}),
    );
    let note = created["note"].as_str().unwrap_or_default().to_owned();
    assert!(
        note.starts_with("The session keeps no state between commands: the container's user root can write neither /tmp nor /dev/shm"),
        "{created}"
    );
    let sid = created["session_id"].as_str().unwrap();
    let cd = agent.ok(
        "exec.run",
        json!({"session_id": sid, "command": "cd /etc && export KEPT=1"}),
    );
    assert_eq!(cd["note"], note.as_str(), "{cd}");
    let next = agent.ok(
        "exec.run",
        json!({"session_id": sid, "command": "echo \"${KEPT-unset}\"; pwd"}),
    );
    assert_eq!(next["stdout"], "unset\n/root\n", "{next}");
    let info = agent.ok("session.info", json!({"session_id": sid}));
    assert_eq!(info["state_note"], note.as_str(), "{info}");
}

#[test]
fn session_state_follows_the_container_and_the_engine() {
    let container = TestContainer::start(BUSYBOX);
    // The daemon as this server sees it: a relay to it, which the test takes away (the
    // daemon itself keeps running for the other tests).
    let daemon = crate::reliability::FreezableDaemon::start();
    let agent = Agent::start_with_env(false, &[], &[("DOCKER_HOST", &daemon.host())]);
    let sid = agent.ok(
        "session.create",
        json!({"container_id": container.id, "helper": false}),
    )["session_id"]
        .clone();
    agent.ok("exec.run", json!({"session_id": sid, "command": "cd /etc"}));
    let state = |expected: &str| {
        let info = agent.ok("session.info", json!({"session_id": sid}));
        assert_eq!(info["state"], expected, "{info}");
        let listed = agent.ok("session.list", json!({}));
        let entry = listed["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["session_id"] == sid)
            .cloned()
            .unwrap_or_default();
        assert_eq!(entry["state"], expected, "{listed}");
        info
    };
    let info = state("ready");
    assert_eq!(info["engine_note"], Value::Null, "{info}");
    docker(&["pause", &container.id]);
    state("container_paused");
    docker(&["unpause", &container.id]);
    state("ready");
    container.stop();
    let info = state("container_not_running");
    assert_eq!(info["cwd"], "/etc", "{info}");
    assert_eq!(
        info["engine_note"],
        "The session's container is not running: `cwd` is what it said last time.",
        "{info}"
    );
    docker(&["rm", "-f", &container.id]);
    state("no_such_container");
    // A command running (by plain engine exec) when the engine goes away: its end is unknown.
    let other = TestContainer::start(BUSYBOX);
    let other_sid = agent.ok(
        "session.create",
        json!({"container_id": other.id, "helper": false}),
    )["session_id"]
        .clone();
    let running = agent.ok(
        "exec.start",
        json!({"session_id": other_sid, "command": "sleep 301"}),
    );
    other.wait_until_running("sleep 301");
    daemon.lose();
    let lost = agent.ok(
        "exec.read",
        json!({"exec_id": running["exec_id"], "wait_ms": 20_000}),
    );
    assert_eq!(lost["state"], "engine_lost", "{lost}");
    assert!(
        lost["message"]
            .as_str()
            .unwrap()
            .ends_with("the command started, and may still run in the container"),
        "{lost}"
    );
    assert_eq!(other.count_running("sleep 301"), 1, "it does run on");
    let info = state("engine_unreachable");
    assert_eq!(info["cwd"], "/etc", "{info}");
    assert_eq!(
        info["engine_note"], "The engine cannot be reached: `cwd` is what it said last time.",
        "{info}"
    );
}
