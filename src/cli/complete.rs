//! Dynamic shell completion: the values only the engine knows, asked for as the user types.
//!
//! `dcx completions SHELL` prints a small script that calls dcx back with `COMPLETE=SHELL` and
//! the words typed so far (clap_complete's `CompleteEnv`, run first in [`super::run`]). The
//! options come from clap's definitions; the completers here add running containers' names and
//! ids (`--container-id`), their label keys (`--id-label`) and the selected container's paths
//! (`dcx cp :PATH`). Each asks the engine the selection flags already typed name, and gives up
//! after [`PATIENCE`]: a daemon that is down or slow yields no candidates, never a hung shell.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::time::Duration;

use clap_complete::engine::{
    ArgValueCandidates, ArgValueCompleter, CompletionCandidate, PathCompleter, ValueCompleter,
};

use crate::engine::Engine;
use crate::log::{Format, Level, Log};

/// How long a completer waits for the engine.
pub const PATIENCE: Duration = Duration::from_millis(1500);

/// The environment variable the completion scripts set to ask dcx for candidates.
pub const VARIABLE: &str = "COMPLETE";

/// `--container-id`: the running containers' names, then their short ids.
pub fn containers() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let listed = ask(|engine| async move { engine.running().await }).unwrap_or_default();
        let names = listed.iter().filter(|c| !c.name.is_empty()).map(|c| {
            CompletionCandidate::new(&c.name).help(Some(short_id(&c.id).to_owned().into()))
        });
        let ids = listed
            .iter()
            .map(|c| CompletionCandidate::new(short_id(&c.id)).help(Some(c.name.clone().into())));
        names.chain(ids).collect()
    })
}

/// `--id-label`: the label keys of the running containers, as `KEY=`.
pub fn labels() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let listed = ask(|engine| async move { engine.running().await }).unwrap_or_default();
        let keys: BTreeSet<&String> = listed.iter().flat_map(|c| c.labels.keys()).collect();
        keys.into_iter()
            .map(|key| CompletionCandidate::new(format!("{key}=")))
            .collect()
    })
}

/// `dcx cp`'s SRC and DST: `:PATH` in the selected container, else a host path.
pub fn copy_paths() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        let Some(path) = current.to_str().and_then(|text| text.strip_prefix(':')) else {
            return PathCompleter::any().complete(current);
        };
        container_paths(path.to_owned())
    })
}

/// The entries of the folder `typed` is in, those that start with its last component; folders
/// end in `/` so the next TAB goes on into them.
fn container_paths(typed: String) -> Vec<CompletionCandidate> {
    let (folder, start) = match typed.rfind('/') {
        Some(at) => (typed[..=at].to_owned(), typed[at + 1..].to_owned()),
        None => (String::new(), typed.clone()),
    };
    let listed = ask_target(move |engine, request| async move {
        let target = engine.file_target(&request).await?;
        let absolute = match folder.starts_with('/') {
            true => folder.clone(),
            false => format!("{}/{folder}", target.cwd.trim_end_matches('/')),
        };
        let entries = engine
            .quick_list(&target.container, &absolute, 4096)
            .await?;
        Ok((folder, entries))
    });
    let Some((folder, entries)) = listed else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter(|entry| entry.name.starts_with(&start))
        .map(|entry| {
            let slash = match entry.kind {
                crate::engine::FileKind::Directory => "/",
                _ => "",
            };
            CompletionCandidate::new(format!(":{folder}{}{slash}", entry.name))
        })
        .collect()
}

fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// What the command line being completed selects: its engine, and the container (when its
/// selectors are whole enough to be one). Read by the front end from the typed words
/// ([`super::request::typed_selection`]) and handed over with [`set_typed`] before the
/// completers run.
#[derive(Debug, Clone)]
pub struct Typed {
    pub settings: crate::engine::EngineSettings,
    pub request: Option<crate::engine::PrepareRequest>,
}

static TYPED: std::sync::OnceLock<Typed> = std::sync::OnceLock::new();

/// Hands the completers what the typed words select.
pub fn set_typed(typed: Typed) {
    let _ = TYPED.set(typed);
}

/// Runs `work` on the engine the typed flags name, within [`PATIENCE`]; `None` on any failure.
fn ask<T, F>(work: impl FnOnce(Engine) -> F) -> Option<T>
where
    F: Future<Output = Result<T, crate::engine::EngineError>>,
{
    // Only the engine matters for a listing: the selectors typed so far are not checked.
    let settings = TYPED.get()?.settings.clone();
    within_patience(settings, work)
}

/// Runs `work` with the engine and selection the typed flags name, within [`PATIENCE`].
fn ask_target<T, F>(work: impl FnOnce(Engine, crate::engine::PrepareRequest) -> F) -> Option<T>
where
    F: Future<Output = Result<T, crate::engine::EngineError>>,
{
    let typed = TYPED.get()?;
    let request = typed.request.clone()?;
    within_patience(typed.settings.clone(), |engine| work(engine, request))
}

/// Connects to the engine `settings` name and runs `work`, all within [`PATIENCE`].
fn within_patience<T, F>(
    settings: crate::engine::EngineSettings,
    work: impl FnOnce(Engine) -> F,
) -> Option<T>
where
    F: Future<Output = Result<T, crate::engine::EngineError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    // Nothing of the engine's diagnostics belongs in a completion.
    let log = Log::new(
        Level::Info,
        Format::Text,
        std::sync::Arc::new(|_: &[u8]| {}),
    );
    runtime.block_on(async {
        tokio::time::timeout(PATIENCE, async {
            let engine = Engine::connect(&settings, log).await.ok()?;
            work(engine).await.ok()
        })
        .await
        .ok()
        .flatten()
    })
}
