//! Foreseeing a warm exec on a remote engine: the last run's answers, replayed, tell which
//! requests this run will make before its command starts, and the runtime sends them ahead
//! ([`Runtime::foresee`]).
//!
//! The answers a preparation took (the container inspected, the startup files' stats) are
//! recorded ([`crate::runtime::replay`]) in the probe cache's folder, one file per endpoint and
//! selection, rewritten only when they changed. The next run walks the same preparation on a
//! replay of them, with its own request (its config, `--remote-env`, user), and, when that walk
//! needs nothing the recording lacks (a probe, a lookup), the stats it asked and the exec it
//! ends with are the forecast. The real preparation then runs as always; the runtime takes an
//! answer sent ahead only for the very request it was sent for.

use sha2::{Digest, Sha256};

use super::{Command, PrepareRequest, prepare};
use crate::env::ProbeCache;
use crate::log::Log;
use crate::runtime::replay::{Recorded, Replay};
use crate::runtime::{Forecast, Runtime};

/// The format of a recording's file; bump it when [`Recorded`] changes.
const FORMAT: u32 = 1;

/// Where one endpoint and selection's recording is kept.
pub(super) struct Store {
    cache: ProbeCache,
    name: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct File {
    format: u32,
    recorded: Recorded,
}

impl Store {
    /// The recording of `request`'s selection on `runtime`, when foreseeing saves it anything
    /// (a remote engine) and there is a cache to keep it in (not for `--dry-run`).
    pub(super) fn of(runtime: &dyn Runtime, request: &PrepareRequest) -> Option<Self> {
        if !runtime.foresees() || request.read_only {
            return None;
        }
        let cache = ProbeCache::new(request.probe_cache.clone()?);
        let mut hasher = Sha256::new();
        let selection = serde_json::json!([
            runtime.endpoint(),
            request.cwd,
            request.container_id,
            request.id_labels,
            request.workspace_folder,
            request.config,
            request.override_config,
        ]);
        hasher.update(selection.to_string().as_bytes());
        let hex: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Some(Self {
            cache,
            name: format!("answers-{hex}.json"),
        })
    }

    /// The recording, if one is kept and usable.
    pub(super) fn load(&self, log: &Log) -> Option<Recorded> {
        let (path, bytes) = match self.cache.read(&self.name) {
            Ok(found) => found?,
            Err(miss) => {
                log.debug(&miss.to_string());
                return None;
            }
        };
        match serde_json::from_slice::<File>(&bytes) {
            Ok(file) if file.format == FORMAT => Some(file.recorded),
            _ => {
                log.debug(&format!(
                    "ignoring {}: not a recording of this dcx",
                    path.display()
                ));
                None
            }
        }
    }

    pub(super) fn save(&self, recorded: Recorded, log: &Log) {
        let file = File {
            format: FORMAT,
            recorded,
        };
        let written = serde_json::to_vec(&file)
            .map_err(|err| err.to_string())
            .and_then(|json| {
                self.cache
                    .write(&self.name, &json)
                    .map_err(|err| err.to_string())
            });
        if let Err(err) = written {
            log.debug(&format!("Cannot keep the engine's answers: {err}"));
        }
    }
}

/// The requests `request` and `command` will make, by a walk of the preparation on `recorded`;
/// `None` when the walk needs more than the recording holds.
pub(super) async fn forecast(
    runtime: &dyn Runtime,
    recorded: &Recorded,
    request: &PrepareRequest,
    command: &Command,
) -> Option<Forecast> {
    let replay = Replay::new(recorded, runtime);
    let request = PrepareRequest {
        read_only: true,
        ..request.clone()
    };
    let prepared = prepare::prepare(&replay, &request, &Log::discard())
        .await
        .ok()?;
    Some(Forecast {
        container_id: prepared.container.id.clone(),
        stats: replay.stats_asked(),
        exec: Some(prepared.spec(command)),
    })
}
