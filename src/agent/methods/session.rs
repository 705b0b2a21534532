//! `session.create`, `list`, `info`, `reset` and `destroy`: sessions bound to dev containers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::agent::params::{Pairs, Text};
use crate::agent::protocol::Failure;
use crate::agent::protocol::random_id;
use crate::agent::service::{Service, TOKEN_VARIABLE};
pub use crate::agent::session::Create;
use crate::agent::session::{Session, SessionInfo, Transport};
use crate::engine::{RuntimeKind, TargetSpec};
use crate::env::{ProbeCache, ProbeMode};

/// The longest idle timeout a session may ask for: a week.
const MAX_IDLE_S: u64 = 7 * 24 * 3600;

/// The engine, as the protocol names it.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Docker,
    Crun,
}

/// `session.create`'s parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    pub workspace_folder: Option<Text>,
    pub container_id: Option<Text>,
    pub id_labels: Option<Vec<Text>>,
    pub config: Option<Text>,
    pub runtime: Option<Runtime>,
    pub crun_root: Option<Text>,
    pub crun_path: Option<Text>,
    pub docker_path: Option<Text>,
    pub user: Option<Text>,
    pub env: Option<Pairs>,
    pub cwd: Option<Text>,
    pub idle_timeout_s: Option<u64>,
    pub concurrent: Option<bool>,
    /// `false`: plain engine execs, even where the helper could run the commands.
    pub helper: Option<bool>,
}

impl CreateParams {
    /// The typed request; relative paths are the server's directory's.
    pub fn into_request(self, cwd: &Path) -> Result<Create, Failure> {
        // An empty string is a mistake, never "not given": said, naming the parameter.
        for (name, value) in [
            ("container_id", &self.container_id),
            ("workspace_folder", &self.workspace_folder),
            ("config", &self.config),
            ("cwd", &self.cwd),
            ("crun_root", &self.crun_root),
            ("crun_path", &self.crun_path),
            ("docker_path", &self.docker_path),
            ("user", &self.user),
        ] {
            if value.as_ref().is_some_and(|text| text.0.is_empty()) {
                return Err(Failure::bad(format!(
                    "`{name}` is empty: give a value or leave it out"
                )));
            }
        }
        if let Some(label) = self.id_labels.iter().flatten().find(|label| {
            label
                .0
                .split_once('=')
                .is_none_or(|(name, _)| name.is_empty())
        }) {
            return Err(Failure::bad(format!(
                "`id_labels`: `{}` is not `name=value`",
                label.0.escape_debug()
            )));
        }
        let selected = self.container_id.is_some()
            || self
                .id_labels
                .as_ref()
                .is_some_and(|labels| !labels.is_empty())
            || self.workspace_folder.is_some();
        if !selected && !crate::config::has_config(cwd) {
            return Err(Failure::bad(format!(
                "no dev container selected: give `container_id`, `id_labels` or `workspace_folder` (the server's folder {} has no .devcontainer/devcontainer.json or .devcontainer.json)",
                cwd.display()
            )));
        }
        let path = |text: Option<Text>| Text::present(text).map(|path| cwd.join(path));
        let idle =
            crate::agent::params::at_most("idle_timeout_s", self.idle_timeout_s, MAX_IDLE_S)?;
        Ok(Create {
            target: TargetSpec {
                container_id: Text::present(self.container_id),
                id_labels: self
                    .id_labels
                    .unwrap_or_default()
                    .into_iter()
                    .map(|label| label.0)
                    .collect(),
                workspace_folder: path(self.workspace_folder),
                config: path(self.config),
                runtime: match self.runtime {
                    None | Some(Runtime::Docker) => RuntimeKind::Docker,
                    Some(Runtime::Crun) => RuntimeKind::Crun,
                },
                docker_path: Text::present(self.docker_path),
                crun_root: Text::present(self.crun_root).map(Into::into),
                crun_path: Text::present(self.crun_path).map(Into::into),
            },
            user: Text::present(self.user),
            env: self.env.unwrap_or_default().0,
            cwd: self.cwd.map(|cwd| cwd.0),
            idle_timeout: idle.map(|seconds| Duration::from_secs(seconds.max(1))),
            concurrent: self.concurrent.unwrap_or(false),
            helper: self.helper,
        })
    }
}

/// The parameters of a method on one session.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRef {
    pub session_id: Text,
}

/// `session.create`'s answer.
#[derive(Debug, Serialize)]
pub struct Created {
    pub session_id: String,
    pub container_id: String,
    pub container_name: String,
    pub user: String,
    pub cwd: String,
    pub runtime: &'static str,
    /// `helper` or `exec`: how its commands start.
    pub transport: &'static str,
    /// Why the session keeps no state between commands, when it keeps none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `session.list`'s answer.
#[derive(Debug, Serialize)]
pub struct Sessions {
    pub sessions: Vec<SessionInfo>,
}

/// `session.reset`'s answer.
#[derive(Debug, Serialize)]
pub struct ResetAnswer {
    pub session_id: String,
    pub cwd: String,
}

/// `session.destroy`'s answer.
#[derive(Debug, Serialize)]
pub struct Destroyed {
    pub session_id: String,
    pub destroyed: bool,
}

/// Prepares the dev container once and registers the session.
pub async fn create(service: &Arc<Service>, create: Create) -> Result<Created, Failure> {
    service.open()?;
    let permit = service.session_permit()?;
    let session = Arc::new(prepare(service, create, random_id("s")).await?);
    let created = Created {
        session_id: session.id.clone(),
        container_id: session.prepared.container.id.clone(),
        container_name: session.prepared.container.name.clone(),
        user: session.prepared.user.clone(),
        cwd: session.prepared.cwd.clone(),
        runtime: session.engine.name(),
        transport: session.transport.name(),
        note: session.state_note(),
    };
    service.add_session(session, permit);
    Ok(created)
}

/// A session `id` on the dev container `create` selects, prepared (config, user, probe) and
/// with its transport chosen.
async fn prepare(service: &Service, create: Create, id: String) -> Result<Session, Failure> {
    let request = prepare_request(service, &create)?;
    let engine = service
        .engines
        .get(create.target.settings(&service.cwd))
        .await?;
    let mut prepared = engine.prepare(&request).await?;
    prepared
        .env
        .retain(|entry| entry.split('=').next() != Some(TOKEN_VARIABLE));
    let transport = transport(service, &engine, &prepared, create.helper).await;
    let idle_timeout = create.idle_timeout.unwrap_or(service.limits.idle_timeout);
    let session = Session::new(id, transport, prepared, create, idle_timeout);
    session.place_state().await;
    Ok(session)
}

fn prepare_request(
    service: &Service,
    create: &Create,
) -> Result<crate::engine::PrepareRequest, Failure> {
    let mut request = create
        .target
        .prepare_request(&service.cwd)
        .map_err(|err| Failure::bad(err.to_string()))?;
    request.user = create.user.clone();
    request.workdir = create.cwd.clone();
    request.remote_env = create.env.clone();
    request.default_user_env_probe = ProbeMode::LoginInteractiveShell;
    request.probe_cache = ProbeCache::default_dir();
    request.host_env = service.host_env.clone();
    Ok(request)
}

/// What became of a session's dev container after a call on it failed.
pub enum Followed {
    /// It is still the one its selectors find: the failure was the call's own.
    Same,
    /// It was rebuilt: the session now runs on the new one (same id; shell state reset), which
    /// holds the note saying so for the next answer ([`Session::take_note`]).
    Moved { session: Arc<Session> },
}

/// After a failure on `session`: finds its dev container again by the selectors it was
/// created with. The same container: [`Followed::Same`]. Another one (a rebuild): the session
/// moves to it, under the same id. None: `no_such_container`, naming the gone one.
pub async fn follow(service: &Service, session: &Arc<Session>) -> Result<Followed, Failure> {
    let gone = &session.prepared.container;
    let request = prepare_request(service, &session.origin)?;
    let engine = service
        .engines
        .get(session.origin.target.settings(&service.cwd))
        .await?;
    match engine.locate(&request).await {
        Ok(found) if found.id == gone.id => return Ok(Followed::Same),
        Ok(_) => {}
        Err(err) if err.kind() == crate::engine::ErrorKind::NoSuchContainer => {
            return Err(Failure::new(
                crate::agent::protocol::Code::NoSuchContainer,
                format!(
                    "The session's dev container {} ({}) is gone, and no container answers its selectors: {err}",
                    gone.name,
                    short(&gone.id)
                ),
            ));
        }
        Err(err) => return Err(err.into()),
    }
    let moved = Arc::new(prepare(service, session.origin.clone(), session.id.clone()).await?);
    let note = format!(
        "The dev container was rebuilt ({} is now {}): the session moved to it, and its shell state (cwd, exports) was reset.",
        short(&gone.id),
        short(&moved.prepared.container.id)
    );
    service.log.info(&format!("session {}: {note}", session.id));
    moved.set_note(note);
    service.replace_session(moved.clone());
    Ok(Followed::Moved { session: moved })
}

/// A container id as `docker ps` shows it.
fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// The session's engine: the in-container helper's when the server and the request want it and
/// it can run there, else the plain one (the reason said at debug level and in the info).
async fn transport(
    service: &Service,
    engine: &Arc<crate::engine::Engine>,
    prepared: &crate::engine::Prepared,
    wanted: Option<bool>,
) -> (Arc<crate::engine::Engine>, Transport) {
    if !wanted.unwrap_or(service.helper) {
        return (engine.clone(), Transport::Exec(None));
    }
    match engine.warm(prepared).await {
        Ok(warm) => (Arc::new(warm), Transport::Helper),
        Err(reason) => {
            service.log.debug(&format!(
                "container {}: plain engine execs ({reason})",
                prepared.container.name
            ));
            (engine.clone(), Transport::Exec(Some(reason.to_string())))
        }
    }
}

pub fn list(service: &Service) -> Sessions {
    Sessions {
        sessions: service.sessions().iter().map(|s| s.info()).collect(),
    }
}

pub async fn info(service: &Service, id: &str) -> Result<SessionInfo, Failure> {
    let session = service.session(id)?;
    let mut info = session.info();
    // The engine has a second to say where the session is; else what it said last time.
    let asked = async {
        let cwd = session.current_cwd().await;
        let removed = matches!(
            session.engine.stat_path(&session.prepared.container, &cwd).await,
            Err(err) if err.kind() == crate::engine::ErrorKind::NoSuchPath
        );
        (cwd, removed)
    };
    // Whether its container is still there and running, in the same second.
    let state = async {
        match tokio::time::timeout(
            CONTROL_WITHIN,
            session.engine.inspect(&session.prepared.container),
        )
        .await
        {
            Ok(seen) => crate::agent::session::container_state(seen),
            Err(_) => "engine_unreachable",
        }
    };
    let (asked, state) = tokio::join!(tokio::time::timeout(CONTROL_WITHIN, asked), state);
    *session.last_state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    info.state = state;
    let lost = match (&asked, state) {
        (Err(_), _) => Some(format!(
            "The engine did not answer within {} s",
            CONTROL_WITHIN.as_secs()
        )),
        (_, "engine_unreachable") => Some("The engine cannot be reached".to_owned()),
        (_, "no_such_container") => Some("The session's container is gone".to_owned()),
        (_, "container_not_running") => Some("The session's container is not running".to_owned()),
        _ => None,
    };
    let (cwd, removed) = match (asked, lost) {
        (Ok(known), None) => {
            *session.last_known.lock().unwrap_or_else(|e| e.into_inner()) = Some(known.clone());
            known
        }
        (_, lost) => {
            info.engine_note = Some(format!(
                "{}: `cwd` is what it said last time.",
                lost.unwrap_or_default()
            ));
            session
                .last_known
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .unwrap_or_else(|| (session.prepared.cwd.clone(), false))
        }
    };
    info.cwd_removed = removed;
    info.cwd = Some(cwd);
    Ok(info)
}

/// How long a control method (`session.info`, `system.stats`, `exec.cancel`) waits for the
/// engine before answering with what it knows.
pub const CONTROL_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Back to the cwd and env of creation: a new state file, the old one removed.
pub async fn reset(service: &Service, id: &str) -> Result<ResetAnswer, Failure> {
    let session = service.session(id)?;
    let old = session.reset();
    let cwd = format!("{old}.cwd");
    session.housekeeping(&["rm", "-f", "--", &old, &cwd]).await;
    Ok(ResetAnswer {
        session_id: session.id.clone(),
        cwd: session.prepared.cwd.clone(),
    })
}

pub async fn destroy(service: &Service, id: &str) -> Result<Destroyed, Failure> {
    let session = service.session(id)?;
    service.destroy(&session).await;
    Ok(Destroyed {
        session_id: session.id.clone(),
        destroyed: true,
    })
}
