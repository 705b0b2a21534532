//! Signals sent to dcx reach the process in the container, in pipe and PTY mode, and dcx ends
//! with that process's status; `--timeout` ends a command with 124.

use crate::harness::{DEBIAN, Subject, TestContainer};

#[test]
fn sigterm_reaches_a_trapping_process_and_its_code_is_dcx_code() {
    let c = TestContainer::start(DEBIAN);
    let run = c
        .dcx([
            "sh",
            "-c",
            "trap 'echo got TERM; kill $!; exit 7' TERM; echo ready; sleep 100 & wait",
        ])
        .spawn();
    run.stdout.wait_for("ready");
    c.wait_until_running("sleep 100");
    run.signal("TERM");
    let stdout = run.stdout.clone();
    assert_eq!(run.finish(), Some(7));
    assert_eq!(stdout.text(), "ready\ngot TERM\n");
    assert_eq!(c.count_running("sleep 100"), 0);
}

#[test]
fn sigterm_ends_a_plain_process_with_143() {
    let c = TestContainer::start(DEBIAN);
    let run = c.dcx(["sleep", "100"]).spawn();
    c.wait_until_running("sleep 100");
    run.signal("TERM");
    assert_eq!(run.finish(), Some(143));
    assert_eq!(c.count_running("sleep 100"), 0);
}

#[test]
fn sighup_and_sigquit_are_forwarded_too() {
    let c = TestContainer::start(DEBIAN);
    for (name, code) in [("HUP", 129), ("QUIT", 131)] {
        let run = c.dcx(["sleep", "101"]).spawn();
        c.wait_until_running("sleep 101");
        run.signal(name);
        assert_eq!(run.finish(), Some(code), "SIG{name}");
        assert_eq!(c.count_running("sleep 101"), 0);
    }
}

#[test]
fn sigint_under_a_pty_gives_130() {
    let c = TestContainer::start(DEBIAN);
    let mut run = c.dcx(["sleep", "102"]).spawn_in_terminal(24, 80);
    c.wait_until_running("sleep 102");
    run.signal("INT");
    assert_eq!(run.wait(), Some(130));
    assert_eq!(c.count_running("sleep 102"), 0);
}

#[test]
fn a_timeout_ends_the_command_with_124() {
    let c = TestContainer::start(DEBIAN);
    c.dcx(["--timeout", "1s", "sleep", "30"])
        .run()
        .code(124)
        .stdout("")
        .stderr("error: Timed out after 1s.\n");
    assert_eq!(c.count_running("sleep 30"), 0);
    // A command that ignores SIGTERM is killed after the grace period.
    c.dcx(["--timeout", "1", "sh", "-c", "trap '' TERM; sleep 31"])
        .run()
        .code(124);
    assert_eq!(c.count_running("sleep 31"), 0);
    // A command that ends in time keeps its own code.
    c.dcx(["--timeout", "30s", "sh", "-c", "exit 3"])
        .run()
        .code(3);
}

#[test]
fn an_undeliverable_signal_is_reported_at_debug_level_and_ends_the_exec() {
    // In a pid namespace of its own, dcx cannot see the daemon's pids: as with a remote engine,
    // the signal cannot be delivered.
    let c = TestContainer::start(DEBIAN);
    let run = crate::harness::Cmd::program("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .args([crate::harness::dcx_path(), "exec", "--log-level", "debug"])
        .args(["--container-id", &c.id, "sleep", "104"])
        .spawn();
    c.wait_until_running("sleep 104");
    // unshare ignores SIGTERM while it waits: signal dcx, its child, directly.
    let out = std::process::Command::new("pgrep")
        .args(["-P", &run.pid().to_string()])
        .output()
        .expect("run pgrep");
    let dcx_pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!dcx_pid.is_empty(), "dcx runs under unshare");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &dcx_pid])
        .status()
        .expect("run kill");
    assert!(status.success());
    let stderr = run.stderr.clone();
    assert_eq!(run.finish(), Some(143));
    let text = stderr.text();
    assert!(
        text.contains("cannot deliver signal 15 to the process")
            && text.contains("another pid namespace")
            && text.contains("ending the exec"),
        "{text}"
    );
}
