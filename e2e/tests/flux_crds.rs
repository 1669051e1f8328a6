//! Sluice's CRDs (source, kustomize, image, notification) against Flux's own (from the pinned Go
//! modules): the same versions, names, categories, short names and printer columns, the same CEL rules, and every object Flux's CRDs accept among Flux's
//! samples, test data and documented examples is accepted by Sluice's too, except one without a
//! `spec` (a documented difference); and Flux's own source-controller runs on Sluice's CRD set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion, JSONSchemaProps,
};
use kube::api::{DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, Client};
use serde_json::Value;
use sluice_api::source::{HelmChart, HelmRepository};
use sluice_e2e::ControlPlane;
use sluice_e2e::chart_repo::{
    ChartRepoOptions, ChartRepository, IndexEntry, chart_archive, index_yaml,
};
use sluice_e2e::flux::{FluxController, FluxModule, FluxProcess};
use sluice_e2e::poll::wait_object;

/// Group prefix under which Flux's CRDs are installed beside Sluice's, to validate with both.
const UPSTREAM: &str = "upstream.";

fn flux_crd(file: &str) -> CustomResourceDefinition {
    for module in FluxModule::ALL {
        let path = module.crds_dir().unwrap().join(file);
        if path.is_file() {
            let text = std::fs::read_to_string(&path).unwrap();
            return serde_saphyr::from_str(&text).unwrap();
        }
    }
    panic!("Flux publishes no {file}");
}

/// Every CRD of ours: source, kustomize, image and notification kinds.
fn compared_crds() -> Vec<CustomResourceDefinition> {
    sluice_api::crd::all()
}

/// The version `ours` stores (Flux's CRD serves the same one).
fn stored_version(ours: &CustomResourceDefinition) -> &str {
    let stored = ours.spec.versions.iter().find(|v| v.storage);
    &stored.unwrap().name
}

fn version<'a>(
    crd: &'a CustomResourceDefinition,
    name: &str,
) -> &'a CustomResourceDefinitionVersion {
    let found = crd.spec.versions.iter().find(|v| v.name == name);
    found.unwrap_or_else(|| panic!("{} serves no {name}", crd.spec.names.kind))
}

#[test]
fn names_categories_and_printer_columns_match_flux() {
    for ours in compared_crds() {
        let file = sluice_api::crd::file_name(&ours);
        let flux = flux_crd(&file);
        assert_eq!(ours.spec.names, flux.spec.names, "{file}: names");
        assert_eq!(ours.spec.scope, flux.spec.scope, "{file}: scope");
        let stored = stored_version(&ours);
        assert_eq!(
            flux.spec
                .versions
                .iter()
                .map(|v| &v.name)
                .collect::<Vec<_>>(),
            ours.spec
                .versions
                .iter()
                .map(|v| &v.name)
                .collect::<Vec<_>>(),
            "{file}: versions"
        );
        let columns = |crd: &CustomResourceDefinition| {
            version(crd, stored)
                .additional_printer_columns
                .iter()
                .flatten()
                .map(|c| (c.name.clone(), c.type_.clone(), c.json_path.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(columns(&ours), columns(&flux), "{file}: printer columns");
    }
}

/// Every CEL rule (without its message) in a schema, by path.
fn cel_rules(schema: &JSONSchemaProps, path: &str, out: &mut Vec<(String, String)>) {
    for rule in schema.x_kubernetes_validations.iter().flatten() {
        out.push((path.to_owned(), rule.rule.clone()));
    }
    for (name, child) in schema.properties.iter().flatten() {
        if path.is_empty() && name == "status" {
            continue;
        }
        cel_rules(child, &format!("{path}.{name}"), out);
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(items)) = &schema.items {
        cel_rules(items, &format!("{path}[]"), out);
    }
}

#[test]
fn cel_rules_match_flux() {
    for ours in compared_crds() {
        let file = sluice_api::crd::file_name(&ours);
        let flux = flux_crd(&file);
        let stored = stored_version(&ours);
        let rules = |crd: &CustomResourceDefinition| {
            let mut out = Vec::new();
            let schema = version(crd, stored)
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap();
            cel_rules(schema, "", &mut out);
            out.sort();
            out
        };
        assert_eq!(rules(&ours), rules(&flux), "{file}: CEL rules");
    }
}

/// Flux's CRD of `file` renamed into the group `upstream.<group>`.
fn upstream_crd(file: &str) -> CustomResourceDefinition {
    let mut crd = flux_crd(file);
    crd.spec.group = format!("{UPSTREAM}{}", crd.spec.group);
    crd.metadata.name = Some(format!("{}.{}", crd.spec.names.plural, crd.spec.group));
    crd.metadata.annotations = None;
    crd
}

/// Every YAML document in Flux's samples, test data and spec docs (fenced `yaml` blocks).
fn flux_examples() -> Vec<(PathBuf, Value)> {
    let mut files = Vec::new();
    for module in FluxModule::ALL {
        let module = module.dir().unwrap();
        for dir in [
            "config/samples",
            "config/testdata",
            "docs/spec/v1",
            "docs/spec/v1beta3",
        ] {
            collect_files(&module.join(dir), &mut files);
        }
    }
    let mut examples = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let blocks = if file.extension().is_some_and(|e| e == "md") {
            fenced_yaml(&text)
        } else {
            vec![text]
        };
        for block in blocks {
            let documents: Vec<Value> = serde_saphyr::from_multiple(&block).unwrap_or_default();
            examples.extend(documents.into_iter().map(|d| (file.clone(), d)));
        }
    }
    examples
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "md") {
            out.push(path);
        }
    }
}

fn fenced_yaml(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start().starts_with("```yaml") => current = Some(String::new()),
            Some(block) if line.trim_start().starts_with("```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// Server-side dry-run create of `object` as `kind` of `group`/v1; the refusal message if refused.
async fn dry_run_create(
    client: &Client,
    group: &str,
    kind: &str,
    plural: &str,
    object: &Value,
) -> Option<String> {
    let version = object["apiVersion"]
        .as_str()
        .and_then(|v| v.rsplit_once('/'))
        .map_or("v1", |(_, version)| version);
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
    let mut object = object.clone();
    object["apiVersion"] = Value::String(format!("{group}/{version}"));
    object["metadata"]["namespace"] = Value::String("default".into());
    let object: DynamicObject = serde_json::from_value(object).ok()?;
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    api.create(&params, &object)
        .await
        .err()
        .map(|e| e.to_string())
}

#[tokio::test]
async fn every_flux_valid_example_is_accepted_by_sluice_crds() {
    let plane = ControlPlane::shared()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let upstream = plane.dir().join("upstream-crds");
    std::fs::create_dir_all(&upstream).unwrap();
    let ours = compared_crds();
    for crd in &ours {
        let file = sluice_api::crd::file_name(crd);
        let yaml = serde_saphyr::to_string(&upstream_crd(&file)).unwrap();
        std::fs::write(upstream.join(&file), yaml).unwrap();
    }
    plane.apply_crds_from(&upstream).await.unwrap();
    let client = plane.client().await.unwrap();

    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    for (file, example) in flux_examples() {
        let api_version = example["apiVersion"].as_str().unwrap_or_default();
        let kind = example["kind"].as_str().unwrap_or_default();
        let Some(crd) = ours.iter().find(|crd| {
            crd.spec.names.kind == kind
                && api_version == format!("{}/{}", crd.spec.group, stored_version(crd))
        }) else {
            continue;
        };
        let plural = &crd.spec.names.plural;
        let upstream_group = format!("{UPSTREAM}{}", crd.spec.group);
        if dry_run_create(&client, &upstream_group, kind, plural, &example)
            .await
            .is_some()
        {
            continue;
        }
        let refused = dry_run_create(&client, &crd.spec.group, kind, plural, &example).await;
        if example.get("spec").is_none() {
            // The one documented difference (README, "Where Sluice differs"): `spec` is required.
            assert!(refused.is_some_and(|m| m.contains("spec: Required value")));
            continue;
        }
        assert_eq!(
            refused,
            None,
            "{} accepts this {kind} from {} but Sluice's CRD refuses it:\n{example:#}",
            "Flux's CRD",
            file.display()
        );
        *checked.entry(kind.to_owned()).or_default() += 1;
    }
    for crd in &ours {
        let kind = &crd.spec.names.kind;
        assert!(
            checked.get(kind).is_some_and(|count| *count > 0),
            "no Flux-valid {kind} example was checked: {checked:?}"
        );
    }
    assert!(
        checked.values().sum::<usize>() >= 60,
        "only {checked:?} Flux-valid examples found"
    );
}

fn ready_at<K: sluice_api::FluxObject>(object: &K) -> bool {
    object
        .condition("Ready")
        .is_some_and(|c| c.status == "True" && c.observed_generation == object.meta().generation)
}

/// Flux's source-controller needs every kind of its API at start-up (it watches HelmRepository,
/// HelmChart and the others); on Sluice's CRDs it starts and reconciles a HelmChart to Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_source_controller_runs_on_sluice_crds() {
    let plane = ControlPlane::shared()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let namespace = plane.namespace("flux-on-sluice").await.unwrap();
    let repo = ChartRepository::start(ChartRepoOptions::default())
        .await
        .unwrap();
    let chart = chart_archive(
        "app",
        "1.0.0",
        &[("templates/cm.yaml", "kind: ConfigMap\n")],
    );
    repo.put("app-1.0.0.tgz", chart.unwrap());
    let entry = IndexEntry {
        name: "app",
        version: "1.0.0",
        url: "app-1.0.0.tgz",
    };
    repo.put("index.yaml", index_yaml(&[entry]));
    let (kubeconfig, dir) = (
        plane.kubeconfig_path().to_path_buf(),
        plane.dir().join(format!("{namespace}-flux-source")),
    );
    let watched = namespace.clone();
    let flux = tokio::task::spawn_blocking(move || {
        FluxProcess::start(FluxController::Source, &kubeconfig, &dir, &watched, None)
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("{e}"));

    let client = plane.client().await.unwrap();
    let repositories: Api<HelmRepository> = Api::namespaced(client.clone(), &namespace);
    let repository: HelmRepository = serde_json::from_value(serde_json::json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
        "metadata": {"name": "charts"},
        "spec": {"url": repo.url(), "interval": "1h"},
    }))
    .unwrap();
    repositories
        .create(&PostParams::default(), &repository)
        .await
        .unwrap();
    let charts: Api<HelmChart> = Api::namespaced(client, &namespace);
    let chart: HelmChart = serde_json::from_value(serde_json::json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmChart",
        "metadata": {"name": "app"},
        "spec": {"chart": "app", "sourceRef": {"kind": "HelmRepository", "name": "charts"}, "interval": "1h"},
    }))
    .unwrap();
    charts.create(&PostParams::default(), &chart).await.unwrap();
    let ready = wait_object(
        &charts,
        "app",
        "Ready from Flux's source-controller",
        ready_at,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", flux.log_tail()));
    let artifact = ready.status.and_then(|s| s.artifact).unwrap();
    assert_eq!(artifact.revision, "1.0.0");
    flux.stop();
}
