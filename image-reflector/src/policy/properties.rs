//! Property tests: version order, and selection invariants for every policy.

use proptest::prelude::*;
use proptest::sample::SizeRange;
use sluice_api::image::SortOrder;

use super::*;

fn identifier() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..20).prop_map(|number| number.to_string()),
        "[a-z][a-z0-9-]{0,4}",
    ]
}

fn version_tag() -> impl Strategy<Value = String> {
    (
        0u64..4,
        0u64..4,
        0u64..4,
        prop::collection::vec(identifier(), 0..3),
        any::<bool>(),
        prop::option::of("[a-z0-9]{1,3}"),
    )
        .prop_map(|(major, minor, patch, prerelease, v, build)| {
            let mut tag = format!("{}{major}.{minor}.{patch}", if v { "v" } else { "" });
            if !prerelease.is_empty() {
                tag = format!("{tag}-{}", prerelease.join("."));
            }
            if let Some(build) = build {
                tag = format!("{tag}+{build}");
            }
            tag
        })
}

fn any_tag() -> impl Strategy<Value = String> {
    prop_oneof![
        version_tag(),
        "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,12}",
        (0u32..500).prop_map(|n| n.to_string())
    ]
}

fn tags(size: impl Into<SizeRange>) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(any_tag(), size)
}

fn order() -> impl Strategy<Value = SortOrder> {
    prop_oneof![Just(SortOrder::Asc), Just(SortOrder::Desc)]
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        prop_oneof![
            Just("*"),
            Just(">=1.0.0 <3.0.0"),
            Just("^1.x-0"),
            Just("~2.1"),
            Just("!=1.x")
        ]
        .prop_map(|range| Policy::SemVer(Range::parse(range).unwrap())),
        order().prop_map(Policy::Alphabetical),
        order().prop_map(Policy::Numerical),
    ]
}

fn parse(tag: &str) -> Version {
    Version::parse_tag(tag).unwrap()
}

proptest! {
    #[test]
    fn version_order_is_total_and_antisymmetric(a in version_tag(), b in version_tag(), c in version_tag()) {
        let (a, b, c) = (parse(&a), parse(&b), parse(&c));
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        prop_assert_eq!(a.cmp(&b) == std::cmp::Ordering::Equal, a == b);
        if a <= b && b <= c {
            prop_assert!(a <= c);
        }
    }

    #[test]
    fn version_order_follows_semver_precedence(a in version_tag(), b in version_tag()) {
        let (va, vb) = (parse(&a), parse(&b));
        let core = |v: &Version| (v.major, v.minor, v.patch);
        if core(&va) != core(&vb) {
            prop_assert_eq!(va.cmp(&vb), core(&va).cmp(&core(&vb)));
        } else if va.is_prerelease() != vb.is_prerelease() {
            prop_assert_eq!(va < vb, va.is_prerelease());
        }
        let without_build = |tag: &str| tag.split('+').next().unwrap_or(tag).trim_start_matches('v').to_owned();
        if without_build(&a) == without_build(&b) {
            prop_assert_eq!(va, vb);
        }
    }

    #[test]
    fn selected_tag_is_one_of_the_inputs(policy in policy(), tags in tags(1..30)) {
        if let Ok(selected) = TagSelector::new(policy, None).select(&tags) {
            prop_assert!(tags.iter().any(|tag| tag == selected));
        }
    }

    #[test]
    fn selection_does_not_depend_on_input_order(
        policy in policy(),
        tags in tags(1..30),
        seed in any::<u64>(),
    ) {
        let selector = TagSelector::new(policy, None);
        let mut shuffled = tags.clone();
        let len = shuffled.len();
        for index in 0..len {
            let other = (seed.wrapping_mul(index as u64 + 7) % len as u64) as usize;
            shuffled.swap(index, other);
        }
        let first = selector.select(&tags).map(str::to_owned).map_err(|e| e.to_string());
        let second = selector.select(&shuffled).map(str::to_owned).map_err(|e| e.to_string());
        prop_assert_eq!(first, second);
    }

    #[test]
    fn extract_maps_back_to_an_original_tag(
        numbers in prop::collection::vec(0u32..1000, 1..20),
        prefixes in prop::collection::vec("[a-f0-9]{7}", 1..20),
        order in order(),
    ) {
        let tags: Vec<String> = numbers
            .iter()
            .zip(prefixes.iter().cycle())
            .map(|(number, sha)| format!("main-{sha}-{number}"))
            .chain(["latest".to_owned()])
            .collect();
        let filter = TagFilter::new(r"^main-[a-f0-9]+-(?P<n>\d+)$", "$n").unwrap();
        let selected = TagSelector::new(Policy::Numerical(order), Some(filter))
            .select(&tags)
            .unwrap();
        prop_assert!(tags.iter().any(|tag| tag == selected));
        let extracted: u32 = selected.rsplit('-').next().unwrap().parse().unwrap();
        let expected = match order {
            SortOrder::Asc => numbers.iter().max(),
            SortOrder::Desc => numbers.iter().min(),
        };
        prop_assert_eq!(Some(&extracted), expected);
    }

    #[test]
    fn asc_and_desc_select_opposite_ends(tags in tags(1..30)) {
        let asc = TagSelector::new(Policy::Alphabetical(SortOrder::Asc), None);
        let desc = TagSelector::new(Policy::Alphabetical(SortOrder::Desc), None);
        prop_assert_eq!(asc.select(&tags).unwrap(), tags.iter().max().unwrap().as_str());
        prop_assert_eq!(desc.select(&tags).unwrap(), tags.iter().min().unwrap().as_str());

        let numbers: Vec<String> = tags.iter().filter(|tag| parse_number(tag).is_some()).cloned().collect();
        if !numbers.is_empty() {
            let value = |tag: &str| parse_number(tag).unwrap();
            let asc = TagSelector::new(Policy::Numerical(SortOrder::Asc), None).select(&numbers).unwrap();
            let desc = TagSelector::new(Policy::Numerical(SortOrder::Desc), None).select(&numbers).unwrap();
            prop_assert!(numbers.iter().all(|tag| value(tag) <= value(asc) && value(tag) >= value(desc)));
        }
    }

    #[test]
    fn semver_selects_the_maximum_admitted_version(tags in prop::collection::vec(version_tag(), 1..30)) {
        let range = Range::parse(">=1.0.0-0").unwrap();
        let selected = TagSelector::new(Policy::SemVer(range.clone()), None).select(&tags);
        let best = tags.iter().map(|tag| parse(tag)).filter(|v| range.admits(v)).max();
        match (selected, best) {
            (Ok(selected), Some(best)) => prop_assert_eq!(parse(selected), best),
            (Err(_), None) => {}
            (selected, best) => prop_assert!(false, "selected {:?}, best {:?}", selected, best),
        }
    }
}
