//! How many zombie processes a container holds: the host's `/proc`, else one short exec.
//!
//! Where the engine runs on this host, [`Runtime::top`] reads the container's processes from
//! the host's `/proc` (zombies included) and no process is started; elsewhere (a remote
//! daemon) one short `sh` exec counts the `Z` states in the container's own `/proc`.

use std::time::Duration;

use super::capture::{Outcome, capture};
use super::{Container, ExecSpec, Runtime};

/// Counts the zombies in `/proc` with shell builtins only.
const COUNT: &str = r#"n=0; for f in /proc/[0-9]*/stat; do read -r line < "$f" 2>/dev/null || continue; case ${line##*) } in Z*) n=$((n+1));; esac; done; echo $n"#;

/// The container's zombies; `None` when neither way can tell.
pub async fn count(runtime: &dyn Runtime, container: &Container) -> Option<u64> {
    if runtime.host_root(container).is_some()
        && let Ok(processes) = runtime.top(container).await
    {
        return Some(processes.iter().filter(|p| p.zombie()).count() as u64);
    }
    let spec = ExecSpec {
        argv: vec!["/bin/sh".into(), "-c".into(), COUNT.into()],
        ..ExecSpec::default()
    };
    match capture(runtime, container, &spec, b"", Duration::from_secs(10)).await {
        Ok(Outcome::Finished(captured)) if captured.status.exit_code() == 0 => {
            String::from_utf8_lossy(&captured.stdout)
                .trim()
                .parse()
                .ok()
        }
        _ => None,
    }
}
