//! In-process notification-controller (caches, queues, event server on 127.0.0.1) against the
//! shared control plane, and a recording HTTP server that plays every provider.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use clap::Parser;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use notification_controller::delivery::RetryPolicy;
use notification_controller::dispatch::{DispatchSettings, Dispatcher};
use notification_controller::matching::Matcher;
use notification_controller::observe::EventObserver;
use notification_controller::ratelimit::RateLimiter;
use notification_controller::server::EventServer;
use notification_controller::statics;
use serde_json::Value;
use sluice_api::notification::{Alert, Provider};
use sluice_e2e::ControlPlane;
use sluice_e2e::poll::eventually;
use sluice_runtime::events::NotificationEvent;
use sluice_runtime::{RuntimeContext, RuntimeFlags, Shutdown};

#[derive(Parser)]
struct TestFlags {
    #[command(flatten)]
    flags: RuntimeFlags,
}

/// Records every event the server accepts.
#[derive(Default)]
pub struct Seen(pub Mutex<Vec<NotificationEvent>>);

impl EventObserver for Seen {
    fn observe(&self, event: &NotificationEvent) {
        if let Ok(mut seen) = self.0.lock() {
            seen.push(event.clone());
        }
    }
}

/// A controller watching one fresh namespace, its event server URL and observer.
pub struct Harness {
    pub client: Client,
    pub namespace: String,
    pub events_url: String,
    pub seen: Arc<Seen>,
    shutdown: Shutdown,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

impl Harness {
    pub async fn start(prefix: &str) -> Result<Self> {
        Self::start_with_queue(prefix, DispatchSettings::default().queue_capacity).await
    }

    /// As [`Harness::start`] with `queue_capacity` events waiting per Provider.
    pub async fn start_with_queue(prefix: &str, queue_capacity: usize) -> Result<Self> {
        let plane = ControlPlane::shared().await?;
        let namespace = plane.namespace(prefix).await?;
        let client = plane.client().await?;
        let flags = TestFlags::parse_from([
            "test".to_owned(),
            "--watch-all-namespaces=false".to_owned(),
            format!("--runtime-namespace={namespace}"),
        ])
        .flags;
        let shutdown = Shutdown::new();
        let (runtime, _tasks) = RuntimeContext::with_client(
            notification_controller::CONTROLLER_NAME,
            client.clone(),
            flags,
            shutdown.clone(),
        )?;
        let (caches, _watches) = statics::start(&runtime);
        tokio::time::timeout(Duration::from_secs(30), caches.ready())
            .await
            .context("the caches did not sync")?;
        let settings = DispatchSettings {
            retry: RetryPolicy {
                retries: 2,
                min_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_millis(200),
            },
            queue_capacity,
            ..DispatchSettings::default()
        };
        let dispatcher = Dispatcher::new(
            client.clone(),
            caches.providers.clone(),
            runtime.events.clone(),
            settings,
            shutdown.token(),
        );
        let seen = Arc::new(Seen::default());
        let server = Arc::new(EventServer {
            alerts: caches.alerts.clone(),
            matcher: Matcher::new(client.clone()),
            limiter: RateLimiter::new(Duration::from_secs(300), 1000),
            dispatcher,
            observers: vec![seen.clone() as Arc<dyn EventObserver>],
            events: runtime.events.clone(),
            no_cross_namespace_refs: false,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let token = shutdown.token();
        tokio::spawn(async move {
            let _ = sluice_runtime::server::serve("events", listener, server.router(), token).await;
        });
        Ok(Self {
            client,
            namespace,
            events_url: format!("http://{address}/"),
            seen,
            shutdown,
        })
    }

    pub async fn secret(&self, name: &str, data: &[(&str, &str)]) -> Result<()> {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        };
        Api::<Secret>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &secret)
            .await?;
        Ok(())
    }

    /// Creates a Provider and an Alert named `name` selecting `sources`, then waits until the
    /// controller's caches hold both.
    pub async fn provider_and_alert(
        &self,
        name: &str,
        provider: Value,
        alert: Value,
    ) -> Result<()> {
        let providers: Api<Provider> = Api::namespaced(self.client.clone(), &self.namespace);
        let alerts: Api<Alert> = Api::namespaced(self.client.clone(), &self.namespace);
        let object = |kind: &str, spec: Value| {
            serde_json::json!({
                "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
                "kind": kind,
                "metadata": {"name": name},
                "spec": spec,
            })
        };
        providers
            .create(
                &PostParams::default(),
                &serde_json::from_value(object("Provider", provider))?,
            )
            .await?;
        alerts
            .create(
                &PostParams::default(),
                &serde_json::from_value(object("Alert", alert))?,
            )
            .await?;
        // The caches are fed by watches; give them a moment to see both objects.
        tokio::time::sleep(Duration::from_millis(700)).await;
        Ok(())
    }

    /// Posts `event` to the event server; returns the status code.
    pub async fn post(&self, event: &NotificationEvent) -> Result<u16> {
        let response = reqwest::Client::new()
            .post(&self.events_url)
            .json(event)
            .send()
            .await?;
        Ok(response.status().as_u16())
    }

    /// Kubernetes Events of `reason` on the object named `name`.
    pub async fn events(&self, name: &str, reason: &str) -> Result<Vec<Event>> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        Ok(events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|e| {
                e.involved_object.name.as_deref() == Some(name)
                    && e.reason.as_deref() == Some(reason)
            })
            .collect())
    }

    pub async fn wait_events(&self, name: &str, reason: &str) -> Result<Vec<Event>> {
        Ok(eventually(
            &format!("a {reason} event on {name}"),
            Duration::from_secs(20),
            Duration::from_millis(200),
            || async {
                match self.events(name, reason).await {
                    Ok(found) if !found.is_empty() => Ok(found),
                    Ok(_) => Err("none yet".to_owned()),
                    Err(error) => Err(error.to_string()),
                }
            },
        )
        .await?)
    }
}

/// One request a provider server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub at: Instant,
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// An HTTP server on 127.0.0.1 recording every request; paths starting `/slow` answer after
/// 10 s, `/fail` with 500, everything else 200.
#[derive(Clone)]
pub struct Recorder {
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Recorder {
    pub async fn start() -> Result<Self> {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new().fallback(record).with_state(requests.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { url, requests })
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Waits for `count` requests whose path starts with `prefix`.
    pub async fn wait(&self, prefix: &str, count: usize) -> Result<Vec<Recorded>> {
        let found = eventually(
            &format!("{count} request(s) to {prefix}"),
            Duration::from_secs(20),
            Duration::from_millis(50),
            || async {
                let matching: Vec<Recorded> = self
                    .requests()
                    .into_iter()
                    .filter(|r| r.path.starts_with(prefix))
                    .collect();
                if matching.len() >= count {
                    Ok(matching)
                } else {
                    Err(format!("{} so far", matching.len()))
                }
            },
        )
        .await
        .context("provider server")?;
        Ok(found)
    }
}

async fn record(
    State(requests): State<Arc<Mutex<Vec<Recorded>>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let recorded = Recorded {
        at: Instant::now(),
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body,
    };
    let path = recorded.path.clone();
    if let Ok(mut all) = requests.lock() {
        all.push(recorded);
    }
    if path.starts_with("/slow") {
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    if path.starts_with("/fail") {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::OK
}
