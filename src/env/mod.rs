//! The environment a command runs with. The rules are pure logic in the modules below; [`resolve`]
//! is the one place that runs the helper processes they describe (the passwd lookup, the probe)
//! through the runtime, in pipeline order.
//!
//! The steps, in the order the exec pipeline takes them:
//! - [`user`]: which user runs the command (`--user` > `remoteUser` > the image's `User` > `root`),
//!   its passwd entry, its home folder and the shell used for the probe;
//! - [`probe`]: the `userEnvProbe` modes, the probe's argv and the parsing of its output;
//! - [`cache`]: a host-side cache of probe results, keyed by endpoint, container, start time, user,
//!   mode and the image's `SHELL`, so repeated execs skip the probe;
//! - [`startup`]: the shell startup files whose fingerprint a cached probe must still match;
//! - [`compose`](mod@compose): the final env: probe, then config `remoteEnv`, then `--remote-env`
//!   (the spec's order, where the CLI wins), with a `null` config value removing the variable.

pub mod cache;
pub mod compose;
pub mod probe;
pub mod resolve;
pub mod startup;
pub mod user;

pub use cache::{CacheKey, CacheMiss, CacheWriteError, CachedProbe, ProbeCache};
pub use compose::{EnvError, FinalEnv, Layer, compose, parse_remote_env_arg};
pub use probe::{ProbeMode, new_marker, parse_probe_output, probe_argv};
pub use user::{
    PasswdEntry, UserSource, choose_user, find_passwd_entry, home_folder, lookup_name,
    passwd_lookup_script, probe_shell,
};
