//! The plan of one command as `--dry-run` shows it: a serialisable value.
//!
//! What would run, where, as whom and with which environment, each variable with the layer it came
//! from (`probe`, `metadata` (the image's `devcontainer.metadata` label), `config`
//! (devcontainer.json) or `cli`), and the whole merged configuration: the reference's merge,
//! substituted as dcx's exec substitutes (`${devcontainerId}` included). The front end prints it.

use serde::Serialize;
use serde_json::Value;

use super::Prepared;
use crate::config;
use crate::discovery::MatchedBy;
use crate::env::Layer;
use crate::env::resolve::ProbeSource;
use crate::runtime::ExecSpec;

/// `--dry-run`'s plan; serialise it to show it.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub runtime: String,
    pub container: PlanContainer,
    pub matched_by: MatchedBy,
    pub id_labels: Vec<String>,
    pub config_file: Option<String>,
    pub effective_config: Value,
    pub user: String,
    pub user_source: String,
    pub home: String,
    pub workdir: Option<String>,
    pub argv: Vec<String>,
    pub tty: bool,
    pub terminal_size: Option<[u16; 2]>,
    pub user_env_probe: PlanProbe,
    pub env: Vec<PlanVariable>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanContainer {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanProbe {
    pub mode: String,
    pub shell: String,
    pub source: ProbeSource,
    pub from_cache: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanVariable {
    pub name: String,
    pub value: String,
    pub layer: &'static str,
}

/// The whole merged configuration, substituted as exec substitutes it: `${devcontainerId}` (which
/// the reference's exec leaves as written), then the container pass.
fn merged_config(prepared: &Prepared) -> Value {
    let shown = &prepared.shown;
    let entries = config::metadata_entries(&shown.label_entries, &shown.local, shown.updates_only);
    let mut merged = Value::Object(config::merge_configuration(&shown.local, &entries));
    config::substitute_devcontainer_id(&mut merged, &shown.devcontainer_id);
    let mut substituted = merged.clone();
    match config::substitute_container(
        &mut substituted,
        &prepared.container.env,
        shown.config_path.as_deref(),
    ) {
        Ok(()) => substituted,
        // Not reached: preparing found any such error first.
        Err(_) => merged,
    }
}

pub(super) fn describe(runtime: &str, prepared: &Prepared, spec: &ExecSpec) -> Plan {
    // devcontainer.json comes after the label entries in the merge: a key it sets is its own.
    let local_remote_env = prepared
        .shown
        .local
        .get("remoteEnv")
        .and_then(Value::as_object);
    let environment = &prepared.environment;
    Plan {
        runtime: runtime.to_owned(),
        container: PlanContainer {
            id: prepared.container.id.clone(),
            name: prepared.container.name.clone(),
        },
        matched_by: prepared.matched_by,
        id_labels: prepared.id_labels.clone(),
        config_file: prepared
            .config_file
            .as_ref()
            .map(|p| p.display().to_string()),
        effective_config: merged_config(prepared),
        user: environment.user.clone(),
        user_source: format!("{:?}", environment.user_source),
        home: environment.home.clone(),
        workdir: spec.cwd.clone(),
        argv: spec.argv.clone(),
        tty: spec.tty,
        terminal_size: spec.size.map(|size| [size.rows, size.cols]),
        user_env_probe: PlanProbe {
            mode: environment.mode.as_str().to_owned(),
            shell: environment.shell.clone(),
            source: environment.probe,
            from_cache: matches!(
                environment.probe,
                ProbeSource::HostCache | ProbeSource::ContainerCache
            ),
        },
        env: environment
            .env
            .entries
            .iter()
            .map(|(name, value, layer)| PlanVariable {
                name: name.clone(),
                value: value.clone(),
                layer: match layer {
                    Layer::Probe => "probe",
                    Layer::Config if local_remote_env.is_some_and(|env| env.contains_key(name)) => {
                        "config"
                    }
                    Layer::Config => "metadata",
                    Layer::Cli => "cli",
                },
            })
            .collect(),
    }
}
