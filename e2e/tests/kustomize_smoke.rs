//! Smoke tests for the real kustomize binary wrapper.

use std::path::PathBuf;

use serde_json::Value;
use sluice_e2e::kustomize;

fn testdata(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/kustomize")
        .join(path)
}

fn find<'a>(docs: &'a [Value], kind: &str, name_prefix: &str) -> &'a Value {
    docs.iter()
        .find(|d| {
            d["kind"] == kind
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(name_prefix))
        })
        .unwrap_or_else(|| panic!("no {kind} named {name_prefix}* in the output: {docs:#?}"))
}

#[test]
fn overlay_builds_with_prefix_labels_generator_and_patch() {
    let yaml =
        kustomize::build(&testdata("overlays/prod")).expect("kustomize build of the prod overlay");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml).expect("kustomize output is YAML");
    assert_eq!(
        docs.len(),
        3,
        "ConfigMap, Service and Deployment expected: {yaml}"
    );

    let config_map = find(&docs, "ConfigMap", "prod-app-config-");
    let cm_name = config_map["metadata"]["name"].as_str().unwrap();
    assert!(
        cm_name.len() > "prod-app-config-".len(),
        "generated name carries a content hash: {cm_name}"
    );
    assert_eq!(config_map["data"]["LOG_LEVEL"], "debug");
    assert_eq!(
        config_map["data"]["settings.properties"],
        "feature.enabled=true\n"
    );

    let service = find(&docs, "Service", "prod-app");
    assert_eq!(service["metadata"]["name"], "prod-app");

    let deployment = find(&docs, "Deployment", "prod-app");
    assert_eq!(deployment["metadata"]["name"], "prod-app");
    assert_eq!(
        deployment["spec"]["replicas"], 3,
        "strategic-merge patch sets replicas"
    );
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"], "ghcr.io/example/app:1.0.0",
        "patch merges into the base container"
    );
    assert_eq!(container["resources"]["limits"]["memory"], "256Mi");
    assert_eq!(
        container["envFrom"][0]["configMapRef"]["name"], cm_name,
        "reference follows the hashed name"
    );

    for doc in &docs {
        assert_eq!(
            doc["metadata"]["labels"]["environment"], "prod",
            "label on {}",
            doc["metadata"]["name"]
        );
    }
    assert!(
        deployment["spec"]["selector"]["matchLabels"]
            .get("environment")
            .is_none(),
        "labels without includeSelectors leave selectors alone"
    );
}

#[test]
fn load_restrictor_refuses_files_outside_the_root() {
    let err = kustomize::build(&testdata("outside-root")).expect_err("reading ../ must fail");
    let message = err.to_string();
    assert!(
        message.contains("is not in or below"),
        "stderr is in the error: {message}"
    );
    assert!(
        message.contains("outside-root"),
        "the directory is named: {message}"
    );
}
