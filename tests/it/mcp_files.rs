//! `dcx mcp`'s file tools driven by the official Python MCP SDK (tests/mcp/files.py), against
//! the real daemon and crun: `read_file`, `write_file`, `edit_file` and `list_directory`, their
//! annotations, and every structured result checked against its `outputSchema`; and, through
//! the helper, the session's user's rights (what the user may not touch is refused).

use crate::harness::{CrunContainer, DEBIAN, TestContainer};

/// Runs the scenario `tools` of tests/mcp/files.py against `dcx mcp <flags>` (with `helper:
/// false`, the in-container helper turned off); returns its stdout.
fn client(flags: &[&str], helper: bool) -> String {
    scenario("tools", flags, helper)
}

fn scenario(name: &str, flags: &[&str], helper: bool) -> String {
    let helper = ("DCX_HELPER", if helper { "1" } else { "0" });
    let out = crate::mcp::run_python("files.py", name, flags, &[helper]);
    crate::mcp::passed(name, &out)
}

const EDITED: &str = "def greet():\n    return 'hi'\n\nvalue = 2\nvalue = 2\n";

/// The edited file as the container has it, and the session's transport.
fn edited(out: &str) -> (String, String) {
    let last: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    (
        last["content"].as_str().unwrap().to_owned(),
        last["transport"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn the_file_tools_on_docker_through_the_helper() {
    let container = TestContainer::start(DEBIAN);
    let out = client(&["--container-id", &container.name], true);
    assert_eq!(edited(&out), (EDITED.to_owned(), "helper".to_owned()));
}

#[test]
fn the_file_tools_on_docker_by_the_engine_s_file_calls() {
    let container = TestContainer::start(DEBIAN);
    let out = client(&["--container-id", &container.name], false);
    assert_eq!(edited(&out), (EDITED.to_owned(), "exec".to_owned()));
}

#[test]
fn through_the_helper_the_file_tools_act_as_the_session_s_user() {
    let container = TestContainer::start(DEBIAN);
    let out = scenario(
        "user",
        &["--container-id", &container.name, "--user", "vscode"],
        true,
    );
    assert!(out.contains(r#"{"user": "vscode"}"#), "{out}");
}

#[test]
fn the_file_tools_on_crun() {
    // A read-only root: no helper, the engine's file calls on the container's root as the
    // host sees it (its /tmp is a tmpfs).
    let container = CrunContainer::start("debian", &[]);
    let out = client(&container.selectors(), true);
    assert_eq!(edited(&out), (EDITED.to_owned(), "exec".to_owned()));
}
