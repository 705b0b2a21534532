//! The env layer's engine work, in pipeline order: user, passwd, home, probe, final env.
//!
//! It chooses the user, finds it in the container's passwd (the file read without an exec; getent,
//! in an exec as root, only for a user the file lacks), decides home and probe shell, runs the
//! `userEnvProbe` (or takes it from a cache), and composes the final env. This is the only file of
//! `env/` that starts processes; the rules themselves live in the pure modules. A cold exec thus
//! costs two engine execs, the probe and the command (a third only to test an image `HOME` that is
//! neither the passwd home nor root's, or for the probe's `printenv` fallback); a warm one, with
//! the host cache, the command alone.
//!
//! The probe runs as the user, without TTY, env or working directory (as the reference's does), and
//! is **killed** after [`PROBE_LIMIT`]: a startup script waiting for input must not hold the
//! command up or stay behind (the reference leaves it running).
//!
//! Cache: on the host ([`ProbeCache`]), keyed by engine endpoint, container id, the container's
//! start time, user, probe mode and the image's `SHELL` (the passwd shell is found by the lookup
//! the cache saves; it is stored with the env), and used only while the fingerprint of the user's
//! shell startup files ([`startup`]), taken before the probe, still holds; or, with
//! `--container-session-data-folder <dir>`, in the container at `<dir>/env-<mode>.json` as the
//! reference's `up` keeps it (`env-<mode>-<user>.json` for a `--user`), read and written by an exec
//! each. A timed-out or failed probe is never cached.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::startup;
use super::{
    CacheKey, CachedProbe, FinalEnv, PasswdEntry, ProbeCache, ProbeMode, UserSource, choose_user,
    compose, find_passwd_entry, home_folder, lookup_name, new_marker, parse_probe_output,
    passwd_lookup_script, probe_argv, probe_shell,
};
use crate::config::{
    ConfigError, ContainerEnv, EffectiveConfig, LocalContext, substitute_container_str,
    substitute_local_str,
};
use crate::log::Log;
use crate::passwd::ACCOUNTS_LIMIT;
use crate::runtime::capture::{Outcome, capture, capture_watched};
use crate::runtime::peek;
use crate::runtime::{Container, ExecSpec, Runtime, RuntimeError};

/// How long the probe may take before it is killed.
pub const PROBE_LIMIT: Duration = Duration::from_secs(10);
/// How long a passwd lookup or a file read may take.
const HELPER_LIMIT: Duration = Duration::from_secs(30);

/// What the env layer needs from the request.
#[derive(Debug, Clone)]
pub struct EnvRequest<'a> {
    pub user: Option<&'a str>,
    pub default_probe: &'a ProbeMode,
    pub remote_env: &'a [(String, String)],
    pub cache: Option<&'a ProbeCache>,
    /// Skip the cached entry (still storing the fresh one).
    pub refresh: bool,
    pub session_data_folder: Option<&'a str>,
    pub config_file: Option<&'a Path>,
    /// Store nothing (`--dry-run`): the lookup and probe still run, read-only.
    pub read_only: bool,
}

/// Where the probed env came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeSource {
    /// Mode `none`: no probe.
    Off,
    HostCache,
    ContainerCache,
    Probed,
    /// The probe overran [`PROBE_LIMIT`] and was killed; the env is un-probed.
    TimedOut,
    /// The probe failed; the env is un-probed.
    Failed,
}

/// The resolved environment of the command.
#[derive(Debug, Clone)]
pub struct Environment {
    /// The whole user string, as the engine takes it (`vscode`, `1000:1000`).
    pub user: String,
    pub user_source: UserSource,
    pub home: String,
    pub shell: String,
    pub mode: ProbeMode,
    pub probe: ProbeSource,
    pub env: FinalEnv,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("Cannot look up user {user} in the container: {reason}")]
    Lookup { user: String, reason: String },
    #[error(
        "The environment variable {0} holds a NUL character, which no process environment can carry."
    )]
    Nul(String),
}

fn env_value<'a>(container: &'a Container, name: &str) -> Option<&'a str> {
    container.env.iter().find_map(|entry| {
        entry
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
    })
}

/// Resolves user, home, shell and the final env.
pub async fn resolve(
    runtime: &dyn Runtime,
    container: &Container,
    effective: &EffectiveConfig,
    local: &LocalContext,
    request: &EnvRequest<'_>,
    log: &Log,
) -> Result<Environment, ResolveError> {
    let (user, user_source) = choose_user(
        request.user,
        effective.remote_user.as_deref(),
        container.user.as_deref(),
    );
    let mode = match effective
        .user_env_probe
        .as_deref()
        .filter(|m| !m.is_empty())
    {
        Some(mode) => {
            log.debug(&format!("userEnvProbe: {mode}"));
            ProbeMode::parse(mode)
        }
        None => {
            log.debug(&format!(
                "userEnvProbe: {} (default)",
                request.default_probe
            ));
            request.default_probe.clone()
        }
    };
    let image_shell = env_value(container, "SHELL").filter(|s| !s.is_empty());
    let key = CacheKey {
        endpoint: runtime.endpoint().to_owned(),
        container_id: container.id.clone(),
        started_at: container.started_at.clone(),
        user: user.clone(),
        mode: mode.as_str().to_owned(),
        shell: image_shell.unwrap_or_default().to_owned(),
    };

    // The reference keeps one file per mode, for the one user it runs as; a `--user` of dcx's
    // gets a file of its own so one user's env never reaches another.
    let session_file = request.session_data_folder.map(|folder| {
        let folder = folder.trim_end_matches('/');
        match user_source {
            UserSource::Cli => format!("{folder}/env-{mode}-{}.json", file_safe(&user)),
            _ => format!("{folder}/env-{mode}.json"),
        }
    });
    // An untrusted cache is warned about once per exec, on load or else on store.
    let mut warned = false;
    let cached = match (session_file.as_deref(), request.cache) {
        (Some(file), _) => read_container_cache(runtime, container, &user, file, log)
            .await
            .map(|probe| (probe, ProbeSource::ContainerCache)),
        (None, Some(_)) if request.refresh => None,
        (None, Some(cache)) => match cache.load(&key) {
            Ok(Some(probe)) => {
                let seen = Some(probe.startup_entries.as_slice());
                let now = startup_fingerprint(runtime, container, &probe.home, seen, log).await;
                if now.is_some_and(|(now, _)| now == probe.startup) {
                    log.debug(&format!(
                        "userEnvProbe: from the cache in {}",
                        cache.dir().display()
                    ));
                    Some((probe, ProbeSource::HostCache))
                } else {
                    log.debug(
                        "userEnvProbe: the shell's startup files changed since the cached probe; probing again",
                    );
                    None
                }
            }
            Ok(None) => None,
            Err(miss) if miss.is_untrusted() => {
                log.warn(&format!("{miss}; probing instead."));
                warned = true;
                None
            }
            Err(miss) => {
                log.debug(&miss.to_string());
                None
            }
        },
        (None, None) => None,
    };

    let (probe, source) = match cached {
        Some(found) => found,
        None => {
            let entry = lookup(runtime, container, &user, log).await?;
            let home = home(runtime, container, &user, entry.as_ref()).await?;
            let shell = probe_shell(image_shell, entry.as_ref());
            // Taken before the probe: a file changed while it runs makes the entry stale.
            let startup = match (session_file.as_deref(), request.cache) {
                (None, Some(_)) if !request.read_only => {
                    startup_fingerprint(runtime, container, &home, None, log).await
                }
                _ => None,
            };
            let (env, source) = run_probe(runtime, container, &user, &shell, &mode, log).await?;
            let storable = session_file.is_some() || startup.is_some();
            let (startup, startup_entries) = startup.unwrap_or_default();
            let probe = CachedProbe {
                home,
                shell,
                env,
                startup,
                startup_entries,
            };
            if matches!(source, ProbeSource::Probed | ProbeSource::Off)
                && !request.read_only
                && storable
            {
                match (session_file.as_deref(), request.cache) {
                    (Some(file), _) => {
                        write_container_cache(runtime, container, &user, file, &probe, log).await;
                    }
                    (None, Some(cache)) => match cache.store(&key, &probe) {
                        Ok(()) => {}
                        Err(err) if err.is_untrusted() && !warned => {
                            log.warn(&format!("{err}; the probed environment is not stored."));
                        }
                        Err(err) => log.debug(&err.to_string()),
                    },
                    (None, None) => {}
                }
            }
            (probe, source)
        }
    };

    let container_env = ContainerEnv::from_list(&container.env);
    let cli = request
        .remote_env
        .iter()
        .map(|(name, value)| {
            let local_pass = substitute_local_str(value, local)?;
            let value = substitute_container_str(&local_pass, &container_env, request.config_file)?;
            Ok((name.clone(), value))
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    let env = compose(&probe.env, &effective.remote_env, &cli);
    // No process environment can carry a NUL: say which variable, before anything starts.
    if let Some((name, _, _)) = env
        .entries
        .iter()
        .find(|(name, value, _)| name.contains('\0') || value.contains('\0'))
    {
        return Err(ResolveError::Nul(name.replace('\0', "\\0")));
    }
    Ok(Environment {
        user,
        user_source,
        home: probe.home,
        shell: probe.shell,
        mode,
        probe: source,
        env,
    })
}

/// The fingerprint of the shell startup files of a user whose home is `home`, and the watched
/// folders' entries it covers (`seen`: the ones an earlier look found, see
/// [`startup::watched`]); `None` when they cannot be looked at (then no cached probe is
/// trusted, and none is stored).
async fn startup_fingerprint(
    runtime: &dyn Runtime,
    container: &Container,
    home: &str,
    seen: Option<&[String]>,
    log: &Log,
) -> Option<(String, Vec<String>)> {
    match peek::states(runtime, container, &startup::watched(home, seen)).await {
        Ok(states) => {
            if log.enabled(crate::log::Level::Trace) {
                log.trace(&format!("Shell startup files: {states:?}"));
            }
            Some((
                startup::fingerprint(&states),
                startup::entries_seen(&states),
            ))
        }
        Err(err) => {
            log.debug(&format!(
                "Cannot look at the shell's startup files ({err}): the probe cache is not used."
            ));
            None
        }
    }
}

fn helper(argv: Vec<String>, user: &str) -> ExecSpec {
    ExecSpec {
        argv,
        user: Some(user.to_owned()),
        ..ExecSpec::default()
    }
}

/// The passwd entry of `user` (looked up as root, who can always read /etc/passwd). A name
/// that is not there is an error; a bare uid need not be (the engine runs unnamed uids).
async fn lookup(
    runtime: &dyn Runtime,
    container: &Container,
    user: &str,
    log: &Log,
) -> Result<Option<PasswdEntry>, ResolveError> {
    let name = lookup_name(user);
    // The container's /etc/passwd, read without an exec; a user it lacks may still be known
    // to getent (another NSS source), which only the exec asks.
    match peek::read_small(runtime, container, "/etc/passwd", ACCOUNTS_LIMIT).await {
        Ok(Some(bytes)) => {
            if let Some(found) = find_passwd_entry(&String::from_utf8_lossy(&bytes), &name) {
                log.debug(&format!(
                    "User {name}: uid {}, home {}, shell {} (from /etc/passwd)",
                    found.uid, found.home, found.shell
                ));
                return Ok(Some(found));
            }
        }
        Ok(None) => {}
        Err(err) => log.debug(&format!("Cannot read /etc/passwd ({err}); asking getent.")),
    }
    let failed = |reason: String| ResolveError::Lookup {
        user: name.clone(),
        reason,
    };
    let spec = helper(passwd_lookup_script(&name), "0");
    let captured = match capture(runtime, container, &spec, b"", HELPER_LIMIT).await? {
        Outcome::Finished(captured) => captured,
        Outcome::TimedOut { .. } => return Err(failed("the lookup did not finish".into())),
    };
    // Given as a number (`0` is looked up as `root`, by the reference's rule).
    let given = user.split(':').next().unwrap_or(user);
    let numeric = !given.is_empty() && given.chars().all(|c| c.is_ascii_digit());
    // A container without a shell (126: `/bin/sh` cannot run; 127: not found) cannot be asked;
    // a bare uid needs no entry (the engine runs it as is), so only a name is an error then.
    if numeric && matches!(captured.status.exit_code(), 126 | 127) {
        log.debug(&format!(
            "User {name}: no entry in /etc/passwd, and no shell to ask getent (exit {}); running as the bare uid.",
            captured.status.exit_code()
        ));
        return Ok(None);
    }
    if captured.status.exit_code() != 0 {
        return Err(failed(format!(
            "{} (exit {})",
            String::from_utf8_lossy(&captured.stdout)
                .trim()
                .lines()
                .chain(String::from_utf8_lossy(&captured.stderr).trim().lines())
                .collect::<Vec<_>>()
                .join(" "),
            captured.status.exit_code()
        )));
    }
    let entry = find_passwd_entry(&String::from_utf8_lossy(&captured.stdout), &name);
    match &entry {
        None if !numeric => Err(RuntimeError::UnknownUser(name).into()),
        None => {
            log.debug(&format!("User {name} not found with 'getent passwd'."));
            Ok(None)
        }
        Some(found) => {
            log.debug(&format!(
                "User {name}: uid {}, home {}, shell {}",
                found.uid, found.home, found.shell
            ));
            Ok(entry)
        }
    }
}

/// The home folder by the reference's rule; the writability test runs only when it matters.
async fn home(
    runtime: &dyn Runtime,
    container: &Container,
    user: &str,
    entry: Option<&PasswdEntry>,
) -> Result<String, ResolveError> {
    let image_home = env_value(container, "HOME");
    let needs_test = image_home.is_some_and(|home| {
        !home.is_empty() && entry.is_none_or(|e| e.home != home && e.uid != "0")
    });
    let writable = match image_home.filter(|_| needs_test) {
        Some(home) => {
            let spec = helper(super::user::home_writable_script(home), user);
            matches!(
                capture(runtime, container, &spec, b"", HELPER_LIMIT).await?,
                Outcome::Finished(c) if c.status.exit_code() == 0
            )
        }
        None => false,
    };
    Ok(home_folder(entry, image_home, |_| writable))
}

/// Runs the probe (with its printenv fallback); never fails the exec.
async fn run_probe(
    runtime: &dyn Runtime,
    container: &Container,
    user: &str,
    shell: &str,
    mode: &ProbeMode,
    log: &Log,
) -> Result<(Vec<(String, String)>, ProbeSource), ResolveError> {
    log.debug(&format!("userEnvProbe shell: {shell}"));
    let marker = new_marker();
    for fallback in [false, true] {
        let Some(argv) = probe_argv(shell, mode, &marker, fallback) else {
            return Ok((Vec::new(), ProbeSource::Off));
        };
        let started = log.start(&format!("Run in container: {}", argv.join(" ")));
        let progress = log.progress(&format!(
            "Probing the environment of {user} in the container (userEnvProbe {}, {shell})",
            mode.as_str()
        ));
        // Watched, so that it dies with dcx however dcx ends (SIGKILL included).
        let spec = helper(super::probe::watched(argv), user);
        let outcome = capture_watched(runtime, container, &spec, PROBE_LIMIT).await;
        drop(progress);
        let outcome = outcome?;
        log.stop(started);
        let captured = match outcome {
            Outcome::Finished(captured) => captured,
            Outcome::TimedOut { .. } => {
                log.warn(&format!(
                    "userEnvProbe is taking longer than {} seconds. Avoid waiting for user input in your shell's startup scripts. The probe was stopped; continuing without it. To skip the probe: \"userEnvProbe\": \"none\" in devcontainer.json, or --default-user-env-probe none.",
                    PROBE_LIMIT.as_secs()
                ));
                return Ok((Vec::new(), ProbeSource::TimedOut));
            }
        };
        if captured.cut {
            log.warn(&format!(
                "userEnvProbe printed more than {} MiB (the shell's startup scripts print that much?): that is more than dcx reads, so the probed environment is not used. To skip the probe: \"userEnvProbe\": \"none\" in devcontainer.json, or --default-user-env-probe none.",
                crate::runtime::capture::LIMIT >> 20
            ));
            return Ok((Vec::new(), ProbeSource::Failed));
        }
        if captured.status.exit_code() != 0 {
            log.debug(&format!(
                "userEnvProbe failed with exit code {}: {}",
                captured.status.exit_code(),
                String::from_utf8_lossy(&captured.stderr).trim()
            ));
            return Ok((Vec::new(), ProbeSource::Failed));
        }
        if let Some(env) = parse_probe_output(&captured.stdout, &marker, !fallback) {
            if log.enabled(crate::log::Level::Trace) {
                log.trace(&format!("userEnvProbe parsed: {env:?}"));
            }
            return Ok((env, ProbeSource::Probed));
        }
        if !fallback {
            log.debug("userEnvProbe: falling back to printenv");
        }
    }
    Ok((Vec::new(), ProbeSource::Failed))
}

/// `user` as a file name part (`vscode`, `1000_1000`).
fn file_safe(user: &str) -> String {
    user.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Reads `<folder>/env-<mode>.json` in the container (home and shell are looked up afresh:
/// the file holds only the env, as the reference writes it).
async fn read_container_cache(
    runtime: &dyn Runtime,
    container: &Container,
    user: &str,
    file: &str,
    log: &Log,
) -> Option<CachedProbe> {
    let argv = ["/bin/sh", "-c", r#"test -f "$1" && cat "$1""#, "sh", file]
        .map(str::to_owned)
        .to_vec();
    let Ok(Outcome::Finished(captured)) =
        capture(runtime, container, &helper(argv, user), b"", HELPER_LIMIT).await
    else {
        return None;
    };
    if captured.status.exit_code() != 0 {
        log.debug(&format!("userEnvProbe: not found in cache {file}"));
        return None;
    }
    let map: serde_json::Map<String, serde_json::Value> =
        match serde_json::from_slice(&captured.stdout) {
            Ok(map) => map,
            Err(err) => {
                log.debug(&format!("Failed to read/parse user env cache: {err}"));
                return None;
            }
        };
    let env = map
        .into_iter()
        .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_owned())))
        .collect();
    let entry = lookup(runtime, container, user, log).await.ok()?;
    let home = home(runtime, container, user, entry.as_ref()).await.ok()?;
    let shell = probe_shell(env_value(container, "SHELL"), entry.as_ref());
    log.debug(&format!("userEnvProbe: from the container's cache {file}"));
    Some(CachedProbe {
        home,
        shell,
        env,
        startup: String::new(),
        startup_entries: Vec::new(),
    })
}

async fn write_container_cache(
    runtime: &dyn Runtime,
    container: &Container,
    user: &str,
    file: &str,
    probe: &CachedProbe,
    log: &Log,
) {
    let folder = file.rsplit_once('/').map_or(".", |(folder, _)| folder);
    let map: serde_json::Map<String, serde_json::Value> = probe
        .env
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    // Indented with tabs, as the reference writes the file.
    let mut json = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut json, formatter);
    if serde::Serialize::serialize(&map, &mut serializer).is_err() {
        return;
    }
    let argv = [
        "/bin/sh",
        "-c",
        r#"mkdir -p "$1" && cat > "$2.tmp" && mv "$2.tmp" "$2""#,
        "sh",
        folder,
        file,
    ]
    .map(str::to_owned)
    .to_vec();
    match capture(runtime, container, &helper(argv, user), &json, HELPER_LIMIT).await {
        Ok(Outcome::Finished(c)) if c.status.exit_code() == 0 => {}
        _ => log.debug(&format!("cannot write the user env cache {file}")),
    }
}
