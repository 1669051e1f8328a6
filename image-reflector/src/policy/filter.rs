//! `filterTags`: a regular expression tags must match, and an `extract` template expanded like
//! Go's `Regexp.ExpandString` (`$name`, `${name}`, `$1`, `$$`).
//!
//! Patterns use the `regex` crate, whose syntax is close to Go's RE2. Differences that matter
//! for tags: Go accepts `\Q…\E` literals (rejected here), Rust accepts `\<`, `\>` and `\b{…}`
//! (rejected by Go); `\d`, `\w`, `\s`, `\b` are Unicode-aware here and ASCII in Go, which is the
//! same on tags (OCI tags are ASCII).

use std::borrow::Cow;

use regex::{Captures, Regex};

/// A compiled `filterTags`.
#[derive(Debug, Clone)]
pub struct TagFilter {
    pattern: Regex,
    extract: String,
}

impl TagFilter {
    /// Compiles `pattern`; `extract` may be empty (the whole tag is compared).
    pub fn new(pattern: &str, extract: &str) -> Result<Self, regex::Error> {
        Ok(Self {
            pattern: Regex::new(pattern)?,
            extract: extract.to_owned(),
        })
    }

    /// The value compared for `tag`: `None` when the pattern does not match, otherwise the
    /// expanded `extract` template, or the tag itself when `extract` is empty.
    pub fn apply<'t>(&self, tag: &'t str) -> Option<Cow<'t, str>> {
        if self.extract.is_empty() {
            return self.pattern.is_match(tag).then_some(Cow::Borrowed(tag));
        }
        let captures = self.pattern.captures(tag)?;
        Some(Cow::Owned(expand(&self.pattern, &captures, &self.extract)))
    }
}

/// Expands `template` like Go: `$$` is `$`; `$name` takes the longest run of letters, digits
/// and `_`; `${name}` is braced; a name of digits without leading zero is a group number;
/// unknown or unmatched groups expand to nothing; a malformed `$` stays literal.
pub(super) fn expand(pattern: &Regex, captures: &Captures<'_>, template: &str) -> String {
    let mut expanded = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        expanded.push_str(&rest[..dollar]);
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            expanded.push('$');
            rest = after;
            continue;
        }
        let Some((name, after)) = split_reference(rest) else {
            expanded.push('$');
            continue;
        };
        if let Some(text) = group_text(pattern, captures, name) {
            expanded.push_str(text);
        }
        rest = after;
    }
    expanded.push_str(rest);
    expanded
}

/// Splits a group reference (after `$`) into its name and the rest of the template.
fn split_reference(text: &str) -> Option<(&str, &str)> {
    let (braced, body) = match text.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
        .map_or(body.len(), |(index, _)| index);
    if end == 0 {
        return None;
    }
    let (name, after) = body.split_at(end);
    if braced {
        return after.strip_prefix('}').map(|after| (name, after));
    }
    Some((name, after))
}

/// The text of group `name` (a number or a group name), if it exists and took part in the match.
fn group_text<'t>(pattern: &Regex, captures: &Captures<'t>, name: &str) -> Option<&'t str> {
    let group = match group_number(name) {
        Some(number) => captures.get(number),
        None => pattern
            .capture_names()
            .enumerate()
            .filter(|(_, group_name)| *group_name == Some(name))
            .find_map(|(index, _)| captures.get(index)),
    };
    group.map(|group| group.as_str())
}

/// Go reads a name as a group number when it is all digits, without leading zero, below 10^8.
fn group_number(name: &str) -> Option<usize> {
    let digits = name.bytes().all(|byte| byte.is_ascii_digit());
    let leading_zero = name.len() > 1 && name.starts_with('0');
    if !digits || leading_zero {
        return None;
    }
    name.parse().ok().filter(|&number| number < 100_000_000)
}
