//! notification-controller binary: Flux's flags, the Alert and Provider caches, the event server
//! with the DORA metrics, and the webhook receiver server with the Receiver reconciler.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgAction, Parser};
use notification_controller::CONTROLLER_NAME;
use notification_controller::dispatch::{DispatchSettings, Dispatcher};
use notification_controller::dora::DoraMetrics;
use notification_controller::matching::Matcher;
use notification_controller::observe::EventObserver;
use notification_controller::ratelimit::{MAX_KEYS, RateLimiter};
use notification_controller::receiver::{self, ReceiverFlags, ReceiverServerOptions};
use notification_controller::server::EventServer;
use notification_controller::statics;
use sluice_api::duration::parse_go_duration;
use sluice_runtime::flags::parse_listen_addr;
use sluice_runtime::server::{bind, serve};

use sluice_runtime::{Metrics, RuntimeContext, RuntimeFlags, init_logging};

/// How long startup waits for the first listing of Alerts and Providers.
const CACHE_SYNC_TIMEOUT: Duration = Duration::from_secs(120);

/// Flux-compatible notification-controller.
#[derive(Debug, Parser)]
#[command(name = "notification-controller", version)]
#[command(mut_arg("events_addr", |arg| arg
    .default_value(":9090")
    .help("The address the event server binds to (Flux: --events-addr).")))]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeFlags,

    #[command(flatten)]
    receiver: ReceiverFlags,

    /// Ignore Alerts whose event sources are in other namespaces (Flux's default: off).
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    no_cross_namespace_refs: bool,

    /// Window in which a repeated event (same object, message, revision and token) is refused.
    #[arg(long, default_value = "5m", value_parser = parse_go_duration)]
    rate_limit_interval: Duration,

    /// Events waiting per Provider before new ones are dropped.
    #[arg(long, default_value_t = 100)]
    provider_queue_size: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    init_logging(cli.runtime.log_level, cli.runtime.log_encoding).context("setting up logging")?;
    let events_addr = parse_listen_addr(&cli.runtime.events_addr)
        .context("--events-addr is the event server's listen address, e.g. :9090")?;
    // The notification-controller records Kubernetes Events only; it never posts to itself.
    cli.runtime.events_addr.clear();
    let events_listener = bind("events", events_addr).await?;
    let receiver_listener = bind("webhook receiver", cli.receiver.receiver_addr).await?;
    let dora = Arc::new(DoraMetrics::new());
    let metrics = Metrics::with_extra_metrics(|registry| dora.register(registry));
    let (runtime, mut tasks) =
        RuntimeContext::start_with_metrics(CONTROLLER_NAME, cli.runtime, metrics)
            .await
            .context("starting the controller runtime")?;
    tracing::info!(controller = CONTROLLER_NAME, %events_addr, receiver_addr = %cli.receiver.receiver_addr, "starting");
    let ready = runtime.readiness.gate("event server");
    let (caches, watches) = statics::start(&runtime);
    for watch in watches {
        tasks.push("alert and provider watch", watch);
    }
    match tokio::time::timeout(CACHE_SYNC_TIMEOUT, caches.ready()).await {
        Ok(true) => tracing::info!("alert and provider caches synced"),
        _ => anyhow::bail!(
            "the Alert and Provider caches did not sync within {CACHE_SYNC_TIMEOUT:?}; check that the notification.toolkit.fluxcd.io CRDs are installed and RBAC allows list and watch"
        ),
    }
    let settings = DispatchSettings {
        queue_capacity: cli.provider_queue_size,
        ..DispatchSettings::default()
    };
    let dispatcher = Dispatcher::new(
        runtime.client.clone(),
        caches.providers.clone(),
        runtime.events.clone(),
        settings,
        runtime.shutdown.token(),
    );
    let observers: Vec<Arc<dyn EventObserver>> = vec![dora];
    let server = Arc::new(EventServer {
        alerts: caches.alerts.clone(),
        matcher: Matcher::new(runtime.client.clone()),
        limiter: RateLimiter::new(cli.rate_limit_interval, MAX_KEYS),
        dispatcher,
        observers,
        events: runtime.events.clone(),
        no_cross_namespace_refs: cli.no_cross_namespace_refs,
    });
    let shutdown = runtime.shutdown.clone();
    tasks.push(
        "event server",
        tokio::spawn(async move {
            if let Err(error) =
                serve("events", events_listener, server.router(), shutdown.token()).await
            {
                tracing::error!(%error, "event server stopped; shutting down");
                shutdown.trigger();
            }
        }),
    );

    let receiver_options = ReceiverServerOptions {
        no_cross_namespace_refs: cli.no_cross_namespace_refs,
        ..ReceiverServerOptions::default()
    };
    let receiver_runtime = runtime.clone();
    let shutdown = runtime.shutdown.clone();
    tasks.push(
        "webhook receiver",
        tokio::spawn(async move {
            if let Err(error) =
                receiver::run(receiver_runtime, receiver_listener, receiver_options).await
            {
                tracing::error!(%error, "webhook receiver stopped; shutting down");
                shutdown.trigger();
            }
        }),
    );
    ready.set(true);
    runtime.shutdown.cancelled().await;
    tasks.finished().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_match_flux_names_and_defaults() {
        let cli = Cli::parse_from(["notification-controller"]);
        assert_eq!(cli.runtime.events_addr, ":9090");
        assert_eq!(cli.receiver.receiver_addr, "0.0.0.0:9292".parse().unwrap());
        assert_eq!(cli.rate_limit_interval, Duration::from_secs(300));
        assert!(!cli.no_cross_namespace_refs);
        let cli = Cli::parse_from([
            "notification-controller",
            "--events-addr=127.0.0.1:19090",
            "--receiverAddr=:19292",
            "--rate-limit-interval=1m",
            "--no-cross-namespace-refs",
        ]);
        assert_eq!(
            parse_listen_addr(&cli.runtime.events_addr).unwrap(),
            "127.0.0.1:19090".parse().unwrap()
        );
        assert_eq!(cli.receiver.receiver_addr.port(), 19292);
        assert_eq!(cli.rate_limit_interval, Duration::from_secs(60));
        assert!(cli.no_cross_namespace_refs);
    }
}
