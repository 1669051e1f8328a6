//! Runtime behaviour against a real kube-apiserver from `sluice-e2e`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::routing::post;
use clap::Parser;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, Secret, Service, ServiceSpec};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::{Value, json};
use sluice_api::meta::RECONCILE_REQUESTED_AT_ANNOTATION;
use sluice_e2e::ControlPlane;
use sluice_e2e::poll::eventually;
use sluice_runtime::conditions::{self, ConditionStatus};
use sluice_runtime::{
    ControllerRunner, EventSink, LeaderElectionConfig, ObjectEvent, ReconcileError, Requeue, Retry,
    RuntimeContext, RuntimeFlags, Shutdown, apply_status, backing_off, spawn_leader_election,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const FIELD_MANAGER: &str = "sluice-runtime-test";

async fn cluster(prefix: &str) -> Result<(Client, String)> {
    let control_plane = ControlPlane::shared().await?;
    let client = control_plane.client().await?;
    let namespace = control_plane.namespace(prefix).await?;
    Ok((client, namespace))
}

#[derive(Parser)]
struct TestCommand {
    #[command(flatten)]
    flags: RuntimeFlags,
}

fn flags(args: &[&str]) -> RuntimeFlags {
    let argv = std::iter::once("test").chain(args.iter().copied());
    TestCommand::parse_from(argv).flags
}

/// How often the waits below poll.
const POLL: Duration = Duration::from_millis(100);

fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some([("key".to_owned(), "value".to_owned())].into()),
        ..ConfigMap::default()
    }
}

#[tokio::test]
async fn status_apply_is_owned_by_the_field_manager() -> Result<()> {
    let (client, namespace) = cluster("status").await?;
    let services: Api<Service> = Api::namespaced(client, &namespace);
    let service = Service {
        metadata: ObjectMeta {
            name: Some("web".into()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            ports: Some(vec![k8s_openapi::api::core::v1::ServicePort {
                port: 80,
                ..Default::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    services.create(&PostParams::default(), &service).await?;

    let mut status_conditions = Vec::new();
    conditions::mark_reconciling(&mut status_conditions, "Progressing", "working", Some(1));
    conditions::set(
        &mut status_conditions,
        "Ready",
        ConditionStatus::Unknown,
        "Progressing",
        "working",
        Some(1),
    );
    let stored = apply_status(
        &services,
        "web",
        FIELD_MANAGER,
        &json!({ "conditions": status_conditions }),
    )
    .await?;
    let stored_conditions = stored
        .status
        .as_ref()
        .and_then(|status| status.conditions.clone())
        .context("conditions written")?;
    assert!(conditions::is_true(&stored_conditions, "Reconciling"));

    let managers = stored.metadata.managed_fields.clone().unwrap_or_default();
    let entry = managers
        .iter()
        .find(|entry| entry.manager.as_deref() == Some(FIELD_MANAGER))
        .context("our field manager is recorded")?;
    assert_eq!(entry.operation.as_deref(), Some("Apply"));
    assert_eq!(entry.subresource.as_deref(), Some("status"));

    let mut next = stored_conditions.clone();
    conditions::mark_ready(&mut next, "Succeeded", "done", Some(1));
    let stored = apply_status(
        &services,
        "web",
        FIELD_MANAGER,
        &json!({ "conditions": next }),
    )
    .await?;
    let stored_conditions = stored
        .status
        .and_then(|status| status.conditions)
        .context("conditions written")?;
    assert!(conditions::is_true(&stored_conditions, "Ready"));
    assert!(
        conditions::get(&stored_conditions, "Reconciling").is_none(),
        "a condition we stop applying is pruned: {stored_conditions:?}"
    );
    Ok(())
}

#[tokio::test]
async fn events_reach_kubernetes_and_notification_controller() -> Result<()> {
    let (client, namespace) = cluster("events").await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let object = config_maps
        .create(&PostParams::default(), &config_map("app"))
        .await?;

    let (bodies, mut received) = mpsc::unbounded_channel::<Value>();
    let router = axum::Router::new().route(
        "/",
        post(move |axum::Json(body): axum::Json<Value>| {
            bodies.send(body).ok();
            async { axum::http::StatusCode::ACCEPTED }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });

    let sink = EventSink::new(client.clone(), "sluice-test", "test-pod", Some(&url))?;
    sink.publish(
        &object,
        ObjectEvent::trace("ArtifactUpToDate", "nothing changed"),
    )
    .await;
    sink.publish(
        &object,
        ObjectEvent::error("ReconciliationFailed", "it broke"),
    )
    .await;
    sink.flush().await;

    let posted = received.recv().await.context("the error event is posted")?;
    assert_eq!(posted["reason"], "ReconciliationFailed");
    assert_eq!(posted["severity"], "error");
    assert_eq!(posted["involvedObject"]["name"], "app");
    assert!(
        received.try_recv().is_err(),
        "trace events are not forwarded"
    );

    let events: Api<Event> = Api::namespaced(client, &namespace);
    let recorded = events.list(&ListParams::default()).await?.items;
    let find = |reason: &str| {
        recorded
            .iter()
            .find(|event| event.reason.as_deref() == Some(reason))
            .cloned()
    };
    let warning = find("ReconciliationFailed").context("Warning event recorded")?;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(warning.note.as_deref(), Some("it broke"));
    assert_eq!(warning.reporting_controller.as_deref(), Some("sluice-test"));
    assert_eq!(
        warning
            .regarding
            .and_then(|regarding| regarding.name)
            .as_deref(),
        Some("app")
    );
    let trace = find("ArtifactUpToDate").context("trace event recorded in Kubernetes")?;
    assert_eq!(trace.type_.as_deref(), Some("Normal"));
    Ok(())
}

#[tokio::test]
async fn kubernetes_events_carry_metadata_and_aggregate_repeats_as_flux_does() -> Result<()> {
    let (client, namespace) = cluster("core-events").await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let object = config_maps
        .create(&PostParams::default(), &config_map("app"))
        .await?;
    let sink = EventSink::new(client.clone(), "sluice-test", "test-host", None)?;
    let event = || {
        ObjectEvent::info("Progressing", "ConfigMap/app configured").with_revision("main@sha1:abc")
    };
    sink.publish(&object, event()).await;
    sink.publish(&object, event()).await;

    let events: Api<CoreEvent> = Api::namespaced(client, &namespace);
    let recorded = events.list(&ListParams::default()).await?.items;
    assert_eq!(recorded.len(), 1, "a repeat raises the count: {recorded:?}");
    let event = &recorded[0];
    assert_eq!(event.count, Some(2));
    assert!(event.first_timestamp.is_some() && event.last_timestamp.is_some());
    assert_eq!(
        event.source.as_ref().and_then(|s| s.component.as_deref()),
        Some("sluice-test")
    );
    assert_eq!(event.reporting_instance.as_deref(), Some("test-host"));
    let annotations = event.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("revision").map(String::as_str),
        Some("main@sha1:abc"),
        "metadata of a core-group object is keyed without a group: {annotations:?}"
    );
    Ok(())
}

fn election_config(namespace: &str, identity: &str) -> LeaderElectionConfig {
    LeaderElectionConfig {
        lease_name: "sluice-test-leader-election".into(),
        namespace: namespace.to_owned(),
        identity: identity.to_owned(),
        lease_duration: Duration::from_secs(4),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
        release_on_cancel: true,
    }
}

#[tokio::test]
async fn one_leader_at_a_time_and_takeover_after_release() -> Result<()> {
    let (client, namespace) = cluster("leader").await?;
    let first_shutdown = CancellationToken::new();
    let second_shutdown = CancellationToken::new();
    let (mut first, first_task) = spawn_leader_election(
        client.clone(),
        election_config(&namespace, "first"),
        first_shutdown.clone(),
    );
    let first_term = tokio::time::timeout(Duration::from_secs(30), first.acquired())
        .await
        .context("the first candidate leads")?
        .context("election still running")?;
    let (second, second_task) = spawn_leader_election(
        client.clone(),
        election_config(&namespace, "second"),
        second_shutdown.clone(),
    );

    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(first.is_leader(), "the first keeps renewing its Lease");
    assert!(!second.is_leader(), "never two leaders");

    first_shutdown.cancel();
    first_term.cancelled().await;
    first_task.await?;
    let mut second_view = second.clone();
    let second_term = tokio::time::timeout(Duration::from_secs(15), second_view.acquired())
        .await
        .context("the second takes over after the release")?
        .context("election still running")?;
    assert!(!first.is_leader());

    let leases: Api<Lease> = Api::namespaced(client, &namespace);
    let lease = leases.get("sluice-test-leader-election").await?;
    let holder = lease.spec.and_then(|spec| spec.holder_identity);
    assert_eq!(holder.as_deref(), Some("second"));

    second_shutdown.cancel();
    second_term.cancelled().await;
    second_task.await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
#[error("this object always fails")]
struct AlwaysFails;

impl ReconcileError for AlwaysFails {}

#[derive(Debug, thiserror::Error)]
#[error("this object is stalled")]
struct Stalled;

impl ReconcileError for Stalled {
    fn retry(&self) -> Retry {
        Retry::Never
    }
}

#[derive(Debug, thiserror::Error)]
enum TestError {
    #[error(transparent)]
    Fails(#[from] AlwaysFails),
    #[error(transparent)]
    Stalled(#[from] Stalled),
}

impl ReconcileError for TestError {
    fn retry(&self) -> Retry {
        match self {
            Self::Fails(error) => error.retry(),
            Self::Stalled(error) => error.retry(),
        }
    }
}

struct Recorder {
    seen: mpsc::UnboundedSender<(String, Option<String>)>,
    stalled_calls: AtomicUsize,
}

async fn reconcile(object: Arc<ConfigMap>, recorder: Arc<Recorder>) -> Result<Requeue, TestError> {
    let name = object.metadata.name.clone().unwrap_or_default();
    let token = object
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(RECONCILE_REQUESTED_AT_ANNOTATION).cloned());
    recorder.seen.send((name.clone(), token)).ok();
    match name.as_str() {
        "failing" => Err(AlwaysFails.into()),
        "stalled" => {
            recorder.stalled_calls.fetch_add(1, Ordering::SeqCst);
            Err(Stalled.into())
        }
        _ => Ok(Requeue::OnChange),
    }
}

#[tokio::test]
async fn controller_reconciles_with_predicates_backoff_and_metrics() -> Result<()> {
    let (client, namespace) = cluster("controller").await?;
    let runtime_flags = flags(&[
        "--watch-all-namespaces=false",
        &format!("--runtime-namespace={namespace}"),
        "--min-retry-delay=100ms",
        "--max-retry-delay=400ms",
        "--watch-label-selector=sluice.test/watched=true",
    ]);
    let shutdown = Shutdown::new();
    let (runtime, background) = RuntimeContext::with_client(
        "sluice-test",
        client.clone(),
        runtime_flags,
        shutdown.clone(),
    )?;
    let config_maps: Api<ConfigMap> = runtime.watched_api();

    let (seen, mut reconciled) = mpsc::unbounded_channel();
    let recorder = Arc::new(Recorder {
        seen,
        stalled_calls: AtomicUsize::new(0),
    });
    let runner = ControllerRunner::new("configmap", config_maps.clone(), &runtime);
    let controller = tokio::spawn(runner.run(reconcile, recorder.clone()));

    let watched = |name: &str| {
        let mut object = config_map(name);
        object.metadata.labels =
            Some([("sluice.test/watched".to_owned(), "true".to_owned())].into());
        object
    };
    let params = PostParams::default();
    config_maps.create(&params, &watched("ok")).await?;
    config_maps.create(&params, &watched("failing")).await?;
    config_maps.create(&params, &watched("stalled")).await?;
    config_maps.create(&params, &config_map("ignored")).await?;

    let mut calls: Vec<(String, Option<String>)> = Vec::new();
    let collect_until =
        |calls: &mut Vec<(String, Option<String>)>,
         reconciled: &mut mpsc::UnboundedReceiver<(String, Option<String>)>| {
            while let Ok(call) = reconciled.try_recv() {
                calls.push(call);
            }
        };
    eventually(
        "reconciles and retries",
        Duration::from_secs(30),
        POLL,
        || {
            collect_until(&mut calls, &mut reconciled);
            let failing = calls.iter().filter(|(name, _)| name == "failing").count();
            let ok = calls.iter().any(|(name, _)| name == "ok");
            std::future::ready(if ok && failing >= 4 {
                Ok(())
            } else {
                Err(format!(
                    "ok reconciled: {ok}, failing reconciled {failing} times"
                ))
            })
        },
    )
    .await?;
    assert!(
        runtime.readiness.is_ready(),
        "cache synced opens the readiness gate"
    );
    assert!(
        !calls.iter().any(|(name, _)| name == "ignored"),
        "label selector filters"
    );

    let ok_calls =
        |calls: &[(String, Option<String>)]| calls.iter().filter(|(name, _)| name == "ok").count();
    let before = ok_calls(&calls);
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT_ANNOTATION: "2024-01-01T00:00:00Z"}}});
    config_maps
        .patch("ok", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    eventually(
        "requestedAt triggers a reconcile",
        Duration::from_secs(15),
        POLL,
        || {
            collect_until(&mut calls, &mut reconciled);
            let requested = calls.iter().any(|(name, token)| {
                name == "ok" && token.as_deref() == Some("2024-01-01T00:00:00Z")
            });
            let after = ok_calls(&calls);
            std::future::ready(if requested && after > before {
                Ok(())
            } else {
                Err(format!(
                    "token seen: {requested}, ok reconciles {before} -> {after}"
                ))
            })
        },
    )
    .await?;
    assert_eq!(
        recorder.stalled_calls.load(Ordering::SeqCst),
        1,
        "stalled objects are not retried"
    );

    let metrics = runtime.metrics.encode()?;
    assert!(metrics.contains(
        "controller_runtime_reconcile_total{controller=\"configmap\",result=\"success\"}"
    ));
    let errors_line = metrics
        .lines()
        .find(|line| {
            line.starts_with("controller_runtime_reconcile_errors_total{controller=\"configmap\"}")
        })
        .context("errors counter present")?;
    let errors: f64 = errors_line.rsplit(' ').next().unwrap_or("0").parse()?;
    assert!(errors >= 4.0, "{errors_line}");
    assert!(metrics.contains(&format!(
        "gotk_reconcile_duration_seconds_count{{kind=\"ConfigMap\",name=\"ok\",namespace=\"{namespace}\"}}"
    )));

    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(10), controller)
        .await
        .context("the controller stops on shutdown")??;
    background.finished().await;
    Ok(())
}

#[tokio::test]
async fn only_the_leader_reconciles() -> Result<()> {
    let (client, namespace) = cluster("gated").await?;
    let start = |identity_flags: &[&str]| -> Result<(RuntimeContext, Shutdown, sluice_runtime::BackgroundTasks)> {
        let mut args = vec![
            "--enable-leader-election",
            "--leader-election-lease-duration=4s",
            "--leader-election-renew-deadline=2s",
            "--leader-election-retry-period=500ms",
            "--watch-all-namespaces=false",
        ];
        args.extend_from_slice(identity_flags);
        let runtime_namespace = format!("--runtime-namespace={namespace}");
        args.push(&runtime_namespace);
        let shutdown = Shutdown::new();
        let (runtime, background) =
            RuntimeContext::with_client("sluice-gated", client.clone(), flags(&args), shutdown.clone())?;
        Ok((runtime, shutdown, background))
    };
    let (first, first_shutdown, first_background) = start(&[])?;
    let (second, second_shutdown, second_background) = start(&[])?;

    let counts: Vec<Arc<AtomicUsize>> =
        vec![Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
    let mut controllers = Vec::new();
    for (runtime, count) in [(&first, counts[0].clone()), (&second, counts[1].clone())] {
        let runner =
            ControllerRunner::new("configmap", runtime.watched_api::<ConfigMap>(), runtime);
        controllers.push(tokio::spawn(runner.run(
            |_: Arc<ConfigMap>, count: Arc<AtomicUsize>| async move {
                count.fetch_add(1, Ordering::SeqCst);
                Ok::<_, AlwaysFails>(Requeue::OnChange)
            },
            count,
        )));
    }
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    config_maps
        .create(&PostParams::default(), &config_map("one"))
        .await?;

    eventually(
        "the leader reconciles",
        Duration::from_secs(30),
        POLL,
        || {
            let total = counts[0].load(Ordering::SeqCst) + counts[1].load(Ordering::SeqCst);
            std::future::ready(if total > 0 {
                Ok(())
            } else {
                Err("no reconcile")
            })
        },
    )
    .await?;
    let (leader_index, follower_index) = if first.leadership.is_leader() {
        (0, 1)
    } else {
        (1, 0)
    };
    assert_eq!(
        counts[follower_index].load(Ordering::SeqCst),
        0,
        "the follower stands by"
    );
    assert!(
        first.readiness.is_ready() && second.readiness.is_ready(),
        "a standby replica reports ready"
    );

    let shutdowns = [&first_shutdown, &second_shutdown];
    shutdowns[leader_index].trigger();
    let followers = [&first, &second];
    let mut follower_view = followers[follower_index].leadership.clone();
    tokio::time::timeout(Duration::from_secs(15), follower_view.acquired())
        .await
        .context("the follower takes over")?;
    eventually(
        "the new leader reconciles",
        Duration::from_secs(30),
        POLL,
        || {
            let total = counts[follower_index].load(Ordering::SeqCst);
            std::future::ready(if total > 0 {
                Ok(())
            } else {
                Err("no reconcile")
            })
        },
    )
    .await?;

    shutdowns[follower_index].trigger();
    for controller in controllers {
        tokio::time::timeout(Duration::from_secs(10), controller)
            .await
            .context("controllers stop")??;
    }
    first_background.finished().await;
    second_background.finished().await;
    Ok(())
}

#[tokio::test]
async fn throttled_client_talks_to_the_apiserver() -> Result<()> {
    let control_plane = ControlPlane::shared().await?;
    let kubeconfig = kube::config::Kubeconfig::read_from(control_plane.kubeconfig_path())?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    let client = sluice_runtime::throttled_client(config, 5.0, 2)?;
    let namespace = control_plane.namespace("throttle").await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let started = tokio::time::Instant::now();
    for _ in 0..6 {
        config_maps.list(&ListParams::default()).await?;
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(700),
        "6 requests at 5 qps with burst 2 take at least 0.8s, took {elapsed:?}"
    );
    Ok(())
}

fn free_loopback_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

#[tokio::test]
async fn started_runtime_serves_endpoints_and_shuts_down() -> Result<()> {
    let (client, namespace) = cluster("startup").await?;
    let metrics_port = free_loopback_port()?;
    let health_port = free_loopback_port()?;
    let runtime_flags = flags(&[
        &format!("--metrics-addr=127.0.0.1:{metrics_port}"),
        &format!("--health-addr=127.0.0.1:{health_port}"),
        "--watch-all-namespaces=false",
        &format!("--runtime-namespace={namespace}"),
    ]);
    let (runtime, background) =
        RuntimeContext::start_with_client("sluice-startup", client, runtime_flags).await?;
    let readyz = format!("http://127.0.0.1:{health_port}/readyz");
    assert_eq!(reqwest::get(&readyz).await?.status(), 503);

    let runner = ControllerRunner::new("configmap", runtime.watched_api::<ConfigMap>(), &runtime);
    let controller = tokio::spawn(runner.run(
        |_: Arc<ConfigMap>, _: Arc<()>| async { Ok::<_, AlwaysFails>(Requeue::OnChange) },
        Arc::new(()),
    ));
    // A failed request ends the wait: the probe server is up from the start.
    eventually(
        "readiness after cache sync",
        Duration::from_secs(30),
        POLL,
        || async {
            match reqwest::get(&readyz)
                .await
                .map(|response| response.status())
            {
                Ok(status) if status == 200 => Ok(Ok(())),
                Ok(status) => Err(format!("{readyz} answered {status}")),
                Err(error) => Ok(Err(error)),
            }
        },
    )
    .await??;
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("controller_runtime_reconcile_errors_total{controller=\"configmap\"} 0")
    );
    assert_eq!(
        runtime.requeue_dependency(),
        Requeue::After(Duration::from_secs(30))
    );
    let Requeue::After(jittered) = runtime.requeue_after_interval(Duration::from_secs(100)) else {
        bail!("interval requeues carry a delay");
    };
    assert!(jittered >= Duration::from_secs(95) && jittered < Duration::from_secs(105));

    runtime.shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(10), controller).await??;
    tokio::time::timeout(Duration::from_secs(10), background.finished()).await?;
    assert!(reqwest::get(&readyz).await.is_err(), "servers are stopped");
    Ok(())
}

/// A Role letting `user` read ConfigMaps in `namespace`, and nothing else.
async fn config_map_reader(admin: &Client, namespace: &str, user: &str) -> Result<()> {
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "config-map-reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]
    }))?;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "config-map-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "config-map-reader"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
    }))?;
    let params = PostParams::default();
    Api::<Role>::namespaced(admin.clone(), namespace)
        .create(&params, &role)
        .await?;
    Api::<RoleBinding>::namespaced(admin.clone(), namespace)
        .create(&params, &binding)
        .await?;
    Ok(())
}

/// A trigger watch that keeps failing (Secrets the controller may not list) backs off on its
/// own: with kube-runtime's shared trigger backoff, it paused every trigger for up to 30 s.
#[tokio::test]
async fn a_failing_trigger_watch_does_not_hold_back_the_others() -> Result<()> {
    let plane = ControlPlane::shared().await?;
    let admin = plane.client().await?;
    let namespace = plane.namespace("triggers").await?;
    let user = format!("reader-{namespace}");
    config_map_reader(&admin, &namespace, &user).await?;
    let client = plane.client_as(&user, &[]).await?;
    let runtime_flags = flags(&[
        "--watch-all-namespaces=false",
        &format!("--runtime-namespace={namespace}"),
    ]);
    let shutdown = Shutdown::new();
    let (runtime, background) =
        RuntimeContext::with_client("sluice-test", client, runtime_flags, shutdown.clone())?;
    let secrets: Api<Secret> = runtime.watched_api();
    let (seen, mut reconciled) = mpsc::unbounded_channel();
    let recorder = Arc::new(Recorder {
        seen,
        stalled_calls: AtomicUsize::new(0),
    });
    let runner = ControllerRunner::new("configmap", runtime.watched_api(), &runtime).customize(
        move |controller| {
            controller.watches_stream(
                backing_off(secrets.clone(), watcher::Config::default()),
                |_| None::<ObjectRef<ConfigMap>>,
            )
        },
    );
    let controller = tokio::spawn(runner.run(reconcile, recorder));

    // By now the Secrets watch has failed five times; a shared backoff would be at 12.8 s.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let config_maps: Api<ConfigMap> = Api::namespaced(admin, &namespace);
    for name in ["first", "second"] {
        config_maps
            .create(&PostParams::default(), &config_map(name))
            .await?;
        let until_reconciled = async {
            while let Some((reconciled_name, _)) = reconciled.recv().await {
                if reconciled_name == name {
                    return;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), until_reconciled)
            .await
            .with_context(|| format!("ConfigMap {name} was not reconciled within 5 s"))?;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }

    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(10), controller)
        .await
        .context("the controller stops on shutdown")??;
    background.finished().await;
    Ok(())
}
