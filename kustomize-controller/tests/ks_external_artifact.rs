//! `sourceRef.kind: ExternalArtifact` against a real apiserver: applied from the artifact a
//! third-party producer writes into the ExternalArtifact's status (with Flux's
//! `ExternalArtifact` gate), and denied as in Flux without it.

mod common;

use common::{Harness, condition, config_map, is_success, last_applied};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use sluice_api::source::ExternalArtifact;

const GATE: &str = "--feature-gates=ExternalArtifact=true";

/// Creates ExternalArtifact `name` if needed and writes an artifact of `files` at `revision`
/// into its status, as a producer would (status subresource).
async fn produce(h: &Harness, name: &str, revision: &str, files: &[(&str, &str)]) -> String {
    let api: Api<ExternalArtifact> = h.api();
    if api.get_opt(name).await.unwrap().is_none() {
        let object: ExternalArtifact = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "ExternalArtifact",
            "metadata": {"name": name},
            "spec": {"sourceRef": {"apiVersion": "example.com/v1", "kind": "Generator",
                                   "name": "gen"}},
        }))
        .unwrap();
        api.create(&PostParams::default(), &object).await.unwrap();
    }
    let (url, digest) = h.server.put(&format!("{name}-{revision}.tar.gz"), files);
    let revision = format!("{revision}@{digest}");
    let status = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "ExternalArtifact",
        "status": {
            "artifact": {
                "digest": digest,
                "lastUpdateTime": "2026-01-01T00:00:00Z",
                "path": format!("externalartifact/{}/{name}/x.tar.gz", h.ns),
                "revision": revision,
                "url": url,
            },
            "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                            "message": "produced", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        },
    });
    api.patch_status(
        name,
        &PatchParams::apply("artifact-producer").force(),
        &Patch::Apply(&status),
    )
    .await
    .unwrap();
    revision
}

#[tokio::test]
async fn an_external_artifact_is_applied_and_its_new_revisions_follow_with_the_gate() {
    let h = Harness::start("ks-ea", &[GATE]).await;
    let first = produce(
        &h,
        "generated",
        "v1",
        &[("cm.yaml", &config_map("made", "1"))],
    )
    .await;
    h.kustomization(
        "app",
        "generated",
        json!({"sourceRef": {"kind": "ExternalArtifact", "name": "generated"}}),
    )
    .await;
    let ks = h
        .wait_ks("app", "Ready at the first revision", |ks| {
            is_success(ks) && last_applied(ks) == Some(first.as_str())
        })
        .await;
    assert_eq!(last_applied(&ks), Some(first.as_str()));
    let configs: Api<ConfigMap> = h.api();
    let data = |cm: ConfigMap| cm.data.unwrap_or_default().get("value").cloned();
    assert_eq!(
        data(configs.get("made").await.unwrap()).as_deref(),
        Some("1")
    );

    // A new revision written by the producer is applied at once (the watch, not the interval).
    let second = produce(
        &h,
        "generated",
        "v2",
        &[("cm.yaml", &config_map("made", "2"))],
    )
    .await;
    h.wait_ks("app", "Ready at the second revision", |ks| {
        is_success(ks) && last_applied(ks) == Some(second.as_str())
    })
    .await;
    assert_eq!(
        data(configs.get("made").await.unwrap()).as_deref(),
        Some("2")
    );
}

#[tokio::test]
async fn an_external_artifact_without_the_gate_is_denied_as_in_flux() {
    let h = Harness::start("ks-ea-off", &[]).await;
    produce(
        &h,
        "generated",
        "v1",
        &[("cm.yaml", &config_map("never", "1"))],
    )
    .await;
    h.kustomization(
        "app",
        "generated",
        json!({"sourceRef": {"kind": "ExternalArtifact", "name": "generated"}}),
    )
    .await;
    let ks = h.wait_failed("app", "AccessDenied").await;
    let ready = condition(&ks, "Ready").unwrap();
    assert!(
        ready.message.starts_with(&format!(
            "can't access 'ExternalArtifact/{}/generated', ExternalArtifact feature gate is disabled",
            h.ns
        )),
        "{}",
        ready.message
    );
    let stalled = condition(&ks, "Stalled").expect("a Stalled condition");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "AccessDenied")
    );
    let configs: Api<ConfigMap> = h.api();
    assert!(configs.get_opt("never").await.unwrap().is_none());
}
