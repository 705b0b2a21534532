//! The crun backend: the same scenarios as on Docker, run against both runtimes where the
//! behaviour is the same, and crun's own selection (annotations, prefixes), errors and the
//! absence of any Docker daemon.

use crate::harness::{
    BUSYBOX, Cmd, CrunContainer, Subject, TestContainer, TestWorkspace,
    assert_fixed_size_from_the_start, copy_rootfs, dcx,
};

/// Every scenario, against one subject.
fn scenarios(subject: &dyn Subject) {
    // The run ends with the process, not with a background child that keeps its output open;
    // that child is left running. (`--timeout` keeps dcx relaying on crun too.)
    subject
        .dcx(&["--timeout", "1h", "sh", "-c", "sleep 13 & echo hi"])
        .run()
        .code(0)
        .stdout("hi\n");
    assert_eq!(subject.count_running("sleep 13"), 1);
    // Output, exit codes, signals as exit codes.
    subject
        .dcx(&["echo", "hi"])
        .run()
        .code(0)
        .stdout("hi\n")
        .stderr("");
    subject.dcx(&["sh", "-c", "exit 123"]).run().code(123);
    subject.dcx(&["sh", "-c", "kill -TERM $$"]).run().code(143);
    subject.dcx(&["sh", "-c", "kill -KILL $$"]).run().code(137);
    // Separate, byte-exact streams; stdin bytes and EOF.
    subject
        .dcx(&["sh", "-c", "printf out; printf err >&2"])
        .run()
        .code(0)
        .stdout("out")
        .stderr("err");
    let bytes: Vec<u8> = (0..=255).collect();
    subject
        .dcx(&["cat"])
        .stdin(bytes.clone())
        .run()
        .code(0)
        .stdout_bytes(&bytes);
    subject.dcx(&["cat"]).run().code(0).stdout("");
    subject.dcx(&["[", "!", "-t", "1", "]"]).run().code(0);
    // Env layers: the CLI's variables, substituted.
    subject
        .dcx(&[
            "--remote-env",
            "FOO=bar",
            "--remote-env",
            "EMPTY=",
            "--remote-env",
        ])
        .args([
            "VIA_LOCAL=${localEnv:DCX_TEST_LOCAL}",
            "sh",
            "-c",
            r#"echo "$FOO/$EMPTY/$VIA_LOCAL""#,
        ])
        .env("DCX_TEST_LOCAL", "local-value")
        .run()
        .code(0)
        .stdout("bar//local-value\n");
    // User and working directory.
    subject.dcx(&["id", "-un"]).run().code(0).stdout("root\n");
    subject
        .dcx(&["--user", "vscode", "sh", "-c", "id -un; pwd"])
        .run()
        .code(0)
        .stdout("vscode\n/home/vscode\n");
    subject
        .dcx(&["-u", "1000", "id", "-u"])
        .run()
        .code(0)
        .stdout("1000\n");
    subject
        .dcx(&["--workdir", "/tmp", "pwd"])
        .run()
        .code(0)
        .stdout("/tmp\n");
    subject
        .dcx(&["--workdir", "/nonexistent", "true"])
        .run()
        .code(1)
        .stdout("")
        .stderr("error: Cannot use the working directory /nonexistent in the container: no such file or directory.\n");
    subject
        .dcx(&["--user", "nosuchuser", "true"])
        .run()
        .code(1)
        .stderr("error: Unknown user nosuchuser: the container's /etc/passwd has no such user.\n");
    // PTY: the size before the first instruction, interactive input.
    assert_fixed_size_from_the_start(subject, 10);
    let mut run = subject.dcx(&["sh"]).spawn_in_terminal(24, 80);
    run.type_in(b"FOO=BAR\necho ${FOO}hi${FOO}\nexit 5\n");
    assert_eq!(run.wait(), Some(5));
    run.stdout.wait_for("BARhiBAR");
    // JSON mode: a TTY, output as raw events, stdin EOF forwarded.
    let out = subject
        .dcx(&["--log-format", "json", "cat"])
        .stdin("json-in\n")
        .run()
        .code(0)
        .stdout("");
    assert!(
        out.stderr_text().contains(r#""type":"raw""#),
        "{}",
        out.stderr_text()
    );
    assert!(
        out.stderr_text().contains("json-in"),
        "{}",
        out.stderr_text()
    );
    // Signals reach the process; dcx ends with its code.
    let run = subject
        .dcx(&[
            "sh",
            "-c",
            "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 1; done",
        ])
        .spawn();
    run.stdout.wait_for("ready");
    run.signal("TERM");
    let stdout = run.stdout.clone();
    assert_eq!(run.finish(), Some(7));
    stdout.wait_for("got TERM");
    let run = subject.dcx(&["sleep", "200"]).spawn();
    subject.wait_until_running("sleep 200");
    run.signal("TERM");
    assert_eq!(run.finish(), Some(143));
    assert_eq!(subject.count_running("sleep 200"), 0);
    // --timeout: the whole process group, children included.
    subject
        .dcx(&["--timeout", "1s", "sleep", "201"])
        .run()
        .code(124)
        .stderr("error: Timed out after 1s.\n");
    assert_eq!(subject.count_running("sleep 201"), 0);
    subject
        .dcx(&["--timeout", "1s", "sh", "-c", "sleep 202; echo never"])
        .run()
        .code(124)
        .stdout("");
    assert_eq!(subject.count_running("sleep 202"), 0);
    // A reader that goes away ends the process too (SIGPIPE), not only dcx.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{} | head -n 1; echo \"${{PIPESTATUS[0]}}\"",
            subject.dcx_line(&["yes", "piped"])
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped\n141\n");
    let started = std::time::Instant::now();
    while subject.count_running("yes piped") > 0 {
        assert!(started.elapsed().as_secs() < 30, "yes piped still runs");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Under a terminal: a missing command is 126 as without one, a missing directory dcx's error.
    let mut run = subject
        .dcx(&["no-such-command-here"])
        .spawn_in_terminal(24, 80);
    let code = run.wait();
    assert!(
        code == Some(126) || code == Some(255),
        "{code:?}: {}",
        run.stdout.text()
    );
    let mut run = subject
        .dcx(&["--workdir", "/nonexistent", "true"])
        .spawn_in_terminal(24, 80);
    assert_eq!(run.wait(), Some(1));
    run.stdout
        .wait_for("Cannot use the working directory /nonexistent in the container");
}

#[test]
fn the_scenarios_behave_the_same_on_docker() {
    scenarios(&TestContainer::start(BUSYBOX));
}

#[test]
fn the_scenarios_behave_the_same_on_crun() {
    scenarios(&CrunContainer::start("busybox", &[]));
}

/// A crun container whose every exec is crun's own (`DCX_CRUN_DIRECT=0`).
struct CrunsOwnExec(CrunContainer);

impl Subject for CrunsOwnExec {
    fn dcx(&self, args: &[&str]) -> Cmd {
        self.0.dcx(args).env(CRUN_ONLY.0, CRUN_ONLY.1)
    }

    fn processes(&self) -> Vec<String> {
        self.0.processes()
    }
}

#[test]
fn the_scenarios_behave_the_same_with_crun_s_own_exec() {
    scenarios(&CrunsOwnExec(CrunContainer::start("busybox", &[])));
}

#[test]
fn crun_needs_no_docker_daemon() {
    let c = CrunContainer::start("busybox", &[]);
    c.dcx(&["echo", "no daemon needed"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .run()
        .code(0)
        .stdout("no daemon needed\n");
}

#[test]
fn crun_containers_are_found_by_prefix_and_annotations() {
    let ws = TestWorkspace::copy("basic");
    std::fs::write(
        ws.path.join(".devcontainer/devcontainer.json"),
        r#"{ "image": "crun", "workspaceFolder": "/tmp", "remoteEnv": { "FROM_WS": "yes" } }"#,
    )
    .unwrap();
    let folder = format!("devcontainer.local_folder={}", ws.path_str());
    let config = format!(
        "devcontainer.config_file={}/.devcontainer/devcontainer.json",
        ws.path_str()
    );
    let meta =
        r#"devcontainer.metadata=[{"remoteUser":"vscode","remoteEnv":{"FROM_LABEL":"label"}}]"#;
    // A root of its own: the test lists every container in it.
    let root = std::path::PathBuf::from(format!(
        "{}-selection",
        crate::harness::crun_root().display()
    ));
    let c = CrunContainer::start_in(root.clone(), "busybox", &[&folder, &config, meta]);
    let crun = |args: &[&str]| {
        dcx()
            .args(["exec", "--runtime", "crun", "--crun-root", c.root_str()])
            .args(args.iter().copied())
    };
    let print = [
        "sh",
        "-c",
        r#"echo "$(id -un) $(pwd) $FROM_WS $FROM_LABEL""#,
    ];
    crun(&["--workspace-folder", ws.path_str()])
        .args(print)
        .run()
        .code(0)
        .stdout("vscode /tmp yes label\n");
    // The labels alone name no config: only the metadata applies, home is the directory.
    crun(&["--id-label", &folder])
        .args(print)
        .run()
        .code(0)
        .stdout("vscode /home/vscode  label\n");
    // Only the label applies with a bare id: home as the working directory.
    crun(&["--container-id", &c.id])
        .args(print)
        .run()
        .code(0)
        .stdout("vscode /home/vscode  label\n");
    // A unique prefix finds it; an ambiguous one lists the candidates; none names the id.
    let prefix = &c.id[..c.id.len() - 1];
    crun(&["--container-id", prefix, "true"]).run().code(0);
    let twin = CrunContainer::start_in(root, "busybox", &[]);
    let common: String =
        c.id.chars()
            .zip(twin.id.chars())
            .take_while(|(a, b)| a == b)
            .map(|(a, _)| a)
            .collect();
    let mut both = [c.id.clone(), twin.id.clone()];
    both.sort();
    crun(&["--container-id", &common, "true"])
        .run()
        .code(1)
        .stderr(&format!(
            "error: Container id prefix {common} matches more than one container ({}); give more of the id.\n",
            both.join(", ")
        ));
    crun(&["--container-id", "no-such-crun-container", "true"])
        .run()
        .code(1)
        .stderr("error: No such container: no-such-crun-container\n");
}

#[test]
fn a_stopped_crun_container_is_refused() {
    let c = CrunContainer::start("busybox", &[]);
    c.crun(&["kill", &c.id, "KILL"]);
    let started = std::time::Instant::now();
    while c.crun(&["state", &c.id]).contains("\"running\"") {
        assert!(started.elapsed().as_secs() < 30, "never stopped");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    c.dcx(&["true"]).run().code(1).stdout("").stderr(&format!(
        "error: Container {id} is not running (state: stopped). A stopped OCI container cannot be restarted: delete it (`crun --root {root} delete {id}`) and run it again.\n",
        id = c.id,
        root = c.root_str()
    ));
}

#[test]
fn the_probe_and_its_cache_work_on_crun() {
    let c = CrunContainer::start("debian", &[]);
    let plan = |extra: &[&str]| -> serde_json::Value {
        let out = c
            .dcx(&[extra, &["--dry-run", "true"]].concat())
            .run()
            .code(0);
        serde_json::from_str(&out.stdout_text()).unwrap()
    };
    let first = plan(&["--user", "vscode", "--no-probe-cache"]);
    assert_eq!(first["runtime"], "crun");
    assert_eq!(first["user_env_probe"]["source"], "probed");
    assert_eq!(first["user_env_probe"]["shell"], "/bin/bash");
    // A dry run stores nothing; a real run fills the cache.
    assert_eq!(
        plan(&["--user", "vscode"])["user_env_probe"]["source"],
        "probed"
    );
    c.dcx(&["--user", "vscode", "true"]).run().code(0);
    let warm = plan(&["--user", "vscode"]);
    assert_eq!(warm["user_env_probe"]["source"], "host-cache");
    // The probed env reaches the command: a login shell's PATH and HOME.
    c.dcx(&["--user", "vscode", "sh", "-c", "echo $HOME; echo $PATH"])
        .run()
        .code(0)
        .stdout("/home/vscode\n/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games\n");
}

/// What the process with this pid runs: its argv[0] and the file behind `/proc/<pid>/exe`.
fn running_as(pid: u32) -> (String, String) {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let arg0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    (
        String::from_utf8_lossy(arg0).into_owned(),
        exe.display().to_string(),
    )
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|child| child.parse().unwrap())
        .collect()
}

/// What the process's open file descriptors point at.
fn open_files(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.display().to_string())
        .collect()
}

/// Waits until the process with this pid has a child (crun), and returns that child's pid.
fn first_child(pid: u32) -> u32 {
    let started = std::time::Instant::now();
    loop {
        if let Some(child) = children(pid).first() {
            return *child;
        }
        assert!(started.elapsed().as_secs() < 30, "{pid} started nothing");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The environment variable that leaves every exec to crun.
const CRUN_ONLY: (&str, &str) = ("DCX_CRUN_DIRECT", "0");

#[test]
fn a_plain_exec_is_entered_by_dcx_itself() {
    let c = CrunContainer::start("busybox", &[]);
    // Nothing to relay: dcx starts the process in the container itself (no crun), with its own
    // stdio, in a session of its own; dcx stays only to pass signals on to its whole group,
    // and reports its status.
    let run = c
        .dcx(&["sh", "-c", "sleep 303 & echo ready; exec sleep 300"])
        .spawn();
    run.stdout.wait_for("ready");
    c.wait_until_running("sleep 303");
    let process = first_child(run.pid());
    assert_eq!(running_as(process), ("sleep".into(), "/bin/busybox".into()));
    let stdout_of = |pid: u32| std::fs::read_link(format!("/proc/{pid}/fd/1")).unwrap();
    assert_eq!(stdout_of(process), stdout_of(run.pid()));
    // The sealed helper copy that started it is close-on-exec: nothing holds it open.
    assert!(
        open_files(process)
            .iter()
            .all(|file| !file.contains("memfd")),
        "{:?}",
        open_files(process)
    );
    run.signal("TERM");
    assert_eq!(run.finish(), Some(143));
    // The signal reached the whole group: the background sleep is gone too.
    let started = std::time::Instant::now();
    while c.count_running("sleep 303") > 0 {
        assert!(
            started.elapsed().as_secs() < 10,
            "sleep 303 outlived the group signal"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Something to relay (a timeout): dcx stays, and runs crun from a sealed copy.
    let run = c
        .dcx(&["--timeout", "60s", "sh", "-c", "echo ready; exec sleep 301"])
        .spawn();
    run.stdout.wait_for("ready");
    let crun_pid = children(run.pid())[0];
    let (arg0, exe) = running_as(crun_pid);
    assert_eq!(arg0, "crun");
    assert!(exe.starts_with("/memfd:crun"), "crun runs from {exe}");
    run.signal("TERM");
    assert_eq!(run.finish(), Some(143));
    // A working directory dcx cannot see (under a tmpfs) is left to crun, through the relay, so
    // that its absence is still dcx's error.
    c.dcx(&["--workdir", "/tmp/not-there", "true"])
        .run()
        .code(1)
        .stdout("")
        .stderr("error: Cannot use the working directory /tmp/not-there in the container: no such file or directory.\n");
    c.dcx(&["--workdir", "/tmp", "pwd"])
        .run()
        .code(0)
        .stdout("/tmp\n");
    // What fails before the program starts is crun's to say, in its words and exit code.
    c.dcx(&["no-such-program"])
        .run()
        .code(255)
        .stdout("")
        .stderr(
            "executable file `no-such-program` not found in $PATH: No such file or directory\n",
        );
    c.dcx(&["/etc/passwd"])
        .run()
        .code(255)
        .stderr("open executable: Permission denied\n");
    // A crun the user names runs every exec; one that is not there is dcx's error, whichever
    // path runs it.
    for extra in [&[][..], &["--timeout", "5s"][..]] {
        c.dcx(&[extra, &["--crun-path", "/nonexistent/crun", "true"]].concat())
            .run()
            .code(1)
            .stderr("error: Cannot run /nonexistent/crun: No such file or directory\n");
    }
}

#[test]
fn a_plain_exec_left_to_crun_hands_over_to_a_sealed_crun() {
    let c = CrunContainer::start("busybox", &[]);
    // DCX_CRUN_DIRECT=0: dcx hands its own stdio to crun, which runs from a sealed copy of
    // itself (crun does not start a second time).
    let run = c
        .dcx(&["sh", "-c", "echo ready; exec sleep 300"])
        .env(CRUN_ONLY.0, CRUN_ONLY.1)
        .spawn();
    run.stdout.wait_for("ready");
    let crun_pid = first_child(run.pid());
    let (arg0, exe) = running_as(crun_pid);
    assert_eq!(arg0, "crun");
    assert!(exe.starts_with("/memfd:crun"), "crun runs from {exe}");
    let container_process = first_child(crun_pid);
    let stdout_of = |pid: u32| std::fs::read_link(format!("/proc/{pid}/fd/1")).unwrap();
    assert_eq!(stdout_of(container_process), stdout_of(run.pid()));
    for pid in [crun_pid, container_process] {
        assert!(
            open_files(pid).iter().all(|file| !file.contains("memfd")),
            "{pid}: {:?}",
            open_files(pid)
        );
    }
    assert_eq!(running_as(container_process).0, "sleep");
    run.signal("TERM");
    assert_eq!(run.finish(), Some(143));
}

/// What a process shows of how it was started: ids, groups, capabilities, no_new_privs,
/// seccomp, signal mask, cgroups, limits, umask, env, working directory, descriptors,
/// namespaces; then whether it leads its session (`own session` only when dcx started it).
const STARTED_AS: &str = r#"grep -E '^(Uid|Gid|Groups|Cap|NoNewPrivs|Seccomp|SigBlk|SigCgt)' /proc/self/status
cat /proc/self/cgroup; ulimit -n; umask; env | sort; pwd
ls -l /proc/self/fd/ 2>/dev/null | sed 1d | awk '{print $9, $10, $11}' | sed 's/pipe:.*/pipe/'
cat /proc/self/oom_score_adj; for n in mnt net ipc uts pid cgroup; do readlink /proc/self/ns/$n; done
mkdir /tmp/made-$$ 2>&1 | sed 's/-[0-9]*//'
printf 'SigIgn but 32, 33: %x\n' $(( 0x$(grep SigIgn /proc/self/status | cut -f2) & ~0x180000000 ))
set -- $(cat /proc/$$/stat); [ "$1" = "$6" ] && echo own session >&2 || true"#;

#[test]
fn dcx_s_own_exec_starts_the_process_as_crun_does() {
    let plain = CrunContainer::start("busybox", &[]);
    let filtered =
        CrunContainer::start_configured("busybox", &[("DCX_CRUN_SECCOMP_DENY", "mkdir,mkdirat")]);
    for c in [&plain, &filtered] {
        for user in ["root", "vscode", "4242"] {
            // Started by a caller that ignores some signals (crun gives the process every
            // signal at its default action).
            let line = format!(
                "trap '' USR1 TSTP; exec {}",
                c.dcx_line(&["--user", user, "sh", "-c", STARTED_AS])
            );
            let direct = Cmd::program("sh").args(["-c", &line]).run().code(0);
            let by_crun = Cmd::program("sh")
                .args(["-c", &line])
                .env(CRUN_ONLY.0, CRUN_ONLY.1)
                .run()
                .code(0);
            assert!(
                direct.stdout_text().contains("SigIgn but 32, 33: 0\n"),
                "{direct:?}"
            );
            assert_eq!(direct.stdout_text(), by_crun.stdout_text(), "{user}");
            assert_eq!(direct.stderr_text(), "own session\n", "{user}");
            assert_eq!(by_crun.stderr_text(), "", "{user}");
        }
    }
    let status = |c: &CrunContainer| {
        c.dcx(&[
            "--user",
            "vscode",
            "sh",
            "-c",
            "grep -E '^(Uid|CapEff|Seccomp):' /proc/self/status; mkdir /tmp/d",
        ])
        .run()
    };
    // The values themselves (so that the comparison above compares something).
    status(&plain)
        .code(0)
        .stdout("Uid:\t1000\t1000\t1000\t1000\nCapEff:\t00000000200004eb\nSeccomp:\t0\n");
    status(&filtered)
        .code(1)
        .stdout("Uid:\t1000\t1000\t1000\t1000\nCapEff:\t00000000200004eb\nSeccomp:\t2\n")
        .stderr("mkdir: can't create directory '/tmp/d': Operation not permitted\n");
}

#[test]
fn a_container_that_could_reach_dcx_s_binary_is_left_to_crun() {
    // CAP_SYS_PTRACE in the container would open /proc/PID/exe of even an undumpable process:
    // crun, which runs from a sealed copy of itself, starts the process.
    let own_session = "set -- $(cat /proc/$$/stat); echo $(( $1 == $6 ))";
    let c = CrunContainer::start_configured("busybox", &[("DCX_CRUN_CAPS_ADD", "CAP_SYS_PTRACE")]);
    c.dcx(&["sh", "-c", own_session])
        .run()
        .code(0)
        .stdout("0\n");
    // So is one with crun's own extensions (here: supplementary groups kept).
    let extended = CrunContainer::start("busybox", &["run.oci.keep_original_groups=1"]);
    extended
        .dcx(&["sh", "-c", own_session])
        .run()
        .code(0)
        .stdout("0\n");
    // And a plain one is dcx's (so the two checks above can fail).
    let plain = CrunContainer::start("busybox", &[]);
    plain
        .dcx(&["sh", "-c", own_session])
        .run()
        .code(0)
        .stdout("1\n");
    // A `#!/proc/self/exe` program (CVE-2019-5736) started by dcx reaches only the sealed copy
    // of its helper, never the host's dcx binary (which would print its version).
    plain
        .dcx(&[
            "sh",
            "-c",
            "printf '#!/proc/self/exe --version\\n' > /tmp/evil; chmod +x /tmp/evil",
        ])
        .run()
        .code(0);
    // (dcx itself would print `dcx 0.1.0 …`, or its usage for the extra argument.)
    let evil = plain.dcx(&["/tmp/evil"]).run();
    let shown = format!("{}{}", evil.stdout_text(), evil.stderr_text());
    assert!(
        !shown.contains("dcx ") && !shown.contains("Usage"),
        "{shown:?}"
    );
    // A file the kernel will not run fails as under crun: its words, its code, no shell.
    plain
        .dcx(&[
            "sh",
            "-c",
            "echo 'echo ran' > /tmp/plain; chmod +x /tmp/plain",
        ])
        .run()
        .code(0);
    for env in [("", ""), CRUN_ONLY] {
        let mut run = plain.dcx(&["/tmp/plain"]);
        if !env.0.is_empty() {
            run = run.env(env.0, env.1);
        }
        run.run()
            .code(1)
            .stdout("")
            .stderr("exec: Exec format error\n");
    }
}

#[test]
fn no_hand_over_gives_the_process_a_file_of_the_host_and_wrapped_cruns_still_run() {
    let c = CrunContainer::start("busybox", &[]);
    // stdout is a file: the process gets a pipe from dcx, as on Docker, not the file itself.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = std::process::Command::new(crate::harness::dcx_path())
        .args(["exec", "--runtime", "crun", "--crun-root", c.root_str()])
        .args(["--container-id", &c.id])
        .args(["sh", "-c", "ls -l /proc/self/fd/1; exec sleep 302"])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    c.wait_until_running("sleep 302");
    assert_ne!(running_as(child.id()).0, "crun");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(143));
    let listing = std::fs::read_to_string(&out).unwrap();
    assert!(listing.contains("pipe:"), "{listing}");
    // A crun behind a wrapper script runs from its path, in both ways of running it.
    let wrapper = dir.path().join("crun-wrapper");
    std::fs::write(&wrapper, "#!/bin/sh\nexec crun \"$@\"\n").unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let wrapper = wrapper.display().to_string();
    for extra in [&[][..], &["--timeout", "30s"][..]] {
        c.dcx(&[extra, &["--crun-path", &wrapper, "echo", "wrapped"]].concat())
            .run()
            .code(0)
            .stdout("wrapped\n");
    }
}

/// Issue 25, finding 2: what dcx passes to a crun exec (config `remoteEnv`, `--remote-env`,
/// the command) never reaches a host argv, which every host user can read in `ps`; the process
/// gets it all the same, and the process file is gone once crun has ended (on both paths: crun
/// handed dcx's stdio, and relayed).
#[test]
fn nothing_dcx_passes_to_crun_reaches_a_host_argv() {
    let c = CrunContainer::start("busybox", &[]);
    let secret = "hunter2-5f3a9c";
    let assignment = format!("DCX_TEST_SECRET={secret}");
    for (extra, env) in [
        (&[][..], ("", "")),
        (&[][..], CRUN_ONLY),
        (&["--timeout", "60s"][..], ("", "")),
    ] {
        let args = [
            extra,
            &[
                "--remote-env",
                &assignment,
                "sh",
                "-c",
                "echo \"ready $DCX_TEST_SECRET\"; exec sleep 302",
            ],
        ]
        .concat();
        let mut command = c.dcx(&args);
        if !env.0.is_empty() {
            command = command.env(env.0, env.1);
        }
        let run = command.spawn();
        run.stdout.wait_for(&format!("ready {secret}"));
        // Every argv but dcx's own (where this test itself put the value).
        let own = run.pid().to_string();
        let argvs: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy() != own)
            .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
            .collect();
        let leaked: Vec<&String> = argvs.iter().filter(|argv| argv.contains(secret)).collect();
        assert!(leaked.is_empty(), "{leaked:?}");
        // This run's crun, and the process file it was given (none when dcx started the
        // process itself).
        let Some(crun) = children(run.pid())
            .into_iter()
            .find(|pid| running_as(*pid).0 == "crun")
        else {
            assert!(extra.is_empty() && env.0.is_empty(), "no crun under dcx");
            run.signal("TERM");
            assert_eq!(run.finish(), Some(143));
            continue;
        };
        let crun_argv = std::fs::read(format!("/proc/{crun}/cmdline")).unwrap();
        let crun_argv: Vec<String> = String::from_utf8_lossy(&crun_argv)
            .split('\0')
            .map(str::to_owned)
            .collect();
        let at = crun_argv
            .iter()
            .position(|word| word == "--process")
            .unwrap();
        // The process file is one of dcx's descriptors: a memfd, on no disk.
        let process_file = std::path::PathBuf::from(&crun_argv[at + 1]);
        assert!(
            process_file.starts_with(format!("/proc/{}/fd", run.pid())),
            "{}",
            process_file.display()
        );
        let target = std::fs::read_link(&process_file).unwrap();
        assert!(
            target
                .to_string_lossy()
                .starts_with("/memfd:dcx-crun-process"),
            "{}",
            target.display()
        );
        assert!(
            std::fs::read_to_string(&process_file)
                .unwrap()
                .contains(secret)
        );
        // Which another user of the host cannot open.
        let user = std::env::var("DCX_UNPRIVILEGED_USER").unwrap_or_else(|_| "dcx-tester".into());
        let other = Cmd::program("setpriv")
            .args(["--reuid", &user, "--regid", &user, "--init-groups", "cat"])
            .arg(&process_file)
            .run();
        assert!(
            other.stderr_text().contains("Permission denied"),
            "{other:?}"
        );
        assert!(!other.stdout_text().contains(secret));
        let leaked: Vec<&String> = argvs.iter().filter(|argv| argv.contains(secret)).collect();
        assert!(leaked.is_empty(), "{leaked:?}");
        run.signal("TERM");
        assert_eq!(run.finish(), Some(143));
        // Its process file went with it.
        assert!(!process_file.exists(), "{}", process_file.display());
    }
}

/// The container's passwd file, read on the host to make `--user` numeric (and for `HOME`), is
/// resolved inside its root: an absolute symlink planted there reads the container's own file
/// at that path, never the host's file of the same path.
#[test]
fn a_planted_passwd_symlink_reads_nothing_of_the_host() {
    // Not under /tmp, which the container mounts over.
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let rootfs = dir.path().join("rootfs");
    copy_rootfs("busybox", &rootfs);
    // The same absolute path on the host and in the container, with different contents.
    let target = dir.path().join("accounts");
    std::fs::write(&target, "planted:x:4242:4242::/host-home:/bin/sh\n").unwrap();
    let inside = rootfs.join(target.strip_prefix("/").unwrap());
    std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
    std::fs::write(
        &inside,
        "root:x:0:0::/root:/bin/sh\nplanted:x:1000:1000::/home/vscode:/bin/sh\n",
    )
    .unwrap();
    std::fs::remove_file(rootfs.join("etc/passwd")).unwrap();
    std::os::unix::fs::symlink(&target, rootfs.join("etc/passwd")).unwrap();
    let c = CrunContainer::start_writable(&rootfs);
    for env in [("", ""), CRUN_ONLY] {
        let mut run = c.dcx(&["--user", "planted", "id", "-u"]);
        if !env.0.is_empty() {
            run = run.env(env.0, env.1);
        }
        run.run().code(0).stdout("1000\n");
    }
}
