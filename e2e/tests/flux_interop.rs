//! Flux's own controllers (built from their Go modules) and Sluice's side by side on one control
//! plane that carries Flux's CRDs: each kustomize-controller applies the other's source artifacts,
//! controllers are swapped in both directions without recreating or touching objects, later
//! prunes work, finalizers are written by the same field managers, and events (Kubernetes Events
//! and the JSON posted to `--events-addr`) match Flux's field by field.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Service};
use kube::Api;
use kube::api::ObjectMeta;
use sluice_api::kustomize::Kustomization;
use sluice_api::meta::FINALIZER;
use sluice_e2e::ControlPlane;
use sluice_e2e::event_sink::EventSink;
use sluice_e2e::flux::{FluxController, FluxProcess, install_flux_crds, kubectl_cli};
use sluice_e2e::git::GitServer;
use sluice_e2e::gitops::{
    self, APP, AppLoop, Controller, Controllers, Scope, kustomization_ready_at, main_revision,
};
use sluice_e2e::poll::eventually;
use tokio::sync::OnceCell;

/// Any step of a scenario, including a controller's first reconcile.
const STEP: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(200);
/// The field manager Flux's kustomize-controller writes a Kustomization's finalizer and status with.
const FLUX_KUSTOMIZE_MANAGER: &str = "gotk-kustomize-controller";
/// The field manager Flux's source-controller writes a source's finalizer and status with.
const FLUX_SOURCE_MANAGER: &str = "source-controller";

static FLUX_CRDS: OnceCell<()> = OnceCell::const_new();
static STARTS: AtomicUsize = AtomicUsize::new(0);

/// One test's namespace and git server on the shared control plane with Flux's CRDs.
struct Scenario {
    plane: &'static ControlPlane,
    namespace: String,
    git: GitServer,
}

async fn setup(prefix: &str) -> Scenario {
    let plane = ControlPlane::shared()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    FLUX_CRDS
        .get_or_init(|| async {
            install_flux_crds(plane)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .await;
    Scenario {
        plane,
        namespace: plane.namespace(prefix).await.unwrap(),
        git: GitServer::builder().start().unwrap(),
    }
}

impl Scenario {
    /// A fresh directory for one controller start.
    fn dir(&self, what: &str) -> PathBuf {
        let start = STARTS.fetch_add(1, Ordering::Relaxed);
        self.plane
            .dir()
            .join(format!("{}-{what}-{start}", self.namespace))
    }

    async fn flux(&self, controller: FluxController) -> FluxProcess {
        self.flux_with_events(controller, None).await
    }

    /// Flux's `controller`, posting its events to `events_url` when given.
    async fn flux_with_events(
        &self,
        controller: FluxController,
        events_url: Option<String>,
    ) -> FluxProcess {
        let kubeconfig = self.plane.kubeconfig_path().to_path_buf();
        let dir = self.dir("flux");
        let namespace = self.namespace.clone();
        tokio::task::spawn_blocking(move || {
            FluxProcess::start(
                controller,
                &kubeconfig,
                &dir,
                &namespace,
                events_url.as_deref(),
            )
        })
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn sluice(&self, which: &'static [Controller]) -> Controllers {
        self.sluice_with_args(which, Vec::new()).await
    }

    /// Sluice's `which` controllers with `extra_args` (e.g. `--events-addr`).
    async fn sluice_with_args(
        &self,
        which: &'static [Controller],
        extra_args: Vec<String>,
    ) -> Controllers {
        let kubeconfig = self.plane.kubeconfig_path().to_path_buf();
        let dir = self.dir("sluice");
        let scope = Scope::Namespace(self.namespace.clone());
        tokio::task::spawn_blocking(move || {
            Controllers::start_with_args(&kubeconfig, &dir, scope, which, &extra_args)
        })
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn app(&self, message: &str) -> AppLoop {
        AppLoop::create(self.plane, &self.namespace, &self.git, message, "1m", "15s")
            .await
            .unwrap()
    }

    fn revision(&self) -> String {
        main_revision(&self.git.head(APP, "main").unwrap())
    }
}

/// Requests a reconcile of the GitRepository and waits until the Kustomization applied `revision`.
async fn wait_applied(app: &AppLoop, revision: &str, logs: impl Fn() -> String) -> Kustomization {
    gitops::request_reconcile(&app.repositories, APP)
        .await
        .unwrap();
    app.wait_applied(revision, STEP)
        .await
        .unwrap_or_else(|state| panic!("{state}\n{}", logs()))
}

/// Asks the Kustomization to reconcile and waits until a controller handled that request, Ready.
async fn wait_handled(app: &AppLoop, logs: impl Fn() -> String) -> Kustomization {
    let token = gitops::request_reconcile(&app.kustomizations, APP)
        .await
        .unwrap();
    let what = format!("Kustomization {APP} handled requestedAt {token} and Ready");
    eventually(&what, STEP, POLL, || async {
        let ks = app
            .kustomizations
            .get(APP)
            .await
            .map_err(|e| e.to_string())?;
        let status = ks.status.clone().unwrap_or_default();
        let revision = status.last_applied_revision.clone().unwrap_or_default();
        if status.last_handled_reconcile_at.as_deref() == Some(&token)
            && kustomization_ready_at(&ks, &revision)
        {
            Ok(ks)
        } else {
            Err(app.describe().await)
        }
    })
    .await
    .unwrap_or_else(|state| panic!("{state}\n{}", logs()))
}

/// The digests in `status.history`, sorted (each side orders entries by its own clock).
fn history_digests(ks: &Kustomization) -> Vec<String> {
    let mut digests: Vec<String> = ks
        .status
        .iter()
        .flat_map(|status| status.history.iter().map(|entry| entry.digest.clone()))
        .collect();
    digests.sort();
    digests
}

/// UID and resourceVersion of each of the app's objects that exists, by kind.
async fn identities(app: &AppLoop) -> BTreeMap<&'static str, (String, String)> {
    let id = |meta: ObjectMeta| {
        (
            meta.uid.unwrap_or_default(),
            meta.resource_version.unwrap_or_default(),
        )
    };
    let mut found = BTreeMap::new();
    if let Some(cm) = app.api::<ConfigMap>().get_opt(APP).await.unwrap() {
        found.insert("ConfigMap", id(cm.metadata));
    }
    if let Some(deployment) = app.api::<Deployment>().get_opt(APP).await.unwrap() {
        found.insert("Deployment", id(deployment.metadata));
    }
    if let Some(service) = app.api::<Service>().get_opt(APP).await.unwrap() {
        found.insert("Service", id(service.metadata));
    }
    found
}

/// The field manager whose managedFields entry owns `metadata.finalizers`.
fn finalizer_manager(meta: &ObjectMeta) -> Option<String> {
    meta.managed_fields.iter().flatten().find_map(|entry| {
        let fields = entry.fields_v1.as_ref()?.0.get("f:metadata")?;
        fields.get("f:finalizers").and(entry.manager.clone())
    })
}

/// Waits until the object of `api` named `name` carries Flux's finalizer and returns its metadata.
async fn with_finalizer<K>(api: &Api<K>, name: &str) -> ObjectMeta
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    eventually("Flux's finalizer", STEP, POLL, || async {
        let object = api.get(name).await.map_err(|e| e.to_string())?;
        let meta = object.meta().clone();
        if meta.finalizers.iter().flatten().any(|f| f == FINALIZER) {
            Ok(meta)
        } else {
            Err(format!("finalizers: {:?}", meta.finalizers))
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn flux_kustomize_controller_applies_sluice_source_artifacts() {
    let scenario = setup("interop-flux-ks").await;
    let ours = scenario.sluice(&[Controller::Source]).await;
    let flux = scenario.flux(FluxController::Kustomize).await;
    let logs = || format!("{}\n{}", ours.log_tails(), flux.log_tail());
    let app = scenario.app("from-sluice-source").await;

    wait_applied(&app, &scenario.revision(), logs).await;

    assert_eq!(
        app.configmap_message().await.unwrap().as_deref(),
        Some("from-sluice-source")
    );
    let repository = with_finalizer(&app.repositories, APP).await;
    assert_eq!(
        finalizer_manager(&repository).as_deref(),
        Some(FLUX_SOURCE_MANAGER),
        "Sluice's source-controller writes the finalizer as Flux's does"
    );
    let ks = with_finalizer(&app.kustomizations, APP).await;
    assert_eq!(
        finalizer_manager(&ks).as_deref(),
        Some(FLUX_KUSTOMIZE_MANAGER)
    );
}

#[tokio::test]
async fn sluice_kustomize_controller_applies_flux_source_artifacts() {
    let scenario = setup("interop-flux-source").await;
    let flux = scenario.flux(FluxController::Source).await;
    let ours = scenario.sluice(&[Controller::Kustomize]).await;
    let logs = || format!("{}\n{}", ours.log_tails(), flux.log_tail());
    let app = scenario.app("from-flux-source").await;

    let ks = wait_applied(&app, &scenario.revision(), logs).await;

    assert_eq!(
        app.configmap_message().await.unwrap().as_deref(),
        Some("from-flux-source")
    );
    let inventory = ks.status.and_then(|s| s.inventory).unwrap_or_default();
    let mut ids: Vec<String> = inventory.entries.into_iter().map(|e| e.id).collect();
    ids.sort();
    let ns = &scenario.namespace;
    assert_eq!(
        ids,
        [
            format!("{ns}_{APP}__ConfigMap"),
            format!("{ns}_{APP}__Service"),
            format!("{ns}_{APP}_apps_Deployment"),
        ]
    );
    let repository = with_finalizer(&app.repositories, APP).await;
    assert_eq!(
        finalizer_manager(&repository).as_deref(),
        Some(FLUX_SOURCE_MANAGER)
    );
    let ks = with_finalizer(&app.kustomizations, APP).await;
    assert_eq!(
        finalizer_manager(&ks).as_deref(),
        Some(FLUX_KUSTOMIZE_MANAGER),
        "Sluice's kustomize-controller writes the finalizer as Flux's does"
    );
}

#[tokio::test]
async fn swapping_flux_for_sluice_and_back_keeps_objects_and_prunes_later() {
    let scenario = setup("interop-swap").await;
    let app = scenario.app("v1").await;
    let flux_source = scenario.flux(FluxController::Source).await;
    let flux_ks = scenario.flux(FluxController::Kustomize).await;
    let applied = wait_applied(&app, &scenario.revision(), || {
        format!("{}\n{}", flux_source.log_tail(), flux_ks.log_tail())
    })
    .await;
    let before = identities(&app).await;
    assert_eq!(before.len(), 3, "Flux applied {before:?}");
    let flux_history = history_digests(&applied);
    assert_eq!(flux_history.len(), 1, "Flux recorded one build");

    // Flux → Sluice: both controllers at once, as the swap guide does.
    flux_ks.stop();
    flux_source.stop();
    let ours = scenario.sluice(&Controller::ALL).await;
    let logs = || ours.log_tails();
    let handled = wait_handled(&app, logs).await;
    assert_eq!(identities(&app).await, before, "no object was touched");
    assert_eq!(
        history_digests(&handled),
        flux_history,
        "Sluice's digest of the unchanged build is Flux's, so it extends Flux's history entry"
    );
    scenario
        .git
        .delete(
            APP,
            "main",
            &[format!("{APP}/service.yaml")],
            "drop the Service",
        )
        .unwrap();
    wait_applied(&app, &scenario.revision(), logs).await;
    let after_prune = identities(&app).await;
    assert!(
        !after_prune.contains_key("Service"),
        "Sluice pruned the Service Flux created"
    );
    assert_eq!(after_prune.get("ConfigMap"), before.get("ConfigMap"));
    assert_eq!(after_prune.get("Deployment"), before.get("Deployment"));

    // Sluice → Flux.
    drop(ours);
    let flux_source = scenario.flux(FluxController::Source).await;
    let flux_ks = scenario.flux(FluxController::Kustomize).await;
    let logs = || format!("{}\n{}", flux_source.log_tail(), flux_ks.log_tail());
    let sluice_history = history_digests(&app.kustomizations.get(APP).await.unwrap());
    let handled = wait_handled(&app, logs).await;
    assert_eq!(identities(&app).await, after_prune, "no object was touched");
    assert_eq!(
        history_digests(&handled),
        sluice_history,
        "Flux's digest of the unchanged build is Sluice's, so it extends Sluice's history entry"
    );

    scenario
        .git
        .delete(
            APP,
            "main",
            &[format!("{APP}/configmap.yaml")],
            "drop the ConfigMap",
        )
        .unwrap();
    wait_applied(&app, &scenario.revision(), logs).await;
    let last = identities(&app).await;
    assert!(
        !last.contains_key("ConfigMap"),
        "Flux pruned the ConfigMap Sluice applied"
    );
    assert_eq!(last.get("Deployment"), before.get("Deployment"));
}

#[tokio::test]
async fn sluice_controllers_run_on_flux_crds_and_prune() {
    let scenario = setup("interop-crds").await;
    let ours = scenario.sluice(&Controller::ALL).await;
    let logs = || ours.log_tails();
    let app = scenario.app("on-flux-crds").await;
    wait_applied(&app, &scenario.revision(), logs).await;
    assert_eq!(identities(&app).await.len(), 3);

    scenario
        .git
        .delete(
            APP,
            "main",
            &[format!("{APP}/deployment.yaml")],
            "drop the Deployment",
        )
        .unwrap();
    wait_applied(&app, &scenario.revision(), logs).await;
    let left = identities(&app).await;
    assert_eq!(
        left.keys().copied().collect::<Vec<_>>(),
        ["ConfigMap", "Service"]
    );
}

/// The fields of a Kubernetes Event that must match whichever controller wrote it; the time and
/// message text aside (durations differ), only whether they are set.
fn event_shape(event: &Event, namespace: &str) -> serde_json::Value {
    let annotations: Vec<&String> = event
        .metadata
        .annotations
        .iter()
        .flatten()
        .map(|(k, _)| k)
        .collect();
    let object = &event.involved_object;
    serde_json::json!({
        "type": event.type_,
        "reason": event.reason,
        "annotations": annotations,
        "source": event.source.as_ref().and_then(|s| s.component.clone()),
        "reportingComponent": event.reporting_component,
        "count": event.count.is_some(),
        "firstTimestamp": event.first_timestamp.is_some(),
        "lastTimestamp": event.last_timestamp.is_some(),
        "involvedObject": [&object.kind, &object.api_version, &object.name, &object.uid.is_some()],
        "message": event
            .message
            .as_ref()
            .map(|m| m.replace(namespace, "<ns>").split(" in ").next().unwrap_or_default().to_owned()),
    })
}

/// The fields of a Flux event posted to `--events-addr` that must match whichever controller
/// sent it: key sets, severity, reason, reporting controller, metadata (the revision is the same
/// commit on both sides), message start.
fn posted_event_shape(event: &serde_json::Value, namespace: &str) -> serde_json::Value {
    let keys = |value: &serde_json::Value| -> Vec<String> {
        value
            .as_object()
            .map(|object| object.keys().cloned().collect())
            .unwrap_or_default()
    };
    let object = &event["involvedObject"];
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    serde_json::json!({
        "keys": keys(event),
        "involvedObject": [keys(object), text(&object["kind"]), text(&object["apiVersion"])],
        "severity": event["severity"],
        "reason": event["reason"],
        "reportingController": event["reportingController"],
        "reportingInstance": !text(&event["reportingInstance"]).is_empty(),
        "timestamp": text(&event["timestamp"]).ends_with('Z'),
        "metadata": event["metadata"],
        "message": text(&event["message"]).replace(namespace, "<ns>").split(" in ").next().unwrap_or_default().to_owned(),
    })
}

/// The shapes of the Kustomization events a sink received at `path`, by reason.
fn posted_kustomization_events(
    sink: &EventSink,
    path: &str,
    namespace: &str,
) -> BTreeMap<String, serde_json::Value> {
    sink.events(path)
        .iter()
        .filter(|event| event["involvedObject"]["kind"] == "Kustomization")
        .map(|event| {
            (
                event["reason"].as_str().unwrap_or_default().to_owned(),
                posted_event_shape(event, namespace),
            )
        })
        .collect()
}

/// The shapes of the events about the Kustomization `app` in `namespace`, by reason.
async fn kustomization_events(
    client: kube::Client,
    namespace: &str,
) -> BTreeMap<String, serde_json::Value> {
    let events: Api<Event> = Api::namespaced(client, namespace);
    let list = events.list(&Default::default()).await.unwrap();
    list.items
        .iter()
        .filter(|e| e.involved_object.kind.as_deref() == Some("Kustomization"))
        .map(|e| {
            (
                e.reason.clone().unwrap_or_default(),
                event_shape(e, namespace),
            )
        })
        .collect()
}

#[tokio::test]
async fn kustomization_events_match_flux_field_by_field() {
    let flux_side = setup("events-flux").await;
    let sluice_side = setup("events-sluice").await;
    let sink = EventSink::start().await.unwrap();
    let flux_source = flux_side.sluice(&[Controller::Source]).await;
    let flux_ks = flux_side
        .flux_with_events(FluxController::Kustomize, Some(sink.url("flux")))
        .await;
    let events_addr = format!("--events-addr={}", sink.url("sluice"));
    let ours = sluice_side
        .sluice_with_args(&Controller::ALL, vec![events_addr])
        .await;
    let flux_app = flux_side.app("same").await;
    let our_app = sluice_side.app("same").await;
    wait_applied(&flux_app, &flux_side.revision(), || {
        format!("{}\n{}", flux_source.log_tails(), flux_ks.log_tail())
    })
    .await;
    wait_applied(&our_app, &sluice_side.revision(), || ours.log_tails()).await;

    let client = flux_side.plane.client().await.unwrap();
    let what = "the same Kustomization events as Flux's";
    eventually(what, STEP, POLL, || async {
        let flux = kustomization_events(client.clone(), &flux_side.namespace).await;
        let sluice = kustomization_events(client.clone(), &sluice_side.namespace).await;
        if !flux.is_empty() && flux == sluice {
            Ok(())
        } else {
            Err(format!(
                "Flux:\n{}\nSluice:\n{}",
                serde_json::to_string_pretty(&flux).unwrap_or_default(),
                serde_json::to_string_pretty(&sluice).unwrap_or_default()
            ))
        }
    })
    .await
    .unwrap();

    let what = "the same event JSON at --events-addr as Flux's";
    eventually(what, STEP, POLL, || async {
        let flux = posted_kustomization_events(&sink, "flux", &flux_side.namespace);
        let sluice = posted_kustomization_events(&sink, "sluice", &sluice_side.namespace);
        if !flux.is_empty() && flux == sluice {
            Ok(())
        } else {
            Err(format!(
                "Flux:\n{}\nSluice:\n{}",
                serde_json::to_string_pretty(&flux).unwrap_or_default(),
                serde_json::to_string_pretty(&sluice).unwrap_or_default()
            ))
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn swap_guide_crd_commands_work_as_written_over_flux_crds() {
    let scenario = setup("interop-guide").await;
    let kubeconfig = scenario.plane.kubeconfig_path();
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let deploy = deploy.display().to_string();

    let plain = kubectl_cli(kubeconfig, &["apply", "--server-side", "-k", &deploy]).unwrap();
    assert!(
        !plain.success,
        "a plain server-side apply over Flux's CRDs conflicts"
    );
    assert!(plain.text().contains("conflict"), "{}", plain.text());
    let forced = ["apply", "--server-side", "--force-conflicts", "-k", &deploy];
    let forced = kubectl_cli(kubeconfig, &forced).unwrap();
    assert!(forced.success, "Flux → Sluice CRDs:\n{}", forced.text());

    for controller in [FluxController::Source, FluxController::Kustomize] {
        let dir = controller.crds_dir().unwrap().display().to_string();
        let back = [
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=sluice-e2e",
            "-f",
            &dir,
        ];
        let back = kubectl_cli(kubeconfig, &back).unwrap();
        assert!(back.success, "Sluice → Flux CRDs:\n{}", back.text());
    }
}
