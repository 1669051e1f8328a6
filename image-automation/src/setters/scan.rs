//! Finds markers and the scalars they mark: the YAML is parsed with `granit-parser` for the
//! exact byte span, style and role (key or value) of every scalar; a marker is a `#` comment,
//! outside any scalar, on the line where a value scalar ends or on a block scalar's header line.

use std::ops::Range;

use granit_parser::{Event, Parser, ScalarStyle, StructureStyle};

use super::SetterError;
use super::block;
use super::marker::{MARKER_KEY, Marker};

/// How a scalar is written, which decides how its replacement is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Block,
}

/// The Kubernetes object a scalar belongs to (empty fields when the document is no object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// A marked value scalar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkedScalar {
    pub marker: Marker,
    /// Bytes of the scalar in the text, quotes included.
    pub span: Range<usize>,
    pub style: Style,
    /// Inside a flow collection (`[...]`, `{...}`), where `,[]{}` end a plain scalar.
    pub in_flow: bool,
    /// The scalar's value as YAML reads it.
    pub value: String,
    /// 1-based line of the marker.
    pub line: usize,
    pub object: ObjectId,
    /// For a block scalar marked on its header line: the header's bytes (`|`, `>-`, ...); `span`
    /// is then its content, from the first content character.
    pub block_header: Option<Range<usize>>,
}

#[derive(Debug)]
struct Scalar {
    span: Range<usize>,
    style: Style,
    value: String,
    is_key: bool,
    in_flow: bool,
    document: usize,
}

enum Frame {
    Mapping {
        flow: bool,
        expect_key: bool,
        key: Option<String>,
    },
    Sequence {
        flow: bool,
    },
}

/// Every scalar of every document, and each document's object identity.
struct Parsed {
    scalars: Vec<Scalar>,
    objects: Vec<ObjectId>,
}

/// The marked scalars of `text`, in order; empty without the `"$imagepolicy"` token.
pub fn find_markers(text: &str) -> Result<Vec<MarkedScalar>, SetterError> {
    if !text.contains(MARKER_KEY) {
        return Ok(Vec::new());
    }
    let parsed = parse(text)?;
    let mut marked = Vec::new();
    for (index, range) in block::lines(text).enumerate() {
        if !text[range.clone()].contains(MARKER_KEY) {
            continue;
        }
        let Some(hash) = comment_start(text, range.clone(), &parsed.scalars) else {
            continue;
        };
        let comment = text[hash + 1..range.end].trim_end_matches(['\n', '\r']);
        let Some(marker) = Marker::parse_comment(comment) else {
            continue;
        };
        let target = parsed
            .scalars
            .iter()
            .rev()
            .find(|s| s.span.end <= hash && s.span.end > range.start)
            .filter(|s| !s.is_key && s.span.start < hash && s.style != Style::Block);
        let (scalar, block_header) = match target {
            Some(scalar) => (scalar, None),
            None => match marked_block(text, range.start..hash, &parsed.scalars) {
                Some((scalar, header)) => (scalar, Some(header)),
                None => continue,
            },
        };
        marked.push(MarkedScalar {
            marker,
            span: scalar.span.clone(),
            style: scalar.style,
            in_flow: scalar.in_flow,
            value: scalar.value.clone(),
            line: index + 1,
            object: parsed
                .objects
                .get(scalar.document)
                .cloned()
                .unwrap_or_default(),
            block_header,
        });
    }
    Ok(marked)
}

/// The block scalar whose header ends `before_comment` (a line up to its comment) and the
/// header's bytes: the first value scalar from the header on, when it is a block scalar.
fn marked_block<'a>(
    text: &str,
    before_comment: Range<usize>,
    scalars: &'a [Scalar],
) -> Option<(&'a Scalar, Range<usize>)> {
    let header = block::header(&text[before_comment.clone()])?;
    let header = before_comment.start + header.start..before_comment.start + header.end;
    let first = scalars.partition_point(|s| s.span.start < header.start);
    scalars[first..]
        .iter()
        .find(|s| !s.is_key)
        .filter(|s| s.style == Style::Block)
        .filter(|s| block::has_header_at(text, &header, &s.span, &s.value))
        .map(|scalar| (scalar, header))
}

/// The first `#` of the line that starts a comment: after whitespace (or at the line start)
/// and outside every scalar.
fn comment_start(text: &str, line: Range<usize>, scalars: &[Scalar]) -> Option<usize> {
    let bytes = text.as_bytes();
    (line.start..line.end).find(|&at| {
        bytes[at] == b'#'
            && (at == line.start || matches!(bytes[at - 1], b' ' | b'\t'))
            && !inside_scalar(scalars, at)
    })
}

fn inside_scalar(scalars: &[Scalar], at: usize) -> bool {
    // Scalars never overlap: only the last one starting at or before `at` can hold it.
    let after = scalars.partition_point(|s| s.span.start <= at);
    after > 0 && scalars[after - 1].span.contains(&at)
}

fn parse(text: &str) -> Result<Parsed, SetterError> {
    let mut parsed = Parsed {
        scalars: Vec::new(),
        objects: Vec::new(),
    };
    let mut stack: Vec<Frame> = Vec::new();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| SetterError::Parse {
            line: e.marker().line(),
            message: e.info().to_owned(),
        })?;
        let offsets = span.start.byte_offset().zip(span.end.byte_offset());
        match event {
            Event::DocumentStart(..) => {
                parsed.objects.push(ObjectId::default());
                stack.clear();
            }
            Event::MappingStart(style, ..) => {
                node_key(&mut stack);
                stack.push(Frame::Mapping {
                    flow: style == StructureStyle::Flow,
                    expect_key: true,
                    key: None,
                });
            }
            Event::SequenceStart(style, ..) => {
                node_key(&mut stack);
                stack.push(Frame::Sequence {
                    flow: style == StructureStyle::Flow,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            Event::Alias(_) => {
                node_key(&mut stack);
            }
            Event::Scalar(value, style, ..) => {
                let Some((start, end)) = offsets else {
                    return Err(SetterError::NoOffsets);
                };
                let start = content_start(text, start, end);
                let is_key = matches!(
                    stack.last(),
                    Some(Frame::Mapping {
                        expect_key: true,
                        ..
                    })
                );
                let parent_key = node_key(&mut stack);
                if !is_key {
                    record_identity(&mut parsed.objects, &stack, parent_key.as_deref(), &value);
                } else if let Some(Frame::Mapping { key, .. }) = stack.last_mut() {
                    *key = Some(value.to_string());
                }
                parsed.scalars.push(Scalar {
                    span: start..end,
                    style: match style {
                        ScalarStyle::Plain => Style::Plain,
                        ScalarStyle::SingleQuoted => Style::SingleQuoted,
                        ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                        _ => Style::Block,
                    },
                    value: value.into_owned(),
                    is_key,
                    in_flow: stack.iter().any(|frame| match frame {
                        Frame::Mapping { flow, .. } | Frame::Sequence { flow } => *flow,
                    }),
                    document: parsed.objects.len().saturating_sub(1),
                });
            }
            _ => {}
        }
    }
    parsed.scalars.sort_by_key(|s| s.span.start);
    Ok(parsed)
}

/// Where a scalar's content starts: past the header line when the parser's span starts at a
/// block scalar's header (an empty block at the end of the text).
fn content_start(text: &str, start: usize, end: usize) -> usize {
    if !matches!(text.as_bytes().get(start), Some(b'|' | b'>')) {
        return start;
    }
    text[start..]
        .find('\n')
        .map_or(text.len(), |newline| start + newline + 1)
        .min(end)
}

/// Advances the innermost mapping past a node; returns the key a value node belongs to
/// (a mapping remembers its last key, so nested frames can see their parent's key).
fn node_key(stack: &mut [Frame]) -> Option<String> {
    match stack.last_mut() {
        Some(Frame::Mapping {
            expect_key, key, ..
        }) => {
            let was_key = *expect_key;
            *expect_key = !*expect_key;
            if was_key { None } else { key.clone() }
        }
        _ => None,
    }
}

/// Records `apiVersion`, `kind`, `metadata.name` and `metadata.namespace` of the document.
fn record_identity(objects: &mut [ObjectId], stack: &[Frame], key: Option<&str>, value: &str) {
    let (Some(object), Some(key)) = (objects.last_mut(), key) else {
        return;
    };
    let metadata = matches!(
        stack,
        [Frame::Mapping { key: Some(parent), .. }, Frame::Mapping { .. }] if parent == "metadata"
    );
    let field = match (stack.len(), metadata, key) {
        (1, _, "apiVersion") => &mut object.api_version,
        (1, _, "kind") => &mut object.kind,
        (2, true, "name") => &mut object.name,
        (2, true, "namespace") => &mut object.namespace,
        _ => return,
    };
    *field = value.to_owned();
}
