//! ImagePolicy tag selection, as Flux's image-reflector-controller does it: filter the tags with
//! `filterTags`, compare what `extract` yields (or the tag) under the `semver`, `alphabetical` or
//! `numerical` policy, and return the original tag of the winner.
//!
//! Where Flux's choice among equals depends on map iteration or input order (two tags with the
//! same version such as `1.2.3` and `v1.2.3`, the same number, or the same extracted value), the
//! lexicographically greatest original tag wins, so results never depend on the order of tags.
//! For the same reason numbers are ordered with `f64::total_cmp` (a `NaN` tag sorts above
//! infinity), where Flux's result with `NaN` depends on where it appears.

mod error;
mod filter;
mod number;
mod range;
mod version;

#[cfg(test)]
mod go_conformance;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use sluice_api::image::{ImagePolicyChoice, ImagePolicySpec, SortOrder};

pub use error::PolicyError;
pub use filter::TagFilter;
pub use number::parse_number;
pub use range::{Range, RangeError};
pub use version::Version;

/// A compiled ImagePolicy selection: the policy and the optional tag filter.
#[derive(Debug, Clone)]
pub struct TagSelector {
    policy: Policy,
    filter: Option<TagFilter>,
}

/// The ordering policy of `spec.policy`.
#[derive(Debug, Clone)]
pub enum Policy {
    /// Highest version within the range.
    SemVer(Range),
    /// Greatest (`asc`) or least (`desc`) string.
    Alphabetical(SortOrder),
    /// Greatest (`asc`) or least (`desc`) number; every compared value must be a number.
    Numerical(SortOrder),
}

impl Policy {
    /// Compiles `spec.policy`; like Flux, `semver` wins over `alphabetical`, which wins over
    /// `numerical`, when several are set.
    pub fn from_choice(choice: &ImagePolicyChoice) -> Result<Self, PolicyError> {
        if let Some(semver) = &choice.semver {
            let range =
                Range::parse(&semver.range).map_err(|source| PolicyError::InvalidRange {
                    range: semver.range.clone(),
                    source,
                })?;
            return Ok(Self::SemVer(range));
        }
        if let Some(alphabetical) = &choice.alphabetical {
            return Ok(Self::Alphabetical(alphabetical.order.unwrap_or_default()));
        }
        if let Some(numerical) = &choice.numerical {
            return Ok(Self::Numerical(numerical.order.unwrap_or_default()));
        }
        Err(PolicyError::NoPolicy)
    }
}

/// A tag taking part in the selection: what is compared, and the tag it came from.
struct Candidate<'t> {
    value: Cow<'t, str>,
    tag: &'t str,
}

impl TagSelector {
    /// Compiles the policy and `filterTags` of an ImagePolicy spec.
    pub fn from_spec(spec: &ImagePolicySpec) -> Result<Self, PolicyError> {
        let policy = Policy::from_choice(&spec.policy)?;
        let filter = match &spec.filter_tags {
            Some(filter) if !filter.pattern.is_empty() || !filter.extract.is_empty() => {
                let compiled =
                    TagFilter::new(&filter.pattern, &filter.extract).map_err(|source| {
                        PolicyError::InvalidPattern {
                            pattern: filter.pattern.clone(),
                            source,
                        }
                    })?;
                Some(compiled)
            }
            _ => None,
        };
        Ok(Self { policy, filter })
    }

    /// A selector from an already compiled policy and filter.
    pub fn new(policy: Policy, filter: Option<TagFilter>) -> Self {
        Self { policy, filter }
    }

    /// The latest of `tags` under the policy: always one of `tags`, never an extracted value.
    pub fn select<'t, S: AsRef<str>>(&self, tags: &'t [S]) -> Result<&'t str, PolicyError> {
        if tags.is_empty() {
            return Err(PolicyError::NoTags);
        }
        let candidates = self.candidates(tags);
        if candidates.is_empty() {
            return Err(PolicyError::NoTagMatchesFilter { tags: tags.len() });
        }
        let winner = match &self.policy {
            Policy::SemVer(range) => {
                latest_version(range, &candidates).ok_or(PolicyError::NoVersionInRange {
                    candidates: candidates.len(),
                })?
            }
            Policy::Alphabetical(order) => {
                latest_alphabetical(&candidates, *order).ok_or(PolicyError::NoTags)?
            }
            Policy::Numerical(order) => latest_number(&candidates, *order)?,
        };
        Ok(winner.tag)
    }

    fn candidates<'t, S: AsRef<str>>(&self, tags: &'t [S]) -> Vec<Candidate<'t>> {
        tags.iter()
            .map(AsRef::as_ref)
            .filter_map(|tag| {
                let value = match &self.filter {
                    Some(filter) => filter.apply(tag)?,
                    None => Cow::Borrowed(tag),
                };
                Some(Candidate { value, tag })
            })
            .collect()
    }
}

/// The greatest (`asc`) or least (`desc`) value, bytewise like Go's `sort.Strings`; ties go to
/// the greatest tag.
fn latest_alphabetical<'c, 't>(
    candidates: &'c [Candidate<'t>],
    order: SortOrder,
) -> Option<&'c Candidate<'t>> {
    candidates.iter().max_by(|a, b| {
        let by_value = match order {
            SortOrder::Asc => a.value.cmp(&b.value),
            SortOrder::Desc => b.value.cmp(&a.value),
        };
        by_value.then_with(|| a.tag.cmp(b.tag))
    })
}

/// The highest admitted version; ties (e.g. `1.2.3` and `v1.2.3`) go to the greatest tag.
fn latest_version<'c, 't>(
    range: &Range,
    candidates: &'c [Candidate<'t>],
) -> Option<&'c Candidate<'t>> {
    candidates
        .iter()
        .filter_map(|candidate| {
            let version = Version::parse_tag(&candidate.value)?;
            range.admits(&version).then_some((version, candidate))
        })
        .max_by(|(a, a_candidate), (b, b_candidate)| {
            a.cmp(b).then_with(|| a_candidate.tag.cmp(b_candidate.tag))
        })
        .map(|(_, candidate)| candidate)
}

/// The greatest (`asc`) or least (`desc`) number; fails if any value is not a number, naming
/// the least such value so the message does not depend on the order of tags.
fn latest_number<'c, 't>(
    candidates: &'c [Candidate<'t>],
    order: SortOrder,
) -> Result<&'c Candidate<'t>, PolicyError> {
    let (numbered, not_numbers): (Vec<_>, Vec<_>) = candidates
        .iter()
        .map(|candidate| (parse_number(&candidate.value), candidate))
        .partition(|(number, _)| number.is_some());
    let least_not_number = not_numbers
        .iter()
        .map(|(_, candidate)| candidate)
        .min_by_key(|candidate| (candidate.value.as_ref(), candidate.tag));
    if let Some(candidate) = least_not_number {
        return Err(PolicyError::NotANumber {
            value: candidate.value.clone().into_owned(),
            tag: candidate.tag.to_owned(),
            count: not_numbers.len(),
        });
    }
    numbered
        .into_iter()
        .filter_map(|(number, candidate)| Some((number?, candidate)))
        .max_by(|(a, a_candidate), (b, b_candidate)| {
            let by_number = match order {
                SortOrder::Asc => a.total_cmp(b),
                SortOrder::Desc => b.total_cmp(a),
            };
            by_number.then_with(|| a_candidate.tag.cmp(b_candidate.tag))
        })
        .map(|(_, candidate)| candidate)
        .ok_or(PolicyError::NoTags)
}
