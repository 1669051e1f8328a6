//! Each receiver type with a valid and an invalid request against the real apiserver: only the
//! valid one annotates the GitRepository; the limits, suspension and selection rules as Flux.

mod receiver_common;

use anyhow::Result;
use aws_lc_rs::hmac;
use base64::Engine;
use receiver_common::Harness;
use serde_json::json;

const TOKEN: &str = "receiver-test-token-9f8e7d";

fn sign(algorithm: hmac::Algorithm, body: &[u8]) -> String {
    hex::encode(hmac::sign(&hmac::Key::new(algorithm, TOKEN.as_bytes()), body).as_ref())
}

/// A Receiver of `type_` over GitRepository `target`, with the shared token Secret.
async fn setup(harness: &Harness, type_: &str, extra: serde_json::Value) -> Result<String> {
    harness.secret("token", &[("token", TOKEN)]).await?;
    harness.git_repository("target", &[]).await?;
    let mut spec = json!({
        "type": type_,
        "secretRef": {"name": "token"},
        "resources": [{"kind": "GitRepository", "name": "target"}],
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    harness.receiver(type_, spec).await
}

/// Posts the invalid request (expecting `refused`), checks nothing changed, then the valid one.
async fn invalid_then_valid(
    type_: &str,
    extra: serde_json::Value,
    invalid: (&[(&str, &str)], &[u8], u16),
    valid: (&[(&str, &str)], &[u8]),
) -> Result<()> {
    let harness = Harness::start(&format!("recv-{type_}")).await?;
    let path = setup(&harness, type_, extra).await?;
    let (headers, body, refused) = invalid;
    assert_eq!(
        harness.post(&path, headers, body).await?,
        refused,
        "{type_}: invalid request"
    );
    assert_eq!(
        harness.requested_at("target").await?,
        None,
        "{type_}: invalid request touched nothing"
    );
    let (headers, body) = valid;
    assert_eq!(
        harness.post(&path, headers, body).await?,
        200,
        "{type_}: valid request"
    );
    assert!(
        harness.requested_at("target").await?.is_some(),
        "{type_}: annotated"
    );
    Ok(())
}

#[tokio::test]
async fn generic_needs_only_the_secret_path() -> Result<()> {
    let harness = Harness::start("recv-generic").await?;
    let path = setup(&harness, "generic", json!({})).await?;
    let wrong = format!("/hook/{}", "0".repeat(64));
    assert_eq!(harness.post(&wrong, &[], b"{}").await?, 404);
    assert_eq!(harness.requested_at("target").await?, None);
    assert_eq!(harness.post(&path, &[], b"anything").await?, 200);
    assert!(harness.requested_at("target").await?.is_some());
    Ok(())
}

#[tokio::test]
async fn generic_hmac_checks_x_signature() -> Result<()> {
    let body = br#"{"ref":"main"}"#;
    let good = format!("sha512={}", sign(hmac::HMAC_SHA512, body));
    let bad = format!("sha512={}", sign(hmac::HMAC_SHA512, b"other body"));
    invalid_then_valid(
        "generic-hmac",
        json!({}),
        (&[("X-Signature", &bad)], body, 401),
        (&[("X-Signature", &good)], body),
    )
    .await
}

#[tokio::test]
async fn github_checks_x_hub_signature_256_and_the_event() -> Result<()> {
    let body = br#"{"ref":"refs/heads/main","after":"abc"}"#;
    let good = format!("sha256={}", sign(hmac::HMAC_SHA256, body));
    let bad = format!("sha256={}", sign(hmac::HMAC_SHA256, b"{}"));
    let json = ("Content-Type", "application/json");
    invalid_then_valid(
        "github",
        json!({"events": ["push"]}),
        (
            &[
                json,
                ("X-GitHub-Event", "push"),
                ("X-Hub-Signature-256", &bad),
            ],
            body,
            401,
        ),
        (
            &[
                json,
                ("X-GitHub-Event", "push"),
                ("X-Hub-Signature-256", &good),
            ],
            body,
        ),
    )
    .await
}

#[tokio::test]
async fn github_ping_is_answered_and_other_events_filtered() -> Result<()> {
    let harness = Harness::start("recv-github-ping").await?;
    let path = setup(&harness, "github", json!({"events": ["push"]})).await?;
    let body = br#"{"zen":"Keep it logically awesome."}"#;
    let signature = format!("sha256={}", sign(hmac::HMAC_SHA256, body));
    let headers = |event| {
        [
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", event),
            ("X-Hub-Signature-256", signature.as_str()),
        ]
    };
    assert_eq!(harness.post(&path, &headers("ping"), body).await?, 200);
    assert_eq!(harness.post(&path, &headers("issues"), body).await?, 400);
    assert_eq!(harness.requested_at("target").await?, None);
    Ok(())
}

#[tokio::test]
async fn gitlab_checks_x_gitlab_token() -> Result<()> {
    invalid_then_valid(
        "gitlab",
        json!({"events": ["Push Hook"]}),
        (
            &[
                ("X-Gitlab-Token", "not-the-token"),
                ("X-Gitlab-Event", "Push Hook"),
            ],
            b"{}",
            401,
        ),
        (
            &[("X-Gitlab-Token", TOKEN), ("X-Gitlab-Event", "Push Hook")],
            b"{}",
        ),
    )
    .await
}

#[tokio::test]
async fn bitbucket_checks_x_hub_signature() -> Result<()> {
    let body = br#"{"eventKey":"repo:refs_changed"}"#;
    let good = format!("sha256={}", sign(hmac::HMAC_SHA256, body));
    let bad = format!("sha256={}", sign(hmac::HMAC_SHA256, b"x"));
    invalid_then_valid(
        "bitbucket",
        json!({"events": ["repo:refs_changed"]}),
        (
            &[
                ("X-Event-Key", "repo:refs_changed"),
                ("X-Hub-Signature", &bad),
            ],
            body,
            401,
        ),
        (
            &[
                ("X-Event-Key", "repo:refs_changed"),
                ("X-Hub-Signature", &good),
            ],
            body,
        ),
    )
    .await
}

#[tokio::test]
async fn harbor_checks_the_authorization_header() -> Result<()> {
    invalid_then_valid(
        "harbor",
        json!({}),
        (&[("Authorization", "wrong")], b"{}", 401),
        (&[("Authorization", TOKEN)], br#"{"type":"PUSH_ARTIFACT"}"#),
    )
    .await
}

#[tokio::test]
async fn nexus_checks_the_sha1_signature() -> Result<()> {
    let body = br#"{"action":"CREATED","repositoryName":"docker-hosted"}"#;
    let good = sign(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, body);
    let bad = sign(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, b"x");
    invalid_then_valid(
        "nexus",
        json!({}),
        (&[("X-Nexus-Webhook-Signature", &bad)], body, 401),
        (&[("X-Nexus-Webhook-Signature", &good)], body),
    )
    .await
}

#[tokio::test]
async fn dockerhub_quay_and_acr_need_their_payload() -> Result<()> {
    let dockerhub: &[u8] = br#"{"push_data":{"tag":"v1"},"repository":{"repo_url":"https://hub.docker.com/r/org/app"}}"#;
    invalid_then_valid(
        "dockerhub",
        json!({}),
        (&[], b"not json", 400),
        (&[], dockerhub),
    )
    .await?;
    let quay: &[u8] = br#"{"docker_url":"quay.io/org/app","updated_tags":["v1"]}"#;
    invalid_then_valid(
        "quay",
        json!({}),
        (&[], br#"{"updated_tags":1}"#, 400),
        (&[], quay),
    )
    .await?;
    let acr: &[u8] = br#"{"action":"push","target":{"repository":"app","tag":"v1"}}"#;
    invalid_then_valid("acr", json!({}), (&[], b"[", 400), (&[], acr)).await
}

#[tokio::test]
async fn cdevents_are_validated() -> Result<()> {
    let event: &[u8] = br#"{"context":{"version":"0.4.1","id":"1","source":"ci","type":"dev.cdevents.artifact.published.0.2.0","timestamp":"2024-01-01T00:00:00Z"},"subject":{"id":"app","content":{}}}"#;
    let ce_type = ("Ce-Type", "dev.cdevents.artifact.published.0.2.0");
    invalid_then_valid(
        "cdevents",
        json!({"events": ["dev.cdevents.artifact.published.0.2.0"]}),
        (&[ce_type], br#"{"context":{"version":"0.4.1"}}"#, 400),
        (&[ce_type], event),
    )
    .await
}

#[tokio::test]
async fn oversized_bodies_get_413_and_touch_nothing() -> Result<()> {
    let harness = Harness::start("recv-size").await?;
    let path = setup(&harness, "generic", json!({})).await?;
    let body = vec![b'a'; 3 * 1024 * 1024 + 1];
    assert_eq!(harness.post(&path, &[], &body).await?, 413);
    assert_eq!(harness.requested_at("target").await?, None);
    Ok(())
}

#[tokio::test]
async fn wildcard_names_annotate_only_matching_labels() -> Result<()> {
    let harness = Harness::start("recv-labels").await?;
    harness.secret("token", &[("token", TOKEN)]).await?;
    harness
        .git_repository("frontend", &[("team", "web")])
        .await?;
    harness
        .git_repository("backend", &[("team", "web")])
        .await?;
    harness.git_repository("other", &[("team", "data")]).await?;
    let path = harness
        .receiver(
            "labels",
            json!({
                "type": "generic",
                "secretRef": {"name": "token"},
                "resources": [{
                    "apiVersion": "source.toolkit.fluxcd.io/v1",
                    "kind": "GitRepository",
                    "name": "*",
                    "matchLabels": {"team": "web"},
                }],
            }),
        )
        .await?;
    assert_eq!(harness.post(&path, &[], b"").await?, 200);
    assert!(harness.requested_at("frontend").await?.is_some());
    assert!(harness.requested_at("backend").await?.is_some());
    assert_eq!(harness.requested_at("other").await?, None);
    Ok(())
}

#[tokio::test]
async fn cross_namespace_resources_are_refused_when_disabled() -> Result<()> {
    let options = notification_controller::receiver::ReceiverServerOptions {
        no_cross_namespace_refs: true,
        ..Default::default()
    };
    let harness = Harness::start_with("recv-xns", options).await?;
    let other = sluice_e2e::ControlPlane::shared()
        .await?
        .namespace("recv-xns-other")
        .await?;
    harness.secret("token", &[("token", TOKEN)]).await?;
    harness.git_repository_in(&other, "elsewhere", &[]).await?;
    let path = harness
        .receiver(
            "xns",
            json!({
                "type": "generic",
                "secretRef": {"name": "token"},
                "resources": [{"kind": "GitRepository", "name": "elsewhere", "namespace": other}],
            }),
        )
        .await?;
    assert_eq!(harness.post(&path, &[], b"").await?, 500);
    assert_eq!(harness.requested_at_in(&other, "elsewhere").await?, None);
    Ok(())
}

#[tokio::test]
async fn suspended_receivers_answer_503() -> Result<()> {
    let harness = Harness::start("recv-suspend").await?;
    let path = setup(&harness, "generic", json!({})).await?;
    let patch = json!({"spec": {"suspend": true}});
    harness
        .receivers()
        .patch(
            "generic",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await?;
    sluice_e2e::poll::eventually(
        "503 for a suspended receiver",
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(200),
        || async {
            match harness.post(&path, &[], b"").await {
                Ok(503) => Ok(()),
                Ok(status) => Err(format!("status {status}")),
                Err(error) => Err(error.to_string()),
            }
        },
    )
    .await?;
    // The request that raced the watch may have annotated; only the state after matters.
    Ok(())
}

#[tokio::test]
async fn missing_token_is_token_not_found_and_no_secret_leaks() -> Result<()> {
    let harness = Harness::start("recv-token").await?;
    let receivers = harness.receivers();
    let object: sluice_api::notification::Receiver = serde_json::from_value(json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1",
        "kind": "Receiver",
        "metadata": {"name": "waiting"},
        "spec": {"type": "github", "secretRef": {"name": "later"}, "resources": [{"kind": "GitRepository", "name": "x"}]},
    }))?;
    receivers.create(&Default::default(), &object).await?;
    let failed = sluice_e2e::poll::wait_object(
        &receivers,
        "waiting",
        "TokenNotFound",
        |r: &sluice_api::notification::Receiver| {
            r.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.reason == "TokenNotFound")
            })
        },
    )
    .await?;
    assert_eq!(failed.status.and_then(|s| s.webhook_path), None);
    harness.secret("later", &[("token", TOKEN)]).await?;
    let ready = sluice_e2e::poll::wait_object(
        &receivers,
        "waiting",
        "Ready",
        |r: &sluice_api::notification::Receiver| {
            r.status.as_ref().is_some_and(|s| s.webhook_path.is_some())
        },
    )
    .await?;
    let status = serde_json::to_string(&ready.status)?;
    assert!(
        status.contains("Receiver initialized for path: /hook/"),
        "{status}"
    );
    let events: kube::Api<k8s_openapi::api::core::v1::Event> =
        kube::Api::namespaced(harness.client.clone(), &harness.namespace);
    let events = sluice_e2e::poll::eventually(
        "the TokenNotFound warning and the success event",
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(200),
        || async {
            let list = events
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?;
            let text = serde_json::to_string(&list.items).map_err(|e| e.to_string())?;
            let warned = list.items.iter().any(|e| {
                e.type_.as_deref() == Some("Warning")
                    && e.reason.as_deref() == Some("TokenNotFound")
            });
            let succeeded = list.items.iter().any(|e| {
                e.reason.as_deref() == Some("Succeeded")
                    && e.message.as_deref() == Some("Reconciliation finished, next run in 10m0s")
            });
            if warned && succeeded {
                Ok(text)
            } else {
                Err(text)
            }
        },
    )
    .await?;
    let body = br#"{"ref":"main"}"#;
    let path = ready
        .status
        .and_then(|s| s.webhook_path)
        .unwrap_or_default();
    let forged = format!("sha256={}", sign(hmac::HMAC_SHA256, b"x"));
    harness
        .post(
            &path,
            &[
                ("Content-Type", "application/json"),
                ("X-GitHub-Event", "push"),
                ("X-Hub-Signature-256", &forged),
            ],
            body,
        )
        .await?;
    let logs = receiver_common::logs().text();
    for (what, text) in [("status", &status), ("events", &events), ("logs", &logs)] {
        assert!(!text.contains(TOKEN), "the token appears in the {what}");
        assert!(
            !text.contains(&base64::engine::general_purpose::STANDARD.encode(TOKEN)),
            "the encoded token appears in the {what}"
        );
    }
    assert!(logs.contains("webhook refused"), "the refusal is logged");
    Ok(())
}
