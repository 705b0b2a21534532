//! crun's state directory, read with no crun process, as [`Container`] values.
//!
//! `<root>/<id>/status` (pid, process start time, bundle, rootfs, created, cgroup) and
//! `<root>/<id>/config.json` (the create-time config: env, user, annotations, mounts; and for
//! dcx's own exec, capabilities, security labels, namespaces, seccomp) become a
//! [`Container`], its annotations standing for labels. A container is running when its pid is alive
//! and is still the process crun recorded (same start time, when crun recorded one).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::runtime::{Container, Mount, RuntimeError};

/// crun's `status` file of a container.
#[derive(Deserialize)]
pub(super) struct Status {
    pub(super) pid: i64,
    #[serde(rename = "process-start-time")]
    process_start_time: Option<u64>,
    bundle: Option<String>,
    rootfs: Option<String>,
    created: Option<String>,
    /// Its cgroup, in each hierarchy; empty when it was made with none.
    #[serde(rename = "cgroup-path")]
    pub(super) cgroup_path: Option<String>,
}

/// The parts of a container's create-time `config.json` dcx reads: what a [`Container`] shows,
/// and what decides how an exec runs (`direct.rs`).
#[derive(Deserialize, Default)]
pub(super) struct Config {
    #[serde(default)]
    pub(super) process: ProcessConfig,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) mounts: Vec<MountConfig>,
    #[serde(default)]
    pub(super) linux: LinuxConfig,
}

#[derive(Deserialize)]
pub(super) struct MountConfig {
    pub(super) destination: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    options: Vec<String>,
}

impl MountConfig {
    fn into_mount(self) -> Mount {
        let bind = self.kind.as_deref() == Some("bind")
            || self
                .options
                .iter()
                .any(|option| option == "bind" || option == "rbind");
        Mount {
            destination: self.destination,
            bind_source: self
                .source
                .filter(|source| bind && source.starts_with('/'))
                .map(PathBuf::from),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProcessConfig {
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    user: UserConfig,
    pub(super) capabilities: Option<CapabilitiesConfig>,
    pub(super) apparmor_profile: Option<String>,
    pub(super) selinux_label: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct CapabilitiesConfig {
    #[serde(default)]
    pub(super) bounding: Vec<String>,
    #[serde(default)]
    pub(super) effective: Vec<String>,
    #[serde(default)]
    pub(super) permitted: Vec<String>,
    #[serde(default)]
    pub(super) inheritable: Vec<String>,
    #[serde(default)]
    pub(super) ambient: Vec<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct LinuxConfig {
    #[serde(default)]
    pub(super) namespaces: Vec<NamespaceConfig>,
    pub(super) seccomp: Option<SeccompConfig>,
    pub(super) personality: Option<serde_json::Value>,
}

#[derive(Deserialize)]
pub(super) struct NamespaceConfig {
    #[serde(rename = "type")]
    pub(super) kind: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SeccompConfig {
    pub(super) flags: Option<Vec<String>>,
    pub(super) listener_path: Option<String>,
}

#[derive(Deserialize, Default)]
struct UserConfig {
    #[serde(default)]
    uid: u32,
    #[serde(default)]
    gid: u32,
}

/// The container `id` under `root`, read from its `status` and `config.json`.
pub(super) fn read(root: &Path, id: &str) -> Result<Container, RuntimeError> {
    let status = status(root, id).ok_or_else(|| RuntimeError::NoSuchContainer(id.to_owned()))?;
    let config = config(root, id).unwrap_or_default();
    let running = status.pid > 0 && alive(status.pid, status.process_start_time);
    let rootfs = status.rootfs.as_deref().map(|rootfs| {
        let rootfs = Path::new(rootfs);
        match &status.bundle {
            Some(bundle) if rootfs.is_relative() => Path::new(bundle).join(rootfs),
            _ => rootfs.to_path_buf(),
        }
    });
    let user = config.process.user;
    Ok(Container {
        id: id.to_owned(),
        name: id.to_owned(),
        running,
        paused: running && crate::runtime::procfs::frozen(status.pid),
        init_pid: running.then_some(status.pid),
        init_start: running
            .then(|| status.process_start_time.or_else(|| start_time(status.pid)))
            .flatten(),
        status: if running { "running" } else { "stopped" }.to_owned(),
        user: (user.uid != 0 || user.gid != 0).then(|| format!("{}:{}", user.uid, user.gid)),
        // An OCI bundle names no image; the annotation of the image spec may.
        image: config
            .annotations
            .get("org.opencontainers.image.ref.name")
            .cloned(),
        env: config.process.env,
        labels: config.annotations,
        started_at: format!(
            "{}/{}",
            status.created.unwrap_or_default(),
            status.process_start_time.unwrap_or_default()
        ),
        rootfs,
        mounts: config
            .mounts
            .into_iter()
            .map(MountConfig::into_mount)
            .collect(),
    })
}

pub(super) fn ids(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("status").is_file())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    ids.sort();
    ids
}

pub(super) fn default_root() -> PathBuf {
    match std::env::var("XDG_RUNTIME_DIR") {
        Ok(dir) if !dir.is_empty() && !rustix::process::geteuid().is_root() => {
            Path::new(&dir).join("crun")
        }
        _ => PathBuf::from("/run/crun"),
    }
}

/// The working directory the container's config gives its processes (`process.cwd`).
pub(super) fn process_cwd(root: &Path, id: &str) -> Option<String> {
    config(root, id)?.process.cwd
}

/// The `status` file of the container `id` under `root`.
pub(super) fn status(root: &Path, id: &str) -> Option<Status> {
    read_json(&root.join(id).join("status"))
}

/// The `config.json` of the container `id` under `root`.
pub(super) fn config(root: &Path, id: &str) -> Option<Config> {
    read_json(&root.join(id).join("config.json"))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Field 22 of `/proc/<pid>/stat`, the process's start time in clock ticks since boot, for a
/// process that has not exited (a zombie or dead entry gives `None`).
pub(super) fn start_time(pid: i64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let mut fields = stat[stat.rfind(')')? + 2..].split_whitespace();
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Whether `pid` is a live process now.
pub(super) fn alive_now(pid: i64) -> bool {
    start_time(pid).is_some()
}

pub(super) fn alive(pid: i64, recorded_start: Option<u64>) -> bool {
    match (start_time(pid), recorded_start) {
        (Some(now), Some(recorded)) => now == recorded,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_reads_field_22() {
        let own = std::process::id() as i64;
        assert!(start_time(own).is_some());
        assert!(alive(own, start_time(own)));
        assert!(!alive(own, start_time(own).map(|t| t + 1)));
        assert!(!alive(i64::from(i32::MAX), None));
    }

    #[test]
    fn mounts_know_their_bind_sources() {
        let mount = |json: &str| {
            serde_json::from_str::<MountConfig>(json)
                .unwrap()
                .into_mount()
        };
        assert_eq!(
            mount(r#"{"destination":"/w","type":"bind","source":"/host/w"}"#).bind_source,
            Some(PathBuf::from("/host/w"))
        );
        assert_eq!(
            mount(r#"{"destination":"/w","source":"/host/w","options":["rbind","ro"]}"#)
                .bind_source,
            Some(PathBuf::from("/host/w"))
        );
        assert_eq!(
            mount(r#"{"destination":"/tmp","type":"tmpfs","source":"tmpfs"}"#).bind_source,
            None
        );
    }
}
