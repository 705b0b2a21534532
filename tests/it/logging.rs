//! `--log-format json` and `--log-level`: the reference's event shape, a forced PTY in JSON
//! mode, stdin EOF forwarded, UTF-8 kept whole, and the command's output never altered.

use crate::harness::{DEBIAN, TestContainer};

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
