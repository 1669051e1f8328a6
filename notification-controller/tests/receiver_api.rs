//! The Receiver CRD on the real apiserver: Flux's documented examples are accepted as written,
//! defaults are filled in, and Flux's validation rules refuse what Flux refuses.

use anyhow::Result;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use sluice_api::notification::Receiver;
use sluice_e2e::ControlPlane;

fn receiver(name: &str, spec: Value) -> Result<Receiver> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1",
        "kind": "Receiver",
        "metadata": {"name": name},
        "spec": spec,
    }))?)
}

/// Specs from Flux's Receiver documentation, one per type, plus label selection and filters.
fn documented() -> Vec<(&'static str, Value)> {
    let git = json!([{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "name": "webapp"}]);
    let image = json!([{"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository", "name": "webapp"}]);
    let secret = json!({"name": "webhook-token"});
    vec![
        (
            "github-receiver",
            json!({"type": "github", "events": ["ping", "push"], "secretRef": secret, "resources": git}),
        ),
        (
            "generic-receiver",
            json!({"type": "generic", "secretRef": secret, "resources": [{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "name": "webapp", "namespace": "default"}]}),
        ),
        (
            "generic-hmac-receiver",
            json!({"type": "generic-hmac", "secretRef": secret, "resources": git}),
        ),
        (
            "gitlab-receiver",
            json!({"type": "gitlab", "events": ["Push Hook", "Tag Push Hook"], "secretRef": secret, "resources": [
            {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "name": "webapp-frontend"},
            {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "name": "webapp-backend"}]}),
        ),
        (
            "bitbucket-receiver",
            json!({"type": "bitbucket", "events": ["repo:refs_changed"], "secretRef": secret, "resources": git}),
        ),
        (
            "harbor-receiver",
            json!({"type": "harbor", "secretRef": secret, "resources": image}),
        ),
        (
            "dockerhub-receiver",
            json!({"type": "dockerhub", "secretRef": secret, "resources": image}),
        ),
        (
            "quay-receiver",
            json!({"type": "quay", "secretRef": secret, "resources": image}),
        ),
        (
            "nexus-receiver",
            json!({"type": "nexus", "secretRef": secret, "resources": image}),
        ),
        (
            "gcr-receiver",
            json!({"type": "gcr", "secretRef": secret, "resources": image}),
        ),
        (
            "acr-receiver",
            json!({"type": "acr", "secretRef": secret, "resources": [{"kind": "ImageRepository", "name": "webapp"}]}),
        ),
        (
            "cdevents-receiver",
            json!({"type": "cdevents", "events": ["dev.cdevents.change.merged"], "secretRef": secret, "resources": git}),
        ),
        (
            "label-receiver",
            json!({"type": "generic", "secretRef": secret, "resources": [
            {"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository", "name": "*", "matchLabels": {"app": "podinfo"}}]}),
        ),
        (
            "filtered-receiver",
            json!({"type": "generic", "secretRef": secret, "resourceFilter": "has(res.metadata.annotations)",
            "resources": [{"kind": "Kustomization", "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "name": "*", "matchLabels": {}, "filter": "true"}]}),
        ),
        (
            "oidc-receiver",
            json!({"type": "generic-oidc", "resources": git, "oidcProviders": [{
            "issuerURL": "https://token.actions.githubusercontent.com",
            "validations": [{"expression": "claims.repository_owner == 'org'", "message": "wrong owner"}]}]}),
        ),
    ]
}

#[tokio::test]
async fn documented_examples_are_accepted_with_flux_defaults() -> Result<()> {
    let control_plane = ControlPlane::shared().await?;
    let namespace = control_plane.namespace("receiver-api").await?;
    let api: Api<Receiver> = Api::namespaced(control_plane.client().await?, &namespace);
    for (name, spec) in documented() {
        let created = api
            .create(&PostParams::default(), &receiver(name, spec.clone())?)
            .await;
        let created = created.map_err(|error| anyhow::anyhow!("{name}: {error}"))?;
        assert_eq!(created.spec.interval.as_deref(), Some("10m"), "{name}");
        let stored = serde_json::to_value(&created.spec)?;
        for (field, value) in spec.as_object().into_iter().flatten() {
            assert_eq!(&stored[field], value, "{name}: {field} kept as written");
        }
    }
    Ok(())
}

#[tokio::test]
async fn flux_validation_rules_refuse_invalid_receivers() -> Result<()> {
    let control_plane = ControlPlane::shared().await?;
    let namespace = control_plane.namespace("receiver-invalid").await?;
    let api: Api<Receiver> = Api::namespaced(control_plane.client().await?, &namespace);
    let git = json!([{"kind": "GitRepository", "name": "webapp"}]);
    let oidc = json!([{"issuerURL": "https://issuer.example.com", "validations": [{"expression": "true", "message": "m"}]}]);
    let cases = [
        (
            "no-secret",
            json!({"type": "github", "resources": git}),
            "secretRef is required",
        ),
        (
            "oidc-secret",
            json!({"type": "generic-oidc", "secretRef": {"name": "t"}, "resources": git, "oidcProviders": oidc}),
            "secretRef cannot be set",
        ),
        (
            "oidc-none",
            json!({"type": "generic-oidc", "resources": git}),
            "at least one oidcProvider",
        ),
        (
            "oidc-wrong-type",
            json!({"type": "generic", "secretRef": {"name": "t"}, "resources": git, "oidcProviders": oidc}),
            "only be set when type is generic-oidc",
        ),
        (
            "bad-type",
            json!({"type": "svn", "secretRef": {"name": "t"}, "resources": git}),
            "Unsupported value",
        ),
        (
            "bad-kind",
            json!({"type": "generic", "secretRef": {"name": "t"}, "resources": [{"kind": "Deployment", "name": "x"}]}),
            "Unsupported value",
        ),
        (
            "bad-interval",
            json!({"type": "generic", "interval": "5 minutes", "secretRef": {"name": "t"}, "resources": git}),
            "spec.interval",
        ),
    ];
    for (name, spec, expected) in cases {
        let mut object =
            serde_json::to_value(receiver(name, json!({"type": "generic", "resources": []}))?)?;
        object["spec"] = spec;
        let dynamic: kube::api::DynamicObject = serde_json::from_value(object)?;
        let resource = kube::api::ApiResource::erase::<Receiver>(&());
        let raw: Api<kube::api::DynamicObject> =
            Api::namespaced_with(api.clone().into_client(), &namespace, &resource);
        let error = raw
            .create(&PostParams::default(), &dynamic)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains(expected), "{name}: {error}");
    }
    Ok(())
}
