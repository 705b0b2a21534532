//! `fs.*` on the in-memory engine's root filesystem: each method and its error codes.

use serde_json::json;

use super::{harness, limits};

#[tokio::test]
async fn files_are_written_read_listed_and_their_errors_coded() {
    let h = harness(limits());
    let id = h.session(json!({})).await;
    std::fs::create_dir_all(h.root.path().join("home/vscode")).unwrap();
    std::fs::create_dir_all(h.root.path().join("etc")).unwrap();
    std::fs::write(
        h.root.path().join("etc/passwd"),
        "vscode:x:1000:1000::/home/vscode:/bin/sh\n",
    )
    .unwrap();
    let written = h
        .ok(
            "fs.write",
            json!({"session_id": id, "path": "notes/a.txt", "data": "hello", "mode": "0640"}),
        )
        .await;
    assert_eq!(
        (
            written["path"].clone(),
            written["kind"].clone(),
            written["size"].clone(),
            written["mode"].clone()
        ),
        (
            json!("/home/vscode/notes/a.txt"),
            json!("file"),
            json!(5),
            json!("0640")
        )
    );
    let read = h
        .ok(
            "fs.read",
            json!({"session_id": id, "path": "notes/a.txt", "offset": 1, "length": 3}),
        )
        .await;
    assert_eq!(
        (
            read["data"].clone(),
            read["length"].clone(),
            read["eof"].clone()
        ),
        (json!("ell"), json!(3), json!(false))
    );
    let stat = h
        .ok(
            "fs.stat",
            json!({"session_id": id, "path": "/home/vscode/notes"}),
        )
        .await;
    assert_eq!(stat["kind"], "directory");
    let listed = h
        .ok("fs.list", json!({"session_id": id, "path": "notes"}))
        .await;
    assert_eq!(listed["entries"][0]["name"], "a.txt");
    assert!(listed["entries"][0].get("path").is_none());
    std::fs::write(h.root.path().join("big"), vec![b'x'; 16 * 1024 * 1024 + 1]).unwrap();
    let cases = [
        (
            "fs.read",
            json!({"session_id": id, "path": "nothing"}),
            "no_such_file",
        ),
        (
            "fs.read",
            json!({"session_id": id, "path": "notes"}),
            "is_a_directory",
        ),
        (
            "fs.list",
            json!({"session_id": id, "path": "notes/a.txt"}),
            "not_a_directory",
        ),
        (
            "fs.read",
            json!({"session_id": id, "path": "/big"}),
            "too_large",
        ),
        (
            "fs.write",
            json!({"session_id": id, "path": "x", "data": "a", "mode": "0999"}),
            "bad_request",
        ),
        (
            "fs.write",
            json!({"session_id": id, "path": "x"}),
            "bad_request",
        ),
        (
            "fs.stat",
            json!({"session_id": "s-nope", "path": "x"}),
            "no_such_session",
        ),
    ];
    for (method, params, code) in cases {
        let (got, message) = h.error(method, params.clone()).await;
        assert_eq!(got, code, "{method} {params}: {message}");
    }
}
