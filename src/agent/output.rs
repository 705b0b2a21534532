//! A command's kept output: each stream's head and tail within a byte budget.
//!
//! The first half of the budget is the head, the last half the tail (a ring), with the real byte
//! count. The envelope shows head and tail (marked where bytes were left out); `exec.read` serves
//! any offset still held, reporting what was lost in between as skipped bytes. Memory is bounded by
//! the budget whatever the output size.

use std::collections::VecDeque;

use super::envelope::{Data, Shown};

/// One stream's kept bytes.
#[derive(Debug, Clone)]
pub struct Kept {
    head: Vec<u8>,
    head_room: usize,
    tail: VecDeque<u8>,
    tail_room: usize,
    total: u64,
}

impl Kept {
    /// Keeps up to `budget` bytes: half from the start, half from the end.
    pub fn new(budget: usize) -> Self {
        let head_room = budget / 2;
        Self {
            head: Vec::new(),
            head_room,
            tail: VecDeque::new(),
            tail_room: budget - head_room,
            total: 0,
        }
    }

    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let into_head = bytes.len().min(self.head_room - self.head.len());
        self.head.extend_from_slice(&bytes[..into_head]);
        bytes = &bytes[into_head..];
        if bytes.len() >= self.tail_room {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.tail_room..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_room);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// Bytes it holds (its memory, give or take the containers' spare room).
    pub fn held(&self) -> usize {
        self.head.capacity() + self.tail.capacity()
    }

    /// Bytes written so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes left out between head and tail.
    pub fn omitted(&self) -> u64 {
        self.total - (self.head.len() + self.tail.len()) as u64
    }

    /// The bytes from `offset` on that are still held: `(bytes, skipped, next offset)`.
    pub fn read_from(&self, offset: u64) -> (Vec<u8>, u64, u64) {
        let head_len = self.head.len() as u64;
        let tail_start = self.total - self.tail.len() as u64;
        let mut at = offset.min(self.total);
        let mut out = Vec::new();
        if at < head_len {
            out.extend_from_slice(&self.head[at as usize..]);
            at = head_len;
        }
        let skipped = tail_start.saturating_sub(at);
        at = at.max(tail_start);
        out.extend(self.tail.range((at - tail_start) as usize..));
        (out, skipped, self.total)
    }

    /// The stream as the envelope shows it: whole, or head and tail cut at character
    /// boundaries where the text is UTF-8 (so the halves stay readable; the bytes trimmed off
    /// count as left out), joined by a line naming what was left out.
    pub fn shown(&self) -> Shown {
        let truncated = self.omitted() > 0;
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        let (data, cut) = if truncated {
            let head = trim_partial_end(&self.head);
            let tail = trim_partial_start(&tail);
            let omitted = self.total - (head.len() + tail.len()) as u64;
            match (std::str::from_utf8(head), std::str::from_utf8(tail)) {
                (Ok(head), Ok(tail)) => {
                    let marker = format!("\n[… {omitted} bytes left out …]\n");
                    let cut = head.len()..head.len() + marker.len();
                    (Data::Text(format!("{head}{marker}{tail}")), Some(cut))
                }
                _ => (
                    Data::Bytes([head, tail].concat()),
                    Some(head.len()..head.len()),
                ),
            }
        } else {
            (Data::new(&[&self.head[..], &tail[..]].concat()), None)
        };
        Shown {
            data,
            truncated,
            bytes: self.total,
            cut,
        }
    }
}

/// `bytes` without an incomplete UTF-8 sequence at its end.
pub fn trim_partial_end(bytes: &[u8]) -> &[u8] {
    match std::str::from_utf8(bytes) {
        Err(err) if err.error_len().is_none() => &bytes[..err.valid_up_to()],
        _ => bytes,
    }
}

/// `bytes` without continuation bytes at its start (the end of a character cut off).
fn trim_partial_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes
        .iter()
        .take(3)
        .take_while(|byte| (**byte & 0xC0) == 0x80)
        .count();
    &bytes[skip..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(shown: &Shown) -> &str {
        match &shown.data {
            Data::Text(text) => text,
            Data::Bytes(_) => panic!("not text"),
        }
    }

    #[test]
    fn small_output_is_kept_whole() {
        let mut kept = Kept::new(10);
        kept.push(b"abc");
        kept.push(b"defgh");
        let shown = kept.shown();
        assert_eq!(text(&shown), "abcdefgh");
        assert!(!shown.truncated);
        assert_eq!(shown.bytes, 8);
        assert_eq!(kept.read_from(2), (b"cdefgh".to_vec(), 0, 8));
    }

    #[test]
    fn large_output_keeps_head_and_tail_with_the_real_count() {
        let mut kept = Kept::new(8);
        for chunk in [&b"0123"[..], b"45", b"6789abcdef"] {
            kept.push(chunk);
        }
        let shown = kept.shown();
        assert_eq!(text(&shown), "0123\n[… 8 bytes left out …]\ncdef");
        assert!(shown.truncated);
        assert_eq!(shown.bytes, 16);
        // Offsets past the head and before the tail were lost: reported as skipped.
        assert_eq!(kept.read_from(0), (b"0123cdef".to_vec(), 8, 16));
        assert_eq!(kept.read_from(6), (b"cdef".to_vec(), 6, 16));
        assert_eq!(kept.read_from(14), (b"ef".to_vec(), 0, 16));
        assert_eq!(kept.read_from(99), (Vec::new(), 0, 16));
    }

    #[test]
    fn bytes_that_are_not_utf8_come_as_bytes() {
        let mut kept = Kept::new(1024);
        let bytes: Vec<u8> = (0..=255).collect();
        kept.push(&bytes);
        assert_eq!(kept.shown().data, Data::Bytes(bytes));
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let mut kept = Kept::new(6);
        kept.push("ééééé".as_bytes()); // 10 bytes: head "éé"+ half, tail
        let shown = kept.shown();
        let text = text(&shown);
        assert!(text.starts_with('é') && text.ends_with('é'), "{text}");
    }
}
