//! Object order: kustomize's legacy kind order for `kustomize build`, the listed order for Flux's
//! build unless the kustomization sets `sortOptions`.

use std::path::Path;

use sluice_kustomize::{BuildOptions, BuildOrder, build_with};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn kinds(dir: &Path, order: BuildOrder) -> Vec<String> {
    let options = BuildOptions {
        order,
        ..BuildOptions::default()
    };
    build_with(dir, &options)
        .unwrap()
        .iter()
        .map(|object| object["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn app(sort_options: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "kustomization.yaml",
        &format!("resources:\n- deployment.yaml\n- service.yaml\n- configmap.yaml\n{sort_options}"),
    );
    write(
        dir.path(),
        "deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n",
    );
    write(
        dir.path(),
        "service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: app\n",
    );
    write(
        dir.path(),
        "configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
    );
    dir
}

#[test]
fn flux_order_keeps_the_listed_order_and_kustomize_sorts_by_kind() {
    let dir = app("");
    assert_eq!(
        kinds(dir.path(), BuildOrder::AsListed),
        ["Deployment", "Service", "ConfigMap"]
    );
    assert_eq!(
        kinds(dir.path(), BuildOrder::Legacy),
        ["ConfigMap", "Service", "Deployment"]
    );
}

#[test]
fn sort_options_in_the_kustomization_apply_to_both() {
    let dir = app("sortOptions:\n  order: legacy\n");
    assert_eq!(
        kinds(dir.path(), BuildOrder::AsListed),
        ["ConfigMap", "Service", "Deployment"]
    );
    let dir = app("sortOptions:\n  order: fifo\n");
    assert_eq!(
        kinds(dir.path(), BuildOrder::Legacy),
        ["Deployment", "Service", "ConfigMap"]
    );
}
