//! `system.*` and `session.*` on the in-memory engine: every answer, every error code, limits,
//! shutdown and the idle sweep.

use std::time::Duration;

use serde_json::json;

use super::{harness, limits};
use crate::agent::service::Limits;

#[tokio::test]
async fn system_methods_and_unknown_ones() {
    let h = harness(limits());
    let pong = h.ok("system.ping", json!({})).await;
    assert_eq!(
        (pong["pong"].clone(), pong["version"].clone()),
        (json!(true), json!(env!("CARGO_PKG_VERSION")))
    );
    let id = h.session(json!({})).await;
    let stats = h.ok("system.stats", json!({})).await;
    assert_eq!(stats["sessions"], 1);
    assert_eq!(stats["running_execs"], 0);
    assert_eq!(stats["limits"]["max_execs"], 2);
    assert_eq!(stats["per_session"][0]["session_id"], id.as_str());
    // The in-memory engine's root is the host's view: no zombies there.
    assert_eq!(stats["per_session"][0]["container_zombies"], 0);
    assert_eq!(h.error("no.such", json!({})).await.0, "unknown_method");
    assert_eq!(
        h.error("system.ping", json!({"x": 1})).await,
        (
            "bad_request".into(),
            "unknown parameter `x` (this method takes nothing)".into()
        )
    );
}

#[tokio::test]
async fn sessions_are_created_listed_reset_and_destroyed() {
    let h = harness(limits());
    let created = h
        .ok(
            "session.create",
            json!({"container_id": "c1", "user": "vscode", "env": {"GREETING": "hi"}}),
        )
        .await;
    assert_eq!(created["container_id"], "c1");
    assert_eq!(created["user"], "vscode");
    assert_eq!(created["cwd"], "/home/vscode");
    assert_eq!(created["runtime"], "memory");
    let id = created["session_id"].as_str().unwrap();
    assert!(id.len() > 20, "{id}");
    // The in-memory engine names no architecture: no helper, and the session says why.
    assert_eq!(created["transport"], "exec");
    let info = h.ok("session.info", json!({"session_id": id})).await;
    assert_eq!(
        (info["transport"].clone(), info["transport_note"].clone()),
        (
            json!("exec"),
            json!("the engine does not say the container's architecture")
        )
    );
    let info = h.ok("session.info", json!({"session_id": id})).await;
    assert_eq!(
        (info["cwd"].clone(), info["concurrent"].clone()),
        (json!("/home/vscode"), json!(false))
    );
    let listed = h.ok("session.list", json!({})).await;
    assert_eq!(listed["sessions"][0]["session_id"], id);
    assert!(listed["sessions"][0].get("cwd").is_none());
    let reset = h.ok("session.reset", json!({"session_id": id})).await;
    assert_eq!(reset["cwd"], "/home/vscode");
    let destroyed = h.ok("session.destroy", json!({"session_id": id})).await;
    assert_eq!(destroyed["destroyed"], true);
    let (code, message) = h.error("session.info", json!({"session_id": id})).await;
    assert_eq!(
        (code.as_str(), message),
        ("no_such_session", format!("No such session: {id}"))
    );
}

#[tokio::test]
async fn session_create_errors_carry_their_codes() {
    let h = harness(Limits {
        max_sessions: 1,
        ..limits()
    });
    let cases = [
        (
            json!({"container_id": 3}),
            "bad_request",
            "`container_id` must be a string",
        ),
        (
            json!({"container_id": "c1", "colour": "red"}),
            "bad_request",
            "unknown parameter `colour` (this method takes `workspace_folder`, `container_id`, `id_labels`, `config`, `runtime`, `crun_root`, `crun_path`, `docker_path`, `user`, `env`, `cwd`, `idle_timeout_s`, `concurrent`, `helper`)",
        ),
        (
            json!({"id_labels": ["nolabel"]}),
            "bad_request",
            "`id_labels`: `nolabel` is not `name=value`",
        ),
        (
            json!({"container_id": "c1", "runtime": "lxc"}),
            "bad_request",
            "`runtime` must be `docker` or `crun`",
        ),
        (
            json!({"container_id": "gone"}),
            "no_such_container",
            "No such container: gone",
        ),
        (
            json!({"container_id": "c1", "user": "nosuchuser"}),
            "engine_error",
            "Unknown user nosuchuser: the container's /etc/passwd has no such user.",
        ),
    ];
    for (params, code, message) in cases {
        assert_eq!(
            h.error("session.create", params).await,
            (code.into(), message.into())
        );
    }
    let (code, message) = h
        .error("session.create", json!({"container_id": "stopped"}))
        .await;
    assert_eq!(code, "container_not_running", "{message}");
    h.session(json!({})).await;
    assert_eq!(
        h.error("session.create", json!({"container_id": "c1"}))
            .await
            .0,
        "session_limit"
    );
}

#[tokio::test]
async fn shutdown_cancels_what_runs_and_refuses_new_work() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    let sleeping = h
        .ok("exec.start", json!({"session_id": id, "argv": ["sleep"]}))
        .await;
    h.service.shutdown(Duration::from_secs(5)).await;
    let read = h
        .ok("exec.read", json!({"exec_id": sleeping["exec_id"]}))
        .await;
    assert_eq!(read["state"], "cancelled");
    assert_eq!(
        h.error("session.create", json!({"container_id": "c1"}))
            .await
            .0,
        "shutting_down"
    );
    assert_eq!(
        h.error("exec.run", json!({"session_id": id, "argv": ["echo"]}))
            .await
            .0,
        "shutting_down"
    );
}

#[tokio::test]
async fn an_idle_session_is_swept() {
    let h = harness(limits());
    let id = h.session(json!({"idle_timeout_s": 1})).await;
    let kept = h.session(json!({})).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.service.sweep().await;
    assert_eq!(
        h.error("session.info", json!({"session_id": id})).await.0,
        "no_such_session"
    );
    h.ok("session.info", json!({"session_id": kept})).await;
    // Its permit went with it.
    h.session(json!({})).await;
}

/// Empty or malformed inputs are answered with a message naming the parameter (and the value,
/// where there is one), never an empty or borrowed text (issue 25, finding 20).
#[tokio::test]
async fn empty_and_malformed_inputs_are_named() {
    let h = harness(limits());
    let mut messages = Vec::new();
    for params in [
        json!({"container_id": ""}),
        json!({"workspace_folder": ""}),
        json!({"container_id": "c1", "config": ""}),
        json!({"container_id": "c1", "cwd": ""}),
        json!({"container_id": "c1", "user": ""}),
        json!({"container_id": "c1", "docker_path": ""}),
        json!({"id_labels": ["=x"]}),
        json!({"id_labels": ["a b"]}),
        json!({}),
    ] {
        let (code, message) = h.error("session.create", params.clone()).await;
        messages.push(format!("session.create {params}: {code}: {message}"));
    }
    let sid = h.session(json!({})).await;
    for (method, params) in [
        ("exec.start", json!({"session_id": sid, "command": " \n"})),
        ("exec.start", json!({"session_id": sid, "argv": [""]})),
        ("", json!({})),
        ("exec.run", json!({"session_id": "", "command": "true"})),
        ("exec.read", json!({"exec_id": ""})),
        ("exec.cancel", json!({"exec_id": "e\n1"})),
    ] {
        let (code, message) = h.error(method, params.clone()).await;
        let params = params.to_string().replace(&sid, "[SESSION]");
        messages.push(format!("{method} {params}: {code}: {message}"));
    }
    let server_dir = std::env::temp_dir().display().to_string();
    insta::assert_snapshot!(messages.join("\n").replace(&server_dir, "[SERVER DIR]"), @r#"
    session.create {"container_id":""}: bad_request: `container_id` is empty: give a value or leave it out
    session.create {"workspace_folder":""}: bad_request: `workspace_folder` is empty: give a value or leave it out
    session.create {"container_id":"c1","config":""}: bad_request: `config` is empty: give a value or leave it out
    session.create {"container_id":"c1","cwd":""}: bad_request: `cwd` is empty: give a value or leave it out
    session.create {"container_id":"c1","user":""}: bad_request: `user` is empty: give a value or leave it out
    session.create {"container_id":"c1","docker_path":""}: bad_request: `docker_path` is empty: give a value or leave it out
    session.create {"id_labels":["=x"]}: bad_request: `id_labels`: `=x` is not `name=value`
    session.create {"id_labels":["a b"]}: bad_request: `id_labels`: `a b` is not `name=value`
    session.create {}: bad_request: no dev container selected: give `container_id`, `id_labels` or `workspace_folder` (the server's folder [SERVER DIR] has no .devcontainer/devcontainer.json or .devcontainer.json)
    exec.start {"session_id":"[SESSION]","command":" \n"}: bad_request: `command` is empty
    exec.start {"session_id":"[SESSION]","argv":[""]}: bad_request: `argv` is empty: give the program and its arguments
     {}: unknown_method: `method` is empty: name one, such as `session.create` or `exec.run`
    exec.run {"session_id":"","command":"true"}: no_such_session: `session_id` is empty: give the one session.create answered
    exec.read {"exec_id":""}: no_such_exec: `exec_id` is empty: give the one the exec's start answered
    exec.cancel {"exec_id":"e\n1"}: no_such_exec: No such exec: e\n1
    "#);
}
