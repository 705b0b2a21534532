//! The warm engines `dcx exec` runs through a server on (`methods::attach`): one per engine,
//! container and user, with the in-container helper where it runs.
//!
//! Only what is slow to make and the same for every run is kept here: the helper placed and
//! started for a container and user. Everything a run's outcome depends on (selection,
//! config, environment) is prepared afresh for each run, so nothing kept can go stale; an
//! engine no run used for the server's idle timeout is dropped, and its helper ends with it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::{Engine, EngineSettings, Prepared};
use crate::log::Log;

/// The warm engines attaches run on: one per engine, container and user, with the helper
/// where it runs (else the plain engine, why said once at debug level).
#[derive(Default)]
pub struct WarmTargets {
    entries: tokio::sync::Mutex<Vec<WarmEntry>>,
}

struct WarmEntry {
    settings: EngineSettings,
    container: String,
    user: String,
    engine: Arc<Engine>,
    last_used: Instant,
}

impl WarmTargets {
    /// The engine for `prepared` on `base`'s engine: kept from an earlier attach, else made
    /// warm now (when `helper`).
    pub async fn get(
        &self,
        settings: &EngineSettings,
        base: &Arc<Engine>,
        prepared: &Prepared,
        helper: bool,
        log: &Log,
    ) -> Arc<Engine> {
        let mut entries = self.entries.lock().await;
        let container = &prepared.container.id;
        let user = &prepared.user;
        if let Some(entry) = entries.iter_mut().find(|entry| {
            entry.settings == *settings && entry.container == *container && entry.user == *user
        }) {
            entry.last_used = Instant::now();
            return entry.engine.clone();
        }
        let engine = match helper {
            false => base.clone(),
            true => match base.warm(prepared).await {
                Ok(warm) => Arc::new(warm),
                Err(reason) => {
                    log.debug(&format!(
                        "container {}: plain engine execs ({reason})",
                        prepared.container.name
                    ));
                    base.clone()
                }
            },
        };
        entries.push(WarmEntry {
            settings: settings.clone(),
            container: container.clone(),
            user: user.clone(),
            engine: engine.clone(),
            last_used: Instant::now(),
        });
        engine
    }

    /// Drops the engines no attach used for `idle` (their helpers end with them).
    pub async fn sweep(&self, idle: Duration) {
        self.entries
            .lock()
            .await
            .retain(|entry| entry.last_used.elapsed() <= idle);
    }
}
