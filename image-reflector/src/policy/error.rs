//! Why a policy cannot select a tag; each message names the field to fix.

use super::RangeError;

/// A policy that cannot be compiled (the spec must change) or cannot select from the tags.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// `spec.policy` has none of its three members.
    #[error("spec.policy sets none of semver, alphabetical or numerical: set one of them")]
    NoPolicy,
    /// `policy.semver.range` does not parse.
    #[error(
        "invalid policy.semver.range {range:?}: {source}; write a range such as \">=1.0.0 <2.0.0\", \"^1.2\", \"~1.2.3\" or \"1.x\""
    )]
    InvalidRange {
        range: String,
        #[source]
        source: RangeError,
    },
    /// `filterTags.pattern` does not compile.
    #[error(
        "invalid filterTags.pattern {pattern:?}: {source}; fix the regular expression (Go RE2 syntax)"
    )]
    InvalidPattern {
        pattern: String,
        #[source]
        source: regex::Error,
    },
    /// The repository has no tags (yet).
    #[error("the image repository has no tags to select from")]
    NoTags,
    /// No tag matches `filterTags.pattern`.
    #[error(
        "none of the {tags} tags matches filterTags.pattern; check the pattern against the repository's tags"
    )]
    NoTagMatchesFilter { tags: usize },
    /// No candidate is a version within `policy.semver.range`.
    #[error(
        "none of the {candidates} candidate tags is a version within policy.semver.range; widen the range or check filterTags"
    )]
    NoVersionInRange { candidates: usize },
    /// The numerical policy met values that are not numbers.
    #[error(
        "policy.numerical: {value:?} (from tag {tag:?}) is not a number ({count} such value(s)); set filterTags.pattern (and extract) so only numbers are compared"
    )]
    NotANumber {
        value: String,
        tag: String,
        count: usize,
    },
}

impl PolicyError {
    /// Whether only a spec change can fix this (a Stalled condition), rather than new tags.
    pub fn is_spec_error(&self) -> bool {
        matches!(
            self,
            Self::NoPolicy | Self::InvalidRange { .. } | Self::InvalidPattern { .. }
        )
    }
}
