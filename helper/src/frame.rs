//! The frame envelope: length, kind and id around a payload, on any byte stream.
//!
//! A frame on the wire is `len: u32 LE` (the bytes after this field: kind, id and payload),
//! `kind: u8`, `id: u32 LE`, then `len - 5` payload bytes. A reader refuses a `len` below 5 or
//! above [`MAX_FRAME`] before allocating anything: such a stream cannot be resynchronised, so
//! the helper ends as at end of file. A writer sends each frame with one `write_all` of the whole
//! frame (a short result in one write: ssh channels are subject to Nagle).

use std::fmt;
use std::io::{self, Read, Write};

/// Bytes before a frame's payload: `len` (4), `kind` (1), `id` (4).
pub const HEADER_LEN: usize = 9;

/// The largest payload a frame may carry: 1 MiB.
pub const MAX_PAYLOAD: usize = 1024 * 1024;

/// The largest `len` field a frame may carry: kind, id and [`MAX_PAYLOAD`] bytes.
#[allow(clippy::cast_possible_truncation)] // 1 MiB + 5 fits a u32.
pub const MAX_FRAME: u32 = MAX_PAYLOAD as u32 + 5;

/// Bytes of `len` that are not payload: kind (1) and id (4).
const KIND_AND_ID: u32 = 5;

/// One frame: what it is (`kind`), which command it is about (`id`, 0: the helper), its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message kind (see [`crate::kind`]).
    pub kind: u8,
    /// The command the frame is about; 0 is the helper itself.
    pub id: u32,
    /// The bytes after the id.
    pub payload: Vec<u8>,
}

/// Why a frame could not be read from a stream. Every variant ends the stream for its reader.
#[derive(Debug)]
pub enum FrameError {
    /// The stream failed.
    Io(io::Error),
    /// The stream ended inside a frame.
    Truncated {
        /// Bytes the frame's next field or payload needed.
        needed: usize,
        /// Bytes there were before the end.
        got: usize,
    },
    /// `len` was above [`MAX_FRAME`].
    TooLarge(u32),
    /// `len` was below 5: no room for kind and id.
    TooShort(u32),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(err) => write!(f, "reading a frame: {err}"),
            Self::Truncated { needed, got } => {
                write!(
                    f,
                    "the stream ended inside a frame ({got} of {needed} bytes)"
                )
            }
            Self::TooLarge(len) => {
                write!(
                    f,
                    "a frame of {len} bytes is larger than the limit ({MAX_FRAME})"
                )
            }
            Self::TooShort(len) => write!(f, "a frame of {len} bytes has no room for kind and id"),
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(err) => Some(err),
            _ => None,
        }
    }
}

impl From<io::Error> for FrameError {
    fn from(err: io::Error) -> Self {
        Self::Io(err)
    }
}

/// The 9 header bytes of a frame whose payload is `payload_len` bytes long.
///
/// A payload above [`MAX_PAYLOAD`] gives a header every reader refuses (its `len` is clamped,
/// never wrapped).
#[must_use]
pub fn frame_header(kind: u8, id: u32, payload_len: usize) -> [u8; HEADER_LEN] {
    let len = u32::try_from(payload_len)
        .unwrap_or(u32::MAX)
        .saturating_add(KIND_AND_ID);
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(&len.to_le_bytes());
    header[4] = kind;
    header[5..].copy_from_slice(&id.to_le_bytes());
    header
}

/// A whole frame, header and payload, ready for one write.
#[must_use]
pub fn encode_frame(kind: u8, id: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(&frame_header(kind, id, payload.len()));
    bytes.extend_from_slice(payload);
    bytes
}

impl Frame {
    /// A frame of `kind` about command `id`.
    #[must_use]
    pub fn new(kind: u8, id: u32, payload: Vec<u8>) -> Self {
        Self { kind, id, payload }
    }

    /// The whole frame as bytes.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        encode_frame(self.kind, self.id, &self.payload)
    }

    /// Writes the whole frame with one `write_all`.
    ///
    /// # Errors
    /// The writer's error.
    pub fn write_to<W: Write + ?Sized>(&self, writer: &mut W) -> io::Result<()> {
        writer.write_all(&self.encode())
    }

    /// Reads one frame; `Ok(None)` when the stream ends cleanly before a frame starts.
    ///
    /// # Errors
    /// [`FrameError`]: the stream failed, ended inside a frame, or announced a length outside
    /// 5..=[`MAX_FRAME`] (refused before any allocation).
    pub fn read_from<R: Read + ?Sized>(reader: &mut R) -> Result<Option<Self>, FrameError> {
        let mut len_bytes = [0u8; 4];
        let got = read_full(reader, &mut len_bytes)?;
        if got == 0 {
            return Ok(None);
        }
        if got < len_bytes.len() {
            return Err(FrameError::Truncated { needed: 4, got });
        }
        let len = u32::from_le_bytes(len_bytes);
        check_len(len)?;
        let mut kind_and_id = [0u8; KIND_AND_ID as usize];
        let got = read_full(reader, &mut kind_and_id)?;
        if got < kind_and_id.len() {
            return Err(FrameError::Truncated {
                needed: len as usize,
                got,
            });
        }
        let mut payload = vec![0u8; (len - KIND_AND_ID) as usize];
        let got = read_full(reader, &mut payload)?;
        if got < payload.len() {
            return Err(FrameError::Truncated {
                needed: len as usize,
                got: kind_and_id.len() + got,
            });
        }
        let [kind, id @ ..] = kind_and_id;
        Ok(Some(Self {
            kind,
            id: u32::from_le_bytes(id),
            payload,
        }))
    }

    /// Parses one frame from the start of `bytes` (for callers that buffer a stream themselves):
    /// `Ok(None)` when `bytes` does not yet hold a whole frame, else the frame and the bytes it
    /// used.
    ///
    /// # Errors
    /// [`FrameError::TooLarge`] or [`FrameError::TooShort`] for a length outside
    /// 5..=[`MAX_FRAME`], as soon as the length field is there.
    pub fn parse(bytes: &[u8]) -> Result<Option<(Self, usize)>, FrameError> {
        let Some(len_bytes) = bytes.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        check_len(len)?;
        let total = 4 + len as usize;
        let Some(body) = bytes.get(4..total) else {
            return Ok(None);
        };
        let frame = Self {
            kind: body[0],
            id: u32::from_le_bytes([body[1], body[2], body[3], body[4]]),
            payload: body[KIND_AND_ID as usize..].to_vec(),
        };
        Ok(Some((frame, total)))
    }
}

/// Refuses a `len` field outside 5..=[`MAX_FRAME`].
fn check_len(len: u32) -> Result<(), FrameError> {
    if len < KIND_AND_ID {
        Err(FrameError::TooShort(len))
    } else if len > MAX_FRAME {
        Err(FrameError::TooLarge(len))
    } else {
        Ok(())
    }
}

/// Fills `buf` unless the stream ends first; returns the bytes read (short only at the end).
fn read_full<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_through_a_stream() {
        let frame = Frame::new(0x84, 7, b"hello".to_vec());
        let mut wire = Vec::new();
        frame.write_to(&mut wire).unwrap();
        assert_eq!(wire.len(), HEADER_LEN + 5);
        assert_eq!(&wire[..4], &10u32.to_le_bytes());
        let mut reader = wire.as_slice();
        assert_eq!(Frame::read_from(&mut reader).unwrap(), Some(frame.clone()));
        assert_eq!(Frame::read_from(&mut reader).unwrap(), None);
        assert_eq!(Frame::parse(&wire).unwrap(), Some((frame, wire.len())));
    }

    #[test]
    fn an_empty_payload_and_the_largest_payload_are_frames() {
        for len in [0, MAX_PAYLOAD] {
            let wire = encode_frame(0x02, 1, &vec![7u8; len]);
            let frame = Frame::read_from(&mut wire.as_slice()).unwrap().unwrap();
            assert_eq!(frame.payload.len(), len);
        }
    }

    #[test]
    fn a_stream_ending_inside_a_frame_is_truncated() {
        let wire = encode_frame(0x84, 1, b"abcdef");
        for cut in 1..wire.len() {
            let err = Frame::read_from(&mut &wire[..cut]).unwrap_err();
            assert!(matches!(err, FrameError::Truncated { .. }), "{cut}: {err}");
            assert!(Frame::parse(&wire[..cut]).unwrap().is_none());
        }
    }

    #[test]
    fn lengths_outside_the_limits_are_refused_before_reading_on() {
        let mut too_large = (MAX_FRAME + 1).to_le_bytes().to_vec();
        too_large.extend_from_slice(&[0; 16]);
        assert!(matches!(
            Frame::read_from(&mut too_large.as_slice()),
            Err(FrameError::TooLarge(_))
        ));
        assert!(matches!(
            Frame::parse(&too_large),
            Err(FrameError::TooLarge(_))
        ));
        let huge = u32::MAX.to_le_bytes();
        assert!(matches!(
            Frame::read_from(&mut huge.as_slice()),
            Err(FrameError::TooLarge(_))
        ));
        for len in 0..5u32 {
            let mut short = len.to_le_bytes().to_vec();
            short.extend_from_slice(&[0; 8]);
            assert!(matches!(
                Frame::read_from(&mut short.as_slice()),
                Err(FrameError::TooShort(_))
            ));
        }
    }

    #[test]
    fn an_oversized_payload_gets_a_header_every_reader_refuses() {
        let header = frame_header(0x02, 1, MAX_PAYLOAD + 1);
        assert!(matches!(
            Frame::read_from(&mut header.as_slice()),
            Err(FrameError::TooLarge(_))
        ));
        let header = frame_header(0x02, 1, usize::MAX);
        assert_eq!(&header[..4], &u32::MAX.to_le_bytes());
    }
}
