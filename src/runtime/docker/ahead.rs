//! Requests sent ahead on a remote engine: the startup files' stats and the exec create of a
//! [`Forecast`], pipelined on the spare connection while the container is inspected on the
//! other, so a warm `dcx exec` waits for one round trip where it waited for three (inspect,
//! stats, create).
//!
//! An answer is taken only for the request it was sent for: the stats when the run asks the
//! same paths of the same container, the exec when the run's exec config (everything the
//! create sends) and container are the same, and only a created one. Anything else is asked
//! as usual. An exec created ahead and not taken (the container changed, the startup files
//! changed and the environment was probed again) is left unstarted: the daemon runs nothing
//! for it, and forgets it with the container.

use std::sync::Arc;

use bollard::models::ExecConfig;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

use super::Docker;
use super::dial::{Answer, Piped};
use crate::runtime::{Container, ExecSpec, Forecast};

/// A forecast on its way: what was sent, and the answers once they are in.
pub(super) struct Ahead {
    container_id: String,
    stats: Vec<String>,
    /// The exec config sent, as JSON (compared with the run's own).
    exec: Option<serde_json::Value>,
    /// Taken: the stats' answers (by [`Docker::stats_ahead`]).
    stats_taken: bool,
    answers: Shared<BoxFuture<'static, Option<Arc<Vec<Answer>>>>>,
}

/// The exec's JSON as the create sends it.
fn exec_json(config: &ExecConfig) -> Option<serde_json::Value> {
    serde_json::to_value(config).ok()
}

impl Docker {
    /// Sends `forecast`'s requests on a connection of their own, at once.
    pub(super) fn send_ahead(&self, forecast: Forecast) {
        let mut requests = super::batch::stat_requests(&forecast.container_id, &forecast.stats);
        // An exec whose config does not depend on the API version (a terminal's size does).
        let exec = forecast
            .exec
            .filter(|spec| spec.size.filter(|_| spec.tty).is_none())
            .map(|spec| exec_config(&spec, false));
        let exec = exec.and_then(|config| {
            let json = exec_json(&config)?;
            requests.push(Piped {
                method: "POST",
                target: format!("/containers/{}/exec", forecast.container_id),
                json: Some(serde_json::to_vec(&json).ok()?),
            });
            Some(json)
        });
        if requests.is_empty() {
            return;
        }
        let link = self.link.clone();
        let sent = tokio::spawn(async move { link.pipeline(&requests).await.ok().map(Arc::new) });
        let answers = async move { sent.await.ok().flatten() }.boxed().shared();
        *self.ahead.lock().unwrap_or_else(|e| e.into_inner()) = Some(Ahead {
            container_id: forecast.container_id,
            stats: forecast.stats,
            exec,
            stats_taken: false,
            answers,
        });
    }

    /// The answers to the stats of `paths` in `container`, when they were sent ahead.
    pub(super) async fn stats_ahead(
        &self,
        container: &Container,
        paths: &[String],
    ) -> Option<Vec<Answer>> {
        let answers = {
            let mut ahead = self.ahead.lock().unwrap_or_else(|e| e.into_inner());
            let ahead = ahead.as_mut().filter(|ahead| {
                !ahead.stats_taken && ahead.container_id == container.id && ahead.stats == paths
            })?;
            ahead.stats_taken = true;
            ahead.answers.clone()
        };
        let answers = answers.await?;
        answers.get(..paths.len()).map(<[Answer]>::to_vec)
    }

    /// The id of the exec created ahead for `config` in `container`, when it was. Whatever
    /// was sent ahead is done with afterwards.
    pub(super) async fn exec_ahead(
        &self,
        container: &Container,
        config: &ExecConfig,
    ) -> Option<String> {
        let ahead = self
            .ahead
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        let sent = ahead.exec.as_ref()?;
        if ahead.container_id != container.id || Some(sent) != exec_json(config).as_ref() {
            return None;
        }
        let answers = ahead.answers.await?;
        let created = answers.get(ahead.stats.len())?;
        if created.status != 201 {
            return None;
        }
        #[derive(serde::Deserialize)]
        struct Created {
            #[serde(rename = "Id")]
            id: String,
        }
        serde_json::from_slice::<Created>(&created.body)
            .ok()
            .map(|created| created.id)
    }
}

/// The exec-create config of `spec`; `console_size_honoured`: the daemon takes the terminal's
/// size in the create (else it is set by the command's wrapper).
pub(super) fn exec_config(spec: &ExecSpec, console_size_honoured: bool) -> ExecConfig {
    let size = spec.size.filter(|_| spec.tty);
    let argv = super::unset_argv(&spec.argv, &spec.unset);
    let argv = match size {
        Some(size) if !console_size_honoured => crate::runtime::sized_argv(&argv, size),
        _ => argv,
    };
    ExecConfig {
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(spec.tty),
        console_size: size
            .filter(|_| console_size_honoured)
            .map(|size| vec![usize::from(size.rows), usize::from(size.cols)]),
        env: (!spec.env.is_empty()).then(|| spec.env.clone()),
        cmd: Some(argv),
        user: spec.user.clone(),
        working_dir: spec.cwd.clone(),
        ..Default::default()
    }
}
