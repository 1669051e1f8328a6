//! The per-process runtime every controller embeds in its reconcile context.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use kube::{Api, Client, Resource};
use tokio::task::JoinHandle;

use crate::client::{ClientError, kube_client};
use crate::controller::{Requeue, jittered};
use crate::events::{EventError, EventSink};
use crate::flags::{FlagsError, RuntimeFlags};
use crate::leader::{LeaderElectionConfig, Leadership, instance_name, spawn_leader_election};
use crate::lifecycle::WrittenVersions;
use crate::metrics::Metrics;
use crate::probes::{Readiness, probes_router};
use crate::server::{ServeError, bind, serve};
use crate::shutdown::{Shutdown, ShutdownError};

/// Starting the runtime failed.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Flags(#[from] FlagsError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Events(#[from] EventError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Shutdown(#[from] ShutdownError),
}

/// Client, events, metrics, readiness, shutdown and leadership of one controller process.
///
/// A controller's `main` parses [`RuntimeFlags`] with clap, starts the runtime, runs its
/// [`ControllerRunner`](crate::ControllerRunner)s until shutdown, then drains events and tasks:
///
/// ```no_run
/// use clap::Parser;
/// use sluice_runtime::{RuntimeContext, RuntimeFlags, init_logging};
///
/// #[derive(Parser)]
/// struct Cli {
///     #[command(flatten)]
///     runtime: RuntimeFlags,
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let cli = Cli::parse();
///     init_logging(cli.runtime.log_level, cli.runtime.log_encoding)?;
///     let (runtime, tasks) = RuntimeContext::start("my-controller", cli.runtime).await?;
///     // Run the controllers here: `ControllerRunner::run` returns on SIGTERM or SIGINT.
///     runtime.shutdown.trigger();
///     runtime.events.flush().await;
///     tasks.finished().await;
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct RuntimeContext {
    /// The controller's name: field manager, event reporter and Lease prefix.
    pub controller_name: String,
    pub client: Client,
    pub flags: Arc<RuntimeFlags>,
    pub events: EventSink,
    pub metrics: Metrics,
    pub readiness: Readiness,
    pub shutdown: Shutdown,
    pub leadership: Leadership,
    /// The resourceVersion of each object after this process's last status write to it.
    pub written: WrittenVersions,
}

/// Background tasks started with the runtime; await [`BackgroundTasks::finished`] after shutdown.
#[derive(Debug, Default)]
pub struct BackgroundTasks {
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl BackgroundTasks {
    /// Adds a task to wait for at shutdown.
    pub fn push(&mut self, name: &'static str, task: JoinHandle<()>) {
        self.tasks.push((name, task));
    }

    /// Waits for every task (the Lease is released, servers drained).
    pub async fn finished(self) {
        for (name, task) in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(task = name, %error, "background task panicked");
            }
        }
    }
}

impl RuntimeContext {
    /// Full startup for a controller binary: validates flags, builds a throttled client, installs
    /// signal handlers, serves metrics and probes, and starts leader election if enabled.
    pub async fn start(
        controller_name: &str,
        flags: RuntimeFlags,
    ) -> Result<(Self, BackgroundTasks), StartupError> {
        Self::start_with_metrics(controller_name, flags, Metrics::new()).await
    }

    /// Like [`RuntimeContext::start`], serving `metrics` (e.g. [`Metrics::with_extra_metrics`]).
    pub async fn start_with_metrics(
        controller_name: &str,
        flags: RuntimeFlags,
        metrics: Metrics,
    ) -> Result<(Self, BackgroundTasks), StartupError> {
        flags.validate()?;
        // Another component may have installed the same provider already; either way one is set.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = kube_client(flags.kube_api_qps, flags.kube_api_burst).await?;
        Self::launch(controller_name, client, flags, metrics).await
    }

    /// Like [`RuntimeContext::start`] with a ready-made client (no client throttling is added).
    pub async fn start_with_client(
        controller_name: &str,
        client: Client,
        flags: RuntimeFlags,
    ) -> Result<(Self, BackgroundTasks), StartupError> {
        Self::launch(controller_name, client, flags, Metrics::new()).await
    }

    async fn launch(
        controller_name: &str,
        client: Client,
        flags: RuntimeFlags,
        metrics: Metrics,
    ) -> Result<(Self, BackgroundTasks), StartupError> {
        flags.validate()?;
        let (shutdown, signal_watcher) = Shutdown::on_signals()?;
        let metrics_listener = bind("metrics", flags.metrics_addr).await?;
        let health_listener = bind("health", flags.health_addr).await?;
        let (mut context, mut tasks) = Self::with_client(controller_name, client, flags, shutdown)?;
        context.metrics = metrics;
        tasks.push("signals", signal_watcher);
        tasks.push(
            "metrics server",
            spawn_server(
                "metrics",
                metrics_listener,
                context.metrics.router(),
                &context.shutdown,
            ),
        );
        tasks.push(
            "health server",
            spawn_server(
                "health",
                health_listener,
                probes_router(context.readiness.clone()),
                &context.shutdown,
            ),
        );
        Ok((context, tasks))
    }

    /// A runtime around an existing client and shutdown tree; starts leader election if enabled
    /// but no servers or signal handlers (useful in tests and embedding).
    pub fn with_client(
        controller_name: &str,
        client: Client,
        flags: RuntimeFlags,
        shutdown: Shutdown,
    ) -> Result<(Self, BackgroundTasks), StartupError> {
        let mut tasks = BackgroundTasks::default();
        let events = EventSink::new(
            client.clone(),
            controller_name,
            &instance_name(),
            flags.events_url(),
        )?;
        let leadership = if flags.enable_leader_election {
            let config = LeaderElectionConfig::from_flags(controller_name, &flags);
            let (leadership, election) =
                spawn_leader_election(client.clone(), config, shutdown.token());
            tasks.push("leader election", election);
            leadership
        } else {
            Leadership::unconditional(&shutdown.token())
        };
        let context = Self {
            controller_name: controller_name.to_owned(),
            client,
            flags: Arc::new(flags),
            events,
            metrics: Metrics::new(),
            readiness: Readiness::new(),
            shutdown,
            leadership,
            written: WrittenVersions::default(),
        };
        Ok((context, tasks))
    }

    /// Requeue after `interval` with ± `--interval-jitter-percentage` jitter.
    pub fn requeue_after_interval(&self, interval: Duration) -> Requeue {
        let percentage = self.flags.interval_jitter_percentage;
        Requeue::After(jittered(interval, percentage, &mut rand::rng()))
    }

    /// Requeue after `--requeue-dependency`, for objects waiting on a dependency.
    pub fn requeue_dependency(&self) -> Requeue {
        Requeue::After(self.flags.requeue_dependency)
    }

    /// An `Api` over the namespaces this controller watches (all, or `--runtime-namespace`).
    pub fn watched_api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        match self.flags.watch_namespace() {
            Some(namespace) => Api::namespaced(self.client.clone(), namespace),
            None => Api::all(self.client.clone()),
        }
    }
}

fn spawn_server(
    what: &'static str,
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: &Shutdown,
) -> JoinHandle<()> {
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        if let Err(error) = serve(what, listener, router, shutdown.token()).await {
            tracing::error!(endpoint = what, %error, "endpoint stopped; shutting down");
            shutdown.trigger();
        }
    })
}
