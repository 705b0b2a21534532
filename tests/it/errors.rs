//! Every failure of dcx's own: one line on stderr, nothing on stdout, exit 1.

use crate::harness::{BUSYBOX, TestContainer, dcx};

#[test]
fn an_unknown_container_is_named() {
    dcx()
        .args(["exec", "--container-id", "does-not-exist", "true"])
        .run()
        .code(1)
        .stdout("")
        .stderr("error: No such container: does-not-exist\n");
    dcx()
        .args(["exec", "--container-id", "../../version", "true"])
        .run()
        .code(1)
        .stderr("error: No such container: ../../version\n");
}

#[test]
fn a_stopped_container_is_named_and_not_run() {
    let c = TestContainer::start(BUSYBOX);
    c.stop();
    let name = &c.name;
    c.dcx(["echo", "never"])
        .run()
        .code(1)
        .stdout("")
        .stderr(&format!(
            "error: Container {name} is not running (state: exited). Start it with `docker start {name}`.\n"
        ));
}

#[test]
fn an_unreachable_daemon_names_the_socket_or_host() {
    dcx()
        .args(["exec", "--container-id", "any", "true"])
        .env("DOCKER_HOST", "unix:///tmp/dcx-no-daemon-here.sock")
        .run()
        .code(1)
        .stdout("")
        .stderr("error: Cannot connect to the Docker daemon at unix:///tmp/dcx-no-daemon-here.sock (no socket at /tmp/dcx-no-daemon-here.sock). Is it running? Otherwise point DOCKER_HOST at one that is.\n");
    // Port 9 (discard) has no listener here: the connection is refused at once.
    dcx()
        .args(["exec", "--container-id", "any", "true"])
        .env("DOCKER_HOST", "tcp://127.0.0.1:9")
        .run()
        .code(1)
        .stdout("")
        .stderr("error: Cannot connect to the Docker daemon at tcp://127.0.0.1:9 (Connection refused). Is it running? Otherwise point DOCKER_HOST at one that is.\n");
    dcx()
        .args(["exec", "--container-id", "any", "true"])
        .env("DOCKER_HOST", "npipe:////./pipe/docker_engine")
        .run()
        .code(1)
        .stderr("error: Unsupported DOCKER_HOST npipe:////./pipe/docker_engine: dcx speaks to unix://, tcp:// and ssh:// endpoints.\n");
}

#[test]
fn usage_errors_say_what_is_wrong_and_point_at_help() {
    dcx()
        .args(["exec", "--container-id", "c"])
        .run()
        .code(1)
        .stdout("")
        .stderr(
            "error: no command given: name the command to run after the options\n\nUsage: dcx exec [OPTIONS] <CMD> [ARGS]...\n\nFor more information, try '--help'.\n",
        );
    dcx()
        .args(["exec", "--no-such-flag", "true"])
        .run()
        .code(1)
        .stderr("error: unexpected argument '--no-such-flag' found\n\n  tip: to pass '--no-such-flag' as a value, use '-- --no-such-flag'\n\nUsage: dcx exec [OPTIONS] <CMD> [ARGS]...\n\nFor more information, try '--help'.\n");
    let empty = tempfile::tempdir().unwrap();
    dcx()
        .current_dir(empty.path())
        .args(["exec", "echo", "hi"])
        .run()
        .code(1)
        .stderr(&format!("error: Missing required argument: One of --container-id, --id-label or --workspace-folder is required.\nhint: no dev container config in {} (.devcontainer/devcontainer.json or .devcontainer.json)\n", empty.path().display()));
}

#[test]
fn help_goes_to_stdout_with_exit_0() {
    let out = dcx().args(["exec", "--help"]).run().code(0).stderr("");
    assert!(
        out.stdout_text().contains("--container-id <ID>"),
        "{}",
        out.stdout_text()
    );
}

/// Through `dcx serve`'s real socket: empty and malformed inputs are named; a session whose
/// working directory does not exist still keeps its state (the bookkeeping runs from `/`).
#[test]
fn the_agent_names_empty_and_malformed_inputs() {
    use serde_json::json;
    let agent = crate::agent::Agent::start(&[]);
    let container = TestContainer::start(BUSYBOX);
    let mut client = agent.client();
    for (method, params, code, message) in [
        (
            "session.create",
            json!({"container_id": ""}),
            "bad_request",
            "`container_id` is empty: give a value or leave it out",
        ),
        (
            "session.create",
            json!({"id_labels": ["nolabel"]}),
            "bad_request",
            "`id_labels`: `nolabel` is not `name=value`",
        ),
        (
            "",
            json!({}),
            "unknown_method",
            "`method` is empty: name one, such as `session.create` or `exec.run`",
        ),
        (
            "exec.cancel",
            json!({"exec_id": ""}),
            "no_such_exec",
            "`exec_id` is empty: give the one the exec's start answered",
        ),
    ] {
        assert_eq!(
            client.error(method, params),
            (code.to_owned(), message.to_owned()),
            "{method}"
        );
    }
    let created = client.ok(
        "session.create",
        json!({"container_id": container.id, "cwd": "/nonexistent", "helper": false}),
    );
    assert_eq!(created["note"], serde_json::Value::Null, "{created}");
}
