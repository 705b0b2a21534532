//! `system.ping` and `system.stats`: the server's own state.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::agent::methods::session::CONTROL_WITHIN;
use crate::agent::service::Service;

/// The parameters of a method that takes none.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// `system.ping`'s answer.
#[derive(Debug, Serialize)]
pub struct Pong {
    pub pong: bool,
    pub version: &'static str,
    pub uptime_ms: u64,
}

pub fn ping(service: &Service) -> Pong {
    Pong {
        pong: true,
        version: env!("CARGO_PKG_VERSION"),
        uptime_ms: service.started.elapsed().as_millis() as u64,
    }
}

/// `system.stats`'s answer (never env values).
#[derive(Debug, Serialize)]
pub struct Stats {
    pub sessions: usize,
    pub running_execs: usize,
    pub limits: LimitsShown,
    pub uptime_ms: u64,
    pub per_session: Vec<SessionStats>,
}

/// The server's limits.
#[derive(Debug, Serialize)]
pub struct LimitsShown {
    pub max_sessions: usize,
    pub max_execs: usize,
    pub idle_timeout_s: u64,
    pub max_timeout_ms: u64,
}

/// One session's share.
#[derive(Debug, Serialize)]
pub struct SessionStats {
    pub session_id: String,
    pub container_id: String,
    pub running_execs: Vec<String>,
    /// Zombie processes in its container (`None`: the engine could not tell).
    pub container_zombies: Option<u64>,
}

pub async fn stats(service: &Arc<Service>) -> Stats {
    let sessions = service.sessions();
    // Zombies, once per container.
    let mut containers: Vec<(String, Arc<crate::agent::session::Session>)> = Vec::new();
    for session in &sessions {
        let id = &session.prepared.container.id;
        if !containers.iter().any(|(seen, _)| seen == id) {
            containers.push((id.clone(), session.clone()));
        }
    }
    // Each engine has a second to count; else the count it gave last time (or none).
    let counts = futures_util::future::join_all(containers.iter().map(|(_, session)| async {
        let counted = tokio::time::timeout(
            CONTROL_WITHIN,
            session.engine.zombies(&session.prepared.container),
        )
        .await;
        let mut last = session
            .last_zombies
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match counted {
            Ok(count) => {
                if count.is_some() {
                    *last = count;
                }
                count
            }
            Err(_) => *last,
        }
    }))
    .await;
    let zombies: Vec<(&str, Option<u64>)> = containers
        .iter()
        .map(|(id, _)| id.as_str())
        .zip(counts)
        .collect();
    let limits = &service.limits;
    Stats {
        sessions: sessions.len(),
        running_execs: service.running_execs(),
        limits: LimitsShown {
            max_sessions: limits.max_sessions,
            max_execs: limits.max_execs,
            idle_timeout_s: limits.idle_timeout.as_secs(),
            max_timeout_ms: limits.max_timeout.as_millis() as u64,
        },
        uptime_ms: service.started.elapsed().as_millis() as u64,
        per_session: sessions
            .iter()
            .map(|session| SessionStats {
                session_id: session.id.clone(),
                container_id: session.prepared.container.id.clone(),
                running_execs: session.running().iter().map(|e| e.id.clone()).collect(),
                container_zombies: zombies
                    .iter()
                    .find(|(id, _)| *id == session.prepared.container.id)
                    .and_then(|(_, count)| *count),
            })
            .collect(),
    }
}
