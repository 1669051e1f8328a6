//! Smoke tests of the real control plane: CRDs install, Flux objects round-trip with every field,
//! the status subresource is separate from spec, and processes stop when the plane is dropped.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};
use sluice_e2e::poll::eventually;
use sluice_e2e::{ControlPlane, Mode};

async fn plane() -> &'static ControlPlane {
    match ControlPlane::shared().await {
        Ok(plane) => plane,
        Err(e) => panic!("{e}"),
    }
}

fn resource(kind: &str) -> ApiResource {
    let version = match kind {
        "Provider" | "Alert" => "v1beta3",
        _ => "v1",
    };
    let (group, plural) = match kind {
        "GitRepository" => ("source.toolkit.fluxcd.io", "gitrepositories"),
        "OCIRepository" => ("source.toolkit.fluxcd.io", "ocirepositories"),
        "Bucket" => ("source.toolkit.fluxcd.io", "buckets"),
        "Kustomization" => ("kustomize.toolkit.fluxcd.io", "kustomizations"),
        "ImageRepository" => ("image.toolkit.fluxcd.io", "imagerepositories"),
        "ImagePolicy" => ("image.toolkit.fluxcd.io", "imagepolicies"),
        "ImageUpdateAutomation" => ("image.toolkit.fluxcd.io", "imageupdateautomations"),
        "Receiver" => ("notification.toolkit.fluxcd.io", "receivers"),
        "Provider" => ("notification.toolkit.fluxcd.io", "providers"),
        "Alert" => ("notification.toolkit.fluxcd.io", "alerts"),
        other => panic!("unexpected kind {other}"),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

#[tokio::test]
async fn crds_are_installed_with_flux_names_and_short_names() {
    let crds: Api<CustomResourceDefinition> = Api::all(plane().await.client().await.unwrap());
    for (name, short) in [
        ("gitrepositories.source.toolkit.fluxcd.io", "gitrepo"),
        ("ocirepositories.source.toolkit.fluxcd.io", "ocirepo"),
        ("buckets.source.toolkit.fluxcd.io", ""),
        ("kustomizations.kustomize.toolkit.fluxcd.io", "ks"),
        ("imagerepositories.image.toolkit.fluxcd.io", "imgrepo"),
        ("imagepolicies.image.toolkit.fluxcd.io", "imgpol"),
        ("imageupdateautomations.image.toolkit.fluxcd.io", "iua"),
        ("receivers.notification.toolkit.fluxcd.io", ""),
    ] {
        let crd = crds
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("CRD {name} is not installed: {e}"));
        let names = &crd.spec.names;
        if !short.is_empty() {
            assert!(
                names
                    .short_names
                    .as_ref()
                    .is_some_and(|s| s.iter().any(|n| n == short)),
                "{name} lacks short name {short}"
            );
        }
        let v1 = crd
            .spec
            .versions
            .iter()
            .find(|v| v.name == "v1")
            .unwrap_or_else(|| panic!("{name} has no v1"));
        assert!(
            v1.served && v1.storage,
            "{name} v1 must be served and stored"
        );
        assert!(
            v1.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{name} lacks the status subresource"
        );
    }
}

/// Every spec and status field of the fixtures survives a create + status patch + get through
/// the real apiserver, so no field is pruned by our CRD schemas.
#[tokio::test]
async fn flux_objects_with_every_field_round_trip_through_the_apiserver() {
    let plane = plane().await;
    let client = plane.client().await.unwrap();
    let ns = plane.namespace("roundtrip").await.unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/api/tests/fixtures");
    let mut checked = 0;
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with("-full.yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        for mut doc in docs.into_iter().filter(|d| d.is_object()) {
            let kind = doc["kind"].as_str().unwrap().to_string();
            doc["metadata"]["namespace"] = json!(ns);
            let status = doc.as_object_mut().unwrap().remove("status");
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &ns, &resource(&kind));
            let object: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
            let name = object.metadata.name.clone().unwrap();
            api.create(&PostParams::default(), &object)
                .await
                .unwrap_or_else(|e| panic!("creating {kind} from {}: {e}", path.display()));
            if let Some(status) = &status {
                api.patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await
                .unwrap_or_else(|e| panic!("patching {kind} status from {}: {e}", path.display()));
            }
            let stored = serde_json::to_value(api.get(&name).await.unwrap()).unwrap();
            assert_eq!(
                stored["spec"], doc["spec"],
                "{kind} spec was changed or pruned by the apiserver"
            );
            if let Some(status) = status {
                assert_eq!(
                    stored["status"], status,
                    "{kind} status was changed or pruned by the apiserver"
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 6,
        "expected fixtures for the six kinds in {}, found {checked}",
        fixtures.display()
    );
}

#[tokio::test]
async fn status_subresource_is_written_separately_from_spec() {
    let plane = plane().await;
    let ns = plane.namespace("status").await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(
        plane.client().await.unwrap(),
        &ns,
        &resource("GitRepository"),
    );
    let repo: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {"url": "https://127.0.0.1/podinfo.git", "interval": "1m", "ref": {"branch": "main"}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &repo).await.unwrap();

    let artifact = json!({
        "digest": "sha256:2f1a2b5c0d6e4f8a9b3c7d1e5f0a4b8c2d6e0f3a7b1c5d9e3f7a1b5c9d3e7f1a",
        "lastUpdateTime": "2026-11-21T10:00:00Z",
        "path": "gitrepository/ns/podinfo/0a1b2c.tar.gz",
        "revision": "main@sha1:0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
        "size": 1024,
        "url": "http://127.0.0.1:9090/gitrepository/ns/podinfo/0a1b2c.tar.gz"
    });
    let status_patch = json!({"status": {"artifact": artifact, "observedGeneration": 1}});
    api.patch_status(
        "podinfo",
        &PatchParams::default(),
        &Patch::Merge(&status_patch),
    )
    .await
    .unwrap();

    // A write to the main resource cannot change status, and status writes cannot change spec.
    let main_patch = json!({"spec": {"interval": "5m"}, "status": {"observedGeneration": 99}});
    api.patch(
        "podinfo",
        &PatchParams::default(),
        &Patch::Merge(&main_patch),
    )
    .await
    .unwrap();
    let spec_via_status = json!({"spec": {"url": "https://127.0.0.1/other.git"}});
    api.patch_status(
        "podinfo",
        &PatchParams::default(),
        &Patch::Merge(&spec_via_status),
    )
    .await
    .unwrap();

    let stored = serde_json::to_value(api.get("podinfo").await.unwrap()).unwrap();
    assert_eq!(stored["status"]["artifact"], artifact);
    assert_eq!(stored["status"]["observedGeneration"], 1);
    assert_eq!(stored["spec"]["interval"], "5m");
    assert_eq!(stored["spec"]["url"], "https://127.0.0.1/podinfo.git");
    assert_eq!(
        stored["metadata"]["generation"], 2,
        "the spec change bumps generation; status writes do not"
    );
}

#[tokio::test]
async fn invalid_objects_are_rejected_by_crd_validation() {
    let plane = plane().await;
    let ns = plane.namespace("invalid").await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(
        plane.client().await.unwrap(),
        &ns,
        &resource("GitRepository"),
    );
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "bad", "namespace": ns},
        "spec": {"url": "ftp://example.invalid/repo.git", "interval": "1m"}
    }))
    .unwrap();
    let err = api
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("an ftp:// url must be rejected");
    assert!(
        err.to_string().contains("spec.url"),
        "the rejection names the field: {err}"
    );
}

#[tokio::test]
async fn a_dropped_control_plane_stops_its_processes() {
    let plane = ControlPlane::start(Mode::ApiOnly).await.unwrap();
    let pids: Vec<u32> = plane
        .pids()
        .into_iter()
        .filter_map(|(_, pid)| pid)
        .collect();
    assert_eq!(
        pids.len(),
        2,
        "etcd and kube-apiserver should both be running: {:?}",
        plane.pids()
    );
    let dir = plane.dir().to_path_buf();
    drop(plane);
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} survived the drop"
        );
    }
    let what = format!("the control plane's directory {} removed", dir.display());
    eventually(
        &what,
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            std::future::ready(if dir.exists() {
                Err("it exists")
            } else {
                Ok(())
            })
        },
    )
    .await
    .unwrap_or_else(|timeout| panic!("{timeout}"));
}

/// ImageUpdateAutomation defaults (`sourceRef.kind`, `update.strategy`) and enums, as Flux's CRD.
#[tokio::test]
async fn image_update_automations_are_defaulted_and_validated_like_flux() {
    let plane = plane().await;
    let client = plane.client().await.unwrap();
    let ns = plane.namespace("iua").await.unwrap();
    let api: Api<DynamicObject> =
        Api::namespaced_with(client, &ns, &resource("ImageUpdateAutomation"));
    let automation = |name: &str, spec: Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImageUpdateAutomation",
            "metadata": {"name": name, "namespace": ns},
            "spec": spec,
        }))
        .unwrap()
    };
    let created = api
        .create(
            &PostParams::default(),
            &automation(
                "defaults",
                json!({"sourceRef": {"name": "fleet"}, "interval": "5m"}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(created.data["spec"]["sourceRef"]["kind"], "GitRepository");
    assert_eq!(
        created.data["spec"]["update"],
        json!({"strategy": "Setters"})
    );
    for (name, spec) in [
        (
            "bad-kind",
            json!({"sourceRef": {"kind": "Bucket", "name": "x"}, "interval": "5m"}),
        ),
        (
            "bad-strategy",
            json!({"sourceRef": {"name": "x"}, "interval": "5m", "update": {"strategy": "Other"}}),
        ),
        (
            "bad-interval",
            json!({"sourceRef": {"name": "x"}, "interval": "soon"}),
        ),
        (
            "no-email",
            json!({"sourceRef": {"name": "x"}, "interval": "5m", "git": {"commit": {"author": {"name": "a"}}}}),
        ),
    ] {
        api.create(&PostParams::default(), &automation(name, spec))
            .await
            .expect_err(name);
    }
}

/// Flux's image validation: the CEL rules tying `interval` to `digestReflectionPolicy: Always`,
/// the provider enum and the exclusion list limit; defaults are filled in on create.
#[tokio::test]
async fn image_objects_are_validated_and_defaulted_like_flux() {
    let plane = plane().await;
    let client = plane.client().await.unwrap();
    let ns = plane.namespace("image").await.unwrap();
    let policies: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &resource("ImagePolicy"));
    let policy = |name: &str, extra: Value| -> DynamicObject {
        let mut spec =
            json!({"imageRepositoryRef": {"name": "app"}, "policy": {"alphabetical": {}}});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImagePolicy",
            "metadata": {"name": name, "namespace": ns},
            "spec": spec
        }))
        .unwrap()
    };
    for (name, extra, message) in [
        (
            "interval-without-always",
            json!({"interval": "5m"}),
            "only accepted",
        ),
        (
            "always-without-interval",
            json!({"digestReflectionPolicy": "Always"}),
            "must be set",
        ),
    ] {
        let err = policies
            .create(&PostParams::default(), &policy(name, extra))
            .await
            .expect_err(name);
        assert!(err.to_string().contains(message), "{name}: {err}");
    }
    let created = policies
        .create(&PostParams::default(), &policy("defaults", json!({})))
        .await
        .unwrap();
    let spec = &created.data["spec"];
    assert_eq!(spec["digestReflectionPolicy"], "Never");
    assert_eq!(spec["policy"]["alphabetical"]["order"], "asc");

    let repositories: Api<DynamicObject> =
        Api::namespaced_with(client, &ns, &resource("ImageRepository"));
    let repository = |name: &str, extra: Value| -> DynamicObject {
        let mut spec = json!({"image": "ghcr.io/org/app", "interval": "5m"});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImageRepository",
            "metadata": {"name": name, "namespace": ns},
            "spec": spec
        }))
        .unwrap()
    };
    let too_many: Vec<String> = (0..26).map(|index| format!("^x{index}$")).collect();
    for (name, extra, field) in [
        ("bad-provider", json!({"provider": "quay"}), "spec.provider"),
        (
            "long-exclusions",
            json!({"exclusionList": too_many}),
            "spec.exclusionList",
        ),
        (
            "bad-interval",
            json!({"interval": "5 minutes"}),
            "spec.interval",
        ),
    ] {
        let err = repositories
            .create(&PostParams::default(), &repository(name, extra))
            .await
            .expect_err(name);
        assert!(err.to_string().contains(field), "{name}: {err}");
    }
    let created = repositories
        .create(&PostParams::default(), &repository("defaults", json!({})))
        .await
        .unwrap();
    assert_eq!(created.data["spec"]["provider"], "generic");
    assert_eq!(created.data["spec"]["exclusionList"], json!([r"^.*\.sig$"]));
}
