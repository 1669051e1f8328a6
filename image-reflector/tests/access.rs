//! Registry access against the real distribution registry: credentials (secretRef and
//! ServiceAccount imagePullSecrets), TLS with a test CA, an unreachable registry, digests.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use axum::response::IntoResponse;
use common::{Harness, failed_with, is_ready, latest_tag, push_tags, ready_of};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use sluice_api::image::{ImagePolicy, ImageRepository};
use sluice_e2e::registry::Registry;
use sluice_e2e::tls::TestCa;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_fail_without_leaking_and_good_ones_scan() -> Result<()> {
    let harness = Harness::start("image-auth").await?;
    let password = "S3cret-registry-pa55";
    let registry = Registry::builder().basic_auth("flux", password).start()?;
    push_tags(&registry.client()?, "private/app", &["1.0.0", "1.1.0"]).await?;
    let host = registry.host();
    let image = format!("{host}/private/app");
    let wrong = "Wr0ng-registry-pa55";
    harness
        .create_docker_secret("wrong", &host, "flux", wrong)
        .await?;
    harness
        .create_docker_secret("right", &host, "flux", password)
        .await?;
    let spec = |extra: serde_json::Value| {
        common::merged(
            json!({"image": image, "interval": "1h", "insecure": true}),
            extra,
        )
    };
    harness
        .create_repository("wrong", spec(json!({"secretRef": {"name": "wrong"}})))
        .await?;
    harness
        .create_repository("anonymous", spec(json!({})))
        .await?;
    harness
        .create_repository("right", spec(json!({"secretRef": {"name": "right"}})))
        .await?;
    let account = ServiceAccount {
        metadata: kube::api::ObjectMeta {
            name: Some("puller".to_owned()),
            ..Default::default()
        },
        image_pull_secrets: Some(vec![k8s_openapi::api::core::v1::LocalObjectReference {
            name: "right".to_owned(),
        }]),
        ..Default::default()
    };
    Api::<ServiceAccount>::namespaced(harness.client.clone(), &harness.namespace)
        .create(&PostParams::default(), &account)
        .await?;
    harness
        .create_repository("account", spec(json!({"serviceAccountName": "puller"})))
        .await?;

    for name in ["wrong", "anonymous"] {
        let failed = harness
            .wait_repository(
                name,
                "AuthenticationFailed",
                failed_with::<ImageRepository>("AuthenticationFailed"),
            )
            .await?;
        let status = serde_json::to_string(&failed.status)?;
        let events = format!("{:?}", harness.events(name).await?);
        for text in [&status, &events] {
            assert!(
                !text.contains(wrong) && !text.contains(password),
                "leaked: {text}"
            );
        }
        assert!(status.contains("spec.secretRef"), "{status}");
    }
    for name in ["right", "account"] {
        let ready = harness.wait_repository(name, "Ready", is_ready).await?;
        let count = ready
            .status
            .and_then(|s| s.last_scan_result)
            .map(|r| r.tag_count);
        assert_eq!(count, Some(2), "{name}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_test_ca_and_digest_reflection() -> Result<()> {
    let harness = Harness::start("image-tls").await?;
    let ca = TestCa::new("sluice-image-test-ca")?;
    let registry = Registry::builder().https(&ca)?.start()?;
    let client = registry.client()?;
    let digest = push_tags(&client, "secure/app", &["1.0.0", "1.1.0"]).await?;
    let image = format!("{}/secure/app", registry.host());
    harness
        .create_secret("ca", "Opaque", &[("ca.crt", &ca.cert_pem())])
        .await?;
    harness
        .create_repository("untrusted", json!({"image": image, "interval": "1h"}))
        .await?;
    harness
        .create_repository(
            "app",
            json!({"image": image, "interval": "1h", "certSecretRef": {"name": "ca"}}),
        )
        .await?;
    let untrusted = harness
        .wait_repository(
            "untrusted",
            "TLS failure",
            failed_with::<ImageRepository>("ReadOperationFailed"),
        )
        .await?;
    assert!(ready_of(&untrusted).is_some_and(|(_, _, m)| m.contains("spec.certSecretRef")));
    harness.wait_repository("app", "Ready", is_ready).await?;

    let policy = |reflection: &str| {
        let mut spec = json!({
            "imageRepositoryRef": {"name": "app"},
            "policy": {"semver": {"range": "1.x"}},
            "digestReflectionPolicy": reflection,
        });
        if reflection == "Always" {
            spec["interval"] = json!("1h");
        }
        spec
    };
    for reflection in ["Never", "IfNotPresent", "Always"] {
        harness
            .create_policy(&reflection.to_lowercase(), policy(reflection))
            .await?;
    }
    let digest_of = |p: &ImagePolicy| {
        p.status
            .as_ref()
            .and_then(|s| s.latest_ref.as_ref())
            .map(|r| r.digest.clone())
    };
    for (name, expected) in [
        ("never", String::new()),
        ("ifnotpresent", digest.clone()),
        ("always", digest.clone()),
    ] {
        let resolved = harness
            .wait_policy(name, "1.1.0", |p| {
                is_ready(p) && latest_tag(p).as_deref() == Some("1.1.0")
            })
            .await?;
        assert_eq!(digest_of(&resolved), Some(expected.clone()), "{name}");
        if !expected.is_empty() {
            let (_, _, message) = ready_of(&resolved).unwrap_or_default();
            assert!(
                message.ends_with(&format!("with digest {expected}")),
                "{message}"
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_registry_keeps_the_last_result_and_policies() -> Result<()> {
    let harness = Harness::start("image-down").await?;
    let registry = Registry::builder().start()?;
    push_tags(&registry.client()?, "app", &["1.0.0", "1.2.0"]).await?;
    let image = format!("{}/app", registry.host());
    harness
        .create_repository(
            "app",
            json!({"image": image, "interval": "1h", "insecure": true, "timeout": "5s"}),
        )
        .await?;
    harness
        .create_policy(
            "latest",
            json!({"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": ">=1.0.0"}}}),
        )
        .await?;
    let ready = harness.wait_repository("app", "Ready", is_ready).await?;
    let before = ready.status.and_then(|s| s.last_scan_result);
    harness
        .wait_policy("latest", "1.2.0", |p| {
            latest_tag(p).as_deref() == Some("1.2.0")
        })
        .await?;

    drop(registry);
    let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "down"}}});
    harness
        .repositories()
        .patch(
            "app",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await?;
    let failed = harness
        .wait_repository(
            "app",
            "ReadOperationFailed",
            failed_with::<ImageRepository>("ReadOperationFailed"),
        )
        .await?;
    assert_eq!(failed.status.and_then(|s| s.last_scan_result), before);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let retried = harness.repositories().get("app").await?;
    assert!(
        failed_with::<ImageRepository>("ReadOperationFailed")(&retried),
        "retries scan again and keep failing: {:?}",
        ready_of(&retried)
    );
    let policy = harness.policies().get("latest").await?;
    assert!(is_ready(&policy));
    assert_eq!(latest_tag(&policy).as_deref(), Some("1.2.0"));

    // A policy created while the registry is down still resolves from the stored tags.
    harness
        .create_policy(
            "late",
            json!({"imageRepositoryRef": {"name": "app"}, "policy": {"alphabetical": {}}}),
        )
        .await?;
    harness
        .wait_policy("late", "1.2.0", |p| {
            latest_tag(p).as_deref() == Some("1.2.0")
        })
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_waits_for_tags_with_dependency_not_ready() -> Result<()> {
    let harness = Harness::start("image-wait").await?;
    let port = sluice_e2e::net::free_port()?;
    harness
        .create_policy(
            "early",
            json!({"imageRepositoryRef": {"name": "later"}, "policy": {"alphabetical": {}}}),
        )
        .await?;
    harness
        .wait_policy(
            "early",
            "DependencyNotReady",
            failed_with::<ImagePolicy>("DependencyNotReady"),
        )
        .await?;
    harness
        .create_repository(
            "later",
            json!({"image": format!("127.0.0.1:{port}/app"), "interval": "1h", "insecure": true, "timeout": "2s"}),
        )
        .await?;
    harness
        .wait_repository(
            "later",
            "unreachable",
            failed_with::<ImageRepository>("ReadOperationFailed"),
        )
        .await?;
    let waiting = harness
        .wait_policy("early", "no tags yet", |p| {
            ready_of(p).is_some_and(|(_, r, m)| r == "DependencyNotReady" && m.contains("no tags"))
        })
        .await?;
    assert!(latest_tag(&waiting).is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_scans_and_resolves_digests() -> Result<()> {
    let harness = Harness::start("image-token").await?;
    let ca = TestCa::new("sluice-image-token-ca")?;
    let password = "t0ken-registry-Pa55";
    let registry = Registry::builder()
        .token_auth(&ca, "robot", password)?
        .start()?;
    let digest = push_tags(&registry.client()?, "org/app", &["0.9.0", "1.0.0"]).await?;
    let host = registry.host();
    harness
        .create_docker_secret("robot", &host, "robot", password)
        .await?;
    harness
        .create_repository(
            "app",
            json!({"image": format!("{host}/org/app"), "interval": "1h", "insecure": true, "secretRef": {"name": "robot"}}),
        )
        .await?;
    harness
        .create_policy(
            "latest",
            json!({"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": "*"}}, "digestReflectionPolicy": "IfNotPresent"}),
        )
        .await?;
    harness.wait_repository("app", "Ready", is_ready).await?;
    let policy = harness
        .wait_policy("latest", "1.0.0", |p| {
            is_ready(p) && latest_tag(p).as_deref() == Some("1.0.0")
        })
        .await?;
    let latest = policy.status.and_then(|s| s.latest_ref).unwrap_or_default();
    assert_eq!(latest.digest, digest);
    Ok(())
}

/// A forwarding HTTP proxy on 127.0.0.1 that sends requests for `registry.invalid:5000` to
/// `upstream` and records each request's `Proxy-Authorization`.
async fn start_proxy(upstream: String) -> Result<(String, Arc<Mutex<Vec<Option<String>>>>)> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let forward = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    let proxy = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let authorization = request
            .headers()
            .get("proxy-authorization")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        if let Ok(mut seen) = record.lock() {
            seen.push(authorization);
        }
        let url = request
            .uri()
            .to_string()
            .replace("registry.invalid:5000", &upstream);
        let forward = forward.clone();
        async move {
            let Ok(response) = forward.get(url).send().await else {
                return (axum::http::StatusCode::BAD_GATEWAY, Vec::new()).into_response();
            };
            let status = response.status();
            let body = response.bytes().await.unwrap_or_default().to_vec();
            (status, body).into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, proxy).await });
    Ok((format!("http://{address}"), seen))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_secret_ref_sends_the_scan_through_the_proxy() -> Result<()> {
    let harness = Harness::start("image-proxy").await?;
    let registry = Registry::builder().start()?;
    push_tags(&registry.client()?, "app", &["1.0.0", "1.0.1", "1.0.2"]).await?;
    let (address, seen) = start_proxy(registry.host()).await?;
    let proxy_password = "pr0xy-Pa55word";
    harness
        .create_secret(
            "proxy",
            "Opaque",
            &[
                ("address", &address),
                ("username", "scanner"),
                ("password", proxy_password),
            ],
        )
        .await?;
    harness
        .create_repository(
            "app",
            json!({"image": "registry.invalid:5000/app", "interval": "1h", "insecure": true, "proxySecretRef": {"name": "proxy"}}),
        )
        .await?;
    let ready = harness.wait_repository("app", "Ready", is_ready).await?;
    let count = ready
        .status
        .and_then(|s| s.last_scan_result)
        .map(|r| r.tag_count);
    assert_eq!(count, Some(3));
    let seen = seen
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    assert!(!seen.is_empty());
    assert!(
        seen.iter()
            .all(|auth| auth.as_deref().is_some_and(|a| a.starts_with("Basic "))),
        "{seen:?}"
    );
    Ok(())
}
