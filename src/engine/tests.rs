//! The engine through its own API, on the in-memory engine.
//!
//! A target prepared once serves many commands (each with its own env and working directory if it
//! asks), the plan is a value, selection errors come from `prepare`, the current directory is the
//! workspace only with a config, a cold preparation probes in one exec and sees a changed
//! startup file, and an engine that gains by it is sent ahead the requests a warm run will make.

use std::sync::{Arc, Mutex};

use super::*;
use crate::runtime::memory::{Buffer, Memory};

fn engine() -> (Engine, Arc<Mutex<Vec<Vec<String>>>>) {
    let mut memory = Memory::with_container("c1");
    memory.containers[0].env = vec!["PATH=/bin".into(), "KEEP=1".into()];
    memory.passwd =
        "root:x:0:0:root:/root:/bin/sh\nvscode:x:1000:1000::/home/vscode:/bin/bash\n".into();
    let started = memory.started.clone();
    (
        Engine::with_runtime(Box::new(memory), Log::discard()),
        started,
    )
}

fn request() -> PrepareRequest {
    let mut request = PrepareRequest::new(std::env::temp_dir());
    request.container_id = Some("c1".into());
    request.user = Some("vscode".into());
    request.default_user_env_probe = ProbeMode::None;
    request.remote_env = vec![("GREETING".into(), "hi".into())];
    request
}

#[tokio::test]
async fn one_preparation_serves_many_commands() {
    let (engine, started) = engine();
    let prepared = engine.prepare(&request()).await.unwrap();
    assert_eq!(prepared.container.id, "c1");
    assert_eq!(prepared.user, "vscode");
    assert_eq!(prepared.home, "/home/vscode");
    assert_eq!(prepared.cwd, "/home/vscode");
    assert!(prepared.env.contains(&"GREETING=hi".to_owned()));
    let helpers = started.lock().unwrap().len();
    for n in 0..20 {
        let out = Buffer::default();
        let io = ExecIo::stdout_to(out.clone());
        let word = format!("run{n}");
        let command = Command::new(["echo", word.as_str(), "", &n.to_string()]);
        let finished = engine.run(&prepared, &command, io).await.unwrap();
        assert_eq!(finished.status, ExitStatus::Code(n));
        assert_eq!(finished.end, End::Exited);
        assert_eq!(*out.0.lock().unwrap(), word.as_bytes());
    }
    // Nothing but the commands themselves ran after the preparation.
    assert_eq!(started.lock().unwrap().len(), helpers + 20);
}

#[tokio::test]
async fn a_command_adds_env_and_its_own_working_directory() {
    let (engine, _) = engine();
    let prepared = engine.prepare(&request()).await.unwrap();
    let command = Command {
        env: vec!["EXTRA=1".into(), "GREETING=bye".into()],
        cwd: Some("/tmp".into()),
        tty: false,
        size: Some(TermSize { rows: 1, cols: 1 }),
        ..Command::new(["true"])
    };
    let spec = prepared.spec(&command);
    assert_eq!(spec.cwd.as_deref(), Some("/tmp"));
    assert_eq!(spec.user.as_deref(), Some("vscode"));
    // Later entries win: the engine passes them in order.
    assert_eq!(
        spec.env[spec.env.len() - 2..],
        ["EXTRA=1".to_owned(), "GREETING=bye".to_owned()]
    );
    assert_eq!(spec.size, None, "a size only with a terminal");
}

#[tokio::test]
async fn the_plan_is_a_value() {
    let (engine, started) = engine();
    let mut request = request();
    request.read_only = true;
    let prepared = engine.prepare(&request).await.unwrap();
    let before = started.lock().unwrap().len();
    let plan = engine.plan(&prepared, &Command::new(["ls", "-l"]));
    assert_eq!(
        started.lock().unwrap().len(),
        before,
        "planning runs nothing"
    );
    assert_eq!(plan.runtime, "memory");
    assert_eq!(plan.container.id, "c1");
    assert_eq!(plan.user, "vscode");
    assert_eq!(plan.argv, ["ls", "-l"]);
    assert_eq!(plan.workdir.as_deref(), Some("/home/vscode"));
    let greeting = plan.env.iter().find(|v| v.name == "GREETING").unwrap();
    assert_eq!((greeting.value.as_str(), greeting.layer), ("hi", "cli"));
    serde_json::to_string(&plan).unwrap();
}

#[tokio::test]
async fn selection_errors_come_from_prepare() {
    let (engine, _) = engine();
    let mut request = request();
    request.container_id = Some("nope".into());
    let err = engine.prepare(&request).await.unwrap_err();
    insta::assert_snapshot!(err, @"No such container: nope");
}

#[test]
fn the_current_directory_is_the_workspace_only_with_a_config() {
    let dir = tempfile::tempdir().unwrap();
    insta::assert_snapshot!(
        default_workspace(dir.path(), None, &[], None, false).unwrap_err(),
        @"Missing required argument: One of --container-id, --id-label or --workspace-folder is required."
    );
    // `--config` alone: the current directory, as the reference takes it.
    assert_eq!(
        default_workspace(dir.path(), None, &[], None, true).unwrap(),
        Some(dir.path().to_path_buf())
    );
    std::fs::write(dir.path().join(".devcontainer.json"), "{}").unwrap();
    assert_eq!(
        default_workspace(dir.path(), None, &[], None, false).unwrap(),
        Some(dir.path().to_path_buf())
    );
    assert_eq!(
        default_workspace(dir.path(), Some("c"), &[], None, true).unwrap(),
        None
    );
}

/// A container whose root holds `/etc/passwd` and an `/etc/profile` exporting
/// `FROM_PROFILE=1` (no passwd for the lookup exec to answer from: the user is found in the
/// file alone), and a request probing its login shell with a cache: the root, the cache
/// folder, the engine and the request.
fn probed_target() -> (tempfile::TempDir, tempfile::TempDir, Memory, PrepareRequest) {
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("etc")).unwrap();
    std::fs::write(
        root.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nvscode:x:1000:1000::/home/vscode:/bin/bash\n",
    )
    .unwrap();
    std::fs::write(root.path().join("etc/profile"), "export FROM_PROFILE=1\n").unwrap();
    let mut memory = Memory::with_container("c1");
    memory.containers[0].rootfs = Some(root.path().to_path_buf());
    let mut request = request();
    request.default_user_env_probe = ProbeMode::LoginInteractiveShell;
    request.probe_cache = Some(cache.path().to_path_buf());
    (root, cache, memory, request)
}

#[tokio::test]
async fn a_cold_preparation_probes_in_one_exec_and_a_changed_startup_file_is_seen() {
    let (root, _cache, memory, request) = probed_target();
    let started = memory.started.clone();
    let engine = Engine::with_runtime(Box::new(memory), Log::discard());
    let execs = || started.lock().unwrap().len();
    let from_profile = |prepared: &Prepared| {
        prepared
            .env
            .iter()
            .find(|entry| entry.starts_with("FROM_PROFILE="))
            .cloned()
    };

    let prepared = engine.prepare(&request).await.unwrap();
    assert_eq!(prepared.home, "/home/vscode");
    assert_eq!(from_profile(&prepared).as_deref(), Some("FROM_PROFILE=1"));
    assert_eq!(execs(), 1, "the probe alone: {:?}", started.lock().unwrap());
    // Warm: no exec at all.
    let prepared = engine.prepare(&request).await.unwrap();
    assert_eq!(from_profile(&prepared).as_deref(), Some("FROM_PROFILE=1"));
    assert_eq!(execs(), 1);
    // A startup file changed: probed again, and the fresh entry serves the next one.
    std::fs::write(root.path().join("etc/profile"), "export FROM_PROFILE=2\n").unwrap();
    let prepared = engine.prepare(&request).await.unwrap();
    assert_eq!(from_profile(&prepared).as_deref(), Some("FROM_PROFILE=2"));
    assert_eq!(execs(), 2);
    // So does a new file in a watched folder.
    std::fs::create_dir(root.path().join("etc/profile.d")).unwrap();
    engine.prepare(&request).await.unwrap();
    assert_eq!(execs(), 3);
    std::fs::write(root.path().join("etc/profile.d/new.sh"), "").unwrap();
    engine.prepare(&request).await.unwrap();
    engine.prepare(&request).await.unwrap();
    assert_eq!(execs(), 4);
}

#[tokio::test]
async fn a_warm_run_on_an_engine_that_foresees_is_foreseen_from_the_last_one() {
    let (root, _cache, mut memory, mut request) = probed_target();
    let forecasts = Arc::new(Mutex::new(Vec::new()));
    memory.forecasts = Some(forecasts.clone());
    let engine = Engine::with_runtime(Box::new(memory), Log::discard());
    let command = Command::new(["true"]);
    let taken = || std::mem::take(&mut *forecasts.lock().unwrap());

    // Cold: nothing recorded yet, so nothing foreseen.
    engine.prepare_for(&request, &command).await.unwrap();
    assert!(taken().is_empty());
    // Warm: the very stats and exec the run then makes.
    let prepared = engine.prepare_for(&request, &command).await.unwrap();
    let forecast = taken().pop().expect("a forecast");
    assert_eq!(forecast.container_id, "c1");
    assert!(
        forecast.stats.contains(&"/etc/profile".to_owned()),
        "{forecast:?}"
    );
    assert!(
        forecast.stats.contains(&"/home/vscode/.bashrc".to_owned()),
        "{forecast:?}"
    );
    assert_eq!(forecast.exec, Some(prepared.spec(&command)));
    // With this run's own request: another --remote-env is in the exec foreseen.
    request.remote_env = vec![("GREETING".into(), "bye".into())];
    let prepared = engine.prepare_for(&request, &command).await.unwrap();
    let forecast = taken().pop().expect("a forecast");
    assert!(
        forecast
            .exec
            .as_ref()
            .is_some_and(|exec| exec.env.contains(&"GREETING=bye".to_owned()))
    );
    assert_eq!(forecast.exec, Some(prepared.spec(&command)));
    // A changed startup file: the walk would need a probe, which a replay cannot run; the
    // foreseen stats are still the ones asked, and no exec is foreseen.
    std::fs::write(root.path().join("etc/profile"), "export FROM_PROFILE=2\n").unwrap();
    let prepared = engine.prepare_for(&request, &command).await.unwrap();
    assert!(prepared.env.contains(&"FROM_PROFILE=2".to_owned()));
    let forecast = taken().pop().expect("a forecast");
    assert!(
        forecast
            .exec
            .is_some_and(|exec| exec.env.contains(&"FROM_PROFILE=1".to_owned())),
        "the last run's environment, which the engine will not take"
    );
    // Nothing is foreseen for --dry-run, which stores nothing.
    request.read_only = true;
    engine.prepare_for(&request, &command).await.unwrap();
    assert!(taken().is_empty());
}
