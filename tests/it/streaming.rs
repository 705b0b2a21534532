//! A gibibyte through dcx in each direction: every byte arrives, and dcx's peak RSS stays
//! under 30 MiB (measured by GNU time on the dcx process alone), so nothing is gathered.

use crate::harness::{DEBIAN, Subject, TestContainer, dcx_path};
use std::process::Command;

const GIB: u64 = 1 << 30;
const RSS_LIMIT_KIB: u64 = 30 * 1024;

/// Runs a shell pipeline in which `$DCX` is wrapped by GNU time; returns (stdout, max RSS KiB).
fn pipeline(script: &str) -> (String, u64) {
    let dir = std::env::temp_dir().join(format!("dcx-rss-{}-{}", std::process::id(), script.len()));
    let _ = std::fs::remove_file(&dir);
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -o pipefail; {script}"))
        .env(
            "DCX",
            format!("/usr/bin/time -f %M -o {} {}", dir.display(), dcx_path()),
        )
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rss = std::fs::read_to_string(&dir)
        .expect("GNU time wrote its report (is /usr/bin/time installed? run scripts/setup.sh)");
    let _ = std::fs::remove_file(&dir);
    let rss = rss
        .lines()
        .last()
        .and_then(|line| line.trim().parse().ok())
        .expect("GNU time's %M is a number");
    (String::from_utf8(out.stdout).expect("utf-8"), rss)
}

#[test]
fn a_gibibyte_of_stdin_streams_through() {
    let c = TestContainer::start(DEBIAN);
    let (stdout, rss) = pipeline(&format!(
        "head -c {GIB} /dev/zero | $DCX exec --container-id {} sh -c 'cat | wc -c'",
        c.id
    ));
    assert_eq!(stdout, format!("{GIB}\n"));
    assert!(rss < RSS_LIMIT_KIB, "dcx peaked at {rss} KiB");
}

#[test]
fn a_gibibyte_of_stdout_streams_through() {
    let c = TestContainer::start(DEBIAN);
    let (stdout, rss) = pipeline(&format!(
        "$DCX exec --container-id {} head -c {GIB} /dev/zero | wc -c",
        c.id
    ));
    assert_eq!(stdout, format!("{GIB}\n"));
    assert!(rss < RSS_LIMIT_KIB, "dcx peaked at {rss} KiB");
}

#[test]
fn a_closed_reader_ends_the_run_like_sigpipe() {
    let c = TestContainer::start(DEBIAN);
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{} exec --container-id {} yes | head -n 2; echo \"${{PIPESTATUS[0]}}\"",
            dcx_path(),
            c.id
        ))
        .output()
        .expect("run bash");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "y\ny\n141\n");
}

/// Generous: a run that ended promptly takes a few seconds at most; a stalled one would take
/// the reader's 30 s (or forever).
const PROMPT: std::time::Duration = std::time::Duration::from_secs(10);

#[test]
fn a_timeout_ends_the_run_while_the_reader_stalls() {
    let c = TestContainer::start(DEBIAN);
    let started = std::time::Instant::now();
    let mut run = c
        .dcx(["--timeout", "2s", "yes"])
        .spawn_with_stalled_stdout();
    assert_eq!(run.wait(), Some(124), "{}", run.stderr.text());
    let took = started.elapsed();
    eprintln!("--timeout 2s with a stalled reader ended after {took:?}");
    assert!(took < PROMPT, "took {took:?}");
    assert_eq!(c.count_running("yes"), 0, "{:?}", c.processes());
}

#[test]
fn sigterm_ends_the_run_while_the_reader_stalls() {
    let c = TestContainer::start(DEBIAN);
    let mut run = c.dcx(["yes"]).spawn_with_stalled_stdout();
    c.wait_until_running("yes");
    run.wait_catching(15);
    // Long enough for every pipe on the way to fill up.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let started = std::time::Instant::now();
    run.signal("TERM");
    assert_eq!(run.wait(), Some(143), "{}", run.stderr.text());
    let took = started.elapsed();
    eprintln!("SIGTERM with a stalled reader ended dcx after {took:?}");
    assert!(took < PROMPT, "took {took:?}");
    assert_eq!(c.count_running("yes"), 0, "{:?}", c.processes());
}
