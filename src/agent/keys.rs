//! The named keys `exec.write_stdin` types into a terminal: tmux-like names to the bytes a
//! terminal sends.
//!
//! A key is a name (`Enter`, `Esc`, `Up`, `F5`, `PageDown`…, matched without regard to case), a
//! control chord (`C-c`, `C-d`, `C-Space`, `C-[`…), a meta chord (`M-x`: Escape, then the key), or
//! one character standing for itself (`q`, `:`). The cursor keys (and Home/End) send the
//! application form (`ESC O A`) when the program has asked for it (DECCKM, as `vi` and `less`
//! do), else the normal form (`ESC [ A`), as a terminal would. Anything else is an
//! [`UnknownKey`], named in the error.

/// A key name the table does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown key `{0}` (keys are names like Enter, Esc, Tab, Backspace, Up, Down, Left, Right, Home, End, PageUp, PageDown, Delete, F1-F12, Space, chords like C-c or M-x, or one character)"
)]
pub struct UnknownKey(pub String);

/// The bytes of `keys`, in order; `application_cursor`: the program asked for the cursor
/// keys' application form.
pub fn encode<S: AsRef<str>>(keys: &[S], application_cursor: bool) -> Result<Vec<u8>, UnknownKey> {
    let mut bytes = Vec::new();
    for key in keys {
        let key = key.as_ref();
        bytes.extend(one(key, application_cursor).ok_or_else(|| UnknownKey(key.to_owned()))?);
    }
    Ok(bytes)
}

/// One key's bytes.
fn one(key: &str, application_cursor: bool) -> Option<Vec<u8>> {
    let mut chars = key.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return Some(c.to_string().into_bytes());
    }
    if let Some(rest) = strip_prefix_ci(key, "M-") {
        let mut bytes = vec![0x1b];
        bytes.extend(one(rest, application_cursor)?);
        return Some(bytes);
    }
    if let Some(rest) = strip_prefix_ci(key, "C-") {
        return control(rest).map(|byte| vec![byte]);
    }
    let cursor = |last: u8| match application_cursor {
        true => vec![0x1b, b'O', last],
        false => vec![0x1b, b'[', last],
    };
    let csi = |text: &str| [b"\x1b[", text.as_bytes()].concat();
    let ss3 = |last: u8| vec![0x1b, b'O', last];
    Some(match key.to_ascii_lowercase().as_str() {
        "enter" | "return" | "cr" => vec![b'\r'],
        "lf" | "linefeed" => vec![b'\n'],
        "tab" => vec![b'\t'],
        "btab" | "backtab" | "s-tab" => csi("Z"),
        "esc" | "escape" => vec![0x1b],
        "space" => vec![b' '],
        "bspace" | "backspace" | "bs" => vec![0x7f],
        "up" => cursor(b'A'),
        "down" => cursor(b'B'),
        "right" => cursor(b'C'),
        "left" => cursor(b'D'),
        "home" => cursor(b'H'),
        "end" => cursor(b'F'),
        "insert" | "ic" => csi("2~"),
        "delete" | "dc" | "del" => csi("3~"),
        "pageup" | "pgup" | "ppage" => csi("5~"),
        "pagedown" | "pgdn" | "npage" => csi("6~"),
        "f1" => ss3(b'P'),
        "f2" => ss3(b'Q'),
        "f3" => ss3(b'R'),
        "f4" => ss3(b'S'),
        "f5" => csi("15~"),
        "f6" => csi("17~"),
        "f7" => csi("18~"),
        "f8" => csi("19~"),
        "f9" => csi("20~"),
        "f10" => csi("21~"),
        "f11" => csi("23~"),
        "f12" => csi("24~"),
        _ => return None,
    })
}

/// The byte of a control chord (`C-c` is 0x03, `C-Space` and `C-@` NUL, `C-?` DEL).
fn control(key: &str) -> Option<u8> {
    if key.eq_ignore_ascii_case("space") {
        return Some(0);
    }
    let mut chars = key.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return None;
    };
    match c {
        'a'..='z' => Some(c as u8 - b'a' + 1),
        'A'..='Z' => Some(c as u8 - b'A' + 1),
        '@' | '2' | ' ' => Some(0),
        '[' | '3' => Some(0x1b),
        '\\' | '4' => Some(0x1c),
        ']' | '5' => Some(0x1d),
        '^' | '6' => Some(0x1e),
        '_' | '7' | '/' => Some(0x1f),
        '?' | '8' => Some(0x7f),
        _ => None,
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    let rest = &text[prefix.len()..];
    (head.eq_ignore_ascii_case(prefix) && !rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<u8> {
        encode(names, false).unwrap()
    }

    #[test]
    fn names_chords_and_characters() {
        assert_eq!(keys(&["C-c", "C-d", "c-Z"]), b"\x03\x04\x1a");
        assert_eq!(
            keys(&["Enter", "Tab", "Esc", "Escape", "BSpace"]),
            b"\r\t\x1b\x1b\x7f"
        );
        assert_eq!(
            keys(&["Backspace", "Space", "enter", "ENTER"]),
            b"\x7f \r\r"
        );
        assert_eq!(
            keys(&["i", "é", ":", "C-Space", "C-["]),
            "ié:\0\x1b".as_bytes()
        );
        assert_eq!(keys(&["M-x", "M-Enter", "M-C-c"]), b"\x1bx\x1b\r\x1b\x03");
        assert_eq!(
            keys(&["PageUp", "NPage", "Delete", "BTab"]),
            b"\x1b[5~\x1b[6~\x1b[3~\x1b[Z"
        );
        assert_eq!(keys(&["F1", "F5", "F12"]), b"\x1bOP\x1b[15~\x1b[24~");
        assert_eq!(keys(&[] as &[&str]), b"");
    }

    #[test]
    fn cursor_keys_follow_the_program_s_mode() {
        assert_eq!(
            keys(&["Up", "Down", "Right", "Left"]),
            b"\x1b[A\x1b[B\x1b[C\x1b[D"
        );
        assert_eq!(
            encode(&["Up", "Left", "Home"], true).unwrap(),
            b"\x1bOA\x1bOD\x1bOH"
        );
    }

    #[test]
    fn an_unknown_key_is_named() {
        assert_eq!(
            encode(&["Enter", "Sup"], false),
            Err(UnknownKey("Sup".into()))
        );
        for bad in ["", "C-", "C-cc", "M-", "M-Nope", "F13", "C-é"] {
            assert_eq!(encode(&[bad], false), Err(UnknownKey(bad.into())), "{bad}");
        }
        assert!(
            UnknownKey("Sup".into())
                .to_string()
                .starts_with("unknown key `Sup` (")
        );
    }
}
