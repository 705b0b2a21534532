//! `dcx mcp` answering a line that is not JSON with JSON-RPC's parse error (issue 25), through a
//! raw pipe.

use std::io::{BufRead, BufReader, Write};

use serde_json::{Value, json};

use crate::harness::dcx_path;

#[test]
fn mcp_answers_a_line_that_is_not_json_with_a_parse_error() {
    let mut child = std::process::Command::new(dcx_path())
        .arg("mcp")
        .env("XDG_CACHE_HOME", crate::harness::test_cache_home())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}});
    stdin
        .write_all(format!("this is not json\n{initialize}\n{{\"jsonrpc\": \n").as_bytes())
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || -> Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };
    let first = next();
    assert_eq!(first["jsonrpc"], "2.0", "{first}");
    assert_eq!(first["id"], Value::Null, "{first}");
    assert_eq!(first["error"]["code"], -32700, "{first}");
    let (second, third) = (next(), next());
    let (answer, error) = match second["id"] == json!(1) {
        true => (second, third),
        false => (third, second),
    };
    assert_eq!(answer["result"]["serverInfo"]["name"], "dcx", "{answer}");
    assert_eq!(error["error"]["code"], -32700, "{error}");
    drop(stdin);
    assert!(child.wait().unwrap().success());
}
