//! The HTTP transport: one JSON request per `POST /`, behind a bearer token.
//!
//! Each request is answered with its JSON answer, or for `exec.stream` with `application/x-ndjson`
//! events as a chunked body, ending with its `end` event (or an error answer). Every request needs
//! `Authorization: Bearer <DCX_AUTH_TOKEN>`, compared in constant time; without it the answer is
//! 401 (`unauthorized`). A body over 64 MiB is refused. Listens only where it is told (`dcx serve`
//! takes loopback addresses only). Connections are capped and closed when no request header
//! comes in time (see `bounds.rs`); an `exec.run` whose client hangs up is cancelled (hyper drops
//! the call, and the call cancels its command when dropped).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request as HttpRequest, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::bounds::{ACCEPT_BACKOFF, Bounds, Connections};
use super::protocol::{Code, Failure, Request, answer_err};
use super::service::Service;

type Body = BoxBody<Bytes, Infallible>;

/// A request body larger than this is refused.
const MAX_BODY: usize = 64 * 1024 * 1024;
/// A request body must have come whole within this.
const BODY_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut text = value.to_string();
    text.push('\n');
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(text)).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

fn failure(status: StatusCode, code: Code, message: &str) -> Response<Body> {
    json_response(
        status,
        &answer_err(&Value::Null, &Failure::new(code, message)),
    )
}

/// Serves HTTP on `listener` until `stop`; connections on `tracker`, finishing what they
/// answer when stopped. At most `bounds.max_connections` at once (each task holds a permit; one
/// over is answered 503 and closed), each closed when no whole request header came within
/// `bounds.http_idle` (fresh, or kept alive between requests).
pub async fn accept(
    listener: TcpListener,
    service: Arc<Service>,
    token: Arc<String>,
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
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of descriptors (EMFILE) or the like: wait, never spin.
                service.log.warn(&format!("HTTP accept failed: {err}"));
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Some(permit) = connections.admit() else {
            refuse(&stream, &connections.refusal());
            continue;
        };
        let service = service.clone();
        let token = token.clone();
        let stop = stop.clone();
        let idle = bounds.http_idle;
        tracker.spawn(async move {
            let _permit = permit;
            let handler = hyper::service::service_fn(move |request| {
                let service = service.clone();
                let token = token.clone();
                async move { Ok::<_, Infallible>(handle(request, service, &token).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(idle)
                .serve_connection(TokioIo::new(stream), handler);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}

/// Answers a connection over the cap with 503 (as much as the socket takes at once, never
/// waiting for it) and closes it.
fn refuse(stream: &tokio::net::TcpStream, message: &str) {
    let mut body =
        answer_err(&Value::Null, &Failure::new(Code::ConnectionLimit, message)).to_string();
    body.push('\n');
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(response.as_bytes());
}

fn authorised(request: &HttpRequest<Incoming>, token: &str) -> bool {
    let given = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    constant_time_eq::constant_time_eq(given.as_bytes(), token.as_bytes())
}

async fn handle(
    request: HttpRequest<Incoming>,
    service: Arc<Service>,
    token: &str,
) -> Response<Body> {
    if !authorised(&request, token) {
        return failure(
            StatusCode::UNAUTHORIZED,
            Code::Unauthorized,
            "a bearer token is required (Authorization: Bearer $DCX_AUTH_TOKEN)",
        );
    }
    if request.uri().path() != "/" {
        return failure(
            StatusCode::NOT_FOUND,
            Code::BadRequest,
            "POST requests to /",
        );
    }
    if request.method() != http::Method::POST {
        return failure(
            StatusCode::METHOD_NOT_ALLOWED,
            Code::BadRequest,
            "POST requests to /",
        );
    }
    // A body that does not come whole within BODY_WITHIN never holds the connection.
    let body = tokio::time::timeout(
        BODY_WITHIN,
        Limited::new(request.into_body(), MAX_BODY).collect(),
    );
    let body = match body.await {
        Ok(Ok(body)) => body.to_bytes(),
        Err(_) => {
            return failure(
                StatusCode::REQUEST_TIMEOUT,
                Code::BadRequest,
                &format!(
                    "the request body did not arrive within {} s",
                    BODY_WITHIN.as_secs()
                ),
            );
        }
        Ok(Err(_)) => {
            return failure(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::BadRequest,
                "the request body is too large or broken",
            );
        }
    };
    let request = match Request::parse(&body) {
        Ok(request) => request,
        Err(answer) => return json_response(StatusCode::BAD_REQUEST, &answer),
    };
    if request.method == "exec.stream" {
        let (tx, mut rx) = mpsc::channel::<Value>(16);
        let (frames_tx, frames_rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(16);
        tokio::spawn(async move {
            // `rx` is the forwarder's own: when the client goes, it goes, and the stream's
            // sends fail (so the command is stopped) instead of waiting forever.
            let forward = async move {
                while let Some(event) = rx.recv().await {
                    let mut line = event.to_string();
                    line.push('\n');
                    if frames_tx
                        .send(Ok(Frame::data(Bytes::from(line))))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            };
            let answer = async {
                let answer = super::methods::handle(&service, request, &tx).await;
                let _ = tx.send(answer).await;
                drop(tx);
            };
            tokio::join!(forward, answer);
        });
        let frames = futures_util::stream::unfold(frames_rx, |mut rx| async move {
            rx.recv().await.map(|frame| (frame, rx))
        });
        return Response::builder()
            .header(http::header::CONTENT_TYPE, "application/x-ndjson")
            .body(BodyExt::boxed(StreamBody::new(frames)))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()));
    }
    let (tx, _rx) = mpsc::channel::<Value>(1);
    let answer = super::methods::handle(&service, request, &tx).await;
    json_response(StatusCode::OK, &answer)
}
