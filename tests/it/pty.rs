//! PTY mode (`tty: true`) through the real clients: `dcx serve`'s unix socket and `dcx mcp`
//! driven by the Python MCP SDK (tests/mcp/pty.py), on the real daemon (and crun): `vi` edits a
//! file by typed text and named keys, `top` draws its screen, an interactive shell shows its
//! prompt (a python3 REPL on the Debian image; busybox `sh -i` and bash with a `>>> ` prompt
//! elsewhere), and
//! `stty size` follows `exec.resize`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::agent::{Agent, Client};
use crate::harness::{BUSYBOX, CrunContainer, DEBIAN, TestContainer, dcx_path};

/// Reads `exec` until its screen satisfies `done` (or the exec ends); the last read.
fn until(client: &mut Client, exec: &str, what: &str, done: impl Fn(&str) -> bool) -> Value {
    let started = Instant::now();
    let mut offset = 0;
    loop {
        let read = client.ok(
            "exec.read",
            json!({"exec_id": exec, "offset": offset, "wait_ms": 1000}),
        );
        offset = read["stdout_offset"].as_u64().unwrap();
        let screen = screen_text(&read);
        if done(&screen) {
            return read;
        }
        assert!(
            read["done"] == false && started.elapsed() < Duration::from_secs(30),
            "waiting for {what}: {read}\n{screen}"
        );
    }
}

/// The screen a read shows is `rows` by `cols`.
#[track_caller]
fn assert_screen_size(read: &Value, rows: u64, cols: u64) {
    assert_eq!(
        (&read["screen"]["rows_n"], &read["screen"]["cols_n"]),
        (&json!(rows), &json!(cols)),
        "{read}"
    );
}

/// The screen's rows, one line each.
fn screen_text(read: &Value) -> String {
    read["screen"]["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| format!("{}\n", row.as_str().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

fn type_in(client: &mut Client, exec: &str, data: &str, keys: &[&str]) {
    client.ok(
        "exec.write_stdin",
        json!({"exec_id": exec, "data": data, "keys": keys}),
    );
}

fn start(client: &mut Client, session: &str, command: &str, extra: Value) -> String {
    let mut params = json!({"session_id": session, "command": command, "tty": true});
    for (key, value) in extra.as_object().unwrap() {
        params[key] = value.clone();
    }
    let started = client.ok("exec.start", params);
    assert_eq!(started["state"], "running", "{started}");
    started["exec_id"].as_str().unwrap().to_owned()
}

/// Waits for the exec's end; its final read.
fn ended(client: &mut Client, exec: &str) -> Value {
    let started = Instant::now();
    let mut offset = 0;
    loop {
        let read = client.ok(
            "exec.read",
            json!({"exec_id": exec, "offset": offset, "wait_ms": 1000}),
        );
        if read["done"] == true {
            return read;
        }
        offset = read["stdout_offset"].as_u64().unwrap();
        assert!(started.elapsed() < Duration::from_secs(30), "{read}");
    }
}

/// vi, top, an interactive shell and a resize in the session `create` makes.
fn terminal_programs(agent: &Agent, create: Value) {
    let mut client = agent.client();
    let session = client.ok("session.create", create);
    let sid = session["session_id"].as_str().unwrap().to_owned();
    let sid = sid.as_str();

    // vi: insert, Escape, write and quit.
    client.ok(
        "exec.run",
        json!({"session_id": sid, "command": "rm -f /tmp/pty-vi.txt"}),
    );
    let vi = start(&mut client, sid, "vi /tmp/pty-vi.txt", json!({}));
    until(&mut client, &vi, "vi's screen", |screen| {
        screen.lines().filter(|line| *line == "~").count() > 5
    });
    // As a careful typist: each step once the screen shows the last one (busybox vi drops
    // what follows an `i` in the same read when an Escape comes with it).
    type_in(&mut client, &vi, "ihello", &[]);
    until(&mut client, &vi, "the text", |screen| {
        screen.starts_with("hello\n")
    });
    type_in(&mut client, &vi, "", &["Esc"]);
    until(&mut client, &vi, "command mode", |screen| {
        screen
            .lines()
            .last()
            .is_some_and(|status| status.starts_with("- "))
    });
    type_in(&mut client, &vi, ":wq", &["Enter"]);
    let end = ended(&mut client, &vi);
    assert_eq!(end["exit_code"], 0, "{end}");
    assert_eq!(end["stderr"], "");
    let file = client.ok(
        "exec.run",
        json!({"session_id": sid, "command": "cat /tmp/pty-vi.txt"}),
    );
    assert_eq!(file["stdout"], "hello\n", "{file}");

    // top draws its table; q quits.
    let top = start(&mut client, sid, "top", json!({"rows": 30, "cols": 100}));
    let read = until(&mut client, &top, "top's table", |screen| {
        screen.contains("PID")
    });
    assert_screen_size(&read, 30, 100);
    type_in(&mut client, &top, "", &["q"]);
    assert_eq!(ended(&mut client, &top)["exit_code"], 0);

    // An interactive shell: its prompt, a line typed, TERM, and the size after a resize.
    let shell = start(&mut client, sid, "sh -i", json!({"env": {"PS1": ">>> "}}));
    until(&mut client, &shell, "the prompt", |screen| {
        screen.lines().any(|line| line == ">>>")
    });
    type_in(
        &mut client,
        &shell,
        "echo $((6*7)) $TERM; stty size",
        &["Enter"],
    );
    // TERM: the container's own where it sets one (Docker's `xterm` in a `-t` container), else
    // xterm-256color; never dumb.
    until(&mut client, &shell, "the answer", |screen| {
        screen.contains("\n42 xterm") && screen.contains("\n24 80\n>>>")
    });
    let resized = client.ok(
        "exec.resize",
        json!({"exec_id": shell, "rows": 33, "cols": 101}),
    );
    assert_eq!(resized["rows"], 33);
    type_in(&mut client, &shell, "stty size", &["Enter"]);
    let read = until(&mut client, &shell, "the new size", |screen| {
        screen.contains("\n33 101\n>>>")
    });
    assert_screen_size(&read, 33, 101);
    // ^C at the prompt, then ^D ends the shell.
    type_in(&mut client, &shell, "sleep 60", &["Enter"]);
    std::thread::sleep(Duration::from_millis(500));
    type_in(&mut client, &shell, "", &["C-c"]);
    until(&mut client, &shell, "a fresh prompt", |screen| {
        screen.trim_end().ends_with(">>>") && screen.contains("sleep 60")
    });
    type_in(&mut client, &shell, "true", &["Enter"]);
    std::thread::sleep(Duration::from_millis(300));
    type_in(&mut client, &shell, "", &["C-d"]);
    let end = ended(&mut client, &shell);
    assert_eq!(
        (end["state"].as_str(), end["exit_code"].as_i64()),
        (Some("exited"), Some(0)),
        "{end}"
    );
    assert_eq!(end["stderr_bytes"], 0, "{end}");

    // Refused: a terminal for exec.run, a resize of a command without one.
    let (code, message) = client.error(
        "exec.run",
        json!({"session_id": sid, "command": "true", "tty": true}),
    );
    assert_eq!(code, "bad_request");
    assert!(
        message.starts_with("`tty` is for exec.start only"),
        "{message}"
    );
}

#[test]
fn vi_top_a_shell_and_a_resize_through_serve_on_docker() {
    let agent = Agent::start(&[]);
    let container = TestContainer::start(BUSYBOX);
    // Through the in-container helper (the default), and by plain engine exec.
    terminal_programs(&agent, json!({"container_id": container.name}));
    terminal_programs(
        &agent,
        json!({"container_id": container.name, "helper": false}),
    );
}

#[test]
fn vi_top_a_shell_and_a_resize_through_serve_on_crun() {
    let agent = Agent::start(&[]);
    let container = CrunContainer::start("busybox", &[]);
    terminal_programs(
        &agent,
        json!({"container_id": container.id, "runtime": "crun", "crun_root": container.root_str()}),
    );
}

#[test]
fn a_terminal_through_mcp_on_docker() {
    let container = TestContainer::start(DEBIAN);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/pty.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(dcx_path())
        .args(["--container-id", &container.name])
        .env("XDG_CACHE_HOME", crate::harness::test_cache_home())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}{} (the Python MCP SDK comes from scripts/setup.sh: pip install mcp)",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A python3 REPL in PTY mode through serve: its `>>>`, an answer, and ^D ending it; on Docker
/// (through the helper) and on crun.
#[test]
fn a_python_repl_through_serve_on_docker_and_crun() {
    let agent = Agent::start(&[]);
    let docker = TestContainer::start(DEBIAN);
    let crun = CrunContainer::start("debian", &[]);
    for create in [
        json!({"container_id": docker.name}),
        json!({"container_id": crun.id, "runtime": "crun", "crun_root": crun.root_str()}),
    ] {
        let mut client = agent.client();
        let sid = client.ok("session.create", create)["session_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let repl = start(&mut client, &sid, "python3 -q", json!({}));
        until(&mut client, &repl, "python's prompt", |screen| {
            screen.lines().any(|line| line == ">>>")
        });
        type_in(&mut client, &repl, "6*7", &["Enter"]);
        until(&mut client, &repl, "python's answer", |screen| {
            screen.contains("\n42\n>>>")
        });
        type_in(&mut client, &repl, "", &["C-d"]);
        let end = ended(&mut client, &repl);
        assert_eq!(end["exit_code"], 0, "{end}");
    }
}
