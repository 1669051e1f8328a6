//! Bucket (`generic` provider) end to end against a real S3-compatible server (s3s-fs).

mod common;

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use common::{Harness, condition, has};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use sluice_api::meta::Artifact;
use sluice_api::source::Bucket;
use sluice_e2e::poll::{request_reconcile, wait_object};
use sluice_e2e::s3::S3Server;
use source_controller::BucketLimits;

fn api(harness: &Harness) -> Api<Bucket> {
    Api::namespaced(harness.client.clone(), &harness.namespace)
}

async fn create(harness: &Harness, name: &str, spec: serde_json::Value) -> Result<Bucket> {
    let object: Bucket = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "Bucket",
        "metadata": {"name": name},
        "spec": spec,
    }))?;
    Ok(api(harness).create(&PostParams::default(), &object).await?)
}

async fn wait(
    harness: &Harness,
    name: &str,
    what: &str,
    check: impl Fn(&Bucket) -> bool,
) -> Result<Bucket> {
    Ok(wait_object(&api(harness), name, what, check).await?)
}

fn conditions(object: &Bucket) -> &[Condition] {
    object
        .status
        .as_ref()
        .map_or(&[], |s| s.conditions.as_slice())
}

fn ready(object: &Bucket) -> bool {
    has(conditions(object), "Ready", "True", "Succeeded")
        && object.status.as_ref().and_then(|s| s.observed_generation) == object.metadata.generation
}

fn failed_with(reason: &'static str) -> impl Fn(&Bucket) -> bool {
    move |object| has(conditions(object), "Ready", "False", reason)
}

fn artifact(object: &Bucket) -> Result<Artifact> {
    object
        .status
        .as_ref()
        .and_then(|s| s.artifact.clone())
        .context("status.artifact is set")
}

/// Flux's revision: `sha256:` over the sorted `"<key> <etag>\n"` lines.
fn revision(index: &BTreeMap<&str, &str>) -> String {
    let lines: String = index
        .iter()
        .map(|(key, etag)| format!("{key} {etag}\n"))
        .collect();
    format!("sha256:{}", hex::encode(Sha256::digest(lines.as_bytes())))
}

/// A server with bucket `apps`, and a Secret `s3-creds` holding its access keys.
async fn server_and_secret(harness: &Harness) -> Result<S3Server> {
    let server = S3Server::start()?;
    server.create_bucket("apps").await?;
    let (access, secret) = server.credentials();
    harness
        .create_secret("s3-creds", &[("accesskey", access), ("secretkey", secret)])
        .await?;
    Ok(server)
}

fn spec(server: &S3Server, secret: &str) -> serde_json::Value {
    json!({"bucketName": "apps", "endpoint": server.endpoint(), "insecure": true,
           "interval": "1h", "timeout": "5s", "secretRef": {"name": secret}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_revision_no_op_change_and_prefix() -> Result<()> {
    let harness = Harness::start("bucket").await?;
    let server = server_and_secret(&harness).await?;
    let app = server.put_object("apps", "deploy/app.yaml", "v1").await?;
    let svc = server.put_object("apps", "deploy/svc.yaml", "svc").await?;
    let readme = server.put_object("apps", "docs/readme.txt", "hi").await?;
    server.put_object("apps", "logo.png", "png").await?;
    create(&harness, "apps", spec(&server, "s3-creds")).await?;
    let first = wait(&harness, "apps", "Ready", ready).await?;
    let stored = artifact(&first)?;
    let mut index = BTreeMap::from([
        ("deploy/app.yaml", app.as_str()),
        ("deploy/svc.yaml", svc.as_str()),
        ("docs/readme.txt", readme.as_str()),
    ]);
    assert_eq!(
        stored.revision,
        revision(&index),
        "logo.png is a default exclusion"
    );
    assert!(
        stored
            .path
            .starts_with(&format!("bucket/{}/apps/", harness.namespace))
            && stored.path.ends_with(".tar.gz"),
        "{}",
        stored.path
    );
    let files = harness.fetch_artifact(&stored.url, &stored.digest).await?;
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        ["deploy/app.yaml", "deploy/svc.yaml", "docs/readme.txt"]
    );
    assert!(server.requests("GetObject", Some("deploy/app.yaml")) >= 1);
    assert_eq!(server.requests("GetObject", Some("logo.png")), 0);

    // Unchanged bucket: a listing, no object download, the same artifact.
    let settled = artifact(&request_reconcile(&api(&harness), "apps", "settle").await?)?;
    assert_eq!(settled.revision, stored.revision);
    let fetched: Vec<usize> = index
        .keys()
        .map(|key| server.requests("GetObject", Some(key)))
        .collect();
    let lists = server.requests("ListObjectsV2", None);
    let again = request_reconcile(&api(&harness), "apps", "again").await?;
    assert_eq!(artifact(&again)?, settled);
    assert!(
        server.requests("ListObjectsV2", None) > lists,
        "listed again"
    );
    for (key, before) in index.keys().zip(fetched) {
        assert_eq!(
            server.requests("GetObject", Some(key)),
            before,
            "{key} not fetched again"
        );
    }

    // A changed object changes the revision and the content.
    let app2 = server.put_object("apps", "deploy/app.yaml", "v2").await?;
    index.insert("deploy/app.yaml", &app2);
    let changed = request_reconcile(&api(&harness), "apps", "changed").await?;
    let updated = artifact(&changed)?;
    assert_eq!(updated.revision, revision(&index));
    assert_ne!(updated.revision, stored.revision);
    let files = harness
        .fetch_artifact(&updated.url, &updated.digest)
        .await?;
    assert_eq!(files["deploy/app.yaml"], "v2");

    // A deleted object leaves the index.
    server.delete_object("apps", "docs/readme.txt").await?;
    index.remove("docs/readme.txt");
    let deleted = request_reconcile(&api(&harness), "apps", "deleted").await?;
    assert_eq!(artifact(&deleted)?.revision, revision(&index));
    assert!(
        server.requests("HeadObject", Some("deploy/svc.yaml")) > 0,
        "s3s-fs lists no ETags, so they come from HEAD requests"
    );

    // spec.prefix filters on the server.
    let mut prefixed = spec(&server, "s3-creds");
    prefixed["prefix"] = json!("deploy/");
    create(&harness, "prefixed", prefixed).await?;
    let ready_prefixed = wait(&harness, "prefixed", "Ready", ready).await?;
    let stored = artifact(&ready_prefixed)?;
    let files = harness.fetch_artifact(&stored.url, &stored.digest).await?;
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        ["deploy/app.yaml", "deploy/svc.yaml"]
    );
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_ignore_rules_and_sourceignore() -> Result<()> {
    let harness = Harness::start("bucket-ignore").await?;
    let server = server_and_secret(&harness).await?;
    let app = server.put_object("apps", "deploy/app.yaml", "app").await?;
    server
        .put_object("apps", "deploy/notes.md", "notes")
        .await?;
    let logo = server.put_object("apps", "logo.png", "png").await?;
    let ci = server
        .put_object("apps", ".github/workflows/ci.yaml", "ci")
        .await?;
    server.put_object("apps", ".sourceignore", "*.md\n").await?;

    create(&harness, "defaults", spec(&server, "s3-creds")).await?;
    let defaults = wait(&harness, "defaults", "Ready", ready).await?;
    let stored = artifact(&defaults)?;
    assert_eq!(
        stored.revision,
        revision(&BTreeMap::from([("deploy/app.yaml", app.as_str())])),
        ".sourceignore, default exclusions and the ignore file itself are left out"
    );
    let files = harness.fetch_artifact(&stored.url, &stored.digest).await?;
    assert_eq!(files.keys().collect::<Vec<_>>(), ["deploy/app.yaml"]);

    let mut custom = spec(&server, "s3-creds");
    custom["ignore"] = json!("deploy/\n");
    create(&harness, "custom", custom).await?;
    let custom = wait(&harness, "custom", "Ready", ready).await?;
    let stored = artifact(&custom)?;
    assert_eq!(
        stored.revision,
        revision(&BTreeMap::from([
            (".github/workflows/ci.yaml", ci.as_str()),
            ("logo.png", logo.as_str()),
        ]))
    );
    let files = harness.fetch_artifact(&stored.url, &stored.digest).await?;
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        [".github/workflows/ci.yaml", "logo.png"],
        "spec.ignore replaces the default exclusions"
    );
    assert_eq!(
        custom
            .status
            .as_ref()
            .and_then(|s| s.observed_ignore.as_deref()),
        Some("deploy/\n")
    );
    assert_eq!(server.requests("GetObject", Some("deploy/notes.md")), 0);
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_credential_failures_keep_secret_out() -> Result<()> {
    let harness = Harness::start("bucket-auth").await?;
    let server = server_and_secret(&harness).await?;
    server.put_object("apps", "app.yaml", "app").await?;
    let (access, _) = server.credentials();
    let wrong = "wrong-secret-key-7f3a9c";
    harness
        .create_secret("wrong", &[("accesskey", access), ("secretkey", wrong)])
        .await?;
    harness
        .create_secret("partial", &[("accesskey", access)])
        .await?;
    create(&harness, "wrong", spec(&server, "wrong")).await?;
    create(&harness, "missing", spec(&server, "no-such-secret")).await?;
    create(&harness, "partial", spec(&server, "partial")).await?;

    let failed = wait(
        &harness,
        "wrong",
        "BucketOperationFailed",
        failed_with("BucketOperationFailed"),
    )
    .await?;
    let fetch = condition(conditions(&failed), "FetchFailed").context("FetchFailed")?;
    assert!(fetch.message.contains("403"), "{}", fetch.message);
    assert!(!serde_json::to_string(&failed)?.contains(wrong));
    let missing = wait(
        &harness,
        "missing",
        "AuthenticationFailed",
        failed_with("AuthenticationFailed"),
    )
    .await?;
    let message = &condition(conditions(&missing), "Ready")
        .context("Ready")?
        .message;
    assert!(message.contains("no-such-secret"), "{message}");
    let partial = wait(
        &harness,
        "partial",
        "AuthenticationFailed",
        failed_with("AuthenticationFailed"),
    )
    .await?;
    let message = &condition(conditions(&partial), "Ready")
        .context("Ready")?
        .message;
    assert!(message.contains("secretkey"), "{message}");
    assert!(!server.log_tail(1 << 20).is_empty());
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_unreachable_endpoint_keeps_artifact() -> Result<()> {
    let harness = Harness::start("bucket-down").await?;
    let mut server = server_and_secret(&harness).await?;
    server.put_object("apps", "app.yaml", "app").await?;
    create(&harness, "apps", spec(&server, "s3-creds")).await?;
    let stored = artifact(&wait(&harness, "apps", "Ready", ready).await?)?;
    server.stop();
    api(&harness)
        .patch(
            "apps",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "down"}}}),
            ),
        )
        .await?;
    let failed = wait(
        &harness,
        "apps",
        "BucketOperationFailed",
        failed_with("BucketOperationFailed"),
    )
    .await?;
    assert_eq!(artifact(&failed)?, stored, "the last artifact is kept");
    let files = harness.fetch_artifact(&stored.url, &stored.digest).await?;
    assert_eq!(files["app.yaml"], "app");
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_cloud_providers_stall_and_caps_fail() -> Result<()> {
    let limits = BucketLimits {
        max_objects: 2,
        max_size: 1 << 20,
        parallel_downloads: 2,
    };
    let harness = Harness::start_with("bucket-caps", 2, limits).await?;
    let server = server_and_secret(&harness).await?;
    let base = spec(&server, "s3-creds");
    for provider in ["aws", "gcp", "azure"] {
        let mut cloud =
            json!({"bucketName": "apps", "endpoint": "s3.example.com", "interval": "1h"});
        cloud["provider"] = json!(provider);
        create(&harness, provider, cloud).await?;
    }
    let mut sts = base.clone();
    sts["sts"] = json!({"provider": "ldap", "endpoint": "https://sts.example.com"});
    create(&harness, "sts", sts).await?;
    create(
        &harness,
        "workload",
        json!({"provider": "aws", "bucketName": "apps", "endpoint": "s3.example.com",
               "interval": "1h", "serviceAccountName": "reader"}),
    )
    .await?;
    for (name, field) in [
        ("aws", "spec.provider 'aws'"),
        ("gcp", "spec.provider 'gcp'"),
        ("azure", "spec.provider 'azure'"),
        ("sts", "spec.sts"),
        ("workload", "spec.serviceAccountName"),
    ] {
        let stalled = wait(&harness, name, "Stalled", |o| {
            condition(conditions(o), "Stalled").is_some_and(|c| c.status == "True")
        })
        .await?;
        let message = &condition(conditions(&stalled), "Stalled")
            .context("Stalled")?
            .message;
        assert!(message.contains(field), "{name}: {message}");
    }

    for key in ["a.yaml", "b.yaml", "c.yaml"] {
        server.put_object("apps", key, "x").await?;
    }
    create(&harness, "too-many", base.clone()).await?;
    let failed = wait(
        &harness,
        "too-many",
        "BucketOperationFailed",
        failed_with("BucketOperationFailed"),
    )
    .await?;
    let message = &condition(conditions(&failed), "Ready")
        .context("Ready")?
        .message;
    assert!(message.contains("--bucket-max-objects"), "{message}");

    server.create_bucket("large").await?;
    server
        .put_object("large", "big.yaml", vec![b'x'; 2 << 20])
        .await?;
    let mut large = base;
    large["bucketName"] = json!("large");
    create(&harness, "too-large", large).await?;
    let failed = wait(
        &harness,
        "too-large",
        "BucketOperationFailed",
        failed_with("BucketOperationFailed"),
    )
    .await?;
    let message = &condition(conditions(&failed), "Ready")
        .context("Ready")?
        .message;
    assert!(message.contains("--bucket-max-size"), "{message}");
    assert_eq!(
        server.requests("GetObject", Some("big.yaml")),
        0,
        "refused from the listing"
    );
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_https_endpoint_with_cert_secret_ca() -> Result<()> {
    let harness = Harness::start("bucket-tls").await?;
    let server = server_and_secret(&harness).await?;
    server.put_object("apps", "app.yaml", "app").await?;
    let ca = sluice_e2e::tls::TestCa::new("sluice-s3-ca")?;
    let front = server.https_front(&ca)?;
    harness
        .create_secret("s3-ca", &[("ca.crt", &ca.cert_pem())])
        .await?;
    let https = |ca: bool| {
        let mut spec = json!({"bucketName": "apps", "endpoint": front.endpoint(),
                              "interval": "1h", "timeout": "5s", "secretRef": {"name": "s3-creds"}});
        if ca {
            spec["certSecretRef"] = json!({"name": "s3-ca"});
        }
        spec
    };
    create(&harness, "trusted", https(true)).await?;
    create(&harness, "untrusted", https(false)).await?;
    let trusted = wait(&harness, "trusted", "Ready", ready).await?;
    let stored = artifact(&trusted)?;
    let files = harness.fetch_artifact(&stored.url, &stored.digest).await?;
    assert_eq!(files["app.yaml"], "app");
    wait(
        &harness,
        "untrusted",
        "BucketOperationFailed",
        failed_with("BucketOperationFailed"),
    )
    .await?;
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_proxy_secret_routes_requests() -> Result<()> {
    let harness = Harness::start("bucket-proxy").await?;
    let server = server_and_secret(&harness).await?;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = closed.local_addr()?.port();
    drop(closed);
    let address = format!("http://127.0.0.1:{port}");
    let password = "proxy-pw-s3-31";
    harness
        .create_secret(
            "proxy",
            &[
                ("address", &address),
                ("username", "u"),
                ("password", password),
            ],
        )
        .await?;
    let mut via_proxy = spec(&server, "s3-creds");
    via_proxy["proxySecretRef"] = json!({"name": "proxy"});
    create(&harness, "via-proxy", via_proxy).await?;
    let failed = wait(
        &harness,
        "via-proxy",
        "BucketOperationFailed",
        failed_with("BucketOperationFailed"),
    )
    .await?;
    assert_eq!(
        server.requests("ListObjectsV2", None) + server.requests("GetObject", None),
        0,
        "nothing reached the server directly"
    );
    assert!(!serde_json::to_string(&failed)?.contains(password));
    harness.stop().await;
    Ok(())
}
