//! Who runs the command, and what the container's passwd database says about them.
//!
//! The user string (`vscode`, `1000`, `vscode:root`, `1000:1000`) is passed whole to the engine;
//! only the passwd lookup uses its part before the first `:`. The lookup reads the container's
//! `/etc/passwd` without an exec and finds the line with [`find_passwd_entry`], which matches
//! the whole name or the whole uid field; only a user that file lacks costs an exec of
//! [`passwd_lookup_script`] (getent, for users of other NSS sources). The reference's `grep`
//! fallback matches a prefix (`root` finds `rootless`); this one does not.
//!
//! The home folder and probe shell follow the reference (`injectHeadless.ts`): the image's
//! `HOME` is trusted when it is the passwd home, when the user is uid 0, or when it is writable
//! (or missing); else the passwd home, else `/root`. The shell is the image's `SHELL`, else the
//! passwd shell, else `/bin/sh`.

pub use crate::passwd::{PasswdEntry, find_passwd_entry};

/// Where the chosen user came from, for the debug log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSource {
    /// `--user` on the command line.
    Cli,
    /// The merged `remoteUser` of devcontainer.json and the image metadata.
    RemoteUser,
    /// The container's `Config.User`.
    ContainerUser,
    /// None of the above: `root`.
    Default,
}

/// Picks the user: `--user` > merged `remoteUser` > `Config.User` > `root`. Empty strings count
/// as absent (the reference tests truthiness, and the engine reports "no user" as `""`).
pub fn choose_user(
    cli: Option<&str>,
    remote_user: Option<&str>,
    container_user: Option<&str>,
) -> (String, UserSource) {
    [
        (cli, UserSource::Cli),
        (remote_user, UserSource::RemoteUser),
        (container_user, UserSource::ContainerUser),
    ]
    .into_iter()
    .find_map(|(user, source)| {
        user.filter(|u| !u.is_empty())
            .map(|u| (u.to_owned(), source))
    })
    .unwrap_or_else(|| ("root".to_owned(), UserSource::Default))
}

/// The name to look up in passwd: the part before the first `:`, with uid `0` as `root`.
pub fn lookup_name(user: &str) -> String {
    match user.split_once(':').map_or(user, |(name, _)| name) {
        "0" => "root".to_owned(),
        name => name.to_owned(),
    }
}

/// The lookup, run by `sh` in the container with the user as `$1` (never spliced into the
/// script): `getent passwd` when it exists and finds the user, else a scan of /etc/passwd that
/// compares the whole name and uid fields, written for any POSIX `sh` (busybox included). It
/// prints the matching line, or nothing, and exits 0 either way.
const PASSWD_LOOKUP: &str = r#"if command -v getent >/dev/null 2>&1 && getent passwd "$1"; then exit 0; fi
[ -r /etc/passwd ] || exit 0
while IFS= read -r line || [ -n "$line" ]; do
  name=${line%%:*}
  rest=${line#*:}
  rest=${rest#*:}
  uid=${rest%%:*}
  if [ "$name" = "$1" ] || [ "$uid" = "$1" ]; then
    printf '%s\n' "$line"
    exit 0
  fi
done < /etc/passwd
exit 0"#;

/// The argv that prints `user`'s passwd line in the container (see [`find_passwd_entry`] for
/// parsing it). `user` is the [`lookup_name`], not the whole `user:group` string.
pub fn passwd_lookup_script(user: &str) -> Vec<String> {
    shell_argv(PASSWD_LOOKUP, user)
}

/// The test the reference makes before trusting an image `HOME` that is neither the passwd home
/// nor root's: exit 0 when `home` is missing or writable. Run it as the command's user and pass
/// the outcome to [`home_folder`].
pub fn home_writable_script(home: &str) -> Vec<String> {
    shell_argv(r#"[ ! -e "$1" ] || [ -w "$1" ]"#, home)
}

fn shell_argv(script: &str, arg: &str) -> Vec<String> {
    ["/bin/sh", "-c", script, "sh", arg]
        .map(str::to_owned)
        .to_vec()
}

/// The user's home folder. `container_env_home` is `HOME` from the container's `Config.Env`;
/// `home_writable` runs [`home_writable_script`] and is called only when its answer matters.
pub fn home_folder(
    entry: Option<&PasswdEntry>,
    container_env_home: Option<&str>,
    home_writable: impl FnOnce(&str) -> bool,
) -> String {
    let passwd_home = entry.map(|e| e.home.as_str()).filter(|h| !h.is_empty());
    if let Some(home) = container_env_home.filter(|h| !h.is_empty()) {
        let is_root = entry.is_some_and(|e| e.uid == "0");
        if passwd_home == Some(home) || is_root || home_writable(home) {
            return home.to_owned();
        }
    }
    passwd_home.unwrap_or("/root").to_owned()
}

/// The shell that runs the env probe: `SHELL` from `Config.Env`, else the passwd shell, else
/// `/bin/sh`.
pub fn probe_shell(container_env_shell: Option<&str>, entry: Option<&PasswdEntry>) -> String {
    container_env_shell
        .filter(|s| !s.is_empty())
        .or_else(|| entry.map(|e| e.shell.as_str()).filter(|s| !s.is_empty()))
        .unwrap_or("/bin/sh")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::Command;

    const PASSWD: &str = "\
# a comment
root:x:0:0:root:/root:/bin/bash

rootless:x:1001:1001::/home/rootless:/bin/sh
vscode:x:1000:1000:,,,:/home/vscode:/bin/zsh
broken:x:12
foo\\bar:x:1002:1002::/home/foo:/bin/ash
10000:x:1003:1003::/home/numeric:/bin/sh
extra:x:1004:1004::/home/extra:/bin/sh:more
";

    fn entry(name: &str, uid: &str, home: &str, shell: &str) -> PasswdEntry {
        PasswdEntry {
            name: name.into(),
            uid: uid.into(),
            gid: uid.into(),
            home: home.into(),
            shell: shell.into(),
        }
    }

    #[test]
    fn user_precedence() {
        assert_eq!(
            choose_user(Some("cli"), Some("remote"), Some("image")),
            ("cli".into(), UserSource::Cli)
        );
        assert_eq!(
            choose_user(None, Some("remote"), Some("image")),
            ("remote".into(), UserSource::RemoteUser)
        );
        assert_eq!(
            choose_user(None, Some(""), Some("image")),
            ("image".into(), UserSource::ContainerUser)
        );
        assert_eq!(
            choose_user(None, None, Some("")),
            ("root".into(), UserSource::Default)
        );
        assert_eq!(
            choose_user(Some("1000:1000"), None, None),
            ("1000:1000".into(), UserSource::Cli)
        );
    }

    #[test]
    fn lookup_names() {
        assert_eq!(lookup_name("vscode"), "vscode");
        assert_eq!(lookup_name("vscode:root"), "vscode");
        assert_eq!(lookup_name("1000:1000"), "1000");
        assert_eq!(lookup_name("0"), "root");
        assert_eq!(lookup_name("0:0"), "root");
        assert_eq!(lookup_name("00"), "00");
    }

    #[test]
    fn passwd_by_name_and_uid() {
        let root = find_passwd_entry(PASSWD, "root").unwrap();
        assert_eq!(root, entry("root", "0", "/root", "/bin/bash"));
        assert_eq!(find_passwd_entry(PASSWD, "0").unwrap().name, "root");
        let vscode = find_passwd_entry(PASSWD, "1000").unwrap();
        assert_eq!(vscode.name, "vscode");
        assert_eq!(vscode.home, "/home/vscode");
        assert_eq!(vscode.shell, "/bin/zsh");
        assert_eq!(find_passwd_entry(PASSWD, "123456"), None);
        assert_eq!(find_passwd_entry(PASSWD, ""), None);
    }

    #[test]
    fn passwd_match_is_whole_field() {
        // The reference's grep fallback is a prefix match; here `root` is root, not rootless.
        assert_eq!(find_passwd_entry(PASSWD, "root").unwrap().uid, "0");
        assert_eq!(
            find_passwd_entry("rootless:x:1001:1001::/h:/bin/sh\n", "root"),
            None
        );
        assert_eq!(find_passwd_entry(PASSWD, "100"), None);
        assert_eq!(find_passwd_entry(PASSWD, "vs"), None);
        assert_eq!(find_passwd_entry(PASSWD, "roo"), None);
    }

    #[test]
    fn passwd_odd_lines() {
        let bs = find_passwd_entry(PASSWD, "foo\\bar").unwrap();
        assert_eq!(bs.home, "/home/foo");
        assert_eq!(find_passwd_entry(PASSWD, "1002").unwrap().name, "foo\\bar");
        assert_eq!(find_passwd_entry(PASSWD, "broken"), None);
        // An eighth field is ignored, not a malformed line.
        assert_eq!(find_passwd_entry(PASSWD, "extra").unwrap().shell, "/bin/sh");
        assert_eq!(find_passwd_entry(PASSWD, "# a comment"), None);
        // A numeric name matches by name as well as by uid.
        assert_eq!(find_passwd_entry(PASSWD, "10000").unwrap().uid, "1003");
        let crlf = "a:x:5:5::/home/a:/bin/sh\r\n";
        assert_eq!(find_passwd_entry(crlf, "a").unwrap().shell, "/bin/sh");
        // getent output without a trailing newline.
        let getent = "vscode:x:1000:1000::/home/vscode:/bin/bash";
        assert_eq!(find_passwd_entry(getent, "vscode").unwrap().uid, "1000");
    }

    // The cases of the reference's getHomeFolder test, with the writability check answered as the
    // container would (HOME=/root is not writable for vscode; a missing folder passes).
    #[test]
    fn home_folder_reference_cases() {
        let vscode = entry("vscode", "1000", "/home/vscode", "/bin/bash");
        let root = entry("root", "0", "/root", "/bin/bash");
        let writable = |home: &str| home != "/root";
        assert_eq!(home_folder(Some(&vscode), None, writable), "/home/vscode");
        assert_eq!(
            home_folder(Some(&vscode), Some("/root"), writable),
            "/home/vscode"
        );
        assert_eq!(
            home_folder(Some(&vscode), Some("/home/vscode"), |_| panic!("not asked")),
            "/home/vscode"
        );
        assert_eq!(
            home_folder(Some(&vscode), Some("/home/vscode/foo"), writable),
            "/home/vscode/foo"
        );
        assert_eq!(home_folder(Some(&root), None, writable), "/root");
        assert_eq!(
            home_folder(Some(&root), Some("/home/vscode"), |_| panic!("not asked")),
            "/home/vscode"
        );
    }

    #[test]
    fn home_folder_without_passwd() {
        assert_eq!(home_folder(None, None, |_| true), "/root");
        assert_eq!(home_folder(None, Some("/home/x"), |_| true), "/home/x");
        assert_eq!(home_folder(None, Some("/home/x"), |_| false), "/root");
        assert_eq!(
            home_folder(None, Some(""), |_| panic!("not asked")),
            "/root"
        );
        let no_home = entry("nobody", "65534", "", "/bin/false");
        assert_eq!(home_folder(Some(&no_home), None, |_| true), "/root");
    }

    #[test]
    fn probe_shell_precedence() {
        let e = entry("vscode", "1000", "/home/vscode", "/bin/zsh");
        assert_eq!(probe_shell(Some("/bin/fish"), Some(&e)), "/bin/fish");
        assert_eq!(probe_shell(None, Some(&e)), "/bin/zsh");
        assert_eq!(probe_shell(Some(""), Some(&e)), "/bin/zsh");
        assert_eq!(probe_shell(None, None), "/bin/sh");
        let no_shell = entry("x", "1", "/", "");
        assert_eq!(probe_shell(None, Some(&no_shell)), "/bin/sh");
    }

    #[test]
    fn lookup_argv_passes_user_as_parameter() {
        let argv = passwd_lookup_script("it's; rm -rf /");
        assert_eq!(argv[..2], ["/bin/sh", "-c"]);
        assert_eq!(argv[3..], ["sh", "it's; rm -rf /"]);
        assert!(!argv[2].contains("rm -rf"));
    }

    /// Runs the lookup's passwd scan (no getent on PATH) with `shell` over `passwd`.
    fn scan_with(shell: &[&str], passwd: &str, user: &str) -> String {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(passwd.as_bytes()).unwrap();
        let script = PASSWD_LOOKUP.replace("/etc/passwd", file.path().to_str().unwrap());
        let output = Command::new(shell[0])
            .args(&shell[1..])
            .args(["-c", &script, "sh", user])
            .env_clear()
            .env("PATH", "/nonexistent")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    fn check_scan(shell: &[&str]) {
        let found = |user: &str| find_passwd_entry(&scan_with(shell, PASSWD, user), user);
        assert_eq!(found("root").unwrap().uid, "0");
        assert_eq!(found("0").unwrap().name, "root");
        assert_eq!(found("rootless").unwrap().uid, "1001");
        assert_eq!(found("1001").unwrap().name, "rootless");
        assert_eq!(found("foo\\bar").unwrap().home, "/home/foo");
        assert_eq!(found("1002").unwrap().name, "foo\\bar");
        assert_eq!(scan_with(shell, PASSWD, "123456"), "");
        assert_eq!(scan_with(shell, PASSWD, "roo"), "");
        assert_eq!(scan_with(shell, PASSWD, "*"), "");
        // The last line may lack its newline.
        let unterminated = "a:x:1:1::/a:/bin/sh\nb:x:2:2::/b:/bin/sh";
        assert_eq!(scan_with(shell, unterminated, "b"), "b:x:2:2::/b:/bin/sh\n");
    }

    #[test]
    fn lookup_scan_with_sh() {
        check_scan(&["/bin/sh"]);
    }

    #[test]
    fn lookup_scan_with_busybox() {
        // busybox images have no getent: the scan is what runs there.
        if std::path::Path::new("/usr/bin/busybox").exists() {
            check_scan(&["/usr/bin/busybox", "sh"]);
        }
    }

    #[test]
    fn lookup_with_getent_or_scan() {
        let run = |user: &str| {
            let output = Command::new("/bin/sh")
                .args(&passwd_lookup_script(user)[1..])
                .output()
                .unwrap();
            assert!(output.status.success());
            String::from_utf8(output.stdout).unwrap()
        };
        assert_eq!(find_passwd_entry(&run("root"), "root").unwrap().uid, "0");
        assert_eq!(find_passwd_entry(&run("0"), "0").unwrap().name, "root");
        assert_eq!(run("dcx-no-such-user-123456"), "");
    }

    #[test]
    fn home_writable_check_runs() {
        let dir = tempfile::tempdir().unwrap();
        let run = |home: &str| {
            Command::new("/bin/sh")
                .args(&home_writable_script(home)[1..])
                .status()
                .unwrap()
                .success()
        };
        assert!(run(dir.path().to_str().unwrap()));
        assert!(run(dir.path().join("missing").to_str().unwrap()));
    }
}
