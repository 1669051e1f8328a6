//! ImageRepository steps: validate the spec, decide whether to scan (Flux's order), list the
//! tags with the object's credentials, drop excluded ones, store them and record the result.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use sluice_api::FluxObject;
use sluice_api::image::{ImageProvider, ImageRepository, ScanResult};
use sluice_api::meta::condition_type::READY;
use sluice_api::meta::reason;
use sluice_registry::{ImageName, RegistryError};
use sluice_runtime::conditions::ConditionStatus;
use sluice_runtime::{Failure, Lifecycle, ObjectEvent, Outcome};

use super::access::access_for;
use super::scan::{self, Exclusions, ScanDecision, ScanInputs, ScanReason};
use super::{ImageContext, reasons};
use crate::storage::{RepositoryKey, StoredTags};

/// What the validated spec gives the scan.
struct Validated {
    image: ImageName,
    canonical_name: String,
    exclusion_list: Vec<String>,
    exclusions: Exclusions,
    timeout: Duration,
    interval: Duration,
}

/// Flux's Ready message for a scanned repository.
pub fn scan_summary(object: &ImageRepository) -> String {
    let result = object
        .status
        .as_ref()
        .and_then(|status| status.last_scan_result.clone())
        .unwrap_or_default();
    format!(
        "successful scan: found {} tags with checksum {}",
        result.tag_count, result.revision
    )
}

/// The storage key of an ImageRepository.
pub fn key_of(object: &ImageRepository) -> RepositoryKey {
    RepositoryKey::new(&object.namespace().unwrap_or_default(), &object.name_any())
}

/// Runs the steps; `Ok` when the repository is up to date (scanned now or not due yet).
pub async fn reconcile(
    context: &ImageContext,
    object: &mut ImageRepository,
    lifecycle: &Lifecycle<'_, ImageRepository>,
) -> Result<(), Outcome> {
    let validated = validate(object)?;
    let key = key_of(object);
    let stored = context
        .store
        .get(&key)
        .await
        .map_err(|e| Outcome::retry(reasons::STORAGE_OPERATION_FAILED, e.to_string()))?;
    let inputs = ScanInputs {
        canonical_name: &validated.canonical_name,
        exclusion_list: &validated.exclusion_list,
        tags_stored: stored.is_some(),
        retrying: context.failed_scans.contains(&key),
        interval: validated.interval,
        now: Timestamp::now(),
    };
    let reason = match scan::decide(object, &inputs) {
        ScanDecision::Wait(remaining) => {
            tracing::debug!(namespace = %key.namespace, name = %key.name, next_scan_s = remaining.as_secs(), "no scan due");
            return Ok(());
        }
        ScanDecision::Scan(reason) => reason,
    };
    let previous_ready = object.condition(READY).cloned();
    let scanned = lifecycle
        .step("scan", scan(context, object, &validated, reason))
        .await?;
    let stored = lifecycle
        .step("store", context.store.put(&key, scanned))
        .await
        .map_err(|e| Outcome::retry(reasons::STORAGE_OPERATION_FAILED, e.to_string()))?;
    record(object, &validated, &stored);
    let summary = scan_summary(object);
    let unchanged = previous_ready.is_some_and(|ready| {
        ready.status == ConditionStatus::True.as_str() && ready.message == summary
    });
    if !unchanged {
        lifecycle.publish_after_status(
            ObjectEvent::info(reason::SUCCEEDED, summary).with_revision(stored.revision.clone()),
        );
    }
    Ok(())
}

/// Checks what only a spec change can fix: provider, image, exclusion list, durations.
fn validate(object: &ImageRepository) -> Result<Validated, Outcome> {
    let provider = object.effective_provider();
    if provider != ImageProvider::Generic {
        let name = serde_json::to_value(provider).unwrap_or_default();
        return Err(Outcome::stalled(
            reason::INVALID_PROVIDER_CONFIGURATION,
            format!(
                "spec.provider {name} (cloud workload identity) is not supported by this image-reflector-controller; use spec.provider 'generic' with spec.secretRef"
            ),
        ));
    }
    let image = ImageName::parse(&object.spec.image)
        .map_err(|e| Outcome::stalled(reasons::IMAGE_URL_INVALID, e.to_string()))?;
    let exclusion_list = object.effective_exclusion_list();
    let exclusions = Exclusions::compile(&exclusion_list)
        .map_err(|e| Outcome::stalled(reasons::INVALID_EXCLUSION_LIST, e.to_string()))?;
    let invalid_duration = |field: &str, error: &dyn std::fmt::Display| {
        Outcome::stalled(
            reasons::INTERVAL_NOT_CONFIGURED,
            format!("invalid {field}: {error}"),
        )
    };
    let interval = object
        .interval_duration()
        .map_err(|e| invalid_duration("spec.interval", &e))?;
    let timeout = object
        .effective_timeout()
        .map_err(|e| invalid_duration("spec.timeout", &e))?;
    Ok(Validated {
        canonical_name: image.to_string(),
        image,
        exclusion_list,
        exclusions,
        timeout,
        interval,
    })
}

/// Lists the tags within the timeout and drops the excluded ones.
async fn scan(
    context: &ImageContext,
    object: &ImageRepository,
    validated: &Validated,
    reason: ScanReason,
) -> Result<Vec<String>, Outcome> {
    let access = access_for(
        &context.runtime.client,
        object,
        &validated.image,
        validated.timeout,
    )
    .await
    .map_err(|e| Outcome::retry(reason::AUTHENTICATION_FAILED, e.to_string()))?;
    tracing::info!(
        namespace = %object.namespace().unwrap_or_default(),
        name = %object.name_any(),
        image = %validated.canonical_name,
        reason = reason.as_str(),
        "scanning"
    );
    let listing = context
        .registry
        .list_tags(&validated.canonical_name, &access.settings);
    let tags = tokio::time::timeout(validated.timeout, listing)
        .await
        .map_err(|_| {
            Outcome::retry(
                reasons::READ_OPERATION_FAILED,
                format!(
                    "listing the tags of {} took longer than spec.timeout ({:?}); raise spec.timeout",
                    validated.canonical_name, validated.timeout
                ),
            )
        })?
        .map_err(|e| registry_failure(&e, |text| access.redact(text)))?;
    Ok(validated.exclusions.filter(tags))
}

/// A registry error as Flux's reason: `AuthenticationFailed` or `ReadOperationFailed`.
pub fn registry_failure(error: &RegistryError, redact: impl Fn(&str) -> String) -> Outcome {
    let reason = if error.is_authentication_failure() {
        reason::AUTHENTICATION_FAILED
    } else {
        reasons::READ_OPERATION_FAILED
    };
    Outcome::Retry(Failure::new(reason, redact(&error.to_string())))
}

/// Records the scan in the status: result, canonical name and observed exclusion list.
fn record(object: &mut ImageRepository, validated: &Validated, stored: &Arc<StoredTags>) {
    let status = object.status.get_or_insert_with(Default::default);
    status.last_scan_result = Some(ScanResult {
        revision: stored.revision.clone(),
        tag_count: i64::try_from(stored.tags.len()).unwrap_or(i64::MAX),
        scan_time: Some(Time(Timestamp::now())),
        latest_tags: scan::latest_tags(&stored.tags),
    });
    status.canonical_image_name = Some(validated.canonical_name.clone());
    status.observed_exclusion_list = validated.exclusion_list.clone();
}

/// When the next scan is due for `object` as it was before its reconcile; `None` when a scan
/// would happen (the lifecycle then requeues after the interval).
pub fn next_scan_in(
    object: &ImageRepository,
    tags_stored: bool,
    retrying: bool,
) -> Option<Duration> {
    let validated = validate(object).ok()?;
    let inputs = ScanInputs {
        canonical_name: &validated.canonical_name,
        exclusion_list: &validated.exclusion_list,
        tags_stored,
        retrying,
        interval: validated.interval,
        now: Timestamp::now(),
    };
    match scan::decide(object, &inputs) {
        ScanDecision::Wait(remaining) => Some(remaining),
        ScanDecision::Scan(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use sluice_api::image::ImageRepositoryStatus;

    use super::*;

    fn scanned_seconds_ago(seconds: u64) -> ImageRepository {
        let mut object: ImageRepository = serde_json::from_value(serde_json::json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImageRepository",
            "metadata": {"name": "app", "namespace": "apps"},
            "spec": {"image": "ghcr.io/org/app", "interval": "5m"},
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let scan_time = Timestamp::now() - Duration::from_secs(seconds);
        object.status = Some(ImageRepositoryStatus {
            canonical_image_name: Some("ghcr.io/org/app".to_owned()),
            observed_exclusion_list: object.effective_exclusion_list(),
            last_scan_result: Some(ScanResult {
                scan_time: Some(Time(scan_time)),
                ..ScanResult::default()
            }),
            ..ImageRepositoryStatus::default()
        });
        object
    }

    #[test]
    fn requeue_waits_only_for_the_rest_of_the_interval() {
        let object = scanned_seconds_ago(60);
        let next = next_scan_in(&object, true, false).unwrap_or_default();
        assert!(
            next <= Duration::from_secs(240) && next > Duration::from_secs(230),
            "{next:?}"
        );
        assert_eq!(next_scan_in(&object, false, false), None, "no tags stored");
        assert_eq!(
            next_scan_in(&object, true, true),
            None,
            "retrying a failure"
        );
        assert_eq!(next_scan_in(&scanned_seconds_ago(400), true, false), None);
        assert_eq!(key_of(&object), RepositoryKey::new("apps", "app"));
    }
}
