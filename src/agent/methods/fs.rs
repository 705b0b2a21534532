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
    pub path: Text,
}

/// `fs.read`'s parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadParams {
    pub session_id: Text,
    pub path: Text,
    pub offset: Option<u64>,
    pub length: Option<u64>,
}

/// `fs.write`'s parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteParams {
    pub session_id: Text,
    pub path: Text,
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
}

impl Stat {
    fn new(path: Option<&str>, stat: &PathStat) -> Self {
        Self {
            path: path.map(str::to_owned),
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

/// The session and the path in the container (relative paths from its current directory).
async fn locate(
    service: &Service,
    session_id: &Text,
    path: &Text,
) -> Result<(std::sync::Arc<Session>, String, String), Failure> {
    let session = service.session(&session_id.0)?;
    let cwd = session.current_cwd().await;
    let path = container_path(&cwd, &path.0);
    Ok((session, cwd, path))
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
    following(service, &params.session_id, || async {
        let (session, _, path) = locate(service, &params.session_id, &params.path).await?;
        let stat = session
            .engine
            .stat_path(&session.prepared.container, &path)
            .await?;
        Ok(Stat::new(Some(&path), &stat))
    })
    .await
}

pub async fn list(service: &Service, params: PathParams) -> Result<Listing, Failure> {
    following(service, &params.session_id, || async {
        let (session, _, path) = locate(service, &params.session_id, &params.path).await?;
        let (listed, entries) = session
            .engine
            .list_dir(&session.prepared.container, &path, MAX_ENTRIES)
            .await?;
        Ok(Listing {
            path: listed,
            entries: entries.iter().map(|entry| Stat::new(None, entry)).collect(),
        })
    })
    .await
}

pub async fn read(service: &Service, params: ReadParams) -> Result<FileRead, Failure> {
    following(service, &params.session_id, || async {
        let (session, _, path) = locate(service, &params.session_id, &params.path).await?;
        let offset = params.offset.unwrap_or(0);
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
    following(service, &params.session_id, || async {
        let (session, cwd, path) = locate(service, &params.session_id, &params.path).await?;
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
