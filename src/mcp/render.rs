//! The text a model reads of each tool's result, from the typed answers.
//!
//! The exit state comes first, then each stream's output with its byte count; output that is
//! not UTF-8 is pointed at (base64 in the structured result), truncation said with the total.

use crate::agent::envelope::{Data, Envelope, Output, ReadAnswer, State};

/// An exec's state as a sentence start.
fn state(envelope: &Envelope) -> String {
    let mut text = match &envelope.state {
        State::Exited(Some(code)) => format!("exited with code {code}"),
        State::Exited(None) => "exited with code null".to_owned(),
        State::Signaled(signal) => format!("killed by signal {}", signal.unwrap_or("?")),
        State::TimedOut => "timed out (the process group was killed)".to_owned(),
        State::Cancelled => "cancelled".to_owned(),
        State::FailedToStart(message) => format!("failed to start: {message}"),
        State::Running => "still running".to_owned(),
    };
    if let Some(ms) = envelope.duration_ms {
        text.push_str(&format!(" after {ms} ms"));
    }
    text.push('\n');
    text
}

/// One stream's block: `--- stdout (N bytes) ---` and its text.
fn stream(text: &mut String, name: &str, data: &Data, bytes: u64, truncated: bool) {
    match data {
        Data::Text(output) if output.is_empty() && bytes == 0 => {}
        Data::Text(output) => {
            text.push_str(&format!("--- {name} ({bytes} bytes) ---\n{output}"));
            if !output.ends_with('\n') {
                text.push('\n');
            }
        }
        Data::Bytes(_) => text.push_str(&format!(
            "--- {name} ({bytes} bytes, not UTF-8: base64 in the structured result) ---\n"
        )),
    }
    if truncated {
        text.push_str(&format!(
            "[{name} truncated: {bytes} bytes in all; the start and the end are shown]\n"
        ));
    }
}

/// A finished (or running) command's result.
pub fn envelope(envelope: &Envelope) -> String {
    let mut text = state(envelope);
    if let Output::Kept { stdout, stderr } = &envelope.output {
        stream(
            &mut text,
            "stdout",
            &stdout.data,
            stdout.bytes,
            stdout.truncated,
        );
        stream(
            &mut text,
            "stderr",
            &stderr.data,
            stderr.bytes,
            stderr.truncated,
        );
    }
    text
}

/// New output of a background command, with the offsets to read from next.
pub fn read(read: &ReadAnswer) -> String {
    let mut text = state(&read.envelope);
    let (stdout_bytes, stderr_bytes) = read.envelope.bytes().unwrap_or_default();
    stream(&mut text, "stdout", &read.stdout.data, stdout_bytes, false);
    stream(&mut text, "stderr", &read.stderr.data, stderr_bytes, false);
    text.push_str(&format!(
        "next_offset {}, next_stderr_offset {}{}\n",
        read.stdout.offset,
        read.stderr.offset,
        match read.stdout.skipped {
            0 => String::new(),
            skipped => format!(" ({skipped} bytes of stdout were no longer kept)"),
        }
    ));
    text
}

/// Where commands run.
pub fn container(info: &super::commands::ContainerInfo) -> String {
    format!(
        "container {} ({}), image {}, user {}, workspace {} (in the container: {}), runtime {}",
        info.container_name,
        info.container_id,
        info.image.as_deref().unwrap_or("unknown"),
        info.remote_user,
        info.workspace_folder
            .as_ref()
            .map_or("none".to_owned(), |folder| folder.display().to_string()),
        info.remote_workspace_folder.as_deref().unwrap_or("none"),
        info.runtime,
    )
}

/// New output of a PTY-mode command: its screen as it is now (the raw terminal stream is in
/// the structured result), with the offsets to read from next.
pub fn screen(read: &ReadAnswer, shot: &crate::agent::screen::Shot) -> String {
    let mut text = state(&read.envelope);
    text.push_str(&format!(
        "--- screen ({}x{}, cursor at row {}, column {}) ---\n{}",
        shot.rows_n,
        shot.cols_n,
        shot.cursor.row,
        shot.cursor.col,
        shot.text()
    ));
    text.push_str(&format!("next_offset {}\n", read.stdout.offset));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::envelope::{Shown, Since};

    fn shown(text: &str, truncated: bool, bytes: u64) -> Shown {
        Shown {
            data: Data::Text(text.into()),
            truncated,
            bytes,
        }
    }

    #[test]
    fn the_state_first_then_each_stream() {
        let finished = Envelope {
            exec_id: "e1".into(),
            state: State::Exited(Some(3)),
            duration_ms: Some(12),
            output: Output::Kept {
                stdout: shown("a\n[… 5 bytes left out …]\nz", true, 9),
                stderr: Shown {
                    data: Data::Bytes(vec![0xff]),
                    truncated: false,
                    bytes: 1,
                },
            },
        };
        let killed = Envelope {
            state: State::Signaled(Some("TERM")),
            output: Output::Kept {
                stdout: shown("", false, 0),
                stderr: shown("", false, 0),
            },
            ..finished.clone()
        };
        let read = ReadAnswer {
            envelope: Envelope {
                state: State::Running,
                duration_ms: None,
                output: Output::Counts {
                    stdout: 10,
                    stderr: 0,
                },
                ..finished.clone()
            },
            stdout: Since {
                data: Data::Text("tick\n".into()),
                skipped: 4,
                offset: 10,
            },
            stderr: Since {
                data: Data::Text(String::new()),
                skipped: 0,
                offset: 0,
            },
            done: false,
            screen: None,
        };
        insta::assert_snapshot!(format!("{}{}{}", envelope(&finished), envelope(&killed), super::read(&read)), @r"
        exited with code 3 after 12 ms
        --- stdout (9 bytes) ---
        a
        [… 5 bytes left out …]
        z
        [stdout truncated: 9 bytes in all; the start and the end are shown]
        --- stderr (1 bytes, not UTF-8: base64 in the structured result) ---
        killed by signal TERM after 12 ms
        still running
        --- stdout (10 bytes) ---
        tick
        next_offset 10, next_stderr_offset 0 (4 bytes of stdout were no longer kept)
        ");
    }

    #[test]
    fn a_terminal_s_read_shows_its_screen() {
        let screen =
            crate::agent::screen::Screen::new(crate::engine::TermSize { rows: 4, cols: 10 });
        let stream = b"\x1b[?2004h>>> 6*7\r\n42\r\n>>> ";
        screen.feed(stream);
        let since = |bytes: &[u8], offset: u64| Since {
            data: Data::new(bytes),
            skipped: 0,
            offset,
        };
        let read = ReadAnswer {
            envelope: Envelope {
                exec_id: "e1".into(),
                state: State::Running,
                duration_ms: None,
                output: Output::Counts {
                    stdout: stream.len() as u64,
                    stderr: 0,
                },
            },
            stdout: since(stream, stream.len() as u64),
            stderr: since(b"", 0),
            done: false,
            screen: Some(screen.shot()),
        };
        insta::assert_snapshot!(super::screen(&read, read.screen.as_ref().unwrap()), @r"
        still running
        --- screen (4x10, cursor at row 2, column 4) ---
        >>> 6*7
        42
        >>>
        next_offset 25
        ");
    }
}
