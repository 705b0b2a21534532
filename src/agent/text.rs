//! Output as a model reads it: always text, cleaned of terminal noise, within a budget.
//!
//! Bytes that are not UTF-8 become U+FFFD, counted ([`lossy`]); [`clean`] strips ANSI escape
//! sequences and keeps only the last frame of a line redrawn with `\r` (a progress bar becomes
//! its final state); [`fit`] keeps the head and the tail of a text within a character budget,
//! joined by one marker line the caller words. Exact bytes stay available elsewhere (base64 in
//! the structured answer, `exec.read`), so these are lossy on purpose.

/// `bytes` as text, each invalid sequence replaced by U+FFFD; and how many bytes were replaced.
pub fn lossy(bytes: &[u8]) -> (String, u64) {
    let mut text = String::with_capacity(bytes.len());
    let mut replaced = 0u64;
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            replaced += chunk.invalid().len() as u64;
            text.push(char::REPLACEMENT_CHARACTER);
        }
    }
    (text, replaced)
}

/// `text` without ANSI escape sequences (CSI, OSC, and two-character escapes) and with each
/// line's `\r`-redrawn frames reduced to the last one (a `\r` right before the line's end, as in
/// `\r\n`, is dropped).
pub fn clean(text: &str) -> String {
    let stripped = strip_escapes(text);
    let mut out = String::with_capacity(stripped.len());
    for (index, line) in stripped.split('\n').enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let line = line.trim_end_matches('\r');
        out.push_str(line.rsplit('\r').next().unwrap_or(line));
    }
    out
}

/// `text` without escape sequences and other control characters but tab, newline and `\r`.
fn strip_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC (and DCS, PM, APC): up to BEL or ESC \.
                Some(']' | 'P' | '^' | '_') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                // A charset designation takes one more character.
                Some('(' | ')' | '*' | '+') => {
                    chars.next();
                }
                _ => {}
            },
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// What [`fit`] left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// Characters kept from the start and from the end.
    pub head: usize,
    pub tail: usize,
    /// Characters left out between them.
    pub omitted: usize,
}

/// `text` within `budget` characters: whole, or its first and last parts (cut at line ends where
/// one is near) joined by the line `marker(cut)` returns.
pub fn fit(text: &str, budget: usize, marker: impl FnOnce(Cut) -> String) -> String {
    let total = text.chars().count();
    if total <= budget {
        return text.to_owned();
    }
    let middle = char_index(text, total / 2);
    join(&text[..middle], &text[middle..], budget, marker)
}

/// The start of one text and the end of another (a head and a tail with bytes missing between
/// them), within `budget` characters but for the marker line always put between them.
pub fn join(head: &str, tail: &str, budget: usize, marker: impl FnOnce(Cut) -> String) -> String {
    let (head_chars, tail_chars) = (head.chars().count(), tail.chars().count());
    let head_room = head_chars.min((budget * 2 / 5).max(budget.saturating_sub(tail_chars)));
    let tail_room = tail_chars.min(budget - head_room);
    let head_end = char_index(head, head_room);
    let tail_start = char_index(tail, tail_chars - tail_room);
    // Whole lines, when a line end is within the last (first) fifth of each part.
    let head_end = match head_end == head.len() {
        true => head_end,
        false => head[..head_end]
            .rfind('\n')
            .filter(|at| *at + 1 >= head_end - head_end / 5)
            .map_or(head_end, |at| at + 1),
    };
    let tail_start = match tail_start == 0 {
        true => 0,
        false => tail[tail_start..]
            .find('\n')
            .filter(|at| *at <= (tail.len() - tail_start) / 5)
            .map_or(tail_start, |at| tail_start + at + 1),
    };
    let (head, tail_part) = (&head[..head_end], &tail[tail_start..]);
    let kept = (head.chars().count(), tail_part.chars().count());
    let cut = Cut {
        head: kept.0,
        tail: kept.1,
        omitted: head_chars + tail_chars - kept.0 - kept.1,
    };
    let mut out = String::with_capacity(head.len() + tail_part.len() + 200);
    out.push_str(head);
    if !head.is_empty() && !head.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&marker(cut));
    out.push('\n');
    out.push_str(tail_part);
    out
}

/// The byte index of the `n`th character of `text` (its length when there are fewer).
fn char_index(text: &str, n: usize) -> usize {
    text.char_indices().nth(n).map_or(text.len(), |(at, _)| at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_bytes_become_one_replacement_each_and_are_counted() {
        assert_eq!(lossy(b"ok"), ("ok".to_owned(), 0));
        assert_eq!(lossy(b"a\xffb"), ("a\u{fffd}b".to_owned(), 1));
        // A cut sequence counts its bytes, one mark.
        assert_eq!(lossy(b"x\xe2\x82"), ("x\u{fffd}".to_owned(), 2));
    }

    #[test]
    fn escapes_go_and_progress_frames_collapse() {
        assert_eq!(clean("\u{1b}[1;31mred\u{1b}[0m plain"), "red plain");
        assert_eq!(clean("\u{1b}]0;title\u{7}text"), "text");
        assert_eq!(
            clean("\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\"),
            "link"
        );
        let mut bar = String::new();
        for step in 0..=200 {
            bar.push_str(&format!("\r[{:<20}] {step}/200", "#".repeat(step / 10)));
        }
        bar.push('\n');
        assert_eq!(clean(&bar), format!("[{}] 200/200\n", "#".repeat(20)));
        assert_eq!(clean("one\r\ntwo\r\n"), "one\ntwo\n");
        assert_eq!(clean("a\u{8}\u{7}b"), "ab");
    }

    #[test]
    fn long_text_keeps_head_and_tail_with_one_marker() {
        let text: String = (1..=1000).map(|n| format!("{n}\n")).collect();
        let fitted = fit(&text, 100, |cut| format!("[cut {}]", cut.omitted));
        assert!(fitted.chars().count() <= 100 + 20, "{fitted}");
        assert!(fitted.starts_with("1\n2\n"));
        assert!(fitted.ends_with("999\n1000\n"));
        assert_eq!(fitted.matches("[cut ").count(), 1);
        // Every kept line is whole.
        for line in fitted.lines().filter(|line| !line.starts_with('[')) {
            assert!(line.parse::<u32>().is_ok(), "{line:?}");
        }
        assert_eq!(fit("short", 100, |_| "[never]".into()), "short");
        // Wide characters are counted as characters, never split.
        // A head and a tail with a gap: one marker, and both within the budget.
        let joined = join("a\nb\n", "y\nz\n", 100, |cut| {
            format!("[gap {}]", cut.omitted)
        });
        assert_eq!(joined, "a\nb\n[gap 0]\ny\nz\n");
        let joined = join(&text, &text, 100, |_| "[gap]".into());
        assert!(joined.starts_with("1\n") && joined.ends_with("1000\n"));
        assert_eq!(joined.matches("[gap]").count(), 1);
        let wide = "é".repeat(500);
        let fitted = fit(&wide, 50, |_| "[…]".into());
        assert_eq!(fitted.chars().filter(|c| *c == 'é').count(), 50);
    }
}
