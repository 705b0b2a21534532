//! The file tools: `read_file`, `write_file`, `edit_file` and `list_directory`, and how what
//! they answer is laid out for a model.
//!
//! Each is a call of the agent's typed file methods ([`crate::agent::methods::fs`]): paths are
//! absolute or start from the session's current directory, links are followed inside the
//! container, and through the in-container helper everything runs as the session's user.
//! `read_file` shows numbered lines (`cat -n`'s layout: the number, a tab, the line) within a
//! character budget, saying in a last line in brackets what was left out and how to read on;
//! `edit_file` replaces exact text and answers with a unified diff. Every tool returns its data
//! as structured content (checked against its `outputSchema`) and the text a model reads.

use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{ErrorData, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DevContainer, outcome, structured};
use crate::agent::envelope::Data;
use crate::agent::methods::fs::{self, MAX_ENTRIES, MAX_FILE};
use crate::agent::params::Text;
use crate::agent::protocol::Failure;

/// `read_file`'s default output budget, in characters.
const READ_BUDGET: usize = 30_000;
/// The largest budget `read_file` takes.
const MAX_READ_BUDGET: usize = 200_000;
/// The smallest budget `read_file` takes (room for a few lines and the marker).
const MIN_READ_BUDGET: usize = 500;
/// `list_directory`'s default count of entries.
const LIST_ENTRIES: usize = 1_000;
/// Lines of context around each change in `edit_file`'s diff.
const DIFF_CONTEXT: usize = 3;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadFile {
    /// The file: absolute, or relative to the session's current directory.
    pub path: String,
    /// The first line to show (1 is the first line of the file).
    pub offset: Option<u64>,
    /// How many lines to show from `offset` (default: to the end, within the budget).
    pub limit: Option<u64>,
    /// Show only the first N lines (instead of offset/limit).
    pub head: Option<u64>,
    /// Show only the last N lines (instead of offset/limit).
    pub tail: Option<u64>,
    /// The most characters to return (default 30000, from 500 to 200000).
    pub max_chars: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct WriteFile {
    /// The file: absolute, or relative to the session's current directory. Missing parent
    /// folders are created.
    pub path: String,
    /// The file's whole new content (UTF-8 text).
    pub content: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EditFile {
    /// The file: absolute, or relative to the session's current directory.
    pub path: String,
    /// The exact text to replace (whitespace and line ends included); it must occur exactly
    /// once unless `replace_all` is true.
    pub old_text: String,
    /// The text to put in its place.
    pub new_text: String,
    /// Replace every occurrence instead of refusing when there are several.
    pub replace_all: Option<bool>,
    /// Only show the diff; change nothing.
    pub dry_run: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListDirectory {
    /// The folder: absolute, or relative to the session's current directory (default: that
    /// directory).
    pub path: Option<String>,
    /// The most entries to return (default 1000, at most 10000).
    pub max_entries: Option<usize>,
}

/// `read_file`'s answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReadFileOutput {
    /// The file, absolute.
    pub path: String,
    /// The file's size in bytes.
    pub size: u64,
    /// The file's lines; absent for a file too large to count them in one read.
    pub total_lines: Option<u64>,
    /// The first line shown (1-based), 0 when none is.
    pub first_line: u64,
    /// The last line shown, 0 when none is.
    pub last_line: u64,
    /// The lines shown, without numbers, as in the file (a cut last line ends early).
    pub content: String,
    /// Whether lines were left out after the last one shown.
    pub truncated: bool,
    /// The `offset` that reads on after the last line shown.
    pub next_offset: Option<u64>,
    /// Invalid UTF-8 sequences shown as U+FFFD.
    pub invalid_utf8: u64,
}

/// `write_file`'s answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WriteFileOutput {
    /// The file written, absolute.
    pub path: String,
    pub bytes_written: u64,
    /// The file's mode, octal (`"0644"`).
    pub mode: String,
}

/// `edit_file`'s answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EditFileOutput {
    /// The file, absolute.
    pub path: String,
    /// How many occurrences were (or, in a dry run, would be) replaced.
    pub replacements: u64,
    /// True when nothing was written.
    pub dry_run: bool,
    /// The change as a unified diff.
    pub diff: String,
    /// Bytes of the file as written (absent in a dry run).
    pub bytes_written: Option<u64>,
}

/// One entry of `list_directory`'s answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Entry {
    pub name: String,
    /// `file`, `directory`, `symlink` or `other`.
    pub kind: String,
    /// Bytes (a symlink's own size).
    pub size: u64,
    /// Where a symlink points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
}

/// `list_directory`'s answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListDirectoryOutput {
    /// The folder, absolute.
    pub path: String,
    /// The entries shown, sorted by name.
    pub entries: Vec<Entry>,
    /// How many entries the folder has.
    pub total: u64,
    /// Whether entries were left out.
    pub truncated: bool,
}

#[tool_router(router = files, vis = "pub(super)")]
impl DevContainer {
    #[tool(
        description = "Read a text file in the dev container. The answer shows numbered lines (line number, a tab, then the line as in the file; the numbers are not part of the file). By default the whole file, within 30000 characters: a last line in brackets says what was left out and which `offset` reads on. Pick lines with `offset` (first line, 1-based) and `limit` (count), or `head`/`tail` (first or last N lines). Bytes that are not UTF-8 show as U+FFFD and are counted. Relative paths start from the session's current directory.",
        output_schema = schema_for_output::<ReadFileOutput>(),
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn read_file(
        &self,
        Parameters(params): Parameters<ReadFile>,
    ) -> Result<CallToolResult, ErrorData> {
        let answer = async {
            let range = Range::of(&params)?;
            let budget = params.max_chars.unwrap_or(READ_BUDGET);
            if !(MIN_READ_BUDGET..=MAX_READ_BUDGET).contains(&budget) {
                return Err(Failure::bad(format!(
                    "`max_chars` must be between {MIN_READ_BUDGET} and {MAX_READ_BUDGET}"
                )));
            }
            let session_id = self.session().await?;
            let read = fs::read(
                &self.service,
                fs::ReadParams {
                    session_id: Text(session_id),
                    path: Some(path_text(&params.path)?),
                    path_b64: None,
                    offset: None,
                    length: Some(MAX_FILE),
                },
            )
            .await?;
            let path = read.stat.path.clone().unwrap_or_default();
            let size = read.stat.size;
            let whole = read.eof;
            if !whole && matches!(range, Range::Tail(_)) {
                return Err(Failure::bad(format!(
                    "{path} is {size} bytes: `tail` reads files up to {MAX_FILE} bytes; use run_command (tail -n N) instead"
                )));
            }
            let (text, invalid) = lossy(&data_bytes(read.data));
            let lines = Lines::new(&text);
            let shown = show(&lines, range, budget, whole)?;
            Ok(ReadFileOutput {
                path,
                size,
                total_lines: whole.then_some(lines.count() as u64),
                first_line: shown.first,
                last_line: shown.last,
                content: shown.content,
                truncated: shown.next.is_some(),
                next_offset: shown.next,
                invalid_utf8: invalid,
            })
            .map(|output| (output, shown.text))
        };
        outcome(answer.await, |(output, text)| {
            let text = read_text(&output, &text);
            structured(&output, text)
        })
    }

    #[tool(
        description = "Write a whole file in the dev container: creates it, or replaces its content in one step (other readers see the old or the new file, never a mix). Missing parent folders are created. A replaced file keeps its mode; a new one gets 0644. The file belongs to the dev container's user, and its modification time is the real time, so build tools see it as new. Use edit_file to change part of a file. Relative paths start from the session's current directory.",
        output_schema = schema_for_output::<WriteFileOutput>(),
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn write_file(
        &self,
        Parameters(params): Parameters<WriteFile>,
    ) -> Result<CallToolResult, ErrorData> {
        let answer = async {
            let bytes = params.content.len() as u64;
            let stat = self.write(&params.path, params.content).await?;
            Ok(WriteFileOutput {
                path: stat.path.unwrap_or_default(),
                bytes_written: bytes,
                mode: stat.mode,
            })
        };
        outcome(answer.await, |output| {
            let text = format!(
                "wrote {} bytes to {} (mode {})",
                output.bytes_written, output.path, output.mode
            );
            structured(&output, text)
        })
    }

    #[tool(
        description = "Edit a text file in the dev container by exact replacement: `old_text` (copied exactly, whitespace and indentation included, without read_file's line numbers) becomes `new_text`. Refused, changing nothing, when `old_text` is not in the file, or occurs more than once and `replace_all` is not true (the answer says how many times: add surrounding lines to make it unique). Answers with a unified diff of the change; `dry_run: true` only shows the diff. The file keeps its mode. Relative paths start from the session's current directory.",
        output_schema = schema_for_output::<EditFileOutput>(),
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn edit_file(
        &self,
        Parameters(params): Parameters<EditFile>,
    ) -> Result<CallToolResult, ErrorData> {
        let answer = async {
            let session_id = self.session().await?;
            let read = fs::read(
                &self.service,
                fs::ReadParams {
                    session_id: Text(session_id),
                    path: Some(path_text(&params.path)?),
                    path_b64: None,
                    offset: None,
                    length: None,
                },
            )
            .await?;
            let path = read.stat.path.clone().unwrap_or_default();
            let Data::Text(before) = read.data else {
                return Err(Failure::bad(format!(
                    "{path} is not UTF-8 text: edit_file changes text files only (use run_command)"
                )));
            };
            let edit = replace(
                &before,
                &params.old_text,
                &params.new_text,
                params.replace_all.unwrap_or(false),
            )
            .map_err(|refusal| Failure::bad(refusal.message(&path)))?;
            let diff = unified_diff(&path, &before, &edit.text);
            let dry_run = params.dry_run.unwrap_or(false);
            let bytes_written = if dry_run {
                None
            } else {
                let bytes = edit.text.len() as u64;
                self.write(&path, edit.text).await?;
                Some(bytes)
            };
            Ok(EditFileOutput {
                path,
                replacements: edit.count as u64,
                dry_run,
                diff,
                bytes_written,
            })
        };
        outcome(answer.await, |output| {
            let text = edit_text(&output);
            structured(&output, text)
        })
    }

    #[tool(
        description = "List a folder in the dev container: each entry's name, kind (file, directory, symlink with its target, other) and size in bytes, sorted by name; at most 1000 entries unless `max_entries` says otherwise (a last line says how many were left out). Relative paths start from the session's current directory, which is also the default.",
        output_schema = schema_for_output::<ListDirectoryOutput>(),
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_directory(
        &self,
        Parameters(params): Parameters<ListDirectory>,
    ) -> Result<CallToolResult, ErrorData> {
        let answer = async {
            let max = params.max_entries.unwrap_or(LIST_ENTRIES);
            if max == 0 || max > MAX_ENTRIES {
                return Err(Failure::bad(format!(
                    "`max_entries` must be between 1 and {MAX_ENTRIES}"
                )));
            }
            let session_id = self.session().await?;
            let path = params.path.unwrap_or_else(|| ".".to_owned());
            let listing = fs::list(
                &self.service,
                fs::PathParams {
                    session_id: Text(session_id),
                    path: Some(path_text(&path)?),
                    path_b64: None,
                },
            )
            .await?;
            let total = listing.entries.len() as u64;
            let entries: Vec<Entry> = listing
                .entries
                .into_iter()
                .take(max)
                .map(|stat| Entry {
                    name: stat.name,
                    kind: kind_name(stat.kind).to_owned(),
                    size: stat.size,
                    link_target: stat.link_target,
                })
                .collect();
            Ok(ListDirectoryOutput {
                path: listing.path,
                truncated: (entries.len() as u64) < total,
                entries,
                total,
            })
        };
        outcome(answer.await, |output| {
            let text = list_text(&output);
            structured(&output, text)
        })
    }
}

impl DevContainer {
    /// Replaces the file at `path` with `content`: `fs.write`'s stat.
    async fn write(&self, path: &str, content: String) -> Result<fs::Stat, Failure> {
        let session_id = self.session().await?;
        fs::write(
            &self.service,
            fs::WriteParams {
                session_id: Text(session_id),
                path: Some(path_text(path)?),
                path_b64: None,
                data: Some(content),
                data_b64: None,
                mode: None,
                append: None,
            },
        )
        .await
    }
}

/// A path as the file methods take it (no NUL byte).
fn path_text(path: &str) -> Result<Text, Failure> {
    if path.is_empty() {
        return Err(Failure::bad("`path` is empty"));
    }
    if path.contains('\0') {
        return Err(Failure::bad("`path` holds a NUL byte"));
    }
    Ok(Text(path.to_owned()))
}

fn data_bytes(data: Data) -> Vec<u8> {
    match data {
        Data::Text(text) => text.into_bytes(),
        Data::Bytes(bytes) => bytes,
    }
}

fn kind_name(kind: crate::engine::FileKind) -> &'static str {
    use crate::engine::FileKind;
    match kind {
        FileKind::File => "file",
        FileKind::Directory => "directory",
        FileKind::Symlink => "symlink",
        FileKind::Other => "other",
    }
}

/// `bytes` as text, each invalid UTF-8 sequence as U+FFFD, and how many there were.
fn lossy(bytes: &[u8]) -> (String, u64) {
    let mut text = String::with_capacity(bytes.len());
    let mut invalid = 0;
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            text.push(char::REPLACEMENT_CHARACTER);
            invalid += 1;
        }
    }
    (text, invalid)
}

/// Which lines `read_file` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Range {
    /// From line `offset` (1-based), at most `limit` lines.
    From { offset: u64, limit: Option<u64> },
    /// The last N lines.
    Tail(u64),
}

impl Range {
    fn of(params: &ReadFile) -> Result<Self, Failure> {
        let lines = params.offset.is_some() || params.limit.is_some();
        match (params.head, params.tail) {
            (Some(_), Some(_)) => Err(Failure::bad("give `head` or `tail`, not both")),
            (Some(_), None) | (None, Some(_)) if lines => Err(Failure::bad(
                "give `offset`/`limit` or `head`/`tail`, not both",
            )),
            (Some(head), None) => Ok(Self::From {
                offset: 1,
                limit: Some(head),
            }),
            (None, Some(tail)) => Ok(Self::Tail(tail)),
            (None, None) => match params.offset {
                Some(0) => Err(Failure::bad("`offset` counts from 1 (the first line)")),
                offset => Ok(Self::From {
                    offset: offset.unwrap_or(1),
                    limit: params.limit,
                }),
            },
        }
    }
}

/// A text's lines, each with its line end.
struct Lines<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            lines: text.split_inclusive('\n').collect(),
        }
    }

    fn count(&self) -> usize {
        self.lines.len()
    }
}

/// What `read_file` shows of a file's lines.
#[derive(Debug, PartialEq, Eq)]
struct Shown {
    /// The numbered lines, then the marker line (if any).
    text: String,
    /// The lines shown, as in the file.
    content: String,
    first: u64,
    last: u64,
    /// The offset that reads on, when lines were left out after the last one.
    next: Option<u64>,
}

/// The lines `range` picks, numbered, within `budget` characters (the marker line included).
/// `whole`: the lines are the whole file (else its first part, and the last line may be cut).
fn show(lines: &Lines<'_>, range: Range, budget: usize, whole: bool) -> Result<Shown, Failure> {
    let count = lines.count();
    let (start, end) = match range {
        Range::From { offset, limit } => {
            let start = usize::try_from(offset.saturating_sub(1)).unwrap_or(usize::MAX);
            if start >= count && !(start == 0 && count == 0) {
                let size = if whole { "" } else { " that one read reaches" };
                return Err(Failure::bad(format!(
                    "`offset` {offset} is past the end: the file has {count} lines{size}"
                )));
            }
            let limit = limit.map_or(usize::MAX, |limit| {
                usize::try_from(limit).unwrap_or(usize::MAX)
            });
            (start, start.saturating_add(limit).min(count))
        }
        Range::Tail(tail) => {
            let tail = usize::try_from(tail).unwrap_or(usize::MAX);
            (count.saturating_sub(tail), count)
        }
    };
    // Room for the marker line.
    let room = budget.saturating_sub(MARKER_ROOM.min(budget / 2));
    let mut text = String::new();
    let mut content = String::new();
    let mut used = 0;
    let mut shown_end = start;
    let mut cut_line = None;
    for (index, line) in lines.lines[start..end].iter().enumerate() {
        let number = start + index + 1;
        let shown = line.strip_suffix('\n').unwrap_or(line);
        let prefix = format!("{number:>6}\t");
        let cost = prefix.len() + shown.chars().count() + 1;
        if used + cost > room {
            if index == 0 {
                // A line longer than the whole budget: its start.
                let keep = room.saturating_sub(prefix.len() + 1);
                let part: String = shown.chars().take(keep).collect();
                text.push_str(&prefix);
                text.push_str(&part);
                text.push('\n');
                content.push_str(&part);
                cut_line = Some((number, shown.chars().count(), keep));
                shown_end = start + 1;
            }
            break;
        }
        used += cost;
        text.push_str(&prefix);
        text.push_str(shown);
        text.push('\n');
        content.push_str(line);
        shown_end = start + index + 1;
    }
    let (first, last) = if shown_end > start {
        (start as u64 + 1, shown_end as u64)
    } else {
        (0, 0)
    };
    let next = (shown_end < count || !whole).then_some(shown_end as u64 + 1);
    if let Some((number, chars, kept)) = cut_line {
        text.push_str(&format!(
            "[… line {number} is {chars} characters: only its first {kept} are shown (read the rest with run_command, e.g. cut -c{}-)]\n",
            kept + 1
        ));
    } else if shown_end < end {
        let left: usize = lines.lines[shown_end..end].iter().map(|l| l.len()).sum();
        text.push_str(&format!(
            "[… lines {}–{end} ({left} bytes) left out to stay within {budget} characters; read on with offset={}]\n",
            shown_end + 1,
            shown_end + 1
        ));
    } else if shown_end < count {
        text.push_str(&format!(
            "[… {} more to the end of the file ({}); read on with offset={}]\n",
            lines_of(count - shown_end),
            lines_of(count),
            shown_end + 1
        ));
    } else if !whole {
        text.push_str(&format!(
            "[… the file is longer than the {MAX_FILE} bytes one read reaches: use run_command (sed -n) for lines past {count}]\n"
        ));
    }
    Ok(Shown {
        text,
        content,
        first,
        last,
        next,
    })
}

/// Characters kept free for the marker line (at most half the budget).
const MARKER_ROOM: usize = 200;

/// `n lines`, `1 line`.
fn lines_of(n: usize) -> String {
    if n == 1 {
        "1 line".to_owned()
    } else {
        format!("{n} lines")
    }
}

/// What a model reads of `read_file`'s answer.
fn read_text(output: &ReadFileOutput, lines: &str) -> String {
    let mut text = String::new();
    if output.size == 0 {
        text.push_str(&format!("{} is empty\n", output.path));
    } else {
        text.push_str(lines);
    }
    if output.invalid_utf8 > 0 {
        text.push_str(&format!(
            "[{} byte sequences that are not UTF-8 are shown as U+FFFD]\n",
            output.invalid_utf8
        ));
    }
    text
}

/// An exact replacement's result.
#[derive(Debug, PartialEq, Eq)]
struct Edit {
    text: String,
    count: usize,
}

/// Why an edit changes nothing.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    EmptyOld,
    Same,
    NotFound { crlf: bool },
    Ambiguous(usize),
}

impl Refusal {
    fn message(&self, path: &str) -> String {
        match self {
            Self::EmptyOld => "`old_text` is empty: give the exact text to replace".to_owned(),
            Self::Same => "`old_text` and `new_text` are the same: nothing to change".to_owned(),
            Self::NotFound { crlf } => {
                let hint = if *crlf {
                    " (the file's lines end in CRLF: include the \\r)"
                } else {
                    " (it must match exactly, whitespace included; read_file shows the text)"
                };
                format!("`old_text` was not found in {path}{hint}; nothing changed")
            }
            Self::Ambiguous(count) => format!(
                "`old_text` occurs {count} times in {path}: add surrounding lines to make it unique, or set `replace_all: true`; nothing changed"
            ),
        }
    }
}

/// `text` with `old` replaced by `new`: once (refused when `old` occurs other than once), or
/// everywhere with `all`.
fn replace(text: &str, old: &str, new: &str, all: bool) -> Result<Edit, Refusal> {
    if old.is_empty() {
        return Err(Refusal::EmptyOld);
    }
    if old == new {
        return Err(Refusal::Same);
    }
    let count = text.matches(old).count();
    match count {
        0 => Err(Refusal::NotFound {
            crlf: text.contains("\r\n") && !old.contains('\r') && old.contains('\n'),
        }),
        1 => Ok(Edit {
            text: text.replacen(old, new, 1),
            count,
        }),
        _ if all => Ok(Edit {
            text: text.replace(old, new),
            count,
        }),
        _ => Err(Refusal::Ambiguous(count)),
    }
}

/// The change from `before` to `after` as a unified diff.
fn unified_diff(path: &str, before: &str, after: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(DIFF_CONTEXT)
        .header(&format!("a{path}"), &format!("b{path}"))
        .to_string()
}

fn edit_text(output: &EditFileOutput) -> String {
    let times = if output.replacements == 1 {
        "1 occurrence".to_owned()
    } else {
        format!("{} occurrences", output.replacements)
    };
    let head = if output.dry_run {
        format!(
            "dry run: would replace {times} in {} (nothing written)",
            output.path
        )
    } else {
        format!("replaced {times} in {}", output.path)
    };
    format!("{head}\n{}", output.diff)
}

fn list_text(output: &ListDirectoryOutput) -> String {
    let mut text = format!("{} ({} entries)\n", output.path, output.total);
    for entry in &output.entries {
        let name = match (&entry.link_target, entry.kind.as_str()) {
            (Some(target), _) => format!("{} -> {target}", entry.name),
            (None, "directory") => format!("{}/", entry.name),
            _ => entry.name.clone(),
        };
        text.push_str(&format!("{:<9} {:>10}  {name}\n", entry.kind, entry.size));
    }
    if output.truncated {
        text.push_str(&format!(
            "[… {} more entries left out; raise max_entries (at most {MAX_ENTRIES}) or list with run_command]\n",
            output.total - output.entries.len() as u64
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(
        offset: Option<u64>,
        limit: Option<u64>,
        head: Option<u64>,
        tail: Option<u64>,
    ) -> ReadFile {
        ReadFile {
            path: "f".to_owned(),
            offset,
            limit,
            head,
            tail,
            max_chars: None,
        }
    }

    fn all() -> Range {
        Range::From {
            offset: 1,
            limit: None,
        }
    }

    #[test]
    fn ranges_come_from_offset_and_limit_or_head_or_tail() {
        assert_eq!(Range::of(&params(None, None, None, None)).unwrap(), all());
        assert_eq!(
            Range::of(&params(Some(5), Some(2), None, None)).unwrap(),
            Range::From {
                offset: 5,
                limit: Some(2)
            }
        );
        assert_eq!(
            Range::of(&params(None, None, Some(3), None)).unwrap(),
            Range::From {
                offset: 1,
                limit: Some(3)
            }
        );
        assert_eq!(
            Range::of(&params(None, None, None, Some(4))).unwrap(),
            Range::Tail(4)
        );
        assert!(Range::of(&params(None, None, Some(1), Some(1))).is_err());
        assert!(Range::of(&params(Some(1), None, Some(1), None)).is_err());
        assert!(Range::of(&params(None, Some(1), None, Some(1))).is_err());
        assert!(Range::of(&params(Some(0), None, None, None)).is_err());
    }

    #[test]
    fn lines_are_numbered_and_ranges_pick_them() {
        let lines = Lines::new("a\nb\nc\nd");
        let shown = show(&lines, all(), READ_BUDGET, true).unwrap();
        assert_eq!(shown.text, "     1\ta\n     2\tb\n     3\tc\n     4\td\n");
        assert_eq!(shown.content, "a\nb\nc\nd");
        assert_eq!((shown.first, shown.last, shown.next), (1, 4, None));

        let shown = show(
            &lines,
            Range::From {
                offset: 2,
                limit: Some(2),
            },
            READ_BUDGET,
            true,
        )
        .unwrap();
        assert_eq!(
            shown.text,
            "     2\tb\n     3\tc\n[… 1 line more to the end of the file (4 lines); read on with offset=4]\n"
        );
        assert_eq!((shown.first, shown.last, shown.next), (2, 3, Some(4)));

        let shown = show(&lines, Range::Tail(2), READ_BUDGET, true).unwrap();
        assert_eq!(shown.text, "     3\tc\n     4\td\n");
        let shown = show(&lines, Range::Tail(10), READ_BUDGET, true).unwrap();
        assert_eq!(shown.first, 1);

        assert!(
            show(
                &lines,
                Range::From {
                    offset: 5,
                    limit: None
                },
                READ_BUDGET,
                true
            )
            .is_err()
        );
        let empty = Lines::new("");
        let shown = show(&empty, all(), READ_BUDGET, true).unwrap();
        assert_eq!((shown.text.as_str(), shown.first, shown.last), ("", 0, 0));
    }

    #[test]
    fn the_budget_stops_at_a_whole_line_and_says_how_to_read_on() {
        let text: String = (1..=100)
            .map(|n| format!("line {n:03} {}\n", "x".repeat(20)))
            .collect();
        let lines = Lines::new(&text);
        let shown = show(&lines, all(), 1000, true).unwrap();
        assert!(shown.text.chars().count() <= 1000, "{}", shown.text);
        let marker = shown.text.lines().last().unwrap();
        let next = shown.next.unwrap();
        assert_eq!(shown.last + 1, next);
        assert!(
            marker.starts_with(&format!("[… lines {next}–100 (")),
            "{marker}"
        );
        assert!(
            marker.ends_with(&format!("read on with offset={next}]")),
            "{marker}"
        );
        // Every shown line is whole.
        assert!(shown.content.ends_with('\n'));
        assert_eq!(shown.content.lines().count() as u64, shown.last);
    }

    #[test]
    fn a_line_longer_than_the_budget_shows_its_start() {
        let text = format!("{}\nnext\n", "y".repeat(5000));
        let shown = show(&Lines::new(&text), all(), 1000, true).unwrap();
        assert!(shown.text.chars().count() <= 1000);
        assert!(
            shown.text.contains("line 1 is 5000 characters"),
            "{}",
            shown.text
        );
        assert_eq!((shown.first, shown.last, shown.next), (1, 1, Some(2)));
    }

    #[test]
    fn a_file_read_in_part_says_so() {
        let shown = show(&Lines::new("a\nb"), all(), READ_BUDGET, false).unwrap();
        assert_eq!(shown.next, Some(3));
        assert!(shown.text.contains("use run_command"), "{}", shown.text);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters_and_is_counted() {
        assert_eq!(lossy(b"ok"), ("ok".to_owned(), 0));
        assert_eq!(
            lossy(b"a\xffb\xfe\xfdc"),
            ("a\u{fffd}b\u{fffd}\u{fffd}c".to_owned(), 3)
        );
        // A cut multi-byte character is one sequence.
        assert_eq!(lossy(b"x\xe2\x82"), ("x\u{fffd}".to_owned(), 1));
    }

    #[test]
    fn an_edit_replaces_exactly_one_occurrence_or_says_why_not() {
        assert_eq!(
            replace("a b c", "b", "B", false),
            Ok(Edit {
                text: "a B c".to_owned(),
                count: 1
            })
        );
        assert_eq!(
            replace("b b b", "b", "B", false),
            Err(Refusal::Ambiguous(3))
        );
        assert_eq!(
            replace("b b b", "b", "B", true),
            Ok(Edit {
                text: "B B B".to_owned(),
                count: 3
            })
        );
        assert_eq!(
            replace("abc", "x", "y", false),
            Err(Refusal::NotFound { crlf: false })
        );
        assert_eq!(
            replace("a\r\nb\r\n", "a\nb", "c", false),
            Err(Refusal::NotFound { crlf: true })
        );
        assert_eq!(replace("abc", "", "y", false), Err(Refusal::EmptyOld));
        assert_eq!(replace("abc", "b", "b", false), Err(Refusal::Same));
        // Occurrences do not overlap.
        assert_eq!(replace("aaa", "aa", "b", false).unwrap().text, "ba");
        assert!(
            Refusal::Ambiguous(2)
                .message("/f")
                .contains("2 times in /f")
        );
    }

    #[test]
    fn the_diff_is_unified_with_the_path() {
        let diff = unified_diff("/w/f.txt", "one\ntwo\nthree\n", "one\n2\nthree\n");
        assert_eq!(
            diff,
            "--- a/w/f.txt\n+++ b/w/f.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n"
        );
    }
}
