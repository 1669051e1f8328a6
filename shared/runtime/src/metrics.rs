//! Prometheus metrics with Flux's `gotk_*` names plus controller-runtime reconcile counters.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::conditions::ConditionStatus;

const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Identifies one object in `gotk_*` series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ObjectLabels {
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

impl ObjectLabels {
    pub fn new(
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            kind: kind.into(),
            name: name.into(),
            namespace: namespace.into(),
        }
    }

    /// Labels for a Kubernetes object (namespace empty for cluster-scoped objects).
    pub fn of<K>(object: &K) -> Self
    where
        K: kube::Resource,
        K::DynamicType: Default,
    {
        Self::new(
            K::kind(&K::DynamicType::default()),
            object.meta().namespace.clone().unwrap_or_default(),
            object.meta().name.clone().unwrap_or_default(),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ConditionLabels {
    kind: String,
    name: String,
    namespace: String,
    r#type: String,
    status: &'static str,
}

/// Values of the `status` label of `gotk_reconcile_condition`.
const CONDITION_DELETED: &str = "Deleted";
const ALL_STATUSES: [&str; 4] = ["True", "False", "Unknown", CONDITION_DELETED];

/// The `result` label of `controller_runtime_reconcile_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReconcileResult {
    Success,
    Error,
    RequeueAfter,
}

impl ReconcileResult {
    /// The label value controller-runtime uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::RequeueAfter => "requeue_after",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    controller: String,
    result: &'static str,
}

/// One step of a kind's reconcile, for the step-duration histogram.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StepLabels {
    kind: String,
    step: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

/// The controller's metrics; cheap to clone, all clones share one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    reconcile_duration: Family<ObjectLabels, Histogram, fn() -> Histogram>,
    reconcile_condition: Family<ConditionLabels, Gauge>,
    suspend_status: Family<ObjectLabels, Gauge>,
    reconcile_total: Family<ResultLabels, Counter>,
    reconcile_errors: Family<ControllerLabels, Counter>,
    step_duration: Family<StepLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::with_extra_metrics(|_| {})
    }
}

impl Metrics {
    /// The standard metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// The standard metrics plus whatever `register` adds to the registry.
    pub fn with_extra_metrics(register: impl FnOnce(&mut Registry)) -> Self {
        let mut registry = Registry::default();
        let reconcile_duration: Family<ObjectLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        let reconcile_condition = Family::<ConditionLabels, Gauge>::default();
        let suspend_status = Family::<ObjectLabels, Gauge>::default();
        let reconcile_total = Family::<ResultLabels, Counter>::default();
        let reconcile_errors = Family::<ControllerLabels, Counter>::default();
        let step_duration: Family<StepLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        crate::throttle::ClientMetrics::global().register(&mut registry);
        registry.register(
            "gotk_reconcile_duration_seconds",
            "The duration in seconds of a GitOps Toolkit resource reconciliation",
            reconcile_duration.clone(),
        );
        registry.register(
            "gotk_reconcile_condition",
            "The current condition status of a GitOps Toolkit resource reconciliation",
            reconcile_condition.clone(),
        );
        registry.register(
            "gotk_suspend_status",
            "The current suspend status of a GitOps Toolkit resource",
            suspend_status.clone(),
        );
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            reconcile_total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            reconcile_errors.clone(),
        );
        registry.register(
            "sluice_reconcile_step_duration_seconds",
            "Time spent in each step of a reconcile, by kind and step",
            step_duration.clone(),
        );
        register(&mut registry);
        Self {
            registry: Arc::new(registry),
            reconcile_duration,
            reconcile_condition,
            suspend_status,
            reconcile_total,
            reconcile_errors,
            step_duration,
        }
    }

    /// Observes the duration of one reconcile step of `kind`.
    pub fn record_step(&self, kind: &str, step: &'static str, duration: Duration) {
        self.step_duration
            .get_or_create(&StepLabels {
                kind: kind.to_owned(),
                step,
            })
            .observe(duration.as_secs_f64());
    }

    /// Observes one reconcile's duration.
    pub fn record_duration(&self, object: &ObjectLabels, duration: Duration) {
        self.reconcile_duration
            .get_or_create(object)
            .observe(duration.as_secs_f64());
    }

    /// Sets the condition's current status to 1 and its other statuses (and Deleted) to 0.
    pub fn record_condition(&self, object: &ObjectLabels, type_: &str, status: ConditionStatus) {
        self.set_condition_series(object, type_, status.as_str());
    }

    /// Marks the condition series of a deleted object: Deleted=1, every other status 0.
    pub fn record_condition_deleted(&self, object: &ObjectLabels, type_: &str) {
        self.set_condition_series(object, type_, CONDITION_DELETED);
    }

    fn set_condition_series(&self, object: &ObjectLabels, type_: &str, current: &str) {
        for status in ALL_STATUSES {
            let labels = ConditionLabels {
                kind: object.kind.clone(),
                name: object.name.clone(),
                namespace: object.namespace.clone(),
                r#type: type_.to_owned(),
                status,
            };
            self.reconcile_condition
                .get_or_create(&labels)
                .set(i64::from(status == current));
        }
    }

    /// Records whether the object is suspended.
    pub fn record_suspend(&self, object: &ObjectLabels, suspended: bool) {
        self.suspend_status
            .get_or_create(object)
            .set(i64::from(suspended));
    }

    /// Creates the controller's reconcile counters at zero, as controller-runtime does on start.
    pub fn register_controller(&self, controller: &str) {
        for result in [
            ReconcileResult::Success,
            ReconcileResult::Error,
            ReconcileResult::RequeueAfter,
        ] {
            let _zero = self.reconcile_total.get_or_create(&ResultLabels {
                controller: controller.to_owned(),
                result: result.as_str(),
            });
        }
        let _zero = self.reconcile_errors.get_or_create(&ControllerLabels {
            controller: controller.to_owned(),
        });
    }

    /// Counts one reconcile outcome; errors also increment the error counter.
    pub fn record_reconcile(&self, controller: &str, result: ReconcileResult) {
        self.reconcile_total
            .get_or_create(&ResultLabels {
                controller: controller.to_owned(),
                result: result.as_str(),
            })
            .inc();
        if result == ReconcileResult::Error {
            self.reconcile_errors
                .get_or_create(&ControllerLabels {
                    controller: controller.to_owned(),
                })
                .inc();
        }
    }

    /// The OpenMetrics text exposition of every registered metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// An axum router serving `GET /metrics`.
    pub fn router(&self) -> Router {
        let metrics = self.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    match metrics.encode() {
                        Ok(text) => {
                            ([(CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response()
                        }
                        Err(error) => {
                            tracing::error!(%error, "encoding metrics failed");
                            (StatusCode::INTERNAL_SERVER_ERROR, "encoding metrics failed")
                                .into_response()
                        }
                    }
                }
            }),
        )
    }
}

/// Flux's buckets: 10ns to 10s in powers of ten.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1e-8, 10.0, 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find(|line| line.starts_with(series))
            .and_then(|line| line.rsplit(' ').next())
            .map(str::to_owned)
    }

    #[test]
    fn condition_gauge_zeroes_other_statuses() {
        let metrics = Metrics::new();
        let object = ObjectLabels::new("GitRepository", "flux-system", "podinfo");
        metrics.record_condition(&object, "Ready", ConditionStatus::False);
        metrics.record_condition(&object, "Ready", ConditionStatus::True);
        let text = metrics.encode().expect("encodes");
        let series = |status: &str| {
            format!(
                "gotk_reconcile_condition{{kind=\"GitRepository\",name=\"podinfo\",namespace=\"flux-system\",type=\"Ready\",status=\"{status}\"}}"
            )
        };
        assert_eq!(sample(&text, &series("True")).as_deref(), Some("1"));
        assert_eq!(sample(&text, &series("False")).as_deref(), Some("0"));
        assert_eq!(sample(&text, &series("Unknown")).as_deref(), Some("0"));
        assert_eq!(sample(&text, &series("Deleted")).as_deref(), Some("0"));
        metrics.record_condition_deleted(&object, "Ready");
        let text = metrics.encode().expect("encodes");
        assert_eq!(sample(&text, &series("True")).as_deref(), Some("0"));
        assert_eq!(sample(&text, &series("Deleted")).as_deref(), Some("1"));
    }

    #[test]
    fn exposes_all_families() {
        let metrics = Metrics::new();
        let object = ObjectLabels::new("Kustomization", "apps", "web");
        metrics.record_duration(&object, Duration::from_millis(1500));
        metrics.record_suspend(&object, true);
        metrics.record_reconcile("kustomization", ReconcileResult::RequeueAfter);
        metrics.record_reconcile("kustomization", ReconcileResult::Error);
        let text = metrics.encode().expect("encodes");
        assert!(text.contains("# TYPE gotk_reconcile_duration_seconds histogram"));
        assert!(text.contains(
            "gotk_reconcile_duration_seconds_count{kind=\"Kustomization\",name=\"web\",namespace=\"apps\"} 1"
        ));
        assert!(text.contains(
            "gotk_suspend_status{kind=\"Kustomization\",name=\"web\",namespace=\"apps\"} 1"
        ));
        assert!(text.contains(
            "controller_runtime_reconcile_total{controller=\"kustomization\",result=\"requeue_after\"} 1"
        ));
        assert!(text.contains(
            "controller_runtime_reconcile_total{controller=\"kustomization\",result=\"error\"} 1"
        ));
        assert!(
            text.contains(
                "controller_runtime_reconcile_errors_total{controller=\"kustomization\"} 1"
            )
        );
    }

    #[test]
    fn registered_controllers_start_at_zero() {
        let metrics = Metrics::new();
        metrics.register_controller("bucket");
        let text = metrics.encode().expect("encodes");
        assert!(
            text.contains("controller_runtime_reconcile_errors_total{controller=\"bucket\"} 0")
        );
        assert!(text.contains(
            "controller_runtime_reconcile_total{controller=\"bucket\",result=\"success\"} 0"
        ));
        assert!(!text.contains(".."), "help texts end with a single period");
    }

    #[test]
    fn step_durations_are_exported_by_kind_and_step() {
        let metrics = Metrics::new();
        metrics.record_step("Kustomization", "apply", Duration::from_millis(250));
        metrics.record_step("Kustomization", "apply", Duration::from_millis(750));
        let text = metrics.encode().expect("encodes");
        let series =
            "sluice_reconcile_step_duration_seconds_sum{kind=\"Kustomization\",step=\"apply\"} 1.0";
        assert!(text.contains(series), "{text}");
    }

    #[test]
    fn extra_metrics_share_the_registry() {
        let counter = Counter::<u64>::default();
        let metrics = Metrics::with_extra_metrics(|registry| {
            registry.register("sluice_test_events", "Test counter", counter.clone());
        });
        counter.inc();
        assert!(
            metrics
                .encode()
                .expect("encodes")
                .contains("sluice_test_events_total 1")
        );
    }
}
