//! The shell startup files a probe's result depends on, and their fingerprint.
//!
//! A cached probe is used only while the fingerprint taken before the probe still holds, so an
//! `export NEWVAR=x` appended to `~/.bashrc` (or a new file in `/etc/profile.d`) is seen by the
//! next exec, as the reference (which probes every time) sees it.
//!
//! Watched: the files the login and interactive starts of sh, bash, zsh and fish read, in the
//! user's home and in `/etc` (Debian's, Fedora's and Alpine's names, and `/etc/environment`), and
//! every entry of the folders they source from (`/etc/profile.d`, `/etc/zsh`, `/etc/fish/conf.d`).
//! The states come from [`crate::runtime::peek::states`]; the fingerprint is their SHA-256.

use sha2::{Digest, Sha256};

use crate::runtime::peek::{Entries, FileState, Watched};

/// Files in the user's home.
const HOME_FILES: [&str; 9] = [
    ".profile",
    ".bash_profile",
    ".bash_login",
    ".bashrc",
    ".zshenv",
    ".zprofile",
    ".zshrc",
    ".zlogin",
    ".config/fish/config.fish",
];

/// Files of the whole system.
const SYSTEM_FILES: [&str; 6] = [
    "/etc/environment",
    "/etc/profile",
    "/etc/bash.bashrc",
    "/etc/bashrc",
    "/etc/bash/bashrc",
    "/etc/zshenv",
];

/// Folders whose every entry is watched.
const SYSTEM_FOLDERS: [&str; 3] = ["/etc/profile.d", "/etc/zsh", "/etc/fish/conf.d"];

/// What to watch for a user whose home is `home`. `seen`: the folders' entries an earlier look
/// found ([`entries_seen`]): through the engine only those are looked at, as listing a folder
/// there costs a whole archive of it (the folder's own time tells whether names came or went);
/// `None` lists the folders.
pub fn watched(home: &str, seen: Option<&[String]>) -> Vec<Watched> {
    let home = home.trim_end_matches('/');
    let file = |path: String| Watched {
        path,
        entries: Entries::None,
    };
    let folder = |path: &str| {
        let entries = match seen {
            None => Entries::Listed,
            Some(seen) => Entries::Known(
                seen.iter()
                    .filter_map(|entry| entry.strip_prefix(path)?.strip_prefix('/'))
                    .filter(|name| !name.is_empty() && !name.contains('/'))
                    .map(str::to_owned)
                    .collect(),
            ),
        };
        Watched {
            path: path.to_owned(),
            entries,
        }
    };
    HOME_FILES
        .iter()
        .map(|name| file(format!("{home}/{name}")))
        .chain(SYSTEM_FILES.iter().map(|path| file((*path).to_owned())))
        .chain(SYSTEM_FOLDERS.iter().map(|path| folder(path)))
        .collect()
}

/// The paths of the watched folders' entries among `states`, for the next [`watched`].
pub fn entries_seen(states: &[FileState]) -> Vec<String> {
    states
        .iter()
        .filter(|state| {
            SYSTEM_FOLDERS.iter().any(|folder| {
                state
                    .path
                    .strip_prefix(folder)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .is_some_and(|name| !name.is_empty() && !name.contains('/'))
            })
        })
        .map(|state| state.path.clone())
        .collect()
}

/// The fingerprint of `states`: the SHA-256 of every path and state, in hex.
pub fn fingerprint(states: &[FileState]) -> String {
    let mut hasher = Sha256::new();
    for state in states {
        for field in [&state.path, &state.seen] {
            // Length-prefixed, so that moving text between fields changes the hash.
            hasher.update((field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_and_the_systems_startup_files_are_watched() {
        let watched = watched("/home/vscode/", None);
        let paths: Vec<&str> = watched.iter().map(|w| w.path.as_str()).collect();
        for path in [
            "/home/vscode/.bashrc",
            "/home/vscode/.profile",
            "/home/vscode/.bash_profile",
            "/home/vscode/.bash_login",
            "/home/vscode/.zshrc",
            "/home/vscode/.zprofile",
            "/etc/profile",
            "/etc/bash.bashrc",
            "/etc/environment",
            "/etc/profile.d",
            "/etc/zsh",
        ] {
            assert!(paths.contains(&path), "{path} is not watched");
        }
        let folders: Vec<&str> = watched
            .iter()
            .filter(|w| w.entries == Entries::Listed)
            .map(|w| w.path.as_str())
            .collect();
        assert_eq!(folders, ["/etc/profile.d", "/etc/zsh", "/etc/fish/conf.d"]);
    }

    #[test]
    fn the_entries_seen_are_the_ones_looked_at_next() {
        let state = |path: &str| FileState {
            path: path.into(),
            seen: "file of 1 bytes".into(),
        };
        let states = [
            state("/etc/profile"),
            state("/etc/profile.d"),
            state("/etc/profile.d/a.sh"),
            state("/etc/profile.d/b.sh"),
            state("/etc/zsh/zshrc"),
            state("/etc/profile.d/"),
        ];
        let seen = entries_seen(&states);
        assert_eq!(
            seen,
            [
                "/etc/profile.d/a.sh",
                "/etc/profile.d/b.sh",
                "/etc/zsh/zshrc"
            ]
        );
        let watched = watched("/root", Some(&seen));
        let entries = |path: &str| {
            watched
                .iter()
                .find(|w| w.path == path)
                .map(|w| w.entries.clone())
                .unwrap()
        };
        assert_eq!(
            entries("/etc/profile.d"),
            Entries::Known(vec!["a.sh".into(), "b.sh".into()])
        );
        assert_eq!(entries("/etc/zsh"), Entries::Known(vec!["zshrc".into()]));
        assert_eq!(entries("/etc/fish/conf.d"), Entries::Known(vec![]));
        assert_eq!(entries("/etc/profile"), Entries::None);
    }

    #[test]
    fn any_change_of_path_or_state_changes_the_fingerprint() {
        let state = |path: &str, seen: &str| FileState {
            path: path.into(),
            seen: seen.into(),
        };
        let base = fingerprint(&[state("/a", "missing"), state("/b", "file of 1 bytes")]);
        assert_eq!(base.len(), 64);
        assert_eq!(
            base,
            fingerprint(&[state("/a", "missing"), state("/b", "file of 1 bytes")])
        );
        assert_ne!(
            base,
            fingerprint(&[state("/a", "missing"), state("/b", "file of 2 bytes")])
        );
        assert_ne!(base, fingerprint(&[state("/a", "missing")]));
        assert_ne!(
            fingerprint(&[state("/ab", "c")]),
            fingerprint(&[state("/a", "bc")])
        );
    }
}
