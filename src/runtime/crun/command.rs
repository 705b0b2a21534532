//! The `crun exec` command line, built by crun 1.8.1's rules.
//!
//! `crun --root R exec [--env …] [--cwd D] --user UID:GID [-t --console-socket S] -- <id> <cmd…>`
//! (shared/reference/crun-backend.md):
//! * `--env` replaces the whole environment, so when dcx sets or removes any variable the
//!   container's env is passed first (less the removed names), followed by dcx's variables (later
//!   entries win);
//! * `--user` takes numbers only: names are resolved in the container's `/etc/passwd` and
//!   `/etc/group`, read from its root filesystem on the host;
//! * on a terminal of a given size, the command starts behind the `stty` size wrapper when the
//!   container has a `/bin/sh` (else the size is set once the terminal arrives).

use std::ffi::OsString;
use std::path::Path;

use crate::passwd::numeric_ids;
use crate::runtime::{Container, ExecSpec, RuntimeError, sized_argv};

/// `user` as crun's `UID:GID`, resolved in the container's passwd and group files.
fn numeric_user(container: &Container, user: &str) -> Result<String, RuntimeError> {
    let rootfs = container.rootfs.as_deref();
    let read = |file: &str| {
        rootfs
            .and_then(|root| std::fs::read_to_string(root.join(file)).ok())
            .unwrap_or_default()
    };
    let (uid, gid) = numeric_ids(user, &read("etc/passwd"), || read("etc/group"))?;
    Ok(format!("{uid}:{gid}"))
}

/// The arguments of `crun --root R exec [--env …] [--cwd D] --user UID:GID [-t
/// --console-socket S] -- <id> <argv…>`, with the argv behind the `stty` size wrapper on a
/// terminal of a given size.
pub(super) fn exec_args(
    root: &Path,
    container: &Container,
    spec: &ExecSpec,
    console_socket: Option<&Path>,
) -> Result<Vec<OsString>, RuntimeError> {
    let user = numeric_user(container, spec.user.as_deref().unwrap_or("root"))?;
    let argv = match spec.size.filter(|_| spec.tty) {
        // The wrapper needs a shell; without one the size is set when the terminal arrives.
        Some(size) if has_shell(container) => sized_argv(&spec.argv, size),
        _ => spec.argv.clone(),
    };
    let mut args: Vec<OsString> = vec!["--root".into(), root.into(), "exec".into()];
    if !spec.env.is_empty() || !spec.unset.is_empty() {
        let base: Vec<String> = container
            .env
            .iter()
            .filter(|entry| {
                let name = entry.split('=').next().unwrap_or_default();
                !spec.unset.iter().any(|unset| unset == name)
            })
            .cloned()
            .collect();
        for entry in full_env(&base, &spec.env) {
            args.extend(["--env".into(), entry.into()]);
        }
    }
    if let Some(cwd) = &spec.cwd {
        args.extend(["--cwd".into(), cwd.into()]);
    }
    args.extend(["--user".into(), user.into()]);
    if let Some(socket) = console_socket {
        args.extend(["-t".into(), "--console-socket".into(), socket.into()]);
    }
    args.extend(["--".into(), container.id.clone().into()]);
    args.extend(argv.into_iter().map(OsString::from));
    Ok(args)
}

/// The container's env, then `extra` (later entries win), as one list.
fn full_env(base: &[String], extra: &[String]) -> Vec<String> {
    let mut merged: Vec<String> = Vec::with_capacity(base.len() + extra.len());
    for entry in base.iter().chain(extra) {
        let name = entry.split('=').next().unwrap_or_default();
        merged.retain(|kept| kept.split('=').next() != Some(name));
        merged.push(entry.clone());
    }
    merged
}

/// Whether the container has the shell that the `stty` size wrapper needs (assumed without a
/// known rootfs).
fn has_shell(container: &Container) -> bool {
    container
        .rootfs
        .as_ref()
        .is_none_or(|rootfs| std::fs::symlink_metadata(rootfs.join("bin/sh")).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_env_comes_first_and_later_entries_win() {
        let base = ["PATH=/bin".to_owned(), "TERM=xterm".to_owned()];
        let extra = ["FOO=1".to_owned(), "PATH=/usr/bin:/bin".to_owned()];
        assert_eq!(
            full_env(&base, &extra),
            ["TERM=xterm", "FOO=1", "PATH=/usr/bin:/bin"]
        );
    }
}
