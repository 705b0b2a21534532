//! dcx runs commands inside dev containers: a drop-in, exact-parity `devcontainer exec`, and
//! the same exec engine as a library for other front ends.
//!
//! Layers, imports pointing down only:
//! * front ends: [`cli`] (the `dcx` binary: argv, terminal, signals, fd 0/1/2, exit codes);
//! * [`engine`]: connect, prepare a target once, run commands with the caller's I/O;
//! * [`exec`] (the relay of one run over caller-supplied I/O), [`discovery`] (which container),
//!   [`env`] (user, probe, final env);
//! * [`runtime`] (the only code that talks to an engine: Docker, crun), [`config`]
//!   (devcontainer.json, metadata, substitution), [`passwd`], [`log`] (diagnostics into a sink
//!   the front end installs).
//!
//! ```no_run
//! # async fn demo() -> Result<(), dcx::engine::EngineError> {
//! use dcx::engine::{Command, Engine, EngineSettings, ExecIo, PrepareRequest};
//!
//! let settings = EngineSettings::Docker { host: None, docker_path: None };
//! let engine = Engine::connect(&settings, dcx::log::Log::discard()).await?;
//! let mut request = PrepareRequest::new("/");
//! request.container_id = Some("my-dev-container".into());
//! let prepared = engine.prepare(&request).await?; // once per target
//! for word in ["one", "two"] {
//!     let io = ExecIo {
//!         stdin: None,
//!         stdout: Box::pin(tokio::io::stdout()),
//!         stderr: Box::pin(tokio::io::sink()),
//!         control: None,
//!     };
//!     let finished = engine.run(&prepared, &Command::new(["echo", word]), io).await?;
//!     assert_eq!(finished.status.exit_code(), 0);
//! }
//! # Ok(()) }
//! ```

pub mod cli;
pub mod config;
pub mod discovery;
pub mod engine;
pub mod env;
pub mod exec;
pub mod log;
pub mod passwd;
pub mod runtime;
