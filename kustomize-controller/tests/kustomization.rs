//! Kustomization reconciles against a real apiserver with artifacts from a test HTTP server.

mod common;

use common::{Harness, condition, config_map, inventory_ids, is_success};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt;
use kube::api::{
    Api, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::discovery::pinned_kind;
use serde_json::json;
use sluice_api::kustomize::Kustomization;

async fn config_map_value(h: &Harness, name: &str) -> Option<String> {
    let api: Api<ConfigMap> = h.api();
    api.get_opt(name)
        .await
        .unwrap()
        .and_then(|cm| cm.data)
        .and_then(|data| data.get("value").cloned())
}

#[tokio::test]
async fn crd_and_custom_resource_in_one_build() {
    let h = Harness::start("ks-crd", &[]).await;
    let group = format!("{}.sluice.test", h.ns);
    let crd = format!(
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
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"#
    );
    let widget =
        format!("apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n");
    h.publish(
        "repo",
        "v1",
        &[
            ("crd.yaml", &crd),
            ("app/widget.yaml", &widget),
            ("app/cm.yaml", &config_map("cm", "a")),
        ],
    )
    .await;
    h.kustomization("app", "repo", json!({})).await;
    let ks = h.wait_ready("app", "repo").await;
    assert!(is_success(&ks));
    let ids = inventory_ids(&ks);
    assert_eq!(
        ids,
        vec![
            format!("_widgets.{group}_apiextensions.k8s.io_CustomResourceDefinition"),
            format!("{}_cm__ConfigMap", h.ns),
            format!("{}_w1_{group}_Widget", h.ns),
        ]
    );
    let (resource, _) = pinned_kind(&h.client, &GroupVersionKind::gvk(&group, "v1", "Widget"))
        .await
        .unwrap();
    let widgets: Api<DynamicObject> = Api::namespaced_with(h.client.clone(), &h.ns, &resource);
    let live = widgets.get("w1").await.unwrap();
    assert_eq!(live.data["spec"]["size"], 3);
    let labels = live.metadata.labels.unwrap();
    assert_eq!(labels["kustomize.toolkit.fluxcd.io/name"], "app");
    assert_eq!(labels["kustomize.toolkit.fluxcd.io/namespace"], h.ns);
    let managers: Vec<_> = live
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.contains(&"kustomize-controller".to_owned()),
        "{managers:?}"
    );
}

#[tokio::test]
async fn prune_honours_opt_outs_and_skips_objects_not_owned() {
    let h = Harness::start("ks-prune", &[]).await;
    let kept = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  annotations:\n    kustomize.toolkit.fluxcd.io/prune: disabled\n";
    h.publish(
        "repo",
        "v1",
        &[
            ("a.yaml", &config_map("stays", "1")),
            ("b.yaml", kept),
            ("c.yaml", &config_map("gone", "1")),
            ("d.yaml", &config_map("adopted", "1")),
        ],
    )
    .await;
    h.kustomization("app", "repo", json!({})).await;
    h.wait_ready("app", "repo").await;
    let configs: Api<ConfigMap> = h.api();
    configs
        .patch(
            "adopted",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/name": "someone-else"}}})),
        )
        .await
        .unwrap();
    h.publish("repo", "v2", &[("a.yaml", &config_map("stays", "1"))])
        .await;
    let ks = h.wait_ready("app", "repo").await;
    assert_eq!(
        inventory_ids(&ks),
        vec![format!("{}_stays__ConfigMap", h.ns)]
    );
    assert!(
        configs.get_opt("gone").await.unwrap().is_none(),
        "owned stale object is pruned"
    );
    assert!(
        configs.get_opt("kept").await.unwrap().is_some(),
        "prune: disabled is kept"
    );
    assert!(
        configs.get_opt("adopted").await.unwrap().is_some(),
        "an object owned by someone else is kept"
    );
    assert!(configs.get_opt("stays").await.unwrap().is_some());
}

#[tokio::test]
async fn failed_build_and_bad_artifacts_keep_every_object() {
    let h = Harness::start("ks-bad", &[]).await;
    h.publish(
        "repo",
        "v1",
        &[
            ("a.yaml", &config_map("a", "1")),
            ("b.yaml", &config_map("b", "1")),
        ],
    )
    .await;
    h.kustomization("app", "repo", json!({})).await;
    let good = h.wait_ready("app", "repo").await;
    let good_inventory = inventory_ids(&good);

    h.publish(
        "repo",
        "v2",
        &[("a.yaml", "apiVersion: v1\nkind: [broken\n")],
    )
    .await;
    let ks = h.wait_failed("app", "BuildFailed").await;
    assert!(condition(&ks, "Ready").unwrap().message.contains("a.yaml"));

    let (url, digest) = h.server.put_bytes("empty.tar.gz", Vec::new());
    h.set_artifact("repo", "v3", &url, &digest).await;
    let ks = h
        .wait_ks("app", "empty artifact reported", |ks| {
            condition(ks, "Ready")
                .is_some_and(|c| c.reason == "ArtifactFailed" && c.message.contains("empty"))
        })
        .await;
    assert_eq!(inventory_ids(&ks), good_inventory);

    let (url, _) = h
        .server
        .put("mismatch.tar.gz", &[("a.yaml", &config_map("a", "1"))]);
    h.set_artifact("repo", "v4", &url, &format!("sha256:{}", "0".repeat(64)))
        .await;
    h.wait_ks("app", "digest mismatch reported", |ks| {
        condition(ks, "Ready").is_some_and(|c| {
            c.reason == "ArtifactFailed" && c.message.contains("digest verification")
        })
    })
    .await;

    h.set_artifact(
        "repo",
        "v5",
        &format!("{}/missing.tar.gz", h.server.base),
        &format!("sha256:{}", "1".repeat(64)),
    )
    .await;
    let ks = h
        .wait_ks("app", "404 reported", |ks| {
            condition(ks, "Ready")
                .is_some_and(|c| c.reason == "ArtifactFailed" && c.message.contains("404"))
        })
        .await;
    assert_eq!(inventory_ids(&ks), good_inventory);
    assert_eq!(config_map_value(&h, "a").await.as_deref(), Some("1"));
    assert_eq!(config_map_value(&h, "b").await.as_deref(), Some("1"));
}

#[tokio::test]
async fn a_revision_with_a_refused_object_writes_none_of_its_stage() {
    let h = Harness::start("ks-partial", &[]).await;
    h.publish("repo", "v1", &[("a.yaml", &config_map("a", "1"))])
        .await;
    h.kustomization("app", "repo", json!({})).await;
    let good = h.wait_ready("app", "repo").await;

    h.publish(
        "repo",
        "v2",
        &[
            ("a.yaml", &config_map("a", "2")),
            ("b.yaml", &config_map("b", "new")),
            ("bad.yaml", &config_map("Not_A_Valid_Name", "x")),
        ],
    )
    .await;
    let failed = h.revision_of("repo").await;
    let ks = h
        .wait_ks("app", "v2 attempted and refused", |ks| {
            condition(ks, "Ready").is_some_and(|c| c.status == "False")
                && ks
                    .status
                    .as_ref()
                    .and_then(|s| s.last_attempted_revision.as_deref())
                    == Some(failed.as_str())
        })
        .await;
    assert!(
        condition(&ks, "Ready")
            .unwrap()
            .message
            .contains("Not_A_Valid_Name")
    );
    assert_eq!(config_map_value(&h, "a").await.as_deref(), Some("1"));
    assert_eq!(config_map_value(&h, "b").await, None, "b was created");
    assert_eq!(inventory_ids(&ks), inventory_ids(&good));
}

/// The resourceVersion of the first watch event whose object satisfies `check`.
async fn first_version<K, S>(events: &mut S, check: impl Fn(&K) -> bool) -> u64
where
    K: kube::Resource,
    S: futures::Stream<Item = kube::Result<WatchEvent<K>>> + Unpin,
{
    let found = async {
        while let Some(event) = events.next().await {
            if let WatchEvent::Added(object) | WatchEvent::Modified(object) = event.unwrap()
                && check(&object)
            {
                return object.resource_version();
            }
        }
        None
    };
    let version = tokio::time::timeout(std::time::Duration::from_secs(60), found)
        .await
        .expect("the watch shows the change within 60 s")
        .expect("the watched object has a resourceVersion");
    version.parse().expect("etcd resourceVersions are numbers")
}

#[tokio::test]
async fn the_inventory_lists_a_new_object_before_the_object_is_created() {
    let h = Harness::start("ks-ahead", &[]).await;
    h.publish("repo", "v1", &[("a.yaml", &config_map("a", "1"))])
        .await;
    h.kustomization("app", "repo", json!({})).await;
    h.wait_ready("app", "repo").await;
    let kustomizations: Api<Kustomization> = h.api();
    let config_maps: Api<ConfigMap> = h.api();
    let listed_at = |version: Option<String>| version.expect("a list has a resourceVersion");
    let ks_list = kustomizations.list_metadata(&Default::default()).await;
    let ks_from = listed_at(ks_list.unwrap().metadata.resource_version);
    let cm_list = config_maps.list_metadata(&Default::default()).await;
    let cm_from = listed_at(cm_list.unwrap().metadata.resource_version);
    let params = WatchParams::default();
    let mut ks_events = kustomizations
        .watch(&params, &ks_from)
        .await
        .unwrap()
        .boxed();
    let mut cm_events = config_maps.watch(&params, &cm_from).await.unwrap().boxed();

    h.publish(
        "repo",
        "v2",
        &[
            ("a.yaml", &config_map("a", "1")),
            ("b.yaml", &config_map("b", "new")),
        ],
    )
    .await;
    let b_id = format!("{}_b__ConfigMap", h.ns);
    let listed = first_version(&mut ks_events, |ks: &Kustomization| {
        inventory_ids(ks).contains(&b_id)
    })
    .await;
    let created = first_version(&mut cm_events, |cm: &ConfigMap| cm.name_any() == "b").await;
    // etcd's revision orders writes across kinds: the inventory was stored first.
    assert!(
        listed < created,
        "inventory listing b at {listed}, b created at {created}"
    );
    let ks = h.wait_ready("app", "repo").await;
    assert_eq!(
        inventory_ids(&ks),
        [format!("{}_a__ConfigMap", h.ns), b_id],
        "the final inventory is what was applied"
    );
}

#[tokio::test]
async fn depends_on_chain_waits_then_applies() {
    let h = Harness::start("ks-deps", &[]).await;
    h.publish(
        "repo",
        "v1",
        &[
            ("a/cm.yaml", &config_map("a", "1")),
            ("b/cm.yaml", &config_map("b", "1")),
            ("c/cm.yaml", &config_map("c", "1")),
        ],
    )
    .await;
    h.kustomization(
        "c",
        "repo",
        json!({"path": "c", "dependsOn": [{"name": "b"}]}),
    )
    .await;
    h.kustomization(
        "b",
        "repo",
        json!({"path": "b", "dependsOn": [{"name": "a"}]}),
    )
    .await;
    let waiting = h.wait_failed("b", "DependencyNotReady").await;
    assert!(
        condition(&waiting, "Ready")
            .unwrap()
            .message
            .contains("dependency")
    );
    assert!(
        config_map_value(&h, "b").await.is_none(),
        "b is not applied before a exists"
    );
    h.kustomization("a", "repo", json!({"path": "a"})).await;
    for name in ["a", "b", "c"] {
        h.wait_ready(name, "repo").await;
        assert_eq!(config_map_value(&h, name).await.as_deref(), Some("1"));
    }
}

#[tokio::test]
async fn drift_is_corrected_within_seconds() {
    let h = Harness::start("ks-drift", &[]).await;
    h.publish("repo", "v1", &[("cm.yaml", &config_map("cm", "desired"))])
        .await;
    h.kustomization("app", "repo", json!({})).await;
    h.wait_ready("app", "repo").await;
    let configs: Api<ConfigMap> = h.api();
    let intruder = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"value": "changed"}});
    configs
        .patch(
            "cm",
            &PatchParams::apply("intruder").force(),
            &Patch::Apply(&intruder),
        )
        .await
        .unwrap();
    h.eventually("the drifted value is put back", || async {
        config_map_value(&h, "cm").await.as_deref() == Some("desired")
    })
    .await;
}

#[tokio::test]
async fn detect_only_reports_drift_without_correcting() {
    let h = Harness::start("ks-detect", &[]).await;
    h.publish("repo", "v1", &[("cm.yaml", &config_map("cm", "desired"))])
        .await;
    h.kustomization_with(
        "app",
        "repo",
        json!({}),
        json!({"annotations": {"sluice.dev/drift-mode": "DetectOnly"}}),
    )
    .await;
    h.wait_ready("app", "repo").await;
    let configs: Api<ConfigMap> = h.api();
    let intruder = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"value": "changed"}});
    configs
        .patch(
            "cm",
            &PatchParams::apply("intruder").force(),
            &Patch::Apply(&intruder),
        )
        .await
        .unwrap();
    let ks = h
        .wait_ks("app", "Drifted condition", |ks| {
            condition(ks, "Drifted").is_some_and(|c| c.status == "True")
        })
        .await;
    assert!(
        condition(&ks, "Drifted")
            .unwrap()
            .message
            .contains(&format!("ConfigMap/{}/cm", h.ns))
    );
    assert_eq!(config_map_value(&h, "cm").await.as_deref(), Some("changed"));
}

#[tokio::test]
async fn impersonation_is_denied_then_allowed_through_rbac() {
    let h = Harness::start("ks-tenant", &[]).await;
    let accounts: Api<ServiceAccount> = h.api();
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "deployer"}})).unwrap(),
        )
        .await
        .unwrap();
    h.publish("repo", "v1", &[("cm.yaml", &config_map("cm", "1"))])
        .await;
    h.kustomization("app", "repo", json!({"serviceAccountName": "deployer"}))
        .await;
    let ks = h.wait_failed("app", "ReconciliationFailed").await;
    let message = &condition(&ks, "Ready").unwrap().message;
    assert!(
        message.contains("forbidden") && message.contains("deployer"),
        "{message}"
    );
    assert!(config_map_value(&h, "cm").await.is_none());

    let roles: Api<Role> = h.api();
    roles
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "deployer"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}],
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let bindings: Api<RoleBinding> = h.api();
    bindings
        .create(&PostParams::default(), &serde_json::from_value(json!({
            "metadata": {"name": "deployer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": h.ns}],
        })).unwrap())
        .await
        .unwrap();
    h.wait_ready("app", "repo").await;
    assert_eq!(config_map_value(&h, "cm").await.as_deref(), Some("1"));
}

#[tokio::test]
async fn substitution_with_sources_defaults_opt_out_and_strict_mode() {
    let h = Harness::start("ks-subst", &[]).await;
    let configs: Api<ConfigMap> = h.api();
    configs
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "vars"}, "data": {"region": "eu", "tier": "from-cm"}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let secrets: Api<Secret> = h.api();
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "secret-vars"}, "stringData": {"tier": "from-secret"}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let template = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rendered\ndata:\n  value: \"${app}-${region}-${tier}-${size:=small}\"\n";
    let opted_out = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: literal\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  value: \"${app}\"\n";
    h.publish("repo", "v1", &[("a.yaml", template), ("b.yaml", opted_out)])
        .await;
    h.kustomization(
        "app",
        "repo",
        json!({"postBuild": {
            "substitute": {"app": "podinfo"},
            "substituteFrom": [
                {"kind": "ConfigMap", "name": "vars"},
                {"kind": "Secret", "name": "secret-vars"},
                {"kind": "ConfigMap", "name": "absent", "optional": true},
            ],
        }}),
    )
    .await;
    h.wait_ready("app", "repo").await;
    assert_eq!(
        config_map_value(&h, "rendered").await.as_deref(),
        Some("podinfo-eu-from-secret-small")
    );
    assert_eq!(
        config_map_value(&h, "literal").await.as_deref(),
        Some("${app}")
    );

    let strict = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rendered\ndata:\n  value: \"${undefined_var}\"\n";
    h.publish("repo", "v2", &[("a.yaml", strict)]).await;
    let ks = h.wait_failed("app", "BuildFailed").await;
    let message = &condition(&ks, "Ready").unwrap().message;
    assert!(
        message.contains("undefined_var") && message.contains("strict"),
        "{message}"
    );
    assert_eq!(
        config_map_value(&h, "rendered").await.as_deref(),
        Some("podinfo-eu-from-secret-small")
    );
}

/// A Secret encrypted by the real `sops` with age, and its published test identity.
const SOPS_SECRET: &str = include_str!("../testdata/sops/age-secret.yaml");
const SOPS_AGE_KEY: &str = include_str!("../testdata/sops/age.agekey");

async fn put_age_key(h: &Harness, identity: &str) {
    let secrets: Api<Secret> = h.api();
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "keys"},
        "stringData": {"identity.agekey": identity},
    }))
    .unwrap();
    secrets
        .patch(
            "keys",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&secret),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn sops_age_secret_is_decrypted_and_a_wrong_key_keeps_the_applied_secret() {
    let h = Harness::start("ks-sops", &[]).await;
    h.publish("repo", "v1", &[("secret.yaml", SOPS_SECRET)])
        .await;
    h.kustomization("plain", "repo", json!({})).await;
    let ks = h.wait_failed("plain", "BuildFailed").await;
    let message = &condition(&ks, "Ready").unwrap().message;
    assert!(
        message.contains("SOPS-encrypted") && message.contains("spec.decryption"),
        "{message}"
    );
    assert!(
        !message.contains("ENC["),
        "no ciphertext in status: {message}"
    );
    h.delete_ks("plain").await;

    put_age_key(&h, SOPS_AGE_KEY).await;
    h.kustomization(
        "decrypting",
        "repo",
        json!({"decryption": {"provider": "sops", "secretRef": {"name": "keys"}}}),
    )
    .await;
    let ks = h.wait_ready("decrypting", "repo").await;
    let inventory = inventory_ids(&ks);
    assert_eq!(inventory, vec![format!("{}_age__Secret", h.ns)]);
    let secrets: Api<Secret> = h.api();
    let applied = secrets.get("age").await.unwrap();
    assert_eq!(applied.data.unwrap()["key"].0, b"value");

    let other = age::x25519::Identity::generate();
    put_age_key(
        &h,
        age::secrecy::ExposeSecret::expose_secret(&other.to_string()),
    )
    .await;
    h.publish(
        "repo",
        "v2",
        &[
            ("secret.yaml", SOPS_SECRET),
            ("cm.yaml", &config_map("extra", "1")),
        ],
    )
    .await;
    let ks = h.wait_failed("decrypting", "BuildFailed").await;
    let message = &condition(&ks, "Ready").unwrap().message;
    assert!(
        message.contains("decryption failed for 'Secret/") && message.contains("age1l44xcng8"),
        "{message}"
    );
    assert!(
        !message.contains("value") && !message.contains("AGE-SECRET-KEY"),
        "{message}"
    );
    assert_eq!(inventory_ids(&ks), inventory);
    let kept = secrets.get("age").await.unwrap();
    assert_eq!(kept.data.unwrap()["key"].0, b"value");
    let configs: Api<ConfigMap> = h.api();
    assert!(configs.get_opt("extra").await.unwrap().is_none());
}

#[tokio::test]
async fn deletion_policies() {
    let h = Harness::start("ks-delete", &[]).await;
    let cases = [
        ("mirror-prune", json!({"prune": true}), false),
        ("mirror-keep", json!({"prune": false}), true),
        (
            "delete",
            json!({"prune": false, "deletionPolicy": "Delete"}),
            false,
        ),
        (
            "wait",
            json!({"prune": false, "deletionPolicy": "WaitForTermination"}),
            false,
        ),
        (
            "orphan",
            json!({"prune": true, "deletionPolicy": "Orphan"}),
            true,
        ),
    ];
    for (name, spec, kept) in cases {
        h.publish(
            name,
            "v1",
            &[("cm.yaml", &config_map(&format!("{name}-cm"), "1"))],
        )
        .await;
        h.kustomization(name, name, spec).await;
        h.wait_ready(name, name).await;
        h.delete_ks(name).await;
        let remains = config_map_value(&h, &format!("{name}-cm")).await.is_some();
        assert_eq!(remains, kept, "{name}: object kept = {remains}");
    }
}

#[tokio::test]
async fn force_recreates_an_object_with_an_immutable_change() {
    let h = Harness::start("ks-force", &[]).await;
    let immutable = |value: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frozen\nimmutable: true\ndata:\n  value: \"{value}\"\n"
        )
    };
    h.publish("repo", "v1", &[("cm.yaml", &immutable("1"))])
        .await;
    h.kustomization("app", "repo", json!({})).await;
    h.wait_ready("app", "repo").await;
    let configs: Api<ConfigMap> = h.api();
    let first_uid = configs.get("frozen").await.unwrap().metadata.uid;

    h.publish("repo", "v2", &[("cm.yaml", &immutable("2"))])
        .await;
    let ks = h.wait_failed("app", "ReconciliationFailed").await;
    assert!(condition(&ks, "Ready").unwrap().message.contains("force"));
    assert_eq!(config_map_value(&h, "frozen").await.as_deref(), Some("1"));

    let api: Api<Kustomization> = h.api();
    api.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"force": true}})),
    )
    .await
    .unwrap();
    h.wait_ready("app", "repo").await;
    let live = configs.get("frozen").await.unwrap();
    assert_eq!(live.data.unwrap()["value"], "2");
    assert_ne!(live.metadata.uid, first_uid, "the object was re-created");
}

#[tokio::test]
async fn remote_kubeconfig_pointing_at_the_same_apiserver() {
    let h = Harness::start("ks-remote", &[]).await;
    let kubeconfig = inline_kubeconfig(&h);
    let secrets: Api<Secret> = h.api();
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "remote"}, "stringData": {"value": kubeconfig}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    h.publish("repo", "v1", &[("cm.yaml", &config_map("remote-cm", "1"))])
        .await;
    h.kustomization(
        "app",
        "repo",
        json!({"kubeConfig": {"secretRef": {"name": "remote"}}}),
    )
    .await;
    h.wait_ready("app", "repo").await;
    assert_eq!(
        config_map_value(&h, "remote-cm").await.as_deref(),
        Some("1")
    );

    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "broken"}, "stringData": {"other": "x"}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    h.kustomization(
        "broken",
        "repo",
        json!({"kubeConfig": {"secretRef": {"name": "broken"}}}),
    )
    .await;
    let ks = h.wait_failed("broken", "ReconciliationFailed").await;
    assert!(condition(&ks, "Ready").unwrap().message.contains("value"));
}

/// A kubeconfig Secret named `name` whose users authenticate with `user` instead of the plane's certificates.
async fn kubeconfig_secret_with_user(h: &Harness, name: &str, user: serde_json::Value) {
    let mut config: serde_json::Value = serde_json::from_str(&inline_kubeconfig(h)).unwrap();
    for entry in config["users"].as_array_mut().unwrap() {
        entry["user"] = user.clone();
    }
    let secrets: Api<Secret> = h.api();
    let value = serde_json::to_string(&config).unwrap();
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": name}, "stringData": {"value": value}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
}

/// A script that records that it ran in `marker` and prints a token-like secret.
fn credential_script(dir: &std::path::Path, marker: &std::path::Path, exit: i32) -> String {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("credential.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntouch {}\necho 'LEAKED-CONTROLLER-TOKEN {{\"token\": \"LEAKED\"}}'\nexit {exit}\n",
            marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

#[tokio::test]
async fn kubeconfig_auth_provider_is_refused_without_the_exec_flag() {
    let h = Harness::start("ks-authprovider", &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let script = credential_script(dir.path(), &marker, 0);
    kubeconfig_secret_with_user(
        &h,
        "gcp",
        json!({"auth-provider": {"name": "gcp", "config": {"cmd-path": script, "cmd-args": ""}}}),
    )
    .await;
    h.publish("repo", "v1", &[("cm.yaml", &config_map("never", "1"))])
        .await;
    h.kustomization(
        "app",
        "repo",
        json!({"kubeConfig": {"secretRef": {"name": "gcp"}}}),
    )
    .await;
    let ks = h.wait_failed("app", "ReconciliationFailed").await;
    let message = condition(&ks, "Ready").unwrap().message.clone();
    assert!(message.contains("auth-provider"), "{message}");
    assert!(message.contains("--insecure-kubeconfig-exec"), "{message}");
    assert!(!marker.exists(), "the auth-provider command ran");
    assert_eq!(config_map_value(&h, "never").await, None);
}

#[tokio::test]
async fn credential_command_output_never_reaches_status() {
    let h = Harness::start("ks-execleak", &["--insecure-kubeconfig-exec"]).await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let script = credential_script(dir.path(), &marker, 1);
    kubeconfig_secret_with_user(
        &h,
        "exec",
        json!({"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": script,
            "interactiveMode": "Never"
        }}),
    )
    .await;
    h.publish("repo", "v1", &[("cm.yaml", &config_map("never", "1"))])
        .await;
    h.kustomization(
        "app",
        "repo",
        json!({"kubeConfig": {"secretRef": {"name": "exec"}}}),
    )
    .await;
    let ks = h.wait_failed("app", "ReconciliationFailed").await;
    let message = condition(&ks, "Ready").unwrap().message.clone();
    assert!(
        marker.exists(),
        "the allowed exec plugin did not run: {message}"
    );
    assert!(!message.contains("LEAKED"), "{message}");
    let status = serde_json::to_string(&ks.status).unwrap();
    assert!(!status.contains("LEAKED"), "{status}");
    let events: Api<k8s_openapi::api::core::v1::Event> = h.api();
    for event in events.list(&Default::default()).await.unwrap() {
        let text = event.message.unwrap_or_default();
        assert!(!text.contains("LEAKED"), "{text}");
    }
}

#[tokio::test]
async fn cross_namespace_source_is_denied_by_default() {
    let h = Harness::start("ks-xns", &[]).await;
    h.kustomization(
        "app",
        "repo",
        json!({"sourceRef": {"kind": "GitRepository", "name": "repo", "namespace": "elsewhere"}}),
    )
    .await;
    let ks = h
        .wait_ks("app", "Stalled AccessDenied", |ks| {
            condition(ks, "Stalled").is_some_and(|c| c.reason == "AccessDenied")
        })
        .await;
    assert!(
        condition(&ks, "Ready")
            .unwrap()
            .message
            .contains("cross-namespace")
    );
}

#[tokio::test]
async fn cross_namespace_source_is_allowed_when_the_flag_is_off() {
    let h = Harness::start("ks-xns-allowed", &["--no-cross-namespace-refs=false"]).await;
    h.kustomization(
        "app",
        "repo",
        json!({"sourceRef": {"kind": "GitRepository", "name": "repo", "namespace": "elsewhere"}}),
    )
    .await;
    let ks = h
        .wait_ks(
            "app",
            "Ready=False for a reason other than AccessDenied",
            |ks| {
                condition(ks, "Ready")
                    .is_some_and(|c| c.status == "False" && c.reason != "AccessDenied")
            },
        )
        .await;
    assert!(condition(&ks, "Stalled").is_none_or(|c| c.reason != "AccessDenied"));
    assert!(
        !condition(&ks, "Ready")
            .unwrap()
            .message
            .contains("cross-namespace")
    );
}

#[tokio::test]
async fn unsupported_fields_stall_naming_the_field() {
    let h = Harness::start("ks-unsupported", &[]).await;
    h.publish("repo", "v1", &[("cm.yaml", &config_map("cm", "1"))])
        .await;
    h.kustomization("app", "repo", json!({"decryption": {"provider": "sops"}}))
        .await;
    let ks = h
        .wait_ks("app", "Stalled", |ks| {
            condition(ks, "Stalled").is_some_and(|c| c.status == "True")
        })
        .await;
    assert!(
        condition(&ks, "Stalled")
            .unwrap()
            .message
            .contains("spec.decryption without secretRef")
    );
}

/// The admin kubeconfig with file references replaced by inline data.
fn inline_kubeconfig(h: &Harness) -> String {
    let mut config: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(h.plane.kubeconfig_path()).unwrap())
            .unwrap();
    use base64::Engine;
    let encode =
        |path: &str| base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap());
    for cluster in config["clusters"].as_array_mut().unwrap() {
        if let Some(path) = cluster["cluster"]["certificate-authority"]
            .as_str()
            .map(str::to_owned)
        {
            cluster["cluster"]["certificate-authority-data"] = encode(&path).into();
            cluster["cluster"]
                .as_object_mut()
                .unwrap()
                .remove("certificate-authority");
        }
    }
    for user in config["users"].as_array_mut().unwrap() {
        for (file, data) in [
            ("client-certificate", "client-certificate-data"),
            ("client-key", "client-key-data"),
        ] {
            if let Some(path) = user["user"][file].as_str().map(str::to_owned) {
                user["user"][data] = encode(&path).into();
                user["user"].as_object_mut().unwrap().remove(file);
            }
        }
    }
    serde_json::to_string(&config).unwrap()
}

/// Whether every field of `expected` is in `live` with the same value (server defaults aside).
fn is_subset(expected: &serde_json::Value, live: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (expected, live) {
        (Value::Object(expected), Value::Object(live)) => expected
            .iter()
            .all(|(key, value)| live.get(key).is_some_and(|live| is_subset(value, live))),
        (Value::Array(expected), Value::Array(live)) => {
            expected.len() == live.len()
                && expected
                    .iter()
                    .zip(live)
                    .all(|(expected, live)| is_subset(expected, live))
        }
        _ => expected == live,
    }
}

async fn live_object(h: &Harness, expected: &serde_json::Value) -> serde_json::Value {
    let api_version = expected["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, expected["kind"].as_str().unwrap());
    let (resource, _) = pinned_kind(&h.client, &gvk).await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(h.client.clone(), &h.ns, &resource);
    let live = api
        .get(expected["metadata"]["name"].as_str().unwrap())
        .await
        .unwrap();
    serde_json::to_value(live).unwrap()
}

#[tokio::test]
async fn base_and_overlay_apply_exactly_what_kustomize_builds() {
    let h = Harness::start("ks-overlay", &[]).await;
    let overlay = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: {}\nresources: [../base]\nnamePrefix: prod-\ncommonLabels:\n  env: prod\nconfigMapGenerator:\n  - name: settings\n    literals: [mode=fast, size=3]\npatches:\n  - patch: |\n      apiVersion: apps/v1\n      kind: Deployment\n      metadata:\n        name: web\n      spec:\n        replicas: 2\n",
        h.ns
    );
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.27\n          envFrom:\n            - configMapRef: {name: settings}\n";
    let files = [
        (
            "base/kustomization.yaml",
            "resources: [deployment.yaml, service.yaml]\n",
        ),
        ("base/deployment.yaml", deployment),
        (
            "base/service.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n    - port: 80\n",
        ),
        ("overlay/kustomization.yaml", overlay.as_str()),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    let reference = sluice_e2e::kustomize::build(&dir.path().join("overlay")).unwrap();
    let expected = sluice_kustomize::parse_yaml_stream(&reference).unwrap();
    let generated = expected
        .iter()
        .find(|object| object["kind"] == "ConfigMap")
        .unwrap();
    let generated_name = generated["metadata"]["name"].as_str().unwrap();
    assert!(generated_name.starts_with("prod-settings-"), "{reference}");

    h.publish("repo", "v1", &files).await;
    h.kustomization("app", "repo", json!({"path": "./overlay"}))
        .await;
    let ks = h.wait_ready("app", "repo").await;
    let mut expected_ids: Vec<String> = expected
        .iter()
        .map(|object| {
            let api_version = object["apiVersion"].as_str().unwrap();
            let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
            format!(
                "{}_{}_{group}_{}",
                h.ns,
                object["metadata"]["name"].as_str().unwrap(),
                object["kind"].as_str().unwrap()
            )
        })
        .collect();
    expected_ids.sort();
    let mut applied_ids = inventory_ids(&ks);
    applied_ids.sort();
    assert_eq!(applied_ids, expected_ids);
    for object in &expected {
        let live = live_object(&h, object).await;
        assert!(
            is_subset(object, &live),
            "live object differs from kustomize build:\nexpected {object:#}\nlive {live:#}"
        );
    }
    let live = live_object(
        &h,
        expected
            .iter()
            .find(|object| object["kind"] == "Deployment")
            .unwrap(),
    )
    .await;
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"],
        generated_name
    );
}

#[tokio::test]
async fn spec_build_fields_take_effect() {
    let h = Harness::start("ks-fields", &[]).await;
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.27\n";
    h.publish(
        "repo",
        "v1",
        &[
            ("app/deployment.yaml", deployment),
            ("app/cm.yaml", &config_map("settings", "plain")),
            (
                "components/extra/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [cm.yaml]\n",
            ),
            ("components/extra/cm.yaml", &config_map("extra", "component")),
        ],
    )
    .await;
    h.kustomization(
        "app",
        "repo",
        json!({
            "path": "./app",
            "namePrefix": "pre-",
            "nameSuffix": "-suf",
            "components": ["../components/extra"],
            "images": [{"name": "nginx", "newName": "registry.example/nginx", "newTag": "1.28"}],
            "patches": [
                {"patch": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  value: patched\n"},
                {
                    "patch": "- op: add\n  path: /spec/replicas\n  value: 0\n",
                    "target": {"kind": "Deployment", "name": "web"},
                },
            ],
            "commonMetadata": {"labels": {"team": "blue"}},
        }),
    )
    .await;
    let ks = h.wait_ready("app", "repo").await;
    let mut ids = inventory_ids(&ks);
    ids.sort();
    assert_eq!(
        ids,
        vec![
            format!("{}_pre-extra-suf__ConfigMap", h.ns),
            format!("{}_pre-settings-suf__ConfigMap", h.ns),
            format!("{}_pre-web-suf_apps_Deployment", h.ns),
        ]
    );
    assert_eq!(
        config_map_value(&h, "pre-settings-suf").await.as_deref(),
        Some("patched")
    );
    assert_eq!(
        config_map_value(&h, "pre-extra-suf").await.as_deref(),
        Some("component")
    );
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = h.api();
    let web = deployments.get("pre-web-suf").await.unwrap();
    let spec = web.spec.unwrap();
    assert_eq!(spec.replicas, Some(0));
    assert_eq!(
        spec.template.spec.unwrap().containers[0].image.as_deref(),
        Some("registry.example/nginx:1.28")
    );
    assert_eq!(web.metadata.labels.unwrap()["team"], "blue");
    assert_eq!(web.metadata.namespace.as_deref(), Some(h.ns.as_str()));
}

#[tokio::test]
async fn invalid_kustomization_file_fails_the_build_and_keeps_every_object() {
    let h = Harness::start("ks-invalid", &[]).await;
    h.publish(
        "repo",
        "v1",
        &[
            ("app/kustomization.yaml", "resources: [a.yaml, b.yaml]\n"),
            ("app/a.yaml", &config_map("a", "1")),
            ("app/b.yaml", &config_map("b", "1")),
        ],
    )
    .await;
    h.kustomization("app", "repo", json!({"path": "./app"}))
        .await;
    let good = inventory_ids(&h.wait_ready("app", "repo").await);
    assert_eq!(good.len(), 2);
    h.publish(
        "repo",
        "v2",
        &[
            ("app/kustomization.yaml", "resources: [a.yaml\nbogus: {\n"),
            ("app/a.yaml", &config_map("a", "2")),
        ],
    )
    .await;
    let ks = h.wait_failed("app", "BuildFailed").await;
    let message = &condition(&ks, "Ready").unwrap().message;
    assert!(message.contains("app/kustomization.yaml"), "{message}");
    assert_eq!(inventory_ids(&ks), good);
    assert_eq!(config_map_value(&h, "a").await.as_deref(), Some("1"));
    assert_eq!(config_map_value(&h, "b").await.as_deref(), Some("1"));
}
