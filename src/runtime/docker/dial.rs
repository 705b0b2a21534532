//! Connections to the Docker daemon, for every [`Transport`] the endpoint rules allow.
//!
//! A unix socket, TCP, TLS over TCP (rustls), or an `ssh` process running
//! `docker system dial-stdio` on the host (one process a connection, as the docker CLI does).
//! bollard's requests go through [`client`] for TLS and ssh (a pooling hyper client on this
//! dialer); the TTY upgrade dcx makes itself, and the `/_ping` that reads the API version
//! ([`api_version`]), dial here too, so all of them reach the same daemon the same way.

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{Either, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::endpoint::{Endpoint, Transport};

/// A byte stream to the daemon.
pub trait RawIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> RawIo for T {}

/// What the last `ssh` process said on stderr: the reason a connection failed.
#[derive(Clone, Default)]
pub struct SshErrors(Arc<(Mutex<Option<String>>, tokio::sync::Notify)>);

impl SshErrors {
    fn keep(&self, text: String) {
        if let Ok(mut kept) = self.0.0.lock() {
            *kept = Some(text);
        }
        self.0.1.notify_waiters();
    }

    /// The last line the last `ssh` wrote before it ended, waiting up to `limit` for it to end
    /// (a failed connection is seen before ssh's own message is read).
    pub async fn last(&self, limit: std::time::Duration) -> Option<String> {
        let read = || self.0.0.lock().ok().and_then(|kept| kept.clone());
        if read().is_none() {
            let notified = self.0.1.notified();
            if read().is_none() {
                let _ = tokio::time::timeout(limit, notified).await;
            }
        }
        read()?
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .map(|line| line.trim().to_owned())
    }
}

/// The API version the daemon at `endpoint` speaks, as `GET /_ping` tells it in its
/// `Api-Version` header (the docker CLI's way, and far less work for the daemon than
/// `/version`); `None` when the answer is not a success or has no such header.
pub async fn api_version(
    endpoint: &Endpoint,
    errors: &SshErrors,
) -> std::io::Result<Option<(usize, usize)>> {
    let io = dial(endpoint, errors).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    let request = http::Request::get("/_ping")
        .header(http::header::HOST, "docker")
        .body(Full::new(Bytes::new()))
        .map_err(std::io::Error::other)?;
    let response = sender
        .send_request(request)
        .await
        .map_err(std::io::Error::other)?;
    if !response.status().is_success() {
        return Ok(None);
    }
    Ok(response
        .headers()
        .get("api-version")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.split_once('.'))
        .and_then(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?))))
}

/// Opens one connection.
pub async fn dial(endpoint: &Endpoint, errors: &SshErrors) -> std::io::Result<Box<dyn RawIo>> {
    match &endpoint.transport {
        Transport::Unix(path) => Ok(Box::new(tokio::net::UnixStream::connect(path).await?)),
        Transport::Tcp(addr) => Ok(Box::new(
            tokio::net::TcpStream::connect(addr.as_str()).await?,
        )),
        Transport::Tls {
            addr,
            server_name,
            config,
        } => {
            let tcp = tokio::net::TcpStream::connect(addr.as_str()).await?;
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(server_name.clone(), tcp)
                .await?;
            Ok(Box::new(tls))
        }
        Transport::Ssh(target) => {
            let mut child = tokio::process::Command::new("ssh")
                .args(target.args())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|err| std::io::Error::new(err.kind(), format!("cannot run ssh: {err}")))?;
            let (Some(stdin), Some(stdout), Some(mut stderr)) =
                (child.stdin.take(), child.stdout.take(), child.stderr.take())
            else {
                return Err(std::io::Error::other("ssh started without its pipes"));
            };
            let errors = errors.clone();
            tokio::spawn(async move {
                let mut text = Vec::new();
                let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut text).await;
                errors.keep(String::from_utf8_lossy(&text).into_owned());
            });
            Ok(Box::new(SshStream {
                stdout,
                stdin: Some(stdin),
                _child: child,
            }))
        }
    }
}

/// An `ssh` process's stdout and stdin as one stream; the process ends with it. Shutting the
/// stream down closes ssh's stdin (a pipe's shutdown alone would not), which ssh passes on as
/// the end of the input.
struct SshStream {
    stdout: tokio::process::ChildStdout,
    stdin: Option<tokio::process::ChildStdin>,
    _child: tokio::process::Child,
}

impl AsyncRead for SshStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for SshStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.stdin.as_mut() {
            Some(stdin) => Pin::new(stdin).poll_write(cx, buf),
            None => Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.stdin.as_mut() {
            Some(stdin) => Pin::new(stdin).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(stdin) = self.stdin.as_mut() {
            std::task::ready!(Pin::new(stdin).poll_flush(cx))?;
        }
        self.stdin = None;
        Poll::Ready(Ok(()))
    }
}

/// A dialed connection as hyper's client pool takes it.
pub struct Conn(TokioIo<Box<dyn RawIo>>);

impl Connection for Conn {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The dialer as a connector for hyper's pooling client.
#[derive(Clone)]
pub struct Connector {
    endpoint: Arc<Endpoint>,
    errors: SshErrors,
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = Conn;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Conn>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let (endpoint, errors) = (self.endpoint.clone(), self.errors.clone());
        Box::pin(async move { Ok(Conn(TokioIo::new(dial(&endpoint, &errors).await?))) })
    }
}

/// bollard's request body type.
pub type Body = Either<
    Full<Bytes>,
    StreamBody<
        Pin<Box<dyn futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send>>,
    >,
>;

/// A bollard client whose requests travel over this dialer.
pub fn client(
    endpoint: &Endpoint,
    errors: &SshErrors,
    timeout: u64,
) -> Result<bollard::Docker, bollard::errors::Error> {
    let connector = Connector {
        endpoint: Arc::new(endpoint.clone()),
        errors: errors.clone(),
    };
    let pool = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build::<_, Body>(connector);
    bollard::Docker::connect_with_custom_transport(
        move |request: bollard::BollardRequest| {
            let pool = pool.clone();
            async move { pool.request(request).await.map_err(Into::into) }
        },
        Some("http://docker"),
        timeout,
        bollard::API_DEFAULT_VERSION,
    )
}
