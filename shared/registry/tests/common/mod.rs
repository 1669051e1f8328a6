//! Helpers shared by the integration tests: pushing one small image under many tags.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use sluice_e2e::registry::{Artifact, OCI_MANIFEST, OciClient};
use sluice_registry::RegistryAccess;

/// Concurrent manifest PUTs while tagging.
const PUSH_CONCURRENCY: usize = 16;

/// Access for a plain-HTTP test registry, with a short timeout.
pub fn plain_access() -> RegistryAccess {
    RegistryAccess {
        insecure: true,
        timeout: Duration::from_secs(10),
        ..RegistryAccess::default()
    }
}

/// Pushes one small artifact as `repo:<first tag>`, then PUTs its manifest under every other
/// tag; returns the manifest digest.
pub async fn push_tags(client: &OciClient, repo: &str, tags: &[String]) -> anyhow::Result<String> {
    let (first, rest) = tags
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("no tags"))?;
    let artifact = Artifact::from_files([("app.yaml", "kind: ConfigMap\n")], "test", "v1")?;
    let pushed = client.push_artifact(repo, first, &artifact).await?;
    let manifest = client.get_manifest(repo, first).await?;
    futures::stream::iter(rest)
        .map(|tag| client.put_manifest(repo, tag, OCI_MANIFEST, &manifest.bytes))
        .buffer_unordered(PUSH_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(pushed.manifest_digest)
}

/// `v1.0.0` … `v1.0.<n-1>`.
pub fn semver_tags(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("v1.0.{i}")).collect()
}

/// `tags` sorted, for comparison with a listing.
pub fn sorted(mut tags: Vec<String>) -> Vec<String> {
    tags.sort();
    tags
}
