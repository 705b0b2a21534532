//! The text a model reads of each tool's result, from the typed answers.
//!
//! The exit state comes first, then each stream's output with its byte count. What a model reads
//! is always text within a budget ([`Shape`]): bytes that are not UTF-8 show as U+FFFD (counted),
//! colours and `\r`-redrawn frames are cleaned away unless raw output was asked for, and output
//! over the budget keeps its start and end around one marker line that names the whole size and
//! where the whole can be read.

use crate::agent::envelope::{Data, Envelope, Output, ReadAnswer, Shown, State};
use crate::agent::text;

/// The characters of output a result shows unless the call says otherwise.
pub const DEFAULT_BUDGET: usize = 30_000;

/// How a result's output is shown.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Characters of output, both streams together.
    pub budget: usize,
    /// Show escapes and `\r` frames as they came.
    pub raw: bool,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            budget: DEFAULT_BUDGET,
            raw: false,
        }
    }
}

/// Where each stream's whole output can be read, for the marker of one that is cut.
#[derive(Debug, Clone, Default)]
pub struct Whole {
    pub exec_id: String,
    /// The files in the container holding stdout and stderr whole.
    pub files: [Option<String>; 2],
}

/// The signal whose death gives code 128+N, by name.
fn signal_number(name: &str) -> Option<i32> {
    (1..=31).find(|number| crate::engine::signal_name(*number) == Some(name))
}

/// An exec's state as a sentence start.
fn state(envelope: &Envelope) -> String {
    let mut text = match &envelope.state {
        State::Exited(Some(code)) => format!("exited with code {code}"),
        State::Exited(None) => "exited with code null".to_owned(),
        // The engines give 128+N for a death by signal N, and a program may exit with it too.
        State::Signaled(Some(name)) => match signal_number(name) {
            Some(number) => format!(
                "exited with code {} (the code a death by SIG{name} also gives)",
                128 + number
            ),
            None => format!("ended by signal {name}"),
        },
        State::Signaled(None) => "ended by a signal".to_owned(),
        State::TimedOut => "timed out (the process group was killed)".to_owned(),
        State::Cancelled => "cancelled (the process group was stopped)".to_owned(),
        State::FailedToStart(message) => format!("failed to start: {message}"),
        State::EngineLost(message) => {
            format!("lost: the engine went away after it started (it may still run): {message}")
        }
        State::Running => "still running".to_owned(),
    };
    if let Some(ms) = envelope.duration_ms {
        text.push_str(&format!(" after {ms} ms"));
    }
    text.push('\n');
    text
}

/// One stream's text as shown: its parts around a cut, cleaned unless raw; and the count of
/// bytes shown as U+FFFD.
fn parts(shown: &Shown, shape: Shape) -> (String, Option<String>, u64) {
    let clean = |part: String| if shape.raw { part } else { text::clean(&part) };
    let (whole, replaced) = shown.data.text();
    match (&shown.cut, &shown.data) {
        (Some(cut), Data::Text(full)) => (
            clean(full[..cut.start].to_owned()),
            Some(clean(full[cut.end..].to_owned())),
            0,
        ),
        (Some(cut), Data::Bytes(bytes)) => {
            let (head, a) = text::lossy(&bytes[..cut.start]);
            let (tail, b) = text::lossy(&bytes[cut.start..]);
            (clean(head), Some(clean(tail)), a + b)
        }
        (None, _) => (clean(whole.into_owned()), None, replaced),
    }
}

/// Each stream's share of the budget: what it needs, the rest to the other.
fn shares(needs: [usize; 2], budget: usize) -> [usize; 2] {
    if needs[0] + needs[1] <= budget {
        return needs;
    }
    let half = budget / 2;
    match (needs[0] < half, needs[1] < half) {
        (true, _) => [needs[0], budget - needs[0]],
        (_, true) => [budget - needs[1], needs[1]],
        _ => [budget - half, half],
    }
}

/// A result's two streams as text (head, tail of a cut, bytes shown as U+FFFD) and each one's
/// share of the budget: computed once, then asked which streams it cuts and rendered.
pub struct Layout {
    parts: [(String, Option<String>, u64); 2],
    needs: [usize; 2],
    shares: [usize; 2],
}

/// The layout of `envelope`'s kept output in `shape` (none for an envelope without output).
pub fn layout(envelope: &Envelope, shape: Shape) -> Option<Layout> {
    let Output::Kept { stdout, stderr } = &envelope.output else {
        return None;
    };
    let parts = [parts(stdout, shape), parts(stderr, shape)];
    let needs = parts.each_ref().map(|(head, tail, _)| {
        head.chars().count() + tail.as_ref().map_or(0, |tail| tail.chars().count())
    });
    let budget = shape.budget.saturating_sub(RESERVE).max(shape.budget / 2);
    let shares = shares(needs, budget);
    Some(Layout {
        parts,
        needs,
        shares,
    })
}

impl Layout {
    /// Which streams it shows cut (their whole is then worth keeping).
    pub fn cut(&self) -> [bool; 2] {
        [0, 1].map(|index| self.parts[index].1.is_some() || self.needs[index] > self.shares[index])
    }
}

/// Room kept in the budget for the state line, the stream headers and the markers.
const RESERVE: usize = 600;

/// A stream's text as shown (within `room`, with the marker of a cut).
fn stream_text(
    name: &str,
    (head, tail): (String, Option<String>),
    bytes: u64,
    room: usize,
    whole: Option<&str>,
    exec_id: &str,
) -> String {
    let marker = |cut: text::Cut| {
        let where_ = match whole {
            Some(path) => format!("the whole {name} is in the container at {path}"),
            None => format!(
                "read it by byte offsets with read_output (exec_id {exec_id}{})",
                if name == "stderr" {
                    ", stderr_offset"
                } else {
                    ", offset"
                }
            ),
        };
        format!(
            "[… {name} is {bytes} bytes in all; shown: the first {} and the last {} characters; {where_} …]",
            cut.head, cut.tail
        )
    };
    match tail {
        Some(tail) => text::join(&head, &tail, room, marker),
        None => text::fit(&head, room, marker),
    }
}

/// A result as a model reads it: the whole text, and each stream's part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub streams: [String; 2],
}

/// A finished (or running) command's result, within the budget its layout was made for (see
/// [`layout`]).
pub fn laid_out(envelope: &Envelope, layout: Option<Layout>, whole: &Whole) -> Rendered {
    let mut out = envelope
        .note
        .as_ref()
        .map_or_else(String::new, |note| format!("{note}\n"));
    out.push_str(&state(envelope));
    let mut streams = [String::new(), String::new()];
    if let (Some(layout), Output::Kept { stdout, stderr }) = (layout, &envelope.output) {
        let Layout { parts, shares, .. } = layout;
        let [out_parts, err_parts] = parts;
        for (index, (name, (head, tail, replaced), shown)) in
            [("stdout", out_parts, stdout), ("stderr", err_parts, stderr)]
                .into_iter()
                .enumerate()
        {
            if shown.bytes == 0 && head.is_empty() {
                continue;
            }
            let replaced_note = match replaced {
                0 => String::new(),
                1 => "; 1 byte not UTF-8, shown as U+FFFD".to_owned(),
                n => format!("; {n} bytes not UTF-8, shown as U+FFFD"),
            };
            let text = stream_text(
                name,
                (head, tail),
                shown.bytes,
                shares[index],
                whole.files[index].as_deref(),
                &whole.exec_id,
            );
            out.push_str(&format!(
                "--- {name} ({} bytes{replaced_note}) ---\n{text}",
                shown.bytes
            ));
            if !text.ends_with('\n') {
                out.push('\n');
            }
            streams[index] = text;
        }
    }
    Rendered { text: out, streams }
}

/// New output of a background command, with the offsets to read from next.
pub fn read(read: &ReadAnswer, shape: Shape) -> String {
    let mut out = state(&read.envelope);
    let clean = |part: String| if shape.raw { part } else { text::clean(&part) };
    for (name, since) in [("stdout", &read.stdout), ("stderr", &read.stderr)] {
        let (text, replaced) = since.data.text();
        if since.data.is_empty() {
            continue;
        }
        let replaced_note = match replaced {
            0 => String::new(),
            n => format!("; {n} bytes not UTF-8, shown as U+FFFD"),
        };
        let text = clean(text.into_owned());
        out.push_str(&format!(
            "--- new {name} (up to byte {}{replaced_note}) ---\n{text}",
            since.offset
        ));
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    let skipped = match read.stdout.skipped + read.stderr.skipped {
        0 => String::new(),
        skipped => format!(" ({skipped} bytes were no longer kept)"),
    };
    match read.done {
        true => out.push_str(&format!(
            "next_offset {}, next_stderr_offset {}{skipped}\n",
            read.stdout.offset, read.stderr.offset
        )),
        false => out.push_str(&format!(
            "next_offset {}, next_stderr_offset {}{skipped}: call read_output again with them for more\n",
            read.stdout.offset, read.stderr.offset
        )),
    }
    out
}

/// Where commands run.
pub fn container(info: &crate::agent::session::SessionInfo) -> String {
    format!(
        "container {} ({}), image {}, user {}, workspace {} (in the container: {}), runtime {}, transport {}",
        info.container_name,
        info.container_id,
        info.image.as_deref().unwrap_or("unknown"),
        info.user,
        info.workspace_folder
            .as_ref()
            .map_or("none".to_owned(), |folder| folder.display().to_string()),
        info.remote_workspace_folder.as_deref().unwrap_or("none"),
        info.runtime,
        info.transport,
    ) + &match (&info.cwd, info.cwd_removed) {
        (Some(cwd), false) => format!(", current directory {cwd}"),
        (Some(cwd), true) => format!(
            ", current directory {cwd} (removed: the next command does not run and says so; the one after starts in the workspace)"
        ),
        (None, _) => String::new(),
    }
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
    use crate::agent::output::Kept;

    fn render_envelope(envelope: &Envelope, shape: Shape, whole: &Whole) -> Rendered {
        laid_out(envelope, layout(envelope, shape), whole)
    }

    fn shown(text: &str) -> Shown {
        Shown {
            data: Data::Text(text.into()),
            truncated: false,
            bytes: text.len() as u64,
            cut: None,
        }
    }

    fn finished(stdout: Shown, stderr: Shown) -> Envelope {
        Envelope {
            exec_id: "e1".into(),
            state: State::Exited(Some(3)),
            duration_ms: Some(12),
            output: Output::Kept { stdout, stderr },
            note: None,
        }
    }

    #[test]
    fn the_state_first_then_each_stream() {
        let mut kept = Kept::new(8);
        kept.push(b"a\nbcdefghijklm\nz\n");
        let envelope = finished(
            kept.shown(),
            Shown {
                data: Data::Bytes(b"bad \xff byte\n".to_vec()),
                truncated: false,
                bytes: 11,
                cut: None,
            },
        );
        let killed = Envelope {
            state: State::Signaled(Some("TERM")),
            output: Output::Kept {
                stdout: shown("\u{1b}[31mred\u{1b}[0m\r\n10%\r50%\r100%\n"),
                stderr: shown(""),
            },
            ..envelope.clone()
        };
        let read = ReadAnswer {
            envelope: Envelope {
                state: State::Running,
                duration_ms: None,
                output: Output::Counts {
                    stdout: 10,
                    stderr: 0,
                },
                note: None,
                ..envelope.clone()
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
        let whole = Whole {
            exec_id: "e1".into(),
            files: [Some("/tmp/.dcx-agent-s1/e1.stdout".into()), None],
        };
        let raw = Shape {
            raw: true,
            ..Shape::default()
        };
        insta::assert_snapshot!(format!("{}{}{}\n{}",
            render_envelope(&envelope, Shape::default(), &whole).text,
            render_envelope(&killed, Shape::default(), &Whole::default()).text,
            render_envelope(&killed, raw, &Whole::default()).text.escape_debug(),
            super::read(&read, Shape::default())), @r"
        exited with code 3 after 12 ms
        --- stdout (17 bytes) ---
        a
        bc
        [… stdout is 17 bytes in all; shown: the first 4 and the last 4 characters; the whole stdout is in the container at /tmp/.dcx-agent-s1/e1.stdout …]
        m
        z
        --- stderr (11 bytes; 1 byte not UTF-8, shown as U+FFFD) ---
        bad � byte
        exited with code 143 (the code a death by SIGTERM also gives) after 12 ms
        --- stdout (27 bytes) ---
        red
        100%
        exited with code 143 (the code a death by SIGTERM also gives) after 12 ms\n--- stdout (27 bytes) ---\n\u{1b}[31mred\u{1b}[0m\r\n10%\r50%\r100%\n
        still running
        --- new stdout (up to byte 10) ---
        tick
        next_offset 10, next_stderr_offset 0 (4 bytes were no longer kept): call read_output again with them for more
        ");
    }

    #[test]
    fn long_output_fits_the_budget_with_one_marker() {
        let seq: String = (1..=300_000).map(|n| format!("{n}\n")).collect();
        assert_eq!(seq.len(), 1_988_895);
        let mut kept = Kept::new(1024 * 1024);
        kept.push(seq.as_bytes());
        let envelope = finished(kept.shown(), shown(""));
        let shape = Shape::default();
        assert_eq!(layout(&envelope, shape).unwrap().cut(), [true, false]);
        let text = render_envelope(&envelope, shape, &Whole::default()).text;
        assert!(text.chars().count() <= 30_000, "{}", text.len());
        assert_eq!(text.matches("[… stdout is 1988895 bytes in all").count(), 1);
        assert!(text.contains("\n1\n2\n3\n"));
        assert!(text.ends_with("\n299999\n300000\n"));
        // Two long streams share the budget.
        let both = finished(shown(&seq[..100_000]), shown(&seq[..100_000]));
        let text = render_envelope(&both, shape, &Whole::default()).text;
        assert!(text.chars().count() <= 30_000, "{}", text.len());
        assert_eq!(text.matches("[… std").count(), 2);
        // A 200-frame progress bar is one line.
        let bar: String = (0..200)
            .map(|n| format!("\r{n:>3}% [{}]", "#".repeat(n / 10)))
            .collect();
        let text = render_envelope(
            &finished(shown(&format!("{bar}\n")), shown("")),
            shape,
            &Whole::default(),
        )
        .text;
        assert_eq!(text.lines().count(), 3, "{text}");
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
                note: None,
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
