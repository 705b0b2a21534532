//! The `crun exec` command line, built by crun 1.8.1's rules.
//!
//! `crun --root R exec --process FILE [-t --console-socket S] <id>` (shared/reference/crun-backend.md):
//! the process itself (argv, environment, working directory, user) goes in a `process.json`
//! ([`ProcessFile`]) that exists only in dcx's memory (a sealed memfd crun opens through
//! `/proc/<dcx>/fd/N`, which only dcx's own user can), never on crun's command line, which
//! `ps` shows to every user of the host (config `remoteEnv` may hold secrets), nor on a disk;
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
    let read = |file: &str| {
        String::from_utf8_lossy(&read_in_root(container, file).unwrap_or_default()).into_owned()
    };
    let (uid, gid) = numeric_ids(user, &read("/etc/passwd"), || read("/etc/group"))?;
    Ok(format!("{uid}:{gid}"))
}

/// The largest passwd or group file read.
const ACCOUNTS_LIMIT: u64 = 16 << 20;

/// A regular file of the container's root filesystem, every symlink resolved inside that root
/// (one planted in the container never leads to a host file); `None` when there is none.
pub(super) fn read_in_root(container: &Container, path: &str) -> Option<Vec<u8>> {
    let root = crate::runtime::tree::Root::container(container.rootfs.as_deref()?).ok()?;
    root.read(path, ACCOUNTS_LIMIT).ok()
}

/// The `process.json` of one `crun exec`, in a sealed memfd of dcx's: keep it until crun has
/// read it (until crun has ended).
pub(super) struct ProcessFile {
    fd: std::os::fd::OwnedFd,
}

impl ProcessFile {
    /// The path crun opens: dcx's descriptor as `/proc` shows it (dcx stays crun's parent).
    fn path(&self) -> std::path::PathBuf {
        use std::os::fd::AsRawFd;
        format!("/proc/{}/fd/{}", std::process::id(), self.fd.as_raw_fd()).into()
    }
}

/// The process of one exec, as crun 1.8.1's `process.json` holds it.
pub(super) struct ExecProcess {
    pub(super) terminal: bool,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) args: Vec<String>,
    pub(super) env: Vec<String>,
    pub(super) cwd: String,
}

impl ExecProcess {
    /// The argv (behind the `stty` size wrapper on a terminal of a given size), environment,
    /// working directory and user of `spec` in `container`.
    pub(super) fn of(
        root: &Path,
        container: &Container,
        spec: &ExecSpec,
        terminal: bool,
    ) -> Result<Self, RuntimeError> {
        let user = numeric_user(container, spec.user.as_deref().unwrap_or("root"))?;
        let args = match spec.size.filter(|_| spec.tty) {
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
        Ok(Self {
            terminal,
            uid: uid.parse().unwrap_or(0),
            gid: gid.parse().unwrap_or(0),
            args,
            env: full_env(&base, &spec.env),
            cwd,
        })
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "terminal": self.terminal,
            "user": { "uid": self.uid, "gid": self.gid },
            "args": self.args,
            "env": self.env,
            "cwd": self.cwd,
        })
    }
}

/// The arguments of `crun --root R exec --process FILE [-t --console-socket S] <id>`, and the
/// process file they name.
pub(super) fn exec_args(
    root: &Path,
    container: &Container,
    process: &ExecProcess,
    console_socket: Option<&Path>,
) -> Result<(Vec<OsString>, ProcessFile), RuntimeError> {
    let file = write_process(&process.to_json()).map_err(|err| RuntimeError::Spawn {
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

/// `process` written to a new memfd, sealed against any change once written.
fn write_process(process: &serde_json::Value) -> std::io::Result<ProcessFile> {
    let json = process.to_string();
    let fd = super::binary::sealed_memfd("dcx-crun-process", false, json.as_bytes())?;
    Ok(ProcessFile { fd })
}

/// The container's env, then `extra` (later entries win, in the place of their last
/// occurrence), as one list; linear in the number of entries.
fn full_env(base: &[String], extra: &[String]) -> Vec<String> {
    let name = |entry: &str| entry.split('=').next().unwrap_or_default().to_owned();
    let mut last = std::collections::HashMap::new();
    for (index, entry) in base.iter().chain(extra).enumerate() {
        last.insert(name(entry), index);
    }
    base.iter()
        .chain(extra)
        .enumerate()
        .filter(|(index, entry)| last.get(&name(entry)) == Some(index))
        .map(|(_, entry)| entry.clone())
        .collect()
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

    #[test]
    fn the_process_file_is_a_sealed_memfd_that_only_reads() {
        let file = write_process(&serde_json::json!({"args": ["true"]})).unwrap();
        let path = file.path();
        assert!(path.starts_with(format!("/proc/{}/fd", std::process::id())));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            r#"{"args":["true"]}"#
        );
        let mut writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let refused = std::io::Write::write_all(&mut writer, b"{}");
        assert!(refused.is_err(), "a sealed file took a write");
    }

    #[test]
    fn many_variables_merge_in_one_pass() {
        let base: Vec<String> = (0..20_000).map(|n| format!("V{n}=base")).collect();
        let extra: Vec<String> = (0..20_000)
            .step_by(2)
            .map(|n| format!("V{n}=extra"))
            .collect();
        let merged = full_env(&base, &extra);
        assert_eq!(merged.len(), 20_000);
        assert_eq!(merged[0], "V1=base");
        assert_eq!(merged.last().unwrap(), "V19998=extra");
    }
}
