//! The typed messages of each direction and their payload layouts, with checked decoding.
//!
//! Integers are little-endian; a *string* is `u32 LE length` and that many bytes. Decoding
//! checks every length against the bytes that are there and refuses bytes left over, unknown
//! flag bits and out-of-range enumerations, so a short or malformed payload is a
//! [`DecodeError`]. Strings that reach `execve` (argv, env entries, names, cwd) are bytes, not
//! UTF-8, and may not contain NUL; diagnostic text (version, messages) is decoded lossily.

use std::fmt;

use crate::frame::{Frame, encode_frame};

/// Frame kinds: `0x0_` from dcx to the helper, `0x8_` from the helper to dcx.
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
}

/// RUN's flag bit: the command gets a PTY.
const FLAG_TTY: u8 = 1;
/// RUN's flag bit: the command's stdin is open (else `/dev/null`).
const FLAG_STDIN: u8 = 2;

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
            Self::Stdin(bytes) => out.bytes(bytes),
            Self::StdinEof | Self::Detach => {}
            Self::Resize { rows, cols } => {
                out.u16(*rows);
                out.u16(*cols);
            }
            Self::Signal { signo, group } => {
                out.u8(*signo);
                out.u8(u8::from(*group));
            }
            Self::OutputAck(bytes) => out.u32(*bytes),
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

    /// The message a frame carries, taking the frame (STDIN's bytes are moved, not copied).
    ///
    /// # Errors
    /// [`DecodeError`]: an unknown kind, or a short or malformed payload.
    pub fn from_frame(frame: Frame) -> Result<Self, DecodeError> {
        match frame.kind {
            kind::STDIN => Ok(Self::Stdin(frame.payload)),
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
            Self::Stdout(bytes) | Self::Stderr(bytes) => out.bytes(bytes),
            Self::Exited(exit) => {
                let (how, value) = match exit {
                    Exit::Code(code) => (0, *code),
                    Exit::Signal(signo) => (1, *signo),
                };
                out.u8(how);
                out.i32(value);
            }
            Self::OutputEnd => {}
            Self::StdinAck(bytes) => out.u32(*bytes),
            Self::Error(message) => out.string(message.as_bytes()),
        }
        out.0
    }

    /// The whole frame about command `id` (0: the helper), for one write.
    #[must_use]
    pub fn encode(&self, id: u32) -> Vec<u8> {
        encode_frame(self.kind(), id, &self.payload())
    }

    /// The message a frame carries, taking the frame (output bytes are moved, not copied).
    ///
    /// # Errors
    /// [`DecodeError`]: an unknown kind, or a short or malformed payload.
    pub fn from_frame(frame: Frame) -> Result<Self, DecodeError> {
        match frame.kind {
            kind::STDOUT => Ok(Self::Stdout(frame.payload)),
            kind::STDERR => Ok(Self::Stderr(frame.payload)),
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
        ]
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
                if matches!(message, ToHelper::Stdin(_)) {
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
            if matches!(message, FromHelper::Stdout(_) | FromHelper::Stderr(_)) {
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
            if matches!(message, ToHelper::Stdin(_)) {
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
        let frame = Frame::new(kind::OUTPUT_END, 1, vec![1, 2]);
        assert_eq!(
            FromHelper::decode(&frame),
            Err(DecodeError::Trailing { extra: 2 })
        );
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
