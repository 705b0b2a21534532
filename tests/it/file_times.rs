//! `fs.write`'s modification time against a build output touched just before it, through
//! `dcx serve`'s socket: the in-container helper, the Docker archive API, and crun's host view
//! of the container's root. `[ -nt ]` (as `make`) must see the written file as newer every time.

use serde_json::{Value, json};

use crate::agent::Agent;
use crate::harness::{CrunContainer, DEBIAN, TestContainer};

/// Ten rounds of: touch a build output, write a source with `fs.write`, and ask the container's
/// `[ source -nt output ]` whether the source is newer.
fn written_files_are_newer_than_a_build_output(create: Value, transport: &str) {
    let agent = Agent::start(&[]);
    let mut client = agent.client();
    let session = client.ok("session.create", create)["session_id"].clone();
    let info = client.ok("session.info", json!({"session_id": session}));
    assert_eq!(info["transport"], transport, "{info}");
    let run = |client: &mut crate::agent::Client, command: &str| {
        client.ok(
            "exec.run",
            json!({"session_id": session, "command": command}),
        )
    };
    let made = run(&mut client, "mkdir -p /tmp/nt && cd /tmp/nt");
    assert_eq!(made["exit_code"], 0, "{made}");
    for round in 0..10 {
        let touched = run(&mut client, "touch /tmp/nt/build_output");
        assert_eq!(touched["exit_code"], 0, "{touched}");
        client.ok(
            "fs.write",
            json!({"session_id": session, "path": "/tmp/nt/source.c", "data": format!("int round = {round};\n")}),
        );
        let check = run(
            &mut client,
            "[ /tmp/nt/source.c -nt /tmp/nt/build_output ] || { stat -c '%n %y' /tmp/nt/*; exit 1; }",
        );
        assert_eq!(check["exit_code"], 0, "round {round}: {check}");
    }
}

#[test]
fn written_files_are_newer_through_the_helper() {
    let container = TestContainer::start(DEBIAN);
    written_files_are_newer_than_a_build_output(json!({"container_id": container.id}), "helper");
}

#[test]
fn written_files_are_newer_through_the_docker_archive_api() {
    let container = TestContainer::start(DEBIAN);
    written_files_are_newer_than_a_build_output(
        json!({"container_id": container.id, "helper": false}),
        "exec",
    );
}

#[test]
fn written_files_are_newer_on_crun() {
    // A read-only root: no helper; /tmp is a tmpfs written from the host's side.
    let container = CrunContainer::start("debian", &[]);
    written_files_are_newer_than_a_build_output(
        json!({"container_id": container.id, "runtime": "crun", "crun_root": container.root_str()}),
        "exec",
    );
}
