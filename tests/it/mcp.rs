//! `dcx mcp` driven by the official Python MCP SDK (`stdio_client` + `ClientSession`,
//! tests/mcp/client.py), against the real daemon and crun: tools and their schemas, the
//! `run_command` cases, persistence, a start/read/cancel cycle, a stopped container as a tool
//! error, and stdin closing the server with nothing left running.

use crate::harness::{BUSYBOX, CrunContainer, DEBIAN, Subject, TestContainer, dcx, dcx_path};

/// Runs `scenario` of the Python script `tests/mcp/<script>` against `dcx mcp <flags>`, with
/// `env` added; its output, whether it passed or not.
pub fn run_python(
    script: &str,
    scenario: &str,
    flags: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let script = format!("{}/tests/mcp/{script}", env!("CARGO_MANIFEST_DIR"));
    std::process::Command::new("python3")
        .arg(script)
        .arg(scenario)
        .arg(dcx_path())
        .args(flags)
        .env("XDG_CACHE_HOME", crate::harness::test_cache_home())
        .envs(env.iter().copied())
        .output()
        .expect("python3")
}

/// The stdout of a scenario that must have passed.
pub fn passed(scenario: &str, out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{scenario}: {}{} (the Python MCP SDK comes from scripts/setup.sh: pip install mcp)",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a scenario of tests/mcp/client.py against `dcx mcp <flags>`; returns its stdout.
fn client(scenario: &str, flags: &[&str]) -> String {
    passed(scenario, &run_python("client.py", scenario, flags, &[]))
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
    let out = client("tools", &container.selectors());
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

/// What a model reads (issue 23's contract), through the SDK on Docker: the budget and the
/// whole output's file, U+FFFD, a progress bar, the exit wording, yield and wait, a cancelled
/// call stopping the group, a 2 MB command, the shell's own error lines, a removed directory.
#[test]
fn what_a_model_reads_on_docker() {
    let container = TestContainer::start(DEBIAN);
    client("contract", &["--container-id", &container.id]);
    assert_eq!(container.count_running("sleep 177"), 0);
}

#[test]
fn what_a_model_reads_on_crun_without_the_helper() {
    // Its /tmp, where the scenario writes, is a tmpfs.
    let container = CrunContainer::start("debian", &[]);
    let flags = container.selectors();
    let out = run_python("client.py", "contract", &flags, &[("DCX_HELPER", "0")]);
    passed("contract", &out);
}

/// A web server started with start_command serves 100 requests and keeps running (it has no
/// built-in lifetime; the stand-in test of that is
/// `agent::a_background_command_outlives_the_server_s_longest_timeout`).
#[test]
fn a_server_started_by_start_command_serves_and_runs_on() {
    let container = TestContainer::start(BUSYBOX);
    client("server", &["--container-id", &container.id]);
    // The server stopped what it started when its stdin closed.
    assert_eq!(container.count_running("httpd -f -p 127.0.0.1:18080"), 0);
}

/// After `devcontainer up --remove-existing-container`, the next call runs on the new
/// container and says so; a removed container is a tool error naming it.
#[test]
fn a_rebuilt_dev_container_is_followed_and_a_removed_one_is_a_tool_error() {
    let workspace = crate::harness::TestWorkspace::copy("basic");
    workspace.up(&[]);
    let reference = crate::harness::reference_cli();
    let env = [
        ("DCX_TEST_WORKSPACE", workspace.path_str()),
        ("DCX_REFERENCE_CLI", reference.to_str().unwrap()),
    ];
    let flags = ["--workspace-folder", workspace.path_str()];
    let out = run_python("client.py", "rebuild", &flags, &env);
    // The containers the scenario made (one id a line), for the workspace to remove.
    for id in String::from_utf8_lossy(&out.stdout).lines() {
        workspace.adopt(id.trim());
    }
    passed("rebuild", &out);
}

/// Without the in-container helper the file tools act with the engine's rights: the answer says
/// so when the session's user is not root.
#[test]
fn file_tools_without_the_helper_say_whose_rights_they_used() {
    let container = TestContainer::start(DEBIAN);
    let flags = ["--container-id", container.id.as_str(), "--user", "vscode"];
    let out = run_python(
        "client.py",
        "no-helper-files",
        &flags,
        &[("DCX_HELPER", "0")],
    );
    passed("no-helper-files", &out);
}
