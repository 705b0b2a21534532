//! `dcx mcp`'s file tools driven by the official Python MCP SDK (tests/mcp/files.py), against
//! the real daemon and crun: `read_file`, `write_file`, `edit_file` and `list_directory`, their
//! annotations, and every structured result checked against its `outputSchema`; and, through
//! the helper, the session's user's rights (what the user may not touch is refused).

use crate::harness::{CrunContainer, DEBIAN, TestContainer, dcx_path};

/// Runs the scenario `tools` of tests/mcp/files.py against `dcx mcp <flags>` (with `helper:
/// false`, the in-container helper turned off); returns its stdout.
fn client(flags: &[&str], helper: bool) -> String {
    scenario("tools", flags, helper)
}

fn scenario(name: &str, flags: &[&str], helper: bool) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/files.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(name)
        .arg(dcx_path())
        .args(flags)
        .env("XDG_CACHE_HOME", crate::harness::test_cache_home())
        .env("DCX_HELPER", if helper { "1" } else { "0" })
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}{} (the Python MCP SDK and jsonschema come from scripts/setup.sh)",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
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
    let out = client(
        &[
            "--runtime",
            "crun",
            "--crun-root",
            container.root_str(),
            "--container-id",
            &container.id,
        ],
        true,
    );
    assert_eq!(edited(&out), (EDITED.to_owned(), "exec".to_owned()));
}
