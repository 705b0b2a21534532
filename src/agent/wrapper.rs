//! The shell wrapper every agent command runs through: session state without a shell.
//!
//! Each command runs fresh through [`WRAPPER`], which first replays the session's state file (the
//! `cd` and the exports the last command left), then applies the non-interactive defaults where
//! unset, the request's env and its cwd, and runs the command. After a foreground shell command
//! (`exec.run`, `exec.stream`; not an argv, not `exec.start`) it writes the state file anew (`pwd`
//! and `export -p`, mode 0600, in a folder of the session's own in the container's `/tmp`; the
//! request's variables are left out unless the command changed them), and the current directory
//! beside it. The bookkeeping uses shell builtins only, so it starts no process, but for the
//! `mkdir` of the state folder before a session's first command. Unless a session was created
//! concurrent, its foreground commands run one at a time, so the file has one writer at a time. A
//! pager or a prompt can never wedge the session: there is no shell to wedge.

use std::time::Duration;

use crate::engine::Command;

/// The shell script every command runs through (see the module docs). The command's own text
/// runs on the script's first line (a loop whose first pass does the setup), and `$0` is the
/// shell's name, so the shell's messages read as for the user's own `bash -c`
/// (`bash: line 3: …`), never naming the wrapper. Everything it is told
/// comes in its environment, never its argv (which any user of the container can read in
/// `ps`): `__DCX_STATE` (the state file, in a directory of the session's own), `__DCX_SAVE`
/// (`1`: save the state afterwards), `__DCX_CMD` (the command string; empty: run the argv),
/// `__DCX_CD`, the request's variables `__DCX_E1`… (`__DCX_N` of them) and the defaults
/// `__DCX_D1`… (`__DCX_DN`, set only where unset). A state file is replayed only when it and
/// its directory belong to the user running the command. A request too long to pass that way
/// comes in a request file instead (`__DCX_REQ`, in the session's folder, mode 0600): sourced
/// when it belongs to that user, then removed.
pub const WRAPPER: &str = r#"while :; do case ${__dcx_go-} in 1) __dcx_go=2; eval "$__dcx_cmd"; __dcx_status=$?; break;; 2) break;; esac
__dcx_state=$__DCX_STATE __dcx_save=$__DCX_SAVE __dcx_cmd=$__DCX_CMD __dcx_cd=$__DCX_CD
__dcx_n=${__DCX_N:-0} __dcx_dn=${__DCX_DN:-0} __dcx_i=1
while [ "$__dcx_i" -le "$__dcx_n" ]; do
  eval "__dcx_e$__dcx_i=\$__DCX_E$__dcx_i; unset __DCX_E$__dcx_i"; __dcx_i=$((__dcx_i + 1))
done
__dcx_i=1
while [ "$__dcx_i" -le "$__dcx_dn" ]; do
  eval "__dcx_d$__dcx_i=\$__DCX_D$__dcx_i; unset __DCX_D$__dcx_i"; __dcx_i=$((__dcx_i + 1))
done
__dcx_req=${__DCX_REQ-}
unset __DCX_STATE __DCX_SAVE __DCX_CMD __DCX_CD __DCX_N __DCX_DN __DCX_REQ
__dcx_dir=${__dcx_state%/*}
if [ -n "$__dcx_req" ]; then
  if [ -O "$__dcx_req" ]; then . "$__dcx_req"; fi
  rm -f -- "$__dcx_req"
fi
[ -d "$__dcx_dir" ] || mkdir -m 700 "$__dcx_dir" 2>/dev/null
__dcx_start=$PWD
if [ -O "$__dcx_dir" ] && [ -O "$__dcx_state" ]; then . "$__dcx_state"; fi
__dcx_i=1
while [ "$__dcx_i" -le "$__dcx_dn" ]; do
  eval "__dcx_kv=\$__dcx_d$__dcx_i"; __dcx_k=${__dcx_kv%%=*}
  eval "if [ -n \"\${$__dcx_k+x}\" ]; then export $__dcx_k; __dcx_ds$__dcx_i=; else export \"\$__dcx_kv\"; __dcx_ds$__dcx_i=1; fi"
  __dcx_i=$((__dcx_i + 1))
done
__dcx_i=1
while [ "$__dcx_i" -le "$__dcx_n" ]; do
  eval "__dcx_kv=\$__dcx_e$__dcx_i"; __dcx_k=${__dcx_kv%%=*}
  eval "__dcx_had$__dcx_i=\${$__dcx_k+x} __dcx_old$__dcx_i=\${$__dcx_k-}"
  export "$__dcx_kv"; __dcx_i=$((__dcx_i + 1))
done
if [ -n "${__dcx_lost-}" ]; then
  case $__dcx_cd in
    /*) ;;
    *) cd -- "$__dcx_start" 2>/dev/null
       printf '%s: the working directory %s (where the last command left the session) no longer exists: the command did not run; the session is back in %s\n' "$0" "$__dcx_lost" "$PWD" >&2
       __dcx_status=1 __dcx_save=1; break;;
  esac
fi
if [ -n "$__dcx_cd" ]; then cd -- "$__dcx_cd" || exit 1; fi
if [ -z "$__dcx_cmd" ]; then exec "$@"; fi
__dcx_go=1; done
__dcx_s=$?; [ -n "${__dcx_status-}" ] || __dcx_status=$__dcx_s
if [ "$__dcx_save" = 1 ] && [ -O "$__dcx_dir" ]; then
  # The defaults it set are for this command only, unless it changed them.
  __dcx_i=1
  while [ "$__dcx_i" -le "$__dcx_dn" ]; do
    eval "__dcx_kv=\$__dcx_d$__dcx_i __dcx_set=\$__dcx_ds$__dcx_i"; __dcx_k=${__dcx_kv%%=*}
    eval "if [ -n \"\$__dcx_set\" ] && [ \"\${$__dcx_k-}\" = \"\${__dcx_kv#*=}\" ]; then unset $__dcx_k; fi"
    __dcx_i=$((__dcx_i + 1))
  done
  # The request's own variables are for this command only, unless it changed them.
  __dcx_i=1
  while [ "$__dcx_i" -le "$__dcx_n" ]; do
    eval "__dcx_kv=\$__dcx_e$__dcx_i"; __dcx_k=${__dcx_kv%%=*}
    eval "if [ \"\${$__dcx_k-}\" = \"\${__dcx_kv#*=}\" ]; then if [ -n \"\$__dcx_had$__dcx_i\" ]; then export $__dcx_k=\"\$__dcx_old$__dcx_i\"; else unset $__dcx_k; fi; fi"
    __dcx_i=$((__dcx_i + 1))
  done
  __dcx_sq=\' __dcx_q= __dcx_r=$PWD
  while :; do
    case $__dcx_r in
      *$__dcx_sq*)
        __dcx_h=${__dcx_r%%$__dcx_sq*}
        __dcx_q=$__dcx_q$__dcx_h$__dcx_sq\\$__dcx_sq$__dcx_sq
        __dcx_r=${__dcx_r#*$__dcx_sq};;
      *) __dcx_q=$__dcx_q$__dcx_r; break;;
    esac
  done
  umask 077
  { printf "cd -- '%s' 2>/dev/null || __dcx_lost='%s'\n" "$__dcx_q" "$__dcx_q"; export -p; } >| "$__dcx_state" 2>/dev/null
  printf '%s' "$PWD" >| "$__dcx_state.cwd" 2>/dev/null
fi
exit $__dcx_status
"#;

/// The longest command text, argument or `NAME=value` passed inline (the kernel takes at most
/// 128 KiB a string): a request with a longer one tells the wrapper through a request file.
pub const INLINE_LIMIT: usize = 64 * 1024;
/// The most command text, arguments and variables one request may carry.
pub const MAX_REQUEST: usize = 16 * 1024 * 1024;

/// `text` as one shell word, in single quotes.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// What the wrapper is told, when some of it is too long to pass inline: a file it sources
/// (then removes), setting the command text, the request's variables and the argv.
pub fn request_file(command: Option<&str>, argv: &[String], env: &[String]) -> Option<String> {
    let long = |text: &str| text.len() > INLINE_LIMIT;
    if !command.is_some_and(long)
        && !argv.iter().any(|arg| long(arg))
        && !env.iter().any(|e| long(e))
    {
        return None;
    }
    let mut file = format!("__dcx_cmd={}\n", quoted(command.unwrap_or_default()));
    for (index, entry) in env.iter().enumerate() {
        file.push_str(&format!("__dcx_e{}={}\n", index + 1, quoted(entry)));
    }
    if !argv.is_empty() {
        file.push_str("set --");
        for arg in argv {
            file.push(' ');
            file.push_str(&quoted(arg));
        }
        file.push('\n');
    }
    Some(file)
}

/// The command that runs `command` (a shell string) or `argv` through [`WRAPPER`].
pub struct Wrapped<'a> {
    pub shell: &'a str,
    pub state_file: &'a str,
    pub save_state: bool,
    pub command: Option<&'a str>,
    pub argv: &'a [String],
    /// The request's `NAME=value` variables.
    pub env: &'a [String],
    /// `NAME=value` defaults, set where the session has no such variable.
    pub defaults: &'a [String],
    pub cwd: Option<&'a str>,
    /// The request file in the container that tells the command, variables and argv instead
    /// ([`request_file`]).
    pub request_file: Option<&'a str>,
}

impl Wrapped<'_> {
    /// The wrapper's argv and what it is told, in its environment.
    pub fn parts(&self) -> (Vec<String>, Vec<String>) {
        // `$0` is the shell's name, so its messages read as the user's own shell's.
        let name = self.shell.rsplit('/').next().unwrap_or(self.shell);
        let mut argv = vec![
            self.shell.to_owned(),
            "-c".to_owned(),
            WRAPPER.to_owned(),
            name.to_owned(),
        ];
        let inline = self.request_file.is_none();
        if inline {
            argv.extend(self.argv.iter().cloned());
        }
        let mut env = vec![
            format!("__DCX_STATE={}", self.state_file),
            format!("__DCX_SAVE={}", if self.save_state { "1" } else { "0" }),
            format!("__DCX_CD={}", self.cwd.unwrap_or_default()),
            format!("__DCX_N={}", self.env.len()),
            format!("__DCX_DN={}", self.defaults.len()),
        ];
        match self.request_file {
            None => {
                env.push(format!("__DCX_CMD={}", self.command.unwrap_or_default()));
                for (index, entry) in self.env.iter().enumerate() {
                    env.push(format!("__DCX_E{}={entry}", index + 1));
                }
            }
            Some(file) => env.push(format!("__DCX_REQ={file}")),
        }
        for (index, entry) in self.defaults.iter().enumerate() {
            env.push(format!("__DCX_D{}={entry}", index + 1));
        }
        (argv, env)
    }

    /// The engine command (`timeout`: none for a background command that asked for none).
    pub fn command(&self, timeout: Option<Duration>) -> Command {
        let (argv, env) = self.parts();
        Command {
            argv,
            env,
            timeout,
            ..Command::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the wrapper with a local shell, as the container would; its stdout (it must
    /// succeed).
    fn wrapped(shell: &str, state: &str, save: bool, command: &str, env: &[&str]) -> String {
        let out = run_wrapped(shell, state, save, command, env);
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs the wrapper with a local shell, as the container would.
    fn run_wrapped(
        shell: &str,
        state: &str,
        save: bool,
        command: &str,
        env: &[&str],
    ) -> std::process::Output {
        let env: Vec<String> = env.iter().map(|e| (*e).to_owned()).collect();
        let defaults = ["PAGER=cat".to_owned()];
        let (argv, vars) = Wrapped {
            shell,
            state_file: state,
            save_state: save,
            command: Some(command),
            argv: &[],
            env: &env,
            defaults: &defaults,
            cwd: None,
            request_file: None,
        }
        .parts();
        let (program, mut args) = match shell {
            "/bin/busybox" => (shell, vec!["sh".to_owned()]),
            _ => (shell, Vec::new()),
        };
        args.extend(argv[1..].iter().cloned());
        let mut run = std::process::Command::new(program);
        run.args(&args).env_clear().env("PATH", "/usr/bin:/bin");
        for var in vars {
            let (name, value) = var.split_once('=').unwrap();
            run.env(name, value);
        }
        run.output().unwrap()
    }

    #[test]
    fn errors_name_the_shell_and_the_user_s_lines_and_a_removed_directory_is_said() {
        for shell in ["/bin/bash", "/bin/sh"] {
            if !std::path::Path::new(shell).exists() {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let state = dir.path().join("session/state");
            let state = state.to_str().unwrap();
            let out = run_wrapped(shell, state, true, "true\n\nnosuchcmd-here", &[]);
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert_eq!(out.status.code(), Some(127), "{shell}: {stderr}");
            assert!(!stderr.contains("dcx:"), "{shell}: {stderr}");
            if shell == "/bin/bash" {
                assert_eq!(
                    stderr, "bash: line 3: nosuchcmd-here: command not found\n",
                    "{shell}"
                );
            }
            // The session's directory is removed: the next command does not run, says why,
            // and the one after runs in the starting directory.
            let gone = dir.path().join("gone");
            std::fs::create_dir(&gone).unwrap();
            wrapped(shell, state, true, &format!("cd '{}'", gone.display()), &[]);
            std::fs::remove_dir(&gone).unwrap();
            let out = run_wrapped(shell, state, true, "echo ran", &[]);
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert_eq!(out.status.code(), Some(1), "{shell}: {stderr}");
            assert!(out.stdout.is_empty(), "{shell}");
            assert!(
                stderr.contains(&format!("the working directory {} ", gone.display()))
                    && stderr.contains("no longer exists: the command did not run"),
                "{shell}: {stderr}"
            );
            let here = std::env::current_dir().unwrap();
            assert_eq!(
                wrapped(shell, state, true, "pwd", &[]),
                format!("{}\n", here.display()),
                "{shell}"
            );
        }
    }

    #[test]
    fn cd_and_exports_persist_through_the_state_file() {
        for shell in ["/bin/sh", "/bin/bash", "/bin/busybox"] {
            if !std::path::Path::new(shell).exists() {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let odd = dir.path().join("it's a \"dir\"");
            std::fs::create_dir(&odd).unwrap();
            let state = dir.path().join("session/state");
            let state = state.to_str().unwrap();
            let cd = format!(
                "cd '{}' && export KEPT='a '\\''b' ONCE=changed PAGER=less FOO=keep",
                odd.display().to_string().replace('\'', "'\\''")
            );
            wrapped(shell, state, true, &cd, &["ONCE=given", "GONE=x"]);
            // A request's FOO is for that command only; the session's comes back after it.
            let seen = wrapped(shell, state, true, "echo \"$FOO\"", &["FOO=tmp"]);
            assert_eq!(seen, "tmp\n", "{shell}");
            let seen = wrapped(
                shell,
                state,
                true,
                "pwd; echo \"$KEPT|${ONCE-}|${GONE-unset}|$PAGER|$FOO\"",
                &[],
            );
            assert_eq!(
                seen,
                format!("{}\na 'b|changed|unset|less|keep\n", odd.display()),
                "{shell}"
            );
            // A default is for its command only: not saved as the session's.
            let saved = dir.path().join("saved/state");
            let saved = saved.to_str().unwrap();
            assert_eq!(wrapped(shell, saved, true, "echo $PAGER", &[]), "cat\n");
            let state_text = std::fs::read_to_string(saved).unwrap();
            assert!(!state_text.contains("PAGER"), "{shell}: {state_text}");
            // A session that set no PAGER gets the default; the command's text is not argv.
            let fresh = dir.path().join("other/state");
            let fresh = fresh.to_str().unwrap();
            let seen = wrapped(
                shell,
                fresh,
                false,
                "echo $PAGER; tr '\\0' ' ' < /proc/$$/cmdline",
                &[],
            );
            assert!(
                seen.starts_with("cat\n") && !seen.contains("cmdline"),
                "{shell}: {seen}"
            );
            assert_eq!(
                std::fs::read_to_string(format!("{state}.cwd")).unwrap(),
                odd.display().to_string()
            );
            use std::os::unix::fs::PermissionsExt;
            let mode = |path: &str| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(
                (
                    mode(state),
                    mode(&dir.path().join("session").display().to_string())
                ),
                (0o600, 0o700)
            );
            // Not saved: the next command sees the same state.
            wrapped(shell, state, false, "cd / && export KEPT=other", &[]);
            let seen = wrapped(shell, state, false, "echo \"$KEPT\"", &[]);
            assert_eq!(seen, "a 'b\n", "{shell}");
        }
    }
}
