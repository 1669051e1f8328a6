//! ImagePolicy steps: resolve the ImageRepository (namespace rules and `accessFrom`), compile the
//! policy, select the latest tag from the stored tags, reflect its digest per
//! `digestReflectionPolicy`, and record `latestRef` / `observedPreviousRef`.

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, ResourceExt};
use sluice_api::image::{ImagePolicy, ImageRef, ImageRepository, ReflectionPolicy};
use sluice_api::meta::reason;
use sluice_registry::ImageName;
use sluice_runtime::{Lifecycle, ObjectEvent, Outcome, describe_kube_error};

use super::access::access_for;
use super::imagerepository::{key_of, registry_failure};
use super::{ImageContext, reasons};
use crate::policy::TagSelector;

/// Flux's Ready message for a resolved policy.
pub fn resolved_summary(object: &ImagePolicy) -> String {
    let latest = object
        .status
        .as_ref()
        .and_then(|status| status.latest_ref.clone())
        .unwrap_or_default();
    resolution_message(&latest, None)
}

fn resolution_message(latest: &ImageRef, previous: Option<&ImageRef>) -> String {
    let mut message = format!(
        "Latest image tag for {} resolved to {}",
        latest.name, latest.tag
    );
    if !latest.digest.is_empty() {
        message.push_str(&format!(" with digest {}", latest.digest));
    }
    if let Some(previous) = previous {
        message.push_str(&format!(" (previously {previous})"));
    }
    message
}

/// Runs the steps; `Ok` when `latestRef` is up to date.
pub async fn reconcile(
    context: &ImageContext,
    object: &mut ImagePolicy,
    lifecycle: &Lifecycle<'_, ImagePolicy>,
) -> Result<(), Outcome> {
    let selector = TagSelector::from_spec(&object.spec).map_err(|e| {
        if e.is_spec_error() {
            Outcome::stalled(reasons::INVALID_POLICY, e.to_string())
        } else {
            Outcome::retry(reason::RECONCILIATION_FAILED, e.to_string())
        }
    })?;
    let repository = lifecycle
        .step("repository", repository_of(context, object))
        .await?;
    let key = key_of(&repository);
    scanned_current_image(&repository)?;
    let stored = context
        .store
        .get(&key)
        .await
        .map_err(|e| Outcome::retry(reasons::STORAGE_OPERATION_FAILED, e.to_string()))?;
    let Some(stored) = stored.filter(|stored| !stored.tags.is_empty()) else {
        return Err(Outcome::waiting(
            reason::DEPENDENCY_NOT_READY,
            format!("no tags found for ImageRepository '{key}' yet; waiting for its scan"),
        ));
    };
    let tag = selector
        .select(&stored.tags)
        .map_err(|e| Outcome::retry(reason::RECONCILIATION_FAILED, e.to_string()))?
        .to_owned();
    let mut latest = ImageRef {
        name: repository.spec.image.clone(),
        tag,
        digest: String::new(),
    };
    let current = object.status.as_ref().and_then(|s| s.latest_ref.clone());
    latest.digest = lifecycle
        .step(
            "digest",
            reflect_digest(context, object, &repository, &latest, current.as_ref()),
        )
        .await?;
    let status = object.status.get_or_insert_with(Default::default);
    let changed = current.as_ref() != Some(&latest);
    if changed {
        if current.is_some() {
            status.observed_previous_ref = current.clone();
        }
        status.latest_ref = Some(latest.clone());
        let message = resolution_message(&latest, current.as_ref());
        lifecycle.publish_after_status(ObjectEvent::info(reason::SUCCEEDED, message));
    }
    Ok(())
}

/// Waits while the repository's stored tags belong to another image than its `spec.image`
/// (changed, not rescanned yet), so a tag is never paired with the wrong image name.
fn scanned_current_image(repository: &ImageRepository) -> Result<(), Outcome> {
    let wanted = ImageName::parse(&repository.spec.image).map(|name| name.to_string());
    let scanned = repository
        .status
        .as_ref()
        .and_then(|status| status.canonical_image_name.as_deref());
    match wanted {
        Ok(wanted) if scanned.is_none_or(|scanned| scanned == wanted) => Ok(()),
        _ => Err(Outcome::waiting(
            reason::DEPENDENCY_NOT_READY,
            format!(
                "ImageRepository '{}/{}' has not scanned {} yet",
                repository.namespace().unwrap_or_default(),
                repository.name_any(),
                repository.spec.image
            ),
        )),
    }
}

/// The referenced ImageRepository, if the namespace rules and its `accessFrom` allow it.
async fn repository_of(
    context: &ImageContext,
    object: &ImagePolicy,
) -> Result<ImageRepository, Outcome> {
    let own_namespace = object.namespace().unwrap_or_default();
    let reference = &object.spec.image_repository_ref;
    let namespace = reference.namespace.clone().unwrap_or(own_namespace.clone());
    let cross_namespace = namespace != own_namespace;
    if cross_namespace && context.flags.no_cross_namespace_refs {
        return Err(Outcome::stalled(
            reason::ACCESS_DENIED,
            format!(
                "cross-namespace reference to ImageRepository '{namespace}/{}' is not allowed (--no-cross-namespace-refs); reference an ImageRepository in namespace '{own_namespace}'",
                reference.name
            ),
        ));
    }
    let client = &context.runtime.client;
    let repositories: Api<ImageRepository> = Api::namespaced(client.clone(), &namespace);
    let repository = repositories
        .get_opt(&reference.name)
        .await
        .map_err(|e| Outcome::retry(reason::RECONCILIATION_FAILED, describe_kube_error(&e)))?
        .ok_or_else(|| {
            Outcome::waiting(
                reason::DEPENDENCY_NOT_READY,
                format!("ImageRepository '{namespace}/{}' not found", reference.name),
            )
        })?;
    if cross_namespace {
        check_access(context, &repository, &own_namespace).await?;
    }
    Ok(repository)
}

/// Refuses a cross-namespace reference unless the repository's `accessFrom` admits `namespace`.
async fn check_access(
    context: &ImageContext,
    repository: &ImageRepository,
    namespace: &str,
) -> Result<(), Outcome> {
    let namespaces: Api<Namespace> = Api::all(context.runtime.client.clone());
    let labels = namespaces
        .get(namespace)
        .await
        .map_err(|e| Outcome::retry(reason::RECONCILIATION_FAILED, describe_kube_error(&e)))?
        .labels()
        .clone();
    let admitted = repository
        .spec
        .access_from
        .as_ref()
        .is_some_and(|acl| acl.admits(&labels));
    if admitted {
        return Ok(());
    }
    Err(Outcome::retry(
        reason::ACCESS_DENIED,
        format!(
            "ImageRepository '{}/{}' does not grant access to namespace '{namespace}' (spec.accessFrom)",
            repository.namespace().unwrap_or_default(),
            repository.name_any()
        ),
    ))
}

/// The digest of `latest` per `digestReflectionPolicy`: never, once per tag, or every time.
async fn reflect_digest(
    context: &ImageContext,
    object: &ImagePolicy,
    repository: &ImageRepository,
    latest: &ImageRef,
    current: Option<&ImageRef>,
) -> Result<String, Outcome> {
    match object.effective_digest_reflection_policy() {
        ReflectionPolicy::Never => return Ok(String::new()),
        ReflectionPolicy::IfNotPresent => {
            if let Some(current) = current.filter(|current| {
                current.name == latest.name
                    && current.tag == latest.tag
                    && !current.digest.is_empty()
            }) {
                return Ok(current.digest.clone());
            }
        }
        ReflectionPolicy::Always => {}
    }
    let image = ImageName::parse(&repository.spec.image)
        .map_err(|e| Outcome::retry(reasons::IMAGE_URL_INVALID, e.to_string()))?;
    let timeout = repository
        .effective_timeout()
        .unwrap_or(sluice_registry::DEFAULT_TIMEOUT);
    let access = access_for(&context.runtime.client, repository, &image, timeout)
        .await
        .map_err(|e| Outcome::retry(reason::AUTHENTICATION_FAILED, e.to_string()))?;
    let canonical = image.to_string();
    let lookup = context
        .registry
        .manifest_digest(&canonical, &latest.tag, &access.settings);
    tokio::time::timeout(timeout, lookup)
        .await
        .map_err(|_| {
            Outcome::retry(
                reasons::READ_OPERATION_FAILED,
                format!(
                    "resolving the digest of {canonical}:{} timed out",
                    latest.tag
                ),
            )
        })?
        .map_err(|e| registry_failure(&e, |text| access.redact(text)))
}
