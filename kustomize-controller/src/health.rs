//! Health assessment with kstatus-equivalent rules.

use kube::api::GroupVersionKind;
use serde_json::Value;
use sluice_api::meta::condition_type::{READY, RECONCILING, STALLED};
use sluice_runtime::describe_kube_error;

use crate::cel::{HealthRules, Verdict};
use crate::cluster::Cluster;
use crate::objects::{split_api_version, subject};

/// The health of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Fully reconciled by its controller.
    Current,
    /// Still progressing, with the reason.
    InProgress(String),
    /// Will not progress without a change, with the reason.
    Failed(String),
    /// Does not exist.
    NotFound,
}

impl From<Verdict> for Health {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Current => Self::Current,
            Verdict::InProgress(reason) => Self::InProgress(reason),
            Verdict::Failed(reason) => Self::Failed(reason),
        }
    }
}

impl Health {
    /// kstatus's name for the status, as Flux prints it.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Current => "Current",
            Self::InProgress(_) => "InProgress",
            Self::Failed(_) => "Failed",
            Self::NotFound => "NotFound",
        }
    }
}

fn int(value: &Value, pointer: &str) -> Option<i64> {
    value.pointer(pointer).and_then(Value::as_i64)
}

fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|condition| condition["type"] == type_)
}

fn condition_is(object: &Value, type_: &str, status: &str) -> bool {
    condition(object, type_).is_some_and(|condition| condition["status"] == status)
}

fn condition_message(object: &Value, type_: &str) -> String {
    condition(object, type_)
        .and_then(|condition| condition["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Assesses an object as read from the cluster.
pub fn assess(object: &Value) -> Health {
    let kind = object["kind"].as_str().unwrap_or_default();
    let group = split_api_version(object["apiVersion"].as_str().unwrap_or_default()).0;
    if let (Some(generation), Some(observed)) = (
        int(object, "/metadata/generation"),
        int(object, "/status/observedGeneration"),
    ) && observed < generation
    {
        return Health::InProgress(format!(
            "observed generation {observed} is behind generation {generation}"
        ));
    }
    match (group, kind) {
        ("apps", "Deployment") => deployment(object),
        ("apps", "StatefulSet") => stateful_set(object),
        ("apps", "DaemonSet") => daemon_set(object),
        ("apps", "ReplicaSet") => replica_set(object),
        ("batch", "Job") => job(object),
        ("", "Pod") => pod(object),
        ("", "PersistentVolumeClaim") => {
            if object.pointer("/status/phase") == Some(&Value::from("Bound")) {
                Health::Current
            } else {
                Health::InProgress("PVC is not Bound".to_owned())
            }
        }
        ("", "Service") => {
            let load_balancer = object.pointer("/spec/type") == Some(&Value::from("LoadBalancer"));
            let has_ingress = object
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .is_some_and(|ingress| !ingress.is_empty());
            if load_balancer && !has_ingress {
                Health::InProgress("LoadBalancer has no ingress address yet".to_owned())
            } else {
                Health::Current
            }
        }
        ("", "Namespace") => match object.pointer("/status/phase").and_then(Value::as_str) {
            Some("Terminating") => Health::InProgress("Namespace is terminating".to_owned()),
            _ => Health::Current,
        },
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            if condition_is(object, "NamesAccepted", "False") {
                Health::Failed(format!(
                    "CRD names not accepted: {}",
                    condition_message(object, "NamesAccepted")
                ))
            } else if condition_is(object, "Established", "True") {
                Health::Current
            } else {
                Health::InProgress("CRD is not Established".to_owned())
            }
        }
        ("", "ConfigMap" | "Secret" | "ServiceAccount") | ("batch", "CronJob") => Health::Current,
        _ => generic(object),
    }
}

/// Rules for kinds without a dedicated reader: Stalled/Reconciling/Ready conditions.
fn generic(object: &Value) -> Health {
    if condition_is(object, STALLED, "True") {
        return Health::Failed(condition_message(object, STALLED));
    }
    if condition_is(object, RECONCILING, "True") {
        return Health::InProgress(condition_message(object, RECONCILING));
    }
    if condition_is(object, READY, "False") {
        return Health::InProgress(condition_message(object, READY));
    }
    if let Some(generation) = int(object, "/metadata/generation")
        && object.pointer("/status").is_some()
        && let Some(ready) = condition(object, READY)
        && let Some(observed) = ready["observedGeneration"].as_i64()
        && observed < generation
    {
        return Health::InProgress("Ready condition is from an older generation".to_owned());
    }
    Health::Current
}

fn replicas_progress(desired: i64, object: &Value, fields: &[(&str, &str)]) -> Option<Health> {
    for (pointer, what) in fields {
        let actual = int(object, pointer).unwrap_or(0);
        if actual < desired {
            return Some(Health::InProgress(format!("{what}: {actual}/{desired}")));
        }
    }
    None
}

fn deployment(object: &Value) -> Health {
    if condition(object, "Progressing")
        .is_some_and(|condition| condition["reason"] == "ProgressDeadlineExceeded")
    {
        return Health::Failed(format!(
            "progress deadline exceeded: {}",
            condition_message(object, "Progressing")
        ));
    }
    if object.pointer("/status/observedGeneration").is_none() {
        return Health::InProgress("Deployment not yet observed by its controller".to_owned());
    }
    let desired = int(object, "/spec/replicas").unwrap_or(1);
    if let Some(progress) = replicas_progress(
        desired,
        object,
        &[
            ("/status/updatedReplicas", "Updated replicas"),
            ("/status/readyReplicas", "Ready replicas"),
            ("/status/availableReplicas", "Available replicas"),
        ],
    ) {
        return progress;
    }
    if int(object, "/status/replicas").unwrap_or(0) > desired {
        return Health::InProgress("Pending termination of old replicas".to_owned());
    }
    if !condition_is(object, "Available", "True") {
        return Health::InProgress("Deployment is not Available".to_owned());
    }
    Health::Current
}

fn stateful_set(object: &Value) -> Health {
    if object.pointer("/spec/updateStrategy/type") == Some(&Value::from("OnDelete")) {
        return Health::Current;
    }
    if object.pointer("/status/observedGeneration").is_none() {
        return Health::InProgress("StatefulSet not yet observed by its controller".to_owned());
    }
    let desired = int(object, "/spec/replicas").unwrap_or(1);
    if let Some(progress) = replicas_progress(
        desired,
        object,
        &[
            ("/status/readyReplicas", "Ready replicas"),
            ("/status/currentReplicas", "Current replicas"),
        ],
    ) {
        let partition = int(object, "/spec/updateStrategy/rollingUpdate/partition").unwrap_or(0);
        if partition == 0 {
            return progress;
        }
        let updated = int(object, "/status/updatedReplicas").unwrap_or(0);
        if updated < desired - partition {
            return Health::InProgress(format!(
                "Updated replicas: {updated}/{}",
                desired - partition
            ));
        }
        return Health::Current;
    }
    if object.pointer("/status/currentRevision") != object.pointer("/status/updateRevision") {
        return Health::InProgress("Rolling update in progress".to_owned());
    }
    Health::Current
}

fn daemon_set(object: &Value) -> Health {
    if object.pointer("/status/observedGeneration").is_none() {
        return Health::InProgress("DaemonSet not yet observed by its controller".to_owned());
    }
    let desired = int(object, "/status/desiredNumberScheduled").unwrap_or(0);
    replicas_progress(
        desired,
        object,
        &[
            ("/status/currentNumberScheduled", "Scheduled pods"),
            ("/status/updatedNumberScheduled", "Updated pods"),
            ("/status/numberAvailable", "Available pods"),
            ("/status/numberReady", "Ready pods"),
        ],
    )
    .unwrap_or(Health::Current)
}

fn replica_set(object: &Value) -> Health {
    if condition_is(object, "ReplicaFailure", "True") {
        return Health::InProgress(condition_message(object, "ReplicaFailure"));
    }
    let desired = int(object, "/spec/replicas").unwrap_or(1);
    replicas_progress(
        desired,
        object,
        &[
            ("/status/fullyLabeledReplicas", "Labelled replicas"),
            ("/status/availableReplicas", "Available replicas"),
            ("/status/readyReplicas", "Ready replicas"),
        ],
    )
    .unwrap_or(Health::Current)
}

fn job(object: &Value) -> Health {
    if condition_is(object, "Failed", "True") {
        return Health::Failed(format!(
            "Job failed: {}",
            condition_message(object, "Failed")
        ));
    }
    if condition_is(object, "Complete", "True") {
        return Health::Current;
    }
    Health::InProgress("Job has not completed".to_owned())
}

fn pod(object: &Value) -> Health {
    match object.pointer("/status/phase").and_then(Value::as_str) {
        Some("Succeeded" | "Failed") => Health::Current,
        Some("Running") if condition_is(object, READY, "True") => Health::Current,
        _ => {
            let crash_looping = object
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .is_some_and(|statuses| {
                    statuses.iter().any(|status| {
                        status.pointer("/state/waiting/reason")
                            == Some(&Value::from("CrashLoopBackOff"))
                    })
                });
            if crash_looping {
                Health::Failed("container in CrashLoopBackOff".to_owned())
            } else {
                Health::InProgress("Pod is not Ready".to_owned())
            }
        }
    }
}

/// Reads `object`'s live state and assesses it.
pub async fn check_object(cluster: &Cluster, object: &Value) -> Health {
    check_object_with(cluster, object, &HealthRules::default()).await
}

/// Reads `object`'s live state and assesses it, with `rules` deciding the kinds they cover.
pub async fn check_object_with(cluster: &Cluster, object: &Value, rules: &HealthRules) -> Health {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let (group, version) = split_api_version(api_version);
    let resolved = match cluster
        .resolve(&GroupVersionKind::gvk(group, version, kind))
        .await
    {
        Ok(resolved) => resolved,
        Err(error) => {
            return Health::InProgress(format!(
                "kind not resolvable: {}",
                describe_kube_error(&error)
            ));
        }
    };
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str);
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match cluster.api(&resolved, namespace).get_opt(name).await {
        Ok(Some(live)) => {
            let live = serde_json::to_value(live).unwrap_or(Value::Null);
            rules
                .assess(&live)
                .map_or_else(|| assess(&live), Health::from)
        }
        Ok(None) => Health::NotFound,
        Err(error) => Health::InProgress(format!("read failed: {}", describe_kube_error(&error))),
    }
}

/// Health of a set of objects.
#[derive(Debug, Default)]
pub struct HealthReport {
    /// Objects that are not Current yet, with their status.
    pub pending: Vec<(String, Health)>,
    /// Objects that failed.
    pub failed: Vec<(String, Health)>,
}

impl HealthReport {
    /// Whether every object is Current.
    pub fn healthy(&self) -> bool {
        self.pending.is_empty() && self.failed.is_empty()
    }

    /// Flux-style listing: `Kind/ns/name status: 'InProgress': reason`.
    pub fn describe(entries: &[(String, Health)]) -> String {
        entries
            .iter()
            .map(|(subject, health)| {
                let reason = match health {
                    Health::InProgress(reason) | Health::Failed(reason) => format!(": {reason}"),
                    Health::Current | Health::NotFound => String::new(),
                };
                format!("{subject} status: '{}'{reason}", health.label())
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Checks every object in `objects` once, reading live state only where `cached` has no answer;
/// `rules` decide the kinds they cover, always from live state.
pub async fn check_all(
    cluster: &Cluster,
    objects: &[Value],
    rules: &HealthRules,
    cached: impl Fn(&Value) -> Option<Health>,
) -> HealthReport {
    let mut report = HealthReport::default();
    for object in objects {
        let covered = rules.covers(
            object["apiVersion"].as_str().unwrap_or_default(),
            object["kind"].as_str().unwrap_or_default(),
        );
        let health = match (covered, cached(object)) {
            (false, Some(health)) => health,
            _ => check_object_with(cluster, object, rules).await,
        };
        match health {
            Health::Current => {}
            failed @ Health::Failed(_) => report.failed.push((subject(object), failed)),
            other => report.pending.push((subject(object), other)),
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_rules() {
        let mut deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"generation": 2},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 1}
        });
        assert!(matches!(assess(&deployment), Health::InProgress(_)));
        deployment["status"] = json!({
            "observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
            "readyReplicas": 2, "availableReplicas": 2,
            "conditions": [{"type": "Available", "status": "True"}]
        });
        assert_eq!(assess(&deployment), Health::Current);
        deployment["status"]["conditions"] = json!([
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "x"}
        ]);
        assert!(matches!(assess(&deployment), Health::Failed(_)));
    }

    #[test]
    fn custom_resource_rules() {
        let mut object = json!({"apiVersion": "example.com/v1", "kind": "Widget",
                                "metadata": {"generation": 1}});
        assert_eq!(assess(&object), Health::Current);
        object["status"] =
            json!({"conditions": [{"type": "Ready", "status": "False", "message": "waiting"}]});
        assert_eq!(assess(&object), Health::InProgress("waiting".into()));
        object["status"] =
            json!({"conditions": [{"type": "Stalled", "status": "True", "message": "bad"}]});
        assert_eq!(assess(&object), Health::Failed("bad".into()));
        object["status"] = json!({"observedGeneration": 1,
                                  "conditions": [{"type": "Ready", "status": "True"}]});
        assert_eq!(assess(&object), Health::Current);
    }

    #[test]
    fn built_in_kinds() {
        let job = json!({"apiVersion": "batch/v1", "kind": "Job",
                         "status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(assess(&job), Health::Current);
        let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": "Pending"}});
        assert!(matches!(assess(&pvc), Health::InProgress(_)));
        let service =
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "LoadBalancer"}});
        assert!(matches!(assess(&service), Health::InProgress(_)));
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                         "status": {"conditions": [{"type": "Established", "status": "True"}]}});
        assert_eq!(assess(&crd), Health::Current);
    }
}
