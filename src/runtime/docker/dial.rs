//! Connections to the Docker daemon, for every [`Transport`] the endpoint rules allow, and the
//! few of them a dcx process keeps.
//!
//! A unix socket, TCP, TLS over TCP (rustls), or an `ssh` process running
//! `docker system dial-stdio` on the host (one process a connection, as the docker CLI does).
//! Every request, bollard's and dcx's own, goes through one [`Link`]: its connections are kept
//! alive and reused, one request at a time each, so a `dcx exec` makes its sequential requests
//! on one connection. A request that takes its connection over (exec start's upgrade) uses it
//! up; for the requests after it the link keeps one more connection dialed ahead (a spare,
//! dialed beside the first one, so it costs no round trip of its own): two connections per
//! exec, as the docker CLI's, and the least an attached exec allows. A new connection is dialed
//! only when every kept one is busy (requests made side by side, as an agent server's sessions
//! make them). The link can also send several requests back to back on one connection
//! ([`Link::pipeline`]: HTTP/1.1 pipelining, which the daemon serves in order), one round trip
//! for all of them.

use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{Either, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;

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

/// Opens one connection.
pub async fn dial(endpoint: &Endpoint, errors: &SshErrors) -> std::io::Result<Box<dyn RawIo>> {
    match &endpoint.transport {
        Transport::Unix(path) => Ok(Box::new(tokio::net::UnixStream::connect(path).await?)),
        Transport::Tcp(addr) => Ok(Box::new(tcp(addr).await?)),
        Transport::Tls {
            addr,
            server_name,
            config,
        } => {
            let tcp = tcp(addr).await?;
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

/// A TCP connection that sends small writes at once (no Nagle delay: a request, or a key typed
/// into a TTY exec, must not wait for the answer to the last one), as the docker CLI's do, and
/// acknowledges what it receives at once ([`QuickAck`]).
async fn tcp(addr: &str) -> std::io::Result<QuickAck> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(QuickAck(stream))
}

/// A TCP stream that asks the kernel to acknowledge incoming data at once before each read
/// (`TCP_QUICKACK`, which the kernel drops again by itself). A server that writes an answer in
/// several small pieces with Nagle's rule on (socat's and stunnel's TLS listeners do: each
/// piece waits for the last one's acknowledgement) would otherwise stall on this end's delayed
/// ACK, up to 40 ms a piece: measured here on a TLS listener of socat's, 42–48 ms for a
/// container inspect that takes 2 ms over plain TCP.
struct QuickAck(tokio::net::TcpStream);

impl AsyncRead for QuickAck {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let _ = rustix::net::sockopt::set_tcp_quickack(&self.0, true);
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuickAck {
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

/// bollard's request body type, which every request through the [`Link`] has.
pub type Body = Either<
    Full<Bytes>,
    StreamBody<
        Pin<Box<dyn futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send>>,
    >,
>;

/// A connection ready for hyper's requests.
type Sender = SendRequest<Body>;

/// A connection being dialed.
type Dialing = JoinHandle<std::io::Result<Box<dyn RawIo>>>;

/// The connections one dcx process keeps to the daemon (see the module docs).
pub struct Link {
    endpoint: Endpoint,
    errors: SshErrors,
    /// Connections no request is using (the one in the last place was used last).
    idle: Mutex<Vec<Sender>>,
    /// A connection being dialed ahead of need.
    spare: Mutex<Option<Dialing>>,
    /// The API version the daemon's answers name (`Api-Version`), once one has.
    api_version: Mutex<Option<(usize, usize)>>,
}

impl Link {
    /// Dials the first connection, and a spare beside it, so that the exec start that will use
    /// one up costs no connection of its own. The first dial's failure is the error.
    pub async fn open(endpoint: &Endpoint, errors: &SshErrors) -> std::io::Result<Arc<Self>> {
        let link = Arc::new(Self {
            endpoint: endpoint.clone(),
            errors: errors.clone(),
            idle: Mutex::new(Vec::new()),
            spare: Mutex::new(None),
            api_version: Mutex::new(None),
        });
        let first = dial(endpoint, errors);
        link.dial_spare();
        let sender = link.handshake(first.await?).await?;
        link.check_in(sender);
        Ok(link)
    }

    /// The endpoint this link reaches.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The API version the daemon named in its last answer.
    pub fn api_version(&self) -> Option<(usize, usize)> {
        *self.api_version.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes sure a request that uses its connection up leaves one for the requests after
    /// it: dials a spare when fewer than two connections are kept.
    pub fn keep_two(&self) {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).len();
        let spare = self
            .spare
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        if idle + usize::from(spare) < 2 {
            self.dial_spare();
        }
    }

    fn dial_spare(&self) {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        if spare.is_none() {
            let (endpoint, errors) = (self.endpoint.clone(), self.errors.clone());
            *spare = Some(tokio::spawn(async move { dial(&endpoint, &errors).await }));
        }
    }

    /// A connection of its own, for nobody else: the spare if one is dialed, else a new one.
    async fn fresh(&self) -> std::io::Result<Box<dyn RawIo>> {
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).take();
        match spare {
            Some(dialing) => dialing.await.map_err(std::io::Error::other)?,
            None => dial(&self.endpoint, &self.errors).await,
        }
    }

    async fn handshake(&self, io: Box<dyn RawIo>) -> std::io::Result<Sender> {
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(connection.with_upgrades());
        Ok(sender)
    }

    fn check_in(&self, sender: Sender) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sender);
    }

    /// A kept connection ready for a request (the last used first), else the spare, else a
    /// new one.
    async fn check_out(&self) -> std::io::Result<Sender> {
        loop {
            let kept = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(mut sender) = kept else { break };
            // Ready once the answer before has been read; closed when the daemon hung up.
            if sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        let io = self.fresh().await?;
        self.handshake(io).await
    }

    /// Sends `request` on a kept connection. A connection whose answer is small and read at
    /// once is kept for the next request right away; one whose answer streams (no length, as
    /// logs and archives come) only once that answer has ended; one taken over by an upgrade
    /// is gone.
    pub async fn send(
        self: &Arc<Self>,
        request: http::Request<Body>,
    ) -> std::io::Result<http::Response<Incoming>> {
        let mut sender = self.check_out().await?;
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            // A kept connection the daemon closed before the request went out: once more on
            // a new one.
            Err(mut err) if err.message().is_some() => {
                let Some(request) = err.take_message() else {
                    return Err(std::io::Error::other(err.into_error()));
                };
                sender = self.handshake(self.fresh().await?).await?;
                match sender.send_request(request).await {
                    Ok(response) => response,
                    Err(err) => return Err(self.failure(std::io::Error::other(err)).await),
                }
            }
            Err(err) => {
                return Err(self.failure(std::io::Error::other(err.into_error())).await);
            }
        };
        if let Some(version) = response
            .headers()
            .get("api-version")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_version)
        {
            *self.api_version.lock().unwrap_or_else(|e| e.into_inner()) = Some(version);
        }
        let upgraded = response.status() == http::StatusCode::SWITCHING_PROTOCOLS;
        let sized = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.parse::<u64>().ok())
            .is_some_and(|length| length <= 64 * 1024);
        if sized {
            self.check_in(sender);
        } else if !upgraded {
            let link = self.clone();
            tokio::spawn(async move {
                if sender.ready().await.is_ok() {
                    link.check_in(sender);
                }
            });
        }
        Ok(response)
    }

    /// An ssh connection's failure is best told by what ssh said.
    async fn failure(&self, err: std::io::Error) -> std::io::Error {
        if matches!(self.endpoint.transport, Transport::Ssh(_))
            && let Some(said) = self.errors.last(std::time::Duration::from_secs(2)).await
        {
            return std::io::Error::other(said);
        }
        err
    }

    /// Sends `requests` back to back on one connection of its own (the spare, when one is
    /// dialed), then reads the answers in order: one round trip for all of them. The connection
    /// is kept afterwards. Each answer: its status, headers and body (`Content-Length` or
    /// chunked; a `HEAD`'s has none).
    pub async fn pipeline(&self, requests: &[Piped]) -> std::io::Result<Vec<Answer>> {
        let io = self.fresh().await?;
        let mut bytes = Vec::new();
        for request in requests {
            request.write_to(&mut bytes);
        }
        // Written while the answers are read: a long batch's answers fill the socket's buffers
        // before the daemon has read every request, and it reads no more until they are taken.
        let (mut reader, mut writer) = tokio::io::split(io);
        let write = async {
            writer.write_all(&bytes).await?;
            writer.flush().await
        };
        let read = async {
            let mut answers = AnswerReader::default();
            let mut buffer = vec![0; 16 * 1024];
            for request in requests {
                loop {
                    if let Some(answer) = answers.next(request.method == "HEAD")? {
                        answers.found.push(answer);
                        break;
                    }
                    let read = reader.read(&mut buffer).await?;
                    if read == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    answers.pending.extend_from_slice(&buffer[..read]);
                }
            }
            Ok::<_, std::io::Error>(answers)
        };
        let (written, read) = tokio::join!(write, read);
        written?;
        let AnswerReader { pending, found } = read?;
        let io = reader.unsplit(writer);
        if let Some(version) = found
            .first()
            .and_then(|answer| answer.header("api-version"))
            .and_then(parse_version)
        {
            *self.api_version.lock().unwrap_or_else(|e| e.into_inner()) = Some(version);
        }
        // Every answer read and nothing more sent: the connection serves the next requests.
        if pending.is_empty()
            && let Ok(sender) = self.handshake(io).await
        {
            self.check_in(sender);
        }
        Ok(found)
    }
}

/// A request sent in a [`Link::pipeline`]: method, origin-form target and an optional JSON
/// body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piped {
    pub method: &'static str,
    pub target: String,
    pub json: Option<Vec<u8>>,
}

impl Piped {
    fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(
            format!(
                "{} {} HTTP/1.1\r\nHost: docker\r\n",
                self.method, self.target
            )
            .as_bytes(),
        );
        if let Some(json) = &self.json {
            out.extend_from_slice(
                format!(
                    "Content-Type: application/json\r\nContent-Length: {}\r\n",
                    json.len()
                )
                .as_bytes(),
            );
        }
        out.extend_from_slice(b"\r\n");
        if let Some(json) = &self.json {
            out.extend_from_slice(json);
        }
    }
}

/// Answers read out of a pipelined connection's bytes as they come.
#[derive(Default)]
struct AnswerReader {
    pending: Vec<u8>,
    found: Vec<Answer>,
}

impl AnswerReader {
    /// The next whole answer at the front of `pending` (taken out of it), `None` while more
    /// bytes are needed.
    fn next(&mut self, to_head: bool) -> std::io::Result<Option<Answer>> {
        let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Ok(None);
        };
        let mut answer = Answer::parse(&self.pending[..end])?;
        let rest = &self.pending[end + 4..];
        let no_body = to_head || matches!(answer.status, 100..=199 | 204 | 304);
        let length = answer
            .header("content-length")
            .and_then(|length| length.parse::<usize>().ok());
        let chunked = answer
            .header("transfer-encoding")
            .is_some_and(|coding| coding.eq_ignore_ascii_case("chunked"));
        let taken = if no_body {
            0
        } else if chunked {
            match unchunk(rest)? {
                Some((body, taken)) => {
                    answer.body = body;
                    taken
                }
                None => return Ok(None),
            }
        } else if let Some(length) = length {
            if rest.len() < length {
                return Ok(None);
            }
            answer.body = rest[..length].to_vec();
            length
        } else {
            // Ended by closing the connection: not an answer a pipeline can take.
            return Err(std::io::Error::other(
                "an answer with no length in a pipeline",
            ));
        };
        self.pending.drain(..end + 4 + taken);
        Ok(Some(answer))
    }
}

/// A chunked body at the front of `bytes`: the body and how many bytes it took, `None` while
/// incomplete.
fn unchunk(bytes: &[u8]) -> std::io::Result<Option<(Vec<u8>, usize)>> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(line) = bytes[at..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size = std::str::from_utf8(&bytes[at..at + line])
            .ok()
            .and_then(|text| usize::from_str_radix(text.split(';').next()?.trim(), 16).ok())
            .ok_or_else(|| std::io::Error::other("a bad chunk size"))?;
        at += line + 2;
        if size == 0 {
            // No trailers come from the daemon: the last chunk's CRLF ends the body.
            if bytes.len() < at + 2 {
                return Ok(None);
            }
            return Ok(Some((body, at + 2)));
        }
        if bytes.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&bytes[at..at + size]);
        at += size + 2;
    }
}

/// `1.41` as (1, 41).
fn parse_version(text: &str) -> Option<(usize, usize)> {
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// An answer read from a [`Link::pipeline`]: its status, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    fn parse(bytes: &[u8]) -> std::io::Result<Self> {
        let text = String::from_utf8_lossy(bytes);
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {text}")))?;
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Ok(Self {
            status,
            headers,
            body: Vec::new(),
        })
    }

    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(have, _)| have == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A bollard client whose requests all travel over `link`; `version` is the API version its
/// paths would name (bollard 0.21 sends most of them unversioned).
pub fn client(
    link: &Arc<Link>,
    timeout: u64,
    version: &bollard::ClientVersion,
) -> Result<bollard::Docker, bollard::errors::Error> {
    let link = link.clone();
    bollard::Docker::connect_with_custom_transport(
        move |request: bollard::BollardRequest| {
            let link = link.clone();
            async move {
                let (mut parts, body) = request.into_parts();
                // Origin-form on our own connection, with the Host HTTP/1.1 asks for.
                if let Some(target) = parts.uri.path_and_query().cloned() {
                    parts.uri = http::Uri::from(target);
                }
                parts
                    .headers
                    .insert(http::header::HOST, http::HeaderValue::from_static("docker"));
                link.send(http::Request::from_parts(parts, body))
                    .await
                    .map_err(Into::into)
            }
        },
        Some("http://docker"),
        timeout,
        version,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::AsyncBufReadExt;

    /// A daemon on a unix socket that answers every request in order (HEAD: a stat header;
    /// anything else: a small JSON body) and counts the connections it accepts.
    async fn fake_daemon(path: &std::path::Path) -> Arc<std::sync::atomic::AtomicUsize> {
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = tokio::io::BufReader::new(read).lines();
                    let mut request = None;
                    while let Ok(Some(line)) = lines.next_line().await {
                        if request.is_none() {
                            request = Some(line);
                            continue;
                        }
                        if !line.is_empty() {
                            continue;
                        }
                        let first = request.take().unwrap_or_default();
                        let answer = if first.starts_with("HEAD ") {
                            let path = first.split(' ').nth(1).unwrap_or_default();
                            format!(
                                "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nX-Path: {path}\r\nContent-Length: 0\r\n\r\n"
                            )
                        } else {
                            "HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\nContent-Length: 2\r\n\r\n{}"
                                .to_owned()
                        };
                        if write.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        accepted
    }

    fn get(path: &str) -> http::Request<Body> {
        http::Request::get(path)
            .header(http::header::HOST, "docker")
            .body(Either::Left(Full::new(Bytes::new())))
            .unwrap()
    }

    #[tokio::test]
    async fn requests_share_kept_connections_and_heads_go_out_together() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        let accepted = fake_daemon(&path).await;
        let endpoint = Endpoint {
            transport: Transport::Unix(path.display().to_string()),
            shown: "unix://test".into(),
            source: "test".into(),
        };
        let link = Link::open(&endpoint, &SshErrors::default()).await.unwrap();
        for _ in 0..5 {
            let response = link.send(get("/containers/x/json")).await.unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"{}");
        }
        assert_eq!(link.api_version(), Some((1, 43)));
        // Far more than the socket's buffers hold, both ways: written while read.
        let paths: Vec<String> = (0..20_000).map(|i| format!("/p{i}")).collect();
        // A batch written before its answers are read would hang here: bounded, to fail.
        let requests: Vec<Piped> = paths
            .iter()
            .map(|path| Piped {
                method: "HEAD",
                target: path.clone(),
                json: None,
            })
            .collect();
        let heads =
            tokio::time::timeout(std::time::Duration::from_secs(60), link.pipeline(&requests))
                .await
                .expect("the batch's answers came")
                .unwrap();
        let seen: Vec<&str> = heads.iter().map(|h| h.header("x-path").unwrap()).collect();
        assert_eq!(seen, paths.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(heads.iter().all(|h| h.status == 200));
        assert_eq!(link.api_version(), Some((1, 41)));
        // Both kept: a request after the batch dials nothing new.
        link.keep_two();
        link.send(get("/after")).await.unwrap();
        assert_eq!(
            accepted.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "the first connection and the spare beside it"
        );
    }

    #[test]
    fn answers_and_versions_parse() {
        let head =
            Answer::parse(b"HTTP/1.1 404 Not Found\r\nApi-Version: 1.41\r\nX-A:  b \r\n").unwrap();
        assert_eq!(head.status, 404);
        assert_eq!(head.header("x-a"), Some("b"));
        assert_eq!(
            head.header("api-version").and_then(parse_version),
            Some((1, 41))
        );
        assert!(Answer::parse(b"garbage").is_err());
        assert_eq!(parse_version("1.x"), None);
    }

    #[test]
    fn pipelined_answers_are_told_apart_by_their_lengths() {
        let stream: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n\
            HTTP/1.1 201 Created\r\nContent-Length: 9\r\n\r\n{\"Id\":1}\n\
            HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n\
            HTTP/1.1 204 No Content\r\n\r\n";
        let heads = [true, false, false, false];
        // Fed a byte at a time: an answer is whole only once its body is.
        let mut reader = AnswerReader::default();
        let mut answers = Vec::new();
        for byte in stream {
            reader.pending.push(*byte);
            while let Some(answer) = reader.next(heads[answers.len()]).unwrap() {
                answers.push(answer);
                if answers.len() == heads.len() {
                    break;
                }
            }
        }
        let seen: Vec<(u16, &[u8])> = answers.iter().map(|a| (a.status, &a.body[..])).collect();
        assert_eq!(
            seen,
            [
                (200, &b""[..]),
                (201, b"{\"Id\":1}\n"),
                (404, b"abcde"),
                (204, b"")
            ]
        );
        assert!(reader.pending.is_empty());
        // An answer ended only by the connection's close cannot be pipelined.
        let mut reader = AnswerReader {
            pending: b"HTTP/1.1 200 OK\r\n\r\nrest".to_vec(),
            ..AnswerReader::default()
        };
        assert!(reader.next(false).is_err());
    }
}
