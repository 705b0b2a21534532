//! The probe cache is never stale and costs no exec: a change to the user's shell startup
//! files is seen by the next exec, a cold exec takes two engine execs (the probe and the
//! command) and a warm one only the command, on Docker (the container's root as the host sees
//! it, and the archive calls when dcx may not look there) and on crun; and the cache's trust
//! rules hold for an unprivileged user as for root.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::harness::{Cmd, CrunContainer, DEBIAN, TestContainer, crun_root, dcx, docker};

/// The daemon's clock as `docker events` takes it (seconds, with nanoseconds).
fn now() -> String {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", since.as_secs(), since.subsec_nanos())
}

/// The commands exec'd in container `id` between `since` and `until`.
fn execs_between(id: &str, since: &str, until: &str) -> Vec<String> {
    docker(&[
        "events",
        "--since",
        since,
        "--until",
        until,
        "--filter",
        &format!("container={id}"),
        "--filter",
        "event=exec_create",
        "--format",
        "{{.Action}}",
    ])
    .lines()
    .map(|line| line.trim_start_matches("exec_create: ").to_owned())
    .collect()
}

/// A folder for a probe cache (`XDG_CACHE_HOME`), removed at the end.
fn cache_home() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `dcx exec` with its own probe cache, as root.
fn cached(cache: &Path) -> Cmd {
    dcx().env("XDG_CACHE_HOME", path_str(cache)).arg("exec")
}

#[test]
fn docker_a_changed_startup_file_is_seen_and_a_cold_exec_takes_two_execs() {
    let c = TestContainer::start(DEBIAN);
    let cache = cache_home();
    let exec = |args: &[&str]| {
        cached(cache.path())
            .args(["--container-id", &c.id])
            .args(args.iter().copied())
            .run()
    };
    let t0 = now();
    exec(&["printenv", "NEWVAR"]).code(1).stdout("");
    let t1 = now();
    exec(&["printenv", "NEWVAR"]).code(1).stdout("");
    let t2 = now();
    let cold = execs_between(&c.id, &t0, &t1);
    assert_eq!(cold.len(), 2, "cold: {cold:?}");
    // The probe, under the watcher that makes it die with dcx (issue 25, finding 25).
    assert!(
        cold[0].starts_with("/bin/sh -c exec 3<&0") && cold[0].contains(" sh /bin/bash -lic "),
        "{cold:?}"
    );
    assert_eq!(cold[1], "printenv NEWVAR");
    assert_eq!(execs_between(&c.id, &t1, &t2), ["printenv NEWVAR"]);

    // The user's own ~/.bashrc, then a new file in /etc/profile.d, then /etc/environment's
    // neighbour /etc/profile: each is seen by the very next exec.
    c.sh("echo 'export NEWVAR=x' >> /root/.bashrc");
    exec(&["printenv", "NEWVAR"]).code(0).stdout("x\n");
    c.sh("echo 'export FROM_D=d' > /etc/profile.d/dcx-test.sh");
    exec(&["printenv", "FROM_D"]).code(0).stdout("d\n");
    c.sh("echo 'export FROM_PROFILE=p' >> /etc/profile");
    exec(&["printenv", "FROM_PROFILE"]).code(0).stdout("p\n");
    // Unchanged again: the refreshed entry serves, with the command as the only exec.
    let t3 = now();
    exec(&["printenv", "NEWVAR"]).code(0).stdout("x\n");
    let t4 = now();
    assert_eq!(execs_between(&c.id, &t3, &t4), ["printenv NEWVAR"]);
}

#[test]
fn docker_through_tcp_the_cache_is_checked_with_the_archive_calls() {
    // dcx looks at the container's root itself only on a local socket: over TCP it asks the
    // daemon, and a change is seen all the same.
    let c = TestContainer::start(DEBIAN);
    let cache = cache_home();
    let exec = |args: &[&str]| {
        cached(cache.path())
            .env("DOCKER_HOST", &crate::harness::setting("DCX_TCP_HOST"))
            .args(["--container-id", &c.id])
            .args(args.iter().copied())
            .run()
    };
    exec(&["printenv", "NEWVAR"]).code(1);
    let t0 = now();
    exec(&["printenv", "NEWVAR"]).code(1);
    let t1 = now();
    assert_eq!(execs_between(&c.id, &t0, &t1), ["printenv NEWVAR"]);
    c.sh("echo 'export NEWVAR=tcp' >> /root/.bashrc");
    exec(&["printenv", "NEWVAR"]).code(0).stdout("tcp\n");
    // A new entry of a watched folder (the folder's time tells), then a change to it (it is
    // now one of the entries looked at).
    c.sh("echo 'export FROM_D=1' > /etc/profile.d/dcx-test.sh");
    exec(&["printenv", "FROM_D"]).code(0).stdout("1\n");
    c.sh("echo 'export FROM_D=2' >> /etc/profile.d/dcx-test.sh");
    exec(&["printenv", "FROM_D"]).code(0).stdout("2\n");
    let t2 = now();
    exec(&["printenv", "FROM_D"]).code(0).stdout("2\n");
    let t3 = now();
    assert_eq!(execs_between(&c.id, &t2, &t3), ["printenv FROM_D"]);
}

/// A private copy of the busybox root filesystem, with a passwd line of eight fields and an
/// `/etc/profile` the probe reads.
fn busybox_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(crate::harness::test_rootfs("busybox"))
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(copied.success());
    let passwd = rootfs.join("etc/passwd");
    let mut text = std::fs::read_to_string(&passwd).unwrap();
    text.push_str("eight:x:1234:1234:Eight Fields:/home/eight:/bin/sh:extra\n");
    std::fs::write(&passwd, text).unwrap();
    std::fs::create_dir_all(rootfs.join("home/eight")).unwrap();
    std::os::unix::fs::chown(rootfs.join("home/eight"), Some(1234), Some(1234)).unwrap();
    std::fs::write(rootfs.join("etc/profile"), "export FROM_PROFILE=1\n").unwrap();
    (dir, rootfs)
}

#[test]
fn crun_a_changed_startup_file_is_seen_and_a_cold_exec_takes_two_execs() {
    let (dir, rootfs) = busybox_copy();
    let c = CrunContainer::start_from(crun_root(), &rootfs, &[]);
    // crun through a wrapper that notes each exec.
    let log = dir.path().join("crun.log");
    let wrapper = dir.path().join("crun-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfor a; do [ \"$a\" = exec ] && echo \"$*\" >> '{}'; done\nexec crun \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cache = cache_home();
    let exec = |args: &[&str]| {
        cached(cache.path())
            .args(["--runtime", "crun", "--crun-root", c.root_str()])
            .args(["--crun-path", path_str(&wrapper), "--container-id", &c.id])
            .args(args.iter().copied())
            .run()
    };
    let execs = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let show = ["sh", "-c", "echo $FROM_PROFILE"];
    exec(&show).code(0).stdout("1\n");
    assert_eq!(execs(), 2, "cold: the probe and the command");
    exec(&show).code(0).stdout("1\n");
    assert_eq!(execs(), 3, "warm: the command alone");
    std::fs::write(rootfs.join("etc/profile"), "export FROM_PROFILE=2\n").unwrap();
    exec(&show).code(0).stdout("2\n");
    assert_eq!(execs(), 5);

    // A passwd line with an eighth field names a user all the same (as getent reads it).
    exec(&["--user", "eight", "sh", "-c", "id -u; echo $HOME"])
        .code(0)
        .stdout("1234\n/home/eight\n");
}

/// The unprivileged test user (scripts/setup.sh makes it): its name and uid.
fn unprivileged() -> (String, u32) {
    let name = std::env::var("DCX_UNPRIVILEGED_USER").unwrap_or_else(|_| "dcx-tester".into());
    let uid = Cmd::program("id").args(["-u", &name]).run().code(0);
    let uid = uid.stdout_text().trim().parse().unwrap();
    (name, uid)
}

/// dcx as the unprivileged user: a copy of the binary it may run, in a folder it may read.
struct AsUser {
    name: String,
    uid: u32,
    dir: tempfile::TempDir,
}

impl AsUser {
    fn new() -> Self {
        let (name, uid) = unprivileged();
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::copy(crate::harness::dcx_path(), dir.path().join("dcx")).unwrap();
        let cache = dir.path().join("cache");
        std::fs::create_dir(&cache).unwrap();
        std::os::unix::fs::chown(&cache, Some(uid), None).unwrap();
        Self { name, uid, dir }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn dcx(&self) -> Cmd {
        Cmd::program("setpriv")
            .args([
                "--reuid",
                &self.name,
                "--regid",
                &self.name,
                "--init-groups",
            ])
            .args(["env", &format!("XDG_CACHE_HOME={}", self.cache().display())])
            .arg(self.dir.path().join("dcx"))
            .arg("exec")
    }
}

#[test]
fn the_probe_cache_as_an_unprivileged_user() {
    let c = TestContainer::start(DEBIAN);
    let user = AsUser::new();
    let exec = |args: &[&str]| {
        user.dcx()
            .args(["--container-id", &c.id])
            .args(args.iter().copied())
            .run()
    };
    exec(&["printenv", "NEWVAR"]).code(1).stderr("");
    // Stored as the user's own, closed to others.
    let dir = user.cache().join("dcx/probe");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "json"))
        .unwrap();
    for (path, mode) in [(&dir, 0o700), (&file, 0o600)] {
        let meta = std::fs::metadata(path).unwrap();
        assert_eq!(
            (meta.uid(), meta.mode() & 0o777),
            (user.uid, mode),
            "{path:?}"
        );
    }
    // Warm: the command is the only exec (this user may not look at the container's root,
    // so the startup files were checked through the daemon's archive calls).
    let t0 = now();
    exec(&["printenv", "NEWVAR"]).code(1).stderr("");
    let t1 = now();
    assert_eq!(execs_between(&c.id, &t0, &t1), ["printenv NEWVAR"]);
    c.sh("echo 'export NEWVAR=seen' >> /root/.bashrc");
    exec(&["printenv", "NEWVAR"]).code(0).stdout("seen\n");

    // An entry that is not the user's own (root's here): refused, with a warning, and probed
    // anew.
    std::os::unix::fs::chown(&file, Some(0), None).unwrap();
    exec(&["printenv", "NEWVAR"])
        .code(0)
        .stdout("seen\n")
        .stderr(&format!(
            "warning: not using the probe cache {}: it belongs to uid 0, not to this user ({}); probing instead.\n",
            file.display(),
            user.uid
        ));
    // A cache folder that is a symlink (to a folder of the user's, even): refused too.
    std::fs::remove_dir_all(&dir).unwrap();
    let elsewhere = user.cache().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::chown(&elsewhere, Some(user.uid), None).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &dir).unwrap();
    exec(&["true"]).code(0).stderr(&format!(
        "warning: not using the probe cache {}: it is a symlink; the probed environment is not stored.\n",
        dir.display()
    ));
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

    // The user's own home does not exist (the test user's is /nonexistent): the exec runs,
    // and nothing is made there.
    Cmd::program("setpriv")
        .args([
            "--reuid",
            &user.name,
            "--regid",
            &user.name,
            "--init-groups",
        ])
        .args(["env", "-u", "XDG_CACHE_HOME", "HOME=/nonexistent"])
        .arg(user.dir.path().join("dcx"))
        .args(["exec", "--container-id", &c.id, "true"])
        .run()
        .code(0)
        .stderr("");
    assert!(!Path::new("/nonexistent").exists());
}
