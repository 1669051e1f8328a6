//! Event throughput: the in-process event server against the real apiserver with 100 Alerts and
//! 20 generic Providers, each a local HTTP server counting deliveries. Posts events from
//! concurrent clients and prints events/s accepted by `POST /`, deliveries/s reaching the
//! providers and the accept latency (p50/p95). Two rounds: each event matching one Alert, then
//! each matching all 100.
//!
//! `cargo run -p notification-controller --example event-bench -- --events 5000`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use axum::Router;
use axum::http::StatusCode;
use clap::Parser;
use futures::StreamExt;
use kube::Api;
use kube::api::PostParams;
use notification_controller::dispatch::{DispatchSettings, Dispatcher};
use notification_controller::matching::Matcher;
use notification_controller::ratelimit::{MAX_KEYS, RateLimiter};
use notification_controller::server::EventServer;
use notification_controller::statics;
use serde_json::{Value, json};
use sluice_api::notification::{Alert, Provider};
use sluice_e2e::ControlPlane;
use sluice_e2e::bench::Percentiles;
use sluice_runtime::{RuntimeContext, RuntimeFlags, Shutdown};

/// Benchmark the event server.
#[derive(Debug, Parser)]
struct Args {
    /// Events posted in the one-Alert round; the fan-out round posts a tenth of them.
    #[arg(long, default_value_t = 5000)]
    events: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Alerts, each watching its own Kustomization and the shared GitRepository.
    #[arg(long, default_value_t = 100)]
    alerts: usize,
    /// Providers, each a local HTTP server; Alert i uses Provider i mod providers.
    #[arg(long, default_value_t = 20)]
    providers: usize,
    /// Events waiting per Provider (the controller's --provider-queue-size).
    #[arg(long, default_value_t = 100)]
    queue_size: usize,
}

#[derive(Parser)]
struct BenchFlags {
    #[command(flatten)]
    flags: RuntimeFlags,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let plane = ControlPlane::shared().await?;
    let namespace = plane.namespace("event-bench").await?;
    let client = plane.client().await?;
    let delivered = Arc::new(AtomicU64::new(0));
    let mut addresses = Vec::new();
    for _ in 0..args.providers {
        addresses.push(provider_server(delivered.clone()).await?);
    }
    create_objects(&client, &namespace, &addresses, args.alerts).await?;
    let shutdown = Shutdown::new();
    let events_url = start_server(&client, &namespace, &shutdown, args.queue_size).await?;
    println!(
        "{} Alerts, {} generic Providers (local HTTP servers), {} clients in parallel, queue {} per Provider",
        args.alerts, args.providers, args.concurrency, args.queue_size
    );
    let one = Round {
        name: "1 Alert per event",
        events: args.events,
        kinds: Kinds::OwnKustomization(args.alerts),
        deliveries_per_event: 1,
    };
    one.run(&args, &events_url, &namespace, &delivered).await?;
    let fan_out = Round {
        name: "every Alert per event",
        events: (args.events / 10).max(1),
        kinds: Kinds::SharedRepository,
        deliveries_per_event: args.alerts as u64,
    };
    fan_out
        .run(&args, &events_url, &namespace, &delivered)
        .await?;
    shutdown.trigger();
    Ok(())
}

/// A provider stand-in: answers 200 to every request and counts it.
async fn provider_server(delivered: Arc<AtomicU64>) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}/", listener.local_addr()?);
    let app = Router::new().fallback(move || {
        let delivered = delivered.clone();
        async move {
            delivered.fetch_add(1, Ordering::Relaxed);
            StatusCode::OK
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(address)
}

/// Providers `p-<n>` at `addresses`; Alert `a-<i>` watches Kustomization `app-<i>` and
/// GitRepository `fleet` and sends to `p-<i mod providers>`. Waits until the caches can hold them.
async fn create_objects(
    client: &kube::Client,
    namespace: &str,
    addresses: &[String],
    alerts: usize,
) -> Result<()> {
    let object = |kind: &str, name: String, spec: Value| -> Result<Value> {
        Ok(
            json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": kind,
            "metadata": {"name": name}, "spec": spec}),
        )
    };
    let providers: Api<Provider> = Api::namespaced(client.clone(), namespace);
    for (n, address) in addresses.iter().enumerate() {
        let spec = json!({"type": "generic", "address": address});
        let provider = serde_json::from_value(object("Provider", format!("p-{n}"), spec)?)?;
        providers.create(&PostParams::default(), &provider).await?;
    }
    let api: Api<Alert> = Api::namespaced(client.clone(), namespace);
    for i in 0..alerts {
        let spec = json!({
            "providerRef": {"name": format!("p-{}", i % addresses.len())},
            "eventSources": [{"kind": "Kustomization", "name": format!("app-{i}")},
                             {"kind": "GitRepository", "name": "fleet"}],
        });
        let alert = serde_json::from_value(object("Alert", format!("a-{i}"), spec)?)?;
        api.create(&PostParams::default(), &alert).await?;
    }
    Ok(())
}

/// The event server with its caches, dispatcher and rate limiter, as the binary wires them.
async fn start_server(
    client: &kube::Client,
    namespace: &str,
    shutdown: &Shutdown,
    queue_size: usize,
) -> Result<String> {
    let flags = BenchFlags::try_parse_from([
        "bench".to_owned(),
        "--watch-all-namespaces=false".to_owned(),
        format!("--runtime-namespace={namespace}"),
    ])?
    .flags;
    let (runtime, _tasks) = RuntimeContext::with_client(
        notification_controller::CONTROLLER_NAME,
        client.clone(),
        flags,
        shutdown.clone(),
    )?;
    let (caches, _watches) = statics::start(&runtime);
    tokio::time::timeout(Duration::from_secs(60), caches.ready())
        .await
        .context("the Alert and Provider caches did not sync")?;
    let settings = DispatchSettings {
        queue_capacity: queue_size,
        ..DispatchSettings::default()
    };
    let dispatcher = Dispatcher::new(
        client.clone(),
        caches.providers.clone(),
        runtime.events.clone(),
        settings,
        shutdown.token(),
    );
    let server = Arc::new(EventServer {
        alerts: caches.alerts.clone(),
        matcher: Matcher::new(client.clone()),
        limiter: RateLimiter::new(Duration::from_secs(300), MAX_KEYS),
        dispatcher,
        observers: Vec::new(),
        events: runtime.events.clone(),
        no_cross_namespace_refs: false,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    let token = shutdown.token();
    tokio::spawn(async move {
        sluice_runtime::server::serve("events", listener, server.router(), token).await
    });
    Ok(url)
}

/// Which object each event is about.
#[derive(Clone, Copy)]
enum Kinds {
    /// Kustomization `app-<n mod alerts>`: one Alert matches.
    OwnKustomization(usize),
    /// GitRepository `fleet`: every Alert matches.
    SharedRepository,
}

/// One measured round of posting.
struct Round {
    name: &'static str,
    events: usize,
    kinds: Kinds,
    deliveries_per_event: u64,
}

impl Round {
    /// The Flux event `n`, unique by message so the duplicate filter lets it through.
    fn event(&self, n: usize, namespace: &str) -> Value {
        let (kind, name, controller) = match self.kinds {
            Kinds::OwnKustomization(alerts) => (
                "Kustomization",
                format!("app-{}", n % alerts),
                "kustomize-controller",
            ),
            Kinds::SharedRepository => ("GitRepository", "fleet".to_owned(), "source-controller"),
        };
        json!({
            "involvedObject": {"kind": kind, "namespace": namespace, "name": name},
            "severity": "info",
            "timestamp": "2026-01-01T00:00:00Z",
            "message": format!("{} event {n}", self.name),
            "reason": "ReconciliationSucceeded",
            "reportingController": controller,
            "metadata": {"revision": format!("main@sha1:{n:040x}")},
        })
    }

    async fn run(
        &self,
        args: &Args,
        url: &str,
        namespace: &str,
        delivered: &AtomicU64,
    ) -> Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let before = delivered.load(Ordering::Relaxed);
        let started = Instant::now();
        let latencies: Vec<Result<Duration>> = futures::stream::iter(0..self.events)
            .map(|n| {
                let request = http.post(url).json(&self.event(n, namespace));
                async move {
                    let sent = Instant::now();
                    let status = request.send().await?.status();
                    ensure!(
                        status == StatusCode::ACCEPTED,
                        "event {n} answered {status}"
                    );
                    Ok(sent.elapsed())
                }
            })
            .buffer_unordered(args.concurrency)
            .collect()
            .await;
        let accepted_in = started.elapsed();
        let latencies = latencies.into_iter().collect::<Result<Vec<_>>>()?;
        let expected = self.events as u64 * self.deliveries_per_event;
        let (count, delivered_in) = wait_deliveries(delivered, before, expected, started).await;
        let rate = |n: f64, time: Duration| n / time.as_secs_f64().max(1e-9);
        println!(
            "{} ({} events, {expected} deliveries expected):",
            self.name, self.events
        );
        println!(
            "  accepted   {:>9.0} events/s   accept latency {}",
            rate(self.events as f64, accepted_in),
            Percentiles::of(latencies)
        );
        println!(
            "  delivered  {:>9.0} requests/s ({} of {expected} in {:.2}s; {} dropped by full queues)",
            rate(count as f64, delivered_in),
            count,
            delivered_in.as_secs_f64(),
            expected.saturating_sub(count)
        );
        Ok(())
    }
}

/// Waits until `expected` deliveries after `before` arrived, or none arrived for 3 s; returns
/// how many arrived and when the last one did, counted from `started`.
async fn wait_deliveries(
    delivered: &AtomicU64,
    before: u64,
    expected: u64,
    started: Instant,
) -> (u64, Duration) {
    let (mut last_count, mut last_change) = (0, started.elapsed());
    loop {
        let count = delivered.load(Ordering::Relaxed) - before;
        if count != last_count {
            (last_count, last_change) = (count, started.elapsed());
        }
        if count >= expected || started.elapsed() - last_change > Duration::from_secs(3) {
            return (count, last_change);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
