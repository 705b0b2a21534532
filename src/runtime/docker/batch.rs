//! Several paths' stats in one round trip: the archive endpoint's `HEAD` for each, sent back to
//! back on one connection ([`Link::pipeline`](super::dial::Link::pipeline)) and answered in order;
//! sent ahead of the run when foreseen (`ahead.rs`).
//!
//! The Engine API has no call that stats several paths, and one exec that stats them all costs
//! three requests (create, start, inspect) where the pipelined `HEAD`s cost one. An answer the
//! batch cannot take as it comes (a symlink, whose target as written needs the link's archive;
//! any status but 200 and 404) is asked again on its own through
//! [`Docker::stat_path`](super::Docker), so every path gets the very answer a lone call gives;
//! a batch that fails as a whole (a relay that does not take pipelined requests) is asked
//! path by path.

use base64::Engine as _;

use super::Docker;
use super::dial::Piped;
use super::files::from_go;
use crate::runtime::tree::{FileKind, PathStat};
use crate::runtime::{Container, RuntimeError};

/// The stat header's JSON, as the daemon sends it (base64).
#[derive(serde::Deserialize)]
struct GoStat {
    #[serde(default)]
    name: String,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    mode: u32,
    #[serde(default)]
    mtime: Option<String>,
    #[serde(default, rename = "linkTarget")]
    link_target: String,
}

impl Docker {
    pub(super) async fn stat_paths(
        &self,
        container: &Container,
        paths: &[String],
    ) -> Vec<Result<PathStat, RuntimeError>> {
        let heads = match self.stats_ahead(container, paths).await {
            Some(answers) => Some(answers),
            None if paths.len() > 1 => self
                .link
                .pipeline(&stat_requests(&container.id, paths))
                .await
                .ok(),
            None => None,
        };
        let mut stats = Vec::with_capacity(paths.len());
        for (index, path) in paths.iter().enumerate() {
            let found = heads.as_ref().and_then(|heads| {
                let head = heads.get(index)?;
                match head.status {
                    404 => Some(Err(RuntimeError::NoSuchPath {
                        container: container.name.clone(),
                        path: path.clone(),
                    })),
                    200 => decode(head.header("x-docker-container-path-stat")?)
                        .filter(|stat| stat.kind != FileKind::Symlink)
                        .map(Ok),
                    _ => None,
                }
            });
            stats.push(match found {
                Some(found) => found,
                None => self.stat_path(container, path).await,
            });
        }
        stats
    }
}

/// The archive endpoint's `HEAD` for each of `paths` in container `id`: their stats.
pub(super) fn stat_requests(id: &str, paths: &[String]) -> Vec<Piped> {
    paths
        .iter()
        .map(|path| Piped {
            method: "HEAD",
            target: format!("/containers/{id}/archive?path={}", query_escape(path)),
            json: None,
        })
        .collect()
}

/// The stat in an `X-Docker-Container-Path-Stat` header.
fn decode(header: &str) -> Option<PathStat> {
    let json = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .ok()?;
    let stat: GoStat = serde_json::from_slice(&json).ok()?;
    Some(from_go(
        stat.name,
        stat.size,
        stat.mode,
        stat.mtime.as_deref(),
        stat.link_target,
    ))
}

/// `text` as a query value: everything but unreserved characters percent-encoded.
fn query_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_header_reads_as_the_lone_call_reads_it() {
        // What Docker 20.10 sends for a folder and for a file.
        let folder = base64::engine::general_purpose::STANDARD.encode(
            r#"{"name":"profile.d","size":4096,"mode":2147484141,"mtime":"2024-05-13T00:00:00.123456789Z","linkTarget":""}"#,
        );
        let stat = decode(&folder).unwrap();
        assert_eq!(
            (stat.name.as_str(), stat.kind, stat.size, stat.mode),
            ("profile.d", FileKind::Directory, 4096, 0o755)
        );
        assert_eq!(stat.mtime_nsec, 123_456_789);
        let file = base64::engine::general_purpose::STANDARD
            .encode(r#"{"name":".bashrc","size":3526,"mode":420,"mtime":"2023-04-23T21:23:06Z","linkTarget":""}"#);
        let stat = decode(&file).unwrap();
        assert_eq!(
            (stat.kind, stat.size, stat.mode),
            (FileKind::File, 3526, 0o644)
        );
        assert!(decode("not base64!").is_none());
    }

    #[test]
    fn paths_are_escaped_for_the_query() {
        assert_eq!(
            query_escape("/root/.config/fish/a b&c=d"),
            "%2Froot%2F.config%2Ffish%2Fa%20b%26c%3Dd"
        );
    }
}
