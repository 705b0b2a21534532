//! `dcx mcp` driven by the official Python MCP SDK (`stdio_client` + `ClientSession`,
//! tests/mcp/client.py), against the real daemon and crun: tools and their schemas, the
//! `run_command` cases, persistence, a start/read/cancel cycle, a stopped container as a tool
//! error, and stdin closing the server with nothing left running.

use crate::harness::{CrunContainer, DEBIAN, Subject, TestContainer, dcx, dcx_path};

/// Runs a client scenario against `dcx mcp <flags>`; returns its stdout.
fn client(scenario: &str, flags: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/client.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(scenario)
        .arg(dcx_path())
        .args(flags)
        .env("XDG_CACHE_HOME", crate::harness::test_cache_home())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{scenario}: {}{} (the Python MCP SDK comes from scripts/setup.sh: pip install mcp)",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_tools_on_docker() {
    let container = TestContainer::start(DEBIAN);
    let out = client("tools", &["--container-id", &container.name]);
    let info: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    assert_eq!(info["container_id"], container.id.as_str());
    assert_eq!(info["image"], DEBIAN);
    assert_eq!(container.count_running("sleep 37"), 0);
}

#[test]
fn the_tools_on_crun() {
    let container = CrunContainer::start("busybox", &[]);
    let out = client(
        "tools",
        &[
            "--runtime",
            "crun",
            "--crun-root",
            container.root_str(),
            "--container-id",
            &container.id,
        ],
    );
    assert!(out.contains(&container.id), "{out}");
}

#[test]
fn a_stopped_container_is_a_tool_error_with_dcx_exec_s_message() {
    let container = TestContainer::start(DEBIAN);
    container.stop();
    let expected = dcx()
        .args(["exec", "--container-id", &container.id, "true"])
        .run()
        .code(1)
        .stderr_text();
    let out = client("stopped", &["--container-id", &container.id]);
    // Twice: the server kept running and tried the selection again. (dcx exec leads with
    // `error: `; the tool's text is the message itself.)
    let message = expected.trim_end().strip_prefix("error: ").unwrap();
    assert_eq!(out, format!("{message}\n{message}\n"));
}

#[test]
fn closing_stdin_ends_the_server_and_what_it_started() {
    let container = TestContainer::start(DEBIAN);
    client("stdin-close", &["--container-id", &container.id]);
    assert_eq!(container.count_running("sleep 39"), 0);
}
