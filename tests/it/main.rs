//! dcx's integration tests: one binary, a real Docker daemon, real containers started from the
//! local test images (scripts/setup.sh builds them), and the reference CLI as the oracle.

// A failed unwrap in a test (or its harness) is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable
)]

mod harness;

mod agent;
mod agent_bounds;
mod cli;
mod command_vector;
mod crun;
mod endpoints;
mod engine;
mod environment;
mod errors;
mod exec_basics;
mod file_times;
mod files;
mod helper;
mod layout;
mod logging;
mod mcp;
mod mcp_files;
mod observe;
mod probe_cache;
mod pty;
mod reliability;
mod round_trips;
mod selection;
mod server_path;
mod signals;
mod streaming;
mod terminal;
