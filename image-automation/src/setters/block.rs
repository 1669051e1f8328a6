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
    let indent = content.start - line_start(text, content.start);
    // A block of blank lines only (`|+` keeps them, so `old` is not empty) has no content line.
    let body_end =
        last_content_line_end(text, content, indent).filter(|_| old.contains(|c| c != '\n'));
    if yaml11::is_non_string(value) {
        // Flux writes such a value double-quoted, in place of the block.
        let mut edits = vec![(header, quote::double_quoted(value))];
        edits.extend(body_end.map(|end| (body_start..line_end(text, end), String::new())));
        return Some(edits);
    }
    let indicators = &text[header.clone()];
    let Some(end) = body_end else {
        // An empty block: its first line sets the indentation, so an indentation digit goes.
        let stripped = format!("{}-", &indicators[..1]);
        let body = new_body_line(text, &header, body_start, value);
        let mut edits = Vec::new();
        if indicators != stripped {
            edits.push((header.clone(), stripped));
        }
        let indent = body.trim_start_matches(['\r', '\n']).len() - body.trim_start().len();
        let (blank_lines, cleared) = blank_lines_cleared(text, body_start, indent);
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

/// The end (before its line break) of the block's last content line: the last whole line of
/// `content` longer than the block's `indent`, since spaces past the indentation are content.
fn last_content_line_end(text: &str, content: &Range<usize>, indent: usize) -> Option<usize> {
    let mut at = line_start(text, content.start);
    let mut last = None;
    // The parser's span may end past the indentation of the next line: whole lines only.
    while at < content.end && line_end(text, at) <= content.end {
        let end = line_content_end(text, at);
        if end - at > indent {
            last = Some(end);
        }
        at = line_end(text, at);
    }
    last
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
/// first node (`key: |`, `- |`, `- key: |`), ended as the header line is.
fn new_body_line(text: &str, header: &Range<usize>, body_start: usize, value: &str) -> String {
    let header_line = &text[line_start(text, header.start)..body_start];
    let node_column = header_line
        .find(|c: char| c != ' ' && c != '-')
        .unwrap_or(0);
    let header_break = &text[line_content_end(text, header.start)..body_start];
    let (lead, newline) = match header_break {
        "" => ("\n", "\n"),
        line_break => ("", line_break),
    };
    format!("{lead}{}{value}{newline}", " ".repeat(node_column + 2))
}

// YAML breaks lines at `\r\n`, `\n` and a lone `\r`.

/// The lines of `text`, each with its line break.
pub fn lines(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut at = 0;
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
