//! Flux's documented notification examples, defaults and schema validation.

use serde_json::{Value, json};

use super::*;
use crate::crd;

fn round_trip<K: serde::Serialize + serde::de::DeserializeOwned>(yaml: &str) -> K {
    let document: Value = serde_saphyr::from_str(yaml).unwrap();
    let typed: K = serde_json::from_value(document.clone()).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), document);
    typed
}

fn schema(kind: &str) -> Value {
    let crd = crd::all()
        .into_iter()
        .find(|crd| crd.spec.names.kind == kind)
        .unwrap();
    serde_json::to_value(&crd.spec.versions[0].schema).unwrap()["openAPIV3Schema"].clone()
}

#[test]
fn documented_provider_examples_round_trip() {
    let slack: Provider = round_trip(
        "apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Provider
metadata:
  name: slack-bot
  namespace: flux-system
spec:
  type: slack
  channel: general
  address: https://slack.com/api/chat.postMessage
  secretRef:
    name: slack-bot-token
",
    );
    assert_eq!(slack.provider_type(), Some(ProviderType::Slack));
    assert_eq!(
        slack.effective_timeout().unwrap(),
        provider::DEFAULT_TIMEOUT
    );
    let github: Provider = round_trip(
        "apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Provider
metadata:
  name: github
  namespace: flux-system
spec:
  type: github
  address: https://github.com/stefanprodan/podinfo
  secretRef:
    name: api-token
  commitStatusExpr: \"(event.involvedObject.kind + '/' + event.involvedObject.name + '/' + event.metadata.foo + '/' + provider.metadata.uid.split('-').first().value()).lowerAscii()\"
",
    );
    assert!(github.provider_type().unwrap().is_commit_status());
    let hmac: Provider = round_trip(
        "apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Provider
metadata:
  name: generic-webhook
  namespace: flux-system
spec:
  type: generic-hmac
  address: https://my-webhook.internal
  timeout: 30s
  secretRef:
    name: generic-webhook-secret
  certSecretRef:
    name: my-ca-crt
  proxySecretRef:
    name: proxy
",
    );
    assert_eq!(
        hmac.effective_timeout().unwrap(),
        std::time::Duration::from_secs(30)
    );
}

#[test]
fn documented_alert_examples_round_trip() {
    let alert: Alert = round_trip(
        "apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Alert
metadata:
  name: slack
  namespace: flux-system
spec:
  summary: Cluster addons impacted in us-east-2
  providerRef:
    name: slack-bot
  eventSeverity: error
  eventSources:
    - kind: GitRepository
      name: '*'
    - kind: Kustomization
      name: '*'
",
    );
    assert_eq!(alert.severity_filter(), EventSeverityFilter::Error);
    let alert: Alert = round_trip(
        "apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Alert
metadata:
  name: apps
  namespace: flux-system
spec:
  providerRef:
    name: generic
  eventSources:
    - kind: Kustomization
      name: '*'
      namespace: apps
      matchLabels:
        team: web
  eventMetadata:
    env: prod
    cluster: eu-1
  inclusionList:
    - \".*succeeded.*\"
  exclusionList:
    - \"^Dependencies.*\"
",
    );
    assert_eq!(alert.severity_filter(), EventSeverityFilter::Info);
    assert_eq!(alert.spec.event_sources[0].match_labels["team"], "web");
}

#[test]
fn provider_schema_has_flux_validation() {
    let schema = schema("Provider");
    let spec = &schema["properties"]["spec"];
    assert_eq!(spec["required"], json!(["type"]));
    let types = spec["properties"]["type"]["enum"].as_array().unwrap();
    assert_eq!(types.len(), 32);
    assert!(types.contains(&json!("generic-hmac")) && types.contains(&json!("otel")));
    assert_eq!(spec["properties"]["address"]["maxLength"], 2048);
    assert_eq!(
        spec["properties"]["proxy"]["pattern"],
        "^(http|https)://.*$"
    );
    assert_eq!(
        spec["x-kubernetes-validations"].as_array().unwrap().len(),
        1
    );
    assert!(schema["properties"].get("status").is_none());
    for name in ProviderType::NAMES {
        assert_eq!(name.parse::<ProviderType>().unwrap().as_str(), name);
    }
    assert!("teams".parse::<ProviderType>().is_err());
}

#[test]
fn alert_schema_has_flux_defaults_and_enums() {
    let schema = schema("Alert");
    let spec = &schema["properties"]["spec"];
    assert_eq!(spec["required"], json!(["eventSources", "providerRef"]));
    let properties = &spec["properties"];
    assert_eq!(properties["eventSeverity"]["default"], "info");
    assert_eq!(
        properties["eventSeverity"]["enum"],
        json!(["info", "error"])
    );
    assert_eq!(properties["summary"]["maxLength"], 255);
    let source = &properties["eventSources"]["items"]["properties"];
    assert_eq!(source["kind"]["enum"].as_array().unwrap().len(), 12);
    assert_eq!(source["name"]["maxLength"], 253);
    assert_eq!(
        source["matchLabels"]["additionalProperties"]["type"],
        "string"
    );
    assert!(schema["properties"].get("status").is_none());
}
