//! Reading a located config file as JSONC (section 3.2 of the reference notes).
//!
//! Comments, trailing commas and a UTF-8 BOM are accepted. Unlike the reference, which silently
//! uses whatever a broken file parses to, a syntax error is reported with its line and column; a
//! missing file is reported under its own name, and a file that is not a regular one, or is larger
//! than [`MAX_CONFIG`], is refused before it is read.

use std::path::Path;

use jsonc_parser::ParseOptions;
use serde_json::Value;

use super::{ConfigError, Located, Object};

/// The largest config file read (a real one is a few KiB; the parsed value takes many times
/// the text's size in memory).
pub const MAX_CONFIG: u64 = 16 * 1024 * 1024;

/// Reads and parses the file `located` points at. `Ok(None)` when there is nothing to read
/// (no `--config`, no `--override-config` and no workspace).
pub fn read(located: &Located) -> Result<Option<Object>, ConfigError> {
    let Some(path) = located.read_path.as_deref() else {
        return Ok(None);
    };
    let not_found = || ConfigError::NotFound {
        path: path.to_path_buf(),
    };
    // A fifo or a device is refused before it is opened (opening a fifo waits for a writer).
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Err(not_found()),
        Ok(meta) if !meta.is_file() => {
            return Err(ConfigError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        Ok(meta) if meta.len() > MAX_CONFIG => {
            return Err(ConfigError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        Ok(_) => {}
        Err(_) => return Err(not_found()),
    }
    // Any read error (no permission) and an empty file count as "not found", as they do for
    // the reference. At most the limit is read, whatever the file does meanwhile.
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|file| {
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_CONFIG + 1), &mut bytes)
    });
    match read {
        Ok(_) if bytes.len() as u64 > MAX_CONFIG => {
            return Err(ConfigError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        Ok(_) if !bytes.is_empty() => {}
        _ => return Err(not_found()),
    }
    parse(path, &String::from_utf8_lossy(&bytes)).map(Some)
}

/// Parses JSONC text that must hold an object. `path` is only used in messages.
pub fn parse(path: &Path, text: &str) -> Result<Object, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let options = ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    };
    let value: Value =
        jsonc_parser::parse_to_serde_value(text, &options).map_err(|err| ConfigError::Syntax {
            path: path.to_path_buf(),
            line: err.line_display(),
            column: err.column_display(),
            message: err.kind().to_string(),
        })?;
    match value {
        Value::Object(object) => Ok(object),
        _ => Err(ConfigError::NotAnObject {
            path: path.to_path_buf(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::locate;
    use std::fs;
    use std::path::PathBuf;

    fn parse_ok(text: &str) -> Value {
        Value::Object(parse(Path::new("/c.json"), text).unwrap())
    }

    fn parse_err(text: &str) -> String {
        parse(Path::new("/w/devcontainer.json"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn jsonc_comments_trailing_commas_and_bom() {
        let text = "\u{feff}// leading\n{\n  /* block */ \"image\": \"x\", // tail\n  \"a\": [1, 2,],\n}\n";
        assert_eq!(
            parse_ok(text),
            serde_json::json!({"image": "x", "a": [1, 2]})
        );
    }

    #[test]
    fn standard_json_escapes_and_numbers() {
        let value = parse_ok(r#"{"s": "\u0041\/\n\"", "big": 12345678901234567890, "f": -1.5e3}"#);
        assert_eq!(
            value,
            serde_json::json!({"s": "A/\n\"", "big": 12345678901234567890u64, "f": -1500.0})
        );
    }

    #[test]
    fn keys_keep_their_order_and_a_duplicate_keeps_its_first_place() {
        let value = parse_ok(r#"{"b": 1, "a": 2, "b": 3}"#);
        let keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["b", "a"]);
        assert_eq!(value["b"], 3);
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        insta::assert_snapshot!(
            parse_err("{ \"image\": \"x\" garbage"),
            @"Dev container config (/w/devcontainer.json) has a syntax error at line 1, column 15: Expected comma"
        );
        insta::assert_snapshot!(
            parse_err("{\n  \"a\": 1\n  \"b\": 2\n}"),
            @"Dev container config (/w/devcontainer.json) has a syntax error at line 2, column 9: Expected comma"
        );
        insta::assert_snapshot!(
            parse_err("{\"a\": 'x'}"),
            @"Dev container config (/w/devcontainer.json) has a syntax error at line 1, column 7: Single-quoted strings are not allowed"
        );
        insta::assert_snapshot!(
            parse_err("{\"a\": 1"),
            @"Dev container config (/w/devcontainer.json) has a syntax error at line 1, column 8: Unterminated object"
        );
    }

    #[test]
    fn anything_but_an_object_is_rejected() {
        insta::assert_snapshot!(
            parse_err("[]"),
            @"Dev container config (/w/devcontainer.json) must contain a JSON object literal."
        );
        for text in ["  \n", "// only a comment", "1", "\"s\"", "null", "false"] {
            assert_eq!(parse_err(text), parse_err("[]"), "{text:?}");
        }
    }

    fn located(read: &Path) -> Located {
        Located {
            read_path: Some(read.to_path_buf()),
            config_path: Some(PathBuf::from("/elsewhere/devcontainer.json")),
            ..Located::default()
        }
    }

    #[test]
    fn nothing_to_read() {
        assert!(read(&Located::default()).unwrap().is_none());
    }

    #[test]
    fn missing_empty_and_directory_are_not_found_under_their_own_name() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        let err = read(&located(&missing)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Dev container config ({}) not found.", missing.display())
        );

        let empty = dir.path().join(".devcontainer.json");
        fs::write(&empty, "").unwrap();
        let located_empty = locate::locate(dir.path(), Some(dir.path()), None, None);
        assert_eq!(located_empty.read_path.as_ref(), Some(&empty));
        let err = read(&located_empty).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Dev container config ({}) not found.", empty.display())
        );

        let err = read(&located(dir.path())).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Dev container config ({}) not found.", dir.path().display())
        );
    }

    #[test]
    fn reads_the_override_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("override.json");
        fs::write(&file, "{\"remoteUser\": \"u\",}").unwrap();
        let object = read(&located(&file)).unwrap().unwrap();
        assert_eq!(object["remoteUser"], "u");
    }
}
