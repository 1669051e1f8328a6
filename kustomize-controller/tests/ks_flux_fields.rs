//! Flux fields and flags that used to stall, against a real apiserver: CEL health checks and
//! dependency expressions, drift-ignore rules, the managedFields clean-up, custom apply stages,
//! `--sops-age-secret` and the config watches.

mod common;

use common::{Harness, condition, config_map, is_success};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::pinned_kind;
use serde_json::{Value, json};
use sluice_api::kustomize::Kustomization;

/// Asks for a reconcile of `name` and waits until it has been handled.
async fn reconcile_now(h: &Harness, name: &str, token: &str) -> Kustomization {
    let api: Api<Kustomization> = h.api();
    let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    h.wait_ks(name, &format!("handled request {token}"), |ks| {
        ks.status
            .as_ref()
            .and_then(|status| status.last_handled_reconcile_at.as_deref())
            == Some(token)
    })
    .await
}

fn ready_message(ks: &Kustomization) -> String {
    condition(ks, "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// The `Reconciling` message, where a pending health check lists what it waits for.
fn progress_message(ks: &Kustomization) -> String {
    condition(ks, "Reconciling")
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

fn widget_crd(group: &str) -> String {
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  names: {{kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {{status: {{}}}}
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"#
    )
}

async fn set_widget_phase(h: &Harness, group: &str, phase: &str) {
    let (resource, _) = pinned_kind(&h.client, &GroupVersionKind::gvk(group, "v1", "Widget"))
        .await
        .unwrap();
    let widgets: Api<DynamicObject> = Api::namespaced_with(h.client.clone(), &h.ns, &resource);
    let status = json!({"apiVersion": format!("{group}/v1"), "kind": "Widget",
                        "status": {"phase": phase}});
    widgets
        .patch_status(
            "w1",
            &PatchParams::apply("widget-operator").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn health_check_exprs_decide_a_custom_resource_s_health() {
    let h = Harness::start("ks-cel", &[]).await;
    let group = format!("{}.sluice.test", h.ns);
    let widget =
        format!("apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 1\n");
    h.publish(
        "repo",
        "v1",
        &[("crd.yaml", &widget_crd(&group)), ("widget.yaml", &widget)],
    )
    .await;
    h.kustomization(
        "app",
        "repo",
        json!({"wait": true, "timeout": "5m", "healthCheckExprs": [{
            "apiVersion": format!("{group}/v1"), "kind": "Widget",
            "inProgress": "status.phase == 'Provisioning'",
            "failed": "status.phase == 'Broken'",
            "current": "status.phase == 'Running'"}]}),
    )
    .await;
    let ks = h
        .wait_ks("app", "waiting for the Widget", |ks| {
            progress_message(ks).contains("Widget/") && progress_message(ks).contains("inProgress")
        })
        .await;
    assert!(
        progress_message(&ks).contains("spec.healthCheckExprs[0].inProgress 'status.phase"),
        "a Widget without status waits, naming the expression: {}",
        progress_message(&ks)
    );
    set_widget_phase(&h, &group, "Provisioning").await;
    h.wait_ks("app", "inProgress is true", |ks| {
        progress_message(ks).contains("healthCheckExprs inProgress expression is true")
    })
    .await;
    set_widget_phase(&h, &group, "Running").await;
    let ks = h.wait_ready("app", "repo").await;
    assert!(is_success(&ks));
    set_widget_phase(&h, &group, "Broken").await;
    reconcile_now(&h, "app", "broken").await;
    let ks = h.wait_failed("app", "HealthCheckFailed").await;
    assert!(
        ready_message(&ks).contains("status: 'Failed': healthCheckExprs failed expression is true"),
        "{}",
        ready_message(&ks)
    );
}

#[tokio::test]
async fn invalid_cel_stalls_naming_the_expression() {
    let h = Harness::start("ks-cel-bad", &[]).await;
    h.publish("repo", "v1", &[("cm.yaml", &config_map("cm", "1"))])
        .await;
    h.kustomization(
        "app",
        "repo",
        json!({"healthCheckExprs": [{"apiVersion": "example.com/v1", "kind": "Widget",
                                     "current": "status.(("}]}),
    )
    .await;
    let ks = h.wait_failed("app", "InvalidCELExpression").await;
    assert!(
        condition(&ks, "Stalled").is_some_and(|c| c.status == "True"),
        "invalid CEL stalls"
    );
    assert!(
        ready_message(&ks).starts_with(
            "spec.healthCheckExprs[0].current 'status.((' is not a valid CEL expression"
        ),
        "{}",
        ready_message(&ks)
    );
    let configs: Api<ConfigMap> = h.api();
    assert!(configs.get_opt("cm").await.unwrap().is_none());
}

#[tokio::test]
async fn depends_on_ready_expr_replaces_the_ready_check() {
    let h = Harness::start("ks-ready-expr", &[]).await;
    h.publish("repo", "v1", &[("app/cm.yaml", &config_map("front", "1"))])
        .await;
    // The dependency never becomes Ready: its path does not exist.
    h.kustomization_with(
        "backend",
        "repo",
        json!({"path": "./missing"}),
        json!({"labels": {"app/version": "v1"}}),
    )
    .await;
    h.wait_failed("backend", "ArtifactFailed").await;
    h.kustomization_with(
        "frontend",
        "repo",
        json!({"path": "./app", "dependsOn": [{"name": "backend",
            "readyExpr": "dep.metadata.labels['app/version'] == self.metadata.labels['app/version']"}]}),
        json!({"labels": {"app/version": "v2"}}),
    )
    .await;
    let ks = h.wait_failed("frontend", "DependencyNotReady").await;
    assert!(
        ready_message(&ks).contains("is not ready according to readyExpr eval"),
        "{}",
        ready_message(&ks)
    );
    let api: Api<Kustomization> = h.api();
    let label = json!({"metadata": {"labels": {"app/version": "v1"}}});
    api.patch("frontend", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();
    // The expression alone decides: a matching label is enough although backend is not Ready.
    h.wait_ready("frontend", "repo").await;
}

fn deployment(replicas: u32, image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: web
          image: {image}
"#
    )
}

async fn live_deployment(h: &Harness) -> (i32, String) {
    let api: Api<Deployment> = h.api();
    let live = api.get("web").await.unwrap();
    let spec = live.spec.unwrap();
    let image = spec.template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap_or_default();
    (spec.replicas.unwrap_or_default(), image)
}

#[tokio::test]
async fn ignore_rules_leave_an_autoscaled_replicas_field_alone() {
    let h = Harness::start("ks-ignore", &[]).await;
    h.publish("repo", "v1", &[("web.yaml", &deployment(2, "nginx:1.25"))])
        .await;
    h.kustomization(
        "app",
        "repo",
        json!({"ignore": [{"paths": ["/spec/replicas"], "target": {"kind": "Deployment"}}]}),
    )
    .await;
    h.wait_ready("app", "repo").await;
    assert_eq!(live_deployment(&h).await, (2, "nginx:1.25".to_owned()));

    // The autoscaler scales through the scale subresource, as the HPA controller does.
    let deployments: Api<Deployment> = h.api();
    let scale = json!({"spec": {"replicas": 5}});
    let as_autoscaler = PatchParams {
        field_manager: Some("horizontal-pod-autoscaler".into()),
        ..PatchParams::default()
    };
    deployments
        .patch_scale("web", &as_autoscaler, &Patch::Merge(&scale))
        .await
        .unwrap();
    // Someone also edits the image: that drift is corrected.
    let image = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:evil"}]}}}});
    let as_kubectl_edit = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..PatchParams::default()
    };
    deployments
        .patch("web", &as_kubectl_edit, &Patch::Strategic(&image))
        .await
        .unwrap();
    reconcile_now(&h, "app", "after-scale").await;
    assert_eq!(live_deployment(&h).await, (5, "nginx:1.25".to_owned()));

    // A new revision changing replicas in Git still leaves the autoscaler's value.
    h.publish("repo", "v2", &[("web.yaml", &deployment(3, "nginx:1.26"))])
        .await;
    h.wait_ready("app", "repo").await;
    assert_eq!(live_deployment(&h).await, (5, "nginx:1.26".to_owned()));
}

#[tokio::test]
async fn kubectl_and_override_managers_lose_their_fields() {
    let h = Harness::start("ks-managers", &["--override-manager=ops-tool"]).await;
    h.publish("repo", "v1", &[("cm.yaml", &config_map("cm", "1"))])
        .await;
    h.kustomization("app", "repo", json!({})).await;
    h.wait_ready("app", "repo").await;
    let configs: Api<ConfigMap> = h.api();
    let edit = |manager: &str, key: &str, annotate: bool| {
        let mut patch = json!({"data": {key: "x"}});
        if annotate {
            patch["metadata"] = json!({"annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{}}"}});
        }
        (
            PatchParams {
                field_manager: Some(manager.to_owned()),
                ..PatchParams::default()
            },
            patch,
        )
    };
    for (manager, key, annotate) in [
        ("kubectl", "from-kubectl", true),
        ("ops-tool", "from-ops", false),
        ("someone-else", "kept", false),
    ] {
        let (params, patch) = edit(manager, key, annotate);
        configs
            .patch("cm", &params, &Patch::Merge(&patch))
            .await
            .unwrap();
    }
    reconcile_now(&h, "app", "cleanup").await;
    let live = configs.get("cm").await.unwrap();
    let data = live.data.clone().unwrap_or_default();
    assert_eq!(
        data.keys().cloned().collect::<Vec<_>>(),
        ["kept", "value"],
        "kubectl's and ops-tool's keys are removed, another manager's stay"
    );
    let annotations = live.metadata.annotations.clone().unwrap_or_default();
    assert!(
        !annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration"),
        "{annotations:?}"
    );
    let managers: Vec<String> = live
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|entry| entry.manager)
        .collect();
    assert!(
        !managers.iter().any(|m| m == "kubectl" || m == "ops-tool"),
        "{managers:?}"
    );
}

#[tokio::test]
async fn custom_apply_stage_kinds_are_written_before_the_rest() {
    let h = Harness::start(
        "ks-stages",
        &["--custom-apply-stage-kinds=rbac.authorization.k8s.io/Role"],
    )
    .await;
    let account =
        |name: &str| format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n");
    let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: reader\nrules:\n- apiGroups: [\"\"]\n  resources: [configmaps]\n  verbs: [get]\n";
    h.publish(
        "repo",
        "v1",
        &[
            ("a.yaml", &account("a")),
            ("b.yaml", &account("b")),
            ("c.yaml", &account("c")),
            ("d.yaml", &account("d")),
            ("role.yaml", role),
        ],
    )
    .await;
    h.kustomization("app", "repo", json!({})).await;
    h.wait_ready("app", "repo").await;
    let roles: Api<Role> = h.api();
    let written = |version: Option<String>| version.unwrap().parse::<u64>().unwrap();
    let role = written(roles.get("reader").await.unwrap().metadata.resource_version);
    let accounts: Api<ServiceAccount> = h.api();
    for name in ["a", "b", "c", "d"] {
        let account = written(accounts.get(name).await.unwrap().metadata.resource_version);
        assert!(
            role < account,
            "Role ({role}) written before ServiceAccount {name} ({account})"
        );
    }
}

/// A Secret encrypted by the real `sops` with age, and its published test identity.
const SOPS_SECRET: &str = include_str!("../testdata/sops/age-secret.yaml");
const SOPS_AGE_KEY: &str = include_str!("../testdata/sops/age.agekey");

#[tokio::test]
async fn sops_age_secret_flag_decrypts_without_a_secret_ref() {
    let h = Harness::start("ks-sops-flag", &["--sops-age-secret=global-keys"]).await;
    let secrets: Api<Secret> = h.api();
    let keys: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "global-keys"},
        "stringData": {"identity.agekey": SOPS_AGE_KEY},
    }))
    .unwrap();
    secrets
        .patch(
            "global-keys",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&keys),
        )
        .await
        .unwrap();
    h.publish("repo", "v1", &[("secret.yaml", SOPS_SECRET)])
        .await;
    h.kustomization("app", "repo", json!({"decryption": {"provider": "sops"}}))
        .await;
    h.wait_ready("app", "repo").await;
    let applied = secrets.get("age").await.unwrap();
    assert_eq!(applied.data.unwrap()["key"].0, b"value");
}

async fn put_vars(h: &Harness, region: &str) {
    let configs: Api<ConfigMap> = h.api();
    let vars: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "vars", "labels": {"reconcile.fluxcd.io/watch": "Enabled"}},
        "data": {"region": region},
    }))
    .unwrap();
    configs
        .patch(
            "vars",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&vars),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_watched_substitute_from_config_map_change_reconciles_at_once() {
    let h = Harness::start("ks-config-watch", &[]).await;
    put_vars(&h, "eu").await;
    h.publish(
        "repo",
        "v1",
        &[("cm.yaml", &config_map("rendered", "${region}"))],
    )
    .await;
    h.kustomization(
        "app",
        "repo",
        json!({"interval": "1h", "postBuild": {"substituteFrom": [{"kind": "ConfigMap", "name": "vars"}]}}),
    )
    .await;
    h.wait_ready("app", "repo").await;
    let configs: Api<ConfigMap> = h.api();
    let value = || async {
        let live: Value = serde_json::to_value(configs.get("rendered").await.unwrap()).unwrap();
        live["data"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(value().await, "eu");
    put_vars(&h, "us").await;
    h.eventually("the new variable is applied", || async {
        value().await == "us"
    })
    .await;
}

#[tokio::test]
async fn build_metadata_origin_and_transformer_annotations_reach_the_cluster() {
    let h = Harness::start("ks-build-metadata", &[]).await;
    h.publish("repo", "v1", &[("apps/cm.yaml", &config_map("cm", "1"))])
        .await;
    h.kustomization(
        "app",
        "repo",
        json!({"path": "./apps", "namePrefix": "p-",
               "buildMetadata": ["originAnnotations", "transformerAnnotations"]}),
    )
    .await;
    h.wait_ready("app", "repo").await;
    let configs: Api<ConfigMap> = h.api();
    let annotations = configs
        .get("p-cm")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap_or_default();
    assert_eq!(
        annotations
            .get("config.kubernetes.io/origin")
            .map(String::as_str),
        Some("path: cm.yaml\n")
    );
    assert_eq!(
        annotations
            .get("alpha.config.kubernetes.io/transformations")
            .map(String::as_str),
        Some(concat!(
            // The harness's targetNamespace, then the namePrefix, in kustomize's order.
            "- configuredIn: kustomization.yaml\n  configuredBy:\n    apiVersion: builtin\n    kind: NamespaceTransformer\n",
            "- configuredIn: kustomization.yaml\n  configuredBy:\n    apiVersion: builtin\n    kind: PrefixTransformer\n"
        ))
    );
}

#[tokio::test]
async fn additive_cel_dependency_check_also_needs_the_dependency_ready() {
    let h = Harness::start(
        "ks-ready-additive",
        &["--additive-cel-dependency-check=true"],
    )
    .await;
    h.publish("repo", "v1", &[("app/cm.yaml", &config_map("front", "1"))])
        .await;
    h.kustomization("backend", "repo", json!({"path": "./missing"}))
        .await;
    h.wait_failed("backend", "ArtifactFailed").await;
    h.kustomization(
        "frontend",
        "repo",
        json!({"path": "./app", "dependsOn": [{"name": "backend", "readyExpr": "true"}]}),
    )
    .await;
    let ks = h.wait_failed("frontend", "DependencyNotReady").await;
    assert!(
        ready_message(&ks).contains("dependency '") && ready_message(&ks).contains("is not ready"),
        "{}",
        ready_message(&ks)
    );
    assert!(
        !ready_message(&ks).contains("readyExpr"),
        "{}",
        ready_message(&ks)
    );
}

fn annotated_config_map(name: &str, ssa: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations:\n    kustomize.toolkit.fluxcd.io/ssa: {ssa}\ndata:\n  value: \"from-git\"\n"
    )
}

#[tokio::test]
async fn ssa_annotations_leave_cluster_values_alone() {
    let h = Harness::start("ks-ssa-policy", &[]).await;
    h.publish(
        "repo",
        "v1",
        &[
            ("once.yaml", &annotated_config_map("once", "IfNotPresent")),
            ("never.yaml", &annotated_config_map("never", "Ignore")),
            ("merged.yaml", &annotated_config_map("merged", "Merge")),
        ],
    )
    .await;
    h.kustomization("app", "repo", json!({})).await;
    h.wait_ready("app", "repo").await;
    let configs: Api<ConfigMap> = h.api();
    assert!(
        configs.get_opt("never").await.unwrap().is_none(),
        "ssa: Ignore is never applied"
    );
    let as_kubectl = PatchParams {
        field_manager: Some("kubectl".into()),
        ..PatchParams::default()
    };
    let edit = json!({"data": {"value": "edited", "added": "by-kubectl"}});
    configs
        .patch("once", &as_kubectl, &Patch::Merge(&edit))
        .await
        .unwrap();
    let add = json!({"data": {"added": "by-kubectl"}});
    configs
        .patch("merged", &as_kubectl, &Patch::Merge(&add))
        .await
        .unwrap();
    reconcile_now(&h, "app", "after-edits").await;
    let data = |name: &'static str| {
        let configs = configs.clone();
        async move { configs.get(name).await.unwrap().data.unwrap_or_default() }
    };
    let once = data("once").await;
    assert_eq!(once["value"], "edited", "IfNotPresent never overwrites");
    let merged = data("merged").await;
    assert_eq!(
        (
            merged["value"].as_str(),
            merged.get("added").map(String::as_str)
        ),
        ("from-git", Some("by-kubectl")),
        "Merge keeps fields other managers added, even kubectl's"
    );
}
