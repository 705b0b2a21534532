//! PTY mode on the in-memory engine: `tty` on `exec.start`, the screen in `exec.read`, named
//! keys, `exec.resize`, and the parameters each refuses.

use serde_json::json;

use super::{harness, limits};

#[tokio::test]
async fn a_terminal_exec_has_a_screen_keys_and_a_size() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    let started = h
        .ok(
            "exec.start",
            json!({"session_id": id, "argv": ["tty"], "tty": true, "rows": 30, "cols": 100}),
        )
        .await;
    let exec = started["exec_id"].clone();
    let read = h
        .ok("exec.read", json!({"exec_id": exec, "wait_ms": 5000}))
        .await;
    assert_eq!(read["stdout"], "tty 30x100\r\n", "{read}");
    assert_eq!(read["stderr"], "");
    let rows = [vec!["tty 30x100"], vec![""; 29]].concat();
    assert_eq!(
        read["screen"],
        json!({"rows": rows, "cursor": {"row": 1, "col": 0}, "rows_n": 30, "cols_n": 100})
    );
    // A resize reaches the program and the screen.
    let resized = h
        .ok(
            "exec.resize",
            json!({"exec_id": exec, "rows": 40, "cols": 120}),
        )
        .await;
    assert_eq!(resized, json!({"exec_id": exec, "rows": 40, "cols": 120}));
    let read = h
        .ok(
            "exec.read",
            json!({"exec_id": exec, "offset": 12, "wait_ms": 5000}),
        )
        .await;
    assert_eq!(read["stdout"], "tty 40x120\r\n", "{read}");
    let screen = &read["screen"];
    assert_eq!(
        (screen["rows_n"].clone(), screen["cols_n"].clone()),
        (json!(40), json!(120))
    );
    assert_eq!(screen["rows"][1], "tty 40x120");
    // Text, then named keys: ^D ends the program.
    let (code, message) = h
        .error(
            "exec.write_stdin",
            json!({"exec_id": exec, "keys": ["Enter", "Sup"]}),
        )
        .await;
    assert_eq!(code, "bad_request");
    assert!(
        message.starts_with("`keys`: unknown key `Sup` ("),
        "{message}"
    );
    h.ok(
        "exec.write_stdin",
        json!({"exec_id": exec, "data": "ab", "keys": ["Enter", "C-d"]}),
    )
    .await;
    let ended = h
        .ok(
            "exec.read",
            json!({"exec_id": exec, "offset": 24, "wait_ms": 10_000}),
        )
        .await;
    assert_eq!(
        (ended["done"].clone(), ended["exit_code"].clone()),
        (json!(true), json!(0)),
        "{ended}"
    );
    assert!(ended["screen"].is_object());
    let (code, message) = h
        .error(
            "exec.resize",
            json!({"exec_id": exec, "rows": 10, "cols": 10}),
        )
        .await;
    assert_eq!(
        (code.as_str(), message),
        (
            "bad_request",
            format!("exec {} has ended", exec.as_str().unwrap())
        )
    );
}

#[tokio::test]
async fn a_terminal_defaults_to_24_by_80_and_plain_execs_have_no_screen() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    let exec = h
        .ok(
            "exec.start",
            json!({"session_id": id, "argv": ["tty"], "tty": true}),
        )
        .await["exec_id"]
        .clone();
    let read = h
        .ok("exec.read", json!({"exec_id": exec, "wait_ms": 5000}))
        .await;
    assert_eq!(read["screen"]["rows"][0], "tty 24x80", "{read}");
    h.ok(
        "exec.write_stdin",
        json!({"exec_id": exec, "keys": ["C-d"]}),
    )
    .await;
    let plain = h
        .ok("exec.start", json!({"session_id": id, "argv": ["sleep"]}))
        .await["exec_id"]
        .clone();
    let read = h.ok("exec.read", json!({"exec_id": plain})).await;
    assert!(read.get("screen").is_none(), "{read}");
    let (code, message) = h
        .error(
            "exec.resize",
            json!({"exec_id": plain, "rows": 10, "cols": 10}),
        )
        .await;
    assert_eq!(code, "bad_request");
    assert!(
        message.ends_with("has no terminal (start it with `tty: true`)"),
        "{message}"
    );
    h.ok("exec.cancel", json!({"exec_id": plain, "signal": "KILL"}))
        .await;
}

#[tokio::test]
async fn terminal_parameters_are_checked() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    let cases = [
        (
            "exec.run",
            json!({"session_id": id, "argv": ["tty"], "tty": true}),
        ),
        (
            "exec.stream",
            json!({"session_id": id, "argv": ["tty"], "tty": true}),
        ),
        (
            "exec.start",
            json!({"session_id": id, "argv": ["tty"], "rows": 10}),
        ),
        (
            "exec.start",
            json!({"session_id": id, "argv": ["tty"], "tty": true, "cols": 0}),
        ),
        (
            "exec.start",
            json!({"session_id": id, "argv": ["tty"], "tty": "yes"}),
        ),
        (
            "exec.start",
            json!({"session_id": id, "argv": ["tty"], "tty": true, "term": "x"}),
        ),
        ("exec.resize", json!({"exec_id": "e1", "rows": 10})),
        (
            "exec.resize",
            json!({"exec_id": "e1", "rows": 10, "cols": 10, "x": 1}),
        ),
        (
            "exec.write_stdin",
            json!({"exec_id": "e1", "keys": "Enter"}),
        ),
    ];
    let mut messages = Vec::new();
    for (method, params) in cases {
        let (code, message) = h.error(method, params).await;
        assert_eq!(code, "bad_request", "{method}: {message}");
        messages.push(message);
    }
    insta::assert_snapshot!(messages.join("\n"), @r"
    `tty` is for exec.start only: a terminal needs exec.read, exec.write_stdin and exec.resize (start it with exec.start, `tty: true`)
    `tty` is for exec.start only: a terminal needs exec.read, exec.write_stdin and exec.resize (start it with exec.start, `tty: true`)
    `rows` and `cols` need `tty: true`
    `cols` must be from 1 to 1000
    `tty` must be true or false
    unknown parameter `term` (this method takes `session_id`, `command`, `argv`, `stdin`, `stdin_b64`, `stdin_open`, `env`, `cwd`, `timeout_ms`, `max_output_bytes`, `exec_id`, `yield_ms`, `tty`, `rows`, `cols`)
    `cols` is missing
    unknown parameter `x` (this method takes `exec_id`, `rows`, `cols`)
    `keys` must be an array
    ");
}
