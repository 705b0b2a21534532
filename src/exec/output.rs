//! Where the command's output goes: byte-exact to our stdout and stderr in text format, or as
//! JSON `raw` events on stderr in JSON format. For the events, each stream keeps the tail of an
//! incomplete UTF-8 sequence until its next chunk, so a character split across chunks arrives
//! whole.

use std::io::Write;

use crate::log::{Format, Log};

pub struct Sink<'a> {
    log: &'a Log,
    stdout_tail: Vec<u8>,
    stderr_tail: Vec<u8>,
}

impl<'a> Sink<'a> {
    pub fn new(log: &'a Log) -> Self {
        Self {
            log,
            stdout_tail: Vec::new(),
            stderr_tail: Vec::new(),
        }
    }

    pub fn stdout(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.log.format() {
            Format::Text => write_all(&mut std::io::stdout().lock(), bytes),
            Format::Json => {
                emit(self.log, &mut self.stdout_tail, bytes);
                Ok(())
            }
        }
    }

    pub fn stderr(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.log.format() {
            Format::Text => write_all(&mut std::io::stderr().lock(), bytes),
            Format::Json => {
                emit(self.log, &mut self.stderr_tail, bytes);
                Ok(())
            }
        }
    }

    /// Flushes what is left (an incomplete sequence at the very end is shown lossily).
    pub fn finish(&mut self) -> std::io::Result<()> {
        for tail in [&mut self.stdout_tail, &mut self.stderr_tail] {
            if !tail.is_empty() {
                self.log.raw_event(&String::from_utf8_lossy(tail));
                tail.clear();
            }
        }
        Ok(())
    }
}

fn write_all(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes)?;
    out.flush()
}

fn emit(log: &Log, tail: &mut Vec<u8>, bytes: &[u8]) {
    tail.extend_from_slice(bytes);
    let text = take_text(tail);
    if !text.is_empty() {
        log.raw_event(&text);
    }
}

/// Takes the longest prefix of `buf` that can be decoded now, leaving an incomplete trailing
/// UTF-8 sequence in `buf`. Invalid bytes become U+FFFD.
fn take_text(buf: &mut Vec<u8>) -> String {
    let mut text = String::new();
    let mut rest: &[u8] = buf;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                text.push_str(valid);
                rest = &[];
                break;
            }
            Err(err) => {
                let (valid, after) = rest.split_at(err.valid_up_to());
                text.push_str(std::str::from_utf8(valid).expect("checked valid"));
                match err.error_len() {
                    Some(len) => {
                        text.push(char::REPLACEMENT_CHARACTER);
                        rest = &after[len..];
                    }
                    None => {
                        rest = after;
                        break;
                    }
                }
            }
        }
    }
    let keep = rest.to_vec();
    *buf = keep;
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_four_byte_character_arrives_whole() {
        let emoji = "🦀".as_bytes();
        let mut tail = b"a".to_vec();
        tail.extend_from_slice(&emoji[..2]);
        assert_eq!(take_text(&mut tail), "a");
        assert_eq!(tail, &emoji[..2]);
        tail.extend_from_slice(&emoji[2..]);
        tail.extend_from_slice(b"b");
        assert_eq!(take_text(&mut tail), "🦀b");
        assert!(tail.is_empty());
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut buf = vec![b'x', 0xff, b'y', 0xe2, 0x82];
        assert_eq!(take_text(&mut buf), "x\u{fffd}y");
        assert_eq!(buf, [0xe2, 0x82]);
    }
}
