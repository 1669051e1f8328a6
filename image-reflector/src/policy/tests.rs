//! Examples of each policy, the filter, and conformance with Flux's Go libraries.

use sluice_api::image::{
    AlphabeticalPolicy, ImagePolicyChoice, ImagePolicySpec, NumericalPolicy, SemVerPolicy,
    SortOrder, TagFilter as TagFilterSpec,
};
use sluice_api::meta::NamespacedObjectReference;

use super::go_conformance::{RANGES, TAGS, VERSIONS};
use super::*;

fn spec(policy: ImagePolicyChoice, filter: Option<(&str, &str)>) -> ImagePolicySpec {
    ImagePolicySpec {
        image_repository_ref: NamespacedObjectReference {
            name: "repo".to_owned(),
            namespace: None,
        },
        policy,
        filter_tags: filter.map(|(pattern, extract)| TagFilterSpec {
            pattern: pattern.to_owned(),
            extract: extract.to_owned(),
        }),
        digest_reflection_policy: None,
        interval: None,
        suspend: false,
    }
}

fn semver(range: &str) -> ImagePolicyChoice {
    ImagePolicyChoice {
        semver: Some(SemVerPolicy {
            range: range.to_owned(),
        }),
        ..ImagePolicyChoice::default()
    }
}

fn alphabetical(order: Option<SortOrder>) -> ImagePolicyChoice {
    ImagePolicyChoice {
        alphabetical: Some(AlphabeticalPolicy { order }),
        ..ImagePolicyChoice::default()
    }
}

fn numerical(order: Option<SortOrder>) -> ImagePolicyChoice {
    ImagePolicyChoice {
        numerical: Some(NumericalPolicy { order }),
        ..ImagePolicyChoice::default()
    }
}

fn select(
    policy: ImagePolicyChoice,
    filter: Option<(&str, &str)>,
    tags: &[&str],
) -> Result<String, PolicyError> {
    let selector = TagSelector::from_spec(&spec(policy, filter))?;
    selector.select(tags).map(str::to_owned)
}

#[test]
fn ranges_admit_what_flux_admits() {
    for (range, expected) in RANGES {
        let parsed = Range::parse(range);
        let Some(expected) = expected else {
            assert!(parsed.is_err(), "{range:?} must not parse");
            continue;
        };
        let parsed = parsed.unwrap_or_else(|error| panic!("{range:?}: {error}"));
        let admitted: Vec<&str> = VERSIONS
            .iter()
            .copied()
            .filter(|version| parsed.admits(&Version::parse_tag(version).unwrap()))
            .collect();
        assert_eq!(&admitted, expected, "range {range:?}");
    }
}

#[test]
fn tags_are_versions_exactly_when_flux_says_so() {
    for (tag, is_version) in TAGS {
        assert_eq!(
            Version::parse_tag(tag).is_some(),
            *is_version,
            "tag {tag:?}"
        );
    }
}

#[test]
fn semver_selects_the_highest_version_in_range_and_returns_the_tag_as_written() {
    let tags = [
        "latest",
        "v1.2.3",
        "1.3.0-rc.1",
        "1.2.10",
        "1.3",
        "2.0.0",
        "main-abc",
    ];
    assert_eq!(
        select(semver(">=1.0.0 <2.0.0"), None, &tags).unwrap(),
        "1.2.10"
    );
    assert_eq!(select(semver("^1.x-0"), None, &tags).unwrap(), "1.3.0-rc.1");
    assert_eq!(select(semver("~1.2"), None, &tags).unwrap(), "1.2.10");
    assert_eq!(select(semver("*"), None, &tags).unwrap(), "2.0.0");
    assert_eq!(select(semver("1.2.3"), None, &tags).unwrap(), "v1.2.3");
}

#[test]
fn semver_errors_name_the_range() {
    let error = select(semver(">= x y"), None, &["1.0.0"]).unwrap_err();
    assert!(error.is_spec_error());
    assert!(error.to_string().contains("policy.semver.range"), "{error}");
    let error = select(semver("^3"), None, &["1.0.0", "2.0.0"]).unwrap_err();
    assert!(matches!(
        error,
        PolicyError::NoVersionInRange { candidates: 2 }
    ));
    assert!(!error.is_spec_error());
}

#[test]
fn equal_versions_resolve_to_the_greatest_tag_whatever_the_order() {
    for tags in [
        ["1.2.3", "v1.2.3", "1.2.3+b"],
        ["1.2.3+b", "v1.2.3", "1.2.3"],
    ] {
        assert_eq!(select(semver("1.x"), None, &tags).unwrap(), "v1.2.3");
    }
}

#[test]
fn alphabetical_asc_selects_the_greatest_and_desc_the_least() {
    let tags = [
        "RELEASE.2024-01-01",
        "RELEASE.2025-06-30",
        "RELEASE.2023-12-31",
    ];
    assert_eq!(
        select(alphabetical(None), None, &tags).unwrap(),
        "RELEASE.2025-06-30"
    );
    let desc = alphabetical(Some(SortOrder::Desc));
    assert_eq!(select(desc, None, &tags).unwrap(), "RELEASE.2023-12-31");
    assert_eq!(
        select(alphabetical(None), None, &["b", "B", "a"]).unwrap(),
        "b"
    );
}

#[test]
fn numerical_orders_by_value_not_text() {
    let tags = ["9", "10", "2.5", "-1", "1e0"];
    assert_eq!(select(numerical(None), None, &tags).unwrap(), "10");
    let desc = numerical(Some(SortOrder::Desc));
    assert_eq!(select(desc, None, &tags).unwrap(), "-1");
}

#[test]
fn numerical_fails_on_any_non_number_naming_the_fix() {
    let error = select(numerical(None), None, &["1", "2", "latest"]).unwrap_err();
    assert!(matches!(&error, PolicyError::NotANumber { value, .. } if value == "latest"));
    assert!(error.to_string().contains("filterTags.pattern"), "{error}");
}

#[test]
fn numbers_parse_like_go_parse_float() {
    for (text, expected) in [
        ("1_000", Some(1000.0)),
        ("0_1", Some(1.0)),
        ("1_0.5", Some(10.5)),
        (".5", Some(0.5)),
        ("5.", Some(5.0)),
        ("1E+2", Some(100.0)),
        ("+1", Some(1.0)),
        ("-0", Some(-0.0)),
        ("1e-400", Some(0.0)),
        ("Inf", Some(f64::INFINITY)),
        ("-infinity", Some(f64::NEG_INFINITY)),
        ("1__0", None),
        ("_1", None),
        ("1_", None),
        ("+nan", None),
        ("1e400", None),
        (" 1", None),
        ("1.5e", None),
        ("0x10", None),
        ("0b1", None),
        ("infinit", None),
    ] {
        assert_eq!(parse_number(text), expected, "{text:?}");
    }
    assert!(parse_number("NaN").is_some_and(f64::is_nan));
}

#[test]
fn extract_compares_the_extracted_value_and_returns_the_original_tag() {
    let tags = [
        "main-3f2a1b0-1700000000",
        "main-aa11bb2-1700000500",
        "main-9c8d7e6-999",
        "feature-x-1800000000",
    ];
    let filter = Some((r"^main-[a-f0-9]+-(?P<ts>[0-9]+)$", "$ts"));
    assert_eq!(
        select(numerical(None), filter, &tags).unwrap(),
        "main-aa11bb2-1700000500"
    );
    assert_eq!(
        select(alphabetical(None), filter, &tags).unwrap(),
        "main-9c8d7e6-999"
    );
    let semver_filter = Some((r"^app-v?(\d+\.\d+\.\d+)$", "${1}"));
    let tags = ["app-1.2.0", "app-v1.10.0", "other-9.9.9"];
    assert_eq!(
        select(semver("^1"), semver_filter, &tags).unwrap(),
        "app-v1.10.0"
    );
}

#[test]
fn filter_without_match_and_invalid_pattern_are_reported() {
    let error = select(alphabetical(None), Some(("^nope", "")), &["a", "b"]).unwrap_err();
    assert!(matches!(error, PolicyError::NoTagMatchesFilter { tags: 2 }));
    let error = select(alphabetical(None), Some(("(unclosed", "")), &["a"]).unwrap_err();
    assert!(error.is_spec_error());
    assert!(error.to_string().contains("filterTags.pattern"), "{error}");
}

#[test]
fn extract_expands_like_go() {
    let pattern = regex::Regex::new(r"^(?P<a>[a-z]+)-(?P<b>[0-9]+)(x)?$").unwrap();
    let captures = pattern.captures("abc-12").unwrap();
    for (template, expected) in [
        ("$a", "abc"),
        ("${a}", "abc"),
        ("$1", "abc"),
        ("$1x", ""),
        ("${1}x", "abcx"),
        ("$$", "$"),
        ("$", "$"),
        ("$9", ""),
        ("$3", ""),
        ("$01", ""),
        ("${a", "${a"),
        ("$-", "$-"),
        ("x$ay", "x"),
        ("${b}.${a}", "12.abc"),
        ("$0", "abc-12"),
        ("$ä", ""),
    ] {
        assert_eq!(
            filter::expand(&pattern, &captures, template),
            expected,
            "{template:?}"
        );
    }
}

#[test]
fn policy_precedence_and_missing_policy() {
    let both = ImagePolicyChoice {
        semver: Some(SemVerPolicy {
            range: "1.x".to_owned(),
        }),
        alphabetical: Some(AlphabeticalPolicy { order: None }),
        numerical: None,
    };
    assert_eq!(select(both, None, &["1.0.0", "zzz"]).unwrap(), "1.0.0");
    let error = select(ImagePolicyChoice::default(), None, &["1"]).unwrap_err();
    assert!(matches!(error, PolicyError::NoPolicy));
    assert!(error.is_spec_error());
}

#[test]
fn no_tags_is_an_error() {
    let no_tags: [&str; 0] = [];
    let error = select(alphabetical(None), None, &no_tags).unwrap_err();
    assert!(matches!(error, PolicyError::NoTags));
}

#[test]
fn duplicate_extracted_values_resolve_to_the_greatest_original_tag() {
    let filter = Some((r"^(?:a|b)-(\d+)$", "$1"));
    for tags in [["a-7", "b-7", "a-3"], ["b-7", "a-3", "a-7"]] {
        assert_eq!(select(numerical(None), filter, &tags).unwrap(), "b-7");
    }
}
