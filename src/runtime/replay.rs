//! One run's engine answers, recorded and replayed, so the next run can foresee its requests.
//!
//! [`Recording`] wraps a runtime and notes the answers a preparation takes from it: each
//! container inspected or found by labels, and each path's stat. [`Replay`] is a runtime that
//! gives those answers back and nothing else: every other call fails, so a walk of the same
//! preparation on it gets as far as the last run got without starting anything (a probe, a
//! lookup) only when nothing beyond the recorded answers is needed. What that walk asked
//! ([`Replay::stats_asked`]) and the exec it ends with make the [`Forecast`] a remote engine
//! sends ahead; the engine takes an answer sent ahead only for the very request it was sent
//! for, so a stale recording costs nothing but the unused requests.
//!
//! A recording holds what the engine shows anyone who may use it (a container's labels and
//! configured environment, file sizes and times), never a probed environment or a secret of
//! the request.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{
    ArchiveStream, Container, ExecSpec, FileKind, Forecast, HandOver, Listed, LogOptions,
    OutputStream, Owner, PathStat, ProcessInfo, Runtime, RuntimeError, Session,
};

/// The answers of one preparation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// Containers by the reference they were inspected by.
    inspected: BTreeMap<String, Container>,
    /// Containers found by a set of labels (joined by newlines), or none.
    found: BTreeMap<String, Option<Container>>,
    /// Each path's stat, `None` where there was no such path, by container id and path.
    stats: BTreeMap<String, Option<SavedStat>>,
}

impl Recorded {
    fn stat_key(container: &Container, path: &str) -> String {
        format!("{}:{path}", container.id)
    }

    fn note_stat(
        &mut self,
        container: &Container,
        path: &str,
        stat: &Result<PathStat, RuntimeError>,
    ) {
        let saved = match stat {
            Ok(stat) => Some(SavedStat::from(stat)),
            Err(RuntimeError::NoSuchPath { .. }) => None,
            // Not an answer to count on.
            Err(_) => return,
        };
        self.stats.insert(Self::stat_key(container, path), saved);
    }
}

/// A [`PathStat`] as a recording keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SavedStat {
    name: String,
    name_bytes: Option<Vec<u8>>,
    kind: FileKind,
    size: u64,
    mode: u32,
    mtime: i64,
    mtime_nsec: u32,
    link_target: Option<String>,
}

impl From<&PathStat> for SavedStat {
    fn from(stat: &PathStat) -> Self {
        Self {
            name: stat.name.clone(),
            name_bytes: stat.name_bytes.clone(),
            kind: stat.kind,
            size: stat.size,
            mode: stat.mode,
            mtime: stat.mtime,
            mtime_nsec: stat.mtime_nsec,
            link_target: stat.link_target.clone(),
        }
    }
}

impl From<&SavedStat> for PathStat {
    fn from(saved: &SavedStat) -> Self {
        Self {
            name: saved.name.clone(),
            name_bytes: saved.name_bytes.clone(),
            kind: saved.kind,
            size: saved.size,
            mode: saved.mode,
            mtime: saved.mtime,
            mtime_nsec: saved.mtime_nsec,
            link_target: saved.link_target.clone(),
        }
    }
}

/// A runtime whose answers are noted as they pass.
pub struct Recording<'a> {
    inner: &'a dyn Runtime,
    recorded: Mutex<Recorded>,
}

impl<'a> Recording<'a> {
    pub fn new(inner: &'a dyn Runtime) -> Self {
        Self {
            inner,
            recorded: Mutex::new(Recorded::default()),
        }
    }

    /// What was recorded.
    pub fn finish(self) -> Recorded {
        self.recorded
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn note(&self, note: impl FnOnce(&mut Recorded)) {
        note(&mut self.recorded.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

#[async_trait]
impl Runtime for Recording<'_> {
    async fn inspect(&self, id: &str) -> Result<Container, RuntimeError> {
        let found = self.inner.inspect(id).await;
        if let Ok(container) = &found {
            self.note(|r| {
                r.inspected.insert(id.to_owned(), container.clone());
            });
        }
        found
    }

    async fn find_by_labels(&self, labels: &[String]) -> Result<Option<Container>, RuntimeError> {
        let found = self.inner.find_by_labels(labels).await;
        if let Ok(container) = &found {
            self.note(|r| {
                r.found.insert(labels.join("\n"), container.clone());
            });
        }
        found
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

    async fn start(&self, container: &Container, spec: &ExecSpec) -> Result<Session, RuntimeError> {
        self.inner.start(container, spec).await
    }

    async fn running(&self) -> Result<Vec<Listed>, RuntimeError> {
        self.inner.running().await
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
        let stat = self.inner.stat_path(container, path).await;
        self.note(|r| r.note_stat(container, path, &stat));
        stat
    }

    async fn stat_paths(
        &self,
        container: &Container,
        paths: &[String],
    ) -> Vec<Result<PathStat, RuntimeError>> {
        let stats = self.inner.stat_paths(container, paths).await;
        self.note(|r| {
            for (path, stat) in paths.iter().zip(&stats) {
                r.note_stat(container, path, stat);
            }
        });
        stats
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

    async fn architecture(&self, container: &Container) -> Option<String> {
        self.inner.architecture(container).await
    }

    fn calls_at_once(&self) -> usize {
        self.inner.calls_at_once()
    }

    fn foresees(&self) -> bool {
        self.inner.foresees()
    }

    fn foresee(&self, forecast: Forecast) {
        self.inner.foresee(forecast);
    }

    fn hand_over(
        &self,
        container: &Container,
        spec: &ExecSpec,
    ) -> Result<Option<HandOver>, RuntimeError> {
        self.inner.hand_over(container, spec)
    }
}

/// A runtime that answers from a recording, for a walk that starts nothing. What is not the
/// engine's answer (its endpoint and name, the host's view of a root) is the real runtime's.
pub struct Replay<'a> {
    recorded: &'a Recorded,
    like: &'a dyn Runtime,
    /// The stat batches the walk asked, in order.
    asked: Mutex<Vec<Vec<String>>>,
}

impl<'a> Replay<'a> {
    /// Answers from `recorded` in the place of `like`.
    pub fn new(recorded: &'a Recorded, like: &'a dyn Runtime) -> Self {
        Self {
            recorded,
            like,
            asked: Mutex::new(Vec::new()),
        }
    }

    /// The first batch of stats the walk asked (the startup files').
    pub fn stats_asked(&self) -> Vec<String> {
        let asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        asked.first().cloned().unwrap_or_default()
    }

    fn unrecorded(&self) -> RuntimeError {
        RuntimeError::Unsupported("not in the recording".to_owned())
    }
}

#[async_trait]
impl Runtime for Replay<'_> {
    async fn inspect(&self, id: &str) -> Result<Container, RuntimeError> {
        self.recorded
            .inspected
            .get(id)
            .cloned()
            .ok_or_else(|| self.unrecorded())
    }

    async fn find_by_labels(&self, labels: &[String]) -> Result<Option<Container>, RuntimeError> {
        self.recorded
            .found
            .get(&labels.join("\n"))
            .cloned()
            .ok_or_else(|| self.unrecorded())
    }

    fn endpoint(&self) -> &str {
        self.like.endpoint()
    }

    fn name(&self) -> &'static str {
        self.like.name()
    }

    fn start_hint(&self, _container: &Container) -> String {
        String::new()
    }

    fn host_root(&self, container: &Container) -> Option<std::path::PathBuf> {
        self.like.host_root(container)
    }

    fn calls_at_once(&self) -> usize {
        self.like.calls_at_once()
    }

    async fn start(
        &self,
        _container: &Container,
        _spec: &ExecSpec,
    ) -> Result<Session, RuntimeError> {
        Err(self.unrecorded())
    }

    async fn stat_path(&self, container: &Container, path: &str) -> Result<PathStat, RuntimeError> {
        match self
            .recorded
            .stats
            .get(&Recorded::stat_key(container, path))
        {
            Some(Some(saved)) => Ok(PathStat::from(saved)),
            Some(None) => Err(RuntimeError::NoSuchPath {
                container: container.name.clone(),
                path: path.to_owned(),
            }),
            None => Err(self.unrecorded()),
        }
    }

    async fn stat_paths(
        &self,
        container: &Container,
        paths: &[String],
    ) -> Vec<Result<PathStat, RuntimeError>> {
        self.asked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(paths.to_vec());
        let mut stats = Vec::with_capacity(paths.len());
        for path in paths {
            stats.push(self.stat_path(container, path).await);
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::memory::Memory;

    #[tokio::test]
    async fn a_replay_answers_what_was_recorded_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/profile"), "x").unwrap();
        let mut memory = Memory::with_container("c0ffee");
        memory.containers[0].name = "web".into();
        memory.containers[0].rootfs = Some(root.path().to_path_buf());
        let recording = Recording::new(&memory);
        let container = recording.inspect("web").await.unwrap();
        let paths = vec!["/etc/profile".to_owned(), "/etc/missing".to_owned()];
        let stats = recording.stat_paths(&container, &paths).await;
        let recorded = recording.finish();
        // Through a file, as the engine keeps it.
        let recorded: Recorded =
            serde_json::from_slice(&serde_json::to_vec(&recorded).unwrap()).unwrap();

        let replay = Replay::new(&recorded, &memory);
        assert_eq!(replay.endpoint(), memory.endpoint());
        let again = replay.inspect("web").await.unwrap();
        assert_eq!(again.id, container.id);
        assert!(
            replay.inspect(&container.id).await.is_err(),
            "asked by another reference"
        );
        let replayed = replay.stat_paths(&again, &paths).await;
        assert_eq!(replayed[0].as_ref().unwrap(), stats[0].as_ref().unwrap());
        assert!(matches!(replayed[1], Err(RuntimeError::NoSuchPath { .. })));
        assert_eq!(replay.stats_asked(), paths);
        assert!(
            replay
                .stat_path(&again, "/etc/other")
                .await
                .is_err_and(|err| !matches!(err, RuntimeError::NoSuchPath { .. }))
        );
        assert!(replay.start(&again, &ExecSpec::default()).await.is_err());
    }
}
