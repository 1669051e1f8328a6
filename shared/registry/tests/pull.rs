//! Pulling by digest from the real distribution registry: the manifest checked against its
//! digest, the layer streamed and checked against its declared size and digest.

use std::time::Duration;

use sluice_e2e::registry::{Artifact, Registry};
use sluice_registry::{RegistryAccess, RegistryClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_artifact_is_pulled_by_digest_byte_for_byte() -> anyhow::Result<()> {
    let registry = Registry::builder()
        .basic_auth("robot", "pull-pa55")
        .start()?;
    let pusher = registry.client()?;
    let artifact = Artifact::from_files([("deploy/app.yaml", "kind: ConfigMap\n")], "src", "v1")?;
    let pushed = pusher.push_artifact("org/pull", "v1", &artifact).await?;
    let expected = pusher.pull_artifact("org/pull", "v1").await?;
    let image = format!("{}/org/pull", registry.host());
    let access = RegistryAccess {
        auth: Some(("robot".into(), "pull-pa55".into())),
        insecure: true,
        timeout: Duration::from_secs(10),
        ..RegistryAccess::default()
    };
    let client = RegistryClient::default();

    let by_tag = client.manifest(&image, "v1", &access).await?;
    assert_eq!(by_tag.digest, pushed.manifest_digest);
    assert!(!by_tag.is_index());
    let manifest = client
        .manifest(&image, &pushed.manifest_digest, &access)
        .await?;
    assert_eq!(manifest.body, expected.manifest.bytes);
    let parsed = manifest.image()?;
    assert_eq!(parsed.layers.len(), 1);
    assert_eq!(parsed.layers[0].digest, pushed.layer_digest);

    let mut layer = Vec::new();
    client
        .blob(&image, &parsed.layers[0], &access, &mut layer)
        .await?;
    assert_eq!(layer, expected.layer);

    let mut wrong_size = parsed.layers[0].clone();
    wrong_size.size -= 1;
    let error = client
        .blob(&image, &wrong_size, &access, &mut Vec::new())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("longer than"), "{error}");
    Ok(())
}
