//! The `crun exec` command line, built by crun 1.8.1's rules.
//!
//! `crun --root R exec --process FILE [-t --console-socket S] <id>` (shared/reference/crun-backend.md):
//! the process itself (argv, environment, working directory, user) goes in a `process.json`
//! ([`ProcessFile`]) in a folder of dcx's own (mode 0700), never on crun's command line, which
//! `ps` shows to every user of the host (config `remoteEnv` may hold secrets);
//! * the environment is the whole one: the container's env first (less the removed names),
//!   followed by dcx's variables (later entries win);
//! * the working directory is the request's, else the container's config's, else `/` (the
//!   file needs one);
//! * the user is numeric: names are resolved in the container's `/etc/passwd` and
//!   `/etc/group`, read from its root filesystem on the host; the capabilities and the rest
//!   come from the container's config, as for a plain `crun exec`;
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

/// The `process.json` of one `crun exec`, in a private folder removed on drop: keep it until
/// crun has ended.
pub(super) struct ProcessFile {
    dir: tempfile::TempDir,
}

impl ProcessFile {
    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("process.json")
    }
}

/// The arguments of `crun --root R exec --process FILE [-t --console-socket S] <id>`, and the
/// process file they name: the argv (behind the `stty` size wrapper on a terminal of a given
/// size), environment, working directory and user.
pub(super) fn exec_args(
    root: &Path,
    container: &Container,
    spec: &ExecSpec,
    console_socket: Option<&Path>,
) -> Result<(Vec<OsString>, ProcessFile), RuntimeError> {
    let user = numeric_user(container, spec.user.as_deref().unwrap_or("root"))?;
    let argv = match spec.size.filter(|_| spec.tty) {
        // The wrapper needs a shell; without one the size is set when the terminal arrives.
        Some(size) if has_shell(container) => sized_argv(&spec.argv, size),
        _ => spec.argv.clone(),
    };
    let base: Vec<String> = container
        .env
        .iter()
        .filter(|entry| {
            let name = entry.split('=').next().unwrap_or_default();
            !spec.unset.iter().any(|unset| unset == name)
        })
        .cloned()
        .collect();
    let cwd = spec
        .cwd
        .clone()
        .or_else(|| super::state::process_cwd(root, &container.id))
        .unwrap_or_else(|| "/".to_owned());
    let (uid, gid) = user.split_once(':').unwrap_or((&user, "0"));
    let process = serde_json::json!({
        "terminal": console_socket.is_some(),
        "user": {
            "uid": uid.parse::<u32>().unwrap_or(0),
            "gid": gid.parse::<u32>().unwrap_or(0),
        },
        "args": argv,
        "env": full_env(&base, &spec.env),
        "cwd": cwd,
    });
    let file = write_process(&process).map_err(|err| RuntimeError::Spawn {
        program: "crun exec".into(),
        reason: format!("cannot write its process file: {err}"),
    })?;
    let mut args: Vec<OsString> = vec![
        "--root".into(),
        root.into(),
        "exec".into(),
        "--process".into(),
        file.path().into(),
    ];
    if let Some(socket) = console_socket {
        args.extend(["-t".into(), "--console-socket".into(), socket.into()]);
    }
    args.push(container.id.clone().into());
    Ok((args, file))
}

/// `process` written to a new private folder (0700; the file 0600).
fn write_process(process: &serde_json::Value) -> std::io::Result<ProcessFile> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tempfile::Builder::new().prefix("dcx-crun-").tempdir()?;
    let file = ProcessFile { dir };
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file.path())?;
    std::io::Write::write_all(&mut out, process.to_string().as_bytes())?;
    Ok(file)
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
