//! Round trips to the engine: a warm `dcx exec`, counted by a relay in front of the daemon's
//! socket ([`CountingProxy`]), makes no more round trips than `docker exec` counted the same way
//! (7 here: two connects, ping, inspect, exec create, start, exec inspect), on a local socket and
//! on a remote engine (TCP, where the shell startup files are looked at through the engine, and
//! they and the exec create are sent ahead beside the inspect: 4 round trips), over two
//! connections (the attach uses one up); over ssh, two `ssh` processes. What is sent ahead is
//! taken only for the same request: a changed startup file, a changed `--remote-env`, a
//! container replaced under its name all get what they would without it. Exit codes stay
//! exact: `exit 3`, a command that closes its output early and runs on, and with a TTY.

use crate::harness::{Cmd, CountingProxy, DEBIAN, TestContainer, Traffic, dcx, setting};

/// `dcx exec --container-id <container> <args…>` against the engine at `host`.
fn exec_through(host: &str, container: &str, args: &[&str]) -> Cmd {
    through(host)
        .args(["exec", "--container-id", container])
        .args(args.iter().copied())
}

/// `dcx` against the engine at `host`.
fn through(host: &str) -> Cmd {
    dcx()
        .env("DOCKER_HOST", host)
        .env("DOCKER_CONTEXT", "")
        .env("DOCKER_TLS_VERIFY", "")
        .env("DOCKER_TLS", "")
}

/// What a warm `dcx exec … true` and a `docker exec … true` cost through `proxy`.
fn warm_and_docker(proxy: &CountingProxy, c: &TestContainer) -> (Traffic, Traffic) {
    let exec = || exec_through(&proxy.host, &c.id, &["true"]).run().code(0);
    // The first one probes and fills the cache.
    exec();
    proxy.take();
    exec();
    let ours = proxy.take();
    Cmd::program("docker")
        .env("DOCKER_HOST", &proxy.host)
        .env("DOCKER_CONTEXT", "")
        .args(["exec", &c.id, "true"])
        .run()
        .code(0);
    (ours, proxy.take())
}

#[test]
fn a_warm_exec_costs_no_more_round_trips_than_docker_exec() {
    let c = TestContainer::start(DEBIAN);
    for (proxy, remote) in [(CountingProxy::unix(), false), (CountingProxy::tcp(), true)] {
        let (ours, docker) = warm_and_docker(&proxy, &c);
        let shown = format!("{}\ndcx: {ours:?}\ndocker exec: {docker:?}", proxy.host);
        assert_eq!(docker.connections, 2, "{shown}");
        assert!(ours.round_trips <= 7, "{shown}");
        assert!(ours.round_trips <= docker.round_trips, "{shown}");
        // One connection kept for every request, and the one the attach uses up.
        assert_eq!(ours.connections, 2, "{shown}");
        // The container inspected once, one exec created and started, no ping (the API
        // version comes with the answers), and the exit code from an exec inspect.
        for (what, times) in [
            ("GET /containers/", 1),
            ("POST /containers/", 1),
            ("/start", 1),
            ("/_ping", 0),
        ] {
            assert_eq!(ours.count(what), times, "{what}: {shown}");
        }
        assert!(ours.count("GET /exec/") >= 1, "{shown}");
        let archive = ours.count("/archive?path=");
        if remote {
            // Every startup file looked at, and the exec created, in the inspect's round trip:
            // connect, inspect (with the rest), start, exec inspect.
            assert!(archive >= 15, "{shown}");
            assert_eq!(ours.round_trips_of("/archive?path="), 1, "{shown}");
            assert_eq!(ours.round_trips_of("/containers/"), 1, "{shown}");
            assert!(ours.round_trips <= 4, "{shown}");
        } else {
            // A local daemon: the container's root as this host sees it, no request at all.
            assert_eq!(archive, 0, "{shown}");
        }
    }
}

#[test]
fn a_changed_startup_file_is_still_seen_through_the_batched_look() {
    let c = TestContainer::start(DEBIAN);
    let proxy = CountingProxy::tcp();
    let exec = |args: &[&str]| exec_through(&proxy.host, &c.id, args).run();
    exec(&["true"]).code(0);
    exec(&["printenv", "BATCHED"]).code(1);
    c.sh("echo 'export BATCHED=profile.d' > /etc/profile.d/zz-batched.sh");
    exec(&["printenv", "BATCHED"]).code(0).stdout("profile.d\n");
    c.sh("echo 'export BATCHED=bashrc' >> /root/.bashrc");
    exec(&["printenv", "BATCHED"]).code(0).stdout("bashrc\n");
    // A known entry changed (the listing is not asked again: its name was seen).
    c.sh("echo 'export BATCHED=changed' > /etc/profile.d/zz-batched.sh; sed -i '$d' /root/.bashrc");
    exec(&["printenv", "BATCHED"]).code(0).stdout("changed\n");
    proxy.take();
    exec(&["printenv", "BATCHED"]).code(0).stdout("changed\n");
    let warm = proxy.take();
    assert_eq!(warm.round_trips_of("/archive?path="), 1, "{warm:?}");
}

#[test]
fn what_is_sent_ahead_is_taken_only_for_the_same_request() {
    let proxy = CountingProxy::tcp();
    let name = format!("dcx-it-ahead-{}", std::process::id());
    let run = |mark: &str| {
        crate::harness::docker(&["rm", "-f", &name]);
        crate::harness::docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            "dcx.test=1",
            "-e",
            mark,
            DEBIAN,
            "sleep",
            "1000000",
        ]);
    };
    let exec = |args: &[&str]| exec_through(&proxy.host, &name, args).run();
    run("MARK=first");
    exec(&["true"]).code(0);
    exec(&["printenv", "MARK"]).code(0).stdout("first\n");
    // Another --remote-env: the exec sent ahead is this run's own.
    proxy.take();
    exec(&["--remote-env", "EXTRA=one", "printenv", "EXTRA"])
        .code(0)
        .stdout("one\n");
    let warm = proxy.take();
    assert_eq!(warm.count("POST /containers/"), 1, "{warm:?}");
    assert!(warm.round_trips <= 4, "{warm:?}");
    // Replaced under the same name: the new container, its own environment.
    run("MARK=second");
    exec(&["printenv", "MARK"]).code(0).stdout("second\n");
    exec(&["printenv", "MARK"]).code(0).stdout("second\n");
    crate::harness::docker(&["rm", "-f", &name]);
}

#[test]
fn exit_codes_stay_exact_over_one_kept_connection() {
    let c = TestContainer::start(DEBIAN);
    let proxy = CountingProxy::tcp();
    let exec = |args: &[&str]| exec_through(&proxy.host, &c.id, args);
    exec(&["true"]).run().code(0);
    proxy.take();
    exec(&["sh", "-c", "echo out; exit 3"])
        .run()
        .code(3)
        .stdout("out\n");
    assert_eq!(proxy.take().connections, 2);
    // The output closes long before the process ends: its own code, not the stream's end.
    exec(&["sh", "-c", "echo early; exec >&- 2>&-; sleep 1; exit 5"])
        .run()
        .code(5)
        .stdout("early\n");
    assert_eq!(proxy.take().connections, 2);
    // Killed by a signal: 128 + N.
    exec(&["sh", "-c", "kill -s TERM $$"]).run().code(143);
    // With a TTY.
    let mut run = exec(&["sh", "-c", "echo tty; exit 4"]).spawn_in_terminal(24, 80);
    assert_eq!(run.wait(), Some(4));
    run.stdout.wait_for("tty");
    let traffic = proxy.take();
    assert_eq!(traffic.connections, 4, "two runs, two each: {traffic:?}");
    assert_eq!(traffic.count("/start"), 2, "{traffic:?}");
}

#[test]
fn over_ssh_an_exec_runs_two_ssh_processes() {
    let c = TestContainer::start(DEBIAN);
    // An `ssh` first on PATH that notes each start, then runs the real one.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("started");
    let real = format!("{}/ssh", setting("DCX_SSH_PATH"));
    let wrapper = dir.path().join("ssh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{real}' \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&wrapper).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}:{}",
        dir.path().display(),
        setting("DCX_SSH_PATH"),
        std::env::var("PATH").unwrap_or_default()
    );
    let exec = |args: &[&str]| {
        exec_through(&setting("DCX_SSH_HOST"), &c.id, args)
            .env("PATH", &path)
            .run()
    };
    exec(&["true"]).code(0);
    std::fs::write(&log, "").unwrap();
    exec(&["sh", "-c", "exit 3"]).code(3);
    let started = std::fs::read_to_string(&log).unwrap();
    assert_eq!(started.lines().count(), 2, "{started}");
    assert!(
        started
            .lines()
            .all(|line| line.ends_with("system dial-stdio")),
        "{started}"
    );
}
