//! The whole image update loop with four controllers as processes: a tag pushed to the real
//! registry is scanned by image-reflector, written into Git by image-automation, fetched by
//! source-controller and applied by kustomize-controller, with no other action.
//! Needs the binaries: `cargo build --workspace --bins`.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::json;
use sluice_api::image::{ImagePolicy, ImageRepository, ImageUpdateAutomation};
use sluice_e2e::ControlPlane;
use sluice_e2e::bench::{ChildGuard, sibling_binary};
use sluice_e2e::git::GitServer;
use sluice_e2e::gitops::{self, Controllers, Scope};
use sluice_e2e::net::free_port;
use sluice_e2e::poll::eventually;
use sluice_e2e::registry::{Artifact, Registry};

const REPO: &str = "fleet";

fn deployment(image: &str, marker: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  selector:\n    matchLabels: {{app: app}}\n  template:\n    metadata:\n      labels: {{app: app}}\n    spec:\n      containers:\n        - name: app\n          image: {image} # {{\"$imagepolicy\": \"{marker}\"}}\n"
    )
}

/// The image controllers as processes in `namespace` only.
fn image_controllers(
    plane: &ControlPlane,
    namespace: &str,
    storage: &std::path::Path,
) -> Vec<ChildGuard> {
    let env = [(
        "KUBECONFIG".to_owned(),
        plane.kubeconfig_path().display().to_string(),
    )];
    ["image-reflector", "image-automation"]
        .into_iter()
        .map(|binary| {
            let mut args = vec![
                "--watch-all-namespaces=false".to_owned(),
                format!("--runtime-namespace={namespace}"),
                "--enable-leader-election=false".to_owned(),
                "--log-encoding=console".to_owned(),
                format!("--metrics-addr=127.0.0.1:{}", free_port().unwrap()),
                format!("--health-addr=127.0.0.1:{}", free_port().unwrap()),
            ];
            if binary == "image-reflector" {
                args.push(format!("--storage-path={}", storage.display()));
            }
            ChildGuard::spawn(&sibling_binary(binary).unwrap(), &args, &env)
                .unwrap_or_else(|e| panic!("{binary}: {e}"))
        })
        .collect()
}

async fn create<K>(api: &Api<K>, manifest: serde_json::Value)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let object: K = serde_json::from_value(manifest).unwrap();
    gitops::apply(api, &object).await.unwrap();
}

/// The git server with [`REPO`]: a Deployment whose image `image:1.0.0` is marked for `ns:app`.
fn seeded_git(ns: &str, image: &str) -> GitServer {
    let git = GitServer::builder()
        .basic_auth("bot", "s3cret")
        .start()
        .unwrap();
    git.create_repo(REPO).unwrap();
    let files = [
        (
            "apps/deployment.yaml",
            deployment(&format!("{image}:1.0.0"), &format!("{ns}:app")),
        ),
        (
            "apps/kustomization.yaml",
            "resources:\n- deployment.yaml\n".to_owned(),
        ),
    ];
    git.commit(REPO, "main", files, "app").unwrap();
    git
}

/// GitRepository (2s), Kustomization, ImageRepository (2s), ImagePolicy and automation.
async fn create_objects(client: &kube::Client, ns: &str, git_url: &str, image: &str) {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "git-auth", "namespace": ns},
        "stringData": {"username": "bot", "password": "s3cret"},
    }))
    .unwrap();
    gitops::apply(&Api::namespaced(client.clone(), ns), &secret)
        .await
        .unwrap();
    let source = gitops::git_repository("fleet", ns, git_url, "2s", Some("git-auth")).unwrap();
    gitops::apply(&Api::namespaced(client.clone(), ns), &source)
        .await
        .unwrap();
    let ks = gitops::kustomization("apps", ns, "fleet", "./apps", "10m", Some(ns)).unwrap();
    gitops::apply(&Api::namespaced(client.clone(), ns), &ks)
        .await
        .unwrap();
    let object = |kind: &str, name: &str, spec: serde_json::Value| json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": kind, "metadata": {"name": name, "namespace": ns}, "spec": spec});
    let repository = json!({"image": image, "interval": "2s", "insecure": true});
    create::<ImageRepository>(
        &Api::namespaced(client.clone(), ns),
        object("ImageRepository", "app", repository),
    )
    .await;
    let policy =
        json!({"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": ">=1.0.0"}}});
    create::<ImagePolicy>(
        &Api::namespaced(client.clone(), ns),
        object("ImagePolicy", "app", policy),
    )
    .await;
    let automation = json!({
        "sourceRef": {"kind": "GitRepository", "name": "fleet"},
        "interval": "10m",
        "git": {"commit": {"author": {"name": "bot", "email": "bot@example.com"}}},
        "update": {"path": "./apps"},
    });
    create::<ImageUpdateAutomation>(
        &Api::namespaced(client.clone(), ns),
        object("ImageUpdateAutomation", "fleet", automation),
    )
    .await;
}

/// Waits until Deployment `app` in `ns` runs `expected`.
async fn wait_image(client: &kube::Client, ns: &str, expected: &str) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    eventually(
        &format!("Deployment app running {expected}"),
        Duration::from_secs(120),
        Duration::from_millis(500),
        || async {
            let deployment = deployments
                .get_opt("app")
                .await
                .map_err(|e| e.to_string())?;
            let image =
                deployment.and_then(|d| d.spec?.template.spec?.containers.first()?.image.clone());
            match image {
                Some(current) if current == expected => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_tag_ends_up_in_the_cluster() {
    let plane = ControlPlane::shared().await.unwrap();
    let ns = plane.namespace("image-loop").await.unwrap();
    let client = plane.client().await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let loop_dir = work.path().join("loop");
    let _loop = Controllers::start(
        plane.kubeconfig_path(),
        &loop_dir,
        Scope::Namespace(ns.clone()),
    )
    .unwrap();
    let _images = image_controllers(plane, &ns, &work.path().join("tags"));
    let registry = Registry::builder().start().unwrap();
    let oci = registry.client().unwrap();
    let artifact = Artifact::from_files([("app.yaml", "kind: ConfigMap\n")], "test", "v1").unwrap();
    oci.push_artifact("app", "1.0.0", &artifact).await.unwrap();
    let image = format!("{}/app", registry.host());
    let git = seeded_git(&ns, &image);
    create_objects(&client, &ns, &git.http_url(REPO), &image).await;

    wait_image(&client, &ns, &format!("{image}:1.0.0")).await;
    oci.push_artifact("app", "1.0.1", &artifact).await.unwrap();
    wait_image(&client, &ns, &format!("{image}:1.0.1")).await;
    let pushed = git.head(REPO, "main").unwrap();
    let automation: ImageUpdateAutomation =
        Api::namespaced(client, &ns).get("fleet").await.unwrap();
    assert_eq!(automation.status.unwrap().last_push_commit, Some(pushed));
}
