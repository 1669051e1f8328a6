//! Uniform access to the reconcile bookkeeping every Flux kind carries.

use std::time::Duration;

/// The condition type of [`FluxObject`]: Kubernetes' `metav1.Condition`.
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube_core::Resource;

use crate::duration::{DurationError, parse_duration};
use crate::image::{
    DEFAULT_DIGEST_REFRESH_INTERVAL, ImagePolicy, ImageRepository, ImageUpdateAutomation,
};
use crate::kustomize::Kustomization;
use crate::meta::condition_type::{
    IMAGE_NEGATIVE_POLARITY, KUSTOMIZATION_NEGATIVE_POLARITY, SOURCE_NEGATIVE_POLARITY,
};
use crate::meta::{Artifact, ReconcileRequest};
use crate::notification::{DEFAULT_RECEIVER_INTERVAL, Receiver};
use crate::source::{
    Bucket, GitRepository, HELM_REPOSITORY_DEFAULT_INTERVAL, HelmChart, HelmRepository,
    OCIRepository,
};

/// Status and spec fields shared machinery needs, implemented by the source kinds, Kustomization
/// and ImageRepository; implement it for
/// a kind of your own with [`impl_flux_object!`](crate::impl_flux_object).
pub trait FluxObject: Resource<DynamicType = ()> {
    /// Condition types this kind only sets while `True`.
    const NEGATIVE_POLARITY_CONDITIONS: &'static [&'static str];

    /// `status.conditions`, empty when there is no status.
    fn conditions(&self) -> &[Condition];
    /// Mutable `status.conditions`, creating the status if needed.
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    /// `status.observedGeneration`.
    fn observed_generation(&self) -> Option<i64>;
    /// Sets `status.observedGeneration`.
    fn set_observed_generation(&mut self, generation: i64);
    /// `status.lastHandledReconcileAt`.
    fn last_handled_reconcile_at(&self) -> Option<&str>;
    /// Sets `status.lastHandledReconcileAt`.
    fn set_last_handled_reconcile_at(&mut self, token: &str);
    /// `spec.suspend`.
    fn suspended(&self) -> bool;
    /// `spec.interval` as written, e.g. `5m`.
    fn interval(&self) -> &str;

    /// `spec.interval` parsed.
    fn interval_duration(&self) -> Result<Duration, DurationError> {
        parse_duration(self.interval())
    }

    /// The condition of the given type, if present.
    fn condition(&self, condition_type: &str) -> Option<&Condition> {
        self.conditions()
            .iter()
            .find(|condition| condition.type_ == condition_type)
    }

    /// The `reconcile.fluxcd.io/requestedAt` handshake for this object.
    fn reconcile_request(&self) -> ReconcileRequest<'_> {
        ReconcileRequest::evaluate(
            self.meta().annotations.as_ref(),
            self.last_handled_reconcile_at(),
        )
    }
}

/// Kinds that publish an artifact (GitRepository, OCIRepository, Bucket, HelmRepository, HelmChart).
pub trait SourceObject: FluxObject {
    /// `status.artifact`.
    fn artifact(&self) -> Option<&Artifact>;
    /// Mutable `status.artifact`, creating the status if needed.
    fn artifact_mut(&mut self) -> &mut Option<Artifact>;
}

/// Implements [`FluxObject`] for a kind shaped like Flux's: `spec.interval: String`,
/// `spec.suspend: bool`, and `status: Option<S>` where `S: Default` has `conditions: Vec<Condition>`,
/// `observed_generation: Option<i64>` and `last_handled_reconcile_at: Option<String>`.
///
/// The second argument lists the kind's negative-polarity conditions; it must include
/// [`STALLED`](crate::meta::condition_type::STALLED) and
/// [`RECONCILING`](crate::meta::condition_type::RECONCILING), which the shared lifecycle sets.
///
/// ```
/// use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
/// use kube_derive::CustomResource;
/// use schemars::JsonSchema;
/// use serde::{Deserialize, Serialize};
/// use sluice_api::FluxObject;
/// use sluice_api::meta::condition_type::{RECONCILING, STALLED};
///
/// #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
/// #[kube(group = "example.sluice.dev", version = "v1alpha1", kind = "Greeting", namespaced)]
/// #[kube(status = "GreetingStatus")]
/// # #[kube(crates(kube_core = "::kube_core"))] // this crate depends on kube-core, not kube
/// pub struct GreetingSpec {
///     pub interval: String,
///     #[serde(default)]
///     pub suspend: bool,
///     pub message: String,
/// }
///
/// #[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
/// #[serde(rename_all = "camelCase")]
/// pub struct GreetingStatus {
///     #[serde(default)]
///     pub conditions: Vec<Condition>,
///     pub observed_generation: Option<i64>,
///     pub last_handled_reconcile_at: Option<String>,
/// }
///
/// sluice_api::impl_flux_object!(Greeting, &[STALLED, RECONCILING]);
///
/// let spec = GreetingSpec { interval: "5m".into(), suspend: false, message: "Hello".into() };
/// let greeting = Greeting::new("hello", spec);
/// assert_eq!(greeting.interval_duration(), Ok(std::time::Duration::from_secs(300)));
/// assert!(greeting.condition("Ready").is_none());
/// ```
#[macro_export]
macro_rules! impl_flux_object {
    ($kind:ty, $negative_polarity:expr) => {
        $crate::impl_flux_object!(@with $kind, $negative_polarity, fn interval(&self) -> &str {
            &self.spec.interval
        });
    };
    ($kind:ty, $negative_polarity:expr, default_interval = $default:expr) => {
        $crate::impl_flux_object!(@with $kind, $negative_polarity, fn interval(&self) -> &str {
            self.spec.interval.as_deref().unwrap_or($default)
        });
    };
    (@with $kind:ty, $negative_polarity:expr, $($interval:tt)*) => {
        impl $crate::FluxObject for $kind {
            const NEGATIVE_POLARITY_CONDITIONS: &'static [&'static str] = $negative_polarity;

            fn conditions(&self) -> &[$crate::object::Condition] {
                self.status
                    .as_ref()
                    .map_or(&[], |status| status.conditions.as_slice())
            }

            fn conditions_mut(&mut self) -> &mut ::std::vec::Vec<$crate::object::Condition> {
                &mut self
                    .status
                    .get_or_insert_with(::std::default::Default::default)
                    .conditions
            }

            fn observed_generation(&self) -> ::std::option::Option<i64> {
                self.status.as_ref()?.observed_generation
            }

            fn set_observed_generation(&mut self, generation: i64) {
                self.status
                    .get_or_insert_with(::std::default::Default::default)
                    .observed_generation = ::std::option::Option::Some(generation);
            }

            fn last_handled_reconcile_at(&self) -> ::std::option::Option<&str> {
                self.status.as_ref()?.last_handled_reconcile_at.as_deref()
            }

            fn set_last_handled_reconcile_at(&mut self, token: &str) {
                self.status
                    .get_or_insert_with(::std::default::Default::default)
                    .last_handled_reconcile_at =
                    ::std::option::Option::Some(::std::borrow::ToOwned::to_owned(token));
            }

            fn suspended(&self) -> bool {
                self.spec.suspend
            }

            $($interval)*
        }
    };
}

macro_rules! impl_source_object {
    ($kind:ty $(, $default:ident = $interval:expr)?) => {
        impl_flux_object!($kind, SOURCE_NEGATIVE_POLARITY $(, $default = $interval)?);

        impl SourceObject for $kind {
            fn artifact(&self) -> Option<&Artifact> {
                self.status.as_ref()?.artifact.as_ref()
            }

            fn artifact_mut(&mut self) -> &mut Option<Artifact> {
                &mut self.status.get_or_insert_with(Default::default).artifact
            }
        }
    };
}

impl_source_object!(GitRepository);
impl_source_object!(OCIRepository);
impl_source_object!(Bucket);
impl_source_object!(HelmChart);
// An OCI HelmRepository has no interval (it is never fetched); a default one without it is
// fetched every minute, Flux's documented fallback.
impl_source_object!(
    HelmRepository,
    default_interval = HELM_REPOSITORY_DEFAULT_INTERVAL
);
impl_flux_object!(Kustomization, KUSTOMIZATION_NEGATIVE_POLARITY);
impl_flux_object!(ImageRepository, IMAGE_NEGATIVE_POLARITY);
impl_flux_object!(ImageUpdateAutomation, IMAGE_NEGATIVE_POLARITY);

// ImagePolicy's `spec.interval` is optional (only `digestReflectionPolicy: Always` sets it), so
// its reconcile interval is that value or the 10m default: a cheap re-evaluation from stored
// tags that also covers a missed ImageRepository watch event.
impl_flux_object!(
    ImagePolicy,
    IMAGE_NEGATIVE_POLARITY,
    default_interval = DEFAULT_DIGEST_REFRESH_INTERVAL
);
impl_flux_object!(
    Receiver,
    IMAGE_NEGATIVE_POLARITY,
    default_interval = DEFAULT_RECEIVER_INTERVAL
);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::kustomize::{CrossNamespaceSourceReference, KustomizationSpec, SourceKind};
    use crate::meta::RECONCILE_REQUESTED_AT_ANNOTATION;
    use crate::source::GitRepositorySpec;

    fn git_repository() -> GitRepository {
        GitRepository::new(
            "podinfo",
            GitRepositorySpec {
                url: "https://github.com/stefanprodan/podinfo".to_owned(),
                secret_ref: None,
                provider: None,
                service_account_name: None,
                interval: "1m30s".to_owned(),
                timeout: None,
                reference: None,
                verification: None,
                proxy_secret_ref: None,
                ignore: None,
                suspend: true,
                recurse_submodules: false,
                include: Vec::new(),
                sparse_checkout: Vec::new(),
            },
        )
    }

    fn kustomization() -> Kustomization {
        let spec: KustomizationSpec = serde_json::from_value(serde_json::json!({
            "interval": "10m",
            "prune": true,
            "sourceRef": {"kind": "GitRepository", "name": "podinfo"},
        }))
        .unwrap();
        assert_eq!(
            spec.source_ref,
            CrossNamespaceSourceReference {
                api_version: None,
                kind: SourceKind::GitRepository,
                name: "podinfo".to_owned(),
                namespace: None,
            }
        );
        Kustomization::new("apps", spec)
    }

    fn exercise<K: FluxObject>(mut object: K, interval: Duration, suspended: bool) {
        assert!(object.conditions().is_empty());
        assert_eq!(object.observed_generation(), None);
        assert_eq!(object.interval_duration(), Ok(interval));
        assert_eq!(object.suspended(), suspended);

        object.conditions_mut().push(Condition {
            type_: "Ready".to_owned(),
            status: "True".to_owned(),
            reason: "Succeeded".to_owned(),
            message: String::new(),
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            observed_generation: None,
        });
        object.set_observed_generation(3);
        assert_eq!(
            object.condition("Ready").map(|c| c.status.as_str()),
            Some("True")
        );
        assert_eq!(object.observed_generation(), Some(3));

        object.meta_mut().annotations = Some(BTreeMap::from([(
            RECONCILE_REQUESTED_AT_ANNOTATION.to_owned(),
            "token-1".to_owned(),
        )]));
        assert!(object.reconcile_request().requested);
        object.set_last_handled_reconcile_at("token-1");
        assert_eq!(object.last_handled_reconcile_at(), Some("token-1"));
        assert!(!object.reconcile_request().requested);
    }

    #[test]
    fn every_kind_exposes_the_shared_fields() {
        exercise(git_repository(), Duration::from_secs(90), true);
        exercise(kustomization(), Duration::from_secs(600), false);
        let repository: ImageRepository = serde_json::from_value(serde_json::json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImageRepository",
            "metadata": {"name": "podinfo"},
            "spec": {"image": "ghcr.io/stefanprodan/podinfo", "interval": "5m"},
        }))
        .unwrap();
        exercise(repository, Duration::from_secs(300), false);
        let policy = |extra: serde_json::Value| -> ImagePolicy {
            let mut spec = serde_json::json!({
                "imageRepositoryRef": {"name": "podinfo"},
                "policy": {"semver": {"range": "1.x"}},
            });
            if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
                spec.extend(extra.clone());
            }
            serde_json::from_value(serde_json::json!({
                "apiVersion": "image.toolkit.fluxcd.io/v1",
                "kind": "ImagePolicy",
                "metadata": {"name": "podinfo"},
                "spec": spec,
            }))
            .unwrap()
        };
        exercise(
            policy(serde_json::json!({})),
            Duration::from_secs(600),
            false,
        );
        let always = serde_json::json!({"digestReflectionPolicy": "Always", "interval": "1m"});
        exercise(policy(always), Duration::from_secs(60), false);
        assert!(GitRepository::NEGATIVE_POLARITY_CONDITIONS.contains(&"FetchFailed"));
        assert!(!Kustomization::NEGATIVE_POLARITY_CONDITIONS.contains(&"FetchFailed"));
    }

    #[test]
    fn source_artifact_accessors() {
        let mut repository = git_repository();
        assert!(repository.artifact().is_none());
        *repository.artifact_mut() = Some(
            serde_json::from_value(serde_json::json!({
                "digest": "sha256:0000",
                "lastUpdateTime": "2026-01-01T00:00:00Z",
                "path": "gitrepository/default/podinfo/abc.tar.gz",
                "revision": "main@sha1:0123456789abcdef0123456789abcdef01234567",
                "url": "http://source-controller/gitrepository/default/podinfo/abc.tar.gz",
            }))
            .unwrap(),
        );
        let artifact = repository.artifact().unwrap();
        assert_eq!(
            artifact.parse_revision().unwrap().name.as_deref(),
            Some("main")
        );
    }
}
