//! The unix socket transport: newline-delimited JSON, many requests per connection, answered out of
//! order.
//!
//! Each request is answered as soon as it is done (matched by `id`), so a slow `exec.run` never
//! holds up `system.ping` or `exec.cancel` on the same connection. A line that cannot be parsed
//! gets a `bad_request` answer and the connection stays usable; a line over 64 MiB is refused and
//! ends the connection. At most 64 requests of one connection are answered at once (the next
//! line is read when one is done), and a client gone whole stops the `exec.run` calls it made.
//!
//! The socket is created mode 0600 (from its creation, whatever the umask), in a directory made
//! mode 0700 when dcx creates it. A socket left by a dead server (nothing accepts on it) is
//! replaced; a live one, or a path that is not a socket, is an error naming it.

use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ServeError;
use super::bounds::{ACCEPT_BACKOFF, Bounds, Connections, IN_FLIGHT};
use super::protocol::{Code, Failure, Request, answer_err};
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
/// last answers. At most `bounds.max_connections` at once (each task holds a permit; one over
/// gets a `connection_limit` answer and is closed).
pub async fn accept(
    listener: UnixListener,
    service: Arc<Service>,
    bounds: Bounds,
    tracker: TaskTracker,
    stop: CancellationToken,
) {
    let connections = Connections::new(bounds.max_connections);
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => match connections.admit() {
                Some(permit) => {
                    tracker.spawn(connection(stream, service.clone(), stop.clone(), permit));
                }
                None => {
                    let mut line = answer_err(
                        &Value::Null,
                        &Failure::new(Code::ConnectionLimit, connections.refusal()),
                    )
                    .to_string();
                    line.push('\n');
                    let _ = stream.try_write(line.as_bytes());
                }
            },
            Err(err) => {
                // Out of descriptors (EMFILE) or the like: wait, never spin.
                service.log.warn(&format!("socket accept failed: {err}"));
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Lines longer than this are refused (and the connection closed: it cannot be resynchronised).
const MAX_LINE: usize = 64 * 1024 * 1024;
/// How often a connection whose client stopped sending is checked for a client gone whole.
const GONE_CHECK: Duration = Duration::from_millis(200);

/// The connection's first byte, left unread (`None` when the client left without one).
async fn peek_first(stream: &UnixStream) -> Option<u8> {
    loop {
        stream.readable().await.ok()?;
        let mut byte = [0u8; 1];
        let peeked = stream.try_io(tokio::io::Interest::READABLE, || {
            rustix::net::recv(stream, &mut byte, rustix::net::RecvFlags::PEEK)
                .map(|(n, _)| n)
                .map_err(std::io::Error::from)
        });
        match peeked {
            Ok(0) => return None,
            Ok(_) => return Some(byte[0]),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return None,
        }
    }
}

/// Reads requests until the client closes or `stop`; then waits for the answers in flight.
///
/// At most [`IN_FLIGHT`] requests are answered at once: the next line is read when one of them
/// has handed its answer to the writer, whose queue is bounded too, so a client that sends
/// without reading holds a bounded amount of the server's memory. When the client is gone
/// whole (not only done sending), the `exec.run` calls it made are dropped, which cancels
/// their commands: the reader sees it, or, once it stopped reading (the client done sending,
/// or its requests at the cap), a zero-byte send every 200 ms does.
async fn connection(
    stream: UnixStream,
    service: Arc<Service>,
    stop: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    // A first byte NUL (never the start of a JSON request) opens an attach: `dcx exec` through
    // the server, with the client's descriptors (`methods::attach`).
    let first = tokio::select! {
        () = stop.cancelled() => return,
        first = peek_first(&stream) => first,
    };
    if first == Some(super::methods::attach::ATTACH_BYTE) {
        super::methods::attach::serve(stream, service, stop).await;
        return;
    }
    // A second descriptor of the socket, to check for a client gone whole without the writer.
    let probe = stream.as_fd().try_clone_to_owned().ok();
    let (read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Value>(IN_FLIGHT);
    let gone = CancellationToken::new();
    let read_ended = CancellationToken::new();
    let writer = {
        let gone = gone.clone();
        tokio::spawn(async move {
            loop {
                let line = tokio::select! {
                    () = gone.cancelled() => break,
                    line = rx.recv() => line,
                };
                let Some(line) = line else { break };
                let mut text = line.to_string();
                text.push('\n');
                if write.write_all(text.as_bytes()).await.is_err() {
                    gone.cancel();
                    break;
                }
            }
        })
    };
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    // Woken when the reader waits for a permit: it then cannot see the client leave.
    let stalled = Arc::new(tokio::sync::Notify::new());
    let watcher = {
        let (gone, read_ended) = (gone.clone(), read_ended.clone());
        let (in_flight, stalled) = (in_flight.clone(), stalled.clone());
        tokio::spawn(async move {
            let Some(probe) = probe else { return };
            // A zero-byte send fails (EPIPE) once the peer has closed its end whole; a
            // peer that only shut down its sending side still gets its answers.
            let flags = rustix::net::SendFlags::NOSIGNAL | rustix::net::SendFlags::DONTWAIT;
            while !gone.is_cancelled() {
                if !read_ended.is_cancelled() && in_flight.available_permits() > 0 {
                    // The reader sees the client leave: nothing to check until it cannot.
                    tokio::select! {
                        () = read_ended.cancelled() => {}
                        () = stalled.notified() => {}
                    }
                    continue;
                }
                match rustix::net::send(&probe, &[], flags) {
                    Ok(_) | Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                    Err(_) => gone.cancel(),
                }
                tokio::time::sleep(GONE_CHECK).await;
            }
        })
    };
    let mut lines = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        if in_flight.available_permits() == 0 {
            stalled.notify_one();
        }
        let permit = tokio::select! {
            () = stop.cancelled() => break,
            () = gone.cancelled() => break,
            permit = in_flight.clone().acquire_owned() => permit,
        };
        let Ok(permit) = permit else { break };
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
                .send(answer_err(
                    &Value::Null,
                    &Failure::bad(format!(
                        "the request line is longer than {} MiB: the connection is closed",
                        MAX_LINE >> 20
                    )),
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
        let gone = gone.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let stops_when_gone = request.method == "exec.run";
            let answer = super::methods::handle(&service, request, &tx);
            let answer = match stops_when_gone {
                true => tokio::select! {
                    // Dropping the call cancels the command it started.
                    () = gone.cancelled() => return,
                    answer = answer => answer,
                },
                false => answer.await,
            };
            let _ = tx.send(answer).await;
        });
    }
    read_ended.cancel();
    drop(tx);
    let _ = writer.await;
    watcher.abort();
}
