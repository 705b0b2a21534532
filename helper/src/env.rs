//! The environment rule: a command's environment from the helper's own, RUN's unset and set.
//!
//! The helper's environment, as the engine's exec gave it (the container's `Env`, `HOSTNAME`,
//! `PATH`…), is the base. RUN's `unset` names are removed from it; then its `set` entries apply
//! in order, as moby's `ReplaceOrAppendEnvValues` applies an exec's `Env`: an existing name is
//! replaced where it stands, a new one is appended, a later entry wins, and an entry without
//! `=` removes that name. A PTY command left without `TERM` gets `TERM=xterm`, as
//! `docker exec -t` gives, placed where Docker puts it: right after `HOSTNAME` (else last).

/// The name of an environment entry: the bytes before its first `=` (all of it without one).
#[must_use]
pub fn env_name(entry: &[u8]) -> &[u8] {
    entry
        .iter()
        .position(|&byte| byte == b'=')
        .map_or(entry, |at| &entry[..at])
}

/// A command's environment (`NAME=value` entries, in order) from the helper's `base`, RUN's
/// `unset` names and `set` entries, and whether it has a PTY (`tty`).
#[must_use]
pub fn command_env(
    base: &[Vec<u8>],
    unset: &[Vec<u8>],
    set: &[Vec<u8>],
    tty: bool,
) -> Vec<Vec<u8>> {
    let mut env: Vec<Vec<u8>> = base
        .iter()
        .filter(|entry| !unset.iter().any(|name| name.as_slice() == env_name(entry)))
        .cloned()
        .collect();
    for entry in set {
        let name = env_name(entry);
        let assigns = name.len() < entry.len();
        let mut kept = false;
        env.retain_mut(|existing| {
            if env_name(existing) != name {
                return true;
            }
            if assigns && !kept {
                existing.clone_from(entry);
                kept = true;
                return true;
            }
            false
        });
        if assigns && !kept {
            env.push(entry.clone());
        }
    }
    if tty && !env.iter().any(|entry| env_name(entry) == b"TERM") {
        let at = env
            .iter()
            .position(|entry| env_name(entry) == b"HOSTNAME")
            .map_or(env.len(), |at| at + 1);
        env.insert(at, b"TERM=xterm".to_vec());
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|item| item.as_bytes().to_vec()).collect()
    }

    const BASE: &[&str] = &["PATH=/usr/bin:/bin", "HOSTNAME=box", "HOME=/root", "LANG=C"];

    #[test]
    fn the_base_passes_through_in_order() {
        assert_eq!(command_env(&list(BASE), &[], &[], false), list(BASE));
    }

    #[test]
    fn unset_removes_then_set_replaces_in_place_and_appends() {
        let env = command_env(
            &list(BASE),
            &list(&["HOME", "NOT_THERE"]),
            &list(&["LANG=C.UTF-8", "NEW=1", "PATH=/bin"]),
            false,
        );
        assert_eq!(
            env,
            list(&["PATH=/bin", "HOSTNAME=box", "LANG=C.UTF-8", "NEW=1"])
        );
    }

    #[test]
    fn a_later_set_entry_wins_and_set_may_restore_an_unset_name() {
        let env = command_env(
            &list(BASE),
            &list(&["HOME"]),
            &list(&["A=1", "HOME=/home/u", "A=2", "A=3=x"]),
            false,
        );
        assert_eq!(
            env,
            list(&[
                "PATH=/usr/bin:/bin",
                "HOSTNAME=box",
                "LANG=C",
                "A=3=x",
                "HOME=/home/u"
            ])
        );
    }

    #[test]
    fn a_set_entry_without_equals_removes_the_name_and_empty_values_stay() {
        let env = command_env(&list(BASE), &[], &list(&["LANG", "EMPTY=", "GONE"]), false);
        assert_eq!(
            env,
            list(&["PATH=/usr/bin:/bin", "HOSTNAME=box", "HOME=/root", "EMPTY="])
        );
    }

    #[test]
    fn duplicate_base_names_collapse_to_the_first_place_on_set() {
        let base = list(&["A=1", "B=2", "A=3"]);
        assert_eq!(
            command_env(&base, &[], &list(&["A=9"]), false),
            list(&["A=9", "B=2"])
        );
        assert_eq!(
            command_env(&base, &list(&["A"]), &[], false),
            list(&["B=2"])
        );
    }

    #[test]
    fn a_pty_command_without_term_gets_xterm_after_hostname() {
        let env = command_env(&list(BASE), &[], &[], true);
        assert_eq!(
            env,
            list(&[
                "PATH=/usr/bin:/bin",
                "HOSTNAME=box",
                "TERM=xterm",
                "HOME=/root",
                "LANG=C"
            ])
        );
        let env = command_env(&list(&["A=1"]), &[], &[], true);
        assert_eq!(env, list(&["A=1", "TERM=xterm"]));
    }

    #[test]
    fn a_pty_command_keeps_its_own_term_and_a_pipe_command_gets_none() {
        let env = command_env(&list(BASE), &[], &list(&["TERM=vt100"]), true);
        assert!(env.contains(&b"TERM=vt100".to_vec()));
        assert!(!env.contains(&b"TERM=xterm".to_vec()));
        let base = list(&["TERM=screen", "A=1"]);
        assert_eq!(command_env(&base, &[], &[], true), base);
        assert_eq!(
            command_env(&list(BASE), &[], &[], false)
                .iter()
                .filter(|entry| env_name(entry) == b"TERM")
                .count(),
            0
        );
    }

    #[test]
    fn non_utf8_bytes_are_kept() {
        let env = command_env(&[b"A=\xff".to_vec()], &[], &[b"B\xfe=\x80".to_vec()], false);
        assert_eq!(env, vec![b"A=\xff".to_vec(), b"B\xfe=\x80".to_vec()]);
    }

    #[test]
    fn env_name_is_the_part_before_the_first_equals() {
        assert_eq!(env_name(b"A=B=C"), b"A");
        assert_eq!(env_name(b"NOVALUE"), b"NOVALUE");
        assert_eq!(env_name(b"=x"), b"");
    }
}
