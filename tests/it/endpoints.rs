//! Every Docker endpoint users have, real ones started by scripts/setup.sh
//! (scripts/endpoints.sh): a second daemon standing in for a remote host, reached through
//! contexts (`DOCKER_CONTEXT`, `docker context use`) and `DOCKER_HOST`, with a container of the
//! same name on each daemon (dcx must reach the daemon `docker` reaches, never the other);
//! `ssh://` through a real sshd; TLS through a real TLS listener (and a wrong CA); podman's API
//! service, signals and timeouts included, and `cp`, `logs`, `top` and `mcp` on it through
//! `--docker-path podman`.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{BUSYBOX, Cmd, TestContainer, dcx, setting};

/// `docker` (or `podman`) with these variables; its stdout, asserting success.
fn cli(program: &str, env: &[(&str, String)], args: &[&str]) -> String {
    let mut command = Command::new(program);
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A container on some engine, removed when dropped.
struct Remote {
    program: &'static str,
    env: Vec<(&'static str, String)>,
    name: String,
}

impl Remote {
    fn start(program: &'static str, env: Vec<(&'static str, String)>, run: &[&str]) -> Self {
        let name = format!("dcx-it-ep-{}-{}", std::process::id(), unique());
        let mut args = vec!["run", "-d", "--name", &name];
        args.extend_from_slice(run);
        cli(program, &env, &args);
        Self { program, env, name }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        let mut command = Command::new(self.program);
        for (name, value) in &self.env {
            command.env(name, value);
        }
        let _ = command
            .args(["rm", "-f", &self.name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn unique() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `dcx exec` with these variables (and no endpoint variable of the caller's).
fn dcx_with(env: &[(&str, String)]) -> Cmd {
    let mut cmd = dcx()
        .env("DOCKER_HOST", "")
        .env("DOCKER_CONTEXT", "")
        .env("DOCKER_TLS_VERIFY", "")
        .env("DOCKER_TLS", "");
    for (name, value) in env {
        cmd = cmd.env(name, value);
    }
    cmd
}

#[test]
fn dcx_reaches_the_daemon_docker_reaches() {
    let second = setting("DCX_DOCKER2_HOST");
    let config = tempfile::tempdir().unwrap();
    let config_dir = config.path().to_str().unwrap().to_owned();
    let base = vec![
        ("DOCKER_CONFIG", config_dir.clone()),
        ("DOCKER_HOST", String::new()),
        ("DOCKER_CONTEXT", String::new()),
    ];
    cli(
        "docker",
        &base,
        &[
            "context",
            "create",
            "second",
            "--docker",
            &format!("host={second}"),
        ],
    );
    let tls = setting("DCX_TLS_DIR");
    cli(
        "docker",
        &base,
        &[
            "context",
            "create",
            "tls",
            "--docker",
            &format!(
                "host={},ca={tls}/ca.pem,cert={tls}/cert.pem,key={tls}/key.pem",
                setting("DCX_TLS_HOST")
            ),
        ],
    );
    // A container of the same name on each daemon, told apart by its hostname.
    let name = format!("dcx-it-twin-{}", std::process::id());
    let on_second = vec![("DOCKER_HOST", second.clone())];
    let _first = Remote {
        program: "docker",
        env: Vec::new(),
        name: name.clone(),
    };
    let _second = Remote {
        program: "docker",
        env: on_second.clone(),
        name: name.clone(),
    };
    let run = |env: &[(&str, String)], hostname: &str| {
        cli(
            "docker",
            env,
            &[
                "run",
                "-d",
                "--network",
                "none",
                "--name",
                &name,
                "--hostname",
                hostname,
                "--label",
                "dcx.twin=1",
                BUSYBOX,
                "sleep",
                "1000000",
            ],
        )
    };
    run(&[], "on-the-first");
    run(&on_second, "on-the-second");

    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("nothing set", vec![]),
        ("DOCKER_CONTEXT", vec![("DOCKER_CONTEXT", "second".into())]),
        (
            "DOCKER_CONTEXT over TLS",
            vec![("DOCKER_CONTEXT", "tls".into())],
        ),
        ("DOCKER_HOST", vec![("DOCKER_HOST", second.clone())]),
        (
            "DOCKER_HOST over DOCKER_CONTEXT",
            vec![
                ("DOCKER_HOST", "unix:///var/run/docker.sock".into()),
                ("DOCKER_CONTEXT", "second".into()),
            ],
        ),
        (
            "the default context",
            vec![("DOCKER_CONTEXT", "default".into())],
        ),
    ];
    let check = |what: &str, extra: &[(&str, String)]| {
        let mut env = base.clone();
        env.extend(extra.iter().cloned());
        let docker_says = cli("docker", &env, &["exec", &name, "hostname"]);
        for selector in [
            ["--container-id", name.as_str()],
            ["--id-label", "dcx.twin=1"],
        ] {
            let out = dcx_with(&env)
                .args(["exec"])
                .args(selector)
                .args(["hostname"])
                .run()
                .code(0);
            assert_eq!(out.stdout_text(), docker_says, "{what} ({selector:?})");
        }
        docker_says
    };
    let mut reached = Vec::new();
    for (what, extra) in &cases {
        reached.push(check(what, extra));
    }
    assert_eq!(
        reached,
        [
            "on-the-first\n",
            "on-the-second\n",
            "on-the-first\n",
            "on-the-second\n",
            "on-the-first\n",
            "on-the-first\n"
        ]
    );
    // `docker context use`: the current context in config.json.
    cli("docker", &base, &["context", "use", "second"]);
    assert_eq!(check("currentContext", &[]), "on-the-second\n");
    // An unknown context is an error naming it, never the default daemon.
    let mut env = base.clone();
    env.push(("DOCKER_CONTEXT", "nope".into()));
    let out = dcx_with(&env)
        .args(["exec", "--container-id", &name, "hostname"])
        .run()
        .code(1);
    assert!(
        out.stderr_text()
            .starts_with("error: No such Docker context: nope (from DOCKER_CONTEXT; "),
        "{}",
        out.stderr_text()
    );
    // --log-level debug names the endpoint and where it came from.
    let mut env = base.clone();
    env.push(("DOCKER_CONTEXT", "second".into()));
    let out = dcx_with(&env)
        .args([
            "exec",
            "--log-level",
            "debug",
            "--container-id",
            &name,
            "true",
        ])
        .run()
        .code(0);
    assert!(
        out.stderr_text().contains(&format!(
            "Docker endpoint: {second} (from context second (DOCKER_CONTEXT))"
        )),
        "{}",
        out.stderr_text()
    );
}

/// What must hold on every endpoint: exit codes, separate streams, stdin, a PTY of the given
/// size, env, and selection by workspace folder and label. `target` names a container started
/// with the labels of `workspace`.
fn scenarios(env: &[(&str, String)], target: &str, workspace: &std::path::Path) {
    let exec = |args: &[&str]| {
        dcx_with(env)
            .args(["exec", "--container-id", target])
            .args(args.iter().copied())
    };
    exec(&["sh", "-c", "exit 7"]).run().code(7);
    exec(&["sh", "-c", "echo out; echo err >&2"])
        .run()
        .code(0)
        .stdout("out\n")
        .stderr("err\n");
    exec(&["cat"])
        .stdin("piped\0bytes\n")
        .run()
        .code(0)
        .stdout("piped\0bytes\n");
    exec(&["--remote-env", "FOO=bar baz", "sh", "-c", "echo \"$FOO\""])
        .run()
        .code(0)
        .stdout("bar baz\n");
    let mut run = exec(&["sh", "-c", "stty size; tty"]).spawn_in_terminal(31, 97);
    assert_eq!(run.wait(), Some(0), "{}", run.stdout.text());
    run.stdout.wait_for("31 97");
    run.stdout.wait_for("/dev/pts/");
    dcx_with(env)
        .args([
            "exec",
            "--workspace-folder",
            workspace.to_str().unwrap(),
            "hostname",
        ])
        .run()
        .code(0)
        .stdout("scenario-host\n");
    dcx_with(env)
        .args(["exec", "--id-label", "dcx.scenario=1", "sh", "-c", "exit 3"])
        .run()
        .code(3);
}

/// A workspace folder with a config, and `docker run` options giving a container its labels.
fn workspace() -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".devcontainer")).unwrap();
    let config = dir.path().join(".devcontainer/devcontainer.json");
    std::fs::write(
        &config,
        r#"{"image": "dcx-test/busybox", "workspaceFolder": "/tmp"}"#,
    )
    .unwrap();
    let folder = dir.path().to_str().unwrap().to_owned();
    let labels = vec![
        "--label".to_owned(),
        format!("devcontainer.local_folder={folder}"),
        "--label".to_owned(),
        format!("devcontainer.config_file={}", config.display()),
        "--label".to_owned(),
        "dcx.scenario=1".to_owned(),
        "--hostname".to_owned(),
        "scenario-host".to_owned(),
    ];
    (dir, labels)
}

#[test]
fn ssh_endpoints_pass_the_scenarios() {
    let (dir, labels) = workspace();
    let options: Vec<&str> = labels.iter().map(String::as_str).collect();
    let container = TestContainer::start_with(BUSYBOX, &options);
    let path = format!(
        "{}:{}",
        setting("DCX_SSH_PATH"),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = vec![
        ("DOCKER_HOST", setting("DCX_SSH_HOST")),
        ("PATH", path.clone()),
    ];
    scenarios(&env, &container.name, dir.path());
    // A host that does not answer: ssh's own reason.
    let out = dcx_with(&[
        ("DOCKER_HOST", "ssh://root@127.0.0.1:1".into()),
        ("PATH", path),
    ])
    .args(["exec", "--container-id", &container.name, "true"])
    .run()
    .code(1);
    assert_eq!(
        out.stderr_text(),
        "error: Cannot connect to the Docker daemon at ssh://root@127.0.0.1:1 (ssh: connect to host 127.0.0.1 port 1: Connection refused). Is it running? Otherwise point DOCKER_HOST at one that is.\n"
    );
}

#[test]
fn tls_endpoints_pass_the_scenarios() {
    let (dir, labels) = workspace();
    let options: Vec<&str> = labels.iter().map(String::as_str).collect();
    let container = TestContainer::start_with(BUSYBOX, &options);
    let tls = setting("DCX_TLS_DIR");
    let host = setting("DCX_TLS_HOST");
    let env = vec![
        ("DOCKER_HOST", host.clone()),
        ("DOCKER_TLS_VERIFY", "1".to_owned()),
        ("DOCKER_CERT_PATH", tls.clone()),
    ];
    scenarios(&env, &container.name, dir.path());
    // A daemon whose certificate the CA did not sign.
    let out = dcx_with(&[
        ("DOCKER_HOST", host.clone()),
        ("DOCKER_TLS_VERIFY", "1".to_owned()),
        ("DOCKER_CERT_PATH", format!("{tls}/wrong-ca")),
    ])
    .args(["exec", "--container-id", &container.name, "true"])
    .run()
    .code(1);
    assert_eq!(
        out.stderr_text(),
        format!(
            "error: Cannot connect to the Docker daemon at {host} (invalid peer certificate: UnknownIssuer). Is it running? Otherwise point DOCKER_HOST at one that is.\n"
        )
    );
    // TLS asked for with no certificates: the missing file, by name.
    let empty = tempfile::tempdir().unwrap();
    let out = dcx_with(&[
        ("DOCKER_HOST", host.clone()),
        ("DOCKER_TLS_VERIFY", "1".to_owned()),
        (
            "DOCKER_CERT_PATH",
            empty.path().to_str().unwrap().to_owned(),
        ),
    ])
    .args(["exec", "--container-id", &container.name, "true"])
    .run()
    .code(1);
    assert_eq!(
        out.stderr_text(),
        format!(
            "error: Cannot read {}/ca.pem (the CA certificate, for DOCKER_TLS_VERIFY): No such file or directory\n",
            empty.path().display()
        )
    );
    // Plain HTTP to the TLS port is no daemon at all.
    dcx_with(&[("DOCKER_HOST", host)])
        .args(["exec", "--container-id", &container.name, "true"])
        .run()
        .code(1);
}

/// Runs `dcx exec …` that prints `ready` and traps signals, sends `signal` once it is ready,
/// and returns (exit code, stdout, seconds from the signal to the end).
fn signalled(cmd: Cmd, signal: &str) -> (Option<i32>, String, f64) {
    let mut run = cmd.spawn();
    run.stdout.wait_for("ready");
    let sent = Instant::now();
    run.signal(signal);
    let code = run.wait();
    (code, run.stdout.text(), sent.elapsed().as_secs_f64())
}

#[test]
fn podman_passes_the_scenarios_signals_and_timeouts() {
    let socket = setting("DCX_PODMAN_SOCKET");
    let conf = vec![("CONTAINERS_CONF", setting("CONTAINERS_CONF"))];
    let (dir, labels) = workspace();
    let mut run: Vec<&str> = labels.iter().map(String::as_str).collect();
    run.extend([
        "--network",
        "host",
        "localhost/dcx-test/busybox",
        "sleep",
        "1000000",
    ]);
    let container = Remote::start("podman", conf, &run);
    // `--docker-path podman` goes to podman's socket, whatever DOCKER_HOST says.
    let env = vec![("DOCKER_HOST", "unix:///nonexistent.sock".to_owned())];
    let podman = |args: &[&str]| {
        dcx_with(&env)
            .args([
                "exec",
                "--docker-path",
                "podman",
                "--container-id",
                &container.name,
            ])
            .args(args.iter().copied())
    };
    podman(&["sh", "-c", "exit 7"]).run().code(7);
    podman(&["sh", "-c", "echo out; echo err >&2"])
        .run()
        .code(0)
        .stdout("out\n")
        .stderr("err\n");
    podman(&["cat"]).stdin("in\n").run().code(0).stdout("in\n");
    podman(&["--remote-env", "FOO=bar", "sh", "-c", "echo \"$FOO\""])
        .run()
        .code(0)
        .stdout("bar\n");
    let mut tty = podman(&["sh", "-c", "stty size"]).spawn_in_terminal(31, 97);
    assert_eq!(tty.wait(), Some(0));
    tty.stdout.wait_for("31 97");
    let podman_env = vec![("CONTAINER_HOST", format!("unix://{socket}"))];
    dcx_with(&podman_env)
        .args([
            "exec",
            "--docker-path",
            "podman",
            "--workspace-folder",
            dir.path().to_str().unwrap(),
            "hostname",
        ])
        .run()
        .code(0)
        .stdout("scenario-host\n");

    // Forwarded signals and the timeout: the command's own code and its output after the
    // signal, within 3 s.
    for (signal, code) in [("TERM", 7), ("INT", 8)] {
        let (exit, out, took) = signalled(
            podman(&[
                "sh",
                "-c",
                &format!(
                    "trap 'echo got {signal}; exit {code}' {signal}; echo ready; while true; do sleep 0.1; done"
                ),
            ]),
            signal,
        );
        assert_eq!(exit, Some(code), "{out}");
        assert_eq!(out, format!("ready\ngot {signal}\n"));
        assert!(took < 3.0, "SIG{signal} took {took:.1} s on podman");
    }
    let started = Instant::now();
    podman(&[
        "--timeout",
        "1s",
        "sh",
        "-c",
        "trap 'echo stopped; exit 9' TERM; while true; do sleep 0.1; done",
    ])
    .run()
    .code(124)
    .stdout("stopped\n");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "a 1 s timeout took {:?} on podman",
        started.elapsed()
    );
}

#[test]
fn podman_serves_cp_logs_top_and_mcp() {
    let conf = vec![("CONTAINERS_CONF", setting("CONTAINERS_CONF"))];
    let container = Remote::start(
        "podman",
        conf.clone(),
        &[
            "--network",
            "host",
            "localhost/dcx-test/busybox",
            "sh",
            "-c",
            "echo said on podman; echo warned on podman >&2; exec sleep 1000001",
        ],
    );
    let id = cli(
        "podman",
        &conf,
        &["inspect", "--format", "{{.Id}}", &container.name],
    );
    // `--docker-path podman` goes to podman's socket, whatever DOCKER_HOST says; without it,
    // DOCKER_HOST is used (and leads nowhere).
    let useless = "unix:///nonexistent.sock";
    let env = vec![("DOCKER_HOST", useless.to_owned())];
    let podman = |subcommand: &str| {
        dcx_with(&env).args([
            subcommand,
            "--docker-path",
            "podman",
            "--container-id",
            &container.name,
        ])
    };
    for subcommand in ["logs", "top"] {
        let out = dcx_with(&env)
            .args([subcommand, "--container-id", &container.name])
            .run()
            .code(1);
        assert!(out.stderr_text().contains(useless), "{}", out.stderr_text());
    }

    // cp: a file in, and back out, byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("original");
    std::fs::write(&original, b"through podman\n\0\xff bytes").unwrap();
    let copied_in = podman("cp")
        .args([original.to_str().unwrap(), ":/tmp/copied"])
        .run()
        .code(0);
    let said = copied_in.stderr_text();
    assert!(
        said.starts_with("Successfully copied ")
            && said.ends_with(&format!(" to {}:/tmp/copied\n", container.name)),
        "{said}"
    );
    let back = dir.path().join("back");
    podman("cp")
        .args([":/tmp/copied", back.to_str().unwrap()])
        .run()
        .code(0);
    assert_eq!(
        std::fs::read(&back).unwrap(),
        std::fs::read(&original).unwrap()
    );

    // logs: the container's own output, streams apart (podman may take a moment to log it).
    let started = Instant::now();
    loop {
        let out = podman("logs").run().code(0);
        if out.stdout_text() == "said on podman\n" && out.stderr_text() == "warned on podman\n" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "logs: {:?} / {:?}",
            out.stdout_text(),
            out.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // top: its process.
    let table = podman("top").run().code(0).stdout_text();
    assert!(
        table.starts_with("USER ") && table.contains("sleep 1000001"),
        "{table}"
    );

    // mcp: a command and the container's id, over the tools.
    let answers = mcp_tools(
        &env,
        &["--docker-path", "podman", "--container-id", &container.name],
        &[
            ("run_command", json!({"command": "echo via podman"})),
            ("container_info", json!({})),
        ],
    );
    assert_eq!(answers[0]["stdout"], "via podman\n", "{answers:?}");
    assert_eq!(answers[0]["exit_code"], 0, "{answers:?}");
    assert_eq!(answers[1]["container_id"], id.trim(), "{answers:?}");
    // Through the in-container helper, placed and started on podman as on Docker.
    assert_eq!(answers[1]["transport"], "helper", "{answers:?}");
}

/// `dcx mcp <flags>` with these variables (and no endpoint variable of the caller's), asked
/// `calls` (tool, arguments) one at a time as an MCP host would, in newline-delimited JSON-RPC
/// on its stdio; the structured result of each, asserting that none is an error. (The Python
/// SDK's client, tests/mcp/client.py, passes the server none of these variables, and its
/// `tools` scenario reads a started command's output 20 times without waiting, sooner than
/// podman reports the command's end: on podman it fails one run in two or three.)
fn mcp_tools(
    env: &[(&str, String)],
    flags: &[&str],
    calls: &[(&str, serde_json::Value)],
) -> Vec<serde_json::Value> {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::Stdio;
    let mut command = Command::new(crate::harness::dcx_path());
    for name in [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_TLS_VERIFY",
        "DOCKER_TLS",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().map(|(name, value)| (name, value)));
    let mut server = command
        .env("XDG_CACHE_HOME", crate::harness::test_cache_home())
        .arg("mcp")
        .args(flags)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = server.stdin.take().unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let mut send = |message: serde_json::Value| writeln!(input, "{message}").unwrap();
    let mut answer = |id: u64| loop {
        let line = lines.next().expect("the server answers").unwrap();
        let message: serde_json::Value = serde_json::from_str(&line).unwrap();
        if message["id"] == id {
            break message;
        }
    };
    send(
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "dcx-it", "version": "0"},
        }}),
    );
    assert_eq!(answer(0)["result"]["serverInfo"]["name"], "dcx");
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let mut results = Vec::new();
    for (id, (tool, arguments)) in (1..).zip(calls) {
        send(
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
                "name": tool,
                "arguments": arguments,
            }}),
        );
        let message = answer(id);
        assert_eq!(message["result"]["isError"], false, "{tool}: {message}");
        results.push(message["result"]["structuredContent"].clone());
    }
    // stdin closed: the server ends.
    drop(input);
    let status = server.wait().unwrap();
    let mut log = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(status.success(), "dcx mcp: {status}: {log}");
    results
}
