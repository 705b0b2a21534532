//! `dcx logs` and `dcx top` on the real daemon and crun: the container's own output (exact
//! tails, streams apart, following until Ctrl-C) and its processes (one started by exec, and a
//! zombie).

use std::time::{Duration, Instant};

use crate::harness::{BUSYBOX, CrunContainer, TestContainer, dcx, docker};

const CHATTY: &[&str] = &[
    "sh",
    "-c",
    // stderr first, and a pause: the daemon copies the two streams apart, so only their own
    // order within each is certain.
    "echo oops >&2; sleep 0.5; i=1; while [ $i -le 5 ]; do echo line$i; i=$((i+1)); done; sleep 0.2 & exec sleep 1000000",
];

fn wait_for(what: &str, check: impl Fn() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < Duration::from_secs(60), "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn docker_logs_tail_streams_and_follow() {
    let c = TestContainer::start_running(BUSYBOX, &[], CHATTY);
    // Both streams logged (the daemon may take a moment over the last one).
    wait_for("the output", || {
        let out = dcx().args(["logs", "--container-id", &c.name]).run();
        out.stdout_text().contains("line5") && out.stderr_text().contains("oops")
    });
    dcx()
        .args(["logs", "--container-id", &c.name])
        .run()
        .code(0)
        .stdout("line1\nline2\nline3\nline4\nline5\n")
        .stderr("oops\n");
    dcx()
        .args(["logs", "--container-id", &c.name, "--tail", "3"])
        .run()
        .code(0)
        .stdout("line3\nline4\nline5\n")
        .stderr("");
    let stamped = dcx()
        .args([
            "logs",
            "--container-id",
            &c.name,
            "--tail",
            "1",
            "--timestamps",
        ])
        .run()
        .code(0);
    let line = stamped.stdout_text();
    assert!(
        line.ends_with(" line5\n") && line.starts_with("20"),
        "{line}"
    );
    // docker's forms: every line, and times as RFC 3339, Unix seconds or a duration ago.
    for (option, value) in [
        ("--tail", "all"),
        ("--since", "2026-01-01T00:00:00Z"),
        ("--since", "1767225600"),
        ("--since", "10m"),
    ] {
        dcx()
            .args(["logs", "--container-id", &c.name, option, value])
            .run()
            .code(0)
            .stdout("line1\nline2\nline3\nline4\nline5\n")
            .stderr("oops\n");
    }
    dcx()
        .args([
            "logs",
            "--container-id",
            &c.name,
            "--until",
            "2026-01-01T00:00:00Z",
        ])
        .run()
        .code(0)
        .stdout("")
        .stderr("");
    let mut following = dcx()
        .args(["logs", "-f", "--container-id", &c.name])
        .spawn();
    following.stdout.wait_for("line5");
    c.sh("echo late > /proc/1/fd/1");
    following.stdout.wait_for("late");
    following.signal("INT");
    following.wait();
}

#[test]
fn crun_logs_come_from_the_annotated_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("box.log");
    std::fs::write(&file, "a\nb\nc\nd\n").unwrap();
    let annotation = format!("dcx.log_path={}", file.display());
    let c = CrunContainer::start("busybox", &[&annotation]);
    let logs = |extra: &[&str]| {
        dcx()
            .args(["logs", "--runtime", "crun", "--crun-root", c.root_str()])
            .args(["--container-id", &c.id])
            .args(extra.iter().copied())
    };
    logs(&[]).run().code(0).stdout("a\nb\nc\nd\n");
    logs(&["--tail", "3"]).run().code(0).stdout("b\nc\nd\n");
    logs(&["--tail", "0"]).run().code(0).stdout("");
    logs(&["--timestamps"])
        .run()
        .code(1)
        .stderr("error: crun keeps no timestamps of a container's output: --timestamps and --since need Docker.\n");
    let mut following = logs(&["-f", "--tail", "1"]).spawn();
    following.stdout.wait_for("d\n");
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(b"written later\n")
        .unwrap();
    following.stdout.wait_for("written later");
    following.signal("INT");
    following.wait();
    assert_eq!(following.stdout.text(), "d\nwritten later\n");
    // Without a log: crun keeps none, and says so.
    let plain = CrunContainer::start("busybox", &[]);
    dcx()
        .args(["logs", "--runtime", "crun", "--crun-root", plain.root_str()])
        .args(["--container-id", &plain.id])
        .run()
        .code(1)
        .stderr(&format!("error: crun keeps no log of container {}: its first process's stdout is not a file, and it has no `dcx.log_path` annotation naming one.\n", plain.id));
}

/// The table's rows as (user, state, command).
fn rows(table: &str) -> Vec<(String, String, String)> {
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("USER") && header.ends_with("COMMAND"),
        "{table}"
    );
    let command_at = header.find("COMMAND").unwrap();
    lines
        .map(|line| {
            let mut words = line.split_whitespace();
            let user = words.next().unwrap().to_owned();
            let _pid = words.next().unwrap();
            let state = words.next().unwrap().to_owned();
            (user, state, line[command_at..].trim().to_owned())
        })
        .collect()
}

#[test]
fn docker_top_lists_an_exec_and_a_zombie() {
    let c = TestContainer::start_running(BUSYBOX, &[], CHATTY);
    docker(&["exec", "-d", &c.id, "sleep", "778"]);
    let table = std::cell::RefCell::new(String::new());
    wait_for("the exec and the zombie", || {
        let shown = dcx()
            .args(["top", "--container-id", &c.name])
            .run()
            .code(0)
            .stdout_text();
        let rows = rows(&shown);
        *table.borrow_mut() = shown;
        rows.iter()
            .any(|(user, _, cmd)| user == "root" && cmd == "sleep 778")
            && rows.iter().any(|(_, state, _)| state == "Z")
    });
    let table = table.into_inner();
    assert!(table.contains("Z zombie"), "{table}");
    // A multi-line script is one row, as docker top shows it.
    docker(&["exec", "-d", &c.id, "sh", "-c", "sleep 779\nsleep 1\n"]);
    wait_for("the script's row", || {
        let shown = dcx()
            .args(["top", "--container-id", &c.name])
            .run()
            .code(0)
            .stdout_text();
        rows(&shown)
            .iter()
            .any(|(_, _, cmd)| cmd == "sh -c sleep 779 sleep 1")
    });
}

#[test]
fn crun_top_lists_an_exec_and_a_zombie() {
    let c = CrunContainer::start("busybox", &[]);
    // An orphan of an exec is adopted by the container's first process (`sleep`), which never
    // reaps it: a zombie once it ends.
    // (Its output to /dev/null: a detached process would hold a pipe open for its life.)
    let status = std::process::Command::new("crun")
        .arg("--root")
        .arg(&c.root)
        .args([
            "exec",
            "-d",
            &c.id,
            "sh",
            "-c",
            "sleep 0.1 & exec sleep 779",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let top = || {
        dcx()
            .args(["top", "--runtime", "crun", "--crun-root", c.root_str()])
            .args(["--container-id", &c.id])
            .run()
            .code(0)
            .stdout_text()
    };
    wait_for("the exec and the zombie", || {
        let rows = rows(&top());
        rows.iter()
            .any(|(user, _, cmd)| user == "root" && cmd == "sleep 779")
            && rows.iter().any(|(_, state, _)| state == "Z")
    });
    assert!(top().contains("sleep 1000000"));
}
