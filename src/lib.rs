//! dcx: a drop-in, exact-parity `devcontainer exec`, and its exec engine as a library.
//!
//! It runs commands inside dev containers; the same engine serves other front ends.
//!
//! Layers, imports pointing down only:
//! * front ends, each importing only those after it: [`cli`] (the `dcx` binary: argv, terminal,
//!   signals, fd 0/1/2, exit codes; it starts the other two), [`mcp`] (`dcx mcp`: the dev container
//!   as MCP tools over stdio, on an agent session and the agent's typed methods), [`agent`]
//!   (`dcx serve`: sessions over a unix socket and HTTP);
//! * [`engine`]: connect, prepare a target once, run commands with the caller's I/O;
//! * [`exec`] (the relay of one run over caller-supplied I/O), [`discovery`] (which container),
//!   [`env`](mod@env) (user, probe, final env);
//! * [`runtime`] (the only code that talks to an engine: Docker, crun), [`config`]
//!   (devcontainer.json, metadata, substitution), [`passwd`], [`log`] (diagnostics into a sink the
//!   front end installs).
//!
//! The engine API in a few lines, and what belongs to a front end, follow (from
//! `docs/architecture.md`; its example is compiled as a doctest).
#![doc = include_str!("../docs/architecture.md")]

pub mod agent;
pub mod cli;
pub mod config;
pub mod discovery;
pub mod engine;
pub mod env;
pub mod exec;
pub mod log;
pub mod mcp;
pub mod passwd;
pub mod runtime;
