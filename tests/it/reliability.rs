//! Bad input never panics, hangs or says the wrong thing: each finding of the adversarial
//! review has its regression test here, on the real daemon (and crun), with the exact message
//! and exit code.

use crate::harness::{
    BUSYBOX, Cmd, CrunContainer, DEBIAN, Subject, TestContainer, dcx, dcx_path, docker,
};

/// `bash -c LINE` with `$DCX` set; (exit code, stdout, stderr).
fn bash(line: &str) -> (Option<i32>, String, String) {
    let out = Cmd::program("bash")
        .args(["-c", line])
        .env("DCX", dcx_path())
        .run();
    (out.code, out.stdout_text(), out.stderr_text())
}

#[test]
fn huge_durations_are_refused_before_anything_starts() {
    for value in ["1e19", "1e30", "18446744073709551615", "400d"] {
        let out = dcx()
            .args(["exec", "--container-id", "any", "--timeout", value, "true"])
            .run()
            .code(1);
        assert_eq!(
            out.stderr_text(),
            format!(
                "error: invalid value '{value}' for '--timeout <DURATION>': the longest duration taken is a year (365d)\n\nFor more information, try '--help'.\n"
            )
        );
    }
}

#[test]
fn a_closed_stdout_never_panics() {
    for line in [
        r#""$DCX" --help | head -c 10 >/dev/null; echo "${PIPESTATUS[0]}""#,
        r#""$DCX" exec --help | head -c 10 >/dev/null; echo "${PIPESTATUS[0]}""#,
        r#""$DCX" --version | true; echo "${PIPESTATUS[0]}""#,
        r#""$DCX" man | head -c 10 >/dev/null; echo "${PIPESTATUS[0]}""#,
    ] {
        let (code, stdout, stderr) = bash(line);
        assert_eq!(
            (code, stdout.as_str()),
            (Some(0), "0\n"),
            "{line}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{line}: {stderr}");
    }
    // A --dry-run plan of more than a pipe's worth into a reader that stops early.
    let c = TestContainer::start(BUSYBOX);
    let big = "x".repeat(100_000);
    let (code, stdout, stderr) = bash(&format!(
        r#""$DCX" exec --container-id {} --dry-run --remote-env BIG={big} true | head -c 100 >/dev/null; echo "${{PIPESTATUS[0]}}""#,
        c.name
    ));
    assert_eq!((code, stdout.as_str()), (Some(0), "0\n"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn selector_and_option_messages_name_the_input() {
    // (A passwd line with an eighth field: the parser's unit test; on Docker, runc itself
    // refuses such a line.)
    let c = TestContainer::start(DEBIAN);
    let exec = |args: &[&str]| dcx().args(["exec"]).args(args.iter().copied()).run();
    let long = "a".repeat(300);
    exec(&["--container-id", &long, "true"]).code(1).stderr(
        "error: --container-id is 300 characters long: a container id or name has at most 256.\n",
    );
    let label = format!("k={}", "v".repeat(5000));
    exec(&["--id-label", &label, "true"])
        .code(1)
        .stderr("error: --id-label is 5002 characters long: at most 4096 are taken.\n");
    // `/name`, as `docker inspect` prints names.
    exec(&["--container-id", &format!("/{}", c.name), "echo", "slash"])
        .code(0)
        .stdout("slash\n");
    // A newline in the input stays inside the one error line.
    exec(&["--container-id", "a\nb", "true"])
        .code(1)
        .stderr("error: No such container: a\\nb\n");
    exec(&["--terminal-rows", "-1", "--container-id", &c.name, "true"])
        .code(1)
        .stderr("error: invalid value '-1' for '--terminal-rows <ROWS>': -1 is not in 1..=65535\n\nFor more information, try '--help'.\n");
    dcx()
        .args(["exec", "--runtime", "crun", "--crun-root", "/nonexistent/crun-root"])
        .args(["--container-id", "x", "true"])
        .run()
        .code(1)
        .stderr("error: No crun state root at /nonexistent/crun-root: no container runs there (--crun-root names crun's --root; crun's default is /run/crun as root).\n");
}

#[test]
fn an_ambiguous_prefix_says_so() {
    // Containers until two ids share their first character (any two of the daemon's do).
    let mut containers = Vec::new();
    let prefix = loop {
        let ids = docker(&["ps", "-aq", "--no-trunc"]);
        let mut firsts: Vec<char> = ids.lines().filter_map(|id| id.chars().next()).collect();
        firsts.sort_unstable();
        if let Some(pair) = firsts.windows(2).find(|pair| pair[0] == pair[1]) {
            break pair[0].to_string();
        }
        containers.push(TestContainer::start(BUSYBOX));
    };
    let out = dcx()
        .args(["exec", "--container-id", &prefix, "true"])
        .run()
        .code(1);
    assert_eq!(
        out.stderr_text(),
        format!(
            "error: Container id prefix {prefix} matches more than one container; give more of the id.\n"
        )
    );
}

#[test]
fn configs_that_could_hang_or_flood_are_refused() {
    let c = TestContainer::start(BUSYBOX);
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.json");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let big = dir.path().join("big.json");
    std::fs::write(&big, " ".repeat(17 * 1024 * 1024)).unwrap();
    for (path, message) in [
        (fifo.display().to_string(), "is not a regular file."),
        ("/dev/zero".to_owned(), "is not a regular file."),
        (
            big.display().to_string(),
            "is larger than 16 MiB, the most dcx reads.",
        ),
    ] {
        dcx()
            .args([
                "exec",
                "--container-id",
                &c.name,
                "--override-config",
                &path,
                "true",
            ])
            .run()
            .code(1)
            .stderr(&format!("error: Dev container config ({path}) {message}\n"));
    }
    // A NUL in a remoteEnv value is named before anything runs.
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(ws.join(".devcontainer")).unwrap();
    std::fs::write(
        ws.join(".devcontainer/devcontainer.json"),
        r#"{"image": "x", "workspaceFolder": "/tmp", "remoteEnv": {"BAD": "a\u0000b"}}"#,
    )
    .unwrap();
    dcx()
        .args(["exec", "--container-id", &c.name, "--workspace-folder", ws.to_str().unwrap()])
        .args(["--default-user-env-probe", "none", "true"])
        .run()
        .code(1)
        .stderr("error: The environment variable BAD holds a NUL character, which no process environment can carry.\n");
    // Many unclosed `${` take one pass.
    std::fs::write(
        ws.join(".devcontainer/devcontainer.json"),
        format!(
            r#"{{"image": "x", "workspaceFolder": "/tmp", "remoteEnv": {{"MANY": "{}"}}}}"#,
            "${".repeat(60_000)
        ),
    )
    .unwrap();
    let out = dcx()
        .args([
            "exec",
            "--container-id",
            &c.name,
            "--workspace-folder",
            ws.to_str().unwrap(),
        ])
        .args([
            "--default-user-env-probe",
            "none",
            "sh",
            "-c",
            "echo ${#MANY}",
        ])
        .run()
        .code(0);
    assert_eq!(out.stdout_text(), "120000\n");
}

#[test]
fn a_probe_that_prints_too_much_is_a_warning() {
    let c = TestContainer::start(DEBIAN);
    c.sh("echo 'head -c 17000000 /dev/zero | tr \"\\\\0\" x' >> /root/.bashrc");
    let out = dcx()
        .args([
            "exec",
            "--container-id",
            &c.name,
            "--no-probe-cache",
            "echo",
            "ran",
        ])
        .run()
        .code(0)
        .stdout("ran\n");
    assert_eq!(
        out.stderr_text(),
        "warning: userEnvProbe printed more than 16 MiB (the shell's startup scripts print that much?): that is more than dcx reads, so the probed environment is not used. To skip the probe: \"userEnvProbe\": \"none\" in devcontainer.json, or --default-user-env-probe none.\n"
    );
}

/// SIGINT or SIGTERM to dcx reaches the command's whole process group: a shell waiting on a
/// child and a pipeline end as at a terminal's ^C, and nothing of theirs is left running.
fn signals_reach_the_whole_group(subject: &dyn Subject) {
    for (signal, code, script, left) in [
        ("INT", 130, "echo ready; sleep 30; echo after", "sleep 30"),
        (
            "TERM",
            143,
            "echo ready; yes | head -c 100000000000 >/dev/null; echo after",
            "yes",
        ),
    ] {
        let mut run = subject.dcx(&["bash", "-c", script]).spawn();
        run.stdout.wait_for("ready");
        subject.wait_until_running(left);
        run.signal(signal);
        assert_eq!(run.wait(), Some(code), "SIG{signal}: {}", run.stderr.text());
        assert_eq!(run.stdout.text(), "ready\n", "SIG{signal}");
        assert_eq!(
            subject.count_running(left),
            0,
            "SIG{signal} left {left} running"
        );
    }
}

#[test]
fn docker_signals_reach_the_whole_group() {
    signals_reach_the_whole_group(&TestContainer::start(DEBIAN));
}

#[test]
fn crun_signals_reach_the_whole_group() {
    // Output to a pipe: dcx hands the exec over to `crun exec` and passes signals on.
    signals_reach_the_whole_group(&CrunContainer::start("debian", &[]));
}

/// dcx returns when the command's own process exits: a background child holding the output
/// is still running when dcx is done (so dcx did not wait for it). The output goes to a file
/// (dcx relays it) and to a pipe (on crun, the exec is handed over to `crun exec`); only dcx
/// is waited for, not the reader of what the child still holds open.
fn background_children_do_not_hold_dcx(subject: &dyn Subject) {
    let dir = tempfile::tempdir().unwrap();
    for (seconds, sink) in [
        ("21", format!("> {0}/file 2> {0}/err", dir.path().display())),
        (
            "22",
            format!("> >(cat > {0}/pipe 2>&1) 2> {0}/err", dir.path().display()),
        ),
    ] {
        let line = subject.dcx_line(&["sh", "-c", &format!("sleep {seconds} & echo hi")]);
        let (code, stdout, stderr) = bash(&format!("{line} {sink}; echo $?"));
        assert_eq!(
            (code, stdout.as_str()),
            (Some(0), "0\n"),
            "{sink}: {stderr}"
        );
        assert_eq!(
            subject.count_running(&format!("sleep {seconds}")),
            1,
            "{sink}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("file")).unwrap(),
        "hi\n"
    );
}

#[test]
fn docker_background_children_do_not_hold_dcx() {
    background_children_do_not_hold_dcx(&TestContainer::start(BUSYBOX));
}

#[test]
fn crun_background_children_do_not_hold_dcx() {
    background_children_do_not_hold_dcx(&CrunContainer::start("busybox", &[]));
}

/// After `cmd &`, the daemon (not dcx) holds the next exec into that container for a few
/// seconds (see the README): never for as long as the background child runs.
#[test]
fn the_next_exec_is_not_held_by_a_background_child() {
    let c = TestContainer::start(BUSYBOX);
    let started = std::time::Instant::now();
    c.dcx(["sh", "-c", "sleep 60 &"]).run().code(0);
    let first = started.elapsed();
    let started = std::time::Instant::now();
    c.dcx(["echo", "next"]).run().code(0).stdout("next\n");
    let next = started.elapsed();
    eprintln!("after `sleep 60 &`: the call took {first:?}, the next exec {next:?}");
    // Generous: the daemon's own waits are about 4 s in all; the child runs for 60.
    assert!(first < std::time::Duration::from_secs(15), "{first:?}");
    assert!(next < std::time::Duration::from_secs(20), "{next:?}");
    assert_eq!(c.count_running("sleep 60"), 1);
}

/// A relay in front of the daemon's socket that the test can freeze (SIGSTOP) and thaw.
pub struct FreezableDaemon {
    dir: tempfile::TempDir,
    relay: std::process::Child,
}

impl FreezableDaemon {
    pub fn start() -> Self {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let relay = std::process::Command::new("socat")
            .arg("-t86400")
            .arg(format!("UNIX-LISTEN:{},fork", socket.display()))
            .arg("UNIX-CONNECT:/var/run/docker.sock")
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while !socket.exists() {
            assert!(started.elapsed().as_secs() < 10, "socat did not listen");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self { dir, relay }
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    /// SIGSTOP or SIGCONT to the relay and its per-connection children.
    pub fn signal(&self, signal: &str) {
        let group = format!("-{}", self.relay.id());
        assert!(
            std::process::Command::new("kill")
                .args([&format!("-{signal}"), "--", &group])
                .status()
                .unwrap()
                .success()
        );
    }
}

impl FreezableDaemon {
    /// The daemon lost, as its clients see it: the relay and every connection it holds end
    /// (the daemon itself runs on for the other tests).
    pub fn lose(self) {
        self.signal("KILL");
    }
}

impl Drop for FreezableDaemon {
    fn drop(&mut self) {
        // Not asserted: the group may be gone already (`lose`).
        let _ = std::process::Command::new("kill")
            .args(["-CONT", "--", &format!("-{}", self.relay.id())])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = self.relay.kill();
        let _ = self.relay.wait();
    }
}

#[test]
fn a_stalled_daemon_never_makes_dcx_deaf() {
    let c = TestContainer::start(BUSYBOX);
    let daemon = FreezableDaemon::start();
    // Stalled while the command runs: the signal cannot be delivered; dcx ends, saying so.
    let mut run = dcx()
        .env("DOCKER_HOST", &daemon.host())
        .args([
            "exec",
            "--container-id",
            &c.name,
            "sh",
            "-c",
            "echo ready; sleep 600",
        ])
        .spawn();
    run.stdout.wait_for("ready");
    daemon.signal("STOP");
    run.signal("INT");
    assert_eq!(run.wait(), Some(130));
    assert_eq!(
        run.stderr.text(),
        "warning: The engine did not deliver the signal within 5 s (is the daemon stalled?): dcx ends; the command may still run in the container.\n"
    );
    // A second signal does not wait for the limit.
    daemon.signal("CONT");
    let mut run = dcx()
        .env("DOCKER_HOST", &daemon.host())
        .args([
            "exec",
            "--container-id",
            &c.name,
            "sh",
            "-c",
            "echo ready; sleep 601",
        ])
        .spawn();
    run.stdout.wait_for("ready");
    daemon.signal("STOP");
    run.signal("TERM");
    std::thread::sleep(std::time::Duration::from_millis(300));
    run.signal("TERM");
    assert_eq!(run.wait(), Some(143));
    assert_eq!(
        run.stderr.text(),
        "warning: A second signal while the first is still undelivered: dcx ends; the command may still run in the container.\n"
    );
    // Stalled before the command starts: interrupted at once.
    let mut run = dcx()
        .env("DOCKER_HOST", &daemon.host())
        .args(["exec", "--container-id", &c.name, "true"])
        .spawn();
    run.wait_catching(libc::SIGINT as u32);
    std::thread::sleep(std::time::Duration::from_millis(300));
    run.signal("INT");
    assert_eq!(run.wait(), Some(130));
    assert_eq!(
        run.stderr.text(),
        "error: Interrupted by SIGINT before the command started; nothing was left running.\n"
    );
}

#[test]
fn an_interrupted_probe_is_not_left_running() {
    let c = TestContainer::start(DEBIAN);
    c.sh("echo 'sleep 1234' >> /root/.bashrc");
    let mut run = dcx()
        .args([
            "exec",
            "--container-id",
            &c.name,
            "--no-probe-cache",
            "echo",
            "hi",
        ])
        .spawn();
    c.wait_until_running("sleep 1234");
    run.signal("TERM");
    assert_eq!(run.wait(), Some(143));
    assert_eq!(
        run.stderr.text(),
        "error: Interrupted by SIGTERM before the command started; nothing was left running.\n"
    );
    assert_eq!(c.count_running("sleep 1234"), 0);
}

#[test]
fn a_probe_dies_with_dcx_even_by_sigkill() {
    let c = TestContainer::start(DEBIAN);
    c.sh("echo 'sleep 1235' >> /root/.bashrc");
    let mut run = dcx()
        .args([
            "exec",
            "--container-id",
            &c.name,
            "--no-probe-cache",
            "echo",
            "hi",
        ])
        .spawn();
    c.wait_until_running("sleep 1235");
    run.signal("KILL");
    assert_eq!(run.wait(), None, "dcx died of SIGKILL");
    // Only the container can notice: the probe's watcher sees its stdin close.
    let since = std::time::Instant::now();
    while c.count_running("sleep 1235") > 0 {
        assert!(
            since.elapsed() < std::time::Duration::from_secs(10),
            "the probe outlived dcx: {:?}",
            c.processes()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        c.processes()
            .iter()
            .filter(|p| p.contains("bash") || p.contains("__dcx"))
            .count(),
        0,
        "{:?}",
        c.processes()
    );
}

/// `dcx exec --container-id <c> …` with a probe cache of its own under `cache_home`.
fn exec_cached(c: &TestContainer, cache_home: &str, args: &[&str]) -> crate::harness::Outcome {
    dcx()
        .env("XDG_CACHE_HOME", cache_home)
        .args(["exec", "--container-id", &c.name])
        .args(args.iter().copied())
        .run()
}

#[test]
fn a_probe_cache_someone_else_could_change_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let c = TestContainer::start(DEBIAN);
    let home = tempfile::tempdir().unwrap();
    let cache_home = home.path().to_str().unwrap().to_owned();
    let exec = |args: &[&str]| exec_cached(&c, &cache_home, args);
    exec(&["true"]).code(0).stderr("");
    let dir = home.path().join("dcx/probe");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "json"))
        .unwrap();
    // Another user's entry that would inject PATH: refused, with a warning, and probed anew.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("/usr/local/sbin", "/evil")).unwrap();
    assert!(
        std::process::Command::new("chown")
            .args(["nobody", file.to_str().unwrap()])
            .status()
            .unwrap()
            .success()
    );
    let out = exec(&["sh", "-c", "echo $PATH"]).code(0);
    assert!(
        !out.stdout_text().contains("/evil"),
        "{}",
        out.stdout_text()
    );
    assert_eq!(
        out.stderr_text(),
        format!(
            "warning: not using the probe cache {}: it belongs to uid 65534, not to this user (0); probing instead.\n",
            file.display()
        )
    );
    // A cache folder others may write to: refused too.
    std::fs::remove_file(&file).unwrap();
    exec(&["true"]).code(0);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = exec(&["true"]).code(0);
    assert_eq!(
        out.stderr_text(),
        format!(
            "warning: not using the probe cache {}: its mode 0777 lets other users write to it; probing instead.\n",
            dir.display()
        )
    );
}

#[test]
fn no_probe_cache_refreshes_the_cached_entry() {
    let c = TestContainer::start(DEBIAN);
    let home = tempfile::tempdir().unwrap();
    let cache_home = home.path().to_str().unwrap().to_owned();
    let exec = |args: &[&str]| exec_cached(&c, &cache_home, args);
    exec(&["sh", "-c", "echo \"[$NEWVAR]\""])
        .code(0)
        .stdout("[]\n");
    c.sh("echo 'export NEWVAR=x' >> /root/.bashrc");
    exec(&["--no-probe-cache", "sh", "-c", "echo \"[$NEWVAR]\""])
        .code(0)
        .stdout("[x]\n");
    // The fresh result was stored: the next cached exec sees it too.
    exec(&["sh", "-c", "echo \"[$NEWVAR]\""])
        .code(0)
        .stdout("[x]\n");
}

#[test]
fn a_forwarded_signal_arrives_once() {
    // busybox's kill and dash's differ on process groups; either way the group gets it once.
    for image in [BUSYBOX, DEBIAN] {
        let c = TestContainer::start(image);
        let mut run = c
            .dcx([
                "sh",
                "-c",
                "trap 'echo got; exit 5' INT; echo ready; while true; do sleep 0.1; done",
            ])
            .spawn();
        run.stdout.wait_for("ready");
        run.signal("INT");
        assert_eq!(run.wait(), Some(5), "{image}");
        assert_eq!(run.stdout.text(), "ready\ngot\n", "{image}");
    }
}

/// An image of one static binary, `/busybox`, and nothing else (no `/bin/sh`, no
/// `/etc/passwd`), built locally from the busybox test root filesystem (no registry).
fn image_without_a_shell() -> &'static str {
    const IMAGE: &str = "dcx-test/no-shell:1";
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let busybox = crate::harness::test_rootfs("busybox").join("bin/busybox");
        std::fs::copy(&busybox, dir.path().join("busybox"))
            .unwrap_or_else(|err| panic!("{}: {err}", busybox.display()));
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /busybox\n",
        )
        .unwrap();
        docker(&["build", "-q", "-t", IMAGE, dir.path().to_str().unwrap()]);
    });
    IMAGE
}

#[test]
fn a_container_without_a_shell_runs_a_direct_argv_as_a_bare_uid() {
    let image = image_without_a_shell();
    let c = TestContainer::start_running(image, &[], &["/busybox", "sleep", "1000000"]);
    assert!(
        docker(&["exec", &c.id, "/busybox", "ls", "/"])
            .split_whitespace()
            .all(|e| e != "bin"),
        "the image has no /bin"
    );
    let out = c
        .dcx([
            "-u",
            "0:0",
            "-w",
            "/",
            "/busybox",
            "sh",
            "-c",
            "echo hi $(/busybox id -u)",
        ])
        .run();
    assert_eq!(
        (
            out.code,
            out.stdout_text().as_str(),
            out.stderr_text().as_str()
        ),
        (Some(0), "hi 0\n", "")
    );
    // A name still needs a lookup, which needs a shell: said, naming the user.
    let out = c
        .dcx(["-u", "nobody", "-w", "/", "/busybox", "true"])
        .run()
        .code(1);
    assert!(
        out.stderr_text()
            .starts_with("error: Cannot look up user nobody in the container:"),
        "{}",
        out.stderr_text()
    );
}
