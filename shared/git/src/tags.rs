//! SemVer selection among tags: Flux's ranges (`>=1 <2`, `||`) with optional `v` prefixes.

use std::collections::BTreeMap;

use nodejs_semver::{Range, Version};

use crate::GitError;

/// The highest tag satisfying a Flux SemVer range; `v` prefixes are allowed on tags.
pub fn highest_matching_tag(
    range: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(String, String), GitError> {
    let parsed = Range::parse(range).map_err(|e| {
        GitError::Operation(format!(
            "invalid spec.ref.semver '{range}': {e}; use a range such as '>=1.0.0 <2.0.0'"
        ))
    })?;
    tags.iter()
        .filter_map(|(name, sha)| {
            let tag = name.strip_prefix("refs/tags/")?;
            let version = parse_tag_version(tag)?;
            parsed
                .satisfies(&version)
                .then(|| (version, tag.to_owned(), sha.clone()))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, tag, sha)| (tag, sha))
        .ok_or_else(|| {
            GitError::Operation(format!(
                "no tag matches spec.ref.semver '{range}'; push a matching tag or widen the range"
            ))
        })
}

/// Parses a tag as a version, accepting a leading `v`.
pub fn parse_tag_version(tag: &str) -> Option<Version> {
    Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_picks_highest_match_and_skips_prereleases() {
        let tags: BTreeMap<String, String> = [
            ("refs/tags/v1.0.0", "a"),
            ("refs/tags/v1.2.0", "b"),
            ("refs/tags/1.3.0-rc.1", "c"),
            ("refs/tags/v2.0.0", "d"),
            ("refs/tags/not-a-version", "e"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            highest_matching_tag(">=1.0.0 <2.0.0", &tags).unwrap(),
            ("v1.2.0".to_owned(), "b".to_owned())
        );
        assert_eq!(highest_matching_tag("^1 || ^2", &tags).unwrap().0, "v2.0.0");
        assert_eq!(highest_matching_tag("1.0.x", &tags).unwrap().0, "v1.0.0");
        assert!(highest_matching_tag(">=3.0.0", &tags).is_err());
        assert!(highest_matching_tag("not a range!", &tags).is_err());
    }
}
