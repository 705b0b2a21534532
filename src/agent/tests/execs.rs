//! `exec.*` on the in-memory engine: output, exit states, parameters, ids, limits as permits,
//! timeouts, stdin and stream events.

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{harness, limits};
use crate::agent::protocol::Request;
use crate::agent::service::Limits;

#[tokio::test]
async fn a_command_runs_with_its_output_and_exit_state() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    let done = h
        .ok(
            "exec.run",
            json!({"session_id": id, "argv": ["echo", "out", "err", "3"]}),
        )
        .await;
    assert_eq!(done["state"], "exited");
    assert_eq!(done["exit_code"], 3);
    assert_eq!(
        (done["stdout"].clone(), done["stderr"].clone()),
        (json!("out"), json!("err"))
    );
    assert_eq!(
        (
            done["stdout_bytes"].clone(),
            done["stdout_truncated"].clone()
        ),
        (json!(3), json!(false))
    );
    // A shell line reaches the wrapper in its environment, never its argv.
    let done = h
        .ok(
            "exec.run",
            json!({"session_id": id, "command": "echo line"}),
        )
        .await;
    assert_eq!(done["stdout"], "line");
    let argv = h.started.lock().unwrap().last().unwrap().clone();
    assert!(
        !argv.iter().any(|word| word.contains("echo line")),
        "{argv:?}"
    );
    // Truncation keeps head and tail with the real count.
    let done = h
        .ok(
            "exec.run",
            json!({"session_id": id, "argv": ["burst"], "max_output_bytes": 4}),
        )
        .await;
    assert_eq!(done["stdout"], "01\n[… 6 bytes left out …]\n89");
    assert_eq!(
        (
            done["stdout_truncated"].clone(),
            done["stdout_bytes"].clone()
        ),
        (json!(true), json!(10))
    );
    // A command the engine cannot find exits 127 with its message.
    let done = h
        .ok("exec.run", json!({"session_id": id, "argv": ["nosuch"]}))
        .await;
    assert_eq!(
        (done["exit_code"].clone(), done["stderr"].clone()),
        (json!(127), json!("nosuch: not found\n"))
    );
}

#[tokio::test]
async fn exec_parameters_are_checked() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    let cases = [
        (json!({}), "`session_id` is missing"),
        (
            json!({"session_id": id}),
            "`command` (or `argv`) is missing",
        ),
        (
            json!({"session_id": id, "command": "x", "argv": ["x"]}),
            "give `command` or `argv`, not both",
        ),
        (
            json!({"session_id": id, "command": "  "}),
            "`command` is empty",
        ),
        (
            json!({"session_id": id, "command": "x", "timeout_ms": 0}),
            "`timeout_ms` must be more than 0",
        ),
        (
            json!({"session_id": id, "command": "x", "timeout_ms": 61_000}),
            "`timeout_ms` must be at most 60000",
        ),
        (
            json!({"session_id": id, "command": "x", "env": {"1X": "y"}}),
            "`env`: `1X` is not a variable name (letters, digits and _, not first a digit)",
        ),
        (
            json!({"session_id": id, "command": "x", "stdin": "a", "stdin_b64": "YQ=="}),
            "give `stdin` or `stdin_b64`, not both",
        ),
        (
            json!({"session_id": id, "command": "x", "yield_ms": 5}),
            "`yield_ms` is for exec.start only",
        ),
        (
            json!({"session_id": id, "command": "a\u{0}b"}),
            "`command` must not contain a NUL byte",
        ),
    ];
    for (params, message) in cases {
        assert_eq!(
            h.error("exec.run", params).await,
            ("bad_request".into(), message.into())
        );
    }
    assert_eq!(
        h.error("exec.run", json!({"session_id": "s-nope", "command": "x"}))
            .await
            .0,
        "no_such_session"
    );
    assert_eq!(
        h.error("exec.read", json!({"exec_id": "e-nope"})).await.0,
        "no_such_exec"
    );
}

#[tokio::test]
async fn a_caller_s_exec_id_answers_once_and_belongs_to_its_session() {
    let h = harness(limits());
    let one = h.session(json!({})).await;
    let two = h.session(json!({})).await;
    let first = h
        .ok(
            "exec.run",
            json!({"session_id": one, "argv": ["echo", "a"], "exec_id": "mine"}),
        )
        .await;
    let count = h.started.lock().unwrap().len();
    let again = h
        .ok(
            "exec.run",
            json!({"session_id": one, "argv": ["echo", "a"], "exec_id": "mine"}),
        )
        .await;
    assert_eq!(first, again);
    assert_eq!(h.started.lock().unwrap().len(), count, "ran once");
    assert_eq!(
        h.error(
            "exec.run",
            json!({"session_id": two, "argv": ["echo"], "exec_id": "mine"})
        )
        .await,
        (
            "bad_request".into(),
            "exec_id mine belongs to another session".into()
        )
    );
    // The same id for another command is refused, naming it, and runs nothing.
    assert_eq!(
        h.error(
            "exec.run",
            json!({"session_id": one, "argv": ["echo", "b"], "exec_id": "mine"})
        )
        .await,
        (
            "bad_request".into(),
            "exec_id mine was given to another command: an exec_id names one command (use a new id for a new command)".into()
        )
    );
    assert_eq!(h.started.lock().unwrap().len(), count, "ran once");
}

#[tokio::test]
async fn limits_are_permits_released_when_the_command_ends() {
    let h = harness(Limits {
        max_execs: 1,
        ..limits()
    });
    let id = h.session(json!({})).await;
    let sleeping = h
        .ok("exec.start", json!({"session_id": id, "argv": ["sleep"]}))
        .await;
    assert_eq!(
        sleeping,
        json!({"exec_id": sleeping["exec_id"], "state": "running"})
    );
    assert_eq!(
        h.error("exec.run", json!({"session_id": id, "argv": ["echo"]}))
            .await
            .0,
        "exec_limit"
    );
    let cancelled = h
        .ok(
            "exec.cancel",
            json!({"exec_id": sleeping["exec_id"], "signal": "KILL"}),
        )
        .await;
    assert_eq!(cancelled["state"], "cancelled");
    h.ok("exec.run", json!({"session_id": id, "argv": ["echo"]}))
        .await;
    // One foreground command per session unless it is concurrent.
    let h = harness(limits());
    let id = h.session(json!({})).await;
    let service = h.service.clone();
    let busy_id = id.clone();
    let running = tokio::spawn(async move {
        let (events, _) = mpsc::channel(8);
        let params = json!({"session_id": busy_id, "argv": ["sleep"], "exec_id": "fg"});
        let request = Request {
            id: json!(2),
            method: "exec.run".into(),
            params: params.as_object().cloned().unwrap(),
        };
        crate::agent::methods::handle(&service, request, &events).await
    });
    while h.service.find_exec("fg").is_none() {
        tokio::task::yield_now().await;
    }
    let (code, _) = h
        .error("exec.run", json!({"session_id": id, "argv": ["echo"]}))
        .await;
    assert_eq!(code, "session_busy");
    assert_eq!(
        h.error("exec.cancel", json!({"exec_id": "fg", "signal": "USR1"}))
            .await
            .0,
        "bad_request"
    );
    h.ok("exec.cancel", json!({"exec_id": "fg"})).await;
    assert_eq!(running.await.unwrap()["data"]["state"], "cancelled");
    h.ok("exec.run", json!({"session_id": id, "argv": ["echo"]}))
        .await;
    let concurrent = h.session(json!({"concurrent": true})).await;
    h.ok(
        "exec.start",
        json!({"session_id": concurrent, "argv": ["sleep"], "exec_id": "bg"}),
    )
    .await;
    h.ok(
        "exec.run",
        json!({"session_id": concurrent, "argv": ["echo"]}),
    )
    .await;
    h.ok("exec.cancel", json!({"exec_id": "bg"})).await;
}

#[tokio::test]
async fn a_timeout_ends_the_command() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    let done = h
        .ok(
            "exec.run",
            json!({"session_id": id, "argv": ["sleep"], "timeout_ms": 50}),
        )
        .await;
    assert_eq!(
        (done["state"].clone(), done["exit_code"].clone()),
        (json!("timed_out"), Value::Null)
    );
}

#[tokio::test]
async fn stdin_is_written_read_back_and_closed() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    let started = h
        .ok(
            "exec.start",
            json!({"session_id": id, "argv": ["cat"], "stdin_open": true, "stdin": "a"}),
        )
        .await;
    let exec = started["exec_id"].clone();
    h.ok(
        "exec.write_stdin",
        json!({"exec_id": exec, "data_b64": "Yg=="}),
    )
    .await;
    let read = h
        .ok("exec.read", json!({"exec_id": exec, "wait_ms": 5000}))
        .await;
    assert!(read["stdout"] == "ab" || read["stdout"] == "a", "{read}");
    let written = h
        .ok(
            "exec.write_stdin",
            json!({"exec_id": exec, "data": "c", "eof": true}),
        )
        .await;
    assert_eq!(written, json!({"exec_id": exec, "eof": true}));
    // Waiting past the end of what was written returns at the end.
    let ended = h
        .ok(
            "exec.read",
            json!({"exec_id": exec, "offset": 3, "wait_ms": 10_000}),
        )
        .await;
    assert_eq!(ended["done"], true, "{ended}");
    let read = h
        .ok("exec.read", json!({"exec_id": exec, "offset": 1}))
        .await;
    assert_eq!(
        (
            read["stdout"].clone(),
            read["stdout_offset"].clone(),
            read["exit_code"].clone()
        ),
        (json!("bc"), json!(3), json!(0))
    );
    let (code, message) = h
        .error("exec.write_stdin", json!({"exec_id": exec, "data": "x"}))
        .await;
    assert_eq!(code, "bad_request", "{message}");
    let read = h
        .error("exec.read", json!({"exec_id": exec, "wait_ms": 30_001}))
        .await;
    assert_eq!(read.1, "`wait_ms` must be at most 30000");
}

#[tokio::test]
async fn a_stream_sends_start_output_and_end() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    let (events, mut lines) = mpsc::channel(64);
    let params = json!({"session_id": id, "argv": ["burst"]});
    let request = Request {
        id: json!("s"),
        method: "exec.stream".into(),
        params: params.as_object().cloned().unwrap(),
    };
    let end = crate::agent::methods::handle(&h.service, request, &events).await;
    drop(events);
    let mut seen = Vec::new();
    while let Some(line) = lines.recv().await {
        seen.push(line);
    }
    assert_eq!(seen[0]["event"], "start");
    let text: String = seen[1..]
        .iter()
        .map(|event| event["data"].as_str().unwrap())
        .collect();
    assert_eq!(text, "0123456789");
    assert_eq!(seen.last().unwrap()["offset"], 9);
    assert_eq!(end["event"], "end");
    assert_eq!(
        (
            end["id"].clone(),
            end["exit_code"].clone(),
            end["stdout_bytes"].clone()
        ),
        (json!("s"), json!(0), json!(10))
    );
}

#[tokio::test]
async fn an_exec_run_whose_caller_goes_away_is_cancelled() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    // The transport drops the call when its client goes: here, after 200 ms.
    let call = h.line(
        "exec.run",
        json!({"session_id": id, "argv": ["sleep"], "exec_id": "gone-1"}),
    );
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(200), call)
            .await
            .is_err()
    );
    let ended = h
        .ok("exec.read", json!({"exec_id": "gone-1", "wait_ms": 10_000}))
        .await;
    assert_eq!(ended["state"], "cancelled", "{ended}");
    // The session takes a foreground command again.
    let done = h
        .ok(
            "exec.run",
            json!({"session_id": id, "argv": ["echo", "again"]}),
        )
        .await;
    assert_eq!(done["stdout"], "again");
}

#[tokio::test]
async fn kept_results_stay_within_the_server_s_byte_budget_oldest_dropped_first() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    h.service.set_kept_budget(3_500);
    let text = "x".repeat(1000);
    for n in 0..10 {
        h.ok(
            "exec.run",
            json!({"session_id": id, "argv": ["echo", text], "exec_id": format!("k{n}")}),
        )
        .await;
    }
    h.service.sweep().await;
    let (code, _) = h.error("exec.read", json!({"exec_id": "k0"})).await;
    assert_eq!(code, "no_such_exec");
    let newest = h.ok("exec.read", json!({"exec_id": "k9"})).await;
    assert_eq!(newest["stdout"], text.as_str());
    let kept: Vec<usize> = (0..10)
        .filter(|n| h.service.find_exec(&format!("k{n}")).is_some())
        .collect();
    assert!(!kept.is_empty() && kept.len() <= 3, "{kept:?}");
    assert_eq!(kept.last(), Some(&9), "the newest are kept: {kept:?}");
}

#[tokio::test]
async fn a_cancel_answers_within_a_second_saying_the_command_has_not_ended() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    // It ignores SIGTERM: SIGKILL comes 2 s after it, past the cancel's second.
    h.ok(
        "exec.start",
        json!({"session_id": id, "argv": ["stubborn"], "exec_id": "st"}),
    )
    .await;
    let started = std::time::Instant::now();
    let answer = h.ok("exec.cancel", json!({"exec_id": "st"})).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(answer["state"], "running", "{answer}");
    assert!(
        answer["note"].as_str().unwrap().contains("has not ended"),
        "{answer}"
    );
    let ended = h
        .ok("exec.read", json!({"exec_id": "st", "wait_ms": 10_000}))
        .await;
    assert_eq!(ended["state"], "cancelled", "{ended}");
}

#[tokio::test]
async fn an_env_map_past_the_limit_is_refused_naming_it() {
    let h = harness(limits());
    let session = h.session(json!({})).await;
    let env: serde_json::Map<String, serde_json::Value> = (0..=crate::agent::launch::MAX_ENV)
        .map(|n| (format!("V{n}"), json!("x")))
        .collect();
    assert_eq!(
        h.error(
            "exec.run",
            json!({"session_id": session, "argv": ["echo"], "env": env})
        )
        .await,
        (
            "bad_request".into(),
            "`env` has 1025 variables; a request takes at most 1024 (the shell sets each one by one)".into()
        )
    );
}
