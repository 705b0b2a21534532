//! The helper's end: SIGTERM to every group it started that may still run, SIGKILL after 2 s.
//!
//! A group "still runs" while it has a member that is not a zombie: many dev containers run a
//! PID 1 that never reaps, and orphans left as zombies must not hold the helper for 2 s. That
//! is read from `/proc` (every process's state and group); without a readable `/proc`, a
//! group is there while `kill(-pgid, 0)` finds it.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};

/// How long the groups have between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

/// How often the groups are looked at during the grace period.
const POLL: Duration = Duration::from_millis(20);

/// Terminates `groups` (process group ids), returning once none runs, or SIGKILL was sent.
pub fn terminate(groups: &[Pid]) {
    let mut live: Vec<Pid> = groups
        .iter()
        .copied()
        .filter(|&group| kill_process_group(group, Signal::TERM) != Err(Errno::SRCH))
        .collect();
    let deadline = Instant::now() + GRACE;
    loop {
        let running = running_groups();
        live.retain(|&group| match &running {
            Some(running) => running.contains(&group),
            None => test_kill_process_group(group).is_ok(),
        });
        if live.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            break;
        }
        thread::sleep(POLL);
    }
    for group in live {
        let _ = kill_process_group(group, Signal::KILL);
    }
}

/// Whether `group` may still run (for pruning the list of groups the helper started).
pub fn may_run(group: Pid) -> bool {
    test_kill_process_group(group) != Err(Errno::SRCH)
}

/// The groups with a member that is not a zombie, from `/proc`; `None` when it is unreadable.
fn running_groups() -> Option<Vec<Pid>> {
    let mut groups = Vec::new();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|byte| byte.is_ascii_digit()) {
            continue;
        }
        // Gone since the listing: skip it.
        let Ok(stat) = fs::read_to_string(format!("/proc/{name}/stat")) else {
            continue;
        };
        if let Some((state, group)) = state_and_group(&stat)
            && state != 'Z'
            && state != 'X'
            && let Some(group) = Pid::from_raw(group)
        {
            groups.push(group);
        }
    }
    Some(groups)
}

/// A `/proc/PID/stat` line's state and process group (the fields after the command's `)`).
fn state_and_group(stat: &str) -> Option<(char, i32)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let group = fields.next()?.parse().ok()?;
    Some((state, group))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_and_group_come_after_the_last_parenthesis() {
        let stat = "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 …";
        assert_eq!(state_and_group(stat), Some(('S', 1234)));
        assert_eq!(state_and_group("7 (z) Z 1 9 9"), Some(('Z', 9)));
        assert_eq!(state_and_group("7 (z) Z 1"), None);
        assert_eq!(state_and_group("garbage"), None);
    }

    #[test]
    fn this_process_group_is_seen_running() {
        let me = rustix::process::getpgrp();
        assert!(running_groups().unwrap().contains(&me));
        assert!(may_run(me));
    }
}
