//! A container's processes as the host's `/proc` shows them, zombies included.
//!
//! Every process in the pid namespace of its first process, zombies included (a cgroup no longer
//! lists those), with their users named from the container's own `/etc/passwd` (read through
//! `/proc/<pid>/root`): [`processes_like`]. Works where the engine's pids are this host's: crun, a
//! local Docker. Also the test that a pid the engine names is its container's, before its root is
//! used ([`container_root`]).

use crate::passwd::find_passwd_entry;
use crate::runtime::ProcessInfo;

/// The processes sharing `init`'s pid namespace, by pid; `None` when `init` is not visible.
pub fn processes_like(init: i64) -> Option<Vec<ProcessInfo>> {
    let namespace = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let own = namespace(&init.to_string())?;
    let passwd =
        std::fs::read_to_string(format!("/proc/{init}/root/etc/passwd")).unwrap_or_default();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(pid) = name.parse::<i64>() else {
            continue;
        };
        if namespace(&name).as_ref() != Some(&own) {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |key: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .map(|rest| rest.trim().to_owned())
                .unwrap_or_default()
        };
        let uid = field("Uid:")
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        let user = find_passwd_entry(&passwd, &uid).map_or(uid, |entry| entry.name);
        let state = field("State:")
            .chars()
            .next()
            .map(String::from)
            .unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let command = if cmdline.is_empty() {
            format!("[{}]", field("Name:"))
        } else {
            String::from_utf8_lossy(&cmdline)
                .trim_end_matches('\0')
                .replace('\0', " ")
        };
        found.push(ProcessInfo {
            user,
            pid,
            state,
            command,
        });
    }
    found.sort_by_key(|process| process.pid);
    Some(found)
}

/// `/proc/PID/root` when `pid` is, as this host's `/proc` shows it, a process of the container
/// `id`: its mount table names the engine's own folder of that container (where Docker and
/// podman keep its `hostname` and `resolv.conf`), so neither a process of another pid
/// namespace (an engine in a VM) nor a reused pid is taken for it.
pub fn container_root(pid: i64, id: &str) -> Option<std::path::PathBuf> {
    if id.len() < 32 {
        return None;
    }
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok()?;
    mounts
        .contains(id)
        .then(|| std::path::PathBuf::from(format!("/proc/{pid}/root")))
}

/// Whether the process `pid` is frozen by its cgroup's freezer (`docker pause`, `crun pause`):
/// cgroup v1's `freezer.state` reads `FROZEN`, v2's `cgroup.freeze` holds `1`. False when it
/// cannot be told (the process or its cgroup not visible here).
pub fn frozen(pid: i64) -> bool {
    let Ok(cgroups) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    cgroups.lines().any(|line| {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return false;
        };
        let file = match controllers {
            "" => format!("/sys/fs/cgroup{path}/cgroup.freeze"),
            list if list.split(',').any(|c| c == "freezer") => {
                format!("/sys/fs/cgroup/freezer{path}/freezer.state")
            }
            _ => return false,
        };
        std::fs::read_to_string(file)
            .is_ok_and(|state| matches!(state.trim(), "FROZEN" | "FREEZING" | "1"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_among_those_of_its_namespace() {
        let own = i64::from(std::process::id());
        let found = processes_like(own).unwrap();
        let me = found.iter().find(|p| p.pid == own).unwrap();
        assert!(!me.zombie());
        assert!(!me.command.is_empty());
        assert_eq!(processes_like(i64::from(i32::MAX)), None);
    }

    #[test]
    fn a_running_process_is_not_frozen() {
        assert!(!frozen(i64::from(std::process::id())));
        assert!(!frozen(i64::from(i32::MAX)));
    }
}
