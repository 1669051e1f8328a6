//! Cross-namespace access control lists (Flux's `fluxcd/pkg/apis/acl`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which namespaces may refer to an object from outside its own namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessFrom {
    /// Namespace selectors; a namespace matching any of them is granted access.
    pub namespace_selectors: Vec<NamespaceSelector>,
}

/// Namespaces selected by their labels; empty `matchLabels` selects every namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// Labels a namespace must all carry, with these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}

impl AccessFrom {
    /// Whether a namespace with `labels` is granted access.
    pub fn admits(&self, labels: &BTreeMap<String, String>) -> bool {
        self.namespace_selectors.iter().any(|selector| {
            selector
                .match_labels
                .iter()
                .all(|(key, value)| labels.get(key) == Some(value))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn selectors_are_ored_and_labels_anded() {
        let acl = AccessFrom {
            namespace_selectors: vec![
                NamespaceSelector {
                    match_labels: labels(&[("team", "a"), ("env", "prod")]),
                },
                NamespaceSelector {
                    match_labels: labels(&[("team", "b")]),
                },
            ],
        };
        assert!(acl.admits(&labels(&[("team", "a"), ("env", "prod")])));
        assert!(acl.admits(&labels(&[("team", "b")])));
        assert!(!acl.admits(&labels(&[("team", "a")])));
        assert!(!acl.admits(&labels(&[])));
    }

    #[test]
    fn empty_selector_admits_every_namespace_and_no_selector_admits_none() {
        let everyone = AccessFrom {
            namespace_selectors: vec![NamespaceSelector::default()],
        };
        assert!(everyone.admits(&labels(&[])));
        assert!(!AccessFrom::default().admits(&labels(&[("team", "a")])));
    }
}
