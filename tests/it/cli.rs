//! The command line around exec: dcx as `devcontainer` (every other subcommand through the
//! real reference CLI), completions and the man page, hints after errors, and the passing
//! status line of a slow probe.

use std::path::{Path, PathBuf};

use crate::harness::{Cmd, DEBIAN, TestContainer, TestWorkspace, dcx, dcx_path, docker};

fn reference_path() -> PathBuf {
    PathBuf::from(crate::harness::setting("DCX_REFERENCE_CLI"))
}

/// A folder holding `devcontainer`, a link to dcx.
fn link_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(dcx_path(), dir.path().join("devcontainer")).unwrap();
    dir
}

/// `devcontainer <args>` through the link, with `path` as PATH.
fn via_link(dir: &Path, path: &str) -> Cmd {
    Cmd::program(dir.join("devcontainer").to_str().unwrap()).env("PATH", path)
}

#[test]
fn as_devcontainer_every_other_subcommand_is_the_reference_s() {
    let links = link_dir();
    let reference = reference_path();
    let reference_bin = reference.parent().unwrap();
    let path = format!(
        "{}:{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        links.path().display(),
        reference_bin.display()
    );
    let theirs = |args: &[&str]| {
        Cmd::program(reference.to_str().unwrap())
            .args(args.iter().copied())
            .run()
    };
    let version = via_link(links.path(), &path)
        .args(["--version"])
        .run()
        .code(0);
    assert_eq!(version.stdout, theirs(&["--version"]).stdout);
    assert_eq!(version.stdout_text().trim(), "0.89.0");

    let ws = TestWorkspace::copy("basic");
    let read = ["read-configuration", "--workspace-folder", ws.path_str()];
    let ours = via_link(links.path(), &path).args(read).run().code(0);
    assert_eq!(ours.stdout, theirs(&read).stdout);

    let id = ws.up(&[]);
    let up = via_link(links.path(), &path)
        .args(["up", "--workspace-folder", ws.path_str()])
        .run()
        .code(0);
    let answer: serde_json::Value =
        serde_json::from_str(up.stdout_text().trim().lines().last().unwrap()).unwrap();
    assert_eq!(
        (answer["outcome"].as_str(), answer["containerId"].as_str()),
        (Some("success"), Some(id.as_str()))
    );
    // exec stays dcx's own.
    via_link(links.path(), &path)
        .args(["exec", "--workspace-folder", ws.path_str(), "echo", "mine"])
        .run()
        .code(0)
        .stdout("mine\n");
    // A code of the reference's is the caller's.
    let bad = via_link(links.path(), &path)
        .args(["no-such-subcommand"])
        .run();
    assert_eq!(bad.code, theirs(&["no-such-subcommand"]).code);
}

#[test]
fn as_devcontainer_without_a_reference_it_says_what_to_install_and_never_loops() {
    let links = link_dir();
    let only_links = format!("{}:/usr/bin:/bin", links.path().display());
    via_link(links.path(), &only_links)
        .args(["up", "--workspace-folder", "."])
        .run()
        .code(127)
        .stdout("")
        .stderr("error: `devcontainer up` is the reference CLI's, and no reference `devcontainer` was found (dcx runs only `exec` itself).\nhint: install it (`npm install -g @devcontainers/cli`), or set DCX_DEVCONTAINER_CLI to its path\n");
    via_link(links.path(), &only_links)
        .env("DCX_DEVCONTAINER_CLI", dcx_path())
        .args(["--version"])
        .run()
        .code(1)
        .stderr(&format!(
            "error: DCX_DEVCONTAINER_CLI names dcx itself ({}), not the reference CLI.\nhint: install it (`npm install -g @devcontainers/cli`), or set DCX_DEVCONTAINER_CLI to its path\n",
            Path::new(dcx_path()).display()
        ));
}

#[test]
fn completions_and_the_man_page_are_produced_and_parse() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = dcx().args(["completions", shell]).run().code(0).stderr("");
        let script = out.stdout_text();
        // The script asks dcx itself for candidates as the user types.
        assert!(
            script.contains("dcx") && script.contains("COMPLETE"),
            "{shell}: {script}"
        );
        let file = dir.path().join(format!("dcx.{shell}"));
        std::fs::write(&file, &script).unwrap();
        let checker = match shell {
            "bash" => Some("bash"),
            "zsh" => Some("zsh"),
            _ => None,
        };
        if let Some(checker) = checker.filter(|program| {
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .output()
                .is_ok_and(|out| out.status.success())
        }) {
            Cmd::program(checker)
                .args(["-n", file.to_str().unwrap()])
                .run()
                .code(0)
                .stderr("");
        }
    }
    // One page per subcommand, each with every option of its own.
    let pages = dir.path().join("man");
    std::fs::create_dir(&pages).unwrap();
    dcx()
        .args(["man", "--dir", pages.to_str().unwrap()])
        .run()
        .code(0);
    for (page, option) in [
        ("dcx.1", "exec"),
        ("dcx-exec.1", "terminal-columns"),
        ("dcx-cp.1", "quiet"),
        ("dcx-logs.1", "until"),
        ("dcx-serve.1", "max-sessions"),
        ("dcx-top.1", "container-id"),
    ] {
        let file = pages.join(page);
        assert!(file.exists(), "{page}");
        let shown = Cmd::program("man")
            .args(["-l", file.to_str().unwrap()])
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .run()
            .code(0);
        let text = shown.stdout_text();
        assert!(text.contains(option), "{page}: {text}");
    }
    let page = dcx().args(["man", "exec"]).run().code(0).stdout_text();
    // (roff writes a hyphen as `\-`.)
    assert!(
        page.contains(r"remote\-env") && page.contains(r"\-\-timeout"),
        "{page}"
    );
    dcx().args(["man", "nope"]).run().code(1);
}

/// What a shell's completion script asks dcx for: the candidates for the word under the
/// cursor (fish's form: one per line, a tab before the description).
fn completions(words: &[&str]) -> Vec<String> {
    let mut args = vec!["--"];
    args.extend_from_slice(words);
    dcx()
        .env("COMPLETE", "fish")
        .args(args)
        .run()
        .code(0)
        .stdout_text()
        .lines()
        .map(|line| line.split('\t').next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn completions_name_running_containers_their_labels_and_paths() {
    let c = TestContainer::start_with(DEBIAN, &["--label", "dcx.completion-key=1"]);
    let names = completions(&["dcx", "exec", "--container-id", ""]);
    assert!(names.contains(&c.name), "{names:?}");
    assert!(names.contains(&c.id[..12].to_owned()), "{names:?}");
    let prefix = &c.name[..c.name.len() - 1];
    let names = completions(&["dcx", "cp", "--container-id", prefix]);
    assert!(names.contains(&c.name), "{names:?}");
    let keys = completions(&["dcx", "logs", "--id-label", "dcx.comp"]);
    assert_eq!(keys, ["dcx.completion-key="]);
    let paths = completions(&["dcx", "cp", "--container-id", &c.id, ":/et"]);
    assert_eq!(paths, [":/etc/"]);
    let paths = completions(&["dcx", "cp", "--container-id", &c.id, ":/etc/os-rel"]);
    assert_eq!(paths, [":/etc/os-release"]);
    // A daemon that is not there: no candidates, and no wait.
    let started = std::time::Instant::now();
    let out = dcx()
        .env("COMPLETE", "fish")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["--", "dcx", "exec", "--container-id", ""])
        .run()
        .code(0);
    assert_eq!(out.stdout_text(), "");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

#[test]
fn a_paused_container_says_how_to_unpause_it() {
    let c = TestContainer::start(DEBIAN);
    docker(&["pause", &c.id]);
    let out = c.dcx(["true"]).run();
    docker(&["unpause", &c.id]);
    out.code(1).stderr(&format!(
        "error: Container {0} is paused.\nhint: unpause it with `docker unpause {0}`\n",
        c.name
    ));
}

#[test]
fn without_permission_on_the_socket_the_hint_is_the_docker_group() {
    // A copy nobody may run, wherever the checkout lives (a home folder may be closed to it).
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.path().join("dcx");
    std::fs::copy(dcx_path(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Cmd::program("runuser")
        .current_dir(dir.path())
        .args(["-u", "nobody", "--"])
        .args([
            copy.to_str().unwrap(),
            "exec",
            "--container-id",
            "any",
            "true",
        ])
        .env("DOCKER_HOST", "unix:///var/run/docker.sock")
        .run()
        .code(1);
    assert_eq!(
        out.stderr_text(),
        "error: Permission denied on the Docker socket unix:///var/run/docker.sock: the daemon is there, but this user may not use it.\nhint: add your user to the `docker` group (`sudo usermod -aG docker $USER`, then log in again), or run dcx as root\n"
    );
}

#[test]
fn a_slow_probe_shows_a_passing_status_line_on_a_terminal_only() {
    let c = TestContainer::start(DEBIAN);
    c.sh("echo 'sleep 1' >> /root/.bashrc");
    let mut run = c
        .dcx(["--no-probe-cache", "echo", "done"])
        .spawn_in_terminal(24, 100);
    assert_eq!(run.wait(), Some(0));
    run.stdout.wait_for("done");
    let screen = run.stdout.text();
    assert!(
        screen.contains("Probing the environment of root in the container"),
        "{screen:?}"
    );
    // Erased before the command's output.
    let erased = screen.find("\r\u{1b}[K").expect("the status erased");
    assert!(erased < screen.find("done").unwrap(), "{screen:?}");
    // Not a terminal: nothing but the output.
    c.dcx(["--no-probe-cache", "echo", "done"])
        .run()
        .code(0)
        .stdout("done\n")
        .stderr("");
}

/// Help is coloured on a terminal only, and never with `NO_COLOR`.
#[test]
fn help_is_coloured_on_a_terminal_unless_no_color() {
    let on_terminal = |no_color: Option<&str>| {
        let mut command = Cmd::program("script").env("TERM", "xterm");
        if let Some(value) = no_color {
            command = command.env("NO_COLOR", value);
        }
        command
            .args(["-qec", &format!("{} cp -h", dcx_path()), "/dev/null"])
            .run()
            .code(0)
            .stdout_text()
    };
    assert!(on_terminal(None).contains("\u{1b}["));
    assert!(!on_terminal(Some("1")).contains("\u{1b}["));
    let piped = dcx().args(["cp", "-h"]).run().code(0).stdout_text();
    assert!(!piped.contains('\u{1b}') && piped.contains("Usage: dcx cp"));
}
