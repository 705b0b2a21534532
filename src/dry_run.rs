//! `dcx exec --dry-run`: the resolved plan as JSON, for people and tools to check what would
//! run, where, as whom and with which environment (each variable with the layer it came from:
//! `probe`, `metadata` (the image's `devcontainer.metadata` label), `config` (devcontainer.json)
//! or `cli`).

use serde::Serialize;

use crate::config::{EffectiveConfig, Located};
use crate::discovery::{MatchedBy, Target};
use crate::env::Layer;
use crate::env::resolve::{Environment, ProbeSource};
use crate::exec::ExecPlan;

#[derive(Serialize)]
struct Plan<'a> {
    runtime: &'a str,
    container: Container<'a>,
    matched_by: MatchedBy,
    id_labels: &'a [String],
    config_file: Option<String>,
    effective_config: &'a serde_json::Value,
    user: &'a str,
    user_source: String,
    home: &'a str,
    workdir: Option<&'a str>,
    argv: &'a [String],
    tty: bool,
    terminal_size: Option<[u16; 2]>,
    user_env_probe: Probe<'a>,
    env: Vec<Variable<'a>>,
}

#[derive(Serialize)]
struct Container<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct Probe<'a> {
    mode: &'a str,
    shell: &'a str,
    source: ProbeSource,
    from_cache: bool,
}

#[derive(Serialize)]
struct Variable<'a> {
    name: &'a str,
    value: &'a str,
    layer: &'static str,
}

/// The plan as pretty JSON.
pub fn describe(
    runtime: &'static str,
    target: &Target,
    located: &Located,
    effective: &EffectiveConfig,
    environment: &Environment,
    plan: &ExecPlan,
    local_config: &serde_json::Map<String, serde_json::Value>,
) -> String {
    // devcontainer.json comes after the label entries in the merge: a key it sets is its own.
    let local_remote_env = local_config
        .get("remoteEnv")
        .and_then(serde_json::Value::as_object);
    let plan = Plan {
        runtime,
        container: Container {
            id: &target.container.id,
            name: &target.container.name,
        },
        matched_by: target.matched_by,
        id_labels: &target.id_labels,
        config_file: located.read_path.as_ref().map(|p| p.display().to_string()),
        effective_config: &effective.merged,
        user: &environment.user,
        user_source: format!("{:?}", environment.user_source),
        home: &environment.home,
        workdir: plan.spec.cwd.as_deref(),
        argv: &plan.spec.argv,
        tty: plan.spec.tty,
        terminal_size: plan.spec.size.map(|size| [size.rows, size.cols]),
        user_env_probe: Probe {
            mode: environment.mode.as_str(),
            shell: &environment.shell,
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
            .map(|(name, value, layer)| Variable {
                name,
                value,
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
    };
    serde_json::to_string_pretty(&plan).expect("the plan serialises")
}
