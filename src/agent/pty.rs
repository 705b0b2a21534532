//! PTY mode for agent execs: the terminal's size and environment, and what is typed into it.
//!
//! A command started with `tty: true` gets a terminal of `rows`×`cols` (24×80 unless told), its
//! output one stream (stdout) that also feeds a rendered screen ([`super::screen`]), and
//! `TERM=xterm-256color` where the session sets no `TERM` (never the non-interactive `TERM=dumb`,
//! which full-screen programs refuse). Only `exec.start` takes it: a terminal needs
//! `exec.read`, `exec.write_stdin` and `exec.resize` to be of use. What `exec.write_stdin` types
//! is its text first, then its named keys ([`super::keys`]), encoded for the terminal's current
//! cursor-key mode.

use super::exec::Exec;
use super::keys;
use super::params::Text;
use super::protocol::Failure;
use super::screen::{DEFAULT_SIZE, MAX_SIDE};
use crate::engine::TermSize;

/// The `TERM` a PTY-mode command gets where the session sets none.
pub const TERM: &str = "xterm-256color";

/// The wrapper's defaults (`NAME=value`, set where unset) for a command with or without a
/// terminal: with one, any `TERM` default gives way to [`TERM`].
pub fn defaults(mut defaults: Vec<String>, tty: bool) -> Vec<String> {
    if tty {
        defaults.retain(|entry| !entry.starts_with("TERM="));
        defaults.push(format!("TERM={TERM}"));
    }
    defaults
}

/// One side of the terminal, checked: from 1 to [`MAX_SIDE`].
fn side(name: &str, value: Option<u64>, default: u16) -> Result<u16, Failure> {
    match value {
        None => Ok(default),
        Some(n) if (1..=u64::from(MAX_SIDE)).contains(&n) => Ok(n as u16),
        Some(_) => Err(Failure::bad(format!(
            "`{name}` must be from 1 to {MAX_SIDE}"
        ))),
    }
}

/// A terminal size from `rows` and `cols` (each defaulting to 24×80's).
pub fn size(rows: Option<u64>, cols: Option<u64>) -> Result<TermSize, Failure> {
    Ok(TermSize {
        rows: side("rows", rows, DEFAULT_SIZE.rows)?,
        cols: side("cols", cols, DEFAULT_SIZE.cols)?,
    })
}

/// The terminal a request asks for: `None` without `tty: true` (then `rows` and `cols` are
/// refused); `start` is false for `exec.run` and `exec.stream`, which refuse it.
pub fn requested(
    tty: Option<bool>,
    rows: Option<u64>,
    cols: Option<u64>,
    start: bool,
) -> Result<Option<TermSize>, Failure> {
    match tty {
        Some(true) if !start => Err(Failure::bad(
            "`tty` is for exec.start only: a terminal needs exec.read, exec.write_stdin and exec.resize (start it with exec.start, `tty: true`)",
        )),
        Some(true) => size(rows, cols).map(Some),
        _ if rows.is_some() || cols.is_some() => {
            Err(Failure::bad("`rows` and `cols` need `tty: true`"))
        }
        _ => Ok(None),
    }
}

/// The bytes `exec.write_stdin` types: `data`, then `keys` (plain bytes too, so an exec
/// without a terminal takes them as well; the cursor keys then have their normal form).
pub fn typed(exec: &Exec, mut data: Vec<u8>, keys: Option<Vec<Text>>) -> Result<Vec<u8>, Failure> {
    let Some(keys) = keys else {
        return Ok(data);
    };
    let names: Vec<&str> = keys.iter().map(|key| key.0.as_str()).collect();
    let application_cursor = exec
        .screen()
        .is_some_and(|screen| screen.application_cursor());
    let bytes = keys::encode(&names, application_cursor)
        .map_err(|err| Failure::bad(format!("`keys`: {err}")))?;
    data.extend(bytes);
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_gets_a_usable_term() {
        let quiet = vec!["PAGER=cat".to_owned(), "TERM=dumb".to_owned()];
        assert_eq!(defaults(quiet.clone(), false), quiet);
        assert_eq!(
            defaults(quiet, true),
            ["PAGER=cat".to_owned(), "TERM=xterm-256color".to_owned()]
        );
    }

    #[test]
    fn sizes_are_checked_and_default_to_24_by_80() {
        let message = |result: Result<Option<TermSize>, Failure>| result.unwrap_err().message;
        assert_eq!(
            requested(Some(true), None, None, true).unwrap(),
            Some(TermSize { rows: 24, cols: 80 })
        );
        assert_eq!(
            requested(Some(true), Some(40), Some(120), true).unwrap(),
            Some(TermSize {
                rows: 40,
                cols: 120
            })
        );
        assert_eq!(requested(Some(false), None, None, false).unwrap(), None);
        assert_eq!(requested(None, None, None, true).unwrap(), None);
        insta::assert_snapshot!(message(requested(Some(true), Some(0), None, true)), @"`rows` must be from 1 to 1000");
        insta::assert_snapshot!(message(requested(Some(true), None, Some(70_000), true)), @"`cols` must be from 1 to 1000");
        insta::assert_snapshot!(message(requested(None, Some(30), None, true)), @"`rows` and `cols` need `tty: true`");
        insta::assert_snapshot!(message(requested(Some(true), None, None, false)), @"`tty` is for exec.start only: a terminal needs exec.read, exec.write_stdin and exec.resize (start it with exec.start, `tty: true`)");
    }
}
