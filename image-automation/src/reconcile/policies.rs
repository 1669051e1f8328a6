//! The ImagePolicies an automation applies: those in its namespace matching `policySelector`
//! (all when unset) that have a `latestRef`, and how each marker resolves against them.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use sluice_api::image::{ImagePolicy, ImageRef, ImageUpdateAutomation};
use sluice_runtime::{Outcome, describe_kube_error};

use super::{AutomationContext, reasons};
use crate::setters::{Marker, Resolution};

/// The policies of one run.
#[derive(Debug, Default)]
pub struct Policies {
    pub namespace: String,
    /// Selected policies with a `latestRef`: Flux's `observedPolicies`.
    pub ready: BTreeMap<String, ImageRef>,
    /// Selected policies without a `latestRef` yet.
    pub not_ready: BTreeSet<String>,
    /// Every policy of the namespace, selected or not.
    pub existing: BTreeSet<String>,
}

impl Policies {
    /// What `marker` writes: ignored outside the namespace or the selection, reported when the
    /// policy is missing, has no `latestRef` or (for `:digest`) no digest.
    pub fn resolve(&self, marker: &Marker) -> Resolution {
        if marker.namespace != self.namespace {
            return Resolution::Ignore;
        }
        let name = &marker.policy;
        if let Some(image) = self.ready.get(name) {
            return match marker.value_of(image) {
                Some(value) => Resolution::Value(value),
                None => Resolution::Unresolved(format!(
                    "ImagePolicy '{}/{name}' has no digest; set its spec.digestReflectionPolicy",
                    self.namespace
                )),
            };
        }
        if self.not_ready.contains(name) {
            return Resolution::Unresolved(format!(
                "ImagePolicy '{}/{name}' has no latest image yet",
                self.namespace
            ));
        }
        if self.existing.contains(name) {
            return Resolution::Ignore;
        }
        Resolution::Unresolved(format!("ImagePolicy '{}/{name}' not found", self.namespace))
    }
}

/// Lists the namespace's policies, and those `policySelector` selects.
pub async fn policies_of(
    context: &AutomationContext,
    object: &ImageUpdateAutomation,
) -> Result<Policies, Outcome> {
    let namespace = object.namespace().unwrap_or_default();
    let selector = match &object.spec.policy_selector {
        Some(selector) => selector_string(selector)
            .map_err(|message| Outcome::stalled(reasons::INVALID_POLICY_SELECTOR, message))?,
        None => String::new(),
    };
    let api: Api<ImagePolicy> = Api::namespaced(context.runtime.client.clone(), &namespace);
    let list = |params: ListParams| {
        let api = api.clone();
        async move {
            api.list(&params).await.map_err(|e| {
                Outcome::retry(
                    reasons::RECONCILIATION_FAILED,
                    format!("failed to list ImagePolicies: {}", describe_kube_error(&e)),
                )
            })
        }
    };
    let all = list(ListParams::default()).await?;
    let selected = if selector.is_empty() {
        all.items.clone()
    } else {
        list(ListParams::default().labels(&selector)).await?.items
    };
    let mut policies = Policies {
        namespace,
        existing: all.items.iter().map(ResourceExt::name_any).collect(),
        ..Policies::default()
    };
    for policy in selected {
        let latest = policy.status.as_ref().and_then(|s| s.latest_ref.clone());
        match latest {
            Some(image) => policies.ready.insert(policy.name_any(), image).map(drop),
            None => policies.not_ready.insert(policy.name_any()).then_some(()),
        };
    }
    Ok(policies)
}

/// A LabelSelector in the apiserver's string syntax.
pub fn selector_string(selector: &LabelSelector) -> Result<String, String> {
    let mut terms: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    for expression in selector.match_expressions.iter().flatten() {
        let values = expression.values.clone().unwrap_or_default().join(",");
        let key = &expression.key;
        terms.push(match expression.operator.as_str() {
            "In" => format!("{key} in ({values})"),
            "NotIn" => format!("{key} notin ({values})"),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            other => {
                return Err(format!(
                    "invalid spec.policySelector: operator '{other}' is not one of In, NotIn, Exists, DoesNotExist"
                ));
            }
        });
    }
    Ok(terms.join(","))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;
    use crate::setters::MarkerField;

    #[test]
    fn selectors_and_resolution() {
        let selector = LabelSelector {
            match_labels: Some(BTreeMap::from([("app".to_owned(), "web".to_owned())])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["a".into(), "b".into()]),
            }]),
        };
        assert_eq!(selector_string(&selector).unwrap(), "app=web,tier in (a,b)");
        let image = ImageRef {
            name: "app".into(),
            tag: "2".into(),
            digest: String::new(),
        };
        let policies = Policies {
            namespace: "ns".into(),
            ready: BTreeMap::from([("ready".to_owned(), image)]),
            not_ready: BTreeSet::from(["pending".to_owned()]),
            existing: BTreeSet::from(["ready".into(), "pending".into(), "unselected".into()]),
        };
        let marker = |ns: &str, name: &str, field| Marker {
            namespace: ns.into(),
            policy: name.into(),
            field,
        };
        let image = MarkerField::Image;
        assert_eq!(
            policies.resolve(&marker("ns", "ready", image)),
            Resolution::Value("app:2".into())
        );
        assert_eq!(
            policies.resolve(&marker("other", "ready", image)),
            Resolution::Ignore
        );
        assert_eq!(
            policies.resolve(&marker("ns", "unselected", image)),
            Resolution::Ignore
        );
        for unresolved in [
            marker("ns", "pending", image),
            marker("ns", "gone", image),
            marker("ns", "ready", MarkerField::Digest),
        ] {
            assert!(matches!(
                policies.resolve(&unresolved),
                Resolution::Unresolved(_)
            ));
        }
    }
}
