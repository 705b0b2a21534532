//! The helper protocol's frames, messages and environment rule, shared by dcx and `dcx-helper`.
//!
//! `docs/helper-protocol.md` is the specification: every frame is `len: u32 LE` (the bytes after
//! it), `kind: u8`, `id: u32 LE` and a payload. [`Frame`] reads and writes that envelope on any
//! byte stream; [`ToHelper`] and [`FromHelper`] are the typed messages of each direction, each
//! encoding itself into one whole frame and decoding from one with every length checked (a short
//! or malformed payload is a [`DecodeError`], never a panic); [`command_env`] is the rule that
//! turns the helper's own environment and a RUN's `unset` and `set` lists into a command's
//! environment; [`FileStat`] is the file calls' *stat*. This library uses std only, so dcx can
//! depend on it without the binary's needs.

#![forbid(unsafe_code)]

mod env;
mod frame;
mod message;

pub use env::{command_env, env_name};
pub use frame::{
    Frame, FrameError, HEADER_LEN, MAX_FRAME, MAX_PAYLOAD, encode_frame, frame_header,
};
pub use message::{
    DecodeError, Exit, FileKind, FileStat, FromHelper, RunSpec, Stage, ToHelper, kind,
};

/// The protocol version the helper announces in HELLO.
pub const PROTOCOL: u32 = 1;

/// The most output bytes one STDOUT or STDERR frame carries.
pub const OUTPUT_CHUNK: usize = 64 * 1024;

/// The most output bytes of one command sent and not yet acknowledged by OUTPUT_ACK.
pub const OUTPUT_WINDOW: usize = 1024 * 1024;

/// The most STDIN bytes of one command dcx may send before STDIN_ACK acknowledges them.
pub const STDIN_WINDOW: usize = 1024 * 1024;

/// The most bytes one FS_DATA or FS_WRITE_DATA frame carries.
pub const FS_CHUNK: usize = 64 * 1024;

/// The most bytes one file write takes in all (its FS_WRITE_DATA frames together).
pub const FS_WRITE_LIMIT: u64 = 16 * 1024 * 1024;
