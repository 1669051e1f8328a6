//! Controller machinery shared by every Sluice controller: Flux-compatible flags and logging,
//! condition helpers, status writes, Kubernetes and notification-controller events, Prometheus
//! metrics, health probes, Lease-based leader election, graceful shutdown, and a kube-runtime
//! `Controller` runner with Flux's predicates, retry backoff and jittered requeues, all bundled
//! in a [`RuntimeContext`] that each controller embeds.

pub mod client;
pub mod conditions;
pub mod context;
pub mod controller;
pub mod core_events;
pub mod events;
pub mod flags;
pub mod leader;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod placeholder;
pub mod probes;
pub mod server;
pub mod shutdown;
pub mod status;
pub mod throttle;
pub mod triggers;

pub use client::{
    ClientError, client_with_throttle, describe_kube_error, kube_client, throttled_client,
};
pub use conditions::{ConditionStatus, Summary, SummaryPolicy};
pub use context::{BackgroundTasks, RuntimeContext, StartupError};
pub use controller::{ControllerRunner, ReconcileError, Requeue, Retry};
pub use events::{EventSeverity, EventSink, NotificationClient, NotificationEvent, ObjectEvent};
pub use flags::{LogEncoding, LogLevel, RuntimeFlags};
pub use leader::{LeaderElectionConfig, Leadership, spawn_leader_election};
pub use lifecycle::{
    Failure, Lifecycle, LifecycleError, LifecycleObject, Outcome, Policy, ReadyRule, Reconciler,
};
pub use logging::init_logging;
pub use metrics::{Metrics, ObjectLabels, ReconcileResult};
pub use placeholder::placeholder_main;
pub use probes::{Readiness, ReadinessGate, probes_router};
pub use shutdown::{Shutdown, termination_signal};
pub use status::{apply_status, apply_status_of};
pub use throttle::ClientMetrics;
pub use triggers::backing_off;
