//! `dcx cp` and the agent's `fs.*` methods on the real daemon and real crun containers: a file
//! tree (a symlink, a dangling one, an empty folder, modes, fixed mtimes) round-tripped both
//! ways and compared entry by entry; ownership given to the user on the way in; tar streams on
//! stdin and stdout; a 1 GiB file in bounded memory; `..` and symlink escapes refused on crun;
//! the error messages; and the file methods through the socket with the same cases.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::agent::Agent;
use crate::harness::{Cmd, CrunContainer, DEBIAN, TestContainer, dcx, dcx_path, docker};

/// A container of either engine, with the flags that select it.
enum Target {
    Docker(TestContainer),
    Crun(CrunContainer),
}

impl Target {
    fn docker() -> Self {
        Self::Docker(TestContainer::start(DEBIAN))
    }

    fn crun() -> Self {
        Self::Crun(CrunContainer::start("debian", &[]))
    }

    fn flags(&self) -> Vec<String> {
        match self {
            Self::Docker(c) => vec!["--container-id".into(), c.name.clone()],
            Self::Crun(c) => vec![
                "--runtime".into(),
                "crun".into(),
                "--crun-root".into(),
                c.root_str().into(),
                "--container-id".into(),
                c.id.clone(),
            ],
        }
    }

    fn name(&self) -> &str {
        match self {
            Self::Docker(c) => &c.name,
            Self::Crun(c) => &c.id,
        }
    }

    /// `dcx cp <selector> <args…>`.
    fn cp(&self, args: &[&str]) -> Cmd {
        dcx()
            .args(["cp"])
            .args(self.flags())
            .args(args.iter().copied())
    }

    /// A shell line run in the container as root; its stdout.
    fn sh(&self, line: &str) -> String {
        match self {
            Self::Docker(c) => docker(&["exec", &c.id, "sh", "-c", line]),
            Self::Crun(c) => c.crun(&["exec", &c.id, "sh", "-c", line]),
        }
    }

    fn session(&self, agent: &Agent, extra: Value) -> String {
        let mut params = match self {
            Self::Docker(c) => json!({"container_id": c.id}),
            Self::Crun(c) => {
                json!({"container_id": c.id, "runtime": "crun", "crun_root": c.root_str()})
            }
        };
        for (key, value) in extra.as_object().into_iter().flatten() {
            params[key] = value.clone();
        }
        agent.ok("session.create", params)["session_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

const MTIME: &str = "@1600000000";

/// The test tree: files of several modes, a symlink, a dangling one, an empty folder, a name
/// with a space, a read-only file deep down; every mtime fixed (folders last).
fn make_tree(root: &Path) -> PathBuf {
    let tree = root.join("tree");
    for dir in ["bin", "empty", "sub/deep"] {
        std::fs::create_dir_all(tree.join(dir)).unwrap();
    }
    let files: [(&str, &[u8], u32); 5] = [
        ("a.txt", b"alpha\n", 0o640),
        ("bin/run.sh", b"#!/bin/sh\necho run\n", 0o750),
        ("with space.txt", b"spaced", 0o600),
        ("sub/deep/file", b"deep\n", 0o444),
        ("binary", &[0, 1, 2, 255, 254, 10, 13], 0o644),
    ];
    for (name, bytes, mode) in files {
        std::fs::write(tree.join(name), bytes).unwrap();
        std::fs::set_permissions(tree.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::os::unix::fs::symlink("a.txt", tree.join("link")).unwrap();
    std::os::unix::fs::symlink("missing/target", tree.join("dangling")).unwrap();
    std::fs::set_permissions(tree.join("empty"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "find '{}' -depth -exec touch -h -d {MTIME} {{}} +",
            tree.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    tree
}

/// Every entry under `root` as one line: path, kind, mode, size, mtime, link target, content.
fn describe(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let relative = path.strip_prefix(root).unwrap().display().to_string();
            let kind = if meta.file_type().is_symlink() {
                format!("link->{}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                "dir".to_owned()
            } else {
                format!("file:{:?}", std::fs::read(&path).unwrap())
            };
            // A symlink's own mode is always 0777 on Linux.
            out.push(format!(
                "{relative} {kind} {:o} {}",
                meta.mode() & 0o7777,
                meta.mtime()
            ));
            if meta.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

fn round_trip(target: &Target) {
    let host = tempfile::tempdir().unwrap();
    let tree = make_tree(host.path());
    let tree_arg = tree.display().to_string();
    target.sh("rm -rf /tmp/rt /tmp/into && mkdir /tmp/into");

    // A destination that does not exist takes the source's place under its own name.
    let out = target.cp(&[&tree_arg, ":/tmp/rt"]).run().code(0);
    assert!(
        out.stderr_text().starts_with("Successfully copied ")
            && out
                .stderr_text()
                .ends_with(&format!(" to {}:/tmp/rt\n", target.name())),
        "{}",
        out.stderr_text()
    );
    // Inside: modes, mtimes, links and ownership (root's: no user given).
    assert_eq!(
        target.sh(
            "cd /tmp/rt && stat -c '%n %a %u:%g %Y' a.txt bin/run.sh empty 'with space.txt' sub/deep/file"
        ),
        "a.txt 640 0:0 1600000000\nbin/run.sh 750 0:0 1600000000\nempty 700 0:0 1600000000\nwith space.txt 600 0:0 1600000000\nsub/deep/file 444 0:0 1600000000\n"
    );
    assert_eq!(
        target.sh("readlink /tmp/rt/link /tmp/rt/dangling"),
        "a.txt\nmissing/target\n"
    );
    // An existing folder receives the source under its name.
    target
        .cp(&["-q", &tree_arg, ":/tmp/into/"])
        .run()
        .code(0)
        .stderr("");
    assert_eq!(target.sh("cat /tmp/into/tree/a.txt"), "alpha\n");

    // And back: into a new host folder, and into an existing one.
    let back = host.path().join("back");
    let out = target
        .cp(&[":/tmp/rt", back.to_str().unwrap()])
        .run()
        .code(0);
    assert!(
        out.stderr_text()
            .ends_with(&format!(" to {}\n", back.display())),
        "{}",
        out.stderr_text()
    );
    assert_eq!(describe(&back), describe(&tree));
    let existing = host.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    target
        .cp(&[":/tmp/rt", existing.to_str().unwrap()])
        .run()
        .code(0);
    assert_eq!(describe(&existing.join("rt")), describe(&tree));

    // A folder's contents (`/.`), both ways.
    let contents = host.path().join("contents");
    std::fs::create_dir(&contents).unwrap();
    target
        .cp(&[":/tmp/rt/.", contents.to_str().unwrap()])
        .run()
        .code(0);
    assert_eq!(describe(&contents), describe(&tree));
    target.sh("rm -rf /tmp/merged && mkdir /tmp/merged");
    target
        .cp(&[&format!("{tree_arg}/."), ":/tmp/merged"])
        .run()
        .code(0);
    assert_eq!(target.sh("cat /tmp/merged/sub/deep/file"), "deep\n");

    // One file onto another, renamed.
    let single = host.path().join("single.txt");
    std::fs::write(&single, "old").unwrap();
    target
        .cp(&[":/tmp/rt/a.txt", single.to_str().unwrap()])
        .run()
        .code(0);
    assert_eq!(std::fs::read_to_string(&single).unwrap(), "alpha\n");
    target.sh("rm -rf /tmp/rt /tmp/into /tmp/merged");
}

#[test]
fn docker_cp_round_trips_a_tree() {
    round_trip(&Target::docker());
}

#[test]
fn crun_cp_round_trips_a_tree() {
    round_trip(&Target::crun());
}

fn ownership_and_streams(target: &Target) {
    let host = tempfile::tempdir().unwrap();
    let tree = make_tree(host.path());
    target.sh("rm -rf /tmp/owned /tmp/streamed && mkdir /tmp/streamed");
    // Given to the user, every entry (links included).
    target
        .cp(&["-u", "nobody", tree.to_str().unwrap(), ":/tmp/owned"])
        .run()
        .code(0);
    assert_eq!(
        target.sh("find /tmp/owned -exec stat -c '%u:%g' {} + | sort -u"),
        "65534:65534\n"
    );
    assert_eq!(target.sh("stat -c %a /tmp/owned/bin/run.sh"), "750\n");

    // A tar on stdin, extracted into a folder.
    let tar = Command::new("tar")
        .args(["-c", "-C", tree.to_str().unwrap(), "."])
        .output()
        .unwrap()
        .stdout;
    target
        .cp(&["-", ":/tmp/streamed"])
        .stdin(tar)
        .run()
        .code(0)
        .stdout("");
    assert_eq!(target.sh("cat '/tmp/streamed/with space.txt'"), "spaced");
    // A tar on stdout, as docker cp writes it (the top entry named by the path).
    let out = target.cp(&[":/tmp/owned", "-"]).run().code(0).stderr("");
    let listing = Command::new("tar")
        .arg("-t")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&out.stdout)?;
            child.wait_with_output()
        })
        .unwrap();
    let names = String::from_utf8(listing.stdout).unwrap();
    for name in [
        "owned/",
        "owned/a.txt",
        "owned/empty/",
        "owned/link",
        "owned/sub/deep/file",
    ] {
        assert!(names.lines().any(|line| line == name), "{name}: {names}");
    }
    target.sh("rm -rf /tmp/owned /tmp/streamed");
}

#[test]
fn docker_cp_gives_files_to_the_user_and_streams_tar() {
    ownership_and_streams(&Target::docker());
}

#[test]
fn crun_cp_gives_files_to_the_user_and_streams_tar() {
    ownership_and_streams(&Target::crun());
}

/// A host file name that is not UTF-8 is copied as docker cp copies it: its bytes kept.
#[test]
fn docker_cp_keeps_a_host_name_that_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let c = TestContainer::start(DEBIAN);
    let dir = tempfile::tempdir().unwrap();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9");
    std::fs::write(dir.path().join(name), "bytes\n").unwrap();
    dcx()
        .current_dir(dir.path())
        .args(["cp", "--container-id", &c.id])
        .arg(name)
        .arg(":/tmp/")
        .run()
        .code(0);
    // The name's bytes in the container, as hex.
    let shown = c.sh("for f in /tmp/caf*; do printf %s \"$f\" | od -An -tx1; cat \"$f\"; done");
    assert_eq!(
        shown.split_whitespace().collect::<Vec<_>>(),
        [
            "2f", "74", "6d", "70", "2f", "63", "61", "66", "e9", "bytes"
        ]
    );
}

/// The peak RSS (KiB) of `dcx cp <args>`, measured by /usr/bin/time.
fn peak_rss(target: &Target, args: &[&str]) -> u64 {
    let out = Cmd::program("/usr/bin/time")
        .args(["-f", "%M", dcx_path(), "cp", "-q"])
        .args(target.flags())
        .args(args.iter().copied())
        .run()
        .code(0);
    let text = out.stderr_text();
    text.lines()
        .last()
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("no RSS in {text:?}"))
}

fn gigabyte(target: &Target) {
    const SIZE: u64 = 1 << 30;
    const BOUND_KIB: u64 = 100 * 1024;
    let host = tempfile::tempdir().unwrap();
    let big = host.path().join("big");
    std::fs::File::create(&big).unwrap().set_len(SIZE).unwrap();
    let rss = peak_rss(target, &[big.to_str().unwrap(), ":/tmp/big"]);
    assert!(rss < BOUND_KIB, "copying 1 GiB in took {rss} KiB");
    assert_eq!(target.sh("stat -c %s /tmp/big"), format!("{SIZE}\n"));
    std::fs::remove_file(&big).unwrap();
    let rss = peak_rss(target, &[":/tmp/big", big.to_str().unwrap()]);
    assert!(rss < BOUND_KIB, "copying 1 GiB out took {rss} KiB");
    assert_eq!(std::fs::metadata(&big).unwrap().len(), SIZE);
    target.sh("rm -f /tmp/big");
}

#[test]
fn docker_cp_streams_a_gigabyte_in_bounded_memory() {
    gigabyte(&Target::docker());
}

#[test]
fn crun_cp_streams_a_gigabyte_in_bounded_memory() {
    gigabyte(&Target::crun());
}

#[test]
fn crun_cp_never_leaves_the_container() {
    let target = Target::crun();
    // A host folder with a secret, and links in the container that name it.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("secret"), "host secret").unwrap();
    let hostdir = host.path().display().to_string();
    target.sh(&format!(
        "ln -sfn /../../../../..{hostdir} /tmp/abs && ln -sfn ../../../../../../..{hostdir} /tmp/rel"
    ));
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("got");
    for src in [
        "/tmp/abs/secret".to_owned(),
        "/tmp/rel/secret".to_owned(),
        "/tmp/abs/.".to_owned(),
        format!("/../../../../..{hostdir}/secret"),
    ] {
        target
            .cp(&[&format!(":{src}"), dest.to_str().unwrap()])
            .run()
            .code(1);
        assert!(!dest.exists(), "{src} reached the host");
    }
    // Writing through them stays inside too.
    let file = out.path().join("planted");
    std::fs::write(&file, "x").unwrap();
    for dst in [":/tmp/abs/", ":/tmp/rel/planted", ":/tmp/abs/planted"] {
        target.cp(&[file.to_str().unwrap(), dst]).run().code(1);
    }
    assert_eq!(
        std::fs::read_dir(host.path()).unwrap().count(),
        1,
        "something was written into the host folder"
    );
    // The links themselves are copied as links.
    target
        .cp(&[":/tmp/abs", dest.to_str().unwrap()])
        .run()
        .code(0);
    assert_eq!(
        std::fs::read_link(&dest).unwrap().display().to_string(),
        format!("/../../../../..{hostdir}")
    );
    // A file the container sees through a mount of its own (its /tmp), not the rootfs's.
    target.cp(&[file.to_str().unwrap(), ":/tmp/"]).run().code(0);
    assert_eq!(target.sh("cat /tmp/planted"), "x");
    assert!(!Path::new("/var/cache/dcx/rootfs/debian/tmp/planted").exists());
}

#[test]
fn cp_errors_name_the_path() {
    let target = Target::docker();
    let name = target.name().to_owned();
    let host = tempfile::tempdir().unwrap();
    let tree = make_tree(host.path());
    let file = tree.join("a.txt");
    let cp = |args: &[&str]| target.cp(args).run();
    cp(&[":/nope", host.path().join("x").to_str().unwrap()])
        .code(1)
        .stderr(&format!(
            "error: No such file or directory in container {name}: /nope\n"
        ));
    cp(&[tree.to_str().unwrap(), ":/etc/hostname"])
        .code(1)
        .stderr(&format!(
            "error: Cannot copy the directory {} onto the file /etc/hostname.\n",
            tree.display()
        ));
    cp(&[file.to_str().unwrap(), ":/nonexistent/dir/x"])
        .code(1)
        .stderr("error: The destination directory /nonexistent/dir does not exist.\n");
    cp(&[file.to_str().unwrap(), ":/tmp/not-there/"])
        .code(1)
        .stderr("error: The destination directory /tmp/not-there/ does not exist.\n");
    target
        .cp(&["-", ":/etc/hostname"])
        .stdin(Vec::new())
        .run()
        .code(1)
        .stderr("error: /etc/hostname is not a directory.\n");
    cp(&[host.path().join("missing").to_str().unwrap(), ":/tmp/"])
        .code(1)
        .stderr(&format!(
            "error: No such file or directory: {}\n",
            host.path().join("missing").display()
        ));
    let usage = cp(&["a", "b"]);
    assert_ne!(usage.code, Some(0));
    assert!(
        usage
            .stderr_text()
            .contains("One of SRC and DST must be a path in the container, written :PATH"),
        "{}",
        usage.stderr_text()
    );
    // An empty SRC names nothing: refused, and nothing is uploaded (not the current folder).
    let empty = cp(&["", ":/tmp/from-empty"]);
    assert_eq!(
        (empty.code, empty.stderr_text()),
        (
            Some(1),
            "error: SRC is empty: give a host path, :PATH in the container, or -.\n".to_owned()
        )
    );
    assert_eq!(
        target.sh("test -e /tmp/from-empty && echo there || echo absent"),
        "absent\n"
    );
}

/// The file methods on `target`, through the in-container helper or (`helper: false`) by the
/// engine's own file calls.
fn fs_methods(target: &Target, helper: bool) {
    let agent = Agent::start(&[]);
    let session = target.session(
        &agent,
        json!({"user": "nobody", "cwd": "/tmp", "helper": helper}),
    );
    let mut client = agent.client();
    let call = |client: &mut crate::agent::Client, method: &str, params: Value| {
        let mut params = params;
        params["session_id"] = Value::from(session.as_str());
        client.call(method, params)
    };
    let ok = |client: &mut crate::agent::Client, method: &str, params: Value| {
        let answer = call(client, method, params.clone());
        assert_eq!(answer["ok"], true, "{method} {params}: {answer}");
        answer["data"].clone()
    };
    let code = |client: &mut crate::agent::Client, method: &str, params: Value| {
        let answer = call(client, method, params.clone());
        assert_eq!(answer["ok"], false, "{method} {params}: {answer}");
        answer["error"]["code"].as_str().unwrap().to_owned()
    };
    target.sh("rm -rf /tmp/fs && mkdir /tmp/fs && chmod 777 /tmp/fs");
    // Relative to the session's directory, as its commands left it.
    ok(&mut client, "exec.run", json!({"command": "cd /tmp/fs"}));
    let written = ok(
        &mut client,
        "fs.write",
        json!({"path": "notes/a.txt", "data": "hello"}),
    );
    assert_eq!(written["path"], "/tmp/fs/notes/a.txt");
    assert_eq!(
        (written["size"].clone(), written["mode"].clone()),
        (json!(5), json!("0644"))
    );
    ok(
        &mut client,
        "fs.write",
        json!({"path": "notes/a.txt", "data": " world", "append": true}),
    );
    let read = ok(&mut client, "fs.read", json!({"path": "notes/a.txt"}));
    assert_eq!(
        (read["data"].clone(), read["eof"].clone()),
        (json!("hello world"), json!(true))
    );
    let part = ok(
        &mut client,
        "fs.read",
        json!({"path": "/tmp/fs/notes/a.txt", "offset": 6, "length": 3}),
    );
    assert_eq!(
        (
            part["data"].clone(),
            part["eof"].clone(),
            part["size"].clone()
        ),
        (json!("wor"), json!(false), json!(11))
    );
    // Owned by the session's user, replaced in one step with the mode asked for.
    assert_eq!(
        target.sh("stat -c '%U %a' /tmp/fs/notes /tmp/fs/notes/a.txt; ls -A /tmp/fs/notes"),
        "nobody 755\nnobody 644\na.txt\n"
    );
    let bytes: Vec<u8> = (0..=255).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    ok(
        &mut client,
        "fs.write",
        json!({"path": "bin.dat", "data_b64": b64, "mode": "0600"}),
    );
    let read = ok(&mut client, "fs.read", json!({"path": "bin.dat"}));
    assert_eq!(read["data_b64"], Value::from(b64));
    assert_eq!(read["mode"], "0600");
    assert_eq!(
        target.sh("stat -c '%U %a %s' /tmp/fs/bin.dat"),
        "nobody 600 256\n"
    );

    // Listing and stat, links included.
    target.sh("ln -s notes/a.txt /tmp/fs/link && mkdir /tmp/fs/empty");
    let listed = ok(&mut client, "fs.list", json!({"path": "."}));
    let names: Vec<&str> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bin.dat", "empty", "link", "notes"]);
    let link = ok(&mut client, "fs.stat", json!({"path": "link"}));
    assert_eq!(
        (link["kind"].clone(), link["link_target"].clone()),
        (json!("symlink"), json!("notes/a.txt"))
    );
    assert_eq!(
        ok(&mut client, "fs.read", json!({"path": "link"}))["data"],
        "hello world"
    );
    assert_eq!(
        ok(&mut client, "fs.stat", json!({"path": "empty"}))["kind"],
        "directory"
    );

    // Errors as codes.
    assert_eq!(
        code(&mut client, "fs.read", json!({"path": "nope"})),
        "no_such_file"
    );
    assert_eq!(
        code(&mut client, "fs.stat", json!({"path": "nope"})),
        "no_such_file"
    );
    assert_eq!(
        code(&mut client, "fs.read", json!({"path": "empty"})),
        "is_a_directory"
    );
    assert_eq!(
        code(
            &mut client,
            "fs.write",
            json!({"path": "empty", "data": "x"})
        ),
        "is_a_directory"
    );
    assert_eq!(
        code(&mut client, "fs.list", json!({"path": "bin.dat"})),
        "not_a_directory"
    );
    target.sh("head -c 17000000 /dev/zero > /tmp/fs/big");
    assert_eq!(
        code(&mut client, "fs.read", json!({"path": "big"})),
        "too_large"
    );
    let tail = ok(
        &mut client,
        "fs.read",
        json!({"path": "big", "offset": 16999990}),
    );
    assert_eq!(tail["length"], 10);
    assert_eq!(
        code(&mut client, "fs.write", json!({"path": "x"})),
        "bad_request"
    );
    target.sh("rm -rf /tmp/fs");
}

#[test]
fn docker_fs_methods() {
    let target = Target::docker();
    fs_methods(&target, true);
    fs_methods(&target, false);
}

#[test]
fn crun_fs_methods() {
    fs_methods(&Target::crun(), false);
}

#[test]
fn crun_fs_methods_never_leave_the_container() {
    let target = Target::crun();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("secret"), "host secret").unwrap();
    let hostdir = host.path().display().to_string();
    target.sh(&format!("ln -sfn /../../../..{hostdir} /tmp/esc"));
    let agent = Agent::start(&[]);
    let session = target.session(&agent, json!({}));
    let mut client = agent.client();
    for path in [
        "/tmp/esc/secret".to_owned(),
        format!("../../../../../..{hostdir}/secret"),
    ] {
        let (code, _) = client.error("fs.read", json!({"session_id": session, "path": path}));
        assert_eq!(code, "no_such_file", "{path}");
    }
    let answer = client.call(
        "fs.write",
        json!({"session_id": session, "path": "/tmp/esc/planted", "data": "x"}),
    );
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(std::fs::read_dir(host.path()).unwrap().count(), 1);
}

/// A crun container started under a parent of the test's own that reaps it (this machine's
/// pid 1 reaps no orphan, and a zombie keeps its pid): send it the container's pid once the
/// container is killed, and its pid is free again.
struct Reaped {
    container: CrunContainer,
    parent: std::process::Child,
}

impl Reaped {
    fn start() -> Self {
        use std::io::{BufRead, BufReader};
        let id = format!("dcx-it-{}-reaped", std::process::id());
        let root = crate::harness::crun_root();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/crun/run.sh");
        let rootfs = crate::harness::test_rootfs("debian");
        // PR_SET_CHILD_SUBREAPER (36): the container's init, orphaned when crun exits, is its.
        let reaper = r#"
import ctypes, os, subprocess, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
subprocess.run(["bash"] + sys.argv[1:], check=True, stdin=subprocess.DEVNULL)
print("started", flush=True)
os.waitpid(int(sys.stdin.readline()), 0)
print("reaped", flush=True)
"#;
        let mut parent = Command::new("python3")
            .args(["-c", reaper])
            .arg(&script)
            .arg(&root)
            .arg(&id)
            .arg(&rootfs)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(parent.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "started\n");
        Self {
            container: CrunContainer { id, root },
            parent,
        }
    }

    /// Reaps the container's killed first process `pid`.
    fn reap(&mut self, pid: i64) {
        use std::io::{BufRead, BufReader, Write};
        let stdin = self.parent.stdin.as_mut().unwrap();
        writeln!(stdin, "{pid}").unwrap();
        let mut line = String::new();
        BufReader::new(self.parent.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "reaped\n");
        self.parent.wait().unwrap();
    }
}

/// A host process given `pid` (the next pid set through `/proc/sys/kernel/ns_last_pid`, as
/// root; retried while other processes of the machine take it first).
fn host_process_with_pid(pid: i64) -> std::process::Child {
    for _ in 0..200 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string())
            .expect("tests run as root: write /proc/sys/kernel/ns_last_pid");
        let mut child = Command::new("sleep").arg("600").spawn().unwrap();
        if i64::from(child.id()) == pid {
            return child;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!(
        "no host process could be given pid {pid}: {:?}",
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
    );
}

/// Issue 25, finding 1: a session keeps the crun container's first process as it was when the
/// session was created (pid and start time); once that process is gone, and even once a host
/// process holds its pid, the file methods answer that the container is gone and never reach
/// the host's root.
#[test]
fn crun_fs_methods_never_reach_the_host_through_a_reused_pid() {
    let mut reaped = Reaped::start();
    let crun = CrunContainer {
        id: reaped.container.id.clone(),
        root: reaped.container.root.clone(),
    };
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("secret"), "host secret").unwrap();
    let hostdir = host.path().display().to_string();
    let agent = Agent::start(&[]);
    let session = agent.ok(
        "session.create",
        json!({"container_id": crun.id, "runtime": "crun", "crun_root": crun.root_str()}),
    )["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut client = agent.client();
    let mut call = |method: &str, params: Value| {
        let mut params = params;
        params["session_id"] = Value::from(session.as_str());
        client.call(method, params)
    };
    assert_eq!(call("fs.list", json!({"path": "/"}))["ok"], true);
    let state: Value = serde_json::from_str(&crun.crun(&["state", &crun.id])).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    crun.crun(&["kill", &crun.id, "KILL"]);
    reaped.reap(pid);
    // Stopped, its state still there: not running.
    let answer = call("fs.read", json!({"path": "/etc/hostname"}));
    assert_eq!(answer["error"]["code"], "container_not_running", "{answer}");

    crun.crun(&["delete", &crun.id]);
    let mut reused = host_process_with_pid(pid);
    let secret = format!("{hostdir}/secret");
    let answers = [
        call("fs.read", json!({"path": secret})),
        call("fs.stat", json!({"path": secret})),
        call("fs.list", json!({"path": hostdir})),
        call("fs.list", json!({"path": "/"})),
        call(
            "fs.write",
            json!({"path": format!("{hostdir}/planted"), "data": "x"}),
        ),
    ];
    let _ = reused.kill();
    let _ = reused.wait();
    for answer in answers {
        assert_eq!(answer["ok"], false, "{answer}");
        assert_eq!(answer["error"]["code"], "no_such_container", "{answer}");
        assert!(!answer.to_string().contains("host secret"), "{answer}");
    }
    assert_eq!(
        std::fs::read_dir(host.path()).unwrap().count(),
        1,
        "a file was written on the host"
    );
}

/// Issue 25, finding 8: a tree 2,000 folders deep is copied both ways (the walks keep their own
/// stack: no depth of the input's can overflow dcx's).
fn deep_tree(target: &Target) {
    const DEPTH: usize = 2000;
    let host = tempfile::tempdir().unwrap();
    let mut deep = host.path().join("deep");
    std::fs::create_dir(&deep).unwrap();
    for _ in 0..DEPTH {
        deep.push("d");
        std::fs::create_dir(&deep).unwrap();
    }
    std::fs::write(deep.join("f"), "bottom\n").unwrap();
    target.sh("rm -rf /tmp/deep");
    target
        .cp(&["-q", host.path().join("deep").to_str().unwrap(), ":/tmp/"])
        .run()
        .code(0);
    assert_eq!(
        target.sh("find /tmp/deep -type d | wc -l; cat $(find /tmp/deep -name f)"),
        format!("{}\nbottom\n", DEPTH + 1)
    );
    let back = host.path().join("back");
    target
        .cp(&["-q", ":/tmp/deep", back.to_str().unwrap()])
        .run()
        .code(0);
    let found = Command::new("sh")
        .arg("-c")
        .arg("find . -type d | wc -l; cat $(find . -name f)")
        .current_dir(&back)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&found.stdout),
        format!("{}\nbottom\n", DEPTH + 1)
    );
    target.sh("rm -rf /tmp/deep");
    // `rm` takes any depth.
    assert!(
        Command::new("rm")
            .arg("-rf")
            .arg(host.path())
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn docker_cp_copies_a_tree_2000_folders_deep() {
    deep_tree(&Target::docker());
}

#[test]
fn crun_cp_copies_a_tree_2000_folders_deep() {
    deep_tree(&Target::crun());
}

/// The names in the host folder `dir`, sorted.
fn host_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Issue 25, finding 24: a copy into crun killed (SIGKILL) in the middle of a file leaves no
/// part of it under its name: the file is written under a temporary name and renamed whole.
#[test]
fn crun_cp_killed_mid_file_leaves_no_partial_file_under_its_name() {
    use std::io::Write;
    let target = Target::crun();
    target.sh("rm -rf /tmp/dst && mkdir /tmp/dst && echo old > /tmp/dst/big");
    // A tar of one 8 MiB file, of which only the first 2 MiB are sent (the rest never comes).
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("big"), vec![b'x'; 8 << 20]).unwrap();
    let tar = Command::new("tar")
        .args(["-c", "-C", host.path().to_str().unwrap(), "big"])
        .output()
        .unwrap()
        .stdout;
    let mut child = Command::new(dcx_path())
        .arg("cp")
        .args(target.flags())
        .args(["-", ":/tmp/dst"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&tar[..2 << 20]).unwrap();
    stdin.flush().unwrap();
    let listed = || target.sh("ls -A /tmp/dst");
    let started = std::time::Instant::now();
    // Something written: a second name, or (were it written in place) the old file changed.
    while listed().lines().count() < 2 && target.sh("cat /tmp/dst/big") == "old\n" {
        assert!(
            started.elapsed().as_secs() < 60,
            "nothing written: {}",
            listed()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    let listing = listed();
    let mut names: Vec<&str> = listing.lines().collect();
    names.sort_unstable();
    assert_eq!(names.len(), 2, "{listing}");
    assert!(names[0].starts_with(".big.dcx-"), "{listing}");
    assert_eq!(names[1], "big");
    // The file under its name is still the old one, whole.
    assert_eq!(target.sh("cat /tmp/dst/big"), "old\n");
    target.sh("rm -rf /tmp/dst");
}

/// Issue 25, finding 24, the host's side: a copy out of the container killed while it writes a
/// file leaves no part of it under its name.
#[test]
fn cp_killed_while_writing_a_host_file_leaves_no_partial_file_under_its_name() {
    let target = Target::crun();
    target.sh("rm -f /tmp/big && truncate -s 1G /tmp/big");
    let host = tempfile::tempdir().unwrap();
    let dest = host.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let mut child = Command::new(dcx_path())
        .arg("cp")
        .args(target.flags())
        .args([":/tmp/big", dest.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while host_names(&dest).is_empty() {
        assert!(started.elapsed().as_secs() < 60, "nothing written");
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let names = host_names(&dest);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with(".big.dcx-"), "{names:?}");
    target.sh("rm -f /tmp/big");
}

/// Every path under `root` (relative, as bytes) and each file's contents, sorted.
fn byte_tree(root: &Path) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    use std::os::unix::ffi::OsStrExt;
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            if path.is_dir() {
                pending.push(path);
                found.push((relative, None));
            } else {
                found.push((relative, Some(std::fs::read(&path).unwrap())));
            }
        }
    }
    found.sort();
    found
}

/// Issue 25, finding 18: folders and files whose names are not UTF-8, inside a copied tree,
/// keep their bytes both ways.
fn names_that_are_not_utf8(target: &Target) {
    use std::os::unix::ffi::OsStrExt;
    let host = tempfile::tempdir().unwrap();
    let tree = host.path().join("nu");
    let latin1 = tree.join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    let deeper = latin1.join(std::ffi::OsStr::from_bytes(b"\xff\xfe dir"));
    std::fs::create_dir_all(&deeper).unwrap();
    std::fs::write(latin1.join("f"), "one\n").unwrap();
    std::fs::write(
        deeper.join(std::ffi::OsStr::from_bytes(b"n\x80me")),
        "two\n",
    )
    .unwrap();
    target.sh("rm -rf /tmp/nu");
    target
        .cp(&["-q", "-u", "nobody", tree.to_str().unwrap(), ":/tmp/"])
        .run()
        .code(0);
    // The names' bytes in the container, as hex, and what the files hold.
    assert_eq!(
        target.sh(
            "cd /tmp/nu && find . -mindepth 1 | sort | od -An -tx1 | tr -s ' \\n' ' '; cat caf*/f caf*/*dir/n*me; stat -c %u caf*/*dir"
        ),
        " 2e 2f 63 61 66 e9 0a 2e 2f 63 61 66 e9 2f 66 0a 2e 2f 63 61 66 e9 2f ff fe 20 64 69 72 0a 2e 2f 63 61 66 e9 2f ff fe 20 64 69 72 2f 6e 80 6d 65 0a one\ntwo\n65534\n"
    );
    let back = host.path().join("back");
    target
        .cp(&["-q", ":/tmp/nu", back.to_str().unwrap()])
        .run()
        .code(0);
    assert_eq!(byte_tree(&back), byte_tree(&tree));
    target.sh("rm -rf /tmp/nu");
}

#[test]
fn docker_cp_keeps_folder_names_that_are_not_utf8() {
    names_that_are_not_utf8(&Target::docker());
}

#[test]
fn crun_cp_keeps_folder_names_that_are_not_utf8() {
    names_that_are_not_utf8(&Target::crun());
}

/// Issue 25, finding 21: a socket or a device is never a silent success: refused by name as a
/// copy's source, named in a warning inside a tree Docker's daemon archived, and a failure
/// naming it where dcx walks the tree (the host's side, crun's).
#[test]
fn cp_names_every_socket_and_device_it_does_not_copy() {
    let bind = "python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])'";
    let docker = Target::docker();
    docker.sh(&format!(
        "rm -rf /tmp/sp && mkdir /tmp/sp && echo f > /tmp/sp/f && mknod /tmp/sp/null c 1 3 && {bind} /tmp/sp/sock"
    ));
    let host = tempfile::tempdir().unwrap();
    let out = |name: &str| host.path().join(name).display().to_string();
    for src in ["/tmp/sp/null", "/tmp/sp/sock"] {
        docker
            .cp(&[&format!(":{src}"), &out("x")])
            .run()
            .code(1)
            .stderr(&format!(
                "error: Cannot copy {src}: it is a device or socket; dcx cp copies files, folders, symbolic links and fifos.\n"
            ));
        assert!(!host.path().join("x").exists());
    }
    // In a tree: the daemon archives the device (dcx names it; docker cp would make it on the
    // host) and leaves the socket out on its own.
    let copied = docker.cp(&[":/tmp/sp", &out("tree")]).run().code(0);
    assert!(
        copied.stderr_text().starts_with(
            "warning: tree/null is a device or socket: not copied (dcx cp copies files, folders, symbolic links and fifos).\nSuccessfully copied "
        ),
        "{}",
        copied.stderr_text()
    );
    assert_eq!(host_names(&host.path().join("tree")), ["f"]);

    // From the host: a socket as the source, and inside a tree.
    let tree = host.path().join("withsock");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("a"), "a").unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(tree.join("s")).unwrap();
    let socket = tree.join("s").display().to_string();
    docker
        .cp(&[&socket, ":/tmp/"])
        .run()
        .code(1)
        .stderr(&format!(
            "error: Cannot copy {socket}: it is a socket; dcx cp copies files, folders, symbolic links and fifos.\n"
        ));
    let failed = docker.cp(&[tree.to_str().unwrap(), ":/tmp/"]).run().code(1);
    assert!(
        failed.stderr_text().contains(
            "withsock/s is a socket: dcx cp copies files, folders, symbolic links and fifos"
        ),
        "{}",
        failed.stderr_text()
    );

    // crun: dcx archives the container's side itself, and extracts a tar into it.
    let crun = Target::crun();
    crun.sh(&format!(
        "rm -rf /tmp/sp && mkdir /tmp/sp && {bind} /tmp/sp/sock"
    ));
    for (src, shown) in [
        ("/dev/null", "null is a character device"),
        ("/tmp/sp", "sp/sock is a socket"),
    ] {
        let failed = crun.cp(&[&format!(":{src}"), &out("y")]).run().code(1);
        assert!(
            failed.stderr_text().contains(&format!(
                "{shown}: dcx cp copies files, folders, symbolic links and fifos"
            )),
            "{}",
            failed.stderr_text()
        );
    }
    let tar = Command::new("tar")
        .args(["-c", "-C", "/dev", "null"])
        .output()
        .unwrap()
        .stdout;
    let failed = crun.cp(&["-", ":/tmp/sp"]).stdin(tar).run().code(1);
    assert!(
        failed.stderr_text().contains("/tmp/sp/null in container"),
        "{}",
        failed.stderr_text()
    );
    assert!(
        failed
            .stderr_text()
            .contains("a device or socket in the archive, not created"),
        "{}",
        failed.stderr_text()
    );
}

/// Issue 25, finding 4: links the session's user planted (a file's name pointing at root's
/// file, a folder's at root's folder) do not make dcx write, as root, where that user could
/// not, through `fs.write` (by the engine's file calls) or `dcx cp -u`.
fn planted_links(target: &Target) {
    target.sh(
        "rm -rf /tmp/proj /run/rootonly && mkdir /tmp/proj /run/rootonly && chown 1000:1000 /tmp/proj \
         && echo orig > /run/rootonly/target \
         && ln -s /run/rootonly/target /tmp/proj/notes.md && ln -s /run/rootonly /tmp/proj/dir \
         && chown -h 1000:1000 /tmp/proj/notes.md /tmp/proj/dir",
    );
    let untouched = || {
        assert_eq!(
            target.sh("cat /run/rootonly/target; stat -c '%u %a' /run/rootonly /run/rootonly/target; ls -A /run/rootonly"),
            "orig\n0 755\n0 644\ntarget\n"
        );
    };
    let agent = Agent::start(&[]);
    let session = target.session(&agent, json!({"user": "vscode", "helper": false}));
    let mut client = agent.client();
    for path in ["/tmp/proj/notes.md", "/tmp/proj/dir/new.txt"] {
        let (code, message) = client.error(
            "fs.write",
            json!({"session_id": session, "path": path, "data": "owned"}),
        );
        assert_eq!(code, "permission_denied", "{path}: {message}");
        assert!(message.contains("/run/rootonly"), "{message}");
        untouched();
    }
    // Where the user may write, the write is done.
    client.ok(
        "fs.write",
        json!({"session_id": session, "path": "/tmp/proj/ok.txt", "data": "fine"}),
    );
    assert_eq!(target.sh("stat -c %u /tmp/proj/ok.txt"), "1000\n");

    let host = tempfile::tempdir().unwrap();
    let file = host.path().join("notes.md");
    std::fs::write(&file, "owned").unwrap();
    for dst in [":/tmp/proj/notes.md", ":/tmp/proj/dir/", ":/tmp/proj/dir/x"] {
        let failed = target
            .cp(&["-u", "vscode", file.to_str().unwrap(), dst])
            .run()
            .code(1);
        assert!(
            failed.stderr_text().starts_with("error: Cannot access /")
                && failed
                    .stderr_text()
                    .contains(": the user 1000:1000 may not write there, so dcx does not either"),
            "{dst}: {}",
            failed.stderr_text()
        );
        untouched();
    }
    target
        .cp(&["-q", "-u", "vscode", file.to_str().unwrap(), ":/tmp/proj/"])
        .run()
        .code(0);
    target.sh("rm -rf /tmp/proj /run/rootonly");
}

#[test]
fn docker_writes_for_a_user_never_follow_the_user_s_links_as_root() {
    planted_links(&Target::docker());
}

#[test]
fn crun_writes_for_a_user_never_follow_the_user_s_links_as_root() {
    planted_links(&Target::crun());
}

/// Issue 25, finding 3: Docker's archive call cannot reach a tmpfs mount (moby#22020): a copy
/// or `fs.write` into one is refused naming the mount, never reported as done, and root's files
/// there are not given away; elsewhere the ownership change touches only what was written.
#[test]
fn docker_writes_into_a_tmpfs_mount_are_refused_and_give_nothing_away() {
    let c = TestContainer::start_with(DEBIAN, &["--tmpfs", "/run"]);
    let target = Target::Docker(c);
    target.sh("mkdir -m 700 /run/rootonly && echo secret > /run/rootonly/secret && chmod 600 /run/rootonly/secret");
    let untouched = || {
        assert_eq!(
            target
                .sh("stat -c '%U %a' /run/rootonly /run/rootonly/secret; cat /run/rootonly/secret"),
            "root 700\nroot 600\nsecret\n"
        );
    };
    let host = tempfile::tempdir().unwrap();
    let rootonly = host.path().join("rootonly");
    std::fs::create_dir(&rootonly).unwrap();
    std::fs::write(rootonly.join("secret"), "mine").unwrap();
    // The issue's case: refused (the user may not write in /run either).
    target
        .cp(&["-u", "vscode", rootonly.to_str().unwrap(), ":/run/"])
        .run()
        .code(1);
    untouched();
    // As root, who may: the mount is what refuses it.
    let refused = target
        .cp(&["-u", "root", rootonly.to_str().unwrap(), ":/run/"])
        .run()
        .code(1);
    assert_eq!(
        refused.stderr_text(),
        format!(
            "error: Cannot access /run in container {}: it is on the tmpfs mount /run, which Docker's archive call cannot reach (it writes beneath the mount, where the container does not see it: moby#22020); write it with a command in the container instead\n",
            target.name()
        )
    );
    untouched();
    // A tree that reaches the mount point from above.
    let above = host.path().join("above");
    std::fs::create_dir_all(above.join("run/rootonly")).unwrap();
    std::fs::write(above.join("run/rootonly/secret"), "mine").unwrap();
    let refused = target
        .cp(&["-u", "root", &format!("{}/.", above.display()), ":/"])
        .run()
        .code(1);
    assert!(
        refused
            .stderr_text()
            .contains("it is on the tmpfs mount /run,"),
        "{}",
        refused.stderr_text()
    );
    untouched();
    // fs.write by the engine's file calls.
    let agent = Agent::start(&[]);
    let session = target.session(&agent, json!({"user": "root", "helper": false}));
    let (_, message) = agent.client().error(
        "fs.write",
        json!({"session_id": session, "path": "/run/rootonly/secret", "data": "x"}),
    );
    assert!(message.contains("tmpfs mount /run"), "{message}");
    untouched();

    // Elsewhere, a merge into root's folder gives the user only what was written.
    target.sh("mkdir /tmp/merge && echo old > /tmp/merge/old");
    let merge = host.path().join("merge");
    std::fs::create_dir_all(merge.join("sub")).unwrap();
    std::fs::write(merge.join("sub/new"), "new").unwrap();
    target
        .cp(&["-q", "-u", "vscode", merge.to_str().unwrap(), ":/tmp/"])
        .run()
        .code(0);
    assert_eq!(
        target.sh("cd /tmp/merge && stat -c '%n %U' . old sub sub/new"),
        ". vscode\nold root\nsub vscode\nsub/new vscode\n"
    );
}

/// The bytes the process `pid` has read so far (`rchar` of `/proc/PID/io`: files, pipes and
/// sockets alike).
fn bytes_read(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("rchar: "))
        .unwrap()
        .parse()
        .unwrap()
}

/// Issue 25, finding 12: `fs.list` costs a stat of the folder's entries, not its subtree, and a
/// ranged `fs.read` reads the range, not the file up to it: beside (and inside) a big sparse
/// file, the server reads far less than the file (counted by the kernel, not timed). Docker's
/// archive call streams through a socket, which that count leaves out: there the file is 1 TiB,
/// which no archive of it could stream within the client's wait.
fn costs_what_it_returns(target: &Target, size: &str, bytes: u64) {
    const BOUND: u64 = 16 << 20;
    target.sh(&format!(
        "rm -rf /tmp/cost && mkdir -p /tmp/cost/sub && truncate -s {size} /tmp/cost/sub/big \
         && printf 'tail-bytes' >> /tmp/cost/sub/big && touch /tmp/cost/a"
    ));
    let agent = Agent::start(&[]);
    let pid = agent.server.as_ref().unwrap().pid();
    let session = target.session(&agent, json!({"helper": false}));
    let mut client = agent.client();
    let before = bytes_read(pid);
    let listed = client.ok(
        "fs.list",
        json!({"session_id": session, "path": "/tmp/cost"}),
    );
    let names: Vec<&str> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "sub"]);
    let read = client.ok(
        "fs.read",
        json!({"session_id": session, "path": "/tmp/cost/sub/big", "offset": bytes, "length": 10}),
    );
    assert_eq!(
        (
            read["data"].clone(),
            read["size"].clone(),
            read["eof"].clone()
        ),
        (json!("tail-bytes"), json!(bytes + 10), json!(true))
    );
    let spent = bytes_read(pid) - before;
    assert!(spent < BOUND, "the server read {spent} bytes");
    target.sh("rm -rf /tmp/cost");
}

#[test]
fn docker_fs_list_and_ranged_reads_cost_what_they_return() {
    costs_what_it_returns(&Target::docker(), "1T", 1 << 40);
}

#[test]
fn crun_fs_list_and_ranged_reads_cost_what_they_return() {
    costs_what_it_returns(&Target::crun(), "1G", 1 << 30);
}

/// Issue 25, finding 22 (names that are not UTF-8): a listing gives such a name's bytes as
/// `name_b64`, and `path_b64` reaches it with `fs.stat`, `fs.list`, `fs.read` (and `fs.write`
/// through the helper, which writes as the session's user; without it, a clear refusal).
fn paths_that_are_not_utf8(target: &Target, helper: bool) {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    target.sh(
        "rm -rf /tmp/nu && mkdir -p \"/tmp/nu/$(printf 'caf\\351')\" && chmod -R 777 /tmp/nu \
         && printf bytes > \"/tmp/nu/$(printf 'caf\\351')/$(printf 'f\\377')\"",
    );
    let agent = Agent::start(&[]);
    let session = target.session(&agent, json!({"cwd": "/tmp/nu", "helper": helper}));
    let mut client = agent.client();
    let mut ok = |method: &str, mut params: Value| {
        params["session_id"] = Value::from(session.as_str());
        client.ok(method, params)
    };
    let listed = ok("fs.list", json!({"path": "/tmp/nu"}));
    assert_eq!(listed["entries"][0]["name"], "caf\u{fffd}");
    assert_eq!(listed["entries"][0]["name_b64"], b64(b"caf\xe9"));
    let listed = ok("fs.list", json!({"path_b64": b64(b"caf\xe9")}));
    assert_eq!(listed["path_b64"], b64(b"/tmp/nu/caf\xe9"));
    assert_eq!(listed["entries"][0]["name_b64"], b64(b"f\xff"));
    let file = b64(b"/tmp/nu/caf\xe9/f\xff");
    let stat = ok("fs.stat", json!({"path_b64": file}));
    assert_eq!(
        (stat["kind"].clone(), stat["size"].clone()),
        (json!("file"), json!(5))
    );
    assert_eq!(stat["path_b64"], file);
    let read = ok(
        "fs.read",
        json!({"path_b64": b64(b"caf\xe9/f\xff"), "offset": 2}),
    );
    assert_eq!(read["data"], "tes");
    let new = b64(b"/tmp/nu/caf\xe9/n\xfew");
    let params = json!({"session_id": session, "path_b64": new, "data": "new"});
    let mut client = agent.client();
    client.ok("fs.write", params);
    assert_eq!(
        target.sh("cat \"/tmp/nu/$(printf 'caf\\351')/$(printf 'n\\376w')\""),
        "new"
    );
    target.sh("rm -rf /tmp/nu");
}

/// Issue 25, finding 22: without the helper, `fs.write` to a path that is not UTF-8 goes
/// through the container's root seen from the host (crun, a local Docker) with the UTF-8
/// write's rules: the file belongs to the session's user, a final link is followed inside the
/// container, a folder the user may not write in is refused, an append appends, and no
/// temporary file is left.
fn writes_to_names_that_are_not_utf8(target: &Target) {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    target.sh(
        "rm -rf /tmp/nw && mkdir -p \"/tmp/nw/$(printf 'caf\\351')\" && chmod -R 777 /tmp/nw \
         && mkdir -m 755 \"/tmp/nw/$(printf 'r\\377')\" \
         && ln -s \"$(printf 'caf\\351/t\\377')\" \"/tmp/nw/$(printf 'l\\376')\"",
    );
    let agent = Agent::start_with_env(false, &[], &[("DCX_HELPER", "0")]);
    let session = target.session(&agent, json!({"user": "1000:1000", "helper": false}));
    let mut client = agent.client();
    let write = |path: &[u8], extra: Value| {
        let mut params = json!({"session_id": session, "path_b64": b64(path), "data": "new"});
        for (key, value) in extra.as_object().into_iter().flatten() {
            params[key] = value.clone();
        }
        params
    };
    let written = client.ok("fs.write", write(b"/tmp/nw/caf\xe9/n\xfew", json!({})));
    assert_eq!(written["name_b64"], b64(b"n\xfew"));
    assert_eq!(
        (written["size"].clone(), written["mode"].clone()),
        (json!(3), json!("0644"))
    );
    let file = "\"/tmp/nw/$(printf 'caf\\351')/$(printf 'n\\376w')\"";
    assert_eq!(
        target.sh(&format!("stat -c '%u:%g' {file}; cat {file}")),
        "1000:1000\nnew"
    );
    client.ok(
        "fs.write",
        write(
            b"/tmp/nw/caf\xe9/n\xfew",
            json!({"append": true, "mode": "0600"}),
        ),
    );
    assert_eq!(
        target.sh(&format!("stat -c '%a' {file}; cat {file}")),
        "600\nnewnew"
    );
    // Through a link: its target inside the container is written.
    client.ok("fs.write", write(b"/tmp/nw/l\xfe", json!({})));
    assert_eq!(
        target.sh("cat \"/tmp/nw/$(printf 'caf\\351')/$(printf 't\\377')\""),
        "new"
    );
    // Root's folder: the user may not write there, so dcx does not either (crun's exec
    // gives a user other than root CAP_DAC_OVERRIDE: there the user may, and so does dcx).
    if let Target::Docker(_) = target {
        let (code, message) = client.error("fs.write", write(b"/tmp/nw/r\xff/x", json!({})));
        assert_eq!(code, "permission_denied", "{message}");
        assert!(message.contains("may not write there"), "{message}");
        assert_eq!(target.sh("ls -A /tmp/nw/r*"), "");
    }
    assert_eq!(target.sh("ls -A /tmp/nw/*/ | grep -c dcx- || true"), "0\n");
    target.sh("rm -rf /tmp/nw");
}

#[test]
fn crun_fs_write_reaches_names_that_are_not_utf8_without_the_helper() {
    writes_to_names_that_are_not_utf8(&Target::crun());
}

#[test]
fn docker_fs_write_reaches_names_that_are_not_utf8_without_the_helper() {
    writes_to_names_that_are_not_utf8(&Target::docker());
}

#[test]
fn docker_fs_methods_reach_names_that_are_not_utf8() {
    paths_that_are_not_utf8(&Target::docker(), true);
}

#[test]
fn crun_fs_methods_reach_names_that_are_not_utf8() {
    paths_that_are_not_utf8(&Target::crun(), false);
}

/// Issue 25, finding 12 on a remote Docker (reached over TCP) with the helper off, where the
/// host sees no container root: a listing costs one exec naming the folder's entries and a
/// stat of each, a ranged read one exec reading the range, not the archive of the subtree or
/// the file (1 TiB here: no archive of it could stream within the client's wait). The answers
/// are the local route's, field for field.
#[test]
fn docker_remote_fs_list_and_ranged_reads_cost_what_they_return() {
    let target = Target::docker();
    target.sh(
        "rm -rf /tmp/rcost && mkdir -p /tmp/rcost/sub && truncate -s 1T /tmp/rcost/sub/big \
         && printf 'tail-bytes' >> /tmp/rcost/sub/big && printf 0123456789 > /tmp/rcost/a \
         && ln -s sub/big /tmp/rcost/link && mkdir /tmp/rcost/sub/deep",
    );
    let tcp = crate::harness::setting("DCX_TCP_HOST");
    let remote = Agent::start_with_env(false, &[], &[("DOCKER_HOST", &tcp), ("DCX_HELPER", "0")]);
    let local = Agent::start_with_env(false, &[], &[("DCX_HELPER", "0")]);
    let answers = |agent: &Agent| {
        let session = target.session(agent, json!({"helper": false}));
        let mut client = agent.client();
        let mut ok = |method: &str, mut params: Value| {
            params["session_id"] = Value::from(session.as_str());
            client.ok(method, params)
        };
        let calls = [
            ("fs.list", json!({"path": "/tmp/rcost"})),
            ("fs.list", json!({"path": "/tmp/rcost/sub"})),
            (
                "fs.read",
                json!({"path": "/tmp/rcost/sub/big", "offset": 1u64 << 40, "length": 10}),
            ),
            (
                "fs.read",
                json!({"path": "/tmp/rcost/link", "offset": (1u64 << 40) + 4}),
            ),
            (
                "fs.read",
                json!({"path": "/tmp/rcost/a", "offset": 3, "length": 4}),
            ),
            ("fs.read", json!({"path": "/tmp/rcost/a", "offset": 20})),
            ("fs.read", json!({"path": "/tmp/rcost/a"})),
        ];
        calls
            .into_iter()
            .map(|(method, params)| ok(method, params))
            .collect::<Vec<Value>>()
    };
    let remote = answers(&remote);
    let names: Vec<&str> = remote[0]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "link", "sub"]);
    assert_eq!(remote[2]["data"], "tail-bytes");
    assert_eq!(remote[3]["data"], "-bytes");
    assert_eq!(remote[4]["data"], "3456");
    assert_eq!(remote, answers(&local));
    target.sh("rm -rf /tmp/rcost");
}

/// Issue 25, finding 3 (reads): Docker's archive call reads the folder hidden beneath a tmpfs
/// mount (moby#22020), so a copy or a read out of one through it would answer silently with
/// the wrong bytes (or none): it is refused naming the mount; where the host sees the
/// container's root (a local daemon), `fs.read` reads the mount itself.
#[test]
fn docker_reads_out_of_a_tmpfs_mount_are_refused_or_see_the_mount() {
    let c = TestContainer::start_with(DEBIAN, &["--tmpfs", "/run"]);
    let target = Target::Docker(c);
    target.sh("mkdir -p /run/dir && printf in-tmpfs > /run/dir/data && touch /run/other");
    let host = tempfile::tempdir().unwrap();
    let out = host.path().join("out");
    for src in [":/run/dir/data", ":/run/dir/.", ":/run"] {
        let refused = target.cp(&[src, out.to_str().unwrap()]).run().code(1);
        assert_eq!(
            refused.stderr_text(),
            format!(
                "error: Cannot access {} in container {}: it is on the tmpfs mount /run, which Docker's archive call cannot reach (it reads the folder hidden beneath the mount: moby#22020); read it with a command in the container instead\n",
                src.trim_start_matches(':').trim_end_matches("/."),
                target.name()
            )
        );
        assert!(!out.exists());
    }
    // A local daemon: the container's root as the host sees it, mount included.
    let local = Agent::start_with_env(false, &[], &[("DCX_HELPER", "0")]);
    let session = target.session(&local, json!({"user": "root", "helper": false}));
    let read = local.client().ok(
        "fs.read",
        json!({"session_id": session, "path": "/run/dir/data", "offset": 3}),
    );
    assert_eq!(read["data"], "tmpfs");
    // A remote one: refused.
    let tcp = crate::harness::setting("DCX_TCP_HOST");
    let remote = Agent::start_with_env(false, &[], &[("DOCKER_HOST", &tcp), ("DCX_HELPER", "0")]);
    let session = target.session(&remote, json!({"user": "root", "helper": false}));
    for (method, path) in [
        ("fs.read", "/run/dir/data"),
        ("fs.list", "/run/dir"),
        ("fs.list", "/run"),
    ] {
        let (_, message) = remote
            .client()
            .error(method, json!({"session_id": session, "path": path}));
        assert!(message.contains("tmpfs mount /run,"), "{method}: {message}");
    }
}
