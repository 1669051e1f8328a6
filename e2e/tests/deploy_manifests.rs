//! The `deploy/` manifests: every kustomization builds with the real kustomize, every object is
//! accepted by the real apiserver (server-side apply, dry run), and the settings users and Flux
//! rely on are pinned: the Deployments' security context, resources, probes and Flux flag names,
//! the source-controller Service (port 80 -> http 9090), the NetworkPolicies and the RBAC.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::discovery::{Discovery, Scope};
use serde_json::{Value, json};
use sluice_e2e::{ControlPlane, kustomize};

/// Flux's namespace, which every Sluice install uses too.
const NAMESPACE: &str = "flux-system";

/// Implemented controllers: in `deploy/default`, each with a `deploy/<name>-only` overlay.
const IMPLEMENTED: [&str; 5] = [
    "source-controller",
    "kustomize-controller",
    "image-reflector-controller",
    "image-automation-controller",
    "notification-controller",
];

/// Every kustomization under `deploy/` (relative to it; "." is the CRDs).
const KUSTOMIZATIONS: [&str; 12] = [
    ".",
    "default",
    "source-controller-only",
    "kustomize-controller-only",
    "image-reflector-controller-only",
    "image-automation-controller-only",
    "notification-controller-only",
    "source-controller",
    "kustomize-controller",
    "image-reflector-controller",
    "image-automation-controller",
    "notification-controller",
];

fn deploy_dir(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path)
}

fn workspace_file(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `kustomize build deploy/<path>`, as JSON documents.
fn build(path: &str) -> Vec<Value> {
    let yaml = kustomize::build(&deploy_dir(path))
        .unwrap_or_else(|e| panic!("kustomize build deploy/{path}: {e}"));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml)
        .unwrap_or_else(|e| panic!("deploy/{path} built invalid YAML: {e}\n{yaml}"));
    assert!(!docs.is_empty(), "deploy/{path} built nothing");
    docs
}

fn str_of<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} is not a string in {value:#}"))
}

fn id(doc: &Value) -> String {
    format!("{} {}", str_of(doc, "/kind"), str_of(doc, "/metadata/name"))
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among {:?}", ids(docs)))
}

fn ids(docs: &[Value]) -> Vec<String> {
    docs.iter().map(id).collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    docs.iter().filter(move |d| d["kind"] == kind)
}

fn plane_error(e: impl std::fmt::Display) -> String {
    format!("the shared control plane: {e}")
}

#[tokio::test]
async fn every_manifest_is_accepted_by_the_apiserver_in_a_server_side_dry_run() {
    let plane = ControlPlane::shared()
        .await
        .unwrap_or_else(|e| panic!("{}", plane_error(e)));
    let client = plane
        .client()
        .await
        .unwrap_or_else(|e| panic!("{}", plane_error(e)));

    // A dry run into a namespace that does not exist fails, so create flux-system for real
    // (idempotent: other tests may share the control plane).
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(NAMESPACE.to_owned());
    match namespaces.create(&PostParams::default(), &namespace).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(e) => panic!("creating namespace {NAMESPACE}: {e}"),
    }

    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("API discovery");
    let params = PatchParams::apply("sluice-e2e").dry_run();
    let mut applied = 0;
    for path in KUSTOMIZATIONS {
        for doc in build(path) {
            let what = format!("{} from deploy/{path}", id(&doc));
            let (group, version) = match str_of(&doc, "/apiVersion").split_once('/') {
                Some((group, version)) => (group, version),
                None => ("", str_of(&doc, "/apiVersion")),
            };
            let gvk = GroupVersionKind::gvk(group, version, str_of(&doc, "/kind"));
            let (resource, capabilities) = discovery
                .resolve_gvk(&gvk)
                .unwrap_or_else(|| panic!("{what}: the apiserver does not serve {gvk:?}"));
            let name = str_of(&doc, "/metadata/name").to_owned();
            let api: Api<DynamicObject> = match capabilities.scope {
                Scope::Cluster => {
                    assert!(
                        doc["metadata"].get("namespace").is_none(),
                        "{what}: a cluster-scoped object carries a namespace"
                    );
                    Api::all_with(client.clone(), &resource)
                }
                Scope::Namespaced => {
                    assert_eq!(
                        str_of(&doc, "/metadata/namespace"),
                        NAMESPACE,
                        "{what}: namespaced objects belong in {NAMESPACE}"
                    );
                    Api::namespaced_with(client.clone(), NAMESPACE, &resource)
                }
            };
            let object: DynamicObject = serde_json::from_value(doc.clone())
                .unwrap_or_else(|e| panic!("{what} is not a Kubernetes object: {e}"));
            let accepted = api
                .patch(&name, &params, &Patch::Apply(&object))
                .await
                .unwrap_or_else(|e| panic!("the apiserver rejected {what}: {e}"));
            assert_eq!(accepted.metadata.name.as_deref(), Some(name.as_str()));
            applied += 1;
        }
    }
    // 60+ objects today (7 CRDs, the default install, the overlays and the bases); a lower
    // bound catches kustomizations that silently build much less.
    assert!(applied >= 50, "only {applied} objects were dry-run applied");
}

/// The security settings every controller Deployment must keep.
fn assert_hardened(deployment: &Value, name: &str) {
    let what = format!("Deployment {name}");
    assert_eq!(
        deployment["spec"]["selector"],
        json!({"matchLabels": {"app": name}}),
        "{what}: the selector must be exactly Flux's (immutable; swapping in place needs it)"
    );
    assert_eq!(deployment["metadata"]["labels"]["app"], name, "{what}");
    assert_eq!(
        deployment["metadata"]["labels"]["control-plane"], "controller",
        "{what}"
    );
    assert_eq!(
        deployment["metadata"]["labels"]["app.kubernetes.io/part-of"], "flux",
        "{what}"
    );
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"]["app"], name,
        "{what}"
    );
    assert_eq!(
        pod["serviceAccountName"], name,
        "{what}: Flux's ServiceAccount name"
    );
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        assert!(pod.get(host).is_none(), "{what}: {host} must stay unset");
    }
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{what}: pod");
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
        "{what}: pod"
    );

    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "{what}: one container");
    let container = &containers[0];
    assert_eq!(
        container["name"], "manager",
        "{what}: Flux's container name"
    );
    assert_eq!(
        container["image"],
        format!("ghcr.io/sluice-dev/{name}:v0.1.0"),
        "{what}"
    );
    let security = &container["securityContext"];
    assert_eq!(security["runAsNonRoot"], true, "{what}: runAsNonRoot");
    assert_eq!(security["runAsUser"], 65534, "{what}: runAsUser");
    assert_eq!(
        security["readOnlyRootFilesystem"], true,
        "{what}: readOnlyRootFilesystem"
    );
    assert_eq!(
        security["allowPrivilegeEscalation"], false,
        "{what}: allowPrivilegeEscalation"
    );
    assert!(
        security.get("privileged").is_none_or(|p| p == false),
        "{what}: privileged"
    );
    assert_eq!(
        security["seccompProfile"]["type"], "RuntimeDefault",
        "{what}: seccomp"
    );
    assert_eq!(
        security["capabilities"],
        json!({"drop": ["ALL"]}),
        "{what}: drop ALL capabilities, add none"
    );

    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                container["resources"][bound][resource].is_string(),
                "{what}: resources.{bound}.{resource} must be set"
            );
        }
    }

    let port = |port_name: &str| {
        container["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .find(|p| p["name"] == port_name)
            .and_then(|p| p["containerPort"].as_i64())
            .unwrap_or_else(|| panic!("{what}: no container port named {port_name}"))
    };
    assert_eq!(port("healthz"), 9440, "{what}: health port");
    assert_eq!(port("http-prom"), 8080, "{what}: metrics port");
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "healthz"}),
        "{what}: liveness probe"
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "healthz"}),
        "{what}: readiness probe"
    );

    for variable in ["RUNTIME_NAMESPACE", "POD_NAMESPACE"] {
        let env = container["env"]
            .as_array()
            .expect("env")
            .iter()
            .find(|e| e["name"] == variable)
            .unwrap_or_else(|| panic!("{what}: no {variable}"));
        assert_eq!(
            env["valueFrom"]["fieldRef"]["fieldPath"], "metadata.namespace",
            "{what}: {variable}"
        );
    }

    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg"))
        .collect();
    for arg in [
        "--watch-all-namespaces=true",
        "--log-level=info",
        "--log-encoding=json",
        "--enable-leader-election",
    ] {
        assert!(args.contains(&arg), "{what}: missing {arg} in {args:?}");
    }

    assert_mounted_empty_dir(pod, container, "/tmp", &what);
}

fn assert_mounted_empty_dir(pod: &Value, container: &Value, path: &str, what: &str) {
    let mount = container["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["mountPath"] == path)
        .unwrap_or_else(|| panic!("{what}: nothing mounted at {path}"));
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap_or_else(|| panic!("{what}: no volume for {path}"));
    assert_eq!(
        volume["emptyDir"],
        json!({}),
        "{what}: {path} is an emptyDir"
    );
}

#[test]
fn every_controller_deployment_is_hardened() {
    for name in IMPLEMENTED {
        let docs = build(name);
        let deployments: Vec<_> = of_kind(&docs, "Deployment").collect();
        assert_eq!(deployments.len(), 1, "deploy/{name}: one Deployment");
        assert_hardened(find(&docs, "Deployment", name), name);
        assert!(
            find(&docs, "ServiceAccount", name)["metadata"]["namespace"] == NAMESPACE,
            "deploy/{name}: ServiceAccount {name} in {NAMESPACE}"
        );
    }
    // The same settings survive the overlays users actually apply.
    let default = build("default");
    for name in IMPLEMENTED {
        assert_hardened(find(&default, "Deployment", name), name);
        let only = build(&format!("{name}-only"));
        assert_hardened(find(&only, "Deployment", name), name);
    }
}

#[test]
fn the_source_controller_serves_artifacts_like_flux() {
    for path in ["default", "source-controller-only", "source-controller"] {
        let docs = build(path);
        let service = find(&docs, "Service", "source-controller");
        assert_eq!(
            service["spec"]["selector"],
            json!({"app": "source-controller"}),
            "deploy/{path}"
        );
        assert_eq!(
            service["spec"]["ports"],
            json!([{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}]),
            "deploy/{path}: port 80 -> http, as Flux's controllers expect"
        );
        let deployment = find(&docs, "Deployment", "source-controller");
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let http = container["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .find(|p| p["name"] == "http")
            .expect("a container port named http");
        assert_eq!(http["containerPort"], 9090, "deploy/{path}: artifact port");
        let args = &container["args"];
        for arg in [
            "--storage-path=/data",
            "--storage-adv-addr=source-controller.$(RUNTIME_NAMESPACE).svc.cluster.local.",
            "--events-addr=http://notification-controller.$(RUNTIME_NAMESPACE).svc.cluster.local./",
        ] {
            assert!(
                args.as_array().expect("args").iter().any(|a| a == arg),
                "deploy/{path}: missing {arg} in {args}"
            );
        }
        assert_mounted_empty_dir(pod, container, "/data", &format!("deploy/{path}"));
    }
}

/// `--some-flag[=value]` → `some_flag`, the clap field name.
fn flag_field(arg: &str) -> String {
    let flag = arg.trim_start_matches("--");
    flag.split_once('=')
        .map_or(flag, |(name, _)| name)
        .replace('-', "_")
}

#[test]
fn every_arg_is_a_flag_the_binary_declares() {
    let common = workspace_file("shared/runtime/src/flags.rs");
    for name in IMPLEMENTED {
        let own = match name {
            "source-controller" => workspace_file("source-controller/src/main.rs"),
            "kustomize-controller" => workspace_file("kustomize-controller/src/cli.rs"),
            "image-reflector-controller" => workspace_file("image-reflector/src/main.rs"),
            "image-automation-controller" => workspace_file("image-automation/src/main.rs"),
            "notification-controller" => workspace_file("notification-controller/src/main.rs"),
            _ => String::new(),
        };
        let docs = build(name);
        let args =
            &find(&docs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]["args"];
        for arg in args.as_array().expect("args") {
            let field = flag_field(arg.as_str().expect("string arg"));
            let declared = |source: &str| {
                source.contains(&format!("pub {field}:")) || source.contains(&format!(" {field}:"))
            };
            assert!(
                declared(&common) || declared(&own),
                "deploy/{name}: {arg} is not a flag of the {name} binary (no field {field})"
            );
        }
    }
}

#[test]
fn the_default_install_holds_the_implemented_controllers_and_network_policies() {
    let docs = build("default");
    assert_eq!(
        find(&docs, "Namespace", NAMESPACE)["metadata"]["name"],
        NAMESPACE
    );
    let deployments: BTreeSet<&str> = of_kind(&docs, "Deployment")
        .map(|d| str_of(d, "/metadata/name"))
        .collect();
    assert_eq!(
        deployments,
        BTreeSet::from(IMPLEMENTED),
        "every implemented controller is in the default install"
    );

    let deny = find(&docs, "NetworkPolicy", "deny-ingress");
    assert_eq!(
        deny["spec"],
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
        "deny-ingress: every pod, no ingress rule"
    );
    let scraping = find(&docs, "NetworkPolicy", "allow-scraping");
    assert_eq!(
        scraping["spec"]["ingress"],
        json!([{"from": [{"namespaceSelector": {}}], "ports": [{"port": 8080, "protocol": "TCP"}]}]),
        "allow-scraping: metrics only, from any namespace"
    );
    let artifacts = find(&docs, "NetworkPolicy", "allow-artifacts");
    assert_eq!(
        artifacts["spec"]["podSelector"],
        json!({"matchLabels": {"app": "source-controller"}})
    );
    assert_eq!(
        artifacts["spec"]["ingress"],
        json!([{"from": [{"podSelector": {}}], "ports": [{"port": 9090, "protocol": "TCP"}]}]),
        "allow-artifacts: the artifact port, from pods of this namespace only"
    );

    for path in [
        "source-controller-only",
        "kustomize-controller-only",
        "image-reflector-controller-only",
        "image-automation-controller-only",
        "notification-controller-only",
    ] {
        let only = build(path);
        let kinds: BTreeSet<&str> = only.iter().map(|d| str_of(d, "/kind")).collect();
        for absent in ["CustomResourceDefinition", "Namespace", "NetworkPolicy"] {
            assert!(
                !kinds.contains(absent),
                "deploy/{path}: a swap overlay must leave Flux's {absent} alone"
            );
        }
        assert_eq!(of_kind(&only, "Deployment").count(), 1, "deploy/{path}");
    }
}

#[test]
fn rbac_is_least_privilege_except_the_documented_cluster_admin() {
    let docs = build("default");
    for kind in ["ClusterRole", "ClusterRoleBinding"] {
        for object in of_kind(&docs, kind) {
            assert!(
                str_of(object, "/metadata/name").starts_with("sluice-"),
                "{}: cluster-scoped names start with sluice- so they never overwrite Flux's",
                id(object)
            );
        }
    }

    let role = find(&docs, "ClusterRole", "sluice-source-controller");
    for rule in role["rules"].as_array().expect("rules") {
        for field in ["apiGroups", "resources", "verbs"] {
            assert!(
                !rule[field]
                    .as_array()
                    .expect("rule lists")
                    .iter()
                    .any(|v| v == "*"),
                "sluice-source-controller: no wildcard {field} in {rule}"
            );
        }
        let resources = rule["resources"].as_array().expect("resources");
        if resources.iter().any(|r| r == "secrets") {
            assert_eq!(
                rule["verbs"],
                json!(["get", "list", "watch"]),
                "Secrets are read only"
            );
        }
    }
    let image_role = find(&docs, "ClusterRole", "sluice-image-reflector-controller");
    for rule in image_role["rules"].as_array().expect("rules") {
        let resources = rule["resources"].as_array().expect("resources");
        let core = rule["apiGroups"] == json!([""]);
        if core && !resources.iter().any(|r| r == "events") {
            assert_eq!(
                rule["verbs"],
                json!(["get"]),
                "image-reflector-controller reads {resources:?} by name only"
            );
        }
        assert!(
            !rule["verbs"]
                .as_array()
                .expect("verbs")
                .iter()
                .any(|v| v == "*"),
            "no wildcard verbs in {rule}"
        );
    }
    let leases = find(&docs, "Role", "source-controller-leader-election");
    assert_eq!(leases["metadata"]["namespace"], NAMESPACE);
    assert_eq!(leases["rules"][0]["resources"], json!(["leases"]));

    let admin = find(&docs, "ClusterRoleBinding", "sluice-kustomize-controller");
    assert_eq!(admin["roleRef"]["name"], "cluster-admin");
    assert_eq!(
        admin["subjects"],
        json!([{"kind": "ServiceAccount", "name": "kustomize-controller", "namespace": NAMESPACE}])
    );
    let binding = find(&docs, "ClusterRoleBinding", "sluice-source-controller");
    assert_eq!(binding["roleRef"]["name"], "sluice-source-controller");
}

#[test]
fn the_crd_kustomization_lists_every_generated_crd() {
    let docs = build(".");
    let built: BTreeSet<String> = docs
        .iter()
        .map(|d| {
            assert_eq!(
                d["kind"], "CustomResourceDefinition",
                "deploy/ holds CRDs only"
            );
            str_of(d, "/metadata/name").to_owned()
        })
        .collect();
    let generated: BTreeSet<String> = std::fs::read_dir(deploy_dir("crds"))
        .expect("deploy/crds")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|file| file.ends_with(".yaml"))
        .map(|file| {
            // `<group>_<plural>.yaml` → `<plural>.<group>`
            let stem = file.trim_end_matches(".yaml");
            let (group, plural) = stem.split_once('_').expect("<group>_<plural>.yaml");
            format!("{plural}.{group}")
        })
        .collect();
    assert_eq!(
        built, generated,
        "deploy/kustomization.yaml must list every file of deploy/crds/"
    );
}
