//! Flux's documented Receiver examples, defaults and schema validation.

use serde_json::{Value, json};

use super::*;
use crate::FluxObject;
use crate::crd;

/// Deserializes a YAML manifest and checks it serializes back unchanged.
fn round_trip(yaml: &str) -> Receiver {
    let document: Value = serde_saphyr::from_str(yaml).unwrap();
    let typed: Receiver = serde_json::from_value(document.clone()).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), document);
    typed
}

fn schema() -> Value {
    let crd = crd::all()
        .into_iter()
        .find(|crd| crd.spec.names.kind == "Receiver")
        .unwrap();
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
    schema["openAPIV3Schema"].clone()
}

#[test]
fn documented_github_receiver_round_trips() {
    let receiver = round_trip(
        "apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata:
  name: github-receiver
  namespace: flux-system
spec:
  type: github
  events:
    - ping
    - push
  secretRef:
    name: receiver-token
  resources:
    - apiVersion: source.toolkit.fluxcd.io/v1
      kind: GitRepository
      name: flux-system
",
    );
    assert_eq!(receiver.spec.type_, ReceiverType::Github);
    assert_eq!(receiver.interval(), "10m");
    assert_eq!(
        receiver.effective_interval(),
        std::time::Duration::from_secs(600)
    );
}

#[test]
fn label_selected_resources_and_filters_round_trip() {
    let receiver = round_trip(
        "apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata:
  name: images
spec:
  type: generic-hmac
  interval: 1h
  secretRef:
    name: webhook-token
  resourceFilter: res.metadata.name != 'skip'
  resources:
    - kind: ImageRepository
      name: '*'
      namespace: apps
      matchLabels:
        app: podinfo
      filter: \"'tag' in req\"
",
    );
    let resource = &receiver.spec.resources[0];
    assert_eq!(resource.api_version, None);
    assert_eq!(resource.match_labels.as_ref().unwrap()["app"], "podinfo");
    assert_eq!(receiver.interval(), "1h");
}

#[test]
fn every_flux_type_name_parses() {
    for name in [
        "generic",
        "generic-hmac",
        "generic-oidc",
        "github",
        "gitlab",
        "bitbucket",
        "harbor",
        "dockerhub",
        "quay",
        "gcr",
        "nexus",
        "acr",
        "cdevents",
    ] {
        let parsed: ReceiverType = serde_json::from_value(json!(name)).unwrap();
        assert_eq!(parsed.as_str(), name);
    }
}

#[test]
fn schema_has_flux_defaults_enums_and_rules() {
    let schema = schema();
    let spec = &schema["properties"]["spec"];
    assert_eq!(spec["required"], json!(["resources", "type"]));
    assert_eq!(
        spec["x-kubernetes-validations"].as_array().unwrap().len(),
        4
    );
    let properties = &spec["properties"];
    assert_eq!(properties["interval"]["default"], "10m");
    assert_eq!(properties["type"]["enum"].as_array().unwrap().len(), 13);
    let resource = &properties["resources"]["items"];
    assert_eq!(resource["required"], json!(["kind", "name"]));
    assert_eq!(
        resource["properties"]["kind"]["enum"]
            .as_array()
            .unwrap()
            .len(),
        12
    );
    assert_eq!(resource["properties"]["name"]["maxLength"], 253);
    let oidc = &properties["oidcProviders"];
    assert_eq!(oidc["x-kubernetes-list-map-keys"], json!(["issuerURL"]));
    assert_eq!(oidc["items"]["properties"]["validations"]["minItems"], 1);
    assert_eq!(
        schema["properties"]["status"]["default"],
        json!({"observedGeneration": -1})
    );
    assert_eq!(
        schema["properties"]["status"]["properties"]["webhookPath"]["type"],
        "string"
    );
}
