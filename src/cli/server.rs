//! `dcx exec` through a running `dcx serve`: the client side of an attach.
//!
//! When `DCX_SERVER` names a server's socket (or is `auto` and a socket is at the server's
//! default path), the request goes to that server, which prepares it and runs the command on a
//! warm engine (the in-container helper where it is placed). What belongs to this process
//! stays here: the terminal is raw before the request goes out (so before the command's first
//! byte) and restored on every way out; its size is in the request and its resizes follow as
//! control messages; the signals dcx receives are forwarded as control messages and dcx ends
//! with the command's status (128+N for a signal); fd 0, 1 and 2 go to the server as
//! descriptors (SCM_RIGHTS), which the server reads and writes directly, so the output never
//! passes through this process; with `--log-format json` the output comes back as events,
//! written here as `raw` events. `--timeout` travels with the command, and its expiry ends dcx
//! with the same error and exit code 124.
//!
//! With no server, a server of another version, or any failure before the command started,
//! dcx runs the command alone as it would without `DCX_SERVER`, and says why at debug level.
//! The protocol is `docs/agent-protocol.md`'s "dcx exec through the server".

use std::io::{IoSlice, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::error::Error;
use super::request::ExecRequest;
use super::signals;
use super::stdio::{self, Stream};
use super::terminal::{HostTerminal, RawMode};
use crate::agent::methods::attach::{
    ATTACH_BYTE, AttachRequest, ClientMessage, FdRole, OutStream, ServerMessage, VERSION,
    WireCommand, WireLog,
};
use crate::engine::{Control, ExitStatus};
use crate::log::{Format, Log, LogSink};

/// The variable naming the server: a socket path, or `auto` for the default socket.
pub const VARIABLE: &str = "DCX_SERVER";

/// What came of trying the server.
pub(super) enum Attempt {
    /// The server ran the command (or was interrupted before it started): dcx's result.
    Done(Result<u8, Error>),
    /// Nothing was started: dcx runs the command alone; why, when a server was asked for.
    Alone(Option<String>),
}

/// Where `DCX_SERVER` says the server is: `None` when it is unset or empty; why not, when
/// `auto` finds no socket.
fn socket() -> Result<Option<PathBuf>, String> {
    let Some(value) = std::env::var_os(VARIABLE).filter(|value| !value.is_empty()) else {
        return Ok(None);
    };
    if value == "auto" {
        let path = crate::agent::default_socket();
        return match path.exists() {
            true => Ok(Some(path)),
            false => Err(format!(
                "{VARIABLE}=auto and no server socket at {}",
                path.display()
            )),
        };
    }
    Ok(Some(PathBuf::from(value)))
}

/// Runs `request` through the server `DCX_SERVER` names, when there is one and it takes it.
pub(super) async fn attach(request: &ExecRequest, log: &Log) -> Attempt {
    let path = match socket() {
        Ok(Some(path)) => path,
        Ok(None) => return Attempt::Alone(None),
        Err(why) => return Attempt::Alone(Some(why)),
    };
    if request.dry_run {
        return Attempt::Alone(Some("--dry-run is answered here".into()));
    }
    match run(&path, request, log).await {
        Ok(done) => Attempt::Done(done),
        Err(why) => Attempt::Alone(Some(format!("the server at {}: {why}", path.display()))),
    }
}

/// The whole attach: `Err` with the reason when nothing was started.
async fn run(
    path: &std::path::Path,
    request: &ExecRequest,
    log: &Log,
) -> Result<Result<u8, Error>, String> {
    let host = HostTerminal::detect();
    let (tty, size) =
        host.command_terminal(request.log_format == Format::Json, request.terminal_size);
    let relay = log.format() == Format::Json;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut roles = Vec::new();
    let mut fds: Vec<BorrowedFd<'_>> = Vec::new();
    if rustix::io::fcntl_getfd(stdin.as_fd()).is_ok() {
        roles.push(FdRole::Stdin);
        fds.push(stdin.as_fd());
    }
    if !relay {
        for (role, fd) in [
            (FdRole::Stdout, stdout.as_fd()),
            (FdRole::Stderr, stderr.as_fd()),
        ] {
            if rustix::io::fcntl_getfd(fd).is_err() {
                return Err(format!("{role:?} is closed").to_lowercase());
            }
            roles.push(role);
            fds.push(fd);
        }
    }
    let wire = AttachRequest {
        version: VERSION.to_owned(),
        fds: roles,
        engine: request.settings.clone(),
        target: request.prepare.clone(),
        command: WireCommand {
            argv: request.command.clone(),
            tty,
            size: size.map(|size| (size.rows, size.cols)),
            timeout: request.timeout,
        },
        log: WireLog::of(log),
        relay_output: relay,
    };
    let mut line = vec![ATTACH_BYTE];
    serde_json::to_writer(&mut line, &wire).map_err(|err| err.to_string())?;
    line.push(b'\n');
    let mut socket = std::os::unix::net::UnixStream::connect(path)
        .map_err(|err| format!("cannot connect: {err}"))?;
    // From here on the signals are forwarded (before the start, one ends the attach).
    let follow_resize = tty && host.stdout_tty && request.terminal_size.is_none();
    let mut control = signals::listen(follow_resize).map_err(|err| err.to_string())?;
    // Raw before the request goes: the command's first byte may follow at once.
    let mut raw = if tty && host.stdin_tty {
        RawMode::enter()
    } else {
        None
    };
    let sent = send(&mut socket, &line, &fds);
    drop(fds);
    sent.map_err(|err| format!("cannot send the request: {err}"))?;
    log.debug(&format!("Through the server at {}", path.display()));
    socket
        .set_nonblocking(true)
        .map_err(|err| err.to_string())?;
    let socket = tokio::net::UnixStream::from_std(socket).map_err(|err| err.to_string())?;
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    let stderr_sink = stdio::StderrSink::new(
        log.format() == Format::Text && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    );
    let mut outputs = relay.then(|| {
        (
            stdio::output(Stream::Stdout, Some(log)),
            stdio::output(Stream::Stderr, Some(log)),
        )
    });
    let mut output_closed = false;
    let mut started = false;
    loop {
        let message = tokio::select! {
            line = lines.next_line() => line,
            Some(message) = control.recv() => {
                let message = match message {
                    Control::Signal(signal) => ClientMessage::Signal(signal),
                    Control::Resize(size) => ClientMessage::Resize { rows: size.rows, cols: size.cols },
                    Control::Cancel { signal } => ClientMessage::Signal(signal),
                };
                let mut text = serde_json::to_vec(&message).unwrap_or_default();
                text.push(b'\n');
                let _ = write.write_all(&text).await;
                continue;
            }
        };
        let message = match message {
            Ok(Some(text)) => match serde_json::from_str::<ServerMessage>(&text) {
                Ok(message) => message,
                Err(err) if !started => {
                    drop(raw.take());
                    return Err(format!("unreadable answer: {err}"));
                }
                Err(_) => continue,
            },
            Ok(None) | Err(_) if !started => {
                drop(raw.take());
                return Err("it closed the connection before the command started".into());
            }
            Ok(None) | Err(_) => {
                drop(raw.take());
                return Ok(Err(Error::Io(std::io::Error::other(
                    "the server went away while the command ran; its outcome is unknown",
                ))));
            }
        };
        match message {
            ServerMessage::Refused { code, message } => {
                drop(raw.take());
                return Err(format!("{code}: {message}"));
            }
            ServerMessage::Interrupted { signal } => {
                drop(raw.take());
                let name = crate::engine::signal_name(signal).unwrap_or("a signal");
                log.error(&format!(
                    "Interrupted by SIG{name} before the command started; nothing was left running."
                ));
                return Ok(Ok(ExitStatus::Signal(signal).exit_code()));
            }
            ServerMessage::Started => started = true,
            ServerMessage::Log { line } => stderr_sink.write_line(line.as_bytes()),
            ServerMessage::Progress { step } => stderr_sink.progress(step.as_deref()),
            ServerMessage::Output { stream, b64 } => {
                let (Some((out, err)), false) = (outputs.as_mut(), output_closed) else {
                    continue;
                };
                let sink = match stream {
                    OutStream::Stdout => out,
                    OutStream::Stderr => err,
                };
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap_or_default();
                if let Err(err) = sink.write_all(&bytes).await {
                    if err.kind() != std::io::ErrorKind::BrokenPipe {
                        drop(raw.take());
                        return Ok(Err(Error::Io(err)));
                    }
                    // The reader went away: the command's group gets the SIGPIPE a local
                    // writer would, and dcx ends with its status.
                    output_closed = true;
                    let mut text = serde_json::to_vec(&ClientMessage::Signal(libc::SIGPIPE))
                        .unwrap_or_default();
                    text.push(b'\n');
                    let _ = write.write_all(&text).await;
                }
            }
            ServerMessage::Failed { message } => {
                drop(raw.take());
                return Ok(Err(Error::Io(std::io::Error::other(message))));
            }
            ServerMessage::End {
                exit_code,
                timed_out,
            } => {
                if let Some((mut out, mut err)) = outputs.take() {
                    let _ = out.shutdown().await;
                    let _ = err.shutdown().await;
                }
                drop(raw.take());
                let _ = std::io::stdout().flush();
                if output_closed {
                    return Ok(Ok(ExitStatus::Signal(libc::SIGPIPE).exit_code()));
                }
                return Ok(match timed_out {
                    Some(limit) => Err(Error::TimedOut(limit)),
                    None => Ok(exit_code),
                });
            }
        }
    }
}

/// Sends `line` with `fds` attached to its first byte; the rest of a long line after it.
fn send(
    socket: &mut std::os::unix::net::UnixStream,
    line: &[u8],
    fds: &[BorrowedFd<'_>],
) -> std::io::Result<()> {
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
    if !control.push(rustix::net::SendAncillaryMessage::ScmRights(fds)) {
        return Err(std::io::Error::other("too many descriptors"));
    }
    let sent = loop {
        match rustix::net::sendmsg(
            &*socket,
            &[IoSlice::new(line)],
            &mut control,
            rustix::net::SendFlags::NOSIGNAL,
        ) {
            Ok(sent) => break sent,
            Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(err.into()),
        }
    };
    socket.write_all(&line[sent..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_request_and_its_descriptors_arrive_together() {
        let (mut client, server) = std::os::unix::net::UnixStream::pair().unwrap();
        let (read, mut write) = std::io::pipe().unwrap();
        // Longer than one read and than the socket's buffer: sent in parts, read whole.
        let line: Vec<u8> = std::iter::once(ATTACH_BYTE)
            .chain(std::iter::repeat_n(b'a', 300_000))
            .chain(*b"\n{\"signal\":15}\n")
            .collect();
        let sender = std::thread::spawn(move || {
            send(&mut client, &line, &[read.as_fd()]).unwrap();
            client
        });
        server.set_nonblocking(true).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (first, fds, rest) = runtime.block_on(async {
            let server = tokio::net::UnixStream::from_std(server).unwrap();
            crate::agent::methods::attach::receive(&server)
                .await
                .unwrap()
        });
        let _client = sender.join().unwrap();
        assert_eq!(first, vec![b'a'; 300_000]);
        assert!(b"{\"signal\":15}\n".starts_with(&rest), "{rest:?}");
        assert_eq!(fds.len(), 1);
        // The descriptor is the pipe's read end: what is written comes out of it.
        write.write_all(b"through").unwrap();
        drop(write);
        let mut got = String::new();
        let passed = fds.into_iter().next().unwrap();
        std::io::Read::read_to_string(&mut std::fs::File::from(passed), &mut got).unwrap();
        assert_eq!(got, "through");
    }
}
