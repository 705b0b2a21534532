//! What bounds the server's own resources whatever its clients do: connections per transport,
//! how long an HTTP connection may sit without a request, requests in flight on one unix
//! connection, and the bytes of finished results kept over the whole server.
//!
//! Each transport has its own connection cap (a semaphore permit held by each connection's
//! task), so a flood on one never starves the other. A connection over the cap is accepted and
//! closed at once with a `connection_limit` answer: the file descriptor is never held. The
//! figures can be changed from the server's environment (tests shorten the idle timeout).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections each transport serves at once (`DCX_SERVE_MAX_CONNECTIONS`).
const MAX_CONNECTIONS: usize = 256;
/// How long an HTTP connection may go without a whole request header, fresh or between two
/// requests (`DCX_SERVE_HTTP_IDLE_MS`).
const HTTP_IDLE: Duration = Duration::from_secs(30);
/// Requests of one unix connection being answered at once; more wait to be read.
pub const IN_FLIGHT: usize = 64;
/// How long to wait before accepting again when accepting failed (out of descriptors).
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The bounds of one server.
#[derive(Debug, Clone)]
pub struct Bounds {
    pub max_connections: usize,
    pub http_idle: Duration,
}

impl Bounds {
    /// The defaults, or what the server's environment says.
    pub fn from_env() -> Self {
        let number = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|value| value.trim().parse::<u64>().ok())
                .filter(|value| *value > 0)
        };
        Self {
            max_connections: number("DCX_SERVE_MAX_CONNECTIONS")
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(MAX_CONNECTIONS),
            http_idle: number("DCX_SERVE_HTTP_IDLE_MS").map_or(HTTP_IDLE, Duration::from_millis),
        }
    }
}

/// The connection cap of one transport.
#[derive(Clone)]
pub struct Connections {
    permits: Arc<Semaphore>,
    pub max: usize,
}

impl Connections {
    pub fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// A permit for one more connection, or `None` at the cap.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }

    /// The message a refused connection gets.
    pub fn refusal(&self) -> String {
        format!(
            "the server serves {} connections on this transport, its limit: try again later",
            self.max
        )
    }
}
