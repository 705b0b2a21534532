//! `--log-format json` and `--log-level`: the reference's event shape, a forced PTY in JSON
//! mode, stdin EOF forwarded, UTF-8 kept whole, and the command's output never altered.

use crate::harness::{BUSYBOX, DEBIAN, Subject, TestContainer};

fn events(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect()
}

fn raw_text(events: &[serde_json::Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "raw")
        .map(|e| e["text"].as_str().unwrap())
        .collect()
}

#[test]
fn json_mode_forces_a_tty_and_sends_output_as_raw_events() {
    let c = TestContainer::start(DEBIAN);
    let out = c
        .dcx(["--log-format", "json", "sh", "-c", "[ -t 1 ] && echo tty"])
        .run()
        .code(0)
        .stdout("");
    let events = events(&out.stderr_text());
    assert_eq!(raw_text(&events), "tty\r\n");
    for event in &events {
        assert_eq!(event["level"], 2);
        assert!(event["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    }
}

#[test]
fn json_mode_forwards_stdin_eof() {
    let c = TestContainer::start(DEBIAN);
    let out = c
        .dcx(["--log-format", "json", "cat"])
        .stdin("hi\n")
        .run()
        .code(0)
        .stdout("");
    assert!(raw_text(&events(&out.stderr_text())).contains("hi"));
}

#[test]
fn json_mode_keeps_a_split_utf8_character_whole() {
    let c = TestContainer::start(DEBIAN);
    let out = c
        .dcx([
            "--log-format",
            "json",
            "sh",
            "-c",
            r"printf '\360\237'; sleep 0.3; printf '\246\200\n'",
        ])
        .run()
        .code(0);
    let text = raw_text(&events(&out.stderr_text()));
    assert_eq!(text, "🦀\r\n");
}

#[test]
fn log_level_filters_in_both_formats_without_touching_the_output() {
    let c = TestContainer::start(DEBIAN);
    // info: a successful exec writes nothing of its own.
    c.dcx(["echo", "hi"]).run().stdout("hi\n").stderr("");
    let out = c.dcx(["--log-format", "json", "echo", "hi"]).run().code(0);
    assert!(
        events(&out.stderr_text())
            .iter()
            .all(|e| e["type"] == "raw")
    );
    // debug: diagnostics appear, the command's output is the same.
    let out = c
        .dcx(["--log-level", "debug", "echo", "hi"])
        .run()
        .code(0)
        .stdout("hi\n");
    assert!(
        out.stderr_text()
            .contains("Start: Run in container: echo hi"),
        "{}",
        out.stderr_text()
    );
    let out = c
        .dcx(["--log-level", "debug", "--log-format", "json", "echo", "hi"])
        .run()
        .code(0)
        .stdout("");
    let events = events(&out.stderr_text());
    assert!(events.iter().any(|e| e["type"] == "start"));
    let stop = events
        .iter()
        .find(|e| e["type"] == "stop")
        .expect("a stop event");
    assert!(stop["startTimestamp"].as_u64().unwrap() <= stop["timestamp"].as_u64().unwrap());
    assert_eq!(raw_text(&events), "hi\r\n");
}

/// Issue 25, finding 7: with `--log-format json` the command's output is `raw` events on
/// stderr; a reader that goes away there ends the run as it would on stdout, and the command
/// is not left running.
#[test]
fn a_json_log_reader_that_goes_away_ends_the_run() {
    let c = TestContainer::start(BUSYBOX);
    // dcx's own status after the pipeline: `timeout` gives 124 had it been held.
    let script = format!(
        "timeout 60 {} exec --container-id {} --log-format json yes 2>&1 | head -c1; echo \" ${{PIPESTATUS[0]}}\"",
        crate::harness::dcx_path(),
        c.id
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .unwrap();
    // It ends as a writer to a closed pipe does (SIGPIPE's 141).
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{ 141\n");
    let started = std::time::Instant::now();
    while c.count_running("yes") > 0 {
        assert!(started.elapsed().as_secs() < 10, "yes still runs");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
