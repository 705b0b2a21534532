//! dcx runs commands inside dev containers: a drop-in, exact-parity `devcontainer exec`.
//!
//! The pipeline runs in one direction and passes plain values forward:
//! `cli` (parse) → [`request::ExecRequest`] (validated) → `discovery` (which container) →
//! `exec` (plan, relay the I/O, exit status), with `runtime` the only module that talks to an
//! engine and `log` the only one that writes diagnostics.

pub mod cli;
pub mod config;
pub mod discovery;
mod dry_run;
pub mod env;
pub mod error;
pub mod exec;
pub mod log;
pub mod request;
pub mod runtime;

use std::ffi::OsString;

use crate::error::Error;
use crate::log::Log;
use crate::request::ExecRequest;

/// Runs dcx with the given argv (program name first) and returns the process exit code.
pub fn run(argv: impl IntoIterator<Item = OsString>) -> u8 {
    let parsed = match cli::parse(argv) {
        Ok(parsed) => parsed,
        Err(cli::ParseOutcome::Print(text)) => {
            print!("{text}");
            return 0;
        }
        Err(cli::ParseOutcome::Usage(err)) => {
            Log::default().error(&err.to_string());
            return Error::from(err).exit_code();
        }
    };
    match parsed.command {
        cli::Command::Exec(args) => exec_command(*args),
    }
}

fn exec_command(args: cli::ExecArgs) -> u8 {
    let log = Log::new(args.log_level.into(), args.log_format.into());
    let outcome = std::env::current_dir()
        .map_err(Error::Io)
        .and_then(|cwd| ExecRequest::from_args(args, &cwd).map_err(Error::from))
        .and_then(|request| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(Error::Io)?;
            let result = runtime.block_on(execute(&request, &log));
            // Never wait for the stdin reader: it may sit in a read on a terminal forever.
            runtime.shutdown_background();
            result
        });
    match outcome {
        Ok(status) => status.exit_code(),
        Err(err) => {
            log.error(&err.to_string());
            err.exit_code()
        }
    }
}

/// The exec pipeline: config, container, effective config, environment, then the run.
async fn execute(request: &ExecRequest, log: &Log) -> Result<exec::ExitStatus, Error> {
    let engine: Box<dyn runtime::Runtime> = match request.runtime {
        cli::RuntimeKind::Docker => {
            Box::new(runtime::docker::Docker::connect(log, request.docker_path.as_deref()).await?)
        }
        cli::RuntimeKind::Crun => Box::new(runtime::crun::Crun::new(
            request.crun_root.clone(),
            request.crun_path.clone(),
        )),
    };
    let engine = engine.as_ref();

    let located = config::locate(
        &request.cwd,
        request.workspace_folder.as_deref(),
        request.config.as_deref(),
        request.override_config.as_deref(),
    );
    let loaded = config::load(
        &located,
        config::LocalContext::process_env(),
        request.mount_workspace_git_root,
        request.mount_git_worktree_common_dir,
    )?;
    if let Some(path) = &located.read_path {
        log.debug(&format!("Dev container config: {}", path.display()));
    }

    let selection = discovery::Selection {
        container_id: request.container_id.clone(),
        id_labels: request.id_labels.clone(),
        workspace: located
            .workspace_folder
            .clone()
            .map(|folder| discovery::Workspace {
                folder,
                config_file: located.config_path.clone(),
            }),
    };
    let target = discovery::resolve(engine, &selection).await?;
    let container = &target.container;
    log.debug(&format!("Container: {} ({})", container.name, container.id));

    let effective = effective_config(&loaded, &target, located.config_path.as_deref(), log)?;

    let cache = request
        .probe_cache
        .then(env::ProbeCache::default_dir)
        .flatten()
        .map(env::ProbeCache::new);
    let environment = env::resolve::resolve(
        engine,
        container,
        &effective,
        &loaded.context,
        &env::resolve::EnvRequest {
            user: request.user.as_deref(),
            default_probe: &request.default_user_env_probe,
            remote_env: &request.remote_env,
            cache: cache.as_ref(),
            session_data_folder: request.container_session_data_folder.as_deref(),
            config_file: located.config_path.as_deref(),
            read_only: request.dry_run,
        },
        log,
    )
    .await?;
    let cwd = request
        .workdir
        .clone()
        .or_else(|| {
            loaded
                .remote_workspace_folder
                .clone()
                .filter(|folder| !folder.is_empty())
        })
        .unwrap_or_else(|| environment.home.clone());
    let plan = exec::ExecPlan::new(
        request,
        exec::terminal::HostTerminal::detect(),
        environment.user.clone(),
        environment.env.to_env_list(),
        environment.env.removed.clone(),
        cwd,
    );
    if request.dry_run {
        let shown = dry_run::describe(
            engine.name(),
            &target,
            &located,
            &effective,
            &environment,
            &plan,
            &loaded.config,
        );
        println!("{shown}");
        return Ok(exec::ExitStatus::Code(0));
    }
    Ok(exec::run(engine, container, &plan, log).await?)
}

/// The image metadata label merged with the local config, then `${devcontainerId}` and the
/// container pass of substitution.
fn effective_config(
    loaded: &config::LoadedConfig,
    target: &discovery::Target,
    config_file: Option<&std::path::Path>,
    log: &Log,
) -> Result<config::EffectiveConfig, Error> {
    let labels = &target.container.labels;
    let (mut entries, problem) =
        config::parse_metadata_label(labels.get(config::METADATA_LABEL).map(String::as_str));
    if let Some(problem) = problem {
        log.debug(&problem);
    }
    for entry in &mut entries {
        for value in entry.values_mut() {
            config::substitute_local(value, &loaded.context)?;
        }
    }
    let updates_only = config::updates_only(labels, &target.id_labels);
    let mut effective = config::merge(&entries, &loaded.config, updates_only);
    let id = config::devcontainer_id(&config::id_labels_to_map(&target.id_labels));
    for (_, value) in effective.remote_env.iter_mut() {
        if let Some(text) = value {
            *text = config::substitute_devcontainer_id_str(text, &id);
        }
    }
    config::substitute_devcontainer_id(&mut effective.merged, &id);
    effective.substitute_container(&target.container.env, config_file)?;
    Ok(effective)
}
