//! The environment layer: userEnvProbe modes against the reference, `--remote-env`, config
//! `remoteEnv` against the CLI, the user (`remoteUser`, `--user`, passwd without getent), the
//! host probe cache, the probe's time limit, `--workdir` and `--container-session-data-folder`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::harness::{BUSYBOX, DEBIAN, Outcome, TestContainer, docker};

/// A container started with a `devcontainer.metadata` label.
fn labelled(image: &str, metadata: &str) -> TestContainer {
    let label = format!("devcontainer.metadata={metadata}");
    TestContainer::start_with(image, &["--label", &label])
}

/// Runs a shell script in the container as root, through the docker CLI.
fn sh(id: &str, script: &str) -> String {
    docker(&["exec", id, "sh", "-c", script])
}

/// The `--dry-run` plan of a successful run, parsed.
#[track_caller]
fn plan(out: Outcome) -> serde_json::Value {
    let out = out.code(0);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("--dry-run printed no JSON ({err}): {out:?}"))
}

/// Where the plan's probed env came from (`probed`, `host-cache`, …).
#[track_caller]
fn probe_source(out: Outcome) -> String {
    plan(out)["user_env_probe"]["source"]
        .as_str()
        .expect("user_env_probe.source is a string")
        .to_owned()
}

fn sorted_lines(out: &Outcome) -> Vec<String> {
    let mut lines: Vec<String> = out.stdout_text().lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

fn has_variable(lines: &[String], name: &str) -> bool {
    lines
        .iter()
        .any(|line| line.starts_with(&format!("{name}=")))
}

// US2-1, FR-005: every probe mode gives the reference's env, with that mode's init files read.
#[test]
fn each_probe_mode_gives_the_reference_environment() {
    let c = TestContainer::start(DEBIAN);
    sh(
        &c.id,
        "echo 'export FROM_BASHRC=1' >> /root/.bashrc && \
         echo 'export FROM_PROFILE=1' >> /root/.profile && \
         echo 'export PATH=\"$PATH:/opt/from-profile\"' >> /root/.profile",
    );
    // root's ~/.profile sources ~/.bashrc under bash, so login shells see both files.
    // `_` needs no special treatment: both CLIs pass on the probe's `_=/usr/bin/cat` (the last
    // program the probe shell ran), so the lines are identical, `_=` included.
    for (mode, bashrc, profile) in [
        ("loginInteractiveShell", true, true),
        ("interactiveShell", true, false),
        ("loginShell", true, true),
        ("none", false, false),
    ] {
        let args = ["--default-user-env-probe", mode, "printenv"];
        let theirs = c.reference(args).run().code(0);
        let ours = c.dcx(args).run().code(0);
        let lines = sorted_lines(&ours);
        assert_eq!(
            lines,
            sorted_lines(&theirs),
            "mode {mode}: dcx and the reference differ"
        );
        assert_eq!(has_variable(&lines, "FROM_BASHRC"), bashrc, "mode {mode}");
        assert_eq!(has_variable(&lines, "FROM_PROFILE"), profile, "mode {mode}");
        let path = lines
            .iter()
            .find_map(|line| line.strip_prefix("PATH="))
            .unwrap_or_else(|| panic!("mode {mode}: no PATH in {lines:?}"));
        assert_eq!(
            path.split(':').any(|dir| dir == "/opt/from-profile"),
            profile,
            "mode {mode}: PATH={path}"
        );
    }
}

// US2-2, FR-003, SC-003, FR-011: `--remote-env` plain, empty, `=` values; exact format error.
#[test]
fn remote_env_values_and_format_errors() {
    let c = TestContainer::start(DEBIAN);
    for (pair, name, expected) in [
        ("FOO=bar", "FOO", "bar\n"),
        ("FOO=", "FOO", "\n"),
        ("A=B=C", "A", "B=C\n"),
    ] {
        let args = ["--remote-env", pair, "printenv", name];
        let theirs = c.reference(args).run();
        c.dcx(args).run().code(0).stdout(expected).same_as(&theirs);
    }
    for bad in ["FOO", ""] {
        c.dcx(["--remote-env", bad, "true"])
            .run()
            .code(1)
            .stdout("")
            .stderr("error: Unmatched argument format: remote-env must match <name>=<value>\n");
    }
}

// FR-004: CLI `--remote-env` beats config `remoteEnv`, `null` unsets (the reference differs).
#[test]
fn cli_remote_env_beats_config_and_null_removes() {
    let c = labelled(DEBIAN, r#"[{"remoteEnv":{"FOO":"baz","GONE":null}}]"#);
    c.dcx(["--remote-env", "FOO=bar", "printenv", "FOO"])
        .run()
        .code(0)
        .stdout("bar\n");
    c.reference(["--remote-env", "FOO=bar", "printenv", "FOO"])
        .run()
        .code(0)
        .stdout("baz\n");
    c.dcx(["printenv", "GONE"]).run().code(1).stdout("");
    let env = c.dcx(["env"]).run().code(0);
    assert!(
        !sorted_lines(&env).iter().any(|l| l.starts_with("GONE=")),
        "GONE is set: {env:?}"
    );
    c.reference(["printenv", "GONE"])
        .run()
        .code(0)
        .stdout("null\n");
}

// FR-013, ref. 6.1: metadata `remoteUser`, `--user` beating it, uid forms, unknown-user error.
#[test]
fn user_from_metadata_cli_uid_and_unknown() {
    let c = labelled(DEBIAN, r#"[{"remoteUser":"vscode"}]"#);
    let theirs = c.reference(["id", "-un"]).run();
    c.dcx(["id", "-un"])
        .run()
        .code(0)
        .stdout("vscode\n")
        .same_as(&theirs);
    c.dcx(["--user", "root", "id", "-un"])
        .run()
        .code(0)
        .stdout("root\n");
    c.dcx(["-u", "0", "id", "-un"])
        .run()
        .code(0)
        .stdout("root\n");
    c.dcx(["--user", "1000:0", "sh", "-c", "id -u; id -g"])
        .run()
        .code(0)
        .stdout("1000\n0\n");
    c.dcx(["--user", "nosuchuser", "true"])
        .run()
        .code(1)
        .stdout("")
        .stderr("error: Unknown user nosuchuser: the container's /etc/passwd has no such user.\n");
}

// Ref. 6.2: passwd lookup without getent, by name and uid, exact (no `root` → `rootless`).
#[test]
fn busybox_passwd_lookup_without_getent_is_exact() {
    let c = TestContainer::start(BUSYBOX);
    c.dcx(["--user", "vscode", "sh", "-c", "echo $HOME"])
        .run()
        .code(0)
        .stdout("/home/vscode\n");
    c.dcx(["--user", "1000", "sh", "-c", "echo $HOME"])
        .run()
        .code(0)
        .stdout("/home/vscode\n");
    sh(
        &c.id,
        "{ echo 'rootless:x:1001:1001::/home/rootless:/bin/false'; cat /etc/passwd; } \
         > /tmp/passwd && cat /tmp/passwd > /etc/passwd",
    );
    let plan = plan(c.dcx(["--user", "root", "--dry-run", "true"]).run());
    assert_eq!(plan["user"], "root", "{plan:#}");
    assert_eq!(plan["home"], "/root", "{plan:#}");
    assert_eq!(plan["user_env_probe"]["shell"], "/bin/sh", "{plan:#}");
}

// Host probe cache: hit, misses (restart, user, opt-outs, corrupt file), private files.
#[test]
fn host_probe_cache_hits_misses_and_corruption() {
    let c = TestContainer::start(DEBIAN);
    let cache_home = tempfile::tempdir().expect("a temp dir");
    let xdg = cache_home
        .path()
        .to_str()
        .expect("UTF-8 temp path")
        .to_owned();
    // An outer DCX_NO_PROBE_CACHE must not turn the cache off here (a later `.env` wins).
    // `run` looks with --dry-run (which stores nothing); `fill` runs for real and stores.
    let with_cache = |cmd: crate::harness::Cmd| {
        cmd.env("XDG_CACHE_HOME", &xdg)
            .env("DCX_NO_PROBE_CACHE", "0")
    };
    let run =
        |extra: &[&str]| with_cache(c.dcx(extra.iter().copied().chain(["--dry-run", "true"])));
    let fill = |extra: &[&str]| {
        with_cache(c.dcx(extra.iter().copied().chain(["true"])))
            .run()
            .code(0);
    };
    let probe_dir = cache_home.path().join("dcx/probe");

    assert_eq!(probe_source(run(&[]).run()), "probed");
    assert!(!probe_dir.exists(), "a dry run stores nothing");
    fill(&[]);
    assert_eq!(probe_source(run(&[]).run()), "host-cache");
    assert_eq!(probe_source(run(&["--no-probe-cache"]).run()), "probed");
    assert_eq!(
        probe_source(run(&[]).env("DCX_NO_PROBE_CACHE", "1").run()),
        "probed"
    );
    assert_eq!(probe_source(run(&["--user", "vscode"]).run()), "probed");
    fill(&["--user", "vscode"]);
    assert_eq!(probe_source(run(&["--user", "vscode"]).run()), "host-cache");

    assert_eq!(mode_of(&probe_dir), 0o700, "{}", probe_dir.display());
    let files = json_files(&probe_dir);
    assert_eq!(files.len(), 2, "one file per user: {files:?}");
    for file in &files {
        assert_eq!(mode_of(file), 0o600, "{}", file.display());
    }

    docker(&["restart", "-t", "0", &c.id]);
    assert_eq!(probe_source(run(&[]).run()), "probed");
    fill(&[]);
    assert_eq!(probe_source(run(&[]).run()), "host-cache");

    for file in json_files(&probe_dir) {
        std::fs::write(&file, "{not json").expect("corrupt a cache file");
    }
    let out = run(&["--log-level", "debug"]).run().code(0);
    assert!(
        out.stderr_text().contains("corrupt probe cache"),
        "debug log does not mention the corrupt cache: {out:?}"
    );
    assert_eq!(probe_source(out), "probed");
    for file in json_files(&probe_dir) {
        std::fs::write(&file, "{not json").expect("corrupt a cache file");
    }
    c.dcx(["echo", "ok"])
        .env("XDG_CACHE_HOME", &xdg)
        .env("DCX_NO_PROBE_CACHE", "0")
        .run()
        .code(0)
        .stdout("ok\n")
        .stderr("");
}

fn json_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("read {}: {err}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("stat {}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

// Ref. 6.4, dcx's probe limit: a blocking startup script is killed, with a warning; command runs.
#[test]
fn a_blocking_bashrc_times_the_probe_out_and_leaves_nothing_behind() {
    let c = TestContainer::start(DEBIAN);
    // `read x` reading a FIFO nobody writes: it blocks whatever the probe's stdin is (dcx gives
    // the probe an empty stdin that is at EOF at once, so a plain `read x` would not block).
    sh(
        &c.id,
        "mkfifo /root/never-written && echo 'read x < /root/never-written' >> /root/.bashrc",
    );
    let out = c.dcx(["echo", "done"]).run().code(0).stdout("done\n");
    assert!(
        out.stderr_text()
            .contains("userEnvProbe is taking longer than 10 seconds"),
        "no time-limit warning: {out:?}"
    );
    let processes = docker(&["exec", &c.id, "ps", "-eo", "args"]);
    assert!(
        !processes.contains("cat /proc/self/environ"),
        "a probe shell is left behind:\n{processes}"
    );
}

// US1 (`pwd` shows the working directory): `--workdir`/`-w`, exact error for a missing one.
#[test]
fn workdir_is_used_and_a_missing_one_is_an_exact_error() {
    let c = TestContainer::start(DEBIAN);
    c.dcx(["--workdir", "/tmp", "pwd"])
        .run()
        .code(0)
        .stdout("/tmp\n");
    c.dcx(["-w", "/tmp", "pwd"]).run().code(0).stdout("/tmp\n");
    c.dcx(["--workdir", "/nonexistent", "true"])
        .run()
        .code(1)
        .stdout("")
        .stderr(concat!(
            "error: Cannot use the working directory /nonexistent in the container: ",
            "no such file or directory.\n"
        ));
}

// Ref. 6.4: `--container-session-data-folder` keeps `<dir>/env-<mode>.json` and reads it back.
#[test]
fn container_session_data_folder_caches_the_probe_in_the_container() {
    let c = TestContainer::start(DEBIAN);
    let folder = ["--container-session-data-folder", "/tmp/dcx-session"];
    c.dcx(folder.into_iter().chain(["true"])).run().code(0);
    let stored = docker(&[
        "exec",
        &c.id,
        "cat",
        "/tmp/dcx-session/env-loginInteractiveShell.json",
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&stored).unwrap_or_else(|err| panic!("not JSON ({err}): {stored:?}"));
    assert!(
        json.as_object()
            .is_some_and(|env| env.get("PATH").is_some_and(serde_json::Value::is_string)),
        "no PATH string in {stored}"
    );
    assert_eq!(
        probe_source(c.dcx(folder.into_iter().chain(["--dry-run", "true"])).run()),
        "container-cache"
    );
}

// FR-004 (divergence 27): a `null` in remoteEnv removes the variable even when the container's
// own env defines it, on Docker (`env -u`) as on crun.
#[test]
fn null_removes_a_variable_of_the_container_env() {
    let c = TestContainer::start_with(
        DEBIAN,
        &[
            "-e",
            "CE_GONE=from-image",
            "--label",
            r#"devcontainer.metadata=[{"remoteEnv":{"CE_GONE":null}}]"#,
        ],
    );
    c.dcx(["sh", "-c", "echo \"[${CE_GONE-unset}]\""])
        .run()
        .code(0)
        .stdout("[unset]\n");
    // A later layer may set it again.
    c.dcx([
        "--remote-env",
        "CE_GONE=cli",
        "sh",
        "-c",
        "echo \"[${CE_GONE-unset}]\"",
    ])
    .run()
    .code(0)
    .stdout("[cli]\n");
}

// The in-container session cache keeps one file per `--user`, and a dry run writes none.
#[test]
fn session_cache_files_are_per_user_and_dry_runs_write_none() {
    let c = TestContainer::start(DEBIAN);
    let folder = "/tmp/dcx-session-users";
    c.dcx([
        "--container-session-data-folder",
        folder,
        "--user",
        "root",
        "--dry-run",
        "true",
    ])
    .run()
    .code(0);
    c.dcx(["sh", "-c", &format!("test ! -e {folder}")])
        .run()
        .code(0);
    c.dcx([
        "--container-session-data-folder",
        folder,
        "-u",
        "vscode",
        "sh",
        "-c",
        "echo $HOME",
    ])
    .run()
    .code(0)
    .stdout("/home/vscode\n");
    c.dcx([
        "--container-session-data-folder",
        folder,
        "-u",
        "root",
        "sh",
        "-c",
        "echo $HOME",
    ])
    .run()
    .code(0)
    .stdout("/root\n");
    c.dcx(["sh", "-c", &format!("ls {folder}")])
        .run()
        .code(0)
        .stdout("env-loginInteractiveShell-root.json\nenv-loginInteractiveShell-vscode.json\n");
}
