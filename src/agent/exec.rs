//! One command of a session, as the service runs it: a task that drives the engine with sinks
//! that keep the output ([`Kept`]) or stream it, a stdin pipe for `exec.write_stdin`, a control
//! channel for `exec.cancel`, and the result envelope once it has ended.
//!
//! Session state without a long-lived shell: each command runs fresh through [`WRAPPER`], which
//! first replays the session's state file (the `cd` and the exports the last command left),
//! then applies the request's env and cwd, runs the command, and writes the state file anew
//! (the request's variables are left out unless the command changed them)
//! (`pwd` and `export -p`, mode 0600, in the container's `/tmp`) with shell builtins only, so
//! the bookkeeping starts no process. Foreground commands of a session run one at a time, so
//! one writer at a time. A pager or a prompt can never wedge the session: there is no shell
//! to wedge.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::io::AsyncWrite;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::PollSender;

use super::output::Kept;
use crate::engine::{Command, Control, End, ExitStatus, Finished, Input};
use crate::runtime::signal_name;

/// The shell script every command runs through (see the module docs). Everything it is told
/// comes in its environment, never its argv (which any user of the container can read in
/// `ps`): `__DCX_STATE` (the state file, in a directory of the session's own), `__DCX_SAVE`
/// (`1`: save the state afterwards), `__DCX_CMD` (the command string; empty: run the argv),
/// `__DCX_CD`, the request's variables `__DCX_E1`… (`__DCX_N` of them) and the defaults
/// `__DCX_D1`… (`__DCX_DN`, set only where unset). A state file is replayed only when it and
/// its directory belong to the user running the command.
pub const WRAPPER: &str = r#"__dcx_state=$__DCX_STATE __dcx_save=$__DCX_SAVE __dcx_cmd=$__DCX_CMD __dcx_cd=$__DCX_CD
__dcx_n=${__DCX_N:-0} __dcx_dn=${__DCX_DN:-0} __dcx_i=1
while [ "$__dcx_i" -le "$__dcx_n" ]; do
  eval "__dcx_e$__dcx_i=\$__DCX_E$__dcx_i; unset __DCX_E$__dcx_i"; __dcx_i=$((__dcx_i + 1))
done
__dcx_i=1
while [ "$__dcx_i" -le "$__dcx_dn" ]; do
  eval "__dcx_d$__dcx_i=\$__DCX_D$__dcx_i; unset __DCX_D$__dcx_i"; __dcx_i=$((__dcx_i + 1))
done
unset __DCX_STATE __DCX_SAVE __DCX_CMD __DCX_CD __DCX_N __DCX_DN
__dcx_dir=${__dcx_state%/*}
[ -d "$__dcx_dir" ] || mkdir -m 700 "$__dcx_dir" 2>/dev/null
if [ -O "$__dcx_dir" ] && [ -O "$__dcx_state" ]; then . "$__dcx_state"; fi
__dcx_i=1
while [ "$__dcx_i" -le "$__dcx_dn" ]; do
  eval "__dcx_kv=\$__dcx_d$__dcx_i"; __dcx_k=${__dcx_kv%%=*}
  eval "[ -n \"\${$__dcx_k+x}\" ] || export \"\$__dcx_kv\""; __dcx_i=$((__dcx_i + 1))
done
__dcx_i=1
while [ "$__dcx_i" -le "$__dcx_n" ]; do
  eval "__dcx_kv=\$__dcx_e$__dcx_i"; __dcx_k=${__dcx_kv%%=*}
  eval "__dcx_had$__dcx_i=\${$__dcx_k+x} __dcx_old$__dcx_i=\${$__dcx_k-}"
  export "$__dcx_kv"; __dcx_i=$((__dcx_i + 1))
done
if [ -n "$__dcx_cd" ]; then cd -- "$__dcx_cd" || exit 1; fi
if [ -z "$__dcx_cmd" ]; then exec "$@"; fi
eval "$__dcx_cmd"
__dcx_status=$?
if [ "$__dcx_save" = 1 ] && [ -O "$__dcx_dir" ]; then
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
  { printf "cd -- '%s' 2>/dev/null\n" "$__dcx_q"; export -p; } >| "$__dcx_state" 2>/dev/null
  printf '%s' "$PWD" >| "$__dcx_state.cwd" 2>/dev/null
fi
exit $__dcx_status
"#;

/// How an exec ended, for its envelope.
#[derive(Debug, Clone)]
pub struct Ending {
    pub state: &'static str,
    pub exit_code: Option<i64>,
    pub signal: Option<&'static str>,
    pub duration_ms: u64,
    /// Why it could not start.
    pub message: Option<String>,
}

impl Ending {
    pub fn from_finished(finished: &Finished, duration: Duration) -> Self {
        let duration_ms = duration.as_millis() as u64;
        let (state, exit_code, signal) = match (finished.end, finished.status) {
            (End::TimedOut(_), _) => ("timed_out", None, None),
            (End::Cancelled, _) => ("cancelled", None, None),
            // The engines report a death by signal N as 128+N.
            (_, ExitStatus::Code(code)) if (129..=159).contains(&code) => {
                ("signaled", None, signal_name((code - 128) as i32))
            }
            (_, ExitStatus::Code(code)) => ("exited", Some(code), None),
            (_, ExitStatus::Signal(signal)) => ("signaled", None, signal_name(signal)),
            (_, ExitStatus::Unknown) => ("exited", None, None),
        };
        Self {
            state,
            exit_code,
            signal,
            duration_ms,
            message: None,
        }
    }

    pub fn failed(message: String, duration: Duration) -> Self {
        Self {
            state: "failed_to_start",
            exit_code: None,
            signal: None,
            duration_ms: duration.as_millis() as u64,
            message: Some(message),
        }
    }

    fn fields(&self, out: &mut Map<String, Value>) {
        out.insert("state".into(), Value::from(self.state));
        out.insert("exit_code".into(), json!(self.exit_code));
        out.insert("signal".into(), json!(self.signal));
        out.insert("duration_ms".into(), Value::from(self.duration_ms));
        if let Some(message) = &self.message {
            out.insert("message".into(), Value::from(message.clone()));
        }
    }
}

/// Which of the command's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// A running or finished exec.
pub struct Exec {
    pub id: String,
    pub session_id: String,
    /// Kept output: stdout, stderr.
    kept: Mutex<(Kept, Kept)>,
    /// Woken on new output and at the end.
    pub changed: Notify,
    ending: watch::Sender<Option<Ending>>,
    control: mpsc::Sender<Control>,
    stdin: Mutex<Option<mpsc::Sender<Bytes>>>,
    pub started: Instant,
    finished_at: Mutex<Option<Instant>>,
    /// A foreground exec (`exec.run`, `exec.stream`) rather than `exec.start`'s.
    pub foreground: bool,
}

impl Exec {
    /// A new exec record and the receiver of its control messages.
    pub fn new(
        id: String,
        session_id: String,
        budget: usize,
        foreground: bool,
    ) -> (Arc<Self>, mpsc::Receiver<Control>) {
        let (control, controls) = mpsc::channel(8);
        let exec = Arc::new(Self {
            id,
            session_id,
            kept: Mutex::new((Kept::new(budget), Kept::new(budget))),
            changed: Notify::new(),
            ending: watch::channel(None).0,
            control,
            stdin: Mutex::new(None),
            started: Instant::now(),
            finished_at: Mutex::new(None),
            foreground,
        });
        (exec, controls)
    }

    /// A stdin pipe the caller writes with [`Exec::write_stdin`].
    pub fn open_stdin(&self) -> Input {
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        *self.stdin.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
        });
        Box::pin(tokio_util::io::StreamReader::new(Box::pin(chunks)))
    }

    /// Writes to the exec's stdin; `eof` closes it. False when it is not open.
    pub async fn write_stdin(&self, data: Vec<u8>, eof: bool) -> bool {
        let sender = self.stdin.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(sender) = sender else {
            return false;
        };
        // A command that does not read its stdin must not hold the caller.
        if !data.is_empty() {
            match tokio::time::timeout(Duration::from_secs(10), sender.send(Bytes::from(data)))
                .await
            {
                Ok(Ok(())) => {}
                _ => return false,
            }
        }
        if eof {
            self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
        true
    }

    fn push(&self, stream: Stream, bytes: &[u8]) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        match stream {
            Stream::Stdout => kept.0.push(bytes),
            Stream::Stderr => kept.1.push(bytes),
        }
        drop(kept);
        self.changed.notify_waiters();
    }

    /// A sink that keeps `stream`'s output.
    pub fn sink(self: &Arc<Self>, stream: Stream) -> Pin<Box<dyn AsyncWrite + Send>> {
        Box::pin(KeptSink {
            exec: self.clone(),
            stream,
        })
    }

    /// A sink that keeps the counts and passes `stream`'s output on, waiting when the
    /// receiver is behind (so memory stays bounded).
    pub fn streaming_sink(
        self: &Arc<Self>,
        stream: Stream,
        tx: mpsc::Sender<(Stream, Bytes)>,
    ) -> Pin<Box<dyn AsyncWrite + Send>> {
        Box::pin(StreamSink {
            exec: self.clone(),
            stream,
            tx: PollSender::new(tx),
        })
    }

    pub fn finish(&self, ending: Ending) {
        self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
        *self.finished_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.ending.send_replace(Some(ending));
        self.changed.notify_waiters();
    }

    pub fn ending(&self) -> Option<Ending> {
        self.ending.borrow().clone()
    }

    pub fn finished_at(&self) -> Option<Instant> {
        *self.finished_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the end, at most `limit` (`None`: as long as it takes).
    pub async fn wait(&self, limit: Option<Duration>) -> Option<Ending> {
        let mut ending = self.ending.subscribe();
        let done = ending.wait_for(Option::is_some);
        match limit {
            None => done.await.ok().and_then(|e| e.clone()),
            Some(limit) => match tokio::time::timeout(limit, done).await {
                Ok(Ok(e)) => e.clone(),
                _ => None,
            },
        }
    }

    /// Asks the run to stop it; never waits (a stop already asked for is enough).
    pub fn cancel(&self, signal: i32) {
        let _ = self.control.try_send(Control::Cancel { signal });
    }

    /// The result envelope (with the kept output when `with_output`).
    pub fn envelope(&self, with_output: bool) -> Value {
        let mut out = Map::new();
        out.insert("exec_id".into(), Value::from(self.id.clone()));
        match self.ending() {
            Some(ending) => ending.fields(&mut out),
            None => {
                out.insert("state".into(), Value::from("running"));
            }
        }
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if with_output {
            kept.0.describe("stdout", &mut out);
            kept.1.describe("stderr", &mut out);
        } else {
            out.insert("stdout_bytes".into(), Value::from(kept.0.total()));
            out.insert("stderr_bytes".into(), Value::from(kept.1.total()));
        }
        Value::Object(out)
    }

    /// Output since the offsets: `(stdout, stdout skipped, next), (stderr, …)`.
    pub fn read_from(&self, stdout: u64, stderr: u64) -> [(Vec<u8>, u64, u64); 2] {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        [kept.0.read_from(stdout), kept.1.read_from(stderr)]
    }

    /// Bytes written so far on both streams.
    pub fn totals(&self) -> (u64, u64) {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        (kept.0.total(), kept.1.total())
    }
}

struct KeptSink {
    exec: Arc<Exec>,
    stream: Stream,
}

impl AsyncWrite for KeptSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.exec.push(self.stream, bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

struct StreamSink {
    exec: Arc<Exec>,
    stream: Stream,
    tx: PollSender<(Stream, Bytes)>,
}

impl AsyncWrite for StreamSink {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        match this.tx.poll_reserve(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
            Poll::Ready(Ok(())) => {}
        }
        if this
            .tx
            .send_item((this.stream, Bytes::copy_from_slice(bytes)))
            .is_err()
        {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        this.exec.push(this.stream, bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
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
}

impl Wrapped<'_> {
    /// The wrapper's argv and what it is told, in its environment.
    pub fn parts(&self) -> (Vec<String>, Vec<String>) {
        let mut argv = vec![
            self.shell.to_owned(),
            "-c".to_owned(),
            WRAPPER.to_owned(),
            "dcx".to_owned(),
        ];
        argv.extend(self.argv.iter().cloned());
        let mut env = vec![
            format!("__DCX_STATE={}", self.state_file),
            format!("__DCX_SAVE={}", if self.save_state { "1" } else { "0" }),
            format!("__DCX_CMD={}", self.command.unwrap_or_default()),
            format!("__DCX_CD={}", self.cwd.unwrap_or_default()),
            format!("__DCX_N={}", self.env.len()),
            format!("__DCX_DN={}", self.defaults.len()),
        ];
        for (index, entry) in self.env.iter().enumerate() {
            env.push(format!("__DCX_E{}={entry}", index + 1));
        }
        for (index, entry) in self.defaults.iter().enumerate() {
            env.push(format!("__DCX_D{}={entry}", index + 1));
        }
        (argv, env)
    }

    pub fn command(&self, timeout: Duration) -> Command {
        let (argv, env) = self.parts();
        Command {
            argv,
            env,
            timeout: Some(timeout),
            ..Command::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the wrapper with a local shell, as the container would.
    fn wrapped(shell: &str, state: &str, save: bool, command: &str, env: &[&str]) -> String {
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
        let out = run.output().unwrap();
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
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
