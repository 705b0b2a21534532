//! The built `dcx-helper` on this host, driven through its protocol by a small test client.
//!
//! Each test starts its own helper (as the current user, no container), speaks to it with the
//! library's codec, and checks frames and, through `/proc`, the processes it starts.

// A failed unwrap in a test (or its client) is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable
)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

mod client;

use client::{Helper, WAIT};
use dcx_helper::{
    Exit, FromHelper, MAX_FRAME, OUTPUT_WINDOW, RunSpec, STDIN_WINDOW, Stage, ToHelper,
};

const ENOENT: i32 = 2;
const EACCES: i32 = 13;
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a command did, collected from its frames.
#[derive(Debug, Default)]
struct Outcome {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    exit: Option<Exit>,
    output_end: bool,
}

impl Outcome {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

fn cmd(argv: &[&str]) -> RunSpec {
    RunSpec {
        argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
        ..RunSpec::default()
    }
}

fn sh(script: &str) -> RunSpec {
    cmd(&["sh", "-c", script])
}

fn bytes(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|s| s.as_bytes().to_vec()).collect()
}

impl Helper {
    /// A helper with a known environment: `PATH` and `env`.
    fn start_with_env(env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(client::program());
        command.env_clear().env("PATH", PATH);
        for (name, value) in env {
            command.env(name, value);
        }
        Self::spawn(command)
    }

    fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// RUN, expecting STARTED: the command's pid.
    fn run(&mut self, id: u32, spec: RunSpec) -> u32 {
        self.send(id, &ToHelper::Run(spec));
        match self.expect(id) {
            FromHelper::Started { pid } => pid,
            other => panic!("expected STARTED, got {other:?}"),
        }
    }

    /// RUN, expecting FAILED: its stage and errno.
    fn run_failing(&mut self, id: u32, spec: RunSpec) -> (Stage, i32, String) {
        self.send(id, &ToHelper::Run(spec));
        match self.expect(id) {
            FromHelper::Failed {
                stage,
                errno,
                message,
            } => (stage, errno, message),
            other => panic!("expected FAILED, got {other:?}"),
        }
    }

    /// Collects frames about `id` until EXITED and OUTPUT_END, acknowledging output.
    fn collect(&mut self, id: u32) -> Outcome {
        let mut outcome = Outcome::default();
        while outcome.exit.is_none() || !outcome.output_end {
            match self.expect(id) {
                FromHelper::Stdout(b) => {
                    self.send(id, &ToHelper::OutputAck(len32(&b)));
                    outcome.stdout.extend_from_slice(&b);
                }
                FromHelper::Stderr(b) => {
                    self.send(id, &ToHelper::OutputAck(len32(&b)));
                    outcome.stderr.extend_from_slice(&b);
                }
                FromHelper::Exited(exit) => {
                    assert!(outcome.exit.is_none(), "EXITED twice");
                    outcome.exit = Some(exit);
                }
                FromHelper::OutputEnd => {
                    assert!(!outcome.output_end, "OUTPUT_END twice");
                    outcome.output_end = true;
                }
                FromHelper::StdinAck(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        outcome
    }

    /// RUN and collect.
    fn run_to_end(&mut self, id: u32, spec: RunSpec) -> Outcome {
        self.run(id, spec);
        self.collect(id)
    }

    /// Waits for the helper to exit after its stdin closed: its status and how long it took.
    fn wait_exit(&mut self, within: Duration) -> (std::process::ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.process.try_wait().unwrap() {
                return (status, start.elapsed());
            }
            assert!(
                start.elapsed() < within,
                "the helper still runs after {within:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

fn len32(bytes: &[u8]) -> u32 {
    u32::try_from(bytes.len()).unwrap()
}

/// `/proc/PID/stat`'s state, parent and process group, if the process exists.
fn stat(pid: u32) -> Option<(char, u32, u32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

/// The live (not zombie) processes of group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| matches!(stat(pid), Some((s, _, g)) if g == pgid && s != 'Z' && s != 'X'))
        .collect()
}

/// Waits until `check` holds, for at most `within`.
fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dcx-helper-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn hello_comes_first_and_true_starts_exits_0_and_ends_its_output() {
    let mut helper = Helper::start();
    let pid = helper.run(1, cmd(&["true"]));
    assert!(pid > 0);
    let outcome = helper.collect(1);
    assert_eq!(outcome.exit, Some(Exit::Code(0)));
    assert!(outcome.stdout.is_empty() && outcome.stderr.is_empty());
    // The id is free again.
    let outcome = helper.run_to_end(1, cmd(&["true"]));
    assert_eq!(outcome.exit, Some(Exit::Code(0)));
}

#[test]
fn exit_codes_and_signals_are_reported() {
    let mut helper = Helper::start();
    assert_eq!(helper.run_to_end(1, sh("exit 3")).exit, Some(Exit::Code(3)));
    assert_eq!(
        helper.run_to_end(2, sh("kill -TERM $$")).exit,
        Some(Exit::Signal(15))
    );
    assert_eq!(
        helper.run_to_end(3, sh("kill -KILL $$")).exit,
        Some(Exit::Signal(9))
    );
}

#[test]
fn stdout_and_stderr_stay_separate() {
    let mut helper = Helper::start();
    let outcome = helper.run_to_end(1, sh("echo out; echo err >&2; echo out2"));
    assert_eq!(outcome.stdout, b"out\nout2\n");
    assert_eq!(outcome.stderr, b"err\n");
    assert_eq!(outcome.exit, Some(Exit::Code(0)));
}

#[test]
fn the_command_env_is_the_helper_env_with_unset_then_set_applied_in_order() {
    let mut helper = Helper::start_with_env(&[("A", "1"), ("B", "2"), ("C", "3")]);
    let spec = RunSpec {
        unset: bytes(&["B"]),
        set: bytes(&["A=10", "D=4", "D=5", "C"]),
        ..cmd(&["env"])
    };
    let outcome = helper.run_to_end(1, spec);
    let lines: Vec<&str> = std::str::from_utf8(&outcome.stdout)
        .unwrap()
        .lines()
        .collect();
    // std's Command gives the helper its environment sorted: A, B, C, PATH.
    assert_eq!(lines, ["A=10", &format!("PATH={PATH}"), "D=5"]);

    // A PTY command without TERM gets TERM=xterm; one with TERM keeps it.
    let tty = RunSpec {
        tty: true,
        rows: 24,
        cols: 80,
        ..cmd(&["env"])
    };
    let outcome = helper.run_to_end(2, tty.clone());
    assert!(
        outcome.stdout_text().contains("TERM=xterm\r\n"),
        "{outcome:?}"
    );
    let outcome = helper.run_to_end(
        3,
        RunSpec {
            set: bytes(&["TERM=vt100"]),
            ..tty
        },
    );
    assert!(outcome.stdout_text().contains("TERM=vt100\r\n"));
    assert!(!outcome.stdout_text().contains("TERM=xterm"));
    // Non-UTF-8 bytes pass through.
    let outcome = helper.run_to_end(
        4,
        RunSpec {
            set: vec![b"X=\xff\xfe".to_vec()],
            ..sh("printf '%s' \"$X\"")
        },
    );
    assert_eq!(outcome.stdout, b"\xff\xfe");
}

#[test]
fn the_program_is_searched_in_the_command_path() {
    let dir = scratch_dir("path");
    let script = dir.join("hello-from-path");
    fs::write(&script, "#!/bin/sh\necho found \"$@\"\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let mut helper = Helper::start();
    let spec = RunSpec {
        set: vec![format!("PATH=/nonexistent:{}:/bin", dir.display()).into_bytes()],
        ..cmd(&["hello-from-path", "x"])
    };
    assert_eq!(helper.run_to_end(1, spec).stdout, b"found x\n");
    // Not in the helper's own PATH.
    let (stage, errno, _) = helper.run_failing(2, cmd(&["hello-from-path"]));
    assert_eq!((stage, errno), (Stage::Exec, ENOENT));
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_command_runs_in_cwd_or_fails_at_stage_0() {
    let dir = scratch_dir("cwd");
    let mut helper = Helper::start();
    let spec = RunSpec {
        cwd: dir.to_str().unwrap().as_bytes().to_vec(),
        ..cmd(&["pwd", "-P"])
    };
    let outcome = helper.run_to_end(1, spec);
    let expected = format!("{}\n", dir.canonicalize().unwrap().display());
    assert_eq!(outcome.stdout_text(), expected);

    let missing = RunSpec {
        cwd: b"/nonexistent/dir".to_vec(),
        ..cmd(&["true"])
    };
    let (stage, errno, message) = helper.run_failing(2, missing);
    assert_eq!((stage, errno), (Stage::Cwd, ENOENT));
    assert!(message.contains("/nonexistent/dir"), "{message}");
    // A missing cwd is reported before a missing program.
    let both = RunSpec {
        cwd: b"/nonexistent/dir".to_vec(),
        ..cmd(&["no-such-program"])
    };
    assert_eq!(helper.run_failing(3, both).0, Stage::Cwd);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_program_that_cannot_run_fails_at_stage_1_and_nothing_else_follows() {
    let mut helper = Helper::start();
    let (stage, errno, _) = helper.run_failing(1, cmd(&["no-such-program-dcx"]));
    assert_eq!((stage, errno), (Stage::Exec, ENOENT));
    let (stage, errno, _) = helper.run_failing(2, cmd(&["/nonexistent/program"]));
    assert_eq!((stage, errno), (Stage::Exec, ENOENT));

    let dir = scratch_dir("noexec");
    let file = dir.join("not-executable");
    fs::write(&file, "echo no\n").unwrap();
    let (stage, errno, _) = helper.run_failing(3, cmd(&[file.to_str().unwrap()]));
    assert_eq!((stage, errno), (Stage::Exec, EACCES));
    let (stage, errno, _) = helper.run_failing(4, cmd(&[]));
    assert_eq!((stage, errno), (Stage::Exec, ENOENT));
    fs::remove_dir_all(dir).unwrap();

    // No frame follows a FAILED, not even for STDIN sent before FAILED was read; the ids are
    // free.
    helper.send(1, &ToHelper::Stdin(b"early".to_vec()));
    helper.send(1, &ToHelper::StdinEof);
    assert!(helper.next_for(1, Duration::from_millis(200)).is_none());
    assert_eq!(
        helper.run_to_end(1, cmd(&["true"])).exit,
        Some(Exit::Code(0))
    );
}

#[test]
fn the_command_leads_its_session_and_group_and_has_clean_signal_state() {
    let mut helper = Helper::start();
    // The program itself (no shell between), so its own /proc/self is the command's.
    let pid = helper.run(1, cmd(&["cat", "/proc/self/stat"]));
    let text = helper.collect(1).stdout_text();
    let after = &text[text.rfind(')').unwrap() + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    assert_eq!(
        fields[1],
        helper.pid.to_string(),
        "the parent is the helper"
    );
    assert_eq!(fields[2], pid.to_string(), "process group");
    assert_eq!(fields[3], pid.to_string(), "session");
    assert_eq!(fields[4], "0", "no controlling terminal without a PTY");

    let status = helper
        .run_to_end(2, cmd(&["cat", "/proc/self/status"]))
        .stdout_text();
    let mask = |status: &str, name: &str| {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(line[name.len()..].trim(), 16).unwrap()
    };
    assert_eq!(mask(&status, "SigBlk:"), 0, "{status}");
    // Ignored signals are the helper's own, less SIGPIPE (which Rust ignores for itself).
    let helper_status = fs::read_to_string(format!("/proc/{}/status", helper.pid)).unwrap();
    assert_eq!(
        mask(&status, "SigIgn:"),
        mask(&helper_status, "SigIgn:") & !(1 << (13 - 1))
    );
}

#[test]
fn stdin_open_feeds_the_command_and_stdin_eof_closes_it() {
    let mut helper = Helper::start();
    let spec = RunSpec {
        stdin_open: true,
        ..cmd(&["cat"])
    };
    helper.run(1, spec);
    helper.send(1, &ToHelper::Stdin(b"hello ".to_vec()));
    helper.send(1, &ToHelper::Stdin(b"world\n".to_vec()));
    helper.send(1, &ToHelper::StdinEof);
    let mut acked = 0;
    let mut outcome = Outcome::default();
    while outcome.exit.is_none() || !outcome.output_end {
        match helper.expect(1) {
            FromHelper::StdinAck(n) => acked += n,
            FromHelper::Stdout(b) => outcome.stdout.extend_from_slice(&b),
            FromHelper::Exited(e) => outcome.exit = Some(e),
            FromHelper::OutputEnd => outcome.output_end = true,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(acked, 12);
    assert_eq!(outcome.stdout, b"hello world\n");
    assert_eq!(outcome.exit, Some(Exit::Code(0)));

    // Without stdin open, stdin is /dev/null.
    let outcome = helper.run_to_end(2, sh("cat; readlink /proc/$$/fd/0"));
    assert_eq!(outcome.stdout, b"/dev/null\n");
}

#[test]
fn five_mib_pass_through_cat_within_both_credit_windows() {
    let mut helper = Helper::start();
    let mut seed = 0x9e37_79b9_u32;
    let data: Vec<u8> = (0..5 * 1024 * 1024)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed.to_le_bytes()[1]
        })
        .collect();
    helper.run(
        1,
        RunSpec {
            stdin_open: true,
            ..cmd(&["cat"])
        },
    );
    let (mut sent, mut stdin_acked) = (0usize, 0usize);
    let mut received = Vec::with_capacity(data.len());
    let mut unacked_output = 0usize;
    let mut max_unacked_output = 0usize;
    let (mut exit, mut ended) = (None, false);
    while exit.is_none() || !ended {
        while sent < data.len() && sent - stdin_acked < STDIN_WINDOW {
            let room = STDIN_WINDOW - (sent - stdin_acked);
            let chunk = (data.len() - sent).min(64 * 1024).min(room);
            helper.send(1, &ToHelper::Stdin(data[sent..sent + chunk].to_vec()));
            sent += chunk;
            if sent == data.len() {
                helper.send(1, &ToHelper::StdinEof);
            }
        }
        match helper.expect(1) {
            FromHelper::StdinAck(n) => stdin_acked += n as usize,
            FromHelper::Stdout(b) => {
                received.extend_from_slice(&b);
                unacked_output += b.len();
                max_unacked_output = max_unacked_output.max(unacked_output);
                // Acknowledge in batches, as a slower reader would.
                if unacked_output >= 256 * 1024 {
                    helper.send(
                        1,
                        &ToHelper::OutputAck(u32::try_from(unacked_output).unwrap()),
                    );
                    unacked_output = 0;
                }
            }
            FromHelper::Exited(e) => exit = Some(e),
            FromHelper::OutputEnd => ended = true,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(exit, Some(Exit::Code(0)));
    assert_eq!(stdin_acked, data.len());
    assert!(max_unacked_output <= OUTPUT_WINDOW, "{max_unacked_output}");
    assert_eq!(received.len(), data.len());
    assert!(received == data, "the bytes differ");
}

#[test]
fn output_stops_at_one_mib_unacknowledged_until_dcx_gives_credit() {
    let mut helper = Helper::start();
    helper.run(1, cmd(&["head", "-c", "3000000", "/dev/zero"]));
    let mut received = 0usize;
    while let Some(message) = helper.next_for(1, Duration::from_millis(500)) {
        match message {
            FromHelper::Stdout(b) => {
                assert!(b.len() <= 64 * 1024);
                received += b.len();
            }
            other => panic!("{other:?} before any credit was given"),
        }
    }
    assert_eq!(
        received, OUTPUT_WINDOW,
        "the helper waits for credit at 1 MiB"
    );
    helper.send(1, &ToHelper::OutputAck(u32::try_from(received).unwrap()));
    let outcome = helper.collect(1);
    assert_eq!(received + outcome.stdout.len(), 3_000_000);
    assert_eq!(outcome.exit, Some(Exit::Code(0)));
}

#[test]
fn a_pty_has_its_size_at_the_first_instruction_and_resize_changes_it() {
    let mut helper = Helper::start();
    let spec = RunSpec {
        tty: true,
        stdin_open: true,
        rows: 33,
        cols: 101,
        ..sh("stty size; tty; read x; stty size")
    };
    helper.run(1, spec);
    let mut text = String::new();
    while !text.contains("/dev/pts/") || !text.ends_with('\n') {
        match helper.expect(1) {
            FromHelper::Stdout(b) => text.push_str(&String::from_utf8_lossy(&b)),
            other => panic!("{other:?}"),
        }
    }
    assert!(text.starts_with("33 101\r\n"), "{text:?}");
    helper.send(
        1,
        &ToHelper::Resize {
            rows: 40,
            cols: 120,
        },
    );
    helper.send(1, &ToHelper::Stdin(b"\n".to_vec()));
    let outcome = helper.collect(1);
    let rest = outcome.stdout_text();
    assert!(rest.contains("40 120\r\n"), "{rest:?}");
    assert_eq!(outcome.exit, Some(Exit::Code(0)));
    assert!(
        outcome.stderr.is_empty(),
        "a PTY's output all comes as STDOUT"
    );
}

#[test]
fn a_pty_command_has_it_as_controlling_terminal_and_gets_sigwinch() {
    let mut helper = Helper::start();
    let spec = RunSpec {
        tty: true,
        rows: 10,
        cols: 20,
        // `wait` returns when a trapped signal comes (`read` would not run the trap at once).
        ..sh("trap 'echo winch; stty size' WINCH; cat /proc/$$/stat; sleep 10 & wait; kill $!")
    };
    let pid = helper.run(1, spec);
    let mut text = String::new();
    while !text.contains(')') || !text.ends_with('\n') {
        if let FromHelper::Stdout(b) = helper.expect(1) {
            text.push_str(&String::from_utf8_lossy(&b));
        }
    }
    let after = &text[text.rfind(')').unwrap() + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    assert_ne!(fields[4], "0", "a controlling terminal");
    assert_eq!(
        fields[5],
        pid.to_string(),
        "the command's group is in the foreground"
    );
    // Let the shell reach `wait` (its `sleep` runs, `cat` is gone).
    let comms = || -> Vec<String> {
        group_members(pid)
            .into_iter()
            .filter_map(|p| fs::read_to_string(format!("/proc/{p}/comm")).ok())
            .map(|c| c.trim().to_owned())
            .collect()
    };
    assert!(eventually(WAIT, || {
        let comms = comms();
        comms.contains(&"sleep".to_owned()) && !comms.contains(&"cat".to_owned())
    }));
    thread::sleep(Duration::from_millis(50));
    helper.send(1, &ToHelper::Resize { rows: 11, cols: 22 });
    let outcome = helper.collect(1);
    let text = outcome.stdout_text();
    assert!(text.contains("winch\r\n11 22\r\n"), "{text:?}");
    assert_eq!(outcome.exit, Some(Exit::Code(0)));
}

#[test]
fn a_signal_to_the_group_reaches_background_children() {
    let mut helper = Helper::start();
    let pid = helper.run(1, sh("sleep 100 & sleep 100"));
    assert!(
        eventually(WAIT, || group_members(pid).len() >= 3),
        "sh and two sleeps"
    );
    helper.send(
        1,
        &ToHelper::Signal {
            signo: 15,
            group: true,
        },
    );
    let outcome = helper.collect(1);
    assert_eq!(outcome.exit, Some(Exit::Signal(15)));
    assert!(
        eventually(WAIT, || group_members(pid).is_empty()),
        "left: {:?}",
        group_members(pid)
    );
}

#[test]
fn a_signal_to_the_process_reaches_only_it_and_works_after_exit_on_the_group() {
    let mut helper = Helper::start();
    let pid = helper.run(1, sh("sleep 100 & echo $!; wait"));
    let bg: u32 = match helper.expect(1) {
        FromHelper::Stdout(b) => String::from_utf8_lossy(&b).trim().parse().unwrap(),
        other => panic!("{other:?}"),
    };
    helper.send(1, &ToHelper::OutputAck(16));
    helper.send(
        1,
        &ToHelper::Signal {
            signo: 9,
            group: false,
        },
    );
    assert_eq!(helper.expect(1), FromHelper::Exited(Exit::Signal(9)));
    assert!(stat(bg).is_some_and(|(s, _, g)| s != 'Z' && g == pid));
    // The leader is gone; the id is known until OUTPUT_END, so its group can be signalled.
    helper.send(
        1,
        &ToHelper::Signal {
            signo: 9,
            group: true,
        },
    );
    assert_eq!(helper.expect(1), FromHelper::OutputEnd);
    assert!(eventually(WAIT, || group_members(pid).is_empty()));
    // Now the id is free: a frame about it, racing its end, is dropped without an ERROR.
    helper.send(
        1,
        &ToHelper::Signal {
            signo: 9,
            group: true,
        },
    );
    helper.send(1, &ToHelper::OutputAck(1));
    assert_eq!(helper.next_for(1, Duration::from_millis(200)), None);
}

#[test]
fn exited_comes_after_every_byte_written_before_the_exit() {
    // More than the output window, acknowledged slowly: when the process ends, its readers are
    // waiting for credit and its pipe still holds the last of its output. EXITED must come
    // after all of it (dcx stops reading soon after EXITED once the output stays silent).
    let total: usize = 3 * 1024 * 1024;
    let mut helper = Helper::start();
    helper.run(1, sh(&format!("head -c {total} /dev/zero; exit 3")));
    let mut before_exit = 0;
    let exit = loop {
        match helper.expect(1) {
            FromHelper::Stdout(b) => {
                before_exit += b.len();
                thread::sleep(Duration::from_millis(5));
                helper.send(1, &ToHelper::OutputAck(len32(&b)));
            }
            FromHelper::Exited(e) => break e,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(exit, Exit::Code(3));
    assert_eq!(before_exit, total, "output still unsent when EXITED came");
    assert_eq!(helper.expect(1), FromHelper::OutputEnd);
}

#[test]
fn exited_comes_promptly_while_a_background_child_writes_and_detach_lets_it_run() {
    let dir = scratch_dir("detach");
    let count = dir.join("count");
    let mut helper = Helper::start();
    let started = Instant::now();
    // The background loop writes 64 KiB of output per round and counts its rounds in a file,
    // replaced whole each round (a rename), so a read never sees it empty mid-write.
    let script = format!(
        "(i=0; while :; do head -c 65536 /dev/zero; i=$((i+1)); echo $i > {0}.new; mv {0}.new {0}; sleep 0.02; done) & echo started",
        count.display()
    );
    let pid = helper.run(1, sh(&script));
    let mut exit = None;
    while exit.is_none() {
        match helper.expect(1) {
            FromHelper::Stdout(b) => helper.send(1, &ToHelper::OutputAck(len32(&b))),
            FromHelper::Exited(e) => exit = Some(e),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(exit, Some(Exit::Code(0)));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    helper.send(1, &ToHelper::Detach);
    // Frames already on their way may still come; then nothing until OUTPUT_END.
    while let Some(message) = helper.next_for(1, Duration::from_millis(300)) {
        assert!(matches!(message, FromHelper::Stdout(_)), "{message:?}");
    }
    let rounds = || -> u64 {
        fs::read_to_string(&count)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0)
    };
    let before = rounds();
    thread::sleep(Duration::from_secs(2));
    let after = rounds();
    // Far more than the 1 MiB window was read and discarded: not blocked, not SIGPIPE'd.
    assert!(after >= before + 16, "rounds {before} then {after}");
    assert!(
        !group_members(pid).is_empty(),
        "the background loop was killed"
    );
    assert!(helper.next_for(1, Duration::from_millis(10)).is_none());
    helper.send(
        1,
        &ToHelper::Signal {
            signo: 9,
            group: true,
        },
    );
    assert_eq!(helper.expect(1), FromHelper::OutputEnd);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn orphans_go_to_the_container_init_not_the_helper() {
    let mut helper = Helper::start();
    let pid = helper.run(1, sh("sleep 30 >/dev/null 2>&1 & echo $!"));
    let outcome = helper.collect(1);
    let orphan: u32 = outcome.stdout_text().trim().parse().unwrap();
    assert!(eventually(WAIT, || stat(orphan)
        .is_some_and(|(_, ppid, _)| ppid != pid)));
    let (_, ppid, group) = stat(orphan).unwrap();
    assert_ne!(ppid, helper.pid, "the helper must not be a subreaper");
    assert_eq!(group, pid);
    // Its group is ended with the helper.
    helper.close();
    let (status, _) = helper.wait_exit(Duration::from_secs(3));
    assert!(status.success());
    assert!(eventually(WAIT, || group_members(pid).is_empty()));
}

#[test]
fn the_end_of_stdin_terminates_running_groups_and_the_helper_exits_0() {
    let mut helper = Helper::start();
    let pid = helper.run(1, cmd(&["sleep", "100"]));
    assert!(eventually(WAIT, || group_members(pid).len() == 1));
    helper.close();
    let (status, took) = helper.wait_exit(Duration::from_secs(3));
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(eventually(Duration::from_secs(1), || group_members(pid).is_empty()));
}

#[test]
fn a_group_ignoring_sigterm_gets_sigkill_after_2_s() {
    let mut helper = Helper::start();
    let pid = helper.run(1, sh("trap '' TERM; sleep 100; :"));
    assert!(eventually(WAIT, || group_members(pid).len() == 2));
    helper.close();
    let (status, took) = helper.wait_exit(Duration::from_secs(4));
    assert!(status.success(), "{status:?}");
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert!(eventually(Duration::from_secs(1), || group_members(pid).is_empty()));
}

#[test]
fn a_command_that_does_not_read_stdin_blocks_nothing_else() {
    let mut helper = Helper::start();
    helper.run(
        1,
        RunSpec {
            stdin_open: true,
            ..cmd(&["sleep", "100"])
        },
    );
    // Far more than a pipe holds, within the window.
    for _ in 0..16 {
        helper.send(1, &ToHelper::Stdin(vec![b'x'; 64 * 1024]));
    }
    let outcome = helper.run_to_end(2, sh("echo fine"));
    assert_eq!(outcome.stdout, b"fine\n");
    // Beyond the window, STDIN is refused.
    helper.send(1, &ToHelper::Stdin(vec![b'x'; STDIN_WINDOW]));
    let refused = loop {
        match helper.expect(1) {
            FromHelper::StdinAck(_) => {}
            other => break other,
        }
    };
    assert!(
        matches!(&refused, FromHelper::Error(m) if m.contains("unacknowledged")),
        "{refused:?}"
    );
    helper.send(
        1,
        &ToHelper::Signal {
            signo: 9,
            group: true,
        },
    );
    let outcome = helper.collect(1);
    assert_eq!(outcome.exit, Some(Exit::Signal(9)));
}

#[test]
fn frames_the_helper_cannot_use_get_error_frames_and_it_carries_on() {
    let mut helper = Helper::start();
    let error = |helper: &mut Helper, id: u32| match helper.expect(id) {
        FromHelper::Error(message) => message,
        other => panic!("expected ERROR, got {other:?}"),
    };
    helper.send(7, &ToHelper::Detach);
    assert!(error(&mut helper, 7).contains("unknown id 7"));
    helper.send(0, &ToHelper::Run(cmd(&["true"])));
    assert!(error(&mut helper, 0).contains("id 0"));
    helper.send_raw(&dcx_helper::encode_frame(0x01, 3, &[0xff, 1]));
    assert!(error(&mut helper, 3).contains("malformed"));
    helper.send_raw(&dcx_helper::encode_frame(0x42, 4, &[]));
    assert!(error(&mut helper, 4).contains("unknown frame kind 0x42"));
    helper.send(5, &ToHelper::Run(cmd(&["a\0b"])));
    assert!(error(&mut helper, 5).contains("NUL"));

    helper.run(1, cmd(&["sleep", "100"]));
    helper.send(1, &ToHelper::Run(cmd(&["true"])));
    assert!(error(&mut helper, 1).contains("in use"));
    helper.send(1, &ToHelper::Stdin(b"x".to_vec()));
    assert!(error(&mut helper, 1).contains("not open"));
    helper.send(1, &ToHelper::StdinEof);
    assert!(error(&mut helper, 1).contains("not open"));
    helper.send(1, &ToHelper::Resize { rows: 1, cols: 1 });
    assert!(error(&mut helper, 1).contains("no PTY"));
    helper.send(
        1,
        &ToHelper::Signal {
            signo: 40,
            group: false,
        },
    );
    assert!(error(&mut helper, 1).contains("signal 40"));
    helper.send(
        1,
        &ToHelper::Signal {
            signo: 9,
            group: true,
        },
    );
    assert_eq!(helper.collect(1).exit, Some(Exit::Signal(9)));

    let spec = RunSpec {
        stdin_open: true,
        ..cmd(&["cat"])
    };
    helper.run(2, spec);
    helper.send(2, &ToHelper::StdinEof);
    helper.send(2, &ToHelper::StdinEof);
    assert!(error(&mut helper, 2).contains("already closed"));
    assert_eq!(helper.collect(2).exit, Some(Exit::Code(0)));
    assert_eq!(
        helper.run_to_end(3, cmd(&["true"])).exit,
        Some(Exit::Code(0))
    );
}

#[test]
fn an_unreadable_stream_ends_the_helper_as_end_of_file_does() {
    let mut helper = Helper::start();
    let pid = helper.run(1, cmd(&["sleep", "100"]));
    helper.send_raw(&(MAX_FRAME + 1).to_le_bytes());
    let (status, _) = helper.wait_exit(Duration::from_secs(3));
    assert!(status.success());
    assert!(eventually(Duration::from_secs(1), || group_members(pid).is_empty()));
}

#[test]
fn commands_run_concurrently_under_their_own_ids() {
    let mut helper = Helper::start();
    for id in 1..=8 {
        helper.run(id, sh(&format!("sleep 0.2; echo {id}")));
    }
    for id in 1..=8 {
        let outcome = helper.collect(id);
        assert_eq!(outcome.stdout_text(), format!("{id}\n"));
        assert_eq!(outcome.exit, Some(Exit::Code(0)));
    }
}

/// `dcx-helper --exec PATH ARGV0 ARG...` (dcx's own crun exec ends with it) runs PATH as
/// ARGV0 ARG... with the environment it was given and the default SIGPIPE disposition (the
/// helper's own runtime ignores it), and fails with a shell's codes.
#[test]
fn the_exec_mode_runs_the_program_as_given() {
    let out = Command::new(client::program())
        .args(["--exec", "/bin/sh", "named-so", "-c"])
        .arg("echo \"$0 $DCX_EXEC_TEST\"; grep SigIgn /proc/self/status")
        .env_clear()
        .env("DCX_EXEC_TEST", "given")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let shown = String::from_utf8_lossy(&out.stdout);
    let (first, ignored) = shown.split_once("\nSigIgn:\t").unwrap();
    assert_eq!(first, "named-so given");
    let ignored = u64::from_str_radix(ignored.trim(), 16).unwrap();
    assert_eq!(ignored & 1 << (13 - 1), 0, "SIGPIPE ignored: {ignored:x}");
    // A failure is worded and ended as crun's: `exec: <reason>`, exit code 1; a file the
    // kernel will not run is not handed to a shell.
    let missing = Command::new(client::program())
        .args(["--exec", "/no/such/program", "x"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        "exec: No such file or directory\n"
    );
    let script = scratch_dir("exec-mode").join("no-shebang");
    fs::write(&script, "echo ran\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let refused = Command::new(client::program())
        .arg("--exec")
        .arg(&script)
        .arg("no-shebang")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert_eq!(String::from_utf8_lossy(&refused.stdout), "");
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr),
        "exec: Exec format error\n"
    );
    let usage = Command::new(client::program())
        .args(["--exec"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(1));
}
