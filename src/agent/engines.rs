//! The engines sessions run on: connected once per settings, injectable for tests.
//!
//! [`Connect`] is how the service reaches an engine: [`Connected`] by default (the real Docker
//! daemon or crun); unit tests give an in-memory engine instead. [`Engines`] keeps each
//! connected engine for every later session with the same settings.

use std::sync::Arc;

use async_trait::async_trait;

use crate::engine::{Engine, EngineError, EngineSettings};
use crate::log::Log;

/// A way to connect to an engine.
#[async_trait]
pub trait Connect: Send + Sync {
    async fn connect(&self, settings: &EngineSettings, log: Log) -> Result<Engine, EngineError>;
}

/// The real engines ([`Engine::connect`]).
pub struct Connected;

#[async_trait]
impl Connect for Connected {
    async fn connect(&self, settings: &EngineSettings, log: Log) -> Result<Engine, EngineError> {
        Engine::connect(settings, log).await
    }
}

/// Connected engines, one per settings.
pub struct Engines {
    connect: Box<dyn Connect>,
    /// The engine's own diagnostics (warnings and errors only: they could name commands).
    log: Log,
    known: tokio::sync::Mutex<Vec<(EngineSettings, Arc<Engine>)>>,
}

impl Engines {
    pub fn new(connect: Box<dyn Connect>, log: Log) -> Self {
        Self {
            connect,
            log,
            known: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    /// The engine for `settings`, connected on first use.
    pub async fn get(&self, settings: EngineSettings) -> Result<Arc<Engine>, EngineError> {
        let mut known = self.known.lock().await;
        if let Some((_, engine)) = known.iter().find(|(seen, _)| *seen == settings) {
            return Ok(engine.clone());
        }
        let engine = Arc::new(self.connect.connect(&settings, self.log.clone()).await?);
        known.push((settings, engine.clone()));
        Ok(engine)
    }
}
