//! Putting the helper into a container, and starting it as a user.
//!
//! The binary for the container's architecture (as the engine reports it, never guessed from
//! this host's) goes to a hash-keyed path at the container's root, owned by root, mode 0755,
//! through the engine's own file call (Docker's archive API; crun: its root filesystem),
//! unless a file of its size is already there. The root must not be a mount point of its own
//! (Docker's archive API would write beneath a mount, where the container cannot see it).
//! The helper is then started by the engine exec `user`'s commands would get, and must say
//! hello within 5 s.

use std::time::Duration;

use bytes::Bytes;

use super::binary;
use super::conn::Conn;
use crate::log::Log;
use crate::runtime::{Container, ExecSpec, FileKind, Runtime};

/// How long a started helper has to say hello.
const HELLO_WITHIN: Duration = Duration::from_secs(5);

/// Why the helper cannot serve a container (its commands then take the plain engine exec).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Unplaced {
    #[error("the engine does not say the container's architecture")]
    NoArchitecture,
    #[error("this dcx carries no helper for {0} (it has: {carried})", carried = binary::carried().join(", "))]
    NoBinary(String),
    #[error("{0} is a mount point in the container")]
    Mounted(String),
    #[error("cannot place the helper: {0}")]
    Place(String),
    #[error("the helper did not start: {0}")]
    Start(String),
}

/// A tar holding the helper at `name`, root's, mode 0755.
fn archive(name: &str, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_data(&mut header, name, bytes)?;
    builder.into_inner()
}

/// Places the helper in `container` if it is not there, and starts it as `user`.
pub async fn start(
    runtime: &dyn Runtime,
    container: &Container,
    user: &str,
    log: &Log,
) -> Result<Conn, Unplaced> {
    let arch = runtime
        .architecture(container)
        .await
        .ok_or(Unplaced::NoArchitecture)?;
    let bytes = binary::for_arch(&arch).ok_or_else(|| Unplaced::NoBinary(arch.clone()))?;
    let path = binary::path_of(bytes);
    if let Some(mount) = container
        .mounts
        .iter()
        .find(|mount| mount.destination == "/" || mount.destination == path)
    {
        return Err(Unplaced::Mounted(mount.destination.clone()));
    }
    let placed = runtime.stat_path(container, &path).await;
    if !placed.is_ok_and(|stat| stat.kind == FileKind::File && stat.size == bytes.len() as u64) {
        log.debug(&format!(
            "helper: placing {path} ({arch}, {} bytes)",
            bytes.len()
        ));
        let name = path.trim_start_matches('/');
        let tar = archive(name, bytes).map_err(|err| Unplaced::Place(err.to_string()))?;
        let stream = futures_util::stream::once(async move { Ok(Bytes::from(tar)) });
        runtime
            .write_archive(container, "/", Box::pin(stream), None)
            .await
            .map_err(|err| Unplaced::Place(err.to_string()))?;
    }
    let spec = ExecSpec {
        argv: vec![path],
        user: Some(user.to_owned()),
        ..ExecSpec::default()
    };
    let session = runtime
        .start(container, &spec)
        .await
        .map_err(|err| Unplaced::Start(err.to_string()))?;
    Conn::open(session, HELLO_WITHIN, log.clone())
        .await
        .map_err(Unplaced::Start)
}
