//! The agent service tested through the transports' entry point, on the in-memory engine.
//!
//! Every request goes through [`super::methods::handle`], as a transport's does, with no daemon and
//! no socket: every method, every error code, limits, idempotent ids, cancel, timeout, truncation,
//! stdin, streams, files, shutdown and the idle sweep.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::engines::Connect;
use super::protocol::Request;
use super::service::{Limits, Service};
use crate::engine::{Engine, EngineError, EngineSettings};
use crate::log::Log;
use crate::runtime::Container;
use crate::runtime::memory::Memory;

/// Connects every session to a fresh in-memory engine holding `c1` (running, with a root
/// filesystem in `root`) and `stopped`; records every exec's argv.
struct Fake {
    root: std::path::PathBuf,
    started: Arc<Mutex<Vec<Vec<String>>>>,
}

#[async_trait]
impl Connect for Fake {
    async fn connect(&self, _: &EngineSettings, log: Log) -> Result<Engine, EngineError> {
        let mut memory = Memory::with_container("c1");
        memory.passwd =
            "root:x:0:0:root:/root:/bin/sh\nvscode:x:1000:1000::/home/vscode:/bin/sh\n".into();
        memory.containers[0].rootfs = Some(self.root.clone());
        memory.containers.push(Container {
            id: "stopped".into(),
            name: "stopped".into(),
            status: "exited".into(),
            ..Container::default()
        });
        memory.started = self.started.clone();
        Ok(Engine::with_runtime(Box::new(memory), log))
    }
}

struct Harness {
    service: Arc<Service>,
    started: Arc<Mutex<Vec<Vec<String>>>>,
    root: tempfile::TempDir,
}

fn limits() -> Limits {
    Limits {
        max_sessions: 2,
        max_execs: 2,
        idle_timeout: Duration::from_secs(60),
        max_timeout: Duration::from_secs(60),
    }
}

fn harness(limits: Limits) -> Harness {
    let root = tempfile::tempdir().unwrap();
    let started = Arc::new(Mutex::new(Vec::new()));
    let fake = Fake {
        root: root.path().to_path_buf(),
        started: started.clone(),
    };
    let service = Service::new(
        limits,
        Log::discard(),
        Log::discard(),
        std::env::temp_dir(),
        Box::new(fake),
        true,
    );
    Harness {
        service,
        started,
        root,
    }
}

impl Harness {
    /// The whole answer line of one request.
    async fn line(&self, method: &str, params: Value) -> Value {
        let (events, _) = mpsc::channel(64);
        let request = Request {
            id: json!(1),
            method: method.into(),
            params: params.as_object().cloned().unwrap_or_default(),
        };
        crate::agent::methods::handle(&self.service, request, &events).await
    }

    async fn ok(&self, method: &str, params: Value) -> Value {
        let answer = self.line(method, params).await;
        assert_eq!(answer["ok"], true, "{method}: {answer}");
        answer["data"].clone()
    }

    /// `(code, message)` of a failed request.
    async fn error(&self, method: &str, params: Value) -> (String, String) {
        let answer = self.line(method, params).await;
        assert_eq!(answer["ok"], false, "{method}: {answer}");
        let text = |key: &str| answer["error"][key].as_str().unwrap().to_owned();
        (text("code"), text("message"))
    }

    async fn session(&self, extra: Value) -> String {
        let mut params = json!({"container_id": "c1", "user": "vscode"});
        for (key, value) in extra.as_object().unwrap() {
            params[key] = value.clone();
        }
        self.ok("session.create", params).await["session_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

mod execs;
mod files;
mod sessions;
mod terminal;
