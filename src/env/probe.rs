//! `userEnvProbe`: the modes, the probe's argv, and the parsing of its output.
//!
//! The probe starts the user's shell the way the mode says (login and/or interactive) and has it
//! print its environment between two random markers; [`super::resolve`] runs it. The argv and
//! parsing follow the reference (`injectHeadless.ts`): one flag argument (`-lic`, `-lc`, `-ic`, or
//! `-c` for an unknown mode) or PowerShell's `-Login -Command`/`-Command`, and a command string
//! `echo -n M; cat /proc/self/environ; echo -n M`. The text between the first and the last marker
//! is split on NUL (or on newlines for the `printenv` fallback, used when the first run gave no
//! result). `PWD` is dropped: it is the probe's directory, not the command's.

use std::fmt;

/// The `userEnvProbe` setting (devcontainer.json or `--default-user-env-probe`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProbeMode {
    None,
    LoginInteractiveShell,
    InteractiveShell,
    LoginShell,
    /// Any other string: the reference still probes, with a plain `-c`.
    Other(String),
}

impl ProbeMode {
    /// Reads a mode by its devcontainer.json name; unknown names become [`ProbeMode::Other`].
    pub fn parse(name: &str) -> Self {
        match name {
            "none" => Self::None,
            "loginInteractiveShell" => Self::LoginInteractiveShell,
            "interactiveShell" => Self::InteractiveShell,
            "loginShell" => Self::LoginShell,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The devcontainer.json name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::None => "none",
            Self::LoginInteractiveShell => "loginInteractiveShell",
            Self::InteractiveShell => "interactiveShell",
            Self::LoginShell => "loginShell",
            Self::Other(name) => name,
        }
    }
}

impl fmt::Display for ProbeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The probe's argv, or `None` for mode `none` (no probe, an empty env). `printenv_fallback`
/// selects the second try, which prints newline-separated `printenv` output instead of
/// `/proc/self/environ`.
pub fn probe_argv(
    shell: &str,
    mode: &ProbeMode,
    marker: &str,
    printenv_fallback: bool,
) -> Option<Vec<String>> {
    let login = matches!(
        mode,
        ProbeMode::LoginInteractiveShell | ProbeMode::LoginShell
    );
    let flags: &[&str] = match mode {
        ProbeMode::None => return None,
        _ if is_pwsh(shell) && login => &["-Login", "-Command"],
        _ if is_pwsh(shell) => &["-Command"],
        ProbeMode::LoginInteractiveShell => &["-lic"],
        ProbeMode::LoginShell => &["-lc"],
        ProbeMode::InteractiveShell => &["-ic"],
        ProbeMode::Other(_) => &["-c"],
    };
    let print = if printenv_fallback {
        "printenv"
    } else {
        "cat /proc/self/environ"
    };
    let mut argv = vec![shell.to_owned()];
    argv.extend(flags.iter().map(|f| (*f).to_owned()));
    argv.push(format!("echo -n {marker}; {print}; echo -n {marker}"));
    Some(argv)
}

/// The script that runs the probe's argv and dies with its caller: the probe runs with stdin
/// `/dev/null` (as before: a startup script that reads gets EOF), while a watcher reads the
/// exec's own stdin, which dcx holds open and never writes. That stdin closes only when dcx's end
/// of the exec goes away (dcx killed, even by SIGKILL: the engine then closes the process's
/// input); the watcher then kills the whole process group (the probe's shell and whatever its
/// startup scripts started, such as a `sleep` that never ends). A probe that ends kills its
/// watcher and passes its status on. Only shell builtins besides the probe; one line, so the
/// engine's event log shows the exec on one line.
pub const PROBE_WATCH: &str = r#"exec 3<&0 0</dev/null; { read -r __dcx_line <&3; kill -9 0; } & __dcx_watch=$!; "$@" 3<&-; __dcx_status=$?; kill -9 "$__dcx_watch" 2>/dev/null; exit "$__dcx_status""#;

/// `argv` (a probe's) run through [`PROBE_WATCH`] by `/bin/sh`, so that it does not outlive
/// its caller; the caller must hold the exec's stdin open until the output has ended.
pub fn watched(argv: Vec<String>) -> Vec<String> {
    let mut watched = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        PROBE_WATCH.to_owned(),
        "sh".to_owned(),
    ];
    watched.extend(argv);
    watched
}

/// PowerShell takes its own flags; recognised by the shell's basename, as the reference does.
fn is_pwsh(shell: &str) -> bool {
    let name = shell.rsplit('/').next().unwrap_or(shell);
    matches!(name, "pwsh" | "pwsh-preview")
}

/// A fresh marker: a random UUID v4 in lowercase (36 characters), as the reference uses.
pub fn new_marker() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to something unlikely to appear in an environment.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (nanos ^ (u128::from(std::process::id()) << 64)).to_le_bytes();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Parses the probe's stdout: the text between the first and the last `marker`, split on NUL
/// (`nul_separated`) or newlines, each piece `NAME=value` (split at the first `=`; with NUL
/// separators, a name's text up to a newline is output that is not the environment's, and is
/// dropped). Pieces without `=` or with an empty name are dropped; a later duplicate replaces
/// the value in place;
/// `PWD` is removed. `None` when the markers are missing or enclose nothing: the caller then
/// tries the `printenv` fallback.
pub fn parse_probe_output(
    stdout: &[u8],
    marker: &str,
    nul_separated: bool,
) -> Option<Vec<(String, String)>> {
    let marker = marker.as_bytes();
    if marker.is_empty() {
        return None;
    }
    let first = find(stdout, marker)?;
    let last = rfind(stdout, marker)?;
    let start = first + marker.len();
    if last <= start {
        return None;
    }
    let text = String::from_utf8_lossy(&stdout[start..last]);
    let separator = if nul_separated { '\0' } else { '\n' };
    let mut env: Vec<(String, String)> = Vec::new();
    for piece in text.split(separator) {
        let Some((name, value)) = piece.split_once('=') else {
            continue;
        };
        // No variable's name holds a newline: what comes before one is text a startup script
        // printed once the marker was out (busybox ash's banner), not part of the name.
        let name = match nul_separated {
            true => name.rsplit('\n').next().unwrap_or(name),
            false => name,
        };
        if name.is_empty() {
            continue;
        }
        match env.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_owned(),
            None => env.push((name.to_owned(), value.to_owned())),
        }
    }
    env.retain(|(name, _)| name != "PWD");
    Some(env)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "0f8e4c1a-5b2d-4e6f-9a7b-3c2d1e0f9a8b";

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn text_printed_after_the_marker_is_not_a_name() {
        // busybox ash, interactive, prints its banner once the marker is out.
        let out = format!(
            "{M}\n\nBusyBox v1.35.0 built-in shell (ash)\nEnter 'help' for a list of built-in commands.\n\nSHLVL=1\0HOME=/root\0A=x\ny\0{M}"
        );
        assert_eq!(
            parse_probe_output(out.as_bytes(), M, true).unwrap(),
            pairs(&[("SHLVL", "1"), ("HOME", "/root"), ("A", "x\ny")])
        );
    }

    #[test]
    fn mode_names_round_trip() {
        for name in [
            "none",
            "loginInteractiveShell",
            "interactiveShell",
            "loginShell",
            "bogus",
        ] {
            assert_eq!(ProbeMode::parse(name).to_string(), name);
        }
        assert_eq!(ProbeMode::parse("none"), ProbeMode::None);
        assert_eq!(
            ProbeMode::parse("LoginShell"),
            ProbeMode::Other("LoginShell".into())
        );
    }

    #[test]
    fn argv_per_mode() {
        let argv = |shell, mode: &str| probe_argv(shell, &ProbeMode::parse(mode), "M", false);
        assert_eq!(argv("/bin/bash", "none"), None);
        assert_eq!(
            argv("/bin/bash", "loginInteractiveShell").unwrap(),
            [
                "/bin/bash",
                "-lic",
                "echo -n M; cat /proc/self/environ; echo -n M"
            ]
        );
        assert_eq!(argv("/bin/bash", "loginShell").unwrap()[1], "-lc");
        assert_eq!(argv("/bin/bash", "interactiveShell").unwrap()[1], "-ic");
        assert_eq!(argv("/bin/bash", "bogus").unwrap()[1], "-c");
        assert_eq!(argv("/bin/bash", "bogus").unwrap().len(), 3);
    }

    #[test]
    fn argv_for_pwsh() {
        let argv = |shell, mode: &str| probe_argv(shell, &ProbeMode::parse(mode), "M", false);
        assert_eq!(
            argv("/usr/bin/pwsh", "loginInteractiveShell").unwrap()[1..3],
            ["-Login", "-Command"]
        );
        assert_eq!(
            argv("pwsh-preview", "loginShell").unwrap()[1..3],
            ["-Login", "-Command"]
        );
        assert_eq!(
            argv("/opt/pwsh", "interactiveShell").unwrap()[1..],
            ["-Command", "echo -n M; cat /proc/self/environ; echo -n M"]
        );
        assert_eq!(argv("/opt/pwsh", "bogus").unwrap()[1], "-Command");
        assert_eq!(argv("/opt/pwsh", "none"), None);
        // Only the basename counts, and it must match whole.
        assert_eq!(argv("/pwsh/bash", "loginShell").unwrap()[1], "-lc");
        assert_eq!(argv("/bin/pwsh7", "loginShell").unwrap()[1], "-lc");
    }

    #[test]
    fn argv_printenv_fallback() {
        let argv = probe_argv("/bin/sh", &ProbeMode::LoginShell, "M", true).unwrap();
        assert_eq!(argv[2], "echo -n M; printenv; echo -n M");
    }

    #[test]
    fn marker_is_uuid_v4() {
        let marker = new_marker();
        assert_eq!(marker.len(), 36);
        let groups: Vec<&str> = marker.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(
            marker
                .chars()
                .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        assert!(groups[2].starts_with('4'));
        assert!(matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(new_marker(), marker);
    }

    #[test]
    fn parses_nul_separated() {
        let out = format!("noise{M}A=1\0B=x=y\0C=line1\nline2\0PWD=/tmp\0EMPTY=\0{M}trailing");
        assert_eq!(
            parse_probe_output(out.as_bytes(), M, true).unwrap(),
            pairs(&[
                ("A", "1"),
                ("B", "x=y"),
                ("C", "line1\nline2"),
                ("EMPTY", "")
            ])
        );
    }

    #[test]
    fn parses_newline_separated() {
        let out = format!("{M}HOME=/root\nPATH=/bin:/usr/bin\nnot a pair\n{M}");
        assert_eq!(
            parse_probe_output(out.as_bytes(), M, false).unwrap(),
            pairs(&[("HOME", "/root"), ("PATH", "/bin:/usr/bin")])
        );
    }

    #[test]
    fn duplicates_keep_first_position_last_value() {
        let out = format!("{M}A=1\0B=2\0A=3\0{M}");
        assert_eq!(
            parse_probe_output(out.as_bytes(), M, true).unwrap(),
            pairs(&[("A", "3"), ("B", "2")])
        );
    }

    #[test]
    fn takes_first_to_last_marker() {
        // An interactive shell's startup may echo the marker; the outermost pair wins.
        let out = format!("{M}A=1\0X={M}\0B=2\0{M}");
        assert_eq!(
            parse_probe_output(out.as_bytes(), M, true).unwrap(),
            pairs(&[("A", "1"), ("X", M), ("B", "2")])
        );
    }

    #[test]
    fn no_result() {
        assert_eq!(parse_probe_output(b"", M, true), None);
        assert_eq!(parse_probe_output(b"A=1\0", M, true), None);
        let one = format!("{M}A=1\0");
        assert_eq!(parse_probe_output(one.as_bytes(), M, true), None);
        let empty = format!("{M}{M}");
        assert_eq!(parse_probe_output(empty.as_bytes(), M, true), None);
        assert_eq!(parse_probe_output(b"xx", "", true), None);
    }

    #[test]
    fn result_without_pairs_is_still_a_result() {
        let out = format!("{M}garbage\0=nameless\0PWD=/\0{M}");
        assert_eq!(parse_probe_output(out.as_bytes(), M, true), Some(vec![]));
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let mut out = M.as_bytes().to_vec();
        out.extend_from_slice(b"A=\xff\0");
        out.extend_from_slice(M.as_bytes());
        assert_eq!(
            parse_probe_output(&out, M, true).unwrap(),
            pairs(&[("A", "\u{fffd}")])
        );
    }
}
