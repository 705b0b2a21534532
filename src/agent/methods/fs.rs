//! `fs.stat`, `fs.list`, `fs.read` and `fs.write`: files of a session's container.
//!
//! The engine's file calls, with paths relative to the session's current directory and written
//! files owned by the session's user. Links are followed inside the container only (the engine
//! resolves every path in the container's own root), so `..` and symlinks never reach the host.

use serde::{Deserialize, Deserializer, Serialize};

use crate::agent::envelope::Data;
use crate::agent::methods::session;
use crate::agent::params::{Text, text_or_base64};
use crate::agent::protocol::{Code, Failure};
use crate::agent::service::Service;
use crate::agent::session::Session;
use crate::engine::{FileKind, FileTarget, PathStat, container_path};

/// The most bytes one `fs.read` returns, and one `fs.write` takes (and an append may grow to).
pub const MAX_FILE: u64 = 16 * 1024 * 1024;
/// The most entries one `fs.list` returns.
pub const MAX_ENTRIES: usize = 10_000;

/// The parameters of `fs.stat` and `fs.list`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathParams {
    pub session_id: Text,
    pub path: Option<Text>,
    /// The path's bytes in base64, for a name that is not UTF-8.
    pub path_b64: Option<String>,
}

/// `fs.read`'s parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadParams {
    pub session_id: Text,
    pub path: Option<Text>,
    pub path_b64: Option<String>,
    pub offset: Option<u64>,
    pub length: Option<u64>,
}

/// `fs.write`'s parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteParams {
    pub session_id: Text,
    pub path: Option<Text>,
    pub path_b64: Option<String>,
    pub data: Option<String>,
    pub data_b64: Option<String>,
    pub mode: Option<Mode>,
    pub append: Option<bool>,
}

/// A file mode: an octal string (`"0644"`, `"755"`) or a number, at most `0o7777`.
#[derive(Debug, Clone, Copy)]
pub struct Mode(pub u32);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wrong =
            || serde::de::Error::custom("must be an octal string such as \"0644\", or a number");
        let mode = match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(text) => u32::from_str_radix(&text, 8).ok(),
            serde_json::Value::Number(number) => {
                number.as_u64().and_then(|n| u32::try_from(n).ok())
            }
            _ => None,
        };
        mode.filter(|mode| *mode <= 0o7777)
            .map(Mode)
            .ok_or_else(wrong)
    }
}

/// What a path is (`fs.stat`, `fs.write`; `fs.list`'s entries without `path`).
#[derive(Debug, Clone, Serialize)]
pub struct Stat {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub name: String,
    pub kind: FileKind,
    pub size: u64,
    /// Octal, setuid/setgid/sticky included (`"0755"`).
    pub mode: String,
    pub mtime: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
    /// The name's bytes in base64 when they are not UTF-8 (`name` then has U+FFFD for them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_b64: Option<String>,
    /// The path's bytes in base64 when it was given as `path_b64` (not UTF-8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_b64: Option<String>,
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Stat {
    fn new(path: Option<&str>, stat: &PathStat) -> Self {
        Self {
            path: path.map(str::to_owned),
            name_b64: stat.name_bytes.as_deref().map(base64),
            path_b64: None,
            name: stat.name.clone(),
            kind: stat.kind,
            size: stat.size,
            mode: format!("{:04o}", stat.mode),
            mtime: stat.mtime,
            link_target: stat.link_target.clone(),
        }
    }
}

/// `fs.list`'s answer.
#[derive(Debug, Serialize)]
pub struct Listing {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_b64: Option<String>,
    pub entries: Vec<Stat>,
}

/// `fs.read`'s answer: the stat, the range and the bytes.
#[derive(Debug)]
pub struct FileRead {
    pub stat: Stat,
    pub offset: u64,
    /// Bytes returned.
    pub length: u64,
    pub eof: bool,
    pub data: Data,
}

impl Serialize for FileRead {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let stat = serde_json::to_value(&self.stat).map_err(serde::ser::Error::custom)?;
        let mut map = serializer.serialize_map(None)?;
        if let serde_json::Value::Object(fields) = stat {
            for (key, value) in fields {
                map.serialize_entry(&key, &value)?;
            }
        }
        map.serialize_entry("offset", &self.offset)?;
        map.serialize_entry("length", &self.length)?;
        map.serialize_entry("eof", &self.eof)?;
        self.data.put("data", &mut map)?;
        map.end()
    }
}

/// A path as asked for: text (`path`), or bytes that are not UTF-8 (`path_b64`).
enum Asked {
    Text(String),
    Bytes(Vec<u8>),
}

fn asked(path: Option<&Text>, path_b64: Option<&String>) -> Result<Asked, Failure> {
    let bytes = text_or_base64("path", path.map(|p| p.0.clone()), path_b64.cloned())?
        .ok_or_else(|| Failure::bad("give `path` (UTF-8) or `path_b64`"))?;
    if bytes.contains(&0) {
        return Err(Failure::bad("`path_b64` must not hold a NUL byte"));
    }
    Ok(match String::from_utf8(bytes) {
        Ok(text) => Asked::Text(text),
        Err(err) => Asked::Bytes(err.into_bytes()),
    })
}

/// The session and the path in the container (relative paths from its current directory).
async fn locate(
    service: &Service,
    session_id: &Text,
    path: &str,
) -> Result<(std::sync::Arc<Session>, String, String), Failure> {
    let session = service.session(&session_id.0)?;
    let cwd = session.current_cwd().await;
    let path = container_path(&cwd, path);
    Ok((session, cwd, path))
}

/// [`locate`] for a path of bytes: made absolute and clean as [`container_path`] does.
async fn locate_bytes(
    service: &Service,
    session_id: &Text,
    path: &[u8],
) -> Result<(std::sync::Arc<Session>, Vec<u8>), Failure> {
    let session = service.session(&session_id.0)?;
    let cwd = session.current_cwd().await;
    let mut joined = Vec::new();
    if !path.starts_with(b"/") {
        joined.extend_from_slice(cwd.trim_end_matches('/').as_bytes());
        joined.push(b'/');
    }
    joined.extend_from_slice(path);
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in joined.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    let mut clean = Vec::new();
    for part in parts {
        clean.push(b'/');
        clean.extend_from_slice(part);
    }
    if clean.is_empty() {
        clean.push(b'/');
    }
    Ok((session, clean))
}

/// A stat answered for a path of bytes: the path shown with U+FFFD, and its bytes.
fn bytes_stat(path: &[u8], stat: &PathStat) -> Stat {
    Stat {
        path_b64: Some(base64(path)),
        ..Stat::new(Some(&String::from_utf8_lossy(path)), stat)
    }
}

/// Runs a file call; when it fails in a way a gone container would explain, the session
/// follows its dev container ([`session::follow`]): the same one gives the call's own failure,
/// a rebuilt one the call once more there (the session then holds the note saying so), none
/// `no_such_container`.
async fn following<T, F, Fut>(service: &Service, session_id: &Text, call: F) -> Result<T, Failure>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    let failure = match call().await {
        Ok(answer) => return Ok(answer),
        Err(failure) => failure,
    };
    if !matches!(
        failure.code,
        Code::NoSuchFile | Code::NoSuchContainer | Code::NotRunning | Code::EngineError
    ) {
        return Err(failure);
    }
    let current = service.session(&session_id.0)?;
    match session::follow(service, &current).await? {
        session::Followed::Same => Err(failure),
        session::Followed::Moved { .. } => call().await,
    }
}

pub async fn stat(service: &Service, params: PathParams) -> Result<Stat, Failure> {
    let asked = asked(params.path.as_ref(), params.path_b64.as_ref())?;
    following(service, &params.session_id, || async {
        let path = match &asked {
            Asked::Text(path) => path,
            Asked::Bytes(path) => {
                let (session, path) = locate_bytes(service, &params.session_id, path).await?;
                let stat = session
                    .engine
                    .stat_bytes(&session.prepared.container, &path)
                    .await?;
                return Ok(bytes_stat(&path, &stat));
            }
        };
        let (session, _, path) = locate(service, &params.session_id, path).await?;
        let stat = session
            .engine
            .stat_path(&session.prepared.container, &path)
            .await?;
        Ok(Stat::new(Some(&path), &stat))
    })
    .await
}

pub async fn list(service: &Service, params: PathParams) -> Result<Listing, Failure> {
    let asked = asked(params.path.as_ref(), params.path_b64.as_ref())?;
    following(service, &params.session_id, || async {
        let path = match &asked {
            Asked::Text(path) => path,
            Asked::Bytes(path) => {
                let (session, path) = locate_bytes(service, &params.session_id, path).await?;
                let entries = session
                    .engine
                    .list_bytes(&session.prepared.container, &path, MAX_ENTRIES)
                    .await?;
                return Ok(Listing {
                    path: String::from_utf8_lossy(&path).into_owned(),
                    path_b64: Some(base64(&path)),
                    entries: entries.iter().map(|entry| Stat::new(None, entry)).collect(),
                });
            }
        };
        let (session, _, path) = locate(service, &params.session_id, path).await?;
        let (listed, entries) = session
            .engine
            .list_dir(&session.prepared.container, &path, MAX_ENTRIES)
            .await?;
        Ok(Listing {
            path: listed,
            path_b64: None,
            entries: entries.iter().map(|entry| Stat::new(None, entry)).collect(),
        })
    })
    .await
}

pub async fn read(service: &Service, params: ReadParams) -> Result<FileRead, Failure> {
    let asked = asked(params.path.as_ref(), params.path_b64.as_ref())?;
    following(service, &params.session_id, || async {
        let offset = params.offset.unwrap_or(0);
        let path = match &asked {
            Asked::Text(path) => path,
            Asked::Bytes(path) => {
                let (session, path) = locate_bytes(service, &params.session_id, path).await?;
                let content = session
                    .engine
                    .read_bytes(
                        &session.prepared.container,
                        &path,
                        offset,
                        params.length,
                        MAX_FILE,
                    )
                    .await?;
                let length = content.bytes.len() as u64;
                return Ok(FileRead {
                    stat: bytes_stat(&path, &content.stat),
                    offset,
                    length,
                    eof: offset.saturating_add(length) >= content.stat.size,
                    data: Data::new(&content.bytes),
                });
            }
        };
        let (session, _, path) = locate(service, &params.session_id, path).await?;
        let content = session
            .engine
            .read_file(
                &session.prepared.container,
                &path,
                offset,
                params.length,
                MAX_FILE,
            )
            .await?;
        let length = content.bytes.len() as u64;
        Ok(FileRead {
            stat: Stat::new(Some(&path), &content.stat),
            offset,
            length,
            eof: offset.saturating_add(length) >= content.stat.size,
            data: Data::new(&content.bytes),
        })
    })
    .await
}

pub async fn write(service: &Service, params: WriteParams) -> Result<Stat, Failure> {
    let data = text_or_base64("data", params.data, params.data_b64)?
        .ok_or_else(|| Failure::bad("give `data` (UTF-8) or `data_b64`"))?;
    if data.len() as u64 > MAX_FILE {
        return Err(Failure::new(
            Code::TooLarge,
            format!("one fs.write takes at most {MAX_FILE} bytes"),
        ));
    }
    let asked = asked(params.path.as_ref(), params.path_b64.as_ref())?;
    following(service, &params.session_id, || async {
        let path = match &asked {
            Asked::Text(path) => path,
            Asked::Bytes(path) => {
                let (session, path) = locate_bytes(service, &params.session_id, path).await?;
                let target = FileTarget {
                    container: session.prepared.container.clone(),
                    user: session.prepared.user.clone(),
                    cwd: "/".to_owned(),
                };
                let stat = session
                    .engine
                    .write_bytes(
                        &target,
                        &path,
                        &data,
                        params.mode.map(|mode| mode.0),
                        params.append.unwrap_or(false),
                        MAX_FILE,
                    )
                    .await?;
                return Ok(bytes_stat(&path, &stat));
            }
        };
        let (session, cwd, path) = locate(service, &params.session_id, path).await?;
        let target = FileTarget {
            container: session.prepared.container.clone(),
            user: session.prepared.user.clone(),
            cwd,
        };
        let stat = session
            .engine
            .write_file(
                &target,
                &path,
                &data,
                params.mode.map(|mode| mode.0),
                params.append.unwrap_or(false),
                MAX_FILE,
            )
            .await?;
        Ok(Stat::new(Some(&path), &stat))
    })
    .await
}
