//! `dcx exec` through a running `dcx serve` (DCX_SERVER), on Docker and crun: the exec
//! scenarios give what a plain `dcx exec` gives (output, exit codes, stdin, terminal, signals,
//! `--timeout`, `--log-format json`, a gibibyte by sha256), each run counted in the server's
//! log so that a silent fallback cannot pass; and with no server, a dead socket or a server of
//! another version, dcx runs alone and says why at debug level.

use std::io::{BufRead, BufReader, Write};
use std::process::Command;

use crate::harness::{
    CrunContainer, DEBIAN, Outcome, Subject, TestContainer, TestServer, ViaServer,
    assert_fixed_size_from_the_start,
};

/// Runs `args` plainly and through the server; both outcomes (plain first), the server's run
/// checked to have been served.
fn both(
    subject: &dyn Subject,
    server: &TestServer,
    args: &[&str],
    stdin: &[u8],
) -> (Outcome, Outcome) {
    let before = server.attaches();
    let plain = subject.dcx(args).stdin(stdin.to_vec()).run();
    let served = subject.dcx(args).via(server).stdin(stdin.to_vec()).run();
    server.assert_attaches(before + 1);
    (plain, served)
}

/// The same exit code, stdout and stderr.
#[track_caller]
fn identical(plain: &Outcome, served: &Outcome) {
    assert_eq!(
        (served.code, &served.stdout_text(), &served.stderr_text()),
        (plain.code, &plain.stdout_text(), &plain.stderr_text()),
        "{}",
        served.description
    );
}

fn basics(subject: &dyn Subject, server: &TestServer) {
    let bytes: Vec<u8> = (0..=255).collect();
    let cases: [(&[&str], &[u8]); 10] = [
        (&["echo", "hi"], b""),
        (&["sh", "-c", "exit 123"], b""),
        (&["sh", "-c", "kill -TERM $$"], b""),
        (&["sh", "-c", "kill -KILL $$"], b""),
        (&["sh", "-c", "kill -INT $$"], b""),
        (&["cat"], &bytes),
        (&["sh", "-c", "cat; echo after-eof"], b"line\n"),
        (&["[", "!", "-t", "0", "]"], b""),
        (
            &[
                "sh",
                "-c",
                "printf out1; printf err1 >&2; printf 'out2\\n'; printf 'err2\\n' >&2",
            ],
            b"",
        ),
        (&["no-such-program"], b""),
    ];
    for (args, stdin) in cases {
        let (plain, served) = both(subject, server, args, stdin);
        identical(&plain, &served);
    }
    let (plain, served) = both(subject, server, &["cat"], &bytes);
    assert_eq!(served.stdout, bytes);
    identical(&plain, &served);
    let (_, served) = both(subject, server, &["sh", "-c", "exit 123"], b"");
    assert_eq!(served.code, Some(123));
    // A closed stdin never hangs, and is EOF.
    let before = server.attaches();
    subject
        .dcx(&["cat"])
        .via(server)
        .stdin_closed()
        .run()
        .code(0)
        .stdout("");
    server.assert_attaches(before + 1);
}

#[test]
fn the_exec_scenarios_give_what_a_plain_exec_gives_on_docker() {
    let server = TestServer::start();
    let c = TestContainer::start(DEBIAN);
    basics(&c, &server);
}

#[test]
fn the_exec_scenarios_give_what_a_plain_exec_gives_on_crun() {
    let server = TestServer::start();
    let c = CrunContainer::start("debian", &[]);
    basics(&c, &server);
}

fn terminal(subject: &dyn Subject, server: &TestServer) {
    let via = ViaServer { subject, server };
    let before = server.attaches();
    let mut run = via.dcx(&["[", "-t", "1", "]"]).spawn_in_terminal(24, 80);
    assert_eq!(run.wait(), Some(0), "{}", run.stdout.text());
    assert!(run.terminal_is_cooked(), "the terminal is restored");
    // The size is there from the first instruction, every time.
    assert_fixed_size_from_the_start(&via, 20);
    // The host terminal's size, then its resize.
    let mut run = via.dcx(&["sh"]).spawn_in_terminal(31, 97);
    run.type_in(b"stty size; echo first-done\n");
    run.stdout.wait_for("31 97");
    run.resize(41, 123);
    let started = std::time::Instant::now();
    while !run.stdout.text().contains("41 123") {
        assert!(
            started.elapsed().as_secs() < 60,
            "resize never seen: {}",
            run.stdout.text()
        );
        run.type_in(b"stty size\n");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    run.type_in(b"exit 5\n");
    assert_eq!(run.wait(), Some(5));
    assert!(run.terminal_is_cooked(), "the terminal is restored");
    // Output that starts with bytes 0 to 2 comes through the terminal byte-exact.
    let mut run = via
        .dcx(&["printf", "\\0\\1\\2end"])
        .spawn_in_terminal(24, 80);
    assert_eq!(run.wait(), Some(0));
    run.stdout.wait_for("end");
    assert_eq!(run.stdout.bytes(), b"\0\x01\x02end");
    server.assert_attaches(before + 23);
}

#[test]
fn the_terminal_is_sized_from_the_first_instruction_and_follows_resizes_on_docker() {
    let server = TestServer::start();
    let c = TestContainer::start(DEBIAN);
    terminal(&c, &server);
}

#[test]
fn the_terminal_is_sized_from_the_first_instruction_and_follows_resizes_on_crun() {
    let server = TestServer::start();
    let c = CrunContainer::start("debian", &[]);
    terminal(&c, &server);
}

fn signals(subject: &dyn Subject, server: &TestServer) {
    let before = server.attaches();
    // A trapping process gets the signal and dcx ends with its own code.
    let run = subject
        .dcx(&[
            "sh",
            "-c",
            "trap 'echo got TERM; kill $!; exit 7' TERM; echo ready; sleep 100 & wait",
        ])
        .via(server)
        .spawn();
    run.stdout.wait_for("ready");
    subject.wait_until_running("sleep 100");
    run.signal("TERM");
    let stdout = run.stdout.clone();
    assert_eq!(run.finish(), Some(7));
    assert_eq!(stdout.text(), "ready\ngot TERM\n");
    assert_eq!(subject.count_running("sleep 100"), 0);
    // The whole group goes: a pipeline's every process.
    for (name, code) in [("TERM", 143), ("HUP", 129), ("QUIT", 131)] {
        let run = subject
            .dcx(&["sh", "-c", "sleep 101 | sleep 102"])
            .via(server)
            .spawn();
        subject.wait_until_running("sleep 101");
        subject.wait_until_running("sleep 102");
        run.signal(name);
        assert_eq!(run.finish(), Some(code), "SIG{name}");
        assert_eq!(subject.count_running("sleep 101"), 0, "SIG{name}");
        assert_eq!(subject.count_running("sleep 102"), 0, "SIG{name}");
    }
    // SIGINT under a terminal.
    let mut run = subject
        .dcx(&["sleep", "103"])
        .via(server)
        .spawn_in_terminal(24, 80);
    subject.wait_until_running("sleep 103");
    run.signal("INT");
    assert_eq!(run.wait(), Some(130));
    assert_eq!(subject.count_running("sleep 103"), 0);
    // --timeout: the same error and 124, the command gone, even one that ignores SIGTERM.
    subject
        .dcx(&["--timeout", "1s", "sleep", "30"])
        .via(server)
        .run()
        .code(124)
        .stdout("")
        .stderr("error: Timed out after 1s.\n");
    assert_eq!(subject.count_running("sleep 30"), 0);
    subject
        .dcx(&["--timeout", "1", "sh", "-c", "trap '' TERM; sleep 31"])
        .via(server)
        .run()
        .code(124);
    assert_eq!(subject.count_running("sleep 31"), 0);
    subject
        .dcx(&["--timeout", "30s", "sh", "-c", "exit 3"])
        .via(server)
        .run()
        .code(3);
    server.assert_attaches(before + 8);
}

#[test]
fn signals_reach_the_group_and_timeouts_end_with_124_on_docker() {
    let server = TestServer::start();
    let c = TestContainer::start(DEBIAN);
    signals(&c, &server);
}

#[test]
fn signals_reach_the_group_and_timeouts_end_with_124_on_crun() {
    let server = TestServer::start();
    let c = CrunContainer::start("debian", &[]);
    signals(&c, &server);
}

/// The events of a `--log-format json` run, timestamps left out.
fn events(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .map(|line| {
            let mut event: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|err| panic!("{line:?}: {err}"));
            if let Some(fields) = event.as_object_mut() {
                fields.remove("timestamp");
                fields.remove("startTimestamp");
            }
            event
        })
        .collect()
}

fn json_log(subject: &dyn Subject, server: &TestServer) {
    let script = "printf 'out\\n'; printf 'err\\n' >&2; printf '\\342\\202\\254'; exit 4";
    let (plain, served) = both(
        subject,
        server,
        &["--log-format", "json", "sh", "-c", script],
        b"",
    );
    assert_eq!(served.code, Some(4));
    assert_eq!(served.stdout, plain.stdout);
    let texts: String = events(&served.stderr_text())
        .iter()
        .filter(|event| event["type"] == "raw")
        .map(|event| event["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        texts.contains("out") && texts.contains("err") && texts.contains('€'),
        "{texts:?}"
    );
    // Beside the output (chunked as it comes), the same events.
    let others = |outcome: &Outcome| -> Vec<serde_json::Value> {
        events(&outcome.stderr_text())
            .into_iter()
            .filter(|event| event["type"] != "raw")
            .collect()
    };
    assert_eq!(others(&served), others(&plain));
    // An error after the run keeps its JSON shape too.
    let (plain, served) = both(
        subject,
        server,
        &["--log-format", "json", "--timeout", "1s", "sleep", "20"],
        b"",
    );
    assert_eq!(served.code, Some(124));
    assert_eq!(events(&served.stderr_text()), events(&plain.stderr_text()));
}

#[test]
fn log_format_json_gives_the_same_events_on_docker_and_crun() {
    let server = TestServer::start();
    let c = TestContainer::start(DEBIAN);
    json_log(&c, &server);
    let c = CrunContainer::start("debian", &[]);
    json_log(&c, &server);
}

/// A gibibyte of patterned bytes through `dcx exec cat`: the sha256 of what comes out is the
/// input's.
fn gibibyte(subject: &dyn Subject, server: &TestServer) {
    const GIB: u64 = 1 << 30;
    // (`yes` ends by SIGPIPE: only dcx's status is checked.)
    let source = format!("yes 'dcx server path 0123456789' | head -c {GIB}");
    let expected = Command::new("bash")
        .arg("-c")
        .arg(format!("{source} | sha256sum"))
        .output()
        .expect("sha256sum");
    let before = server.attaches();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{source} | {} | sha256sum; exit ${{PIPESTATUS[2]}}",
            subject.dcx_line(&["cat"])
        ))
        .env("DCX_SERVER", server.socket_str())
        .env("XDG_CACHE_HOME", crate::harness::test_cache_home())
        .output()
        .expect("run the pipeline");
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&expected.stdout)
    );
    server.assert_attaches(before + 1);
}

#[test]
fn a_gibibyte_streams_stdin_to_stdout_exactly_on_docker() {
    let server = TestServer::start();
    let c = TestContainer::start(DEBIAN);
    gibibyte(&c, &server);
}

#[test]
fn a_gibibyte_streams_stdin_to_stdout_exactly_on_crun() {
    let server = TestServer::start();
    let c = CrunContainer::start("debian", &[]);
    gibibyte(&c, &server);
}

/// A server that answers the first line of every connection with `answer`.
fn fake_server(dir: &std::path::Path, answer: &'static str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("a folder");
    let path = dir.join("fake.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut line = Vec::new();
            let _ = BufReader::new(&stream).read_until(b'\n', &mut line);
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    path
}

#[test]
fn without_a_usable_server_dcx_runs_alone_and_says_why_at_debug_level() {
    let c = TestContainer::start(DEBIAN);
    let dir = tempfile::tempdir().unwrap();
    // A socket nobody listens on any more.
    let dead = dir.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    // A server of another version, and one too old to know attaches (it answers JSON errors).
    let other = fake_server(
        &dir.path().join("other"),
        "{\"event\":\"refused\",\"code\":\"version_mismatch\",\"message\":\"the server is dcx 0.0.0\"}\n",
    );
    let old = fake_server(
        &dir.path().join("old"),
        "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"bad_request\",\"message\":\"the request is not JSON\"}}\n",
    );
    let missing = dir.path().join("missing.sock");
    for (server, why) in [
        (dead.to_str().unwrap(), "cannot connect"),
        (other.to_str().unwrap(), "version_mismatch"),
        (old.to_str().unwrap(), "unreadable answer"),
        (missing.to_str().unwrap(), "cannot connect"),
    ] {
        let out = c
            .dcx(["--log-level", "debug", "sh", "-c", "echo alone; exit 9"])
            .env("DCX_SERVER", server)
            .run()
            .code(9)
            .stdout("alone\n");
        let stderr = out.stderr_text();
        assert!(
            stderr.contains("Not through a server") && stderr.contains(why),
            "{server}: {stderr}"
        );
        // At the default level nothing is said.
        c.dcx(["echo", "quiet"])
            .env("DCX_SERVER", server)
            .run()
            .code(0)
            .stdout("quiet\n")
            .stderr("");
    }
}

#[test]
fn the_real_server_refuses_another_version_and_runs_nothing() {
    let server = TestServer::start();
    let mut stream = std::os::unix::net::UnixStream::connect(&server.socket).unwrap();
    stream
        .write_all(b"\0{\"version\":\"0.0.0-other\",\"anything\":true}\n")
        .unwrap();
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).unwrap();
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["event"], "refused");
    assert_eq!(answer["code"], "version_mismatch");
    assert!(
        answer["message"].as_str().unwrap().contains("0.0.0-other"),
        "{answer}"
    );
    server.assert_attaches(0);
    // The server still serves JSON clients and attaches afterwards.
    let c = TestContainer::start(DEBIAN);
    c.dcx(["echo", "after"])
        .via(&server)
        .run()
        .code(0)
        .stdout("after\n");
    server.assert_attaches(1);
}

#[test]
fn auto_finds_a_server_at_the_default_socket_and_says_when_there_is_none() {
    let runtime_dir = tempfile::tempdir().unwrap();
    let runtime = runtime_dir.path().to_str().unwrap().to_owned();
    let c = TestContainer::start(DEBIAN);
    // None there yet: alone, and why at debug level.
    let out = c
        .dcx(["--log-level", "debug", "echo", "alone"])
        .env("DCX_SERVER", "auto")
        .env("XDG_RUNTIME_DIR", &runtime)
        .run()
        .code(0)
        .stdout("alone\n");
    assert!(
        out.stderr_text()
            .contains("DCX_SERVER=auto and no server socket at"),
        "{}",
        out.stderr_text()
    );
    let socket = runtime_dir.path().join("dcx/agent.sock");
    let server = TestServer::start_at(runtime_dir, socket);
    c.dcx(["echo", "served"])
        .env("DCX_SERVER", "auto")
        .env("XDG_RUNTIME_DIR", &runtime)
        .run()
        .code(0)
        .stdout("served\n");
    server.assert_attaches(1);
}

#[test]
fn a_client_killed_while_its_command_runs_hangs_the_command_up() {
    let server = TestServer::start();
    let c = TestContainer::start(DEBIAN);
    let mut run = c
        .dcx(["sh", "-c", "sleep 106 | sleep 107"])
        .via(&server)
        .spawn();
    c.wait_until_running("sleep 106");
    c.wait_until_running("sleep 107");
    run.signal("KILL");
    assert_eq!(run.wait(), None);
    // Gone well before the sleeps would end by themselves.
    let started = std::time::Instant::now();
    while c.count_running("sleep 106") + c.count_running("sleep 107") > 0 {
        assert!(
            started.elapsed().as_secs() < 60,
            "the command's group was left running"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    server.assert_attaches(1);
}
