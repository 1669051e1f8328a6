//! Step 6: the health verdict of what was applied (`wait`, or `healthChecks`). A wait never
//! holds a worker: on the local cluster, health is read from the drift watches and an object
//! settling triggers the Kustomization at once; pending checks are also re-evaluated every
//! `--health-check-interval` until the timeout, measured from when this build of this
//! generation was first checked.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use kube::ResourceExt;
use serde_json::{Value, json};
use sluice_api::FluxObject;
use sluice_api::duration::format_duration;
use sluice_api::kustomize::Kustomization;
use sluice_api::meta::reason;
use sluice_runtime::Outcome;

use super::Context;
use crate::apply::{Action, ApplyReport, Change};
use crate::cel::HealthRules;
use crate::cluster::Cluster;
use crate::health::{HealthReport, check_all};
use crate::inventory::PruneReport;
use crate::objects::object_id;

/// What the health checks concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthVerdict {
    /// Nothing is health-checked.
    NotChecked,
    /// Every object is healthy, after waiting this long.
    Passed { after: Duration },
    /// Some objects are still progressing; checked again later.
    Pending { message: String },
    /// An object failed, or the timeout passed.
    Failed { message: String },
}

impl HealthVerdict {
    /// The reconcile's outcome: pending checks are re-evaluated after `interval`.
    pub fn outcome(&self, interval: Duration) -> Outcome {
        match self {
            Self::NotChecked | Self::Passed { .. } => Outcome::Success,
            Self::Pending { message } => Outcome::Progressing {
                message: message.clone(),
                after: interval,
            },
            Self::Failed { message } => Outcome::retry(reason::HEALTH_CHECK_FAILED, message),
        }
    }
}

/// What a reconcile applied and pruned, kept while its health is pending.
#[derive(Debug, Clone)]
pub struct AppliedSet {
    pub change_set: ApplyReport,
    pub pruned: PruneReport,
}

/// A health check that has not passed yet: the build it waits for, when the wait began, and
/// what that build's reconcile applied.
#[derive(Debug, Clone)]
struct HealthWait {
    generation: Option<i64>,
    digest: String,
    started: Instant,
    applied: Option<AppliedSet>,
}

/// The pending health checks, keyed by `namespace/name` of the Kustomization.
#[derive(Debug, Default)]
pub struct HealthWaits(Mutex<HashMap<String, HealthWait>>);

impl HealthWaits {
    /// When the wait for this generation and build began (now, if it is new).
    fn start(&self, key: &str, generation: Option<i64>, digest: &str) -> Instant {
        let mut waits = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = || HealthWait {
            generation,
            digest: digest.to_owned(),
            started: Instant::now(),
            applied: None,
        };
        let wait = waits.entry(key.to_owned()).or_insert_with(fresh);
        if wait.generation != generation || wait.digest != digest {
            *wait = fresh();
        }
        wait.started
    }

    /// Keeps what the reconcile of the current wait of `key` applied, unless already kept.
    fn keep_applied(&self, key: &str, change_set: &ApplyReport, pruned: &PruneReport) {
        let mut waits = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(wait) = waits.get_mut(key)
            && wait.applied.is_none()
        {
            wait.applied = Some(AppliedSet {
                change_set: change_set.clone(),
                pruned: pruned.clone(),
            });
        }
    }

    /// What was applied for the wait of `key`, if it waits for this generation and build.
    fn applied(&self, key: &str, generation: Option<i64>, digest: &str) -> Option<AppliedSet> {
        let waits = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let wait = waits.get(key)?;
        (wait.generation == generation && wait.digest == digest)
            .then(|| wait.applied.clone())
            .flatten()
    }

    /// Forgets the wait of `key`.
    pub fn forget(&self, key: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

/// `spec.healthChecks[index]` has no apiVersion and its object is not in the build.
#[derive(Debug, thiserror::Error)]
#[error(
    "spec.healthChecks[{index}].apiVersion is required for {kind} {name} which is not in the build"
)]
pub struct MissingApiVersion {
    index: usize,
    kind: String,
    name: String,
}

/// The `namespace/name` key of a Kustomization's pending health check.
pub fn wait_key(ks: &Kustomization) -> String {
    format!("{}/{}", ks.namespace().unwrap_or_default(), ks.name_any())
}

/// Whether health is read from the drift watches: they watch the local cluster only.
fn watched(context: &Context, ks: &Kustomization) -> bool {
    context.flags.watch_drift && ks.spec.kube_config.is_none()
}

/// What the pending health wait of this generation and build applied, when nothing calls for a
/// new apply: no object drifted since and no `reconcile.fluxcd.io/requestedAt` request. The
/// health re-check then applies nothing, as Flux's in-reconcile wait does not.
pub fn pending_apply(context: &Context, ks: &Kustomization, digest: &str) -> Option<AppliedSet> {
    if !watched(context, ks) || ks.reconcile_request().requested {
        return None;
    }
    let applied = context
        .health_waits
        .applied(&wait_key(ks), ks.metadata.generation, digest)?;
    let drifted = context
        .drift
        .take_drift(&ks.namespace().unwrap_or_default(), &ks.name_any());
    (!drifted).then_some(applied)
}

/// Checks the health of the applied objects once; a health check naming an object of unknown
/// apiVersion stalls. While pending, the wait keeps what was applied.
pub async fn assess(
    context: &Context,
    ks: &Kustomization,
    cluster: &Cluster,
    change_set: &ApplyReport,
    pruned: &PruneReport,
    digest: &str,
    timeout: Duration,
) -> Result<HealthVerdict, Outcome> {
    let changes = &change_set.changes;
    let targets = targets(ks, changes)
        .map_err(|error| Outcome::stalled(reason::HEALTH_CHECK_FAILED, error.to_string()))?;
    if targets.is_empty() {
        return Ok(HealthVerdict::NotChecked);
    }
    let key = wait_key(ks);
    let started = context
        .health_waits
        .start(&key, ks.metadata.generation, digest);
    let watched = watched(context, ks);
    let (namespace, name) = (ks.namespace().unwrap_or_default(), ks.name_any());
    if watched {
        // Before reading health, so an object settling meanwhile still triggers a reconcile.
        context.drift.await_health(&namespace, &name, true);
    }
    let rules = HealthRules::compile(&ks.spec.health_check_exprs)
        .map_err(|error| Outcome::stalled(reason::INVALID_CEL_EXPRESSION, error.to_string()))?;
    let report = check_all(cluster, &targets, &rules, |object| {
        watched
            .then(|| {
                context
                    .drift
                    .cached_health(&object_id(object), written_generation(changes, object))
            })
            .flatten()
    })
    .await;
    let verdict = judge(&report, started.elapsed(), timeout);
    if matches!(verdict, HealthVerdict::Pending { .. }) {
        context.health_waits.keep_applied(&key, change_set, pruned);
    } else {
        context.health_waits.forget(&key);
        context.drift.await_health(&namespace, &name, false);
    }
    Ok(verdict)
}

/// The generation this reconcile wrote for `object`, which a cached health must have seen.
fn written_generation(changes: &[Change], object: &Value) -> Option<i64> {
    let id = object_id(object);
    changes
        .iter()
        .find(|change| change.id == id)
        .and_then(|change| change.written.as_ref())
        .and_then(|written| written.generation)
}

/// The verdict on one round of checks, `waited` into a wait of at most `timeout`.
fn judge(report: &HealthReport, waited: Duration, timeout: Duration) -> HealthVerdict {
    if report.healthy() {
        return HealthVerdict::Passed { after: waited };
    }
    if !report.failed.is_empty() {
        return HealthVerdict::Failed {
            message: format!(
                "health check failed after {}: {}",
                format_duration(waited),
                HealthReport::describe(&report.failed)
            ),
        };
    }
    if waited >= timeout {
        return HealthVerdict::Failed {
            message: format!(
                "health check failed after {}: timeout waiting for: [{}]",
                format_duration(waited),
                HealthReport::describe(&report.pending)
            ),
        };
    }
    HealthVerdict::Pending {
        message: format!(
            "Health check in progress (timeout {}): waiting for [{}]",
            format_duration(timeout),
            HealthReport::describe(&report.pending)
        ),
    }
}

/// Objects whose health gates readiness: all applied ones with `wait`, else `healthChecks`.
fn targets(ks: &Kustomization, changes: &[Change]) -> Result<Vec<Value>, MissingApiVersion> {
    let spec = &ks.spec;
    if spec.wait {
        return Ok(changes
            .iter()
            .filter(|change| change.action != Action::Skipped)
            .map(|change| change.desired.clone())
            .collect());
    }
    let own = ks.namespace().unwrap_or_default();
    spec.health_checks
        .iter()
        .enumerate()
        .map(|(index, check)| {
            let applied = || {
                changes
                    .iter()
                    .find(|change| change.id.kind == check.kind && change.id.name == check.name)
                    .and_then(|change| change.desired["apiVersion"].as_str().map(str::to_owned))
            };
            let api_version =
                check
                    .api_version
                    .clone()
                    .or_else(applied)
                    .ok_or_else(|| MissingApiVersion {
                        index,
                        kind: check.kind.clone(),
                        name: check.name.clone(),
                    })?;
            Ok(json!({
                "apiVersion": api_version,
                "kind": check.kind,
                "metadata": {
                    "name": check.name,
                    "namespace": check.namespace.clone().unwrap_or_else(|| own.clone()),
                },
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::health::Health;

    use super::*;

    fn report(pending: &[&str], failed: &[&str]) -> HealthReport {
        let entries = |subjects: &[&str], health: Health| {
            subjects
                .iter()
                .map(|subject| ((*subject).to_owned(), health.clone()))
                .collect()
        };
        HealthReport {
            pending: entries(pending, Health::InProgress("starting".into())),
            failed: entries(failed, Health::Failed("crashed".into())),
        }
    }

    #[test]
    fn verdicts_follow_flux() {
        let (short, timeout) = (Duration::from_secs(2), Duration::from_secs(60));
        assert_eq!(
            judge(&report(&[], &[]), short, timeout),
            HealthVerdict::Passed { after: short }
        );
        assert_eq!(
            judge(&report(&["Deployment/apps/web"], &[]), short, timeout),
            HealthVerdict::Pending {
                message: "Health check in progress (timeout 1m0s): waiting for [Deployment/apps/web status: 'InProgress': starting]".into()
            }
        );
        assert_eq!(
            judge(&report(&["Deployment/apps/web"], &[]), timeout, timeout),
            HealthVerdict::Failed {
                message: "health check failed after 1m0s: timeout waiting for: [Deployment/apps/web status: 'InProgress': starting]".into()
            }
        );
        let failed = judge(
            &report(&["Deployment/apps/a"], &["Pod/apps/b"]),
            short,
            timeout,
        );
        assert_eq!(
            failed.outcome(short),
            Outcome::retry(
                reason::HEALTH_CHECK_FAILED,
                "health check failed after 2s: Pod/apps/b status: 'Failed': crashed"
            )
        );
        assert_eq!(
            HealthVerdict::Pending {
                message: "m".into()
            }
            .outcome(short),
            Outcome::Progressing {
                message: "m".into(),
                after: short
            }
        );
    }

    #[test]
    fn a_wait_restarts_for_a_new_build_or_generation() {
        let waits = HealthWaits::default();
        let first = waits.start("apps/web", Some(1), "sha256:a");
        assert_eq!(waits.start("apps/web", Some(1), "sha256:a"), first);
        std::thread::sleep(Duration::from_millis(5));
        assert!(waits.start("apps/web", Some(1), "sha256:b") > first);
        waits.forget("apps/web");
        assert!(waits.0.lock().unwrap().is_empty());
    }
}
