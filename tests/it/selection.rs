//! Selection and configuration against workspaces brought up with the reference `devcontainer
//! up`: the same container, working directory and output as the reference for each selector,
//! precedence, config files, metadata labels, substitution, and every error's exact text.

use crate::harness::{BUSYBOX, Cmd, DEBIAN, TestContainer, TestWorkspace, dcx, docker, reference};

const PRINT: [&str; 3] = ["sh", "-c", "hostname; pwd; printenv | sort"];

#[test]
fn workspace_folder_finds_the_container_and_its_folder_as_the_reference_does() {
    let ws = TestWorkspace::copy("basic");
    ws.up(&[]);
    let args = ["exec", "--workspace-folder", ws.path_str()];
    let theirs = reference().args(args).args(PRINT).run();
    let ours = dcx().args(args).args(PRINT).run().code(0).same_as(&theirs);
    let text = ours.stdout_text();
    assert!(text.contains("\n/workspaces/basic\n"), "{text}");
    // Substitution: localEnv with a default, containerEnv with a default and from the
    // container's env, the workspace folder variables.
    for line in [
        "FROM_CONFIG=config-value",
        "LOCAL_DEFAULT=fallback",
        "CONTAINER_DEFAULT=container-fallback",
        "CONTAINER_CE=ce1",
        "WS=/workspaces/basic",
        "WS_BASE=basic",
        "LOCAL_WS_BASE=basic",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from {text}"
        );
    }
}

#[test]
fn id_label_finds_the_same_container() {
    let ws = TestWorkspace::copy("basic");
    let id = ws.up(&[]);
    let label = format!("devcontainer.local_folder={}", ws.path_str());
    let args = ["exec", "--id-label", &label];
    let theirs = reference().args(args).args(PRINT).run();
    let ours = dcx().args(args).args(PRINT).run().code(0).same_as(&theirs);
    assert!(ours.stdout_text().starts_with(&id[..12]));
}

#[test]
fn a_config_in_a_subfolder_is_used_through_config() {
    let ws = TestWorkspace::copy("nested");
    let config = ws.path.join(".devcontainer/sub/devcontainer.json");
    let config = config.to_str().unwrap();
    ws.up(&["--config", config]);
    let args = [
        "exec",
        "--workspace-folder",
        ws.path_str(),
        "--config",
        config,
    ];
    let command = ["sh", "-c", "printenv SUBFOLDER_CONFIG_REMOTE_ENV; pwd"];
    let theirs = reference().args(args).args(command).run();
    dcx()
        .args(args)
        .args(command)
        .run()
        .code(0)
        .stdout("true\n/workspaces/nested\n")
        .same_as(&theirs);
}

#[test]
fn a_root_devcontainer_json_with_remote_user() {
    let ws = TestWorkspace::copy("rootfile");
    ws.up(&[]);
    let args = ["exec", "--workspace-folder", ws.path_str()];
    let command = ["sh", "-c", "id -un; printenv ROOT_FILE; pwd"];
    let theirs = reference().args(args).args(command).run();
    dcx()
        .args(args)
        .args(command)
        .run()
        .code(0)
        .stdout("vscode\nyes\n/workspaces/rootfile\n")
        .same_as(&theirs);
}

#[test]
fn the_current_directory_is_the_default_workspace() {
    let ws = TestWorkspace::copy("basic");
    ws.up(&[]);
    let theirs = reference()
        .args(["exec", "echo", "default workspace test"])
        .current_dir(&ws.path)
        .run();
    dcx()
        .args(["exec", "echo", "default workspace test"])
        .current_dir(&ws.path)
        .run()
        .code(0)
        .stdout("default workspace test\n")
        .same_as(&theirs);
}

#[test]
fn a_config_alone_makes_the_current_directory_the_workspace() {
    // The config outside `.devcontainer/`, so the directory holds none of the usual names.
    let ws = TestWorkspace::copy("basic");
    std::fs::create_dir(ws.path.join("alt")).unwrap();
    std::fs::rename(
        ws.path.join(".devcontainer/devcontainer.json"),
        ws.path.join("alt/devcontainer.json"),
    )
    .unwrap();
    ws.up(&[
        "--config",
        &format!("{}/alt/devcontainer.json", ws.path_str()),
    ]);
    let theirs = reference()
        .args([
            "exec",
            "--config",
            "alt/devcontainer.json",
            "sh",
            "-c",
            "echo $FROM_CONFIG",
        ])
        .current_dir(&ws.path)
        .run();
    dcx()
        .args([
            "exec",
            "--config",
            "alt/devcontainer.json",
            "sh",
            "-c",
            "echo $FROM_CONFIG",
        ])
        .current_dir(&ws.path)
        .run()
        .code(0)
        .stdout("config-value\n")
        .same_as(&theirs);
}

#[test]
fn container_id_wins_over_id_label_and_workspace_folder() {
    let ws = TestWorkspace::copy("basic");
    let workspace_container = ws.up(&[]);
    let other = TestContainer::start(BUSYBOX);
    let label = format!("devcontainer.local_folder={}", ws.path_str());
    dcx()
        .args([
            "exec",
            "--container-id",
            &other.id,
            "--workspace-folder",
            ws.path_str(),
        ])
        // The workspace's folder does not exist in the other container: run in /.
        .args(["--id-label", &label, "--workdir", "/", "hostname"])
        .run()
        .code(0)
        .stdout(&format!("{}\n", &other.id[..12]));
    // id-label wins over workspace-folder.
    let nested = TestWorkspace::copy("rootfile");
    dcx()
        .args([
            "exec",
            "--id-label",
            &label,
            "--workspace-folder",
            nested.path_str(),
        ])
        .args(["--workdir", "/", "hostname"])
        .run()
        .code(0)
        .stdout(&format!("{}\n", &workspace_container[..12]));
}

#[test]
fn the_metadata_label_applies_with_only_a_container_id() {
    let c = TestContainer::start_with(
        DEBIAN,
        &[
            "-e",
            "TEST_CE=from-run",
            "--label",
            r#"devcontainer.metadata={"remoteUser":"vscode","remoteEnv":{"TEST_RE":"${containerEnv:TEST_CE}","LABEL_ONLY":"yes"}}"#,
        ],
    );
    let command = ["sh", "-c", "id -un; printenv TEST_RE LABEL_ONLY; pwd"];
    let theirs = c.reference(command).run();
    c.dcx(command)
        .run()
        .code(0)
        .stdout("vscode\nfrom-run\nyes\n/home/vscode\n")
        .same_as(&theirs);
}

#[test]
fn devcontainer_id_is_the_reference_value() {
    let ws = TestWorkspace::copy("basic");
    std::fs::write(
        ws.path.join(".devcontainer/devcontainer.json"),
        r#"{ "image": "dcx-test/debian:bookworm", "remoteEnv": { "DCX_ID": "${devcontainerId}" } }"#,
    )
    .unwrap();
    ws.up(&[]);
    let read = reference()
        .args(["read-configuration", "--workspace-folder", ws.path_str()])
        .run()
        .code(0);
    let json: serde_json::Value =
        serde_json::from_str(read.stdout_text().trim().lines().last().unwrap()).unwrap();
    let expected = json["configuration"]["remoteEnv"]["DCX_ID"]
        .as_str()
        .expect("read-configuration substitutes devcontainerId")
        .to_owned();
    assert_eq!(expected.len(), 52);
    dcx()
        .args([
            "exec",
            "--workspace-folder",
            ws.path_str(),
            "printenv",
            "DCX_ID",
        ])
        .run()
        .code(0)
        .stdout(&format!("{expected}\n"));
}

#[test]
fn a_stopped_workspace_container_is_named_with_how_to_start_it() {
    let ws = TestWorkspace::copy("basic");
    let id = ws.up(&[]);
    docker(&["stop", "-t", "0", &id]);
    let name = docker(&["inspect", "--format", "{{.Name}}", &id]);
    let name = name.trim().trim_start_matches('/');
    dcx()
        .args(["exec", "--workspace-folder", ws.path_str(), "true"])
        .run()
        .code(1)
        .stdout("")
        .stderr(&format!(
            "error: Container {name} is not running (state: exited). Start it with `docker start {name}`.\n"
        ));
}

#[test]
fn no_container_for_the_workspace_is_dev_container_not_found() {
    let ws = TestWorkspace::copy("basic");
    dcx()
        .args(["exec", "--workspace-folder", ws.path_str(), "true"])
        .run()
        .code(1)
        .stdout("")
        .stderr(&format!(
            "error: Dev container not found.\nhint: no running container carries the labels of the workspace folder {0}\nhint: start one with `devcontainer up --workspace-folder {0}`\n",
            ws.path_str()
        ));
    dcx()
        .args([
            "exec",
            "--id-label",
            "dcx.test.none=nothing-has-this",
            "true",
        ])
        .run()
        .code(1)
        .stderr("error: Dev container not found.\n");
}

#[test]
fn missing_and_broken_configs_name_the_file() {
    let cwd = std::env::current_dir().unwrap();
    dcx()
        .args(["exec", "--workspace-folder", "path-that-does-not-exist", "echo", "hi"])
        .run()
        .code(1)
        .stdout("")
        .stderr(&format!(
            "error: Dev container config ({}/path-that-does-not-exist/.devcontainer/devcontainer.json) not found.\n",
            cwd.display()
        ));
    dcx()
        .args([
            "exec",
            "--container-id",
            "any",
            "--config",
            "cfg/nonexist.json",
            "true",
        ])
        .run()
        .code(1)
        .stderr(&format!(
            "error: Dev container config ({}/cfg/nonexist.json) not found.\n",
            cwd.display()
        ));
    let ws = TestWorkspace::copy("broken");
    let out = dcx()
        .args(["exec", "--workspace-folder", ws.path_str(), "true"])
        .run()
        .code(1)
        .stdout("");
    let config = ws.path.join(".devcontainer/devcontainer.json");
    let text = out.stderr_text();
    assert!(
        text.starts_with(&format!(
            "error: Dev container config ({}) has a syntax error at line 2, column 38: ",
            config.display()
        )) && text.lines().count() == 1,
        "{text}"
    );
}

#[test]
fn malformed_selector_and_env_values_are_refused_with_the_reference_text() {
    for label in ["foo", "foo=", "=bar", ""] {
        dcx()
            .args(["exec", "--id-label", label, "true"])
            .run()
            .code(1)
            .stdout("")
            .stderr("error: Unmatched argument format: id-label must match <name>=<value>\n");
    }
    for pair in ["FOO", "", "=x"] {
        dcx()
            .args([
                "exec",
                "--container-id",
                "any",
                "--remote-env",
                pair,
                "true",
            ])
            .run()
            .code(1)
            .stderr("error: Unmatched argument format: remote-env must match <name>=<value>\n");
    }
}

#[test]
fn compatibility_flags_are_accepted_and_change_nothing() {
    let ws = TestWorkspace::copy("basic");
    ws.up(&[]);
    dcx()
        .args(["exec", "--workspaceFolder", ws.path_str()])
        .args([
            "--docker-path",
            "docker",
            "--docker-compose-path",
            "docker-compose",
        ])
        .args([
            "--container-data-folder",
            "/tmp/a",
            "--container-system-data-folder",
            "/tmp/b",
        ])
        .args([
            "--user-data-folder",
            "/tmp/c",
            "--mount-git-worktree-common-dir",
        ])
        .args(["--skip-feature-auto-mapping", "--oci-auth-hardening"])
        .args(["--allow-cross-origin-auth-host", "r.example=a.example"])
        .args(["--mount-workspace-git-root=true", "pwd"])
        .run()
        .code(0)
        .stdout("/workspaces/basic\n");
    dcx()
        .args(["exec", "--container-id", "any"])
        .args([
            "--allow-cross-origin-auth-host",
            "r.example=a.example",
            "true",
        ])
        .run()
        .code(1)
        .stderr("error: --allow-cross-origin-auth-host requires --oci-auth-hardening.\n");
}

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    let ws = TestWorkspace::copy("basic");
    let id = ws.up(&[]);
    let out = dcx()
        .args(["exec", "--workspace-folder", ws.path_str(), "--dry-run"])
        .args(["touch", "/tmp/dry-run-marker"])
        .run()
        .code(0)
        .stderr("");
    let plan: serde_json::Value = serde_json::from_str(&out.stdout_text()).unwrap();
    assert_eq!(plan["runtime"], "docker");
    assert_eq!(plan["container"]["id"], id.as_str());
    assert_eq!(plan["matched_by"], "workspace-folder");
    assert_eq!(plan["user"], "root");
    assert_eq!(plan["workdir"], "/workspaces/basic");
    assert_eq!(
        plan["argv"],
        serde_json::json!(["touch", "/tmp/dry-run-marker"])
    );
    assert_eq!(plan["tty"], false);
    assert_eq!(
        plan["effective_config"]["remoteEnv"]["FROM_CONFIG"],
        "config-value"
    );
    let config = ws.path.join(".devcontainer/devcontainer.json");
    assert_eq!(plan["config_file"], config.to_str().unwrap());
    dcx()
        .args([
            "exec",
            "--container-id",
            &id,
            "test",
            "!",
            "-e",
            "/tmp/dry-run-marker",
        ])
        .run()
        .code(0);
}

#[test]
fn dry_run_names_each_variable_s_layer() {
    let ws = TestWorkspace::copy("rootfile");
    let label =
        r#"devcontainer.metadata=[{"remoteEnv":{"FROM_LABEL":"label","ROOT_FILE":"label"}}]"#;
    let folder = format!("devcontainer.local_folder={}", ws.path_str());
    let config = format!(
        "devcontainer.config_file={}/.devcontainer.json",
        ws.path_str()
    );
    let _c = TestContainer::start_with(
        BUSYBOX,
        &["--label", label, "--label", &folder, "--label", &config],
    );
    let out = dcx()
        .args([
            "exec",
            "--workspace-folder",
            ws.path_str(),
            "--remote-env",
            "FROM_CLI=cli",
        ])
        .args(["--user", "root", "--dry-run", "true"])
        .run()
        .code(0);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout_text()).unwrap();
    let layer = |name: &str| {
        plan["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .map(|v| {
                (
                    v["value"].as_str().unwrap().to_owned(),
                    v["layer"].as_str().unwrap().to_owned(),
                )
            })
    };
    assert_eq!(
        layer("FROM_LABEL"),
        Some(("label".into(), "metadata".into()))
    );
    assert_eq!(layer("ROOT_FILE"), Some(("yes".into(), "config".into())));
    assert_eq!(layer("FROM_CLI"), Some(("cli".into(), "cli".into())));
    assert_eq!(layer("PATH").map(|(_, layer)| layer), Some("probe".into()));
    assert_eq!(plan["matched_by"], "workspace-folder");
}

#[test]
fn a_legacy_container_with_only_the_folder_label_is_found() {
    let ws = TestWorkspace::copy("basic");
    let folder = format!("devcontainer.local_folder={}", ws.path_str());
    let c = TestContainer::start_with(BUSYBOX, &["--label", &folder]);
    let out = dcx()
        .args([
            "exec",
            "--workspace-folder",
            ws.path_str(),
            "--dry-run",
            "true",
        ])
        .run()
        .code(0);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout_text()).unwrap();
    assert_eq!(plan["container"]["id"], c.id.as_str());
    assert_eq!(plan["matched_by"], "workspace-folder-legacy");
}

#[test]
fn the_newest_of_several_matching_containers_wins() {
    let ws = TestWorkspace::copy("basic");
    let folder = format!("devcontainer.local_folder={}", ws.path_str());
    let config = format!(
        "devcontainer.config_file={}/.devcontainer/devcontainer.json",
        ws.path_str()
    );
    let labels = ["--label", folder.as_str(), "--label", config.as_str()];
    let _older = TestContainer::start_with(BUSYBOX, &labels);
    let newer = TestContainer::start_with(BUSYBOX, &labels);
    dcx()
        .args([
            "exec",
            "--workspace-folder",
            ws.path_str(),
            "--workdir",
            "/",
            "hostname",
        ])
        .run()
        .code(0)
        .stdout(&format!("{}\n", &newer.id[..12]));
}

#[test]
fn override_config_replaces_the_config_content() {
    let ws = TestWorkspace::copy("basic");
    ws.up(&[]);
    let other = ws.path.join("override.json");
    std::fs::write(
        &other,
        r#"{ "remoteEnv": { "FROM_CONFIG": "overridden" } }"#,
    )
    .unwrap();
    let args = ["exec", "--workspace-folder", ws.path_str()];
    let command = ["sh", "-c", "echo $FROM_CONFIG"];
    let theirs = reference()
        .args(args)
        .args(["--override-config", other.to_str().unwrap()])
        .args(command)
        .run();
    dcx()
        .args(args)
        .args(["--override-config", other.to_str().unwrap()])
        .args(command)
        .run()
        .code(0)
        .stdout("overridden\n")
        .same_as(&theirs);
    let missing = ws.path.join("missing.json");
    dcx()
        .args(args)
        .args(["--override-config", missing.to_str().unwrap(), "true"])
        .run()
        .code(1)
        .stderr(&format!(
            "error: Dev container config ({}) not found.\n",
            missing.display()
        ));
}

#[test]
fn a_nameless_container_env_in_any_key_fails_as_in_the_reference() {
    let ws = TestWorkspace::copy("nameless-env");
    let folder = format!("devcontainer.local_folder={}", ws.path_str());
    let _c = TestContainer::start_with(BUSYBOX, &["--label", &folder]);
    let args = |cmd: Cmd| {
        cmd.args(["exec", "--workspace-folder", ws.path_str(), "true"])
            .run()
    };
    const MESSAGE: &str = "'${containerEnv}' in devcontainer.json can not be resolved because no environment variable name is given.";
    let theirs = args(reference()).code(1);
    assert!(
        theirs.stderr_text().contains(MESSAGE),
        "{}",
        theirs.stderr_text()
    );
    args(dcx()).code(1).stderr(&format!("error: {MESSAGE}\n"));
}
