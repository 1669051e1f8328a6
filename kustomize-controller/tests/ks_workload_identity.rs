//! `spec.kubeConfig.configMapRef` (workload identity) against a real apiserver acting as the
//! remote cluster: Flux's `generic` provider authenticates with a ServiceAccount token from the
//! TokenRequest API, accepted when its audience is the apiserver's; the cloud providers stall;
//! no token reaches a log line, an event or the status.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use common::{Harness, condition, config_map, is_success, last_applied};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Event, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, PostParams};
use serde_json::json;
use sluice_api::kustomize::Kustomization;

const GATE: &str = "--feature-gates=ObjectLevelWorkloadIdentity=true";
/// How every ServiceAccount token starts (`{"alg":` in base64url).
const JWT_PREFIX: &str = "eyJhbGci";

/// Everything logged by this test process, at every level.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(sink.clone()))
            .try_init();
        logs
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn create<K>(h: &Harness, object: serde_json::Value)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    K: Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    let object: K = serde_json::from_value(object).unwrap();
    h.api::<K>()
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

/// ServiceAccount `deployer`, allowed to manage ConfigMaps (and nothing else) in the namespace.
async fn deployer(h: &Harness) {
    create::<ServiceAccount>(h, json!({"metadata": {"name": "deployer"}})).await;
    create::<Role>(
        h,
        json!({"metadata": {"name": "configmaps"},
               "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}]}),
    )
    .await;
    create::<RoleBinding>(
        h,
        json!({"metadata": {"name": "deployer-configmaps"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                           "name": "configmaps"},
               "subjects": [{"kind": "ServiceAccount", "name": "deployer",
                             "namespace": h.ns}]}),
    )
    .await;
}

/// The kubeConfig ConfigMap `name` for this control plane with extra `data`.
async fn remote(h: &Harness, name: &str, data: serde_json::Value) {
    let ca = std::fs::read_to_string(h.plane.dir().join("pki/ca.crt")).unwrap();
    let mut all = json!({"provider": "generic", "address": h.plane.server(), "ca.crt": ca});
    all.as_object_mut()
        .unwrap()
        .extend(data.as_object().unwrap().clone());
    create::<ConfigMap>(h, json!({"metadata": {"name": name}, "data": all})).await;
}

fn ready_message(ks: &Kustomization) -> String {
    condition(ks, "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

async fn wait_message(h: &Harness, name: &str, needle: &str) -> Kustomization {
    h.wait_ks(name, &format!("Ready message with {needle:?}"), |ks| {
        ready_message(ks).contains(needle)
    })
    .await
}

#[tokio::test]
async fn a_service_account_token_reaches_the_remote_cluster_and_never_leaks() {
    let logs = captured_logs();
    let h = Harness::start(
        "ks-wi",
        &[GATE, "--default-kubeconfig-service-account=deployer"],
    )
    .await;
    deployer(&h).await;
    remote(&h, "remote", json!({"serviceAccountName": "deployer"})).await;
    h.publish("repo", "v1", &[("cm.yaml", &config_map("remote-cm", "1"))])
        .await;
    h.kustomization(
        "app",
        "repo",
        json!({"kubeConfig": {"configMapRef": {"name": "remote"}}}),
    )
    .await;
    let revision = h.revision_of("repo").await;
    h.wait_ks("app", "Ready through the token", |ks| {
        is_success(ks) && last_applied(ks) == Some(revision.as_str())
    })
    .await;
    let configs: Api<ConfigMap> = h.api();
    assert!(configs.get_opt("remote-cm").await.unwrap().is_some());

    // A ConfigMap naming no ServiceAccount uses --default-kubeconfig-service-account's.
    remote(&h, "lockdown", json!({})).await;
    h.publish(
        "other",
        "v1",
        &[("cm.yaml", &config_map("defaulted-cm", "1"))],
    )
    .await;
    h.kustomization(
        "defaulted",
        "other",
        json!({"kubeConfig": {"configMapRef": {"name": "lockdown"}}}),
    )
    .await;
    h.wait_ready("defaulted", "other").await;
    assert!(configs.get_opt("defaulted-cm").await.unwrap().is_some());

    // The token is the deployer's: a Secret, which its Role does not cover, is refused.
    h.publish(
        "secrets",
        "v1",
        &[(
            "s.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: nope\n",
        )],
    )
    .await;
    h.kustomization(
        "secret",
        "secrets",
        json!({"kubeConfig": {"configMapRef": {"name": "remote"}}}),
    )
    .await;
    let identity = format!("system:serviceaccount:{}:deployer", h.ns);
    let refused = wait_message(&h, "secret", &identity).await;
    assert!(
        ready_message(&refused).contains("forbidden"),
        "{}",
        ready_message(&refused)
    );

    // A token for another audience is not accepted by the apiserver.
    remote(
        &h,
        "elsewhere",
        json!({"serviceAccountName": "deployer", "audiences": "https://elsewhere.example\n"}),
    )
    .await;
    h.kustomization(
        "other",
        "repo",
        json!({"kubeConfig": {"configMapRef": {"name": "elsewhere"}}}),
    )
    .await;
    let unauthorized = wait_message(&h, "other", "Unauthorized").await;
    assert!(!is_success(&unauthorized));

    // The needle below is what such a token looks like.
    let accounts: Api<ServiceAccount> = h.api();
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [h.plane.server()]}})).unwrap();
    let issued = accounts
        .create_token_request("deployer", &PostParams::default(), &request)
        .await
        .unwrap();
    assert!(issued.status.unwrap().token.starts_with(JWT_PREFIX));

    let kustomizations: Api<Kustomization> = h.api();
    let statuses = serde_json::to_string(
        &kustomizations
            .list(&Default::default())
            .await
            .unwrap()
            .items,
    )
    .unwrap();
    let events: Api<Event> = h.api();
    let events =
        serde_json::to_string(&events.list(&Default::default()).await.unwrap().items).unwrap();
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(!logged.is_empty(), "the log capture is working");
    for (place, text) in [
        ("status", &statuses),
        ("events", &events),
        ("logs", &logged),
    ] {
        assert!(!text.contains(JWT_PREFIX), "a token reached the {place}");
    }
}

#[tokio::test]
async fn named_accounts_need_the_gate_and_cloud_providers_stall() {
    let h = Harness::start("ks-wi-off", &[]).await;
    h.publish("repo", "v1", &[("cm.yaml", &config_map("never", "1"))])
        .await;
    remote(&h, "named", json!({"serviceAccountName": "deployer"})).await;
    h.kustomization(
        "named",
        "repo",
        json!({"kubeConfig": {"configMapRef": {"name": "named"}}}),
    )
    .await;
    let ks = wait_message(&h, "named", "ObjectLevelWorkloadIdentity").await;
    assert!(
        ready_message(&ks).contains("--feature-gates=ObjectLevelWorkloadIdentity=true"),
        "{}",
        ready_message(&ks)
    );

    create::<ConfigMap>(
        &h,
        json!({"metadata": {"name": "eks"},
               "data": {"provider": "aws",
                        "cluster": "arn:aws:eks:eu-central-1:123456789012:cluster/prod"}}),
    )
    .await;
    h.kustomization(
        "eks",
        "repo",
        json!({"kubeConfig": {"configMapRef": {"name": "eks"}}}),
    )
    .await;
    let ks = h
        .wait_ks("eks", "Stalled", |ks| {
            condition(ks, "Stalled").is_some_and(|c| c.status == "True")
        })
        .await;
    let message = ready_message(&ks);
    assert!(
        message.contains("spec.kubeConfig.configMapRef") && message.contains("\"aws\""),
        "{message}"
    );
    let configs: Api<ConfigMap> = h.api();
    assert!(configs.get_opt("never").await.unwrap().is_none());
}
