//! OCIRepository end to end against a real distribution registry.

mod common;

use anyhow::Result;
use base64::Engine;
use common::{Harness, condition, has, oci_conditions};
use serde_json::json;
use sluice_api::source::OCIRepository;
use sluice_e2e::registry::{ANNOTATION_REVISION, ANNOTATION_SOURCE, Artifact, Registry};
use sluice_e2e::tarball::tar_gz;

fn oci_ready(object: &OCIRepository) -> bool {
    has(oci_conditions(object), "Ready", "True", "Succeeded")
        && object.status.as_ref().and_then(|s| s.observed_generation) == object.metadata.generation
}

fn artifact_of(object: &OCIRepository) -> sluice_api::meta::Artifact {
    object
        .status
        .as_ref()
        .and_then(|s| s.artifact.clone())
        .expect("artifact")
}

fn content(version: &str) -> Artifact {
    Artifact::from_files(
        [
            ("deploy/app.yaml", format!("version: {version}\n")),
            ("logo.png", "p".to_owned()),
        ],
        "https://github.com/example/app",
        &format!("main@sha1:{}", "a".repeat(40)),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_semver_digest_layer_copy_and_no_change() -> Result<()> {
    let harness = Harness::start("oci").await?;
    let registry = Registry::builder().start()?;
    let client = registry.client()?;
    let v1 = client
        .push_artifact("apps/app", "1.0.0", &content("1.0.0"))
        .await?;
    let v11 = client
        .push_artifact("apps/app", "1.1.0", &content("1.1.0"))
        .await?;
    client
        .push_artifact("apps/app", "2.0.0", &content("2.0.0"))
        .await?;
    client
        .push_artifact("apps/app", "latest", &content("latest"))
        .await?;
    let url = registry.oci_url("apps/app");
    let cases = [
        ("default-latest", json!(null), None),
        (
            "tag",
            json!({"tag": "1.0.0"}),
            Some(format!("1.0.0@{}", v1.manifest_digest)),
        ),
        (
            "semver",
            json!({"semver": ">=1.0.0 <2.0.0"}),
            Some(format!("1.1.0@{}", v11.manifest_digest)),
        ),
        (
            "semver-filter",
            json!({"semver": "*", "semverFilter": "^1\\.0"}),
            Some(format!("1.0.0@{}", v1.manifest_digest)),
        ),
        (
            "digest",
            json!({"digest": v1.manifest_digest, "tag": "2.0.0"}),
            Some(v1.manifest_digest.clone()),
        ),
    ];
    for (name, reference, _) in &cases {
        let mut spec = json!({"url": url, "interval": "1h", "insecure": true});
        if !reference.is_null() {
            spec["ref"] = reference.clone();
        }
        harness.create_oci(name, spec).await?;
    }
    for (name, _, revision) in &cases {
        let ready = harness.wait_oci(name, "Ready", oci_ready).await?;
        let artifact = artifact_of(&ready);
        if let Some(revision) = revision {
            assert_eq!(&artifact.revision, revision, "{name}");
        } else {
            assert!(
                artifact.revision.starts_with("latest@sha256:"),
                "{}",
                artifact.revision
            );
        }
        assert_eq!(
            artifact.metadata.get(ANNOTATION_SOURCE).map(String::as_str),
            Some("https://github.com/example/app")
        );
        assert!(artifact.metadata.contains_key(ANNOTATION_REVISION));
        assert_eq!(
            ready.status.as_ref().unwrap().url.as_deref(),
            Some(artifact.url.as_str())
        );
        let files = harness
            .fetch_artifact(&artifact.url, &artifact.digest)
            .await?;
        assert!(files.contains_key("deploy/app.yaml"), "{name}");
        assert!(
            !files.contains_key("logo.png"),
            "default exclusions apply to extracted layers"
        );
    }

    // Unchanged tag: only the manifest is checked.
    let before = artifact_of(&harness.oci_api().get("tag").await?);
    let after = artifact_of(&harness.request_oci_reconcile("tag", "again").await?);
    assert_eq!(before, after);

    // A moved tag produces a new artifact.
    let moved = client
        .push_artifact("apps/app", "1.0.0", &content("1.0.1"))
        .await?;
    let updated = harness.request_oci_reconcile("tag", "moved").await?;
    let artifact = artifact_of(&updated);
    assert_eq!(
        artifact.revision,
        format!("1.0.0@{}", moved.manifest_digest)
    );
    let files = harness
        .fetch_artifact(&artifact.url, &artifact.digest)
        .await?;
    assert_eq!(files["deploy/app.yaml"], "version: 1.0.1\n");

    // layerSelector copy stores the layer bytes as they are.
    let layer = tar_gz([("raw.yaml", "raw")])?;
    let pushed = client
        .push_artifact(
            "apps/raw",
            "v1",
            &Artifact {
                content: layer.clone(),
                ..content("raw")
            },
        )
        .await?;
    harness
        .create_oci(
            "copy",
            json!({"url": registry.oci_url("apps/raw"), "interval": "1h", "insecure": true, "ref": {"tag": "v1"},
                   "layerSelector": {"mediaType": "application/vnd.cncf.flux.content.v1.tar+gzip", "operation": "copy"}}),
        )
        .await?;
    let copied = harness.wait_oci("copy", "Ready", oci_ready).await?;
    let artifact = artifact_of(&copied);
    assert_eq!(
        artifact.digest, pushed.layer_digest,
        "copy keeps the layer digest"
    );
    assert_eq!(
        copied.status.as_ref().unwrap().observed_layer_selector,
        copied.spec.layer_selector
    );
    harness
        .create_oci(
            "wrong-media-type",
            json!({"url": registry.oci_url("apps/raw"), "interval": "1h", "insecure": true, "ref": {"tag": "v1"},
                   "layerSelector": {"mediaType": "application/x-nope"}}),
        )
        .await?;
    let failed = harness
        .wait_oci("wrong-media-type", "OCIArtifactPullFailed", |o| {
            has(oci_conditions(o), "Ready", "False", "OCIArtifactPullFailed")
        })
        .await?;
    assert!(
        condition(oci_conditions(&failed), "FetchFailed")
            .unwrap()
            .message
            .contains("application/x-nope")
    );
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_config_secret_and_invalid_url() -> Result<()> {
    let harness = Harness::start("oci-auth").await?;
    let registry = Registry::builder()
        .basic_auth("robot", "reg-pass-42")
        .start()?;
    registry
        .client()?
        .push_artifact("apps/app", "v1", &content("v1"))
        .await?;
    let config = |user: &str, pass: &str| {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        json!({"auths": {registry.host(): {"auth": auth}}}).to_string()
    };
    harness
        .create_secret_typed(
            "good",
            "kubernetes.io/dockerconfigjson",
            &[(".dockerconfigjson", &config("robot", "reg-pass-42"))],
        )
        .await?;
    harness
        .create_secret_typed(
            "bad",
            "kubernetes.io/dockerconfigjson",
            &[(".dockerconfigjson", &config("robot", "nope-nope"))],
        )
        .await?;
    let spec = |secret: &str| json!({"url": registry.oci_url("apps/app"), "interval": "1h", "insecure": true, "ref": {"tag": "v1"}, "secretRef": {"name": secret}});
    harness.create_oci("good", spec("good")).await?;
    harness.create_oci("bad", spec("bad")).await?;
    harness
        .create_oci(
            "tagged-url",
            json!({"url": format!("{}:v1", registry.oci_url("apps/app")), "interval": "1h"}),
        )
        .await?;
    harness.wait_oci("good", "Ready", oci_ready).await?;
    let bad = harness
        .wait_oci("bad", "AuthenticationFailed", |o| {
            has(oci_conditions(o), "Ready", "False", "AuthenticationFailed")
        })
        .await?;
    assert!(!serde_json::to_string(&bad.status)?.contains("nope-nope"));
    harness
        .wait_oci("tagged-url", "Stalled URLInvalid", |o| {
            has(oci_conditions(o), "Stalled", "True", "URLInvalid")
        })
        .await?;
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_secret_with_a_client_certificate_reaches_an_mtls_registry() -> Result<()> {
    let harness = Harness::start("oci-mtls").await?;
    let ca = sluice_e2e::tls::TestCa::new("sluice-oci-mtls-ca")?;
    let registry = Registry::builder()
        .https(&ca)?
        .require_client_cert(&ca)?
        .start()?;
    registry
        .client()?
        .push_artifact("apps/app", "v1", &content("v1"))
        .await?;
    let client = ca.client_cert("source-controller", &[])?;
    let ca_pem = ca.cert_pem();
    harness
        .create_secret(
            "mtls",
            &[
                ("ca.crt", &ca_pem),
                ("tls.crt", &client.cert_pem),
                ("tls.key", &client.key_pem),
            ],
        )
        .await?;
    harness
        .create_secret("ca-only", &[("ca.crt", &ca_pem)])
        .await?;
    let spec = |secret: &str| json!({"url": registry.oci_url("apps/app"), "interval": "1h", "ref": {"tag": "v1"}, "certSecretRef": {"name": secret}});
    harness.create_oci("mtls", spec("mtls")).await?;
    harness.create_oci("ca-only", spec("ca-only")).await?;
    harness.wait_oci("mtls", "Ready", oci_ready).await?;
    let refused = harness
        .wait_oci("ca-only", "Ready=False", |o| {
            has(oci_conditions(o), "Ready", "False", "OCIArtifactPullFailed")
        })
        .await?;
    let status = serde_json::to_string(&refused.status)?;
    assert!(!status.contains("PRIVATE KEY"), "{status}");
    harness.stop().await;
    Ok(())
}
