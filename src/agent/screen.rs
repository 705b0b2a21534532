//! The rendered screen of a terminal exec: its output fed to a terminal emulator as it arrives.
//!
//! A PTY-mode exec (`tty: true`) gets a [`Screen`] beside its kept byte stream. Every chunk of the
//! terminal's output goes through a `vt100` parser, so `exec.read` can show what a person would
//! see (the text of each row, and where the cursor is) whatever cursor motion, clearing or
//! alternate screen the program used. A resize changes the parser's size with the terminal's.
//! The snapshot ([`Shot`]) is plain data, serialized only at the edge.

use std::num::NonZeroU16;
use std::sync::Mutex;

use serde::Serialize;

use crate::engine::TermSize;

/// The default terminal size of a PTY-mode exec.
pub const DEFAULT_SIZE: TermSize = TermSize { rows: 24, cols: 80 };
/// The largest `rows` or `cols` a caller may ask for.
pub const MAX_SIDE: u16 = 1000;

/// A terminal emulator fed with one exec's output.
pub struct Screen {
    parser: Mutex<vt100::Parser>,
}

/// The cursor's cell, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cursor {
    pub row: u16,
    pub col: u16,
}

/// What the screen shows at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shot {
    /// Each row's text, trailing blanks removed.
    pub rows: Vec<String>,
    pub cursor: Cursor,
    /// The screen's size: rows and columns.
    pub rows_n: u16,
    pub cols_n: u16,
}

impl Shot {
    /// The rows as text, one line each, without the blank rows at the bottom.
    pub fn text(&self) -> String {
        let used = self
            .rows
            .iter()
            .rposition(|row| !row.is_empty())
            .map_or(0, |last| last + 1);
        let mut text = String::new();
        for row in &self.rows[..used] {
            text.push_str(row);
            text.push('\n');
        }
        text
    }
}

fn side(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}

impl Screen {
    /// A blank screen of `size`.
    pub fn new(size: TermSize) -> Self {
        Self {
            parser: Mutex::new(vt100::Parser::new(side(size.rows), side(size.cols), 0)),
        }
    }

    fn parser(&self) -> std::sync::MutexGuard<'_, vt100::Parser> {
        self.parser.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the terminal's next output (a character may be split across calls).
    pub fn feed(&self, bytes: &[u8]) {
        self.parser().process(bytes);
    }

    pub fn resize(&self, size: TermSize) {
        self.parser().set_size(side(size.rows), side(size.cols));
    }

    /// The program asked for the cursor keys' application form (DECCKM).
    pub fn application_cursor(&self) -> bool {
        self.parser().screen().application_cursor()
    }

    /// What it shows now.
    pub fn shot(&self) -> Shot {
        let parser = self.parser();
        let screen = parser.screen();
        let (rows_n, cols_n) = screen.size();
        let (row, col) = screen.cursor_position();
        Shot {
            rows: screen
                .rows(0, cols_n.get())
                .map(|row| row.trim_end().to_owned())
                .collect(),
            cursor: Cursor { row, col },
            rows_n: rows_n.get(),
            cols_n: cols_n.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_rendered_as_a_terminal_shows_it() {
        let screen = Screen::new(TermSize { rows: 4, cols: 10 });
        screen.feed(b"hello\r\nworld");
        // Back to the start of the line, overwrite; a clear to the end of the line.
        screen.feed(b"\rW\x1b[K");
        let shot = screen.shot();
        assert_eq!(shot.rows, ["hello", "W", "", ""]);
        assert_eq!(shot.cursor, Cursor { row: 1, col: 1 });
        assert_eq!((shot.rows_n, shot.cols_n), (4, 10));
        assert_eq!(shot.text(), "hello\nW\n");
        // Clear the screen and write at a cursor position; a character split across chunks.
        screen.feed(b"\x1b[2J\x1b[3;2Hx\xc3");
        screen.feed(b"\xa9");
        let shot = screen.shot();
        assert_eq!(shot.rows, ["", "", " xé", ""]);
        assert_eq!(shot.cursor, Cursor { row: 2, col: 3 });
        assert_eq!(shot.text(), "\n\n xé\n");
    }

    #[test]
    fn long_lines_wrap_and_the_screen_scrolls() {
        let screen = Screen::new(TermSize { rows: 2, cols: 4 });
        screen.feed(b"abcdef\r\ngh\r\nij");
        assert_eq!(screen.shot().rows, ["gh", "ij"]);
    }

    #[test]
    fn a_resize_changes_the_size_and_the_alternate_screen_comes_and_goes() {
        let screen = Screen::new(DEFAULT_SIZE);
        screen.feed(b"prompt$ ");
        screen.feed(b"\x1b[?1049h\x1b[Hfull screen\x1b[?1h");
        assert_eq!(screen.shot().rows[0], "full screen");
        assert!(screen.application_cursor());
        screen.resize(TermSize {
            rows: 30,
            cols: 100,
        });
        let shot = screen.shot();
        assert_eq!((shot.rows_n, shot.cols_n, shot.rows.len()), (30, 100, 30));
        screen.feed(b"\x1b[?1l\x1b[?1049l");
        assert_eq!(screen.shot().rows[0], "prompt$");
        assert!(!screen.application_cursor());
        assert_eq!(Screen::new(TermSize { rows: 0, cols: 0 }).shot().rows_n, 1);
    }

    #[test]
    fn the_shot_s_json_is_the_protocol_s() {
        let screen = Screen::new(TermSize { rows: 2, cols: 5 });
        screen.feed(b">>> ");
        assert_eq!(
            serde_json::to_value(screen.shot()).unwrap(),
            serde_json::json!({"rows": [">>>", ""], "cursor": {"row": 0, "col": 4},
                               "rows_n": 2, "cols_n": 5})
        );
    }
}
