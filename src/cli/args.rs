//! The command line: clap's structs, and where `dcx exec`'s options end and its command begins.
//!
//! Nothing here does I/O (`cli::run` prints what parsing returns) and the structs hold no
//! logic: [`super::request`] turns them into the engine's requests.
//!
//! `devcontainer exec` (yargs with `halt-at-non-option`) stops reading options at the first word
//! that is not an option: that word and every word after it, options included, are the command
//! run in the container. A leading `--` is dropped; a later one belongs to the command. A string
//! option takes the next word as its value unless that word looks like an option. A flag with
//! an optional value (`--no-probe-cache`, `--mount-workspace-git-root`, …) takes one only as
//! `--flag=value` (yargs would take a next `true` or `false`, and so swallow a command named
//! `true`). clap has no such mode, so [`parse`] first splits argv by that rule, using clap's own
//! description of the options, and hands clap the options followed by `--` and the command.

use std::ffi::OsString;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use super::complete;

/// Run commands inside dev containers: a fast `devcontainer exec`, and the same engine for
/// agents (`dcx serve`, `dcx mcp`)
///
/// dcx runs a command in a dev container with the flags and behaviour of `devcontainer exec`,
/// as one native binary that talks to the Docker Engine API (or to crun) directly. The same
/// engine serves AI agents as a JSON service (`dcx serve`) and as MCP tools (`dcx mcp`).
#[derive(Debug, Parser)]
#[command(
    name = "dcx",
    version = env!("DCX_VERSION"),
    propagate_version = true,
    styles = STYLES,
    after_help = TOP_FOOTER,
    after_long_help = TOP_LONG_FOOTER
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// clap's help colours: headings and option names stand out, placeholders are plain. Shown
/// only on a terminal, and never with `NO_COLOR` (see `cli::run`).
pub const STYLES: clap::builder::Styles = {
    use clap::builder::styling::{AnsiColor, Effects, Style};
    clap::builder::Styles::styled()
        .header(Style::new().bold().underline())
        .usage(Style::new().bold().underline())
        .literal(AnsiColor::Cyan.on_default().effects(Effects::BOLD))
        .placeholder(AnsiColor::Cyan.on_default())
        .valid(AnsiColor::Green.on_default())
        .invalid(AnsiColor::Yellow.on_default().effects(Effects::BOLD))
        .error(AnsiColor::Red.on_default().effects(Effects::BOLD))
};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Execute a command on a running dev container
    ///
    /// Runs CMD in the dev container the selection flags name (none: the one of the current
    /// directory), with the user, environment and working directory `devcontainer exec` would
    /// give it, and exits with the command's own exit code.
    #[command(
        override_usage = "dcx exec [OPTIONS] <CMD> [ARGS]...",
        after_help = EXEC_FOOTER,
        after_long_help = EXEC_LONG_FOOTER,
        display_name = "dcx"
    )]
    Exec(Box<ExecArgs>),
    /// Serve the exec engine to agents over a unix socket (and optionally HTTP)
    ///
    /// Sessions bound to dev containers, over a unix socket (newline-delimited JSON) and
    /// optionally HTTP with a bearer token; docs/agent-protocol.md is the whole protocol. Runs
    /// until SIGTERM or SIGINT.
    Serve(ServeArgs),
    /// Serve the dev container as MCP tools over stdio for an agent host
    ///
    /// The tools: run_command, start_command, read_output, send_input, cancel_command,
    /// container_info, read_file, write_file, edit_file and list_directory. The session is
    /// created on the first call and kept warm until stdin closes.
    Mcp(McpArgs),
    /// Show the output of the dev container's own processes
    ///
    /// Docker's logs, with stdout and stderr kept apart; crun: the file in the container's
    /// dcx.log_path annotation, or its process's stdout when that is a file.
    Logs(LogsArgs),
    /// Copy files and folders between the host and the dev container
    ///
    /// docker cp's syntax, with :PATH meaning the dev container the selection flags name, and -
    /// a tar stream on stdin (SRC) or stdout (DST).
    #[command(after_help = CP_FOOTER, after_long_help = CP_LONG_FOOTER)]
    Cp(CpArgs),
    /// List the processes running in the dev container, zombies marked
    Top(TopArgs),
    /// Print a shell completion script on stdout
    ///
    /// The script asks dcx for the candidates as you type: options, running containers' names
    /// and ids after --container-id, label keys after --id-label, the container's paths after
    /// `dcx cp :`. Load it from your shell's startup file, for example `source <(dcx
    /// completions bash)` in ~/.bashrc.
    Completions(CompletionsArgs),
    /// Print dcx's man pages (roff) on stdout, or write them all to a folder
    ///
    /// `dcx man` is the page of dcx itself, `dcx man exec` the page of `dcx exec` with every
    /// option; `dcx man --dir DIR` writes dcx.1 and one dcx-SUBCOMMAND.1 per subcommand.
    Man(ManArgs),
}

const TOP_FOOTER: &str =
    "Run 'dcx help <COMMAND>' for a subcommand's options, '--help' for examples.";

const TOP_LONG_FOOTER: &str = "Examples:
  dcx exec --workspace-folder . npm test
  dcx exec --container-id web -- ls -la
  dcx serve --socket /tmp/dcx.sock
  claude mcp add devcontainer -- dcx mcp

Linked or copied as `devcontainer`, dcx runs `exec` itself and passes every other subcommand to the reference CLI (DCX_DEVCONTAINER_CLI, else the next `devcontainer` on PATH).";

const EXEC_FOOTER: &str =
    "Run 'dcx exec --help' for examples, exit codes and environment variables.";

const EXEC_LONG_FOOTER: &str = "Examples:
  dcx exec --workspace-folder . npm test
  dcx exec --container-id web -u root -w /tmp -e DEBUG=1 sh -c 'env | sort'
  dcx exec --workspace-folder . --timeout 5m --log-format json cargo build
  dcx exec --runtime crun --container-id box true

Options end at the first word that is not an option: that word and everything after it are the command. Flags with an optional value take it only as --flag=value.

The terminal: a TTY when stdin and stdout are both terminals (or with --log-format json), sized like the host terminal or by --terminal-rows/--terminal-columns; docker's -i and -t are not needed.

Exit codes:
  the command's own: its exit code; 128+N when it was killed by signal N
  1: dcx could not run it (the message says why)
  124: --timeout expired (the command was stopped)

Environment:
  DOCKER_HOST: the Docker endpoint (unix://, tcp://, ssh://)
  DCX_RUNTIME: docker (default) or crun, as --runtime
  DCX_NO_PROBE_CACHE=1: as --no-probe-cache
  DCX_SERVER: a dcx serve socket to run through (auto: the default one)
  XDG_CACHE_HOME, HOME: where the probe cache lives (.../dcx/probe)";

/// Which dev container on which engine, as `dcx exec` names them (no selector: the current
/// directory).
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Id, name or unique id prefix of the container
    #[arg(long = "container-id", value_name = "ID", add = complete::containers())]
    pub container_id: Option<String>,

    /// Find the container by this label (name=value); repeatable, all must match
    #[arg(long = "id-label", value_name = "NAME=VALUE", add = complete::labels())]
    pub id_label: Vec<String>,

    /// Find the container started for this workspace folder [default: the current directory]
    #[arg(long = "workspace-folder", value_name = "PATH", value_hint = clap::ValueHint::DirPath)]
    pub workspace_folder: Option<String>,

    /// devcontainer.json path
    #[arg(long, value_name = "PATH", value_hint = clap::ValueHint::FilePath)]
    pub config: Option<String>,

    /// The container engine
    #[arg(long, env = "DCX_RUNTIME", hide_env_values = true, value_enum, default_value_t = RuntimeKind::Docker)]
    pub runtime: RuntimeKind,

    /// crun's state root (with --runtime crun)
    #[arg(long = "crun-root", value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub crun_root: Option<String>,

    /// The crun binary (with --runtime crun)
    #[arg(long = "crun-path", value_name = "PATH", value_hint = clap::ValueHint::ExecutablePath)]
    pub crun_path: Option<String>,

    /// Docker CLI path; a path to podman selects the podman socket
    #[arg(long = "docker-path", value_name = "PATH", value_hint = clap::ValueHint::ExecutablePath)]
    pub docker_path: Option<String>,
}

/// The flags of `dcx top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub target: TargetArgs,
}

/// The flags of `dcx completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The flags of `dcx man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print [default: dcx's own]
    #[arg(value_name = "SUBCOMMAND", conflicts_with = "dir")]
    pub subcommand: Option<String>,

    /// Write every page (dcx.1 and dcx-SUBCOMMAND.1) into this folder instead
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub dir: Option<std::path::PathBuf>,
}

const CP_FOOTER: &str = "Run 'dcx cp --help' for examples and the copy rules.";

const CP_LONG_FOOTER: &str = "Examples:
  A host file into the container:
    dcx cp --workspace-folder . ./build.log :/tmp/
  A tar of a container file on stdout:
    dcx cp --workspace-folder . :/etc/os-release -
  A folder's contents (the dev container of the current directory):
    dcx cp :src/. ./backup
  A tar stream into a folder:
    tar -c dist | dcx cp - :/srv/

A path starting with : is in the container, absolute or relative to the remote workspace folder; any other path is on the host. Exactly one side is the container. Symlinks are copied as links; modes and mtimes are kept. Files written into the container belong to the user (--user, else remoteUser, else the container's user); files written on the host belong to you.";

/// The flags of `dcx cp`.
#[derive(Debug, Args)]
pub struct CpArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Give what is written into the container to this user (wins over remoteUser)
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,

    /// Say nothing on success
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// What to copy: a host path, :PATH in the container, or - for a tar stream on stdin
    #[arg(value_name = "SRC", allow_hyphen_values = true, add = complete::copy_paths())]
    pub src: std::ffi::OsString,

    /// Where to: a host path, :PATH in the container, or - for a tar stream on stdout
    #[arg(value_name = "DST", allow_hyphen_values = true, add = complete::copy_paths())]
    pub dst: std::ffi::OsString,
}

/// The flags of `dcx logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Keep printing new output until interrupted
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// Only the last N lines, or all
    #[arg(short = 'n', long, value_name = "N", value_parser = parse_tail)]
    pub tail: Option<Tail>,

    /// Only output since TIME (Docker only)
    #[arg(
        long,
        value_name = "TIME",
        value_parser = parse_log_time,
        long_help = "Only output since TIME: an RFC 3339 time (2026-01-01T00:00:00Z, 2026-01-01), Unix seconds (1767225600), or a duration before now (10m, 1h30m). Docker only."
    )]
    pub since: Option<LogTime>,

    /// Only output before TIME, in --since's forms (Docker only)
    #[arg(long, value_name = "TIME", value_parser = parse_log_time)]
    pub until: Option<LogTime>,

    /// Lead each line with its time (Docker only)
    #[arg(short = 't', long)]
    pub timestamps: bool,
}

/// `dcx logs --tail`: every line, or the last N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    All,
    Lines(u64),
}

/// A time `dcx logs --since/--until` takes, in docker's forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTime {
    /// Seconds since the Unix epoch.
    At(i64),
    /// This long before now.
    Ago(Duration),
}

/// The flags of `dcx mcp`: `dcx exec`'s selectors (none: the current directory).
#[derive(Debug, Args)]
pub struct McpArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Run as this user (wins over remoteUser)
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,

    /// Log level for diagnostics on stderr
    #[arg(long = "log-level", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
}

/// The flags of `dcx serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The unix socket to listen on [default: $XDG_RUNTIME_DIR/dcx/agent.sock, else /run/dcx/agent.sock]
    #[arg(long, value_name = "PATH")]
    pub socket: Option<std::path::PathBuf>,

    /// Also listen for HTTP on this loopback address (needs DCX_AUTH_TOKEN in the environment)
    #[arg(long, value_name = "127.0.0.1:PORT", value_parser = parse_address)]
    pub http: Option<std::net::SocketAddr>,

    /// Sessions at most
    #[arg(long = "max-sessions", value_name = "N", default_value_t = 64,
          value_parser = parse_limit)]
    pub max_sessions: u32,

    /// Running commands at most, over all sessions
    #[arg(long = "max-execs", value_name = "N", default_value_t = 64,
          value_parser = parse_limit)]
    pub max_execs: u32,

    /// Drop a session after this long without requests (30m, 1h, 90s)
    #[arg(long = "idle-timeout", value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// The longest timeout a command may ask for
    #[arg(long = "max-timeout", value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub max_timeout: Duration,

    /// Run every command by a plain engine exec, never through the in-container helper
    /// (as DCX_HELPER=0)
    #[arg(long = "no-helper")]
    pub no_helper: bool,

    /// Log level for the server's log on stderr
    #[arg(long = "log-level", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Log format for the server's log on stderr
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The flags of `dcx exec`; camelCase aliases mirror yargs' (`--containerId`).
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Id, name or unique id prefix of the container to run in
    #[arg(
        help_heading = "Selection",
        long = "container-id",
        alias = "containerId",
        value_name = "ID",
        add = complete::containers()
    )]
    pub container_id: Option<String>,

    /// Find the container by this label (name=value); repeatable, all must match
    #[arg(
        help_heading = "Selection",
        long = "id-label",
        alias = "idLabel",
        value_name = "NAME=VALUE",
        add = complete::labels()
    )]
    pub id_label: Vec<String>,

    /// Find the container started for this workspace folder (its dev container config)
    #[arg(
        help_heading = "Selection",
        long = "workspace-folder",
        alias = "workspaceFolder",
        value_name = "PATH",
        value_hint = clap::ValueHint::DirPath
    )]
    pub workspace_folder: Option<String>,

    /// devcontainer.json path (default: .devcontainer/devcontainer.json, then .devcontainer.json)
    #[arg(help_heading = "Configuration", long, value_name = "PATH")]
    pub config: Option<String>,

    /// A file whose content replaces the dev container config
    #[arg(
        help_heading = "Configuration",
        long = "override-config",
        alias = "overrideConfig",
        value_name = "PATH"
    )]
    pub override_config: Option<String>,

    /// Default remote workspace folder from the git root of the workspace [default: true]
    #[arg(help_heading = "Configuration", long = "mount-workspace-git-root", alias = "mountWorkspaceGitRoot", value_name = "BOOL",
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub mount_workspace_git_root: Option<bool>,

    /// Mount a git worktree's common dir (affects the default remote workspace folder)
    #[arg(help_heading = "Configuration", long = "mount-git-worktree-common-dir", alias = "mountGitWorktreeCommonDir",
          value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub mount_git_worktree_common_dir: Option<bool>,

    /// Add NAME=VALUE to the command's environment (wins over the config); repeatable
    #[arg(
        help_heading = "Environment",
        short = 'e',
        long = "remote-env",
        alias = "remoteEnv",
        value_name = "NAME=VALUE"
    )]
    pub remote_env: Vec<String>,

    /// userEnvProbe mode when the config sets none
    #[arg(help_heading = "Environment", long = "default-user-env-probe", alias = "defaultUserEnvProbe", value_enum,
          default_value_t = UserEnvProbe::LoginInteractiveShell)]
    pub default_user_env_probe: UserEnvProbe,

    /// Run as this user (user, uid, user:group, uid:gid); wins over remoteUser
    #[arg(help_heading = "Environment", short = 'u', long, value_name = "USER")]
    pub user: Option<String>,

    /// Working directory in the container (default: the remote workspace folder, else home)
    #[arg(help_heading = "Environment", short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// Folder in the container for session data; the probed environment is cached there too
    #[arg(
        help_heading = "Environment",
        long = "container-session-data-folder",
        alias = "containerSessionDataFolder",
        value_name = "PATH"
    )]
    pub container_session_data_folder: Option<String>,

    /// Probe the user's environment afresh instead of using the cache (also DCX_NO_PROBE_CACHE=1)
    #[arg(help_heading = "Environment", long = "no-probe-cache", env = "DCX_NO_PROBE_CACHE", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0..=1, require_equals = true, default_missing_value = "true", hide_env_values = true)]
    pub no_probe_cache: Option<bool>,

    /// Print the resolved plan as JSON and run nothing
    #[arg(
        help_heading = "Output and logging",
        long = "dry-run",
        alias = "dryRun"
    )]
    pub dry_run: bool,

    /// Log level for diagnostics on stderr
    #[arg(help_heading = "Output and logging", long = "log-level", alias = "logLevel", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Log format for diagnostics on stderr
    #[arg(help_heading = "Output and logging", long = "log-format", alias = "logFormat", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Columns of the container's terminal (with --terminal-rows)
    #[arg(help_heading = "Terminal", long = "terminal-columns", alias = "terminalColumns", value_name = "COLUMNS",
          value_parser = parse_terminal_size, allow_negative_numbers = true)]
    pub terminal_columns: Option<u16>,

    /// Rows of the container's terminal (with --terminal-columns)
    #[arg(help_heading = "Terminal", long = "terminal-rows", alias = "terminalRows", value_name = "ROWS",
          value_parser = parse_terminal_size, allow_negative_numbers = true)]
    pub terminal_rows: Option<u16>,

    /// Stop the command after this long (30s, 2m, 500ms; a bare number is seconds): SIGTERM,
    /// then SIGKILL after a grace period; dcx exits 124
    #[arg(help_heading = "Terminal", long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// The container engine: the Docker daemon, or containers run directly by crun
    #[arg(help_heading = "Engines", long, env = "DCX_RUNTIME", hide_env_values = true, value_enum, default_value_t = RuntimeKind::Docker)]
    pub runtime: RuntimeKind,

    /// crun's state root (with --runtime crun) [default: crun's own, /run/crun for root]
    #[arg(help_heading = "Engines", long = "crun-root", value_name = "DIR")]
    pub crun_root: Option<String>,

    /// The crun binary (with --runtime crun) [default: crun on PATH]
    #[arg(help_heading = "Engines", long = "crun-path", value_name = "PATH")]
    pub crun_path: Option<String>,

    #[command(flatten)]
    pub compat: CompatArgs,

    /// The command to run and its arguments: everything from the first word that is not an option
    #[arg(value_names = ["CMD", "ARGS"], num_args = 1.., required = true)]
    pub command: Vec<String>,
}

/// Flags of `devcontainer exec` that do not change what exec does (spec FR-008): accepted so
/// that callers can pass them, recorded for `--dry-run`.
#[derive(Debug, Args)]
pub struct CompatArgs {
    /// Docker CLI path; a path to podman selects the podman socket
    #[arg(
        help_heading = "Engines",
        long = "docker-path",
        alias = "dockerPath",
        value_name = "PATH"
    )]
    pub docker_path: Option<String>,
    /// Accepted for compatibility; exec needs no compose
    #[arg(
        help_heading = "Compatibility (accepted, no effect)",
        hide_short_help = true,
        long = "docker-compose-path",
        alias = "dockerComposePath",
        value_name = "PATH"
    )]
    pub docker_compose_path: Option<String>,
    /// Accepted for compatibility; no effect on exec
    #[arg(
        help_heading = "Compatibility (accepted, no effect)",
        hide_short_help = true,
        long = "container-data-folder",
        alias = "containerDataFolder",
        value_name = "PATH"
    )]
    pub container_data_folder: Option<String>,
    /// Accepted for compatibility; no effect on exec
    #[arg(
        help_heading = "Compatibility (accepted, no effect)",
        hide_short_help = true,
        long = "container-system-data-folder",
        alias = "containerSystemDataFolder",
        value_name = "PATH"
    )]
    pub container_system_data_folder: Option<String>,
    /// Accepted for compatibility; no effect on exec
    #[arg(
        help_heading = "Compatibility (accepted, no effect)",
        hide_short_help = true,
        long = "user-data-folder",
        alias = "userDataFolder",
        value_name = "PATH"
    )]
    pub user_data_folder: Option<String>,
    /// Accepted for compatibility; no effect on exec
    #[arg(help_heading = "Compatibility (accepted, no effect)", hide_short_help = true, long = "skip-feature-auto-mapping", alias = "skipFeatureAutoMapping", hide = true,
          value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub skip_feature_auto_mapping: Option<bool>,
    /// Accepted for compatibility; no effect on exec
    #[arg(help_heading = "Compatibility (accepted, no effect)", hide_short_help = true, long = "oci-auth-hardening", alias = "ociAuthHardening", value_name = "BOOL",
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub oci_auth_hardening: Option<bool>,
    /// Accepted for compatibility (with --oci-auth-hardening); no effect on exec
    #[arg(
        help_heading = "Compatibility (accepted, no effect)",
        hide_short_help = true,
        long = "allow-cross-origin-auth-host",
        alias = "allowCrossOriginAuthHost",
        value_name = "REGISTRY=AUTH_HOST"
    )]
    pub allow_cross_origin_auth_host: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeKind {
    Docker,
    Crun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "camelCase")]
pub enum UserEnvProbe {
    None,
    LoginInteractiveShell,
    InteractiveShell,
    LoginShell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl From<LogLevel> for crate::log::Level {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Info => Self::Info,
            LogLevel::Debug => Self::Debug,
            LogLevel::Trace => Self::Trace,
        }
    }
}

impl From<LogFormat> for crate::log::Format {
    fn from(format: LogFormat) -> Self {
        match format {
            LogFormat::Text => Self::Text,
            LogFormat::Json => Self::Json,
        }
    }
}

/// The longest duration an option takes: a year (anything longer is surely a typo, and every
/// deadline computed from it stays representable).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// What a duration looks like, for the messages of the parsers that take one.
const DURATION_FORMS: &str =
    "expected a duration such as 30s, 2m, 1h30m or 500ms (a bare number is seconds)";

/// Parses a duration option (`--timeout`, serve's limits): a humantime duration (`1s`,
/// `2m 30s`, `500ms`) or a number of seconds, longer than zero and at most [`MAX_DURATION`].
/// The messages follow clap's `invalid value 'V' for '--flag <DURATION>': `.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let too_long = || "the longest duration taken is a year (365d)".to_owned();
    let duration = match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => {
            Duration::try_from_secs_f64(seconds).map_err(|_| too_long())?
        }
        Ok(seconds) if seconds.is_nan() => return Err(DURATION_FORMS.into()),
        Ok(seconds) if seconds.is_infinite() && seconds > 0.0 => return Err(too_long()),
        Ok(_) => return Err("expected a positive duration".into()),
        Err(_) => match humantime::parse_duration(text) {
            Ok(duration) => duration,
            Err(humantime::DurationError::NumberOverflow) => return Err(too_long()),
            Err(_) => return Err(DURATION_FORMS.into()),
        },
    };
    if duration.is_zero() {
        return Err("the duration must be longer than zero".into());
    }
    if duration > MAX_DURATION {
        return Err(too_long());
    }
    Ok(duration)
}

/// A whole number in `range`, with clap's range wording and a plain one for what is no number.
fn parse_number(text: &str, range: std::ops::RangeInclusive<u64>) -> Result<u64, String> {
    let (low, high) = (range.start(), range.end());
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!("expected a whole number from {low} to {high}"));
    }
    match text.parse::<u64>() {
        Ok(number) if range.contains(&number) => Ok(number),
        _ => Err(format!("{text} is not in {low}..={high}")),
    }
}

/// `--terminal-rows` and `--terminal-columns`: 1 to 65535.
fn parse_terminal_size(text: &str) -> Result<u16, String> {
    parse_number(text, 1..=u64::from(u16::MAX)).map(|n| u16::try_from(n).unwrap_or(u16::MAX))
}

/// `dcx serve`'s `--max-sessions` and `--max-execs`: 1 to 100,000.
fn parse_limit(text: &str) -> Result<u32, String> {
    parse_number(text, 1..=100_000).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// `dcx serve --http`: an address and a port.
fn parse_address(text: &str) -> Result<std::net::SocketAddr, String> {
    text.parse()
        .map_err(|_| "expected an address and a port, such as 127.0.0.1:7777".to_owned())
}

/// `dcx logs --tail`: `all` or a number of lines.
fn parse_tail(text: &str) -> Result<Tail, String> {
    if text.eq_ignore_ascii_case("all") {
        return Ok(Tail::All);
    }
    parse_number(text, 0..=u64::from(u32::MAX))
        .map(Tail::Lines)
        .map_err(|_| "expected a number of lines or all".to_owned())
}

/// `dcx logs --since/--until`, in docker's forms: Unix seconds (`1767225600`, with an optional
/// fraction), an RFC 3339 time (`2026-01-01T00:00:00Z`, `2026-01-01T02:00:00+02:00`, a date
/// alone is its midnight UTC) or a duration before now (`10m`, `1h30m`).
pub fn parse_log_time(text: &str) -> Result<LogTime, String> {
    const FORMS: &str = "expected an RFC 3339 time (2026-01-01T00:00:00Z), Unix seconds (1767225600) or a duration before now (10m, 1h30m)";
    let text = text.trim();
    if let Some(whole) = text.split('.').next()
        && !whole.is_empty()
        && whole.bytes().all(|byte| byte.is_ascii_digit())
        && text[whole.len()..]
            .trim_start_matches('.')
            .bytes()
            .all(|byte| byte.is_ascii_digit())
    {
        return whole.parse().map(LogTime::At).map_err(|_| FORMS.to_owned());
    }
    if text.as_bytes().get(4) == Some(&b'-') {
        return rfc3339_seconds(text)
            .map(LogTime::At)
            .ok_or_else(|| FORMS.to_owned());
    }
    match humantime::parse_duration(text) {
        Ok(ago) if ago <= MAX_DURATION * 100 => Ok(LogTime::Ago(ago)),
        _ => Err(FORMS.to_owned()),
    }
}

/// Seconds since the Unix epoch of an RFC 3339 time with `Z`, a `±HH:MM` offset, or none (UTC);
/// a date alone is its midnight.
fn rfc3339_seconds(text: &str) -> Option<i64> {
    let text = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    };
    let (local, offset) = match text.len().checked_sub(6).map(|at| text.split_at(at)) {
        Some((local, zone))
            if (zone.starts_with('+') || zone.starts_with('-')) && zone.as_bytes()[3] == b':' =>
        {
            let hours: i64 = zone[1..3].parse().ok()?;
            let minutes: i64 = zone[4..6].parse().ok()?;
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            (local.to_owned(), sign * (hours * 3600 + minutes * 60))
        }
        _ => (text.clone(), 0),
    };
    let time = humantime::parse_rfc3339_weak(local.trim_end_matches(['Z', 'z'])).ok()?;
    let seconds = match time.duration_since(std::time::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).ok()?,
        Err(before) => -i64::try_from(before.duration().as_secs()).ok()?,
    };
    Some(seconds - offset)
}

impl LogTime {
    /// Seconds since the Unix epoch, for a request made at `now`.
    pub fn at(self, now: std::time::SystemTime) -> i64 {
        match self {
            Self::At(seconds) => seconds,
            Self::Ago(ago) => {
                let now = now
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                i64::try_from(now.saturating_sub(ago).as_secs()).unwrap_or(i64::MAX)
            }
        }
    }
}

/// Why parsing did not produce a [`Cli`].
#[derive(Debug)]
pub enum ParseOutcome {
    /// `--help` or `--version`: text for stdout (styled: the printer decides on colour), exit 0.
    Print(clap::builder::StyledStr),
    /// A usage error.
    Usage(UsageError),
}

/// A usage error: clap's report (the message, the subcommand's usage line, the pointer at
/// `--help`), or, for a request that is well formed but cannot be served, the message alone.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    message: String,
    hints: Vec<String>,
}

impl UsageError {
    /// A usage error of `dcx exec`'s own rules, reported in clap's form, like the errors clap
    /// finds itself: one form for every usage error.
    pub fn exec(message: impl std::fmt::Display) -> Self {
        Self::in_clap_form(Some("exec"), message)
    }

    /// `message` as clap reports an error of `subcommand` (or of `dcx` itself).
    fn in_clap_form(subcommand: Option<&str>, message: impl std::fmt::Display) -> Self {
        let mut definition = Cli::command();
        definition.build();
        let kind = clap::error::ErrorKind::ValueValidation;
        let err = match subcommand.and_then(|name| definition.find_subcommand_mut(name)) {
            Some(sub) => sub.error(kind, message),
            None => definition.error(kind, message),
        };
        Self::from_clap(&err)
    }

    /// Adds a next step, printed as a `hint:` line.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    pub fn hints(&self) -> &[String] {
        &self.hints
    }

    /// A message printed exactly as given (the spec's and the reference's own texts).
    pub fn exact(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hints: Vec::new(),
        }
    }

    /// clap's own report (with its tips, possible values and usage), without its `error: `
    /// lead, which the printer adds to every error alike.
    fn from_clap(err: &clap::Error) -> Self {
        let rendered = err.to_string();
        let message = rendered
            .strip_prefix("error: ")
            .unwrap_or(&rendered)
            .trim_end()
            .to_owned();
        Self {
            message,
            hints: Vec::new(),
        }
    }
}

/// Parses argv (program name first).
pub fn parse(argv: impl IntoIterator<Item = OsString>) -> Result<Cli, ParseOutcome> {
    let argv: Vec<OsString> = argv.into_iter().collect();
    let mut definition = Cli::command();
    if argv.get(1).is_none_or(|word| word != "exec") {
        // Every other subcommand is clap's alone (`dcx cp` takes host paths that are not
        // UTF-8 as they are).
        let matches = definition
            .try_get_matches_from(argv)
            .map_err(|err| clap_outcome(&err, false))?;
        return Cli::from_arg_matches(&matches).map_err(|err| clap_outcome(&err, false));
    }
    let mut words = Vec::new();
    for word in argv {
        match word.into_string() {
            Ok(word) => words.push(word),
            Err(word) => {
                return Err(ParseOutcome::Usage(UsageError::exec(format!(
                    "argument is not valid UTF-8: {}",
                    word.to_string_lossy()
                ))));
            }
        }
    }
    let mut clap_argv: Vec<String> = words.iter().take(1).cloned().collect();
    if let Some(exec) = definition.find_subcommand_mut("exec") {
        clap_argv.push("exec".into());
        let (options, command) = split_exec_argv(exec, &words[2..]);
        if let Some(flag) = options.iter().find(|word| {
            matches!(
                word.as_str(),
                "-i" | "-t" | "-it" | "-ti" | "--interactive" | "--tty"
            )
        }) {
            return Err(ParseOutcome::Usage(UsageError::exec(format!(
                "unexpected argument '{flag}': dcx decides the terminal itself (a TTY when stdin and stdout are terminals, or with --log-format json) and always passes stdin on; drop it"
            ))));
        }
        clap_argv.extend(options);
        if !command.is_empty() {
            clap_argv.push("--".into());
            clap_argv.extend(command);
        }
    }
    let matches = definition
        .try_get_matches_from(clap_argv)
        .map_err(|err| clap_outcome(&err, true))?;
    let cli = Cli::from_arg_matches(&matches).map_err(|err| clap_outcome(&err, true))?;
    if let Command::Exec(args) = &cli.command
        && args.command.is_empty()
    {
        return Err(ParseOutcome::Usage(UsageError::exec(
            "no command given: name the command to run after the options",
        )));
    }
    Ok(cli)
}

/// The subcommands, as the "a subcommand is required" error lists them.
fn subcommand_list() -> String {
    let names: Vec<String> = Cli::command()
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .map(|sub| sub.get_name().to_owned())
        .collect();
    match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// clap's outcome as dcx reports it; `exec` says whether the words were `dcx exec`'s, whose
/// one required argument is the command.
fn clap_outcome(err: &clap::Error, exec: bool) -> ParseOutcome {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ParseOutcome::Print(err.render()),
        ErrorKind::MissingRequiredArgument if exec => ParseOutcome::Usage(UsageError::exec(
            "no command given: name the command to run after the options",
        )),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            ParseOutcome::Usage(UsageError::in_clap_form(
                None,
                format!("a subcommand is required: {}", subcommand_list()),
            ))
        }
        _ => ParseOutcome::Usage(UsageError::from_clap(err)),
    }
}

/// How an option consumes the word after it.
enum Takes {
    /// A flag, or a flag whose optional value comes only as `--flag=value`.
    Nothing,
    Value,
}

/// Splits the words after `exec` into (options, command) by the reference's rule (module docs).
/// Unknown options stay on the options side so that clap reports them.
pub fn split_exec_argv(exec: &clap::Command, words: &[String]) -> (Vec<String>, Vec<String>) {
    let takes = |word: &str| -> Takes {
        let arg = if let Some(long) = word.strip_prefix("--") {
            exec.get_arguments().find(|arg| {
                arg.get_long() == Some(long)
                    || arg
                        .get_all_aliases()
                        .is_some_and(|aliases| aliases.contains(&long))
            })
        } else {
            let mut chars = word.chars().skip(1);
            match (chars.next(), chars.next()) {
                (Some(short), None) => exec.get_arguments().find(|a| a.get_short() == Some(short)),
                _ => None,
            }
        };
        match arg {
            Some(arg) if arg.get_action().takes_values() => {
                match arg.get_num_args().map(|range| range.min_values()) {
                    Some(0) => Takes::Nothing,
                    _ => Takes::Value,
                }
            }
            _ => Takes::Nothing,
        }
    };

    let mut options = Vec::new();
    let mut index = 0;
    while index < words.len() {
        let word = &words[index];
        if word == "--" {
            return (options, words[index + 1..].to_vec());
        }
        if !word.starts_with('-') || word == "-" {
            return (options, words[index..].to_vec());
        }
        options.push(word.clone());
        index += 1;
        if word.contains('=') {
            continue;
        }
        match takes(word) {
            Takes::Nothing => {}
            Takes::Value => {
                // As yargs: a word that looks like an option is not taken as a value.
                if let Some(value) = words
                    .get(index)
                    .filter(|v| !v.starts_with('-') || *v == "-")
                {
                    options.push(value.clone());
                    index += 1;
                }
            }
        }
    }
    (options, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<Cli, ParseOutcome> {
        parse(words.iter().map(OsString::from))
    }

    fn command_of(words: &[&str]) -> Vec<String> {
        match parse_words(words) {
            Ok(Cli {
                command: Command::Exec(args),
            }) => args.command,
            Ok(other) => panic!("{words:?} parsed as {other:?}"),
            Err(err) => panic!("{words:?} did not parse: {err:?}"),
        }
    }

    fn usage_error(words: &[&str]) -> String {
        match parse_words(words) {
            Err(ParseOutcome::Usage(err)) => err.to_string(),
            other => panic!("{words:?} parsed: {other:?}"),
        }
    }

    #[test]
    fn options_stop_at_the_first_word_that_is_not_an_option() {
        assert_eq!(
            command_of(&["dcx", "exec", "--container-id", "c", "echo", "hi"]),
            ["echo", "hi"]
        );
        // Everything after the command belongs to it, options included.
        assert_eq!(
            command_of(&[
                "dcx",
                "exec",
                "--container-id",
                "c",
                "echo",
                "hi",
                "--container-id",
                "x"
            ]),
            ["echo", "hi", "--container-id", "x"]
        );
        assert_eq!(
            command_of(&["dcx", "exec", "--container-id", "c", "echo", "--help"]),
            ["echo", "--help"]
        );
    }

    #[test]
    fn a_string_option_does_not_take_a_word_that_looks_like_an_option() {
        insta::assert_snapshot!(
            usage_error(&["dcx", "exec", "--container-id", "--log-level", "debug", "true"]),
            @r"
        a value is required for '--container-id <ID>' but none was supplied

        For more information, try '--help'.
        "
        );
        let cli = parse_words(&["dcx", "exec", "--container-id", "-", "true"]).unwrap();
        let Command::Exec(args) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(args.container_id.as_deref(), Some("-"));
        assert_eq!(args.command, ["true"]);
    }

    #[test]
    fn equals_form_and_camel_case_aliases() {
        let cli = parse_words(&[
            "dcx",
            "exec",
            "--containerId=c",
            "--logLevel",
            "debug",
            "id",
        ])
        .unwrap();
        let Command::Exec(args) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(args.container_id.as_deref(), Some("c"));
        assert_eq!(args.log_level, LogLevel::Debug);
        assert_eq!(args.command, ["id"]);
    }

    #[test]
    fn double_dash_rules() {
        // A leading `--` is dropped, a second one is passed on, a later one belongs to the command.
        assert_eq!(
            command_of(&["dcx", "exec", "--", "echo", "hi"]),
            ["echo", "hi"]
        );
        assert_eq!(
            command_of(&["dcx", "exec", "--", "--", "echo", "hi"]),
            ["--", "echo", "hi"]
        );
        assert_eq!(
            command_of(&["dcx", "exec", "echo", "--", "hi"]),
            ["echo", "--", "hi"]
        );
        assert_eq!(command_of(&["dcx", "exec", "--", "-x"]), ["-x"]);
        assert_eq!(
            command_of(&["dcx", "exec", "sh", "-c", "exit 3"]),
            ["sh", "-c", "exit 3"]
        );
    }

    #[test]
    fn usage_errors_say_what_is_wrong_with_clap_s_tips_and_choices() {
        insta::assert_snapshot!(
            usage_error(&["dcx", "exec", "--container-id", "c"]),
            @r"
        no command given: name the command to run after the options

        Usage: dcx exec [OPTIONS] <CMD> [ARGS]...

        For more information, try '--help'.
        "
        );
        insta::assert_snapshot!(usage_error(&["dcx", "exec", "--bogus", "echo"]), @r"
        unexpected argument '--bogus' found

          tip: to pass '--bogus' as a value, use '-- --bogus'

        Usage: dcx exec [OPTIONS] <CMD> [ARGS]...

        For more information, try '--help'.
        ");
        insta::assert_snapshot!(usage_error(&["dcx", "exec", "--log-format", "xml", "echo"]), @r"
        invalid value 'xml' for '--log-format <LOG_FORMAT>'
          [possible values: text, json]

        For more information, try '--help'.
        ");
        insta::assert_snapshot!(usage_error(&["dcx", "exec", "--log-level", "warn", "echo"]), @r"
        invalid value 'warn' for '--log-level <LOG_LEVEL>'
          [possible values: info, debug, trace]

        For more information, try '--help'.
        ");
        insta::assert_snapshot!(usage_error(&["dcx", "exec", "--container-id"]), @r"
        a value is required for '--container-id <ID>' but none was supplied

        For more information, try '--help'.
        ");
        insta::assert_snapshot!(usage_error(&["dcx", "exce"]), @r"
        unrecognized subcommand 'exce'

          tip: a similar subcommand exists: 'exec'

        Usage: dcx <COMMAND>

        For more information, try '--help'.
        ");
        insta::assert_snapshot!(usage_error(&["dcx", "exec", "--contaner-id", "x", "true"]), @r"
        unexpected argument '--contaner-id' found

          tip: a similar argument exists: '--container-id'

        Usage: dcx exec [OPTIONS] <CMD> [ARGS]...

        For more information, try '--help'.
        ");
        insta::assert_snapshot!(
            usage_error(&["dcx", "exec", "-it", "bash"]),
            @r"
        unexpected argument '-it': dcx decides the terminal itself (a TTY when stdin and stdout are terminals, or with --log-format json) and always passes stdin on; drop it

        Usage: dcx exec [OPTIONS] <CMD> [ARGS]...

        For more information, try '--help'.
        "
        );
        insta::assert_snapshot!(
            usage_error(&["dcx"]),
            @r"
        a subcommand is required: exec, serve, mcp, logs, cp, top, completions or man

        Usage: dcx <COMMAND>

        For more information, try '--help'.
        "
        );
    }

    #[test]
    fn a_flag_with_an_optional_value_takes_it_only_after_an_equals_sign() {
        let flags = [
            "--no-probe-cache",
            "--mount-workspace-git-root",
            "--mount-git-worktree-common-dir",
            "--skip-feature-auto-mapping",
            "--oci-auth-hardening",
        ];
        for flag in flags {
            // The next word is the command, even `true` or `false`.
            for word in ["true", "false"] {
                assert_eq!(
                    command_of(&["dcx", "exec", "--container-id", "c", flag, word]),
                    [word],
                    "{flag} {word}"
                );
            }
            let with = format!("{flag}=false");
            assert_eq!(
                command_of(&["dcx", "exec", "--container-id", "c", &with, "true"]),
                ["true"],
                "{with}"
            );
        }
        let values = |words: &[&str]| {
            let Ok(Cli {
                command: Command::Exec(args),
            }) = parse_words(words)
            else {
                panic!("{words:?}")
            };
            (
                args.no_probe_cache,
                args.mount_workspace_git_root,
                args.compat.oci_auth_hardening,
            )
        };
        assert_eq!(
            values(&[
                "dcx",
                "exec",
                "--container-id",
                "c",
                "--no-probe-cache",
                "true"
            ]),
            (Some(true), None, None)
        );
        assert_eq!(
            values(&[
                "dcx",
                "exec",
                "--mount-workspace-git-root=false",
                "--oci-auth-hardening=true",
                "--no-probe-cache=false",
                "true"
            ]),
            (Some(false), Some(false), Some(true))
        );
    }

    #[test]
    fn docker_habits_that_cannot_change_meaning_are_aliases() {
        let Ok(Cli {
            command: Command::Exec(args),
        }) = parse_words(&[
            "dcx",
            "exec",
            "-e",
            "A=1",
            "-u",
            "root",
            "-w",
            "/tmp",
            "--container-id",
            "c",
            "env",
        ])
        else {
            panic!("did not parse")
        };
        assert_eq!(args.remote_env, ["A=1"]);
        assert_eq!(args.user.as_deref(), Some("root"));
        assert_eq!(args.workdir.as_deref(), Some("/tmp"));
        assert_eq!(args.command, ["env"]);
    }

    #[test]
    fn help_is_in_sections_with_examples_exit_codes_and_variables() {
        let help = |words: &[&str]| match parse_words(words) {
            Err(ParseOutcome::Print(text)) => text.to_string(),
            other => panic!("{words:?}: {other:?}"),
        };
        assert!(help(&["dcx", "exec", "--help"]).contains("Selection:"));
        assert_eq!(
            help(&["dcx", "help", "exec"]),
            help(&["dcx", "exec", "--help"])
        );
        assert_eq!(
            help(&["dcx", "exec", "--version"]),
            help(&["dcx", "--version"])
        );
        assert_eq!(
            help(&["dcx", "--version"]),
            format!("dcx {}\n", env!("DCX_VERSION"))
        );
    }

    /// Every command's help, short (`-h`) and long (`--help`), at 80 columns.
    fn every_help() -> Vec<(String, String)> {
        let mut definition = Cli::command().term_width(80);
        definition.build();
        let mut helps = vec![
            ("dcx".to_owned(), definition.render_help().to_string()),
            (
                "dcx_long".to_owned(),
                definition.render_long_help().to_string(),
            ),
        ];
        let names: Vec<String> = definition
            .get_subcommands()
            .map(|sub| sub.get_name().to_owned())
            .filter(|name| name != "help")
            .collect();
        for name in names {
            let Some(sub) = definition.find_subcommand_mut(&name) else {
                continue;
            };
            helps.push((format!("dcx_{name}"), sub.render_help().to_string()));
            helps.push((
                format!("dcx_{name}_long"),
                sub.render_long_help().to_string(),
            ));
        }
        helps
    }

    #[test]
    fn help_at_80_columns_for_every_subcommand() {
        for (name, text) in every_help() {
            insta::assert_snapshot!(format!("help_{name}"), text);
        }
    }

    #[test]
    fn no_help_line_is_over_80_columns() {
        for (name, text) in every_help() {
            for line in text.lines() {
                assert!(
                    line.chars().count() <= 80,
                    "{name}: a line of {} columns: {line}",
                    line.chars().count()
                );
            }
        }
    }

    #[test]
    fn short_help_is_short_and_long_help_has_the_rest() {
        let help = |words: &[&str]| match parse_words(words) {
            Err(ParseOutcome::Print(text)) => text.to_string(),
            other => panic!("{words:?}: {other:?}"),
        };
        let short = help(&["dcx", "exec", "-h"]);
        let long = help(&["dcx", "exec", "--help"]);
        assert!(
            short.lines().count() * 2 < long.lines().count() + 40,
            "{short}"
        );
        assert!(!short.contains("Exit codes:") && long.contains("Exit codes:"));
        assert!(help(&["dcx", "cp", "--help"]).contains("Examples:"));
    }

    /// Each subcommand's usage errors: its own usage line, never another subcommand's.
    #[test]
    fn usage_errors_per_subcommand() {
        let cases: &[&[&str]] = &[
            &["dcx"],
            &["dcx", "exec"],
            &[
                "dcx",
                "exec",
                "--terminal-rows",
                "x",
                "--terminal-columns",
                "80",
                "true",
            ],
            &["dcx", "cp"],
            &["dcx", "cp", "./a"],
            &["dcx", "cp", "./a", ":/b", ":/c"],
            &["dcx", "logs", "--tail", "many"],
            &["dcx", "logs", "--since", "yesterday"],
            &["dcx", "logs", "--until", "2026-13-45"],
            &["dcx", "top", "extra"],
            &["dcx", "completions"],
            &["dcx", "completions", "tcsh"],
            &["dcx", "man", "exec", "--dir", "/tmp"],
            &["dcx", "serve", "--max-sessions", "0"],
            &["dcx", "serve", "--max-execs", "lots"],
            &["dcx", "serve", "--http", "localhost"],
            &["dcx", "serve", "--idle-timeout", "soon"],
            &["dcx", "mcp", "--log-level", "loud"],
        ];
        let mut text = String::new();
        for words in cases {
            text.push_str(&format!(
                "$ {}\nerror: {}\n\n",
                words.join(" "),
                usage_error(words)
            ));
        }
        insta::assert_snapshot!("usage_errors", text);
    }

    #[test]
    fn logs_take_docker_s_tail_and_times() {
        let Ok(Cli {
            command: Command::Logs(logs),
        }) = parse_words(&[
            "dcx",
            "logs",
            "--tail",
            "all",
            "--since",
            "2026-01-01T00:00:00Z",
            "--until",
            "10m",
        ])
        else {
            panic!("did not parse")
        };
        assert_eq!(logs.tail, Some(Tail::All));
        assert_eq!(logs.since, Some(LogTime::At(1_767_225_600)));
        assert_eq!(logs.until, Some(LogTime::Ago(Duration::from_secs(600))));
        assert_eq!(parse_tail("20"), Ok(Tail::Lines(20)));
        assert_eq!(parse_log_time("1767225600"), Ok(LogTime::At(1_767_225_600)));
        assert_eq!(
            parse_log_time("1767225600.5"),
            Ok(LogTime::At(1_767_225_600))
        );
        assert_eq!(parse_log_time("2026-01-01"), Ok(LogTime::At(1_767_225_600)));
        assert_eq!(
            parse_log_time("2026-01-01T02:00:00+02:00"),
            Ok(LogTime::At(1_767_225_600))
        );
        assert_eq!(
            parse_log_time("2025-12-31T19:00:00.250-05:00"),
            Ok(LogTime::At(1_767_225_600))
        );
        assert_eq!(
            parse_log_time("1h30m"),
            Ok(LogTime::Ago(Duration::from_secs(5400)))
        );
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(LogTime::Ago(Duration::from_secs(10)).at(now), 990);
        assert!(parse_log_time("soon").is_err());
    }

    #[test]
    fn cp_takes_host_paths_that_are_not_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9");
        let words = ["dcx".as_ref(), "cp".as_ref(), name, ":/tmp/".as_ref()];
        let Ok(Cli {
            command: Command::Cp(cp),
        }) = parse(words.iter().map(|word| word.to_os_string()))
        else {
            panic!("did not parse")
        };
        assert_eq!(cp.src, name);
    }

    #[test]
    fn timeout_durations() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("-3").is_err());
        // Bounded: a year at most, however it is written.
        assert_eq!(parse_duration("365d"), Ok(MAX_DURATION));
        for huge in ["1e19", "1e30", "18446744073709551615", "366d", "NaN", "inf"] {
            assert!(parse_duration(huge).is_err(), "{huge}");
        }
        assert_eq!(
            parse_duration("1e30"),
            Err("the longest duration taken is a year (365d)".to_owned())
        );
        insta::assert_snapshot!(
            usage_error(&["dcx", "exec", "--timeout", "soon", "true"]),
            @r"
        invalid value 'soon' for '--timeout <DURATION>': expected a duration such as 30s, 2m, 1h30m or 500ms (a bare number is seconds)

        For more information, try '--help'.
        "
        );
    }

    #[test]
    fn help_and_version_are_printed() {
        assert!(matches!(
            parse_words(&["dcx", "exec", "--help"]),
            Err(ParseOutcome::Print(text)) if text.to_string().contains("--container-id")
        ));
        assert!(matches!(
            parse_words(&["dcx", "--version"]),
            Err(ParseOutcome::Print(text)) if text.to_string().starts_with("dcx ")
        ));
    }
}
