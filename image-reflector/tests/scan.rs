//! ImageRepository scans and ImagePolicy selection against the real distribution registry.

mod common;

use anyhow::Result;
use common::{Harness, failed_with, is_ready, latest_tag, push_tags, ready_of, stalled_with};
use serde_json::json;
use sluice_api::image::{ImagePolicy, ImageRepository};
use sluice_e2e::registry::{OciClient, Registry};

fn semver_tags() -> Vec<String> {
    let mut tags: Vec<String> = (0..40)
        .map(|i| format!("1.{}.{}", i / 10, i % 10))
        .collect();
    tags.extend(["v2.0.0", "2.1.0-rc.1", "latest", "sha256-abc.sig"].map(String::from));
    tags.extend((1..=12).map(|i| format!("main-{i}-{:07x}", i * 4099)));
    tags
}

fn scan_of(object: &ImageRepository) -> sluice_api::image::ScanResult {
    object
        .status
        .as_ref()
        .and_then(|status| status.last_scan_result.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_select_rescan_on_request_and_exclusion() -> Result<()> {
    let harness = Harness::start("image-scan").await?;
    let registry = Registry::builder().start()?;
    let client = registry.client()?;
    let tags = semver_tags();
    push_tags(&client, "team/app", &tags).await?;
    let image = format!("{}/team/app", registry.host());
    harness
        .create_repository(
            "app",
            json!({"image": image, "interval": "1h", "insecure": true}),
        )
        .await?;
    let policies = create_policies(&harness).await?;
    let revision = check_first_scan(&harness, &tags, &image).await?;
    for (name, expected) in &policies {
        check_selection(&harness, name, expected, &image).await?;
    }
    rescan_on_request(&harness, &client, &tags, &image, &revision).await?;
    exclusion_list_change(&harness).await
}

/// One policy of each kind on ImageRepository `app`; returns each name with the tag it selects.
async fn create_policies(harness: &Harness) -> Result<Vec<(&'static str, String)>> {
    let newest_build = format!("main-12-{:07x}", 12 * 4099);
    let policies = [
        ("semver", json!({"semver": {"range": "1.x"}}), None, "1.3.9"),
        (
            "semver-v",
            json!({"semver": {"range": ">=2.0.0"}}),
            None,
            "v2.0.0",
        ),
        (
            "semver-pre",
            json!({"semver": {"range": ">=2.1.0-0"}}),
            None,
            "2.1.0-rc.1",
        ),
        (
            "numerical",
            json!({"numerical": {"order": "asc"}}),
            Some(json!({"pattern": "^main-(?P<build>[0-9]+)-[a-f0-9]+$", "extract": "$build"})),
            newest_build.as_str(),
        ),
        (
            "alphabetical-desc",
            json!({"alphabetical": {"order": "desc"}}),
            Some(json!({"pattern": "^main-.*"})),
            "main-1-0001003",
        ),
    ];
    for (name, policy, filter, _) in &policies {
        let mut spec = json!({"imageRepositoryRef": {"name": "app"}, "policy": policy});
        if let Some(filter) = filter {
            spec["filterTags"] = filter.clone();
        }
        harness.create_policy(name, spec).await?;
    }

    Ok(policies
        .into_iter()
        .map(|(name, _, _, expected)| (name, expected.to_owned()))
        .collect())
}

/// The first scan's status as Flux writes it; returns its revision.
async fn check_first_scan(harness: &Harness, tags: &[String], image: &str) -> Result<String> {
    let ready = harness.wait_repository("app", "Ready", is_ready).await?;
    let scan = scan_of(&ready);
    assert_eq!(
        scan.tag_count as usize,
        tags.len() - 1,
        "the .sig tag is excluded"
    );
    let mut expected_latest: Vec<String> = tags
        .iter()
        .filter(|t| !t.ends_with(".sig"))
        .cloned()
        .collect();
    expected_latest.sort_by(|a, b| b.cmp(a));
    expected_latest.truncate(10);
    assert_eq!(scan.latest_tags, expected_latest);
    let mut stored: Vec<String> = tags
        .iter()
        .filter(|t| !t.ends_with(".sig"))
        .cloned()
        .collect();
    stored.sort();
    let revision = image_reflector::storage::adler32(&serde_json::to_vec(&stored)?).to_string();
    assert_eq!(
        scan.revision, revision,
        "Flux's revision: adler32 of the JSON tag array"
    );
    let status = ready.status.clone().unwrap_or_default();
    assert_eq!(status.canonical_image_name.as_deref(), Some(image));
    assert_eq!(status.observed_exclusion_list, [r"^.*\.sig$"]);
    let (_, reason, message) = ready_of(&ready).unwrap_or_default();
    assert_eq!(reason, "Succeeded");
    assert_eq!(
        message,
        format!(
            "successful scan: found {} tags with checksum {revision}",
            tags.len() - 1
        )
    );
    Ok(revision)
}

/// The policy `name` resolved to `expected`, without digest.
async fn check_selection(harness: &Harness, name: &str, expected: &str, image: &str) -> Result<()> {
    let policy = harness
        .wait_policy(name, "a latest tag", |p| {
            is_ready(p) && latest_tag(p).is_some()
        })
        .await?;
    assert_eq!(latest_tag(&policy).as_deref(), Some(expected), "{name}");
    let latest = policy
        .status
        .as_ref()
        .and_then(|s| s.latest_ref.clone())
        .unwrap_or_default();
    assert_eq!(latest.name, image, "latestRef.name is spec.image verbatim");
    assert!(
        latest.digest.is_empty(),
        "digestReflectionPolicy defaults to Never"
    );
    Ok(())
}

/// New tags are seen on a requested scan; the policy follows the new revision at once.
async fn rescan_on_request(
    harness: &Harness,
    client: &OciClient,
    tags: &[String],
    image: &str,
    revision: &str,
) -> Result<()> {
    push_tags(client, "team/app", &["1.4.0"]).await?;
    let rescanned = harness.request_scan("app", "rescan-1").await?;
    assert_eq!(scan_of(&rescanned).tag_count as usize, tags.len());
    assert_ne!(scan_of(&rescanned).revision, revision);
    let semver = harness
        .wait_policy("semver", "1.4.0", |p| {
            latest_tag(p).as_deref() == Some("1.4.0")
        })
        .await?;
    let status = semver.status.clone().unwrap_or_default();
    assert_eq!(
        status.observed_previous_ref.map(|r| r.tag).as_deref(),
        Some("1.3.9")
    );
    let (_, _, message) = ready_of(&semver).unwrap_or_default();
    assert_eq!(
        message,
        format!("Latest image tag for {image} resolved to 1.4.0")
    );
    let events = harness.events("semver").await?;
    let resolved =
        format!("Latest image tag for {image} resolved to 1.4.0 (previously {image}:1.3.9)");
    assert!(
        events.iter().any(|(_, note)| note == &resolved),
        "{events:?}"
    );

    Ok(())
}

/// A custom exclusion list replaces the default and forces a scan.
async fn exclusion_list_change(harness: &Harness) -> Result<()> {
    let patch = json!({"spec": {"exclusionList": ["^main-", "^latest$"]}});
    harness
        .repositories()
        .patch(
            "app",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await?;
    let excluded = harness
        .wait_repository("app", "the new exclusion list", |r| {
            is_ready(r)
                && r.status
                    .as_ref()
                    .is_some_and(|s| s.observed_exclusion_list.len() == 2)
        })
        .await?;
    let scan = scan_of(&excluded);
    assert_eq!(
        scan.tag_count, 44,
        "40 + 1.4.0 + v2.0.0 + 2.1.0-rc.1 + .sig tag"
    );
    assert!(
        scan.latest_tags
            .iter()
            .all(|t| !t.starts_with("main-") && t != "latest")
    );
    let numerical = harness
        .wait_policy(
            "numerical",
            "no tag left",
            failed_with::<ImagePolicy>("ReconciliationFailed"),
        )
        .await?;
    assert!(ready_of(&numerical).is_some_and(|(_, _, m)| m.contains("filterTags")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_specs_stall_naming_the_field() -> Result<()> {
    let harness = Harness::start("image-invalid").await?;
    let registry = Registry::builder().start()?;
    push_tags(&registry.client()?, "app", &["1.0.0"]).await?;
    let image = format!("{}/app", registry.host());
    let base = |extra: serde_json::Value| {
        common::merged(
            json!({"image": image, "interval": "1h", "insecure": true}),
            extra,
        )
    };
    harness
        .create_repository("bad-regex", base(json!({"exclusionList": ["(unclosed"]})))
        .await?;
    harness
        .create_repository("aws", base(json!({"provider": "aws"})))
        .await?;
    harness.create_repository("app", base(json!({}))).await?;
    harness
        .create_repository(
            "tagged",
            json!({"image": format!("{image}:1.0.0"), "interval": "1h"}),
        )
        .await?;
    harness
        .create_policy("bad-range", json!({"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": "not a range"}}}))
        .await?;
    harness
        .create_policy("bad-pattern", json!({"imageRepositoryRef": {"name": "app"}, "policy": {"alphabetical": {}}, "filterTags": {"pattern": "(["}}))
        .await?;

    let stalled = harness
        .wait_repository(
            "bad-regex",
            "stalled",
            stalled_with::<ImageRepository>("InvalidExclusionList"),
        )
        .await?;
    assert!(ready_of(&stalled).is_some_and(|(s, _, m)| s == "False"
        && m.contains("(unclosed")
        && m.contains("spec.exclusionList")));
    let aws = harness
        .wait_repository(
            "aws",
            "stalled",
            stalled_with::<ImageRepository>("InvalidProviderConfiguration"),
        )
        .await?;
    assert!(ready_of(&aws).is_some_and(|(_, _, m)| m.contains("spec.provider")));
    let tagged = harness
        .wait_repository(
            "tagged",
            "stalled",
            stalled_with::<ImageRepository>("ImageURLInvalid"),
        )
        .await?;
    assert!(ready_of(&tagged).is_some_and(|(_, _, m)| m.contains("tag")));
    let range = harness
        .wait_policy(
            "bad-range",
            "stalled",
            stalled_with::<ImagePolicy>("InvalidPolicy"),
        )
        .await?;
    assert!(ready_of(&range).is_some_and(|(_, _, m)| m.contains("policy.semver.range")));
    let pattern = harness
        .wait_policy(
            "bad-pattern",
            "stalled",
            stalled_with::<ImagePolicy>("InvalidPolicy"),
        )
        .await?;
    assert!(ready_of(&pattern).is_some_and(|(_, _, m)| m.contains("filterTags.pattern")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_past_1000_tags() -> Result<()> {
    let harness = Harness::start("image-pages").await?;
    let registry = Registry::builder().start()?;
    let tags: Vec<String> = (0..1_200)
        .map(|i| format!("1.{}.{}", i / 100, i % 100))
        .collect();
    push_tags(&registry.client()?, "many", &tags).await?;
    let image = format!("{}/many", registry.host());
    harness
        .create_repository(
            "many",
            json!({"image": image, "interval": "1h", "insecure": true}),
        )
        .await?;
    harness
        .create_policy("latest", json!({"imageRepositoryRef": {"name": "many"}, "policy": {"semver": {"range": ">=1.0.0"}}}))
        .await?;
    let ready = harness.wait_repository("many", "Ready", is_ready).await?;
    assert_eq!(scan_of(&ready).tag_count, 1_200);
    let policy = harness
        .wait_policy("latest", "1.11.99", |p| {
            latest_tag(p).as_deref() == Some("1.11.99")
        })
        .await?;
    assert!(is_ready(&policy));
    Ok(())
}
