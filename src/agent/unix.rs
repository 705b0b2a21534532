//! The unix socket transport: newline-delimited JSON, many requests per connection, answered out of
//! order.
//!
//! Each request is answered as soon as it is done (matched by `id`), so a slow `exec.run` never
//! holds up `system.ping` or `exec.cancel` on the same connection. A line that cannot be parsed
//! gets a `bad_request` answer and the connection stays usable; a line over 64 MiB is refused and
//! ends the connection.
//!
//! The socket is created mode 0600 (from its creation, whatever the umask), in a directory made
//! mode 0700 when dcx creates it. A socket left by a dead server (nothing accepts on it) is
//! replaced; a live one, or a path that is not a socket, is an error naming it.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ServeError;
use super::protocol::Request;
use super::service::Service;

/// The default socket: `$XDG_RUNTIME_DIR/dcx/agent.sock`, else `/run/dcx/agent.sock`.
pub fn default_socket() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("dcx/agent.sock"),
        None => PathBuf::from("/run/dcx/agent.sock"),
    }
}

/// Binds the socket at `path` (see the module docs).
pub async fn bind(path: &Path) -> Result<UnixListener, ServeError> {
    let failed = |reason: String| ServeError::Socket {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|err| failed(format!("cannot create {}: {err}", dir.display())))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(failed("it exists and is not a socket".into()));
            }
            if UnixStream::connect(path).await.is_ok() {
                return Err(failed(
                    "another server is listening on it (stop it, or give --socket another path)"
                        .into(),
                ));
            }
            std::fs::remove_file(path)
                .map_err(|err| failed(format!("cannot replace the stale socket: {err}")))?;
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(failed(err.to_string())),
    }
    // Mode 0600 from its creation (no chmod after, which would leave a moment when others
    // could connect): the umask is the process's, and the server creates nothing else
    // meanwhile.
    let umask = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let listener = UnixListener::bind(path);
    rustix::process::umask(umask);
    listener.map_err(|err| failed(err.to_string()))
}

/// Serves connections until `stop`; each on `tracker`, so that shutdown can wait for their
/// last answers.
pub async fn accept(
    listener: UnixListener,
    service: Arc<Service>,
    tracker: TaskTracker,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                tracker.spawn(connection(stream, service.clone(), stop.clone()));
            }
            Err(err) => {
                service.log.warn(&format!("socket accept failed: {err}"));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Lines longer than this are refused (and the connection closed: it cannot be resynchronised).
const MAX_LINE: usize = 64 * 1024 * 1024;

/// Reads requests until the client closes or `stop`; then waits for the answers in flight.
async fn connection(stream: UnixStream, service: Arc<Service>, stop: CancellationToken) {
    let (read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Value>(64);
    let writer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            let mut text = line.to_string();
            text.push('\n');
            if write.write_all(text.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let mut lines = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut limited = tokio::io::AsyncReadExt::take(&mut lines, MAX_LINE as u64 + 1);
        let read = tokio::select! {
            () = stop.cancelled() => break,
            read = limited.read_until(b'\n', &mut line) => read,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.len() > MAX_LINE {
            let _ = tx
                .send(super::protocol::answer_err(
                    &Value::Null,
                    &super::protocol::Failure::bad("the request line is too long"),
                ))
                .await;
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let request = match Request::parse(&line) {
            Ok(request) => request,
            Err(answer) => {
                let _ = tx.send(answer).await;
                continue;
            }
        };
        let service = service.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let answer = super::methods::handle(&service, request, &tx).await;
            let _ = tx.send(answer).await;
        });
    }
    drop(tx);
    let _ = writer.await;
}
