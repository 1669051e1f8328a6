//! Cross-namespace references, restarts and deletion against the real registry and apiserver.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::{Harness, Options, failed_with, is_ready, latest_tag, push_tags, stalled_with};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use sluice_api::image::ImagePolicy;
use sluice_e2e::poll::eventually;
use sluice_e2e::registry::Registry;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_namespace_refused_by_flag_then_governed_by_access_from() -> Result<()> {
    let registry = Registry::builder().start()?;
    push_tags(&registry.client()?, "shared/app", &["1.0.0", "1.1.0"]).await?;
    let image = format!("{}/shared/app", registry.host());
    let spec = json!({"image": image, "interval": "1h", "insecure": true});

    let strict = Harness::start("image-xns-strict").await?;
    let elsewhere = strict.other_namespace("image-xns-repo").await?;
    strict
        .create_repository_in(&elsewhere, "app", spec.clone())
        .await?;
    let reference = json!({"imageRepositoryRef": {"name": "app", "namespace": elsewhere}, "policy": {"alphabetical": {}}});
    strict.create_policy("remote", reference.clone()).await?;
    let refused = strict
        .wait_policy(
            "remote",
            "AccessDenied",
            stalled_with::<ImagePolicy>("AccessDenied"),
        )
        .await?;
    assert!(
        common::ready_of(&refused).is_some_and(|(_, _, m)| m.contains("--no-cross-namespace-refs"))
    );

    let open = Harness::start_with(
        "image-xns-open",
        Options {
            no_cross_namespace_refs: false,
            ..Options::default()
        },
    )
    .await?;
    let elsewhere = open.other_namespace("image-xns-acl").await?;
    let mut guarded = spec.clone();
    guarded["accessFrom"] = json!({"namespaceSelectors": [{"matchLabels": {"team": "apps"}}]});
    open.create_repository_in(&elsewhere, "app", guarded)
        .await?;
    let reference = json!({"imageRepositoryRef": {"name": "app", "namespace": elsewhere}, "policy": {"alphabetical": {}}});
    open.create_policy("remote", reference).await?;
    open.wait_policy(
        "remote",
        "AccessDenied",
        failed_with::<ImagePolicy>("AccessDenied"),
    )
    .await?;
    let label = json!({"metadata": {"labels": {"team": "apps"}}});
    Api::<Namespace>::all(open.client.clone())
        .patch(
            &open.namespace,
            &PatchParams::default(),
            &Patch::Merge(&label),
        )
        .await?;
    let resolved = open
        .wait_policy("remote", "1.1.0", |p| {
            is_ready(p) && latest_tag(p).as_deref() == Some("1.1.0")
        })
        .await?;
    assert_eq!(
        resolved.status.and_then(|s| s.latest_ref).map(|r| r.name),
        Some(image)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_tags_without_rescanning_and_deletion_removes_them() -> Result<()> {
    let harness = Harness::start("image-restart").await?;
    let registry = Registry::builder().start()?;
    push_tags(&registry.client()?, "app", &["1.0.0", "1.3.0"]).await?;
    let image = format!("{}/app", registry.host());
    for name in ["one", "two", "three"] {
        harness
            .create_repository(
                name,
                json!({"image": image, "interval": "1h", "insecure": true, "timeout": "3s"}),
            )
            .await?;
    }
    let mut scan_times = Vec::new();
    for name in ["one", "two", "three"] {
        let ready = harness.wait_repository(name, "Ready", is_ready).await?;
        scan_times.push(ready.status.and_then(|s| s.last_scan_result));
    }

    // The registry goes away: a rescan would fail, so staying Ready proves no rescan happened.
    drop(registry);
    let harness = harness.restart().await?;
    harness
        .create_policy(
            "after-restart",
            json!({"imageRepositoryRef": {"name": "two"}, "policy": {"semver": {"range": "1.x"}}}),
        )
        .await?;
    harness
        .wait_policy("after-restart", "1.3.0 from stored tags", |p| {
            is_ready(p) && latest_tag(p).as_deref() == Some("1.3.0")
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (name, before) in ["one", "two", "three"].iter().zip(&scan_times) {
        let object = harness.repositories().get(name).await?;
        assert!(is_ready(&object), "{name} stays Ready after the restart");
        assert_eq!(
            &object.status.and_then(|s| s.last_scan_result),
            before,
            "{name}"
        );
    }

    // Deleting an ImageRepository deletes its stored tags.
    let file = harness
        .storage_root()
        .join("imagerepository")
        .join(&harness.namespace)
        .join("one");
    assert!(file.exists());
    harness
        .repositories()
        .delete("one", &DeleteParams::default())
        .await?;
    eventually(
        "the tags of 'one' to be removed",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async {
            if file.exists() {
                Err("still stored")
            } else {
                Ok(())
            }
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_image_is_not_resolved_from_the_old_images_tags() -> Result<()> {
    let harness = Harness::start("image-changed").await?;
    let registry = Registry::builder().start()?;
    push_tags(&registry.client()?, "old", &["1.0.0", "2.0.0"]).await?;
    let host = registry.host();
    harness
        .create_repository(
            "app",
            json!({"image": format!("{host}/old"), "interval": "1h", "insecure": true}),
        )
        .await?;
    harness
        .create_policy(
            "latest",
            json!({"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": "*"}}}),
        )
        .await?;
    harness
        .wait_policy("latest", "2.0.0", |p| {
            latest_tag(p).as_deref() == Some("2.0.0")
        })
        .await?;

    let moved = json!({"spec": {"image": format!("{host}/missing")}});
    harness
        .repositories()
        .patch("app", &PatchParams::default(), &Patch::Merge(&moved))
        .await?;
    harness
        .wait_repository(
            "app",
            "the new image fails",
            failed_with::<sluice_api::image::ImageRepository>("ReadOperationFailed"),
        )
        .await?;
    let request =
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "moved"}}});
    harness
        .policies()
        .patch("latest", &PatchParams::default(), &Patch::Merge(&request))
        .await?;
    let waiting = harness
        .wait_policy(
            "latest",
            "DependencyNotReady",
            failed_with::<ImagePolicy>("DependencyNotReady"),
        )
        .await?;
    let latest = waiting
        .status
        .and_then(|s| s.latest_ref)
        .unwrap_or_default();
    assert_eq!(
        latest.name,
        format!("{host}/old"),
        "the last resolution is kept"
    );
    Ok(())
}
