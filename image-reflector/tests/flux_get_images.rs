//! The flux CLI, built from its Go module, shows our ImageRepositories and ImagePolicies Ready
//! with the values Flux's controller would give it.

mod common;

use anyhow::{Context, Result, ensure};
use common::{Harness, is_ready, push_tags};
use serde_json::json;
use sluice_e2e::ControlPlane;
use sluice_e2e::flux::flux_cli;
use sluice_e2e::registry::Registry;

/// The cells of `name`'s row in a `flux get` table (tab-separated when not on a terminal).
fn row(table: &str, name: &str) -> Option<Vec<String>> {
    table
        .lines()
        .map(|line| {
            line.split('\t')
                .map(|cell| cell.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.first().is_some_and(|first| first == name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_get_images_shows_our_repositories_and_policies() -> Result<()> {
    let harness = Harness::start("image-flux-cli").await?;
    let registry = Registry::builder().start()?;
    push_tags(
        &registry.client()?,
        "team/web",
        &["1.0.0", "1.2.0", "2.0.0-rc.1"],
    )
    .await?;
    let image = format!("{}/team/web", registry.host());
    let spec = json!({"image": image, "interval": "1h", "insecure": true});
    harness.create_repository("web", spec).await?;
    let policy =
        json!({"imageRepositoryRef": {"name": "web"}, "policy": {"semver": {"range": "1.x"}}});
    harness.create_policy("web", policy).await?;
    harness.wait_policy("web", "Ready", is_ready).await?;
    let kubeconfig = ControlPlane::shared().await?.kubeconfig_path();
    let namespace = harness.namespace.as_str();

    let listed = flux_cli(
        kubeconfig,
        &["get", "images", "repository", "-n", namespace],
    )?;
    ensure!(
        listed.success,
        "flux get images repository: {}",
        listed.text()
    );
    let repository = row(&listed.stdout, "web").context(listed.text())?;
    ensure!(
        repository.iter().any(|cell| cell == "True")
            && repository
                .iter()
                .any(|cell| cell.starts_with("successful scan: found 3 tags")),
        "repository row {repository:?} in\n{}",
        listed.text()
    );

    let listed = flux_cli(kubeconfig, &["get", "images", "policy", "-n", namespace])?;
    ensure!(listed.success, "flux get images policy: {}", listed.text());
    let policy = row(&listed.stdout, "web").context(listed.text())?;
    let expected = format!("Latest image tag for {image} resolved to 1.2.0");
    ensure!(
        policy.iter().any(|cell| cell == "True") && policy.contains(&expected),
        "policy row {policy:?} in\n{}",
        listed.text()
    );
    Ok(())
}
