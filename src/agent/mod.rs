//! `dcx serve`: the agent exec service, a front end of the engine. Sessions are bound to dev
//! containers: selection, config, user and the userEnvProbe run once at `session.create`, and every
//! command after that runs with the environment `dcx exec` would give it (plus what the session's
//! earlier commands left, their directory and exports, and non-interactive defaults such as
//! `PAGER=cat`), at the cost of one engine exec. Two transports share one [`service::Service`]:
//! newline-delimited JSON on a unix socket (`unix.rs`) and HTTP with a bearer token (`http.rs`);
//! both hand each request to [`methods::handle`]. `docs/agent-protocol.md` is the protocol's
//! reference.
//!
//! This front end owns only its own process-bound parts: its listeners, SIGTERM/SIGINT (stop
//! accepting, cancel running execs, remove the socket, exit 0 within 5 s), and its log on stderr.
//! It never touches a terminal, and commands never see its stdio.

mod bounds;
pub mod engines;
pub mod envelope;
pub mod exec;
mod fdio;
mod http;
pub mod keys;
pub mod launch;
pub mod methods;
pub mod output;
pub mod params;
pub mod protocol;
pub mod pty;
pub mod screen;
pub mod service;
pub mod session;
pub mod text;
mod unix;
pub mod warm;
mod wrapper;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use service::Limits;
pub use unix::default_socket;

use crate::log::{Level, Log};
use service::{Service, TOKEN_VARIABLE};

/// What `dcx serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub socket: PathBuf,
    pub http: Option<SocketAddr>,
    pub limits: Limits,
    /// Run sessions' commands through the in-container helper where it can run.
    pub helper: bool,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("Cannot serve on the socket {}: {reason}", path.display())]
    Socket { path: PathBuf, reason: String },
    #[error("Cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error("--http needs a token: set {TOKEN_VARIABLE} in the server's environment.")]
    NoToken,
    #[error("--http {0} is not a loopback address: dcx serve listens on 127.0.0.1 or ::1 only.")]
    NotLoopback(SocketAddr),
    #[error("cannot start: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the server until SIGTERM or SIGINT.
pub fn serve(options: ServeOptions, log: Log) -> Result<(), ServeError> {
    let token = match options.http {
        Some(addr) if !addr.ip().is_loopback() => return Err(ServeError::NotLoopback(addr)),
        Some(_) => Some(
            std::env::var(TOKEN_VARIABLE)
                .ok()
                .filter(|token| !token.is_empty())
                .ok_or(ServeError::NoToken)?,
        ),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(options, token, log));
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn run(options: ServeOptions, token: Option<String>, log: Log) -> Result<(), ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    // The engine's own diagnostics could name commands and env: warnings and errors only.
    let engine_log = log.at_least(Level::Warning);
    let cwd = std::env::current_dir()?;
    let service = Service::new(
        options.limits.clone(),
        log.clone(),
        engine_log,
        cwd,
        Box::new(engines::Connected),
        options.helper,
    );
    let listener = unix::bind(&options.socket).await?;
    log.info(&format!("listening on {}", options.socket.display()));
    let tracker = tokio_util::task::TaskTracker::new();
    let stop = tokio_util::sync::CancellationToken::new();
    let bounds = bounds::Bounds::from_env();
    tracker.spawn(unix::accept(
        listener,
        service.clone(),
        bounds.clone(),
        tracker.clone(),
        stop.clone(),
    ));
    if let (Some(addr), Some(token)) = (options.http, token) {
        let listener =
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|err| ServeError::Listen {
                    addr,
                    reason: err.to_string(),
                })?;
        log.info(&format!("listening on http://{addr}"));
        tracker.spawn(http::accept(
            listener,
            service.clone(),
            Arc::new(token),
            bounds,
            tracker.clone(),
            stop.clone(),
        ));
    }
    let sweeper = {
        let service = service.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                service.sweep().await;
            }
        })
    };
    tokio::select! {
        _ = terminate.recv() => log.info("SIGTERM: shutting down"),
        _ = interrupt.recv() => log.info("SIGINT: shutting down"),
    }
    // Stop accepting and reading; cancel what runs; let the last answers out; within 5 s.
    stop.cancel();
    sweeper.abort();
    let _ = std::fs::remove_file(&options.socket);
    service.shutdown(Duration::from_secs(4)).await;
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_millis(800), tracker.wait()).await;
    log.info("stopped");
    Ok(())
}

#[cfg(test)]
mod tests;
