//! Versions as Flux's ImagePolicy reads tags: SemVer 2.0 with exactly three numeric parts and an
//! optional `v` prefix, ordered by SemVer precedence (build metadata ignored).

use std::cmp::Ordering;

/// A version parsed from a tag; equality and order are SemVer precedence.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    pub(super) major: u64,
    pub(super) minor: u64,
    pub(super) patch: u64,
    /// Dot-separated pre-release identifiers without the `-`; empty for a release.
    pub(super) prerelease: String,
}

impl Version {
    /// Parses a tag with Flux's grammar: `[v]MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`, no leading
    /// zeros in numbers; `None` when the tag is not such a version.
    pub fn parse_tag(tag: &str) -> Option<Self> {
        let rest = tag.strip_prefix('v').unwrap_or(tag);
        let (rest, build) = split_once_opt(rest, '+');
        let (core, prerelease) = split_once_opt(rest, '-');
        let mut numbers = core.split('.');
        let major = strict_number(numbers.next()?)?;
        let minor = strict_number(numbers.next()?)?;
        let patch = strict_number(numbers.next()?)?;
        if numbers.next().is_some() {
            return None;
        }
        if let Some(prerelease) = prerelease {
            valid_prerelease(prerelease).then_some(())?;
        }
        if let Some(build) = build {
            valid_identifiers(build).then_some(())?;
        }
        Some(Self::new(
            major,
            minor,
            patch,
            prerelease.unwrap_or_default(),
        ))
    }

    pub(super) fn new(major: u64, minor: u64, patch: u64, prerelease: &str) -> Self {
        Self {
            major,
            minor,
            patch,
            prerelease: prerelease.to_owned(),
        }
    }

    /// Whether this is a pre-release such as `1.0.0-rc.1`.
    pub fn is_prerelease(&self) -> bool {
        !self.prerelease.is_empty()
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.is_prerelease(), other.is_prerelease()) {
                (false, false) => Ordering::Equal,
                (false, true) => Ordering::Greater,
                (true, false) => Ordering::Less,
                (true, true) => compare_prereleases(&self.prerelease, &other.prerelease),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// SemVer pre-release precedence: identifier by identifier, numbers below words, fewer below more.
pub(super) fn compare_prereleases(left: &str, right: &str) -> Ordering {
    let mut left = left.split('.');
    let mut right = right.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(l), Some(r)) => match compare_identifiers(l, r) {
                Ordering::Equal => {}
                unequal => return unequal,
            },
        }
    }
}

/// Numeric identifiers (those fitting a `u64`, as Go's `ParseUint` reads them) compare as
/// numbers and below alphanumeric ones, which compare bytewise.
fn compare_identifiers(left: &str, right: &str) -> Ordering {
    match (as_number(left), as_number(right)) {
        (Some(l), Some(r)) => l.cmp(&r),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => left.cmp(right),
    }
}

fn as_number(identifier: &str) -> Option<u64> {
    if identifier.bytes().all(|byte| byte.is_ascii_digit()) {
        identifier.parse().ok()
    } else {
        None
    }
}

fn split_once_opt(text: &str, separator: char) -> (&str, Option<&str>) {
    match text.split_once(separator) {
        Some((head, tail)) => (head, Some(tail)),
        None => (text, None),
    }
}

/// A version number: digits only, no leading zero, fits a `u64`.
fn strict_number(text: &str) -> Option<u64> {
    let no_leading_zero = text.len() == 1 || !text.starts_with('0');
    if no_leading_zero {
        as_number(text)
    } else {
        None
    }
}

/// Non-empty identifiers of `[0-9A-Za-z-]`, numeric ones without leading zeros.
pub(super) fn valid_prerelease(prerelease: &str) -> bool {
    valid_identifiers(prerelease)
        && prerelease.split('.').all(|identifier| {
            let numeric = identifier.bytes().all(|byte| byte.is_ascii_digit());
            !numeric || identifier.len() == 1 || !identifier.starts_with('0')
        })
}

/// Non-empty dot-separated identifiers of `[0-9A-Za-z-]`.
pub(super) fn valid_identifiers(text: &str) -> bool {
    text.split('.').all(|identifier| {
        !identifier.is_empty()
            && identifier
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
    })
}
