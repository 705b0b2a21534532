//! The typed messages of each direction and their payload layouts, with checked decoding.
//!
//! Integers are little-endian; a *string* is `u32 LE length` and that many bytes. Decoding
//! checks every length against the bytes that are there and refuses bytes left over, unknown
//! flag bits and out-of-range enumerations, so a short or malformed payload is a
//! [`DecodeError`]. Strings that reach `execve` or a file call (argv, env entries, names, cwd,
//! paths) are bytes, not UTF-8, and may not contain NUL; diagnostic text (version, messages) is
//! decoded lossily.

use std::fmt;

use crate::frame::{Frame, encode_frame};

/// Frame kinds: `0x0_` and `0x1_` (file calls) from dcx to the helper, `0x8_` and `0x9_` (file
/// calls' answers) from the helper to dcx.
pub mod kind {
    /// dcx → helper: start a command.
    pub const RUN: u8 = 0x01;
    /// dcx → helper: bytes for a command's stdin.
    pub const STDIN: u8 = 0x02;
    /// dcx → helper: close a command's stdin.
    pub const STDIN_EOF: u8 = 0x03;
    /// dcx → helper: a PTY command's new size.
    pub const RESIZE: u8 = 0x04;
    /// dcx → helper: a signal for a command or its group.
    pub const SIGNAL: u8 = 0x05;
    /// dcx → helper: dcx no longer reads a command's output.
    pub const DETACH: u8 = 0x06;
    /// dcx → helper: credit for more of a command's output.
    pub const OUTPUT_ACK: u8 = 0x07;
    /// dcx → helper: what a path is.
    pub const FS_STAT: u8 = 0x10;
    /// dcx → helper: a folder's entries.
    pub const FS_LIST: u8 = 0x11;
    /// dcx → helper: a file's bytes.
    pub const FS_READ: u8 = 0x12;
    /// dcx → helper: start writing a file.
    pub const FS_WRITE: u8 = 0x13;
    /// dcx → helper: bytes of a file being written.
    pub const FS_WRITE_DATA: u8 = 0x14;
    /// dcx → helper: a file's bytes are all sent: replace (or append to) it.
    pub const FS_WRITE_END: u8 = 0x15;
    /// helper → dcx: the first frame.
    pub const HELLO: u8 = 0x81;
    /// helper → dcx: a command's program runs.
    pub const STARTED: u8 = 0x82;
    /// helper → dcx: a command could not start; nothing ran.
    pub const FAILED: u8 = 0x83;
    /// helper → dcx: a command's standard output (a PTY command's whole output).
    pub const STDOUT: u8 = 0x84;
    /// helper → dcx: a command's standard error.
    pub const STDERR: u8 = 0x85;
    /// helper → dcx: a command's own process ended.
    pub const EXITED: u8 = 0x86;
    /// helper → dcx: every output descriptor of a command reached end of file.
    pub const OUTPUT_END: u8 = 0x87;
    /// helper → dcx: STDIN bytes written into a command's stdin.
    pub const STDIN_ACK: u8 = 0x88;
    /// helper → dcx: a frame the helper could not use.
    pub const ERROR: u8 = 0x8F;
    /// helper → dcx: a stat (the protocol's FS_STAT answer, named apart from the request).
    pub const FS_STAT_ANSWER: u8 = 0x90;
    /// helper → dcx: some of a folder's entries.
    pub const FS_ENTRIES: u8 = 0x91;
    /// helper → dcx: some of a file's bytes.
    pub const FS_DATA: u8 = 0x92;
    /// helper → dcx: a listing or a read is complete.
    pub const FS_END: u8 = 0x93;
    /// helper → dcx: a file call failed.
    pub const FS_ERR: u8 = 0x94;
}

/// RUN's flag bit: the command gets a PTY.
const FLAG_TTY: u8 = 1;
/// RUN's flag bit: the command's stdin is open (else `/dev/null`).
const FLAG_STDIN: u8 = 2;

/// FS_WRITE's flag bit: append to the target instead of replacing it.
const FLAG_APPEND: u8 = 1;
/// FS_WRITE's `mode` when none is given.
const MODE_NONE: u32 = 0xFFFF_FFFF;
/// The bits a mode may carry: permissions, setuid, setgid, sticky.
const MODE_BITS: u32 = 0o7777;

/// What RUN asks for: how to wire the command, what to run, its environment changes and cwd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSpec {
    /// A PTY is the command's controlling terminal, stdin, stdout and stderr.
    pub tty: bool,
    /// dcx sends stdin (STDIN, STDIN_EOF); else the command's stdin is `/dev/null`.
    pub stdin_open: bool,
    /// The PTY's rows, set before the command starts.
    pub rows: u16,
    /// The PTY's columns, set before the command starts.
    pub cols: u16,
    /// The program (searched in the command's `PATH`) and its arguments.
    pub argv: Vec<Vec<u8>>,
    /// `NAME=value` entries applied in order, later ones winning (an entry without `=` removes
    /// that name, as the Engine API's exec `Env` does).
    pub set: Vec<Vec<u8>>,
    /// Names removed from the helper's environment before `set` applies.
    pub unset: Vec<Vec<u8>>,
    /// The working directory; empty: the helper's own.
    pub cwd: Vec<u8>,
}

/// How a command's own process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal of this number killed it.
    Signal(i32),
}

/// Where a command that never ran failed (FAILED's `stage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Changing to the working directory (0).
    Cwd,
    /// Executing the program (1).
    Exec,
    /// Anything else: fork, pipes, the PTY, a session (2).
    Other,
}

impl Stage {
    /// The wire value.
    #[must_use]
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Cwd => 0,
            Self::Exec => 1,
            Self::Other => 2,
        }
    }

    fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::Cwd),
            1 => Some(Self::Exec),
            2 => Some(Self::Other),
            _ => None,
        }
    }
}

/// What a path is (a stat's `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file (0).
    File,
    /// A directory (1).
    Directory,
    /// A symbolic link (2).
    Symlink,
    /// Anything else: a device, a fifo, a socket (3).
    Other,
}

impl FileKind {
    /// The wire value.
    #[must_use]
    pub fn as_u8(self) -> u8 {
        match self {
            Self::File => 0,
            Self::Directory => 1,
            Self::Symlink => 2,
            Self::Other => 3,
        }
    }

    fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::File),
            1 => Some(Self::Directory),
            2 => Some(Self::Symlink),
            3 => Some(Self::Other),
            _ => None,
        }
    }
}

/// A *stat*: what a path is, as the helper's user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    /// File, directory, symlink or other.
    pub kind: FileKind,
    /// The size in bytes (a symlink's: its target's length).
    pub size: u64,
    /// The permission bits with setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    /// The last modification, in seconds since the epoch.
    pub mtime: i64,
    /// The nanoseconds of the last modification (below 1 000 000 000).
    pub mtime_nsec: u32,
    /// The last component of the path (empty for `/`).
    pub name: Vec<u8>,
    /// A symlink's target; else empty.
    pub link_target: Vec<u8>,
}

impl FileStat {
    /// The bytes of a stat with an empty name and link target.
    pub const MIN_WIRE_LEN: usize = 1 + 8 + 4 + 8 + 4 + 4 + 4;

    /// The bytes this stat takes in a payload.
    #[must_use]
    pub fn wire_len(&self) -> usize {
        Self::MIN_WIRE_LEN + self.name.len() + self.link_target.len()
    }
}

/// A message from dcx to the helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToHelper {
    /// RUN: start a command under the frame's id.
    Run(RunSpec),
    /// STDIN: bytes for the command's stdin (or PTY).
    Stdin(Vec<u8>),
    /// STDIN_EOF: close the command's stdin (a PTY gets nothing).
    StdinEof,
    /// RESIZE: the PTY's new size.
    Resize {
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
    /// SIGNAL: `signo` for the command's process, or its whole group.
    Signal {
        /// The signal number.
        signo: u8,
        /// The process group (`kill(-pgid)`), else the process.
        group: bool,
    },
    /// DETACH: dcx no longer reads the command's output; the helper reads and discards it.
    Detach,
    /// OUTPUT_ACK: dcx has taken this many more output bytes of the command.
    OutputAck(u32),
    /// FS_STAT: what `path` is. Answered by [`FromHelper::FsStat`] or [`FromHelper::FsErr`].
    FsStat {
        /// Follow a final symlink (`stat`), else describe the link itself (`lstat`).
        follow: bool,
        /// An absolute path.
        path: Vec<u8>,
    },
    /// FS_LIST: the entries of the folder at `path` (followed), at most `limit` of them.
    /// Answered by [`FromHelper::FsEntries`] frames and [`FromHelper::FsEnd`], or
    /// [`FromHelper::FsErr`] (`E2BIG` when there are more than `limit`).
    FsList {
        /// The most entries to return.
        limit: u32,
        /// An absolute path.
        path: Vec<u8>,
    },
    /// FS_READ: `length` bytes (`u64::MAX`: to the end) of the file at `path` (followed) from
    /// `offset`. Answered by [`FromHelper::FsStat`], [`FromHelper::FsData`] frames and
    /// [`FromHelper::FsEnd`], or [`FromHelper::FsErr`] (`EFBIG` over `limit` bytes).
    FsRead {
        /// Where to start.
        offset: u64,
        /// How many bytes; `u64::MAX`: to the end.
        length: u64,
        /// The most bytes the read may return.
        limit: u64,
        /// An absolute path.
        path: Vec<u8>,
    },
    /// FS_WRITE: start writing the file at `path`; the data follows in
    /// [`ToHelper::FsWriteData`], then [`ToHelper::FsWriteEnd`].
    FsWrite {
        /// Append to the file instead of replacing it.
        append: bool,
        /// The file's mode (`0o7777` bits at most); `None`: the replaced file's, else
        /// `0o666 & !umask`.
        mode: Option<u32>,
        /// An absolute path.
        path: Vec<u8>,
    },
    /// FS_WRITE_DATA: bytes of the file being written.
    FsWriteData(Vec<u8>),
    /// FS_WRITE_END: every byte was sent. Answered by [`FromHelper::FsStat`] (the written
    /// file's) or [`FromHelper::FsErr`].
    FsWriteEnd,
}

/// A message from the helper to dcx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromHelper {
    /// HELLO (id 0, the first frame).
    Hello {
        /// The protocol version ([`crate::PROTOCOL`]).
        protocol: u32,
        /// The helper's pid in the container.
        pid: u32,
        /// The helper's version.
        version: String,
    },
    /// STARTED: the program runs (exec succeeded) as this pid, leader of its session and group.
    Started {
        /// The command's pid in the container.
        pid: u32,
    },
    /// FAILED: nothing ran.
    Failed {
        /// Where it failed.
        stage: Stage,
        /// The error number.
        errno: i32,
        /// A short message.
        message: String,
    },
    /// STDOUT: output bytes (a PTY command's whole output).
    Stdout(Vec<u8>),
    /// STDERR: error output bytes.
    Stderr(Vec<u8>),
    /// EXITED: the command's own process ended.
    Exited(Exit),
    /// OUTPUT_END: every output descriptor reached end of file.
    OutputEnd,
    /// STDIN_ACK: this many STDIN bytes were written into the command's stdin.
    StdinAck(u32),
    /// ERROR: a frame the helper could not use.
    Error(String),
    /// FS_STAT: a stat (FS_STAT's and FS_WRITE_END's answer, FS_READ's first).
    FsStat(FileStat),
    /// FS_ENTRIES: some of a folder's entries, in order.
    FsEntries(Vec<FileStat>),
    /// FS_DATA: some of a file's bytes, in order.
    FsData(Vec<u8>),
    /// FS_END: a listing or a read is complete.
    FsEnd,
    /// FS_ERR: a file call failed.
    FsErr {
        /// The error number.
        errno: i32,
        /// `strerror`'s words for it.
        message: String,
    },
}

/// Why a frame's payload is not a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// No message of this direction has this kind.
    UnknownKind(u8),
    /// The payload ended inside this field.
    Short {
        /// The field.
        field: &'static str,
    },
    /// Bytes were left after the last field.
    Trailing {
        /// How many.
        extra: usize,
    },
    /// A string that reaches `execve` contained a NUL byte.
    Nul {
        /// The field.
        field: &'static str,
    },
    /// A field held a value outside its range.
    BadValue {
        /// The field.
        field: &'static str,
        /// The value.
        value: u32,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKind(kind) => write!(f, "unknown frame kind {kind:#04x}"),
            Self::Short { field } => write!(f, "the payload ends inside {field}"),
            Self::Trailing { extra } => write!(f, "{extra} bytes after the payload's last field"),
            Self::Nul { field } => write!(f, "a NUL byte inside {field}"),
            Self::BadValue { field, value } => write!(f, "{field} cannot be {value}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl ToHelper {
    /// This message's frame kind.
    #[must_use]
    pub fn kind(&self) -> u8 {
        match self {
            Self::Run(_) => kind::RUN,
            Self::Stdin(_) => kind::STDIN,
            Self::StdinEof => kind::STDIN_EOF,
            Self::Resize { .. } => kind::RESIZE,
            Self::Signal { .. } => kind::SIGNAL,
            Self::Detach => kind::DETACH,
            Self::OutputAck(_) => kind::OUTPUT_ACK,
            Self::FsStat { .. } => kind::FS_STAT,
            Self::FsList { .. } => kind::FS_LIST,
            Self::FsRead { .. } => kind::FS_READ,
            Self::FsWrite { .. } => kind::FS_WRITE,
            Self::FsWriteData(_) => kind::FS_WRITE_DATA,
            Self::FsWriteEnd => kind::FS_WRITE_END,
        }
    }

    /// The payload bytes.
    #[must_use]
    pub fn payload(&self) -> Vec<u8> {
        let mut out = Payload::default();
        match self {
            Self::Run(spec) => {
                let mut flags = 0;
                if spec.tty {
                    flags |= FLAG_TTY;
                }
                if spec.stdin_open {
                    flags |= FLAG_STDIN;
                }
                out.u8(flags);
                out.u16(spec.rows);
                out.u16(spec.cols);
                out.strings(&spec.argv);
                out.strings(&spec.set);
                out.strings(&spec.unset);
                out.string(&spec.cwd);
            }
            Self::Stdin(bytes) | Self::FsWriteData(bytes) => out.bytes(bytes),
            Self::StdinEof | Self::Detach | Self::FsWriteEnd => {}
            Self::Resize { rows, cols } => {
                out.u16(*rows);
                out.u16(*cols);
            }
            Self::Signal { signo, group } => {
                out.u8(*signo);
                out.u8(u8::from(*group));
            }
            Self::OutputAck(bytes) => out.u32(*bytes),
            Self::FsStat { follow, path } => {
                out.u8(u8::from(*follow));
                out.string(path);
            }
            Self::FsList { limit, path } => {
                out.u32(*limit);
                out.string(path);
            }
            Self::FsRead {
                offset,
                length,
                limit,
                path,
            } => {
                out.u64(*offset);
                out.u64(*length);
                out.u64(*limit);
                out.string(path);
            }
            Self::FsWrite { append, mode, path } => {
                out.u8(if *append { FLAG_APPEND } else { 0 });
                out.u32(mode.unwrap_or(MODE_NONE));
                out.string(path);
            }
        }
        out.0
    }

    /// The whole frame about command `id`, for one write. A payload above
    /// [`crate::MAX_PAYLOAD`] (a huge RUN, a STDIN chunk over 1 MiB) gives a frame the helper
    /// refuses by ending; keep STDIN chunks small and check a RUN with [`ToHelper::fits`].
    #[must_use]
    pub fn encode(&self, id: u32) -> Vec<u8> {
        encode_frame(self.kind(), id, &self.payload())
    }

    /// Whether this message's payload is within [`crate::MAX_PAYLOAD`].
    #[must_use]
    pub fn fits(&self) -> bool {
        self.payload().len() <= crate::MAX_PAYLOAD
    }

    /// The message a frame carries, taking the frame (STDIN's and FS_WRITE_DATA's bytes are
    /// moved, not copied).
    ///
    /// # Errors
    /// [`DecodeError`]: an unknown kind, or a short or malformed payload.
    pub fn from_frame(frame: Frame) -> Result<Self, DecodeError> {
        match frame.kind {
            kind::STDIN => Ok(Self::Stdin(frame.payload)),
            kind::FS_WRITE_DATA => Ok(Self::FsWriteData(frame.payload)),
            _ => Self::decode(&frame),
        }
    }

    /// The message a frame carries.
    ///
    /// # Errors
    /// [`DecodeError`]: an unknown kind, or a short or malformed payload.
    pub fn decode(frame: &Frame) -> Result<Self, DecodeError> {
        let mut input = Cursor::new(&frame.payload);
        let message = match frame.kind {
            kind::RUN => {
                let flags = input.u8("flags")?;
                if flags & !(FLAG_TTY | FLAG_STDIN) != 0 {
                    return Err(DecodeError::BadValue {
                        field: "flags",
                        value: u32::from(flags),
                    });
                }
                let rows = input.u16("rows")?;
                let cols = input.u16("cols")?;
                let argv = input.exec_strings("argv")?;
                let set = input.exec_strings("set")?;
                let unset = input.exec_strings("unset")?;
                let cwd = input.exec_string("cwd")?;
                Self::Run(RunSpec {
                    tty: flags & FLAG_TTY != 0,
                    stdin_open: flags & FLAG_STDIN != 0,
                    rows,
                    cols,
                    argv,
                    set,
                    unset,
                    cwd,
                })
            }
            kind::STDIN => Self::Stdin(input.rest().to_vec()),
            kind::STDIN_EOF => Self::StdinEof,
            kind::RESIZE => Self::Resize {
                rows: input.u16("rows")?,
                cols: input.u16("cols")?,
            },
            kind::SIGNAL => {
                let signo = input.u8("signo")?;
                let group = match input.u8("target")? {
                    0 => false,
                    1 => true,
                    value => {
                        return Err(DecodeError::BadValue {
                            field: "target",
                            value: u32::from(value),
                        });
                    }
                };
                Self::Signal { signo, group }
            }
            kind::DETACH => Self::Detach,
            kind::OUTPUT_ACK => Self::OutputAck(input.u32("bytes")?),
            kind::FS_STAT => Self::FsStat {
                follow: match input.u8("follow")? {
                    0 => false,
                    1 => true,
                    value => {
                        return Err(DecodeError::BadValue {
                            field: "follow",
                            value: u32::from(value),
                        });
                    }
                },
                path: input.exec_string("path")?,
            },
            kind::FS_LIST => Self::FsList {
                limit: input.u32("limit")?,
                path: input.exec_string("path")?,
            },
            kind::FS_READ => Self::FsRead {
                offset: input.u64("offset")?,
                length: input.u64("length")?,
                limit: input.u64("limit")?,
                path: input.exec_string("path")?,
            },
            kind::FS_WRITE => {
                let flags = input.u8("flags")?;
                if flags & !FLAG_APPEND != 0 {
                    return Err(DecodeError::BadValue {
                        field: "flags",
                        value: u32::from(flags),
                    });
                }
                let mode = match input.u32("mode")? {
                    MODE_NONE => None,
                    mode if mode & !MODE_BITS != 0 => {
                        return Err(DecodeError::BadValue {
                            field: "mode",
                            value: mode,
                        });
                    }
                    mode => Some(mode),
                };
                Self::FsWrite {
                    append: flags & FLAG_APPEND != 0,
                    mode,
                    path: input.exec_string("path")?,
                }
            }
            kind::FS_WRITE_DATA => Self::FsWriteData(input.rest().to_vec()),
            kind::FS_WRITE_END => Self::FsWriteEnd,
            other => return Err(DecodeError::UnknownKind(other)),
        };
        input.finish()?;
        Ok(message)
    }
}

impl FromHelper {
    /// This message's frame kind.
    #[must_use]
    pub fn kind(&self) -> u8 {
        match self {
            Self::Hello { .. } => kind::HELLO,
            Self::Started { .. } => kind::STARTED,
            Self::Failed { .. } => kind::FAILED,
            Self::Stdout(_) => kind::STDOUT,
            Self::Stderr(_) => kind::STDERR,
            Self::Exited(_) => kind::EXITED,
            Self::OutputEnd => kind::OUTPUT_END,
            Self::StdinAck(_) => kind::STDIN_ACK,
            Self::Error(_) => kind::ERROR,
            Self::FsStat(_) => kind::FS_STAT_ANSWER,
            Self::FsEntries(_) => kind::FS_ENTRIES,
            Self::FsData(_) => kind::FS_DATA,
            Self::FsEnd => kind::FS_END,
            Self::FsErr { .. } => kind::FS_ERR,
        }
    }

    /// The payload bytes.
    #[must_use]
    pub fn payload(&self) -> Vec<u8> {
        let mut out = Payload::default();
        match self {
            Self::Hello {
                protocol,
                pid,
                version,
            } => {
                out.u32(*protocol);
                out.u32(*pid);
                out.string(version.as_bytes());
            }
            Self::Started { pid } => out.u32(*pid),
            Self::Failed {
                stage,
                errno,
                message,
            } => {
                out.u8(stage.as_u8());
                out.i32(*errno);
                out.string(message.as_bytes());
            }
            Self::Stdout(bytes) | Self::Stderr(bytes) | Self::FsData(bytes) => out.bytes(bytes),
            Self::Exited(exit) => {
                let (how, value) = match exit {
                    Exit::Code(code) => (0, *code),
                    Exit::Signal(signo) => (1, *signo),
                };
                out.u8(how);
                out.i32(value);
            }
            Self::OutputEnd | Self::FsEnd => {}
            Self::StdinAck(bytes) => out.u32(*bytes),
            Self::Error(message) => out.string(message.as_bytes()),
            Self::FsStat(stat) => out.stat(stat),
            Self::FsEntries(stats) => {
                out.u32(u32::try_from(stats.len()).unwrap_or(u32::MAX));
                for stat in stats {
                    out.stat(stat);
                }
            }
            Self::FsErr { errno, message } => {
                out.i32(*errno);
                out.string(message.as_bytes());
            }
        }
        out.0
    }

    /// The whole frame about command `id` (0: the helper), for one write.
    #[must_use]
    pub fn encode(&self, id: u32) -> Vec<u8> {
        encode_frame(self.kind(), id, &self.payload())
    }

    /// The message a frame carries, taking the frame (output and file bytes are moved, not
    /// copied).
    ///
    /// # Errors
    /// [`DecodeError`]: an unknown kind, or a short or malformed payload.
    pub fn from_frame(frame: Frame) -> Result<Self, DecodeError> {
        match frame.kind {
            kind::STDOUT => Ok(Self::Stdout(frame.payload)),
            kind::STDERR => Ok(Self::Stderr(frame.payload)),
            kind::FS_DATA => Ok(Self::FsData(frame.payload)),
            _ => Self::decode(&frame),
        }
    }

    /// The message a frame carries.
    ///
    /// # Errors
    /// [`DecodeError`]: an unknown kind, or a short or malformed payload.
    pub fn decode(frame: &Frame) -> Result<Self, DecodeError> {
        let mut input = Cursor::new(&frame.payload);
        let message = match frame.kind {
            kind::HELLO => Self::Hello {
                protocol: input.u32("protocol")?,
                pid: input.u32("pid")?,
                version: input.text("version")?,
            },
            kind::STARTED => Self::Started {
                pid: input.u32("pid")?,
            },
            kind::FAILED => {
                let stage = input.u8("stage")?;
                let stage = Stage::from_u8(stage).ok_or(DecodeError::BadValue {
                    field: "stage",
                    value: u32::from(stage),
                })?;
                Self::Failed {
                    stage,
                    errno: input.i32("errno")?,
                    message: input.text("message")?,
                }
            }
            kind::STDOUT => Self::Stdout(input.rest().to_vec()),
            kind::STDERR => Self::Stderr(input.rest().to_vec()),
            kind::EXITED => {
                let how = input.u8("how")?;
                let value = input.i32("value")?;
                Self::Exited(match how {
                    0 => Exit::Code(value),
                    1 => Exit::Signal(value),
                    other => {
                        return Err(DecodeError::BadValue {
                            field: "how",
                            value: u32::from(other),
                        });
                    }
                })
            }
            kind::OUTPUT_END => Self::OutputEnd,
            kind::STDIN_ACK => Self::StdinAck(input.u32("bytes")?),
            kind::ERROR => Self::Error(input.text("message")?),
            kind::FS_STAT_ANSWER => Self::FsStat(input.stat()?),
            kind::FS_ENTRIES => {
                let count = input.u32("count")?;
                let count =
                    usize::try_from(count).map_err(|_| DecodeError::Short { field: "count" })?;
                // No more room than the remaining bytes could hold.
                let mut stats =
                    Vec::with_capacity(count.min(input.rest.len() / FileStat::MIN_WIRE_LEN));
                for _ in 0..count {
                    stats.push(input.stat()?);
                }
                Self::FsEntries(stats)
            }
            kind::FS_DATA => Self::FsData(input.rest().to_vec()),
            kind::FS_END => Self::FsEnd,
            kind::FS_ERR => Self::FsErr {
                errno: input.i32("errno")?,
                message: input.text("message")?,
            },
            other => return Err(DecodeError::UnknownKind(other)),
        };
        input.finish()?;
        Ok(message)
    }
}

/// A payload being written.
#[derive(Default)]
struct Payload(Vec<u8>);

impl Payload {
    fn u8(&mut self, value: u8) {
        self.0.push(value);
    }

    fn u16(&mut self, value: u16) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn u32(&mut self, value: u32) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn i32(&mut self, value: i32) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn i64(&mut self, value: i64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn stat(&mut self, stat: &FileStat) {
        self.u8(stat.kind.as_u8());
        self.u64(stat.size);
        self.u32(stat.mode);
        self.i64(stat.mtime);
        self.u32(stat.mtime_nsec);
        self.string(&stat.name);
        self.string(&stat.link_target);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// A string: its length (clamped to `u32::MAX`, which no reader accepts) and its bytes.
    fn string(&mut self, bytes: &[u8]) {
        self.u32(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        self.bytes(bytes);
    }

    fn strings(&mut self, list: &[Vec<u8>]) {
        self.u32(u32::try_from(list.len()).unwrap_or(u32::MAX));
        for item in list {
            self.string(item);
        }
    }
}

/// A payload being read: every read checks the bytes that remain.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let Some((head, rest)) = self.rest.split_first_chunk::<N>() else {
            return Err(DecodeError::Short { field });
        };
        self.rest = rest;
        Ok(*head)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        let [byte] = self.take::<1>(field)?;
        Ok(byte)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.take(field).map(u16::from_le_bytes)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.take(field).map(u32::from_le_bytes)
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        self.take(field).map(i32::from_le_bytes)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.take(field).map(u64::from_le_bytes)
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        self.take(field).map(i64::from_le_bytes)
    }

    /// A stat, its kind, mode and nanoseconds in range.
    fn stat(&mut self) -> Result<FileStat, DecodeError> {
        let kind = self.u8("kind")?;
        let kind = FileKind::from_u8(kind).ok_or(DecodeError::BadValue {
            field: "kind",
            value: u32::from(kind),
        })?;
        let size = self.u64("size")?;
        let mode = self.u32("mode")?;
        if mode & !MODE_BITS != 0 {
            return Err(DecodeError::BadValue {
                field: "mode",
                value: mode,
            });
        }
        let mtime = self.i64("mtime")?;
        let mtime_nsec = self.u32("mtime_nsec")?;
        if mtime_nsec >= 1_000_000_000 {
            return Err(DecodeError::BadValue {
                field: "mtime_nsec",
                value: mtime_nsec,
            });
        }
        Ok(FileStat {
            kind,
            size,
            mode,
            mtime,
            mtime_nsec,
            name: self.string("name")?.to_vec(),
            link_target: self.string("link_target")?.to_vec(),
        })
    }

    fn string(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Short { field })?;
        if len > self.rest.len() {
            return Err(DecodeError::Short { field });
        }
        let (head, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(head)
    }

    /// A string that reaches `execve`: bytes without NUL.
    fn exec_string(&mut self, field: &'static str) -> Result<Vec<u8>, DecodeError> {
        let bytes = self.string(field)?;
        if bytes.contains(&0) {
            return Err(DecodeError::Nul { field });
        }
        Ok(bytes.to_vec())
    }

    /// A count and that many [`Cursor::exec_string`]s. The count reserves no more room than
    /// the remaining bytes could hold (each string needs at least its 4-byte length).
    fn exec_strings(&mut self, field: &'static str) -> Result<Vec<Vec<u8>>, DecodeError> {
        let count = self.u32(field)?;
        let count = usize::try_from(count).map_err(|_| DecodeError::Short { field })?;
        let mut list = Vec::with_capacity(count.min(self.rest.len() / 4));
        for _ in 0..count {
            list.push(self.exec_string(field)?);
        }
        Ok(list)
    }

    /// Diagnostic text, decoded lossily.
    fn text(&mut self, field: &'static str) -> Result<String, DecodeError> {
        self.string(field)
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing {
                extra: self.rest.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Frame;

    fn frame_of(bytes: &[u8]) -> Frame {
        Frame::read_from(&mut &bytes[..]).unwrap().unwrap()
    }

    fn spec() -> RunSpec {
        RunSpec {
            tty: true,
            stdin_open: true,
            rows: 33,
            cols: 101,
            argv: vec![b"sh".to_vec(), b"-c".to_vec(), b"echo \xff\xfe".to_vec()],
            set: vec![b"A=1".to_vec(), b"B=".to_vec(), b"C".to_vec()],
            unset: vec![b"HOME".to_vec()],
            cwd: b"/tmp".to_vec(),
        }
    }

    fn to_helper_all() -> Vec<ToHelper> {
        vec![
            ToHelper::Run(spec()),
            ToHelper::Run(RunSpec::default()),
            ToHelper::Stdin(b"input\n".to_vec()),
            ToHelper::Stdin(Vec::new()),
            ToHelper::StdinEof,
            ToHelper::Resize { rows: 1, cols: 2 },
            ToHelper::Signal {
                signo: 15,
                group: true,
            },
            ToHelper::Signal {
                signo: 9,
                group: false,
            },
            ToHelper::Detach,
            ToHelper::OutputAck(65536),
            ToHelper::FsStat {
                follow: true,
                path: b"/etc/passwd".to_vec(),
            },
            ToHelper::FsStat {
                follow: false,
                path: b"/\xff\xfe".to_vec(),
            },
            ToHelper::FsList {
                limit: 10_000,
                path: b"/".to_vec(),
            },
            ToHelper::FsRead {
                offset: (4 << 30) - 10,
                length: u64::MAX,
                limit: 16 << 20,
                path: b"/big".to_vec(),
            },
            ToHelper::FsRead {
                offset: 0,
                length: 0,
                limit: 0,
                path: Vec::new(),
            },
            ToHelper::FsWrite {
                append: false,
                mode: None,
                path: b"/a/b".to_vec(),
            },
            ToHelper::FsWrite {
                append: true,
                mode: Some(0o4755),
                path: b"/a/b".to_vec(),
            },
            ToHelper::FsWrite {
                append: false,
                mode: Some(0),
                path: b"/x".to_vec(),
            },
            ToHelper::FsWriteData(b"data\0\xff".to_vec()),
            ToHelper::FsWriteData(Vec::new()),
            ToHelper::FsWriteEnd,
        ]
    }

    fn file_stat(kind: FileKind, name: &[u8], link_target: &[u8]) -> FileStat {
        FileStat {
            kind,
            size: 0x0102_0304_0506_0708,
            mode: 0o1777,
            mtime: -2,
            mtime_nsec: 999_999_999,
            name: name.to_vec(),
            link_target: link_target.to_vec(),
        }
    }

    fn from_helper_all() -> Vec<FromHelper> {
        vec![
            FromHelper::Hello {
                protocol: 1,
                pid: 42,
                version: "0.1.0".into(),
            },
            FromHelper::Started { pid: 7 },
            FromHelper::Failed {
                stage: Stage::Cwd,
                errno: 2,
                message: "chdir".into(),
            },
            FromHelper::Failed {
                stage: Stage::Exec,
                errno: 13,
                message: String::new(),
            },
            FromHelper::Failed {
                stage: Stage::Other,
                errno: -1,
                message: "fork".into(),
            },
            FromHelper::Stdout(b"\0\x01\x02 out".to_vec()),
            FromHelper::Stderr(Vec::new()),
            FromHelper::Exited(Exit::Code(3)),
            FromHelper::Exited(Exit::Code(-1)),
            FromHelper::Exited(Exit::Signal(15)),
            FromHelper::OutputEnd,
            FromHelper::StdinAck(4096),
            FromHelper::Error("unknown id".into()),
            FromHelper::FsStat(file_stat(FileKind::File, b"passwd", b"")),
            FromHelper::FsStat(file_stat(FileKind::Symlink, b"l\xff", b"../t")),
            FromHelper::FsStat(file_stat(FileKind::Directory, b"", b"")),
            FromHelper::FsEntries(vec![
                file_stat(FileKind::Other, b"fifo", b""),
                file_stat(FileKind::Symlink, b"link", b"/etc"),
            ]),
            FromHelper::FsEntries(Vec::new()),
            FromHelper::FsData(b"\0bytes".to_vec()),
            FromHelper::FsData(Vec::new()),
            FromHelper::FsEnd,
            FromHelper::FsErr {
                errno: 13,
                message: "Permission denied".into(),
            },
        ]
    }

    #[test]
    fn every_message_to_the_helper_round_trips() {
        for (id, message) in (1..).zip(to_helper_all()) {
            let wire = message.encode(id);
            let frame = frame_of(&wire);
            assert_eq!(frame.id, id);
            assert_eq!(frame.kind, message.kind());
            assert_eq!(ToHelper::decode(&frame), Ok(message.clone()), "{message:?}");
            assert!(message.fits());
        }
    }

    #[test]
    fn every_message_from_the_helper_round_trips() {
        for (id, message) in (0..).zip(from_helper_all()) {
            let wire = message.encode(id);
            let frame = frame_of(&wire);
            assert_eq!(frame.id, id);
            assert_eq!(
                FromHelper::decode(&frame),
                Ok(message.clone()),
                "{message:?}"
            );
        }
    }

    #[test]
    fn from_frame_decodes_as_decode_does() {
        for message in to_helper_all() {
            let frame = frame_of(&message.encode(3));
            assert_eq!(ToHelper::from_frame(frame), Ok(message));
        }
        for message in from_helper_all() {
            let frame = frame_of(&message.encode(3));
            assert_eq!(FromHelper::from_frame(frame), Ok(message));
        }
        let garbage = Frame::new(kind::RUN, 1, vec![9]);
        assert!(ToHelper::from_frame(garbage).is_err());
    }

    #[test]
    fn the_run_payload_is_laid_out_as_the_protocol_says() {
        let run = ToHelper::Run(RunSpec {
            tty: false,
            stdin_open: true,
            rows: 0x0102,
            cols: 0x0304,
            argv: vec![b"ls".to_vec()],
            set: vec![],
            unset: vec![b"X".to_vec()],
            cwd: vec![],
        });
        let expected: &[u8] = &[
            2, 2, 1, 4, 3, // flags, rows, cols
            1, 0, 0, 0, 2, 0, 0, 0, b'l', b's', // argv
            0, 0, 0, 0, // set
            1, 0, 0, 0, 1, 0, 0, 0, b'X', // unset
            0, 0, 0, 0, // cwd
        ];
        assert_eq!(run.payload(), expected);
        assert_eq!(
            FromHelper::Exited(Exit::Signal(9)).payload(),
            [1, 9, 0, 0, 0]
        );
    }

    #[test]
    fn every_truncated_payload_is_refused() {
        for message in to_helper_all() {
            let payload = message.payload();
            for cut in 0..payload.len() {
                let frame = Frame::new(message.kind(), 1, payload[..cut].to_vec());
                // STDIN takes any bytes: a shorter payload is another valid message.
                if matches!(message, ToHelper::Stdin(_) | ToHelper::FsWriteData(_)) {
                    continue;
                }
                assert!(
                    ToHelper::decode(&frame).is_err(),
                    "{message:?} cut at {cut}"
                );
            }
        }
        for message in from_helper_all() {
            let payload = message.payload();
            if matches!(
                message,
                FromHelper::Stdout(_) | FromHelper::Stderr(_) | FromHelper::FsData(_)
            ) {
                continue;
            }
            for cut in 0..payload.len() {
                let frame = Frame::new(message.kind(), 1, payload[..cut].to_vec());
                assert!(
                    FromHelper::decode(&frame).is_err(),
                    "{message:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        for message in to_helper_all() {
            if matches!(message, ToHelper::Stdin(_) | ToHelper::FsWriteData(_)) {
                continue;
            }
            let mut payload = message.payload();
            payload.push(0);
            let frame = Frame::new(message.kind(), 1, payload);
            assert_eq!(
                ToHelper::decode(&frame),
                Err(DecodeError::Trailing { extra: 1 }),
                "{message:?}"
            );
        }
        for message in from_helper_all() {
            if matches!(
                message,
                FromHelper::Stdout(_) | FromHelper::Stderr(_) | FromHelper::FsData(_)
            ) {
                continue;
            }
            let mut payload = message.payload();
            payload.push(0);
            let frame = Frame::new(message.kind(), 1, payload);
            assert_eq!(
                FromHelper::decode(&frame),
                Err(DecodeError::Trailing { extra: 1 }),
                "{message:?}"
            );
        }
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        // Unknown kinds, each direction's kinds in the other direction.
        for kind in [0x00, 0x08, 0x80, 0x8e, 0xff, kind::HELLO] {
            assert_eq!(
                ToHelper::decode(&Frame::new(kind, 1, vec![])),
                Err(DecodeError::UnknownKind(kind))
            );
        }
        assert_eq!(
            FromHelper::decode(&Frame::new(kind::RUN, 1, vec![])),
            Err(DecodeError::UnknownKind(kind::RUN))
        );
        // A huge count of entries with few bytes behind it.
        assert_eq!(
            FromHelper::decode(&Frame::new(kind::FS_ENTRIES, 1, vec![0xff; 40])),
            Err(DecodeError::BadValue {
                field: "kind",
                value: 0xff
            })
        );
        assert_eq!(
            FromHelper::decode(&Frame::new(
                kind::FS_ENTRIES,
                1,
                vec![0xff, 0xff, 0xff, 0xff, 0]
            )),
            Err(DecodeError::Short { field: "size" })
        );
        // A huge count or string length with few bytes behind it.
        let huge_argc = [0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            ToHelper::decode(&Frame::new(kind::RUN, 1, huge_argc.to_vec())),
            Err(DecodeError::Short { field: "argv" })
        );
        let huge_string = [0, 0, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, b'x'];
        assert_eq!(
            ToHelper::decode(&Frame::new(kind::RUN, 1, huge_string.to_vec())),
            Err(DecodeError::Short { field: "argv" })
        );
        // Every byte string up to 3 bytes, and pseudo-random longer ones, for every kind.
        let mut seed = 0x2545_f491_u32;
        for kind in 0..=u8::MAX {
            for len in 0..64 {
                let payload: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 17;
                        seed ^= seed << 5;
                        seed.to_le_bytes()[0]
                    })
                    .collect();
                let frame = Frame::new(kind, 9, payload);
                let _ = ToHelper::decode(&frame);
                let _ = FromHelper::decode(&frame);
            }
        }
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let bad_flags = ToHelper::Run(RunSpec::default()).payload();
        let mut bad = bad_flags.clone();
        bad[0] = 4;
        assert_eq!(
            ToHelper::decode(&Frame::new(kind::RUN, 1, bad)),
            Err(DecodeError::BadValue {
                field: "flags",
                value: 4
            })
        );
        assert_eq!(
            ToHelper::decode(&Frame::new(kind::SIGNAL, 1, vec![15, 2])),
            Err(DecodeError::BadValue {
                field: "target",
                value: 2
            })
        );
        assert_eq!(
            FromHelper::decode(&Frame::new(
                kind::FAILED,
                1,
                vec![3, 0, 0, 0, 0, 0, 0, 0, 0]
            )),
            Err(DecodeError::BadValue {
                field: "stage",
                value: 3
            })
        );
        assert_eq!(
            FromHelper::decode(&Frame::new(kind::EXITED, 1, vec![2, 0, 0, 0, 0])),
            Err(DecodeError::BadValue {
                field: "how",
                value: 2
            })
        );
    }

    #[test]
    fn out_of_range_file_call_values_are_refused() {
        let refused = |message: ToHelper, at: usize, byte: u8| {
            let mut payload = message.payload();
            payload[at] = byte;
            ToHelper::decode(&Frame::new(message.kind(), 1, payload))
        };
        let stat = ToHelper::FsStat {
            follow: false,
            path: b"/".to_vec(),
        };
        assert_eq!(
            refused(stat, 0, 2),
            Err(DecodeError::BadValue {
                field: "follow",
                value: 2
            })
        );
        let write = ToHelper::FsWrite {
            append: false,
            mode: Some(0o644),
            path: b"/f".to_vec(),
        };
        assert_eq!(
            refused(write.clone(), 0, 2),
            Err(DecodeError::BadValue {
                field: "flags",
                value: 2
            })
        );
        // 0o644 | 0o10000: a file type bit is no mode.
        assert_eq!(
            refused(write, 2, 0x11),
            Err(DecodeError::BadValue {
                field: "mode",
                value: 0o10644
            })
        );
        let answer = |stat: &FileStat, at: usize, byte: u8| {
            let mut payload = FromHelper::FsStat(stat.clone()).payload();
            payload[at] = byte;
            FromHelper::decode(&Frame::new(kind::FS_STAT_ANSWER, 1, payload))
        };
        let stat = file_stat(FileKind::File, b"f", b"");
        assert_eq!(
            answer(&stat, 0, 4),
            Err(DecodeError::BadValue {
                field: "kind",
                value: 4
            })
        );
        assert_eq!(
            // 0o1777 is [0xff, 0x03, 0, 0]: 0x10ff carries a file type bit.
            answer(&stat, 10, 0x10),
            Err(DecodeError::BadValue {
                field: "mode",
                value: 0x10ff
            })
        );
        let late = FileStat {
            mtime_nsec: 0,
            ..stat
        };
        // mtime_nsec's top byte: 0x3c << 24 is over a second.
        assert_eq!(
            answer(&late, 24, 0x3c),
            Err(DecodeError::BadValue {
                field: "mtime_nsec",
                value: 0x3c00_0000
            })
        );
    }

    #[test]
    fn the_file_call_payloads_are_laid_out_as_the_protocol_says() {
        let write = ToHelper::FsWrite {
            append: true,
            mode: None,
            path: b"/f".to_vec(),
        };
        assert_eq!(
            write.payload(),
            [1, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, b'/', b'f']
        );
        let read = ToHelper::FsRead {
            offset: 1,
            length: 2,
            limit: 3,
            path: b"/".to_vec(),
        };
        let expected: &[u8] = &[
            1, 0, 0, 0, 0, 0, 0, 0, // offset
            2, 0, 0, 0, 0, 0, 0, 0, // length
            3, 0, 0, 0, 0, 0, 0, 0, // limit
            1, 0, 0, 0, b'/', // path
        ];
        assert_eq!(read.payload(), expected);
        let stat = FileStat {
            kind: FileKind::Symlink,
            size: 1,
            mode: 0o777,
            mtime: -1,
            mtime_nsec: 5,
            name: b"n".to_vec(),
            link_target: b"t".to_vec(),
        };
        let expected: &[u8] = &[
            2, // kind
            1, 0, 0, 0, 0, 0, 0, 0, // size
            0xff, 1, 0, 0, // mode
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // mtime
            5, 0, 0, 0, // mtime_nsec
            1, 0, 0, 0, b'n', // name
            1, 0, 0, 0, b't', // link_target
        ];
        assert_eq!(stat.wire_len(), expected.len());
        assert_eq!(FromHelper::FsStat(stat).payload(), expected);
        assert_eq!(
            FromHelper::FsErr {
                errno: 2,
                message: "x".into()
            }
            .payload(),
            [2, 0, 0, 0, 1, 0, 0, 0, b'x']
        );
    }

    #[test]
    fn an_entries_frame_holds_many_stats_within_the_frame_limit() {
        // As many 255-byte names as fit in one payload, as the helper packs them.
        let stats: Vec<FileStat> = (0..)
            .map(|n: u32| {
                let mut name = format!("{n:08}").into_bytes();
                name.resize(255, b'x');
                file_stat(FileKind::File, &name, b"")
            })
            .scan(4, |used, stat| {
                *used += stat.wire_len();
                (*used <= crate::MAX_PAYLOAD).then_some(stat)
            })
            .collect();
        assert!(stats.len() > 3000, "{}", stats.len());
        let message = FromHelper::FsEntries(stats);
        let wire = message.encode(7);
        assert!(wire.len() <= crate::HEADER_LEN + crate::MAX_PAYLOAD);
        let frame = frame_of(&wire);
        assert_eq!(FromHelper::from_frame(frame), Ok(message));
    }

    #[test]
    fn nul_inside_an_exec_string_is_refused() {
        for (field, spec) in [
            (
                "argv",
                RunSpec {
                    argv: vec![b"a\0b".to_vec()],
                    ..RunSpec::default()
                },
            ),
            (
                "set",
                RunSpec {
                    set: vec![b"A=\0".to_vec()],
                    ..RunSpec::default()
                },
            ),
            (
                "unset",
                RunSpec {
                    unset: vec![b"\0".to_vec()],
                    ..RunSpec::default()
                },
            ),
            (
                "cwd",
                RunSpec {
                    cwd: b"/tmp\0".to_vec(),
                    ..RunSpec::default()
                },
            ),
        ] {
            let frame = frame_of(&ToHelper::Run(spec).encode(1));
            assert_eq!(ToHelper::decode(&frame), Err(DecodeError::Nul { field }));
        }
        for message in [
            ToHelper::FsStat {
                follow: true,
                path: b"/a\0".to_vec(),
            },
            ToHelper::FsList {
                limit: 1,
                path: b"/\0".to_vec(),
            },
            ToHelper::FsRead {
                offset: 0,
                length: 1,
                limit: 1,
                path: b"\0/x".to_vec(),
            },
            ToHelper::FsWrite {
                append: false,
                mode: None,
                path: b"/x\0y".to_vec(),
            },
        ] {
            let frame = frame_of(&message.encode(1));
            assert_eq!(
                ToHelper::decode(&frame),
                Err(DecodeError::Nul { field: "path" })
            );
        }
    }

    #[test]
    fn diagnostic_text_that_is_not_utf8_is_decoded_lossily() {
        let frame = Frame::new(kind::ERROR, 0, vec![2, 0, 0, 0, 0xff, b'x']);
        assert_eq!(
            FromHelper::decode(&frame),
            Ok(FromHelper::Error("\u{fffd}x".into()))
        );
    }

    #[test]
    fn an_oversized_run_does_not_fit() {
        let run = ToHelper::Run(RunSpec {
            argv: vec![vec![b'x'; crate::MAX_PAYLOAD]],
            ..RunSpec::default()
        });
        assert!(!run.fits());
    }
}
