//! Provider and Alert against the real apiserver with Sluice's CRDs: Flux's documented examples
//! and the full-coverage fixtures are accepted, what Flux's CRDs refuse is refused, and the flux CLI lists our objects.

use anyhow::{Context, Result, ensure};
use kube::api::{DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, Client};
use serde_json::{Value, json};
use sluice_e2e::ControlPlane;
use sluice_e2e::flux::flux_cli;

fn api(client: &Client, namespace: &str, kind: &str) -> Api<DynamicObject> {
    let plural = if kind == "Alert" {
        "alerts"
    } else {
        "providers"
    };
    let gvk = GroupVersionKind::gvk("notification.toolkit.fluxcd.io", "v1beta3", kind);
    Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

async fn create(
    client: &Client,
    namespace: &str,
    kind: &str,
    name: &str,
    spec: Value,
) -> Result<(), kube::Error> {
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }))
    .map_err(kube::Error::SerdeError)?;
    api(client, namespace, kind)
        .create(&PostParams::default(), &object)
        .await
        .map(|_| ())
}

/// Providers from Flux's provider documentation, one per documented type and option.
fn documented_providers() -> Vec<(&'static str, Value)> {
    vec![
        (
            "slack-bot",
            json!({"type": "slack", "channel": "general", "address": "https://slack.com/api/chat.postMessage", "secretRef": {"name": "slack-bot-token"}}),
        ),
        (
            "slack-webhook",
            json!({"type": "slack", "secretRef": {"name": "slack-webhook"}}),
        ),
        (
            "generic-webhook",
            json!({"type": "generic-hmac", "address": "https://my-webhook.internal", "secretRef": {"name": "generic-webhook-secret"}}),
        ),
        (
            "generic",
            json!({"type": "generic", "address": "https://webhook.example.com", "timeout": "30s", "proxySecretRef": {"name": "proxy"}, "certSecretRef": {"name": "my-ca-crt"}}),
        ),
        (
            "msteams",
            json!({"type": "msteams", "secretRef": {"name": "msteams-webhook"}}),
        ),
        (
            "discord",
            json!({"type": "discord", "channel": "flux", "username": "flux", "secretRef": {"name": "discord-webhook"}}),
        ),
        (
            "alertmanager",
            json!({"type": "alertmanager", "secretRef": {"name": "alertmanager-address"}}),
        ),
        (
            "grafana",
            json!({"type": "grafana", "address": "https://grafana.example.com/api/annotations", "secretRef": {"name": "grafana-token"}}),
        ),
        (
            "pagerduty",
            json!({"type": "pagerduty", "address": "https://events.pagerduty.com", "channel": "integration-key"}),
        ),
        (
            "telegram",
            json!({"type": "telegram", "address": "https://api.telegram.org", "channel": "@fluxtest", "secretRef": {"name": "telegram-token"}}),
        ),
        (
            "matrix",
            json!({"type": "matrix", "address": "https://matrix.org", "channel": "!jezptmDwEeLapMLjOc:matrix.org", "secretRef": {"name": "matrix-token"}}),
        ),
        (
            "sentry",
            json!({"type": "sentry", "channel": "staging-env", "secretRef": {"name": "sentry-webhook-secret"}}),
        ),
        (
            "webex",
            json!({"type": "webex", "address": "https://webexapis.com/v1/messages", "channel": "room-id", "secretRef": {"name": "webex-token"}}),
        ),
        (
            "opsgenie",
            json!({"type": "opsgenie", "address": "https://api.opsgenie.com/v2/alerts", "secretRef": {"name": "opsgenie-token"}}),
        ),
        (
            "googlechat",
            json!({"type": "googlechat", "secretRef": {"name": "google-webhook"}}),
        ),
        (
            "rocket",
            json!({"type": "rocket", "address": "https://rocket.example.com/hooks/x"}),
        ),
        (
            "github",
            json!({"type": "github", "address": "https://github.com/stefanprodan/podinfo", "secretRef": {"name": "api-token"}, "commitStatusExpr": "(event.involvedObject.kind + '/' + event.involvedObject.name).lowerAscii()"}),
        ),
        (
            "gitlab",
            json!({"type": "gitlab", "address": "https://gitlab.com/stefanprodan/podinfo", "secretRef": {"name": "api-token"}}),
        ),
        (
            "gitea",
            json!({"type": "gitea", "address": "https://gitea.example.com/stefanprodan/podinfo", "secretRef": {"name": "api-token"}}),
        ),
        (
            "bitbucket",
            json!({"type": "bitbucket", "address": "https://bitbucket.org/owner/repo.git", "secretRef": {"name": "api-token"}}),
        ),
        (
            "bitbucketserver",
            json!({"type": "bitbucketserver", "address": "https://example.com:7990/scm/project/repo.git", "secretRef": {"name": "bb-server-token"}}),
        ),
        (
            "azuredevops",
            json!({"type": "azuredevops", "address": "https://dev.azure.com/org/proj/_git/repo", "secretRef": {"name": "api-token"}, "serviceAccountName": "sa"}),
        ),
        (
            "pubsub",
            json!({"type": "googlepubsub", "address": "project-id", "channel": "topic", "secretRef": {"name": "pubsub"}}),
        ),
        (
            "nats",
            json!({"type": "nats", "address": "nats://nats.nats-system.svc.cluster.local:4222", "channel": "flux", "secretRef": {"name": "nats-creds"}}),
        ),
        (
            "suspended",
            json!({"type": "generic", "address": "http://example.com", "suspend": true, "proxy": "http://proxy.example.com:8080", "interval": "10m"}),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_examples_are_accepted_and_invalid_objects_refused() -> Result<()> {
    let plane = ControlPlane::shared().await?;
    let namespace = plane.namespace("nc-api").await?;
    let client = plane.client().await?;
    for (name, spec) in documented_providers() {
        create(&client, &namespace, "Provider", name, spec)
            .await
            .with_context(|| format!("documented Provider {name} refused"))?;
    }
    let alerts = [
        (
            "slack",
            json!({"summary": "Cluster addons impacted in us-east-2", "providerRef": {"name": "slack-bot"}, "eventSeverity": "error",
            "eventSources": [{"kind": "GitRepository", "name": "*"}, {"kind": "Kustomization", "name": "*"}]}),
        ),
        (
            "labels",
            json!({"providerRef": {"name": "generic"}, "eventMetadata": {"env": "prod", "cluster": "eu-1"},
            "eventSources": [{"kind": "Kustomization", "name": "*", "namespace": "apps", "matchLabels": {"team": "web"}},
                             {"kind": "HelmRelease", "name": "podinfo", "apiVersion": "helm.toolkit.fluxcd.io/v2"}],
            "inclusionList": [".*succeeded.*"], "exclusionList": ["^Dependencies.*"], "suspend": true}),
        ),
    ];
    for (name, spec) in alerts {
        create(&client, &namespace, "Alert", name, spec)
            .await
            .with_context(|| format!("documented Alert {name} refused"))?;
    }
    for (kind, file) in [
        ("Provider", "provider-full.yaml"),
        ("Alert", "alert-full.yaml"),
    ] {
        let path = format!(
            "{}/../shared/api/tests/fixtures/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let fixture: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path)?)?;
        create(
            &client,
            &namespace,
            kind,
            &format!("full-{}", kind.to_lowercase()),
            fixture["spec"].clone(),
        )
        .await
        .with_context(|| format!("the full {kind} fixture was refused"))?;
    }
    let stored = api(&client, &namespace, "Alert").get("slack").await?;
    ensure!(stored.data["spec"]["eventSeverity"] == "error");
    let defaulted = api(&client, &namespace, "Alert").get("labels").await?;
    ensure!(
        defaulted.data["spec"]["eventSeverity"] == "info",
        "Flux's default: {:?}",
        defaulted.data
    );

    let refused: [(&str, Value, &str); 5] = [
        ("Provider", json!({"type": "teams"}), "Unsupported value"),
        (
            "Provider",
            json!({"type": "slack", "commitStatusExpr": "'x'"}),
            "commitStatusExpr",
        ),
        (
            "Provider",
            json!({"type": "generic", "timeout": "1h"}),
            "timeout",
        ),
        (
            "Alert",
            json!({"providerRef": {"name": "p"}, "eventSources": [{"kind": "Deployment", "name": "x"}]}),
            "kind",
        ),
        (
            "Alert",
            json!({"providerRef": {"name": "p"}, "eventSources": [], "summary": "x".repeat(256)}),
            "summary",
        ),
    ];
    for (index, (kind, spec, needle)) in refused.into_iter().enumerate() {
        let name = format!("invalid-{index}");
        match create(&client, &namespace, kind, &name, spec.clone()).await {
            Ok(()) => anyhow::bail!("{kind} {spec} was accepted"),
            Err(error) => ensure!(error.to_string().contains(needle), "{kind} {spec}: {error}"),
        }
    }
    Ok(())
}

/// The cells of `name`'s row in a `flux get` table.
fn row(table: &str, name: &str) -> Option<Vec<String>> {
    table
        .lines()
        .map(|line| {
            line.split('\t')
                .map(|cell| cell.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.get(1).is_some_and(|cell| cell == name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_get_lists_our_alerts_and_providers() -> Result<()> {
    let plane = ControlPlane::shared().await?;
    let namespace = plane.namespace("nc-cli").await?;
    let client = plane.client().await?;
    create(
        &client,
        &namespace,
        "Provider",
        "chat",
        json!({"type": "slack", "address": "https://hooks.slack.com/x"}),
    )
    .await?;
    create(&client, &namespace, "Alert", "deploys", json!({"providerRef": {"name": "chat"}, "eventSources": [{"kind": "Kustomization", "name": "*"}]})).await?;
    let kubeconfig = plane.kubeconfig_path();

    let listed = flux_cli(kubeconfig, &["get", "alerts", "-A"])?;
    ensure!(listed.success, "flux get alerts -A: {}", listed.text());
    let alert = row(&listed.stdout, "deploys").context(listed.text())?;
    ensure!(
        alert[0] == namespace
            && alert.contains(&"False".to_owned())
            && alert.contains(&"True".to_owned()),
        "{alert:?}"
    );

    let listed = flux_cli(kubeconfig, &["get", "alert-providers", "-A"])?;
    ensure!(
        listed.success,
        "flux get alert-providers -A: {}",
        listed.text()
    );
    let provider = row(&listed.stdout, "chat").context(listed.text())?;
    ensure!(
        provider[0] == namespace && provider.contains(&"True".to_owned()),
        "{provider:?}"
    );
    Ok(())
}
