//! SemVer ranges with the grammar and semantics of the library Flux uses (Masterminds semver v3):
//! `||` alternatives of comparators separated by spaces or commas, operators `= != > < >= => <=
//! =< ~ ~> ^`, wildcards `x X *`, partial versions (`1.2` means `~1.2`), hyphen ranges `A - B`,
//! and pre-releases admitted only by comparators that carry a pre-release themselves.

use super::version::{Version, valid_identifiers, valid_prerelease};

/// A parsed `policy.semver.range`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// Alternatives (`||`); each admits a version when all its comparators do.
    alternatives: Vec<Vec<Comparator>>,
}

/// Why a range does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// An alternative between `||` is empty.
    #[error("an alternative between '||' is empty")]
    EmptyAlternative,
    /// Text that is not an operator followed by a version.
    #[error("expected an operator and a version at {0:?}")]
    Unexpected(String),
    /// A version part is neither a number nor a wildcard, or is too large.
    #[error("{0:?} is not a number or wildcard (x, X, *)")]
    BadPart(String),
    /// A pre-release or build suffix with invalid identifiers.
    #[error("invalid pre-release or build metadata {0:?}")]
    BadSuffix(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    /// `=` or no operator: equality, or `~` when the version has wildcards.
    Equal,
    NotEqual,
    Greater,
    Less,
    GreaterOrEqual,
    LessOrEqual,
    Tilde,
    Caret,
}

/// Operators by spelling, longest first so `>=` wins over `>`.
const OPERATORS: [(&str, Operator); 11] = [
    ("!=", Operator::NotEqual),
    (">=", Operator::GreaterOrEqual),
    ("=>", Operator::GreaterOrEqual),
    ("<=", Operator::LessOrEqual),
    ("=<", Operator::LessOrEqual),
    ("~>", Operator::Tilde),
    ("=", Operator::Equal),
    (">", Operator::Greater),
    ("<", Operator::Less),
    ("~", Operator::Tilde),
    ("^", Operator::Caret),
];

/// One comparator: an operator and a version whose missing or wildcard parts are zero.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Comparator {
    operator: Operator,
    version: Version,
    /// Some part was a wildcard or missing.
    wildcard: bool,
    /// The minor part (and so the patch) was a wildcard or missing.
    minor_wildcard: bool,
    /// Only the patch part was a wildcard or missing.
    patch_wildcard: bool,
}

impl Range {
    /// Parses a range such as `>=1.0.0 <2.0.0`, `^1.2 || ~2.0.1` or `1.0.0 - 1.4.x`.
    pub fn parse(range: &str) -> Result<Self, RangeError> {
        let alternatives = rewrite_hyphen_ranges(range)
            .split("||")
            .map(parse_alternative)
            .collect::<Result<_, _>>()?;
        Ok(Self { alternatives })
    }

    /// Whether `version` is within the range.
    pub fn admits(&self, version: &Version) -> bool {
        self.alternatives.iter().any(|comparators| {
            comparators
                .iter()
                .all(|comparator| comparator.admits(version))
        })
    }
}

/// Rewrites every `A - B` into `>= A, <= B ` before anything else, as Flux's library does,
/// quirks included: the whitespace around the range is consumed (so `1 2 - 3` is invalid while
/// `1, 2 - 3` is not) and a version may absorb `|` characters.
fn rewrite_hyphen_ranges(range: &str) -> String {
    let mut matches = Vec::new();
    let mut start = 0;
    while start < range.len() {
        match match_hyphen_range(range, start) {
            Some((end, lower, upper)) => {
                matches.push((&range[start..end], format!(">= {lower}, <= {upper} ")));
                start = end;
            }
            None => start += range[start..].chars().next().map_or(1, char::len_utf8),
        }
    }
    let mut rewritten = range.to_owned();
    for (text, replacement) in matches {
        if let Some(position) = rewritten.find(text) {
            rewritten.replace_range(position..position + text.len(), &replacement);
        }
    }
    rewritten
}

/// Matches `\s*VERSION\s+-\s+VERSION\s*` at `start`: its end and the two versions.
fn match_hyphen_range(range: &str, start: usize) -> Option<(usize, &str, &str)> {
    let text = &range[start..];
    let (lower, rest) = split_version(text.trim_start_matches(is_space));
    let after_space = rest.trim_start_matches(is_space);
    let after_hyphen = after_space.strip_prefix('-')?;
    let upper_start = after_hyphen.trim_start_matches(is_space);
    let spaced = after_space.len() < rest.len() && upper_start.len() < after_hyphen.len();
    let (upper, rest) = split_version(upper_start);
    if lower.is_empty() || upper.is_empty() || !spaced {
        return None;
    }
    let end = range.len() - rest.trim_start_matches(is_space).len();
    Some((end, lower, upper))
}

/// Parses comparators separated by whitespace or a comma.
fn parse_alternative(text: &str) -> Result<Vec<Comparator>, RangeError> {
    let mut rest = text.trim_start_matches(is_space);
    if rest.trim_end_matches(is_space).is_empty() {
        return Err(RangeError::EmptyAlternative);
    }
    let mut comparators = Vec::new();
    loop {
        let (operator, after_operator) = split_operator(rest);
        let (version, after_version) = split_version(after_operator.trim_start_matches(is_space));
        if version.is_empty() {
            return Err(RangeError::Unexpected(rest.to_owned()));
        }
        let operator = operator.unwrap_or(Operator::Equal);
        comparators.push(Comparator::parse(operator, version)?);
        let after_space = after_version.trim_start_matches(is_space);
        if after_space.is_empty() {
            return Ok(comparators);
        }
        rest = match after_space.strip_prefix(',') {
            Some(after_comma) => after_comma.trim_start_matches(is_space),
            None if after_space.len() < after_version.len() => after_space,
            None => return Err(RangeError::Unexpected(after_version.to_owned())),
        };
    }
}

/// Go RE2's `\s`: ASCII space, tab, newline, form feed, carriage return.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

fn split_operator(text: &str) -> (Option<Operator>, &str) {
    OPERATORS
        .iter()
        .find_map(|(spelling, operator)| {
            text.strip_prefix(spelling)
                .map(|rest| (Some(*operator), rest))
        })
        .unwrap_or((None, text))
}

/// Splits off the longest version token, `[v]PART[.PART[.PART]][-IDS][+IDS]`, where a PART is
/// made of `0-9 x X * |` and IDS are dot-separated runs of `0-9 A-Z a-z -`.
fn split_version(text: &str) -> (&str, &str) {
    let bytes = text.as_bytes();
    let is_part = |byte: u8| byte.is_ascii_digit() || matches!(byte, b'x' | b'X' | b'*' | b'|');
    let run = |from: usize, accept: &dyn Fn(u8) -> bool| {
        from + bytes[from..]
            .iter()
            .take_while(|&&byte| accept(byte))
            .count()
    };
    let body_start = usize::from(text.starts_with('v'));
    let mut end = run(body_start, &is_part);
    if end == body_start {
        return ("", text);
    }
    for _ in 0..2 {
        let part_end = match bytes.get(end) {
            Some(b'.') => run(end + 1, &is_part),
            _ => break,
        };
        if part_end == end + 1 {
            break;
        }
        end = part_end;
    }
    for marker in [b'-', b'+'] {
        if bytes.get(end) == Some(&marker) {
            end = end_of_identifiers(bytes, end + 1).unwrap_or(end);
        }
    }
    text.split_at(end)
}

/// End of dot-separated `[0-9A-Za-z-]+` identifiers starting at `start`; `None` if there are none.
fn end_of_identifiers(bytes: &[u8], start: usize) -> Option<usize> {
    let is_identifier = |byte: &u8| byte.is_ascii_alphanumeric() || *byte == b'-';
    let mut end = start;
    loop {
        let length = bytes[end..]
            .iter()
            .take_while(|byte| is_identifier(byte))
            .count();
        if length == 0 {
            return (end > start).then_some(end - 1);
        }
        end += length;
        if bytes.get(end) != Some(&b'.') {
            return Some(end);
        }
        end += 1;
    }
}

impl Comparator {
    fn parse(operator: Operator, text: &str) -> Result<Self, RangeError> {
        let body = text.strip_prefix('v').unwrap_or(text);
        let (body, build) = match body.split_once('+') {
            Some((body, build)) => (body, Some(build)),
            None => (body, None),
        };
        let (core, prerelease) = match body.split_once('-') {
            Some((core, prerelease)) => (core, Some(prerelease)),
            None => (body, None),
        };
        let suffix_valid =
            prerelease.is_none_or(valid_prerelease) && build.is_none_or(valid_identifiers);
        if !suffix_valid {
            return Err(RangeError::BadSuffix(text.to_owned()));
        }
        let parts = core
            .split('.')
            .map(parse_part)
            .collect::<Result<Vec<_>, _>>()?;
        let part = |index: usize| parts.get(index).copied().flatten();
        let (major, minor, patch) = (part(0), part(1), part(2));
        if parts.len() > 3 {
            return Err(RangeError::Unexpected(text.to_owned()));
        }
        let prerelease = prerelease.unwrap_or_default();
        let version = |major, minor, patch| Version::new(major, minor, patch, prerelease);
        let comparator = match (major, minor, patch) {
            (None, _, _) => Self::wildcard(operator, version(0, 0, 0), false, false),
            (Some(major), None, _) => Self::wildcard(operator, version(major, 0, 0), true, false),
            (Some(major), Some(minor), None) => {
                Self::wildcard(operator, version(major, minor, 0), false, true)
            }
            (Some(major), Some(minor), Some(patch)) => Self {
                operator,
                version: version(major, minor, patch),
                wildcard: false,
                minor_wildcard: false,
                patch_wildcard: false,
            },
        };
        Ok(comparator)
    }

    fn wildcard(operator: Operator, version: Version, minor: bool, patch: bool) -> Self {
        Self {
            operator,
            version,
            wildcard: true,
            minor_wildcard: minor,
            patch_wildcard: patch,
        }
    }

    fn admits(&self, version: &Version) -> bool {
        let bound = &self.version;
        let prerelease_excluded = version.is_prerelease() && !bound.is_prerelease();
        match self.operator {
            Operator::NotEqual => self.not_equal(version, prerelease_excluded),
            _ if prerelease_excluded => false,
            Operator::Equal if self.wildcard => self.tilde(version),
            Operator::Equal => version == bound,
            Operator::Greater => self.greater(version),
            Operator::Less => version < bound,
            Operator::GreaterOrEqual => version >= bound,
            Operator::LessOrEqual => self.less_or_equal(version),
            Operator::Tilde => self.tilde(version),
            Operator::Caret => self.caret(version),
        }
    }

    fn not_equal(&self, version: &Version, prerelease_excluded: bool) -> bool {
        let bound = &self.version;
        if self.wildcard {
            if prerelease_excluded {
                return false;
            }
            if version.major != bound.major {
                return true;
            }
            if self.minor_wildcard {
                return false;
            }
            if version.minor != bound.minor {
                return true;
            }
            if self.patch_wildcard {
                return (version.is_prerelease() || bound.is_prerelease())
                    && version.prerelease != bound.prerelease;
            }
        }
        version != bound
    }

    fn greater(&self, version: &Version) -> bool {
        let bound = &self.version;
        if !self.wildcard || version.major != bound.major {
            return version > bound;
        }
        if self.minor_wildcard {
            return false;
        }
        if self.patch_wildcard {
            return version.minor > bound.minor;
        }
        version > bound
    }

    fn less_or_equal(&self, version: &Version) -> bool {
        let bound = &self.version;
        if !self.wildcard {
            return version <= bound;
        }
        version.major < bound.major
            || version.major == bound.major && (self.minor_wildcard || version.minor <= bound.minor)
    }

    /// `~1.2.3` is `>=1.2.3 <1.3.0`, `~1` is `>=1.0.0 <2.0.0`, `~0.0.0` and `*` admit everything.
    fn tilde(&self, version: &Version) -> bool {
        let bound = &self.version;
        if version < bound {
            return false;
        }
        let zero = bound.major == 0 && bound.minor == 0 && bound.patch == 0;
        if zero && !self.minor_wildcard && !self.patch_wildcard {
            return true;
        }
        version.major == bound.major && (self.minor_wildcard || version.minor == bound.minor)
    }

    /// `^1.2.3` is `>=1.2.3 <2.0.0`, `^0.2.3` is `>=0.2.3 <0.3.0`, `^0.0.3` is `=0.0.3`.
    fn caret(&self, version: &Version) -> bool {
        let bound = &self.version;
        if version < bound {
            return false;
        }
        if bound.major > 0 || self.minor_wildcard {
            return version.major == bound.major;
        }
        if version.major > 0 {
            return false;
        }
        if bound.minor > 0 || self.patch_wildcard {
            return version.minor == bound.minor;
        }
        version.minor == 0 && version.patch == bound.patch
    }
}

/// A version part: a number, or `None` for a wildcard.
fn parse_part(part: &str) -> Result<Option<u64>, RangeError> {
    if matches!(part, "x" | "X" | "*") {
        return Ok(None);
    }
    if !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()) {
        return part
            .parse()
            .map(Some)
            .map_err(|_| RangeError::BadPart(part.to_owned()));
    }
    Err(RangeError::BadPart(part.to_owned()))
}
