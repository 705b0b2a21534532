//! Whether crun will certainly find the working directory, and crun's wording when not.
//!
//! Seen from the host ([`workdir_visible`]): only a directory that certainly exists lets the exec
//! be handed over to crun (`Runtime::hand_over`); crun's own failure to enter it is recognised
//! ([`chdir_failure`]) and becomes dcx's working-directory error.

use std::path::Path;

use crate::runtime::Container;

/// Whether `cwd` is certainly a directory in the container, as seen from the host:
/// * `cwd` is absolute, without `.` or `..`, and the rootfs is known;
/// * no mount's destination goes through a symlink of the rootfs (crun follows those when it
///   mounts, so such a mount lands where the destination does not say);
/// * the mount that shows `cwd` is the last one, in config order (later mounts cover earlier
///   ones), whose destination holds it. At its mount point, a bind mount's source must be a
///   directory; any other mount point is one. Below it, a bind mount's source (or, with no
///   mount, the rootfs) must hold a directory at every component, and no symlink (which would
///   resolve on the host, not in the container); below any other kind of mount (tmpfs, proc)
///   nothing can be seen.
pub(super) fn workdir_visible(container: &Container, cwd: &str) -> bool {
    let cwd = Path::new(cwd);
    let Some(rootfs) = &container.rootfs else {
        return false;
    };
    if !cwd.is_absolute()
        || cwd
            .components()
            .skip(1)
            .any(|part| !matches!(part, std::path::Component::Normal(_)))
    {
        return false;
    }
    let through_symlink = |destination: &Path| {
        let mut path = rootfs.clone();
        destination.components().skip(1).any(|part| {
            path.push(part);
            // A missing component is created by crun, as a directory: nothing to follow.
            std::fs::symlink_metadata(&path).is_ok_and(|meta| meta.file_type().is_symlink())
        })
    };
    if container
        .mounts
        .iter()
        .any(|mount| through_symlink(Path::new(&mount.destination)))
    {
        return false;
    }
    let holder = container
        .mounts
        .iter()
        .rev()
        .find(|mount| cwd.starts_with(&mount.destination));
    let (base, rest) = match holder {
        Some(mount) if cwd == Path::new(&mount.destination) => {
            return mount
                .bind_source
                .as_ref()
                .is_none_or(|source| source.is_dir());
        }
        Some(mount) => match &mount.bind_source {
            Some(source) => (
                source.as_path(),
                cwd.strip_prefix(&mount.destination).unwrap_or(cwd),
            ),
            None => return false,
        },
        None => (rootfs.as_path(), cwd.strip_prefix("/").unwrap_or(cwd)),
    };
    let mut path = base.to_path_buf();
    rest.components().all(|part| {
        path.push(part);
        std::fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_dir())
    })
}

/// crun's own failure to enter the working directory (``chdir `/x`: No such file…``; on a
/// terminal coloured and behind a timestamp).
pub(super) fn chdir_failure(first_output: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(first_output);
    let line = text.lines().next()?;
    let rest = &line[line.find("chdir `")? + "chdir `".len()..];
    let reason = rest.split_once("`: ")?.1;
    // Drop a trailing colour reset (ESC[0m) and spaces.
    let reason = reason.split('\u{1b}').next().unwrap_or(reason).trim();
    Some(reason.to_lowercase())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::runtime::Mount;

    #[test]
    fn crun_chdir_failures_are_recognised() {
        assert_eq!(
            chdir_failure(b"chdir `/nope`: No such file or directory\n").as_deref(),
            Some("no such file or directory")
        );
        assert_eq!(chdir_failure(b"executable file `x` not found"), None);
    }

    #[test]
    fn a_working_directory_is_visible_only_when_certainly_a_directory() {
        let base = tempfile::tempdir().unwrap();
        let base = base.path();
        let rootfs = base.join("rootfs");
        let bound = base.join("bound");
        let other = base.join("other");
        for dir in [
            "rootfs/home/u",
            "rootfs/tmp",
            "rootfs/ws",
            "rootfs/data/sub",
            "bound/src",
            "other/sub",
        ] {
            std::fs::create_dir_all(base.join(dir)).unwrap();
        }
        std::fs::write(rootfs.join("home/file"), "").unwrap();
        std::fs::write(base.join("hosts"), "").unwrap();
        std::os::unix::fs::symlink("/", rootfs.join("home/link")).unwrap();
        let mount = |destination: &str, source: Option<PathBuf>| Mount {
            destination: destination.into(),
            bind_source: source,
        };
        let container = Container {
            rootfs: Some(rootfs.clone()),
            mounts: vec![
                mount("/tmp", None),
                mount("/ws", Some(bound.clone())),
                mount("/etc/hosts", Some(base.join("hosts"))),
                // A later mount covers an earlier, deeper one.
                mount("/data/sub", Some(bound.clone())),
                mount("/data", Some(other.clone())),
            ],
            ..Container::default()
        };
        let visible = |cwd: &str| workdir_visible(&container, cwd);
        // In the rootfs.
        assert!(visible("/"));
        assert!(visible("/home/u"));
        assert!(!visible("/home/missing"));
        assert!(!visible("/home/file"));
        // A symlink would resolve on the host, not in the container.
        assert!(!visible("/home/link"));
        assert!(!visible("/home/link/tmp"));
        // Relative or dotted paths are not judged.
        assert!(!visible("home/u"));
        assert!(!visible("/home/../home/u"));
        // A mount point is a directory, unless a bind mount shows a file there; under a bind
        // mount, its source decides; under another kind of mount, nothing can be seen.
        assert!(visible("/tmp"));
        assert!(!visible("/tmp/anything"));
        assert!(visible("/ws"));
        assert!(visible("/ws/src"));
        assert!(!visible("/ws/missing"));
        assert!(!visible("/etc/hosts"));
        // A longer name is not under the mount.
        assert!(!visible("/tmpfoo"));
        // The last mount holding the directory shows it: /data's source, not /data/sub's.
        assert!(visible("/data/sub"));
        assert!(!visible("/data/sub/src"));
        // No rootfs known: nothing is judged.
        let unknown = Container {
            mounts: container.mounts.clone(),
            ..Container::default()
        };
        assert!(!workdir_visible(&unknown, "/tmp"));
        // A mount through a symlink of the rootfs lands elsewhere: nothing is judged.
        std::os::unix::fs::symlink("/tmp", rootfs.join("run")).unwrap();
        let mut through = container.clone();
        through.mounts.push(mount("/run/shm", None));
        assert!(!workdir_visible(&through, "/home/u"));
    }
}
