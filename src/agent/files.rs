//! The agent's file methods (`fs.read`, `fs.write`, `fs.list`, `fs.stat`): the engine's file
//! calls on a session's container, paths relative to the session's current directory, written
//! files owned by the session's user. Links are followed inside the container only (the engine
//! resolves every path in the container's own root), so `..` and symlinks never reach the host.

use base64::Engine as _;
use serde_json::{Value, json};

use super::protocol::{Code, Failure, Params};
use super::service::Session;
use crate::engine::{EngineError, FileError, FileTarget, PathStat, container_path};
use crate::runtime::RuntimeError;

/// The most bytes one `fs.read` returns, and one `fs.write` takes (and an append may grow to).
pub const MAX_FILE: u64 = 16 * 1024 * 1024;
/// The most entries one `fs.list` returns.
pub const MAX_ENTRIES: usize = 10_000;

/// A file call's failure with its code.
fn failure(err: EngineError) -> Failure {
    let code = match &err {
        EngineError::Runtime(RuntimeError::NoSuchPath { .. })
        | EngineError::Files(FileError::NoSuchDirectory(_)) => Code::NoSuchFile,
        EngineError::Files(FileError::IsADirectory(_)) => Code::IsADirectory,
        EngineError::Files(FileError::NotADirectory(_)) => Code::NotADirectory,
        EngineError::Files(FileError::TooLarge { .. } | FileError::TooManyEntries { .. }) => {
            Code::TooLarge
        }
        EngineError::Files(FileError::NotAFile(_)) => Code::BadRequest,
        _ => Code::EngineError,
    };
    Failure::new(code, err.to_string())
}

fn stat_json(path: &str, stat: &PathStat) -> Value {
    let mut value = json!({
        "path": path,
        "name": stat.name,
        "kind": stat.kind,
        "size": stat.size,
        "mode": format!("{:04o}", stat.mode),
        "mtime": stat.mtime,
    });
    if let Some(target) = &stat.link_target {
        value["link_target"] = Value::from(target.as_str());
    }
    value
}

/// `mode` as given: an octal string (`"0644"`, `"755"`) or a number.
fn mode(params: &Params) -> Result<Option<u32>, Failure> {
    let wrong = || Failure::bad("`mode` must be an octal string such as \"0644\", or a number");
    match params.value("mode") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => u32::from_str_radix(text, 8)
            .ok()
            .filter(|mode| *mode <= 0o7777)
            .map(Some)
            .ok_or_else(wrong),
        Some(Value::Number(number)) => number
            .as_u64()
            .filter(|mode| *mode <= 0o7777)
            .map(|mode| Some(mode as u32))
            .ok_or_else(wrong),
        Some(_) => Err(wrong()),
    }
}

/// Runs one `fs.*` method on `session`, whose current directory is `cwd`.
pub async fn call(
    method: &str,
    session: &Session,
    cwd: &str,
    params: &Params,
) -> Result<Value, Failure> {
    let path = container_path(cwd, &params.required_string("path")?);
    let engine = session.engine();
    let container = &session.prepared().container;
    match method {
        "fs.stat" => {
            let stat = engine.stat_path(container, &path).await.map_err(failure)?;
            Ok(stat_json(&path, &stat))
        }
        "fs.list" => {
            let (listed, entries) = engine
                .list_dir(container, &path, MAX_ENTRIES)
                .await
                .map_err(failure)?;
            let entries: Vec<Value> = entries
                .iter()
                .map(|entry| {
                    let mut value = stat_json("", entry);
                    if let Some(map) = value.as_object_mut() {
                        map.remove("path");
                    }
                    value
                })
                .collect();
            Ok(json!({"path": listed, "entries": entries}))
        }
        "fs.read" => {
            let offset = params.uint("offset", u64::MAX)?.unwrap_or(0);
            let length = params.uint("length", u64::MAX)?;
            let content = engine
                .read_file(container, &path, offset, length, MAX_FILE)
                .await
                .map_err(failure)?;
            let mut value = stat_json(&path, &content.stat);
            let read = content.bytes.len() as u64;
            value["offset"] = Value::from(offset);
            value["length"] = Value::from(read);
            value["eof"] = Value::from(offset.saturating_add(read) >= content.stat.size);
            match String::from_utf8(content.bytes) {
                Ok(text) => value["data"] = Value::from(text),
                Err(err) => {
                    value["data_b64"] = Value::from(
                        base64::engine::general_purpose::STANDARD.encode(err.as_bytes()),
                    )
                }
            }
            Ok(value)
        }
        "fs.write" => {
            let data = params
                .bytes("data")?
                .ok_or_else(|| Failure::bad("give `data` (UTF-8) or `data_b64`"))?;
            if data.len() as u64 > MAX_FILE {
                return Err(Failure::new(
                    Code::TooLarge,
                    format!("one fs.write takes at most {MAX_FILE} bytes"),
                ));
            }
            let mode = mode(params)?;
            let append = params.bool("append")?.unwrap_or(false);
            let target = FileTarget {
                container: container.clone(),
                user: session.prepared().user.clone(),
                cwd: cwd.to_owned(),
            };
            let stat = engine
                .write_file(&target, &path, &data, mode, append, MAX_FILE)
                .await
                .map_err(failure)?;
            Ok(stat_json(&path, &stat))
        }
        other => Err(Failure::new(
            Code::UnknownMethod,
            format!("unknown method `{other}`"),
        )),
    }
}
