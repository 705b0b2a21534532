//! `dcx serve` bounded whatever its clients do (issue 25): idle HTTP connections by the hundred,
//! a request line over the limit, 100,000 pipelined pings, clients that leave while their
//! `exec.run` runs; and `dcx mcp` answering a line that is not JSON. Real server, real socket,
//! real TCP and curl clients, a real daemon.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::agent::{Agent, TOKEN};
use crate::harness::{BUSYBOX, Subject, TestContainer, dcx_path};

/// A line of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// `system.ping` on a connection of its own; how long it took.
fn ping(agent: &Agent) -> Duration {
    let started = Instant::now();
    let pong = agent.ok("system.ping", json!({}));
    assert_eq!(pong["pong"], true, "{pong}");
    started.elapsed()
}

#[test]
fn idle_http_connections_are_capped_closed_and_never_starve_the_socket() {
    let agent = Agent::start_with_env(
        true,
        &[],
        &[
            ("DCX_SERVE_HTTP_IDLE_MS", "2000"),
            ("DCX_SERVE_MAX_CONNECTIONS", "200"),
        ],
    );
    let pid = agent.server.as_ref().unwrap().pid();
    let port = agent.port.unwrap();
    let fds_before = open_fds(pid);
    // 300 connections that never send a byte: 200 are served, 100 refused at once.
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let slowest = (0..20).map(|_| ping(&agent)).max().unwrap();
    eprintln!("unix ping with 300 idle HTTP connections: slowest of 20 {slowest:?}");
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
    let fds = open_fds(pid);
    eprintln!("server fds: {fds_before} before, {fds} with 300 idle connections");
    assert!(fds <= fds_before + 200 + 16, "{fds_before} → {fds}");
    // Each is closed by the server: the refused ones at once (503), the others after the idle
    // timeout (2 s here).
    let started = Instant::now();
    let mut refused = 0;
    for mut stream in idle {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut got = Vec::new();
        match stream.read_to_end(&mut got) {
            Ok(_) => {}
            Err(err) => assert_eq!(
                err.kind(),
                std::io::ErrorKind::ConnectionReset,
                "still open after {:?}",
                started.elapsed()
            ),
        }
        let text = String::from_utf8_lossy(&got);
        if text.starts_with("HTTP/1.1 503") {
            assert!(text.contains("\"connection_limit\""), "{text}");
            refused += 1;
        }
    }
    let closed_within = started.elapsed();
    eprintln!("all 300 closed within {closed_within:?}; {refused} answered 503");
    assert!(closed_within < Duration::from_secs(20));
    // Then the listener serves as before.
    let (status, body) = agent.curl(
        Some(TOKEN),
        &json!({"id": 1, "method": "system.ping", "params": {}}),
    );
    assert_eq!(status, 200, "{body}");
    assert!(open_fds(pid) <= fds_before + 4, "descriptors left open");
}

#[test]
fn a_request_line_over_the_limit_is_refused_and_ends_the_connection() {
    let agent = Agent::start(&[]);
    let stream = UnixStream::connect(agent.socket()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'a'; 1024 * 1024];
        for _ in 0..65 {
            if writer.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let answer: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(answer["error"]["code"], "bad_request", "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than 64 MiB"),
        "{answer}"
    );
    line.clear();
    assert_eq!(reader.read_line(&mut line).unwrap_or(0), 0, "{line}");
    sender.join().unwrap();
    ping(&agent);
}

#[test]
fn pipelined_pings_are_all_answered_in_bounded_memory() {
    const PINGS: u64 = 100_000;
    let agent = Agent::start(&[]);
    let pid = agent.server.as_ref().unwrap().pid();
    for _ in 0..100 {
        ping(&agent);
    }
    let (rss_before, peak_before) = (status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM"));
    let stream = UnixStream::connect(agent.socket()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let started = Instant::now();
    let sender = std::thread::spawn(move || {
        let mut batch = String::new();
        for id in 0..PINGS {
            batch.push_str(&format!(
                "{{\"id\":{id},\"method\":\"system.ping\",\"params\":{{}}}}\n"
            ));
            if batch.len() > 64 * 1024 {
                writer.write_all(batch.as_bytes()).unwrap();
                batch.clear();
            }
        }
        writer.write_all(batch.as_bytes()).unwrap();
    });
    let mut seen = vec![false; PINGS as usize];
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    for _ in 0..PINGS {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "closed early");
        let answer: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(answer["ok"], true, "{answer}");
        seen[answer["id"].as_u64().unwrap() as usize] = true;
    }
    sender.join().unwrap();
    let took = started.elapsed();
    assert!(seen.iter().all(|seen| *seen));
    let (rss_after, peak_after) = (status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM"));
    eprintln!(
        "{PINGS} pipelined pings in {took:?}: VmRSS {rss_before} → {rss_after} KiB, VmHWM {peak_before} → {peak_after} KiB"
    );
    // Without back-pressure every request waited in memory with its answer (300,000 took
    // 1.5 GB); bounded, the peak grows by a few MiB.
    assert!(
        peak_after.saturating_sub(peak_before) < 64 * 1024,
        "{peak_before} → {peak_after} KiB"
    );
}

/// Waits until the session runs nothing, then runs a foreground command in it.
fn session_is_free(agent: &Agent, sid: &Value) {
    agent.wait_idle(sid);
    let done = agent.ok(
        "exec.run",
        json!({"session_id": sid, "command": "echo free"}),
    );
    assert_eq!(done["stdout"], "free\n", "{done}");
}

fn wait_gone(container: &TestContainer, cmdline: &str) -> Duration {
    let started = Instant::now();
    while container.count_running(cmdline) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{cmdline} went on"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

#[test]
fn an_exec_run_whose_client_leaves_is_cancelled_on_both_transports() {
    let agent = Agent::start_with_http(true, &[]);
    let container = TestContainer::start(BUSYBOX);
    let sid =
        agent.ok("session.create", json!({"container_id": container.id}))["session_id"].clone();
    // Socket: ask, then hang up.
    {
        let mut client = agent.client();
        client.send(
            "exec.run",
            json!({"session_id": sid, "command": "sleep 600"}),
        );
        container.wait_until_running("sleep 600");
    }
    let took = wait_gone(&container, "sleep 600");
    eprintln!("socket client gone: sleep 600 ended within {took:?}");
    session_is_free(&agent, &sid);
    // HTTP: curl gives up after 2 s.
    let body = json!({"id": 1, "method": "exec.run", "params": {"session_id": sid, "command": "sleep 601"}});
    agent.post_and_hang_up(&body, 2);
    let took = wait_gone(&container, "sleep 601");
    eprintln!("HTTP client gone: sleep 601 ended within {took:?}");
    session_is_free(&agent, &sid);
    // A client that only stops sending still gets its answer.
    let stream = UnixStream::connect(agent.socket()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let line = json!({"id": 7, "method": "exec.run", "params": {"session_id": sid, "command": "sleep 1; echo half"}});
    (&stream).write_all(format!("{line}\n").as_bytes()).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["data"]["stdout"], "half\n", "{answer}");
}

#[test]
fn mcp_answers_a_line_that_is_not_json_with_a_parse_error() {
    let mut child = std::process::Command::new(dcx_path())
        .arg("mcp")
        .env("XDG_CACHE_HOME", crate::harness::test_cache_home())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}});
    stdin
        .write_all(format!("this is not json\n{initialize}\n{{\"jsonrpc\": \n").as_bytes())
        .unwrap();
    // Three answers, in any order (JSON-RPC does not order them): the initialize's, and a
    // parse error with a null id for each of the two lines that are not JSON.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let answers: Vec<Value> = (0..3)
        .map(|_| serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap())
        .collect();
    let (initialized, errors): (Vec<&Value>, Vec<&Value>) =
        answers.iter().partition(|answer| answer["id"] == json!(1));
    assert_eq!(initialized.len(), 1, "{answers:?}");
    assert_eq!(
        initialized[0]["result"]["serverInfo"]["name"], "dcx",
        "{answers:?}"
    );
    assert_eq!(errors.len(), 2, "{answers:?}");
    for error in errors {
        assert_eq!(error["jsonrpc"], "2.0", "{error}");
        assert_eq!(error["id"], Value::Null, "{error}");
        assert_eq!(error["error"]["code"], -32700, "{error}");
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn control_methods_answer_within_a_second_with_the_daemon_frozen() {
    let container = TestContainer::start(BUSYBOX);
    let daemon = crate::reliability::FreezableDaemon::start();
    let agent = Agent::start_with_env(false, &[], &[("DOCKER_HOST", &daemon.host())]);
    let sid =
        agent.ok("session.create", json!({"container_id": container.id}))["session_id"].clone();
    let started = agent.ok(
        "exec.start",
        json!({"session_id": sid, "command": "sleep 602"}),
    );
    container.wait_until_running("sleep 602");
    let before = agent.ok("session.info", json!({"session_id": sid}));
    agent.ok("system.stats", json!({}));
    daemon.signal("STOP");
    let timed = |method: &str, params: Value| {
        let at = Instant::now();
        let data = agent.ok(method, params);
        let took = at.elapsed();
        eprintln!("{method} with the daemon frozen: {took:?}");
        assert!(took < Duration::from_secs(4), "{method}: {took:?}");
        data
    };
    let info = timed("session.info", json!({"session_id": sid}));
    assert_eq!(info["cwd"], before["cwd"], "{info}");
    assert!(
        info["engine_note"]
            .as_str()
            .unwrap()
            .contains("did not answer"),
        "{info}"
    );
    let stats = timed("system.stats", json!({}));
    assert_eq!(stats["sessions"], 1, "{stats}");
    let cancel = timed("exec.cancel", json!({"exec_id": started["exec_id"]}));
    assert_eq!(cancel["state"], "running", "{cancel}");
    assert!(
        cancel["note"].as_str().unwrap().contains("has not ended"),
        "{cancel}"
    );
    daemon.signal("CONT");
    // Killed with the group whatever became of the first signal.
    let _ = agent.client().call(
        "exec.cancel",
        json!({"exec_id": started["exec_id"], "signal": "KILL"}),
    );
}

#[test]
fn a_client_that_leaves_with_its_requests_at_the_cap_still_stops_its_exec_run() {
    let agent = Agent::start(&[]);
    let container = TestContainer::start(BUSYBOX);
    let sid = agent.ok(
        "session.create",
        json!({"container_id": container.id, "concurrent": true}),
    )["session_id"]
        .clone();
    let background = agent.ok(
        "exec.start",
        json!({"session_id": sid, "command": "sleep 605"}),
    );
    {
        let mut client = agent.client();
        client.send(
            "exec.run",
            json!({"session_id": sid, "command": "sleep 604"}),
        );
        container.wait_until_running("sleep 604");
        // 70 reads that wait 30 s: the connection's 64 requests in flight, and more waiting.
        for _ in 0..70 {
            client.send(
                "exec.read",
                json!({"exec_id": background["exec_id"], "wait_ms": 30_000}),
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let took = wait_gone(&container, "sleep 604");
    eprintln!("client gone with its requests at the cap: sleep 604 ended within {took:?}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    agent.ok(
        "exec.cancel",
        json!({"exec_id": background["exec_id"], "signal": "KILL"}),
    );
}
