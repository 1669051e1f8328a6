//! Writing a value into a block scalar (`|`, `>`) marked on its header line, as Flux's setter
//! does (`image: | # {"$imagepolicy": ...}`): the value becomes exactly the new one, so the
//! header's chomping turns to strip (`|-`), and only the header and the content bytes change.

use std::ops::Range;

use super::{quote, yaml11};

/// A replacement of a byte range of the text.
pub type Edit = (Range<usize>, String);

/// The header (`|` or `>`, then an indentation digit and chomping in either order) ending
/// `before_comment`, the text of a line before its comment; its range within that text.
pub fn header(before_comment: &str) -> Option<Range<usize>> {
    let end = before_comment.trim_end_matches([' ', '\t']).len();
    let start = before_comment[..end].rfind(['|', '>'])?;
    let indicators = &before_comment[start + 1..end];
    let chomping = indicators
        .chars()
        .filter(|c| matches!(c, '+' | '-'))
        .count();
    let digits = indicators
        .chars()
        .filter(|c| matches!(c, '1'..='9'))
        .count();
    let separated = start == 0 || before_comment[..start].ends_with([' ', '\t']);
    (separated && chomping <= 1 && digits <= 1 && chomping + digits == indicators.len())
        .then_some(start..end)
}

/// The edits writing `value` into the block scalar with `header` whose content (after the
/// indentation of its first line) is `content` and reads `old`; `None` when `value` cannot be
/// written as one block line (a line break or leading whitespace).
pub fn edits(
    text: &str,
    header: Range<usize>,
    content: &Range<usize>,
    old: &str,
    value: &str,
) -> Option<Vec<Edit>> {
    if value.contains(['\n', '\r']) || value.starts_with([' ', '\t']) {
        return None;
    }
    let body_start = line_end(text, header.end);
    let indicators = &text[header.clone()];
    let indent = content_indent(text, indicators, body_start, content);
    // A block of blank lines only (`|+` keeps them, so `old` is not empty) has no content line.
    let body_end = old
        .contains(|c| c != '\n')
        .then(|| last_content_line_end(text, body_start, indent))
        .flatten();
    if yaml11::is_non_string(value) {
        // Flux writes such a value double-quoted, in place of the block.
        let mut edits = vec![(header, quote::double_quoted(value))];
        edits.extend(body_end.map(|end| (body_start..line_end(text, end), String::new())));
        return Some(edits);
    }
    let Some(end) = body_end else {
        // An empty block: its first line sets the indentation, so an indentation digit goes.
        let stripped = format!("{}-", &indicators[..1]);
        let (body, new_indent) = new_body_line(text, &header, body_start, value);
        let mut edits = Vec::new();
        if indicators != stripped {
            edits.push((header.clone(), stripped));
        }
        let (blank_lines, cleared) = blank_lines_cleared(text, body_start, new_indent);
        edits.push((body_start..blank_lines, body + &cleared));
        return Some(edits);
    };
    let mut edits: Vec<Edit> = strip_chomping(indicators)
        .map(|stripped| (header.clone(), stripped))
        .into_iter()
        .collect();
    let replaced = body_start..end;
    edits.push((replaced, format!("{}{value}", " ".repeat(indent))));
    Some(edits)
}

/// Whether the block scalar that reads `value`, whose content the parser puts at `content`, has
/// its header at `header`: its lines, as they read from there, hold the same characters as
/// `value` apart from whitespace (which folding and chomping change). The parser's span of a
/// block can be empty, so a `|` inside another block's content can look like a header.
pub fn has_header_at(
    text: &str,
    header: &Range<usize>,
    content: &Range<usize>,
    value: &str,
) -> bool {
    // An empty block has no line to check; a `|` inside a block's content gives it content.
    if value.chars().all(|c| c == '\n') {
        return true;
    }
    let body_start = line_end(text, header.end);
    let indent = content_indent(text, &text[header.clone()], body_start, content);
    let read = content_rows(text, body_start, indent)
        .flat_map(|row| text[row.start + indent..row.end].chars());
    read.filter(|c| !c.is_whitespace())
        .eq(value.chars().filter(|c| !c.is_whitespace()))
}

/// The block's content indentation: the spaces before the first line holding more than spaces
/// (YAML's auto-detection; the parser's span is not reliable there), or with an indentation
/// digit, the column where the parser's content starts.
fn content_indent(
    text: &str,
    indicators: &str,
    body_start: usize,
    content: &Range<usize>,
) -> usize {
    let auto_detected = lines_from(text, body_start)
        .map(|line| &text[line.start..line_content_end(text, line.start)])
        .find(|row| row.contains(|c| c != ' '))
        .map(|row| row.len() - row.trim_start_matches(' ').len());
    match auto_detected {
        Some(indent) if !indicators.contains(|c: char| c.is_ascii_digit()) => indent,
        _ => content.start - line_start(text, content.start),
    }
}

/// The end (before its line break) of the block's last content line.
fn last_content_line_end(text: &str, body_start: usize, indent: usize) -> Option<usize> {
    content_rows(text, body_start, indent)
        .last()
        .map(|row| row.end)
}

/// The block's content lines from `body_start`, without line breaks: lines of spaces no wider
/// than `indent` are empty, wider ones are content; a less indented line ends the block.
fn content_rows(
    text: &str,
    body_start: usize,
    indent: usize,
) -> impl Iterator<Item = Range<usize>> + '_ {
    lines_from(text, body_start)
        .map(|line| line.start..line_content_end(text, line.start))
        .filter(move |row| !(row.len() <= indent && text[row.clone()].bytes().all(|b| b == b' ')))
        .take_while(move |row| {
            let row = &text[row.clone()];
            let spaces = row.len() - row.trim_start_matches(' ').len();
            spaces >= indent && !(indent == 0 && is_document_marker(row))
        })
}

/// `---` or `...` at the start of a line, alone or before a space or tab.
fn is_document_marker(row: &str) -> bool {
    (row.starts_with("---") || row.starts_with("..."))
        && matches!(row.as_bytes().get(3), None | Some(b' ' | b'\t'))
}

/// The end of the blank lines from `at` (the old block's lines) and their new text: under the
/// new line's `indent`, spaces past it would be content and a tab is no indentation, so those go.
fn blank_lines_cleared(text: &str, at: usize, indent: usize) -> (usize, String) {
    let mut end = at;
    let mut cleared = String::new();
    while end < text.len() {
        let next = line_end(text, end);
        let line = &text[end..next];
        let blanks = line.trim_end_matches(['\r', '\n']);
        if !blanks.chars().all(|c| c == ' ' || c == '\t') {
            break;
        }
        let kept = blanks.len() <= indent && !blanks.contains('\t');
        cleared.push_str(if kept { line } else { &line[blanks.len()..] });
        end = next;
    }
    (end, cleared)
}

/// The header with strip chomping; `None` when it already strips.
fn strip_chomping(header: &str) -> Option<String> {
    match header {
        h if h.contains('-') => None,
        h if h.contains('+') => Some(h.replace('+', "-")),
        h => Some(format!("{h}-")),
    }
}

/// The line holding `value` for an empty block: indented two columns past the header line's
/// first node (`key: |`, `- |`, `- key: |`, `:   key: |`), ended as the header line is; and
/// that indentation.
fn new_body_line(
    text: &str,
    header: &Range<usize>,
    body_start: usize,
    value: &str,
) -> (String, usize) {
    let header_line = &text[line_start(text, header.start)..body_start];
    let indent = node_column(header_line) + 2;
    let header_break = &text[line_content_end(text, header.start)..body_start];
    let (lead, newline) = match header_break {
        "" => ("\n", "\n"),
        line_break => ("", line_break),
    };
    let line = format!("{lead}{}{value}{newline}", " ".repeat(indent));
    (line, indent)
}

/// The column of a line's first node: past the indentation and the `-`, `?` and `:` indicators.
fn node_column(line: &str) -> usize {
    let bytes = line.as_bytes();
    let mut at = 0;
    while let Some(byte) = bytes.get(at) {
        match byte {
            b' ' | b'\t' => at += 1,
            b'-' | b'?' | b':' if matches!(bytes.get(at + 1), Some(b' ' | b'\t')) => at += 1,
            _ => break,
        }
    }
    at
}

// YAML breaks lines at `\r\n`, `\n` and a lone `\r`.

/// The lines of `text`, each with its line break.
pub fn lines(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    lines_from(text, 0)
}

/// The lines of `text` from `at`, a line's start.
fn lines_from(text: &str, mut at: usize) -> impl Iterator<Item = Range<usize>> + '_ {
    std::iter::from_fn(move || {
        let start = at;
        at = line_end(text, start);
        (start < text.len()).then_some(start..at)
    })
}

fn line_start(text: &str, at: usize) -> usize {
    text[..at]
        .rfind(['\n', '\r'])
        .map_or(0, |newline| newline + 1)
}

/// The index of the line break of the line holding `at`, or the text's end.
fn line_content_end(text: &str, at: usize) -> usize {
    text[at..]
        .find(['\n', '\r'])
        .map_or(text.len(), |at_break| at + at_break)
}

/// The index after the line break of the line holding `at` (the text's end on the last line).
fn line_end(text: &str, at: usize) -> usize {
    let end = line_content_end(text, at);
    match text.as_bytes().get(end..end + 2) {
        Some(b"\r\n") => end + 2,
        _ => (end + 1).min(text.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(header("image: |"), Some(7..8));
        assert_eq!(header("- >2- "), Some(2..5));
        assert_eq!(header("a: !!str |+"), Some(9..11));
        assert_eq!(header("--- |"), Some(4..5));
        assert_eq!(header("a: x|"), None);
        assert_eq!(header("a: |x"), None);
        assert_eq!(header("a: |+-"), None);
        assert_eq!(header("a: b"), None);
    }
}
