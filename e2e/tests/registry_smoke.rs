//! Smoke tests for the distribution registry and the OCI client helper, over real HTTP.

use sluice_e2e::registry::{
    ANNOTATION_CREATED, ANNOTATION_REVISION, ANNOTATION_SOURCE, Artifact, FLUX_CONFIG,
    FLUX_CONTENT, OCI_MANIFEST, OciClient, Registry, Storage, sha256_digest,
};
use sluice_e2e::tarball::untar_gz;

fn artifact(revision: &str) -> Artifact {
    Artifact::from_files(
        [
            ("deploy/app.yaml", "kind: ConfigMap\n"),
            ("README.md", revision),
        ],
        "https://github.com/example/app",
        revision,
    )
    .unwrap()
}

async fn push_and_pull_round_trip(registry: &Registry, client: &OciClient) {
    let first = artifact("main@sha1:1111111111111111111111111111111111111111");
    let pushed = client
        .push_artifact("apps/podinfo", "v1.0.0", &first)
        .await
        .unwrap();
    assert_eq!(pushed.layer_digest, sha256_digest(&first.content));
    assert_eq!(pushed.config_digest, sha256_digest(b"{}"));

    let pulled = client
        .pull_artifact("apps/podinfo", "v1.0.0")
        .await
        .unwrap();
    assert_eq!(pulled.layer, first.content, "layer bytes round-trip");
    assert_eq!(pulled.manifest.digest, pushed.manifest_digest);
    assert_eq!(
        pulled.manifest.digest,
        sha256_digest(&pulled.manifest.bytes)
    );
    assert_eq!(pulled.manifest.media_type, OCI_MANIFEST);
    assert_eq!(pulled.parsed.config.media_type, FLUX_CONFIG);
    assert_eq!(pulled.parsed.layers.len(), 1);
    assert_eq!(pulled.parsed.layers[0].media_type, FLUX_CONTENT);
    assert_eq!(pulled.parsed.layers[0].digest, pushed.layer_digest);
    assert_eq!(
        pulled.parsed.annotations[ANNOTATION_REVISION],
        first.revision
    );
    assert_eq!(pulled.parsed.annotations[ANNOTATION_SOURCE], first.source);
    assert_eq!(pulled.parsed.annotations[ANNOTATION_CREATED], first.created);
    let files = untar_gz(&pulled.layer).unwrap();
    assert_eq!(files["deploy/app.yaml"], b"kind: ConfigMap\n");

    let by_digest = client
        .pull_artifact("apps/podinfo", &pushed.manifest_digest)
        .await
        .unwrap();
    assert_eq!(by_digest.layer, first.content);
    assert_eq!(
        client
            .get_blob("apps/podinfo", &pushed.config_digest)
            .await
            .unwrap(),
        b"{}"
    );

    let second = artifact("main@sha1:2222222222222222222222222222222222222222");
    let pushed_second = client
        .push_artifact("apps/podinfo", "v1.1.0", &second)
        .await
        .unwrap();
    assert_ne!(pushed_second.manifest_digest, pushed.manifest_digest);
    client
        .push_artifact("apps/podinfo", "latest", &second)
        .await
        .unwrap();
    let mut tags = client.tags("apps/podinfo").await.unwrap();
    tags.sort();
    assert_eq!(tags, ["latest", "v1.0.0", "v1.1.0"]);

    let head = client
        .head_manifest("apps/podinfo", "latest")
        .await
        .unwrap();
    assert_eq!(head, Some(pushed_second.manifest_digest));
    assert_eq!(
        client
            .head_manifest("apps/podinfo", "v9.9.9")
            .await
            .unwrap(),
        None
    );
    assert!(
        registry
            .oci_url("apps/podinfo")
            .starts_with("oci://127.0.0.1:")
    );
}

#[tokio::test]
async fn inmemory_push_pull_and_tags() {
    let registry = Registry::builder().start().unwrap();
    let client = registry.client().unwrap();
    push_and_pull_round_trip(&registry, &client).await;
}

#[tokio::test]
async fn filesystem_push_pull_and_tags() {
    let registry = Registry::builder()
        .storage(Storage::Filesystem)
        .start()
        .unwrap();
    let client = registry.client().unwrap();
    push_and_pull_round_trip(&registry, &client).await;
}

#[tokio::test]
async fn htpasswd_refuses_anonymous_and_wrong_credentials() {
    let registry = Registry::builder()
        .basic_auth("flux", "s3cret")
        .start()
        .unwrap();

    let raw = reqwest::Client::new()
        .post(format!("{}/v2/apps/podinfo/blobs/uploads/", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 401, "anonymous upload must be refused");
    let challenge = raw
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(challenge.starts_with("Basic"), "{challenge}");

    let anonymous = registry.anonymous_client().unwrap();
    let err = anonymous
        .push_artifact("apps/podinfo", "v1.0.0", &artifact("a"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    let wrong = OciClient::new(&registry.url(), Some(("flux", "wrong"))).unwrap();
    let err = wrong
        .push_artifact("apps/podinfo", "v1.0.0", &artifact("a"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");

    let client = registry.client().unwrap();
    push_and_pull_round_trip(&registry, &client).await;
    let err = anonymous.tags("apps/podinfo").await.unwrap_err();
    assert!(
        err.to_string().contains("401"),
        "anonymous reads are refused too: {err}"
    );
}
