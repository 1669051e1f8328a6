//! Every fixture document survives a typed round trip, and the fixtures cover every CRD field.

use std::collections::BTreeSet;
use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sluice_api::image::{ImagePolicy, ImageRepository, ImageUpdateAutomation};
use sluice_api::kustomize::Kustomization;
use sluice_api::notification::{Alert, Provider, Receiver};
use sluice_api::source::{Bucket, GitRepository, OCIRepository};

fn documents(file_name: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file_name);
    let text = std::fs::read_to_string(&path).unwrap();
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    assert!(!documents.is_empty(), "{file_name} has no documents");
    documents
}

/// Deserializes each document into `K` and checks it serializes back to the same JSON.
fn assert_round_trip<K: Serialize + DeserializeOwned>(file_name: &str) {
    for (index, document) in documents(file_name).into_iter().enumerate() {
        let typed: K = serde_json::from_value(document.clone())
            .unwrap_or_else(|error| panic!("{file_name} document {index}: {error}"));
        let reserialized = serde_json::to_value(&typed).unwrap();
        assert_eq!(
            reserialized, document,
            "{file_name} document {index} changed in a round trip"
        );
    }
}

/// Schema paths (below the root) that no document sets.
fn uncovered_fields(kind: &str, file_name: &str) -> BTreeSet<String> {
    let crd = sluice_api::crd::all()
        .into_iter()
        .find(|crd| crd.spec.names.kind == kind)
        .unwrap();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|validation| validation.open_api_v3_schema.as_ref())
        .unwrap();
    let documents = documents(file_name);
    let mut uncovered = BTreeSet::new();
    for (name, property) in schema.properties.as_ref().unwrap() {
        if ["apiVersion", "kind", "metadata"].contains(&name.as_str()) {
            continue;
        }
        let values: Vec<&Value> = documents
            .iter()
            .filter_map(|document| document.get(name))
            .collect();
        collect_uncovered(property, &values, name, &mut uncovered);
    }
    uncovered
}

/// Adds `path` (or its sub-paths) to `uncovered` when none of `values` sets it.
fn collect_uncovered(
    schema: &JSONSchemaProps,
    values: &[&Value],
    path: &str,
    uncovered: &mut BTreeSet<String>,
) {
    if values.is_empty() {
        uncovered.insert(path.to_owned());
        return;
    }
    if let Some(properties) = &schema.properties {
        for (name, property) in properties {
            let children: Vec<&Value> = values.iter().filter_map(|value| value.get(name)).collect();
            collect_uncovered(property, &children, &format!("{path}.{name}"), uncovered);
        }
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = &schema.items {
        let elements: Vec<&Value> = values
            .iter()
            .filter_map(|value| value.as_array())
            .flatten()
            .collect();
        collect_uncovered(items, &elements, &format!("{path}[]"), uncovered);
    }
}

#[test]
fn gitrepository_round_trips() {
    assert_round_trip::<GitRepository>("gitrepository-full.yaml");
}

#[test]
fn ocirepository_round_trips() {
    assert_round_trip::<OCIRepository>("ocirepository-full.yaml");
}

#[test]
fn bucket_round_trips() {
    assert_round_trip::<Bucket>("bucket-full.yaml");
}

#[test]
fn kustomization_round_trips() {
    assert_round_trip::<Kustomization>("kustomization-full.yaml");
}

#[test]
fn imagerepository_round_trips() {
    assert_round_trip::<ImageRepository>("imagerepository-full.yaml");
}

#[test]
fn imagepolicy_round_trips() {
    assert_round_trip::<ImagePolicy>("imagepolicy-full.yaml");
}

#[test]
fn imageupdateautomation_round_trips() {
    assert_round_trip::<ImageUpdateAutomation>("imageupdateautomation-full.yaml");
}

#[test]
fn provider_round_trips() {
    assert_round_trip::<Provider>("provider-full.yaml");
}

#[test]
fn alert_round_trips() {
    assert_round_trip::<Alert>("alert-full.yaml");
}

#[test]
fn receiver_round_trips() {
    assert_round_trip::<Receiver>("receiver-full.yaml");
}

#[test]
fn fixtures_set_every_spec_and_status_field() {
    for (kind, file_name) in [
        ("GitRepository", "gitrepository-full.yaml"),
        ("OCIRepository", "ocirepository-full.yaml"),
        ("Bucket", "bucket-full.yaml"),
        ("Kustomization", "kustomization-full.yaml"),
        ("ImageRepository", "imagerepository-full.yaml"),
        ("ImagePolicy", "imagepolicy-full.yaml"),
        ("ImageUpdateAutomation", "imageupdateautomation-full.yaml"),
        ("Provider", "provider-full.yaml"),
        ("Alert", "alert-full.yaml"),
        ("Receiver", "receiver-full.yaml"),
    ] {
        assert_eq!(
            uncovered_fields(kind, file_name),
            BTreeSet::new(),
            "{file_name} leaves {kind} fields unset"
        );
    }
}

#[test]
fn round_trip_detects_fields_the_types_do_not_model() {
    let mut document = documents("gitrepository-full.yaml").remove(0);
    document["spec"]["notAFluxField"] = Value::Bool(true);
    let typed: GitRepository = serde_json::from_value(document.clone()).unwrap();
    assert_ne!(serde_json::to_value(&typed).unwrap(), document);
}
