//! The warm path: one user's commands run by a helper in the container, started once.
//!
//! [`Warm`] is a [`Runtime`] around another: every call goes to the engine as before, except
//! starting a process as the helper's user, which the helper does by forking (2–3 ms instead of
//! an engine exec's ~70 ms). The helper (`helper/`, `docs/helper-protocol.md`) is placed at a
//! hash-keyed path on the container's root filesystem and started by the same engine exec that
//! user's commands would get, so every process attribute is the engine's own (`place`).
//! Whatever it cannot do exactly falls back to the plain engine exec, which stays the
//! reference: a command that fails to start is replayed through it (its error text is the
//! engine's), and a helper that died is started again at the next command, or given up for
//! the plain exec (for the rest of the session) when that fails.

pub mod binary;
mod conn;
mod files;
mod place;

use std::sync::Arc;

use async_trait::async_trait;

use super::{
    ArchiveStream, Container, ExecSpec, HandOver, LogOptions, OutputStream, Owner, PathStat,
    ProcessInfo, Runtime, RuntimeError, Session,
};
use crate::log::Log;
use conn::{Conn, RunError};

pub use files::{UserFileError, UserRead};
pub use place::Unplaced;

/// A runtime whose commands as `user` in `container` go through the helper.
pub struct Warm {
    inner: Arc<dyn Runtime>,
    container: Container,
    user: String,
    log: Log,
    /// The running helper; `None` once it could not be started again (the session's
    /// commands then take the plain engine exec, without trying again each time).
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
}

impl Warm {
    /// Places and starts the helper for `user` in `container`; the reason when it cannot be
    /// used (the caller then keeps the plain engine exec).
    pub async fn start(
        inner: Arc<dyn Runtime>,
        container: &Container,
        user: &str,
        log: Log,
    ) -> Result<Self, Unplaced> {
        let conn = place::start(inner.as_ref(), container, user, &log).await?;
        log.debug(&format!(
            "helper: running as pid {} in container {} for user {user}",
            conn.pid, container.name
        ));
        Ok(Self {
            inner,
            container: container.clone(),
            user: user.to_owned(),
            log,
            conn: tokio::sync::Mutex::new(Some(Arc::new(conn))),
        })
    }

    /// Whether the helper runs in `container`.
    pub fn serves(&self, container: &Container) -> bool {
        container.id == self.container.id
    }

    /// The running helper, started again when it is gone; `None` when that fails.
    async fn conn(&self) -> Option<Arc<Conn>> {
        let mut conn = self.conn.lock().await;
        match conn.as_ref() {
            Some(alive) if alive.alive() => return Some(alive.clone()),
            Some(_) => {}
            // Given up on: placing it again would cost every command a failed attempt.
            None => return None,
        }
        // Gone (killed, the container restarted): placed and started again.
        match place::start(self.inner.as_ref(), &self.container, &self.user, &self.log).await {
            Ok(started) => {
                self.log.debug("helper: started again");
                let started = Arc::new(started);
                *conn = Some(started.clone());
                Some(started)
            }
            Err(reason) => {
                self.log.debug(&format!(
                    "helper: cannot start again ({reason}): a plain engine exec"
                ));
                *conn = None;
                None
            }
        }
    }
}

#[async_trait]
impl Runtime for Warm {
    async fn start(&self, container: &Container, spec: &ExecSpec) -> Result<Session, RuntimeError> {
        let ours =
            container.id == self.container.id && spec.user.as_deref() == Some(self.user.as_str());
        if ours && let Some(conn) = self.conn().await {
            match conn.run(spec).await {
                Ok(session) => return Ok(session),
                Err(RunError::Failed(reason)) => self.log.debug(&format!(
                    "helper: the command did not start ({reason}): replayed by the engine"
                )),
                Err(RunError::Lost) => self.log.debug("helper: lost; a plain engine exec"),
            }
        }
        self.inner.start(container, spec).await
    }

    async fn inspect(&self, id: &str) -> Result<Container, RuntimeError> {
        self.inner.inspect(id).await
    }

    async fn find_by_labels(&self, labels: &[String]) -> Result<Option<Container>, RuntimeError> {
        self.inner.find_by_labels(labels).await
    }

    fn endpoint(&self) -> &str {
        self.inner.endpoint()
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn start_hint(&self, container: &Container) -> String {
        self.inner.start_hint(container)
    }

    async fn top(&self, container: &Container) -> Result<Vec<ProcessInfo>, RuntimeError> {
        self.inner.top(container).await
    }

    fn logs(
        &self,
        container: &Container,
        options: &LogOptions,
    ) -> Result<OutputStream, RuntimeError> {
        self.inner.logs(container, options)
    }

    async fn stat_path(&self, container: &Container, path: &str) -> Result<PathStat, RuntimeError> {
        self.inner.stat_path(container, path).await
    }

    async fn stat_paths(
        &self,
        container: &Container,
        paths: &[String],
    ) -> Vec<Result<PathStat, RuntimeError>> {
        self.inner.stat_paths(container, paths).await
    }

    async fn read_archive(
        &self,
        container: &Container,
        path: &str,
    ) -> Result<ArchiveStream, RuntimeError> {
        self.inner.read_archive(container, path).await
    }

    async fn write_archive(
        &self,
        container: &Container,
        dir: &str,
        tar: ArchiveStream,
        owner: Option<Owner>,
    ) -> Result<(), RuntimeError> {
        self.inner.write_archive(container, dir, tar, owner).await
    }

    async fn list_dir(
        &self,
        container: &Container,
        path: &str,
        limit: usize,
    ) -> Result<Option<Vec<PathStat>>, RuntimeError> {
        self.inner.list_dir(container, path, limit).await
    }

    async fn rename_path(
        &self,
        container: &Container,
        from: &str,
        to: &str,
    ) -> Result<(), RuntimeError> {
        self.inner.rename_path(container, from, to).await
    }

    fn host_root(&self, container: &Container) -> Option<std::path::PathBuf> {
        self.inner.host_root(container)
    }

    fn calls_at_once(&self) -> usize {
        self.inner.calls_at_once()
    }

    async fn architecture(&self, container: &Container) -> Option<String> {
        self.inner.architecture(container).await
    }

    fn hand_over(
        &self,
        _container: &Container,
        _spec: &ExecSpec,
    ) -> Result<Option<HandOver>, RuntimeError> {
        Ok(None)
    }
}
