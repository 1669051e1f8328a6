//! The set of objects a Kustomization applied, and their inventory ids.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Objects applied by a Kustomization.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ResourceInventory {
    /// One entry per applied object.
    pub entries: Vec<ResourceRef>,
}

/// One applied object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ResourceRef {
    /// Object identity as `<namespace>_<name>_<group>_<kind>` (see [`ObjectId`]).
    pub id: String,
    /// API version of the object.
    #[serde(rename = "v")]
    pub version: String,
}

impl ResourceRef {
    /// Parses [`ResourceRef::id`].
    pub fn object_id(&self) -> Result<ObjectId, ObjectIdError> {
        self.id.parse()
    }
}

/// Separator between the four id fields.
const FIELD_SEPARATOR: char = '_';
/// Encoding of `:` in names (RBAC names may contain colons).
const COLON_ENCODING: &str = "__";

/// Object identity in Flux's inventory format `<namespace>_<name>_<group>_<kind>`.
///
/// Cluster-scoped objects have an empty namespace and core objects an empty group,
/// e.g. `default_podinfo__Service` or `_admin_rbac.authorization.k8s.io_ClusterRole`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    /// Namespace; empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// API group; empty for the core group.
    pub group: String,
    /// Kind.
    pub kind: String,
}

/// An inventory id that does not have the four-field shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectIdError {
    input: String,
    reason: &'static str,
}

impl fmt::Display for ObjectIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid inventory id {:?}: {} (expected <namespace>_<name>_<group>_<kind>)",
            self.input, self.reason
        )
    }
}

impl std::error::Error for ObjectIdError {}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name.replace(':', COLON_ENCODING);
        write!(
            f,
            "{}{FIELD_SEPARATOR}{name}{FIELD_SEPARATOR}{}{FIELD_SEPARATOR}{}",
            self.namespace, self.group, self.kind
        )
    }
}

impl FromStr for ObjectId {
    type Err = ObjectIdError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = |reason| ObjectIdError {
            input: input.to_owned(),
            reason,
        };
        let (namespace, rest) = input
            .split_once(FIELD_SEPARATOR)
            .ok_or_else(|| error("missing separators"))?;
        let (rest, kind) = rest
            .rsplit_once(FIELD_SEPARATOR)
            .ok_or_else(|| error("missing separators"))?;
        let (name, group) = rest
            .rsplit_once(FIELD_SEPARATOR)
            .ok_or_else(|| error("missing separators"))?;
        if name.is_empty() {
            return Err(error("empty name"));
        }
        if kind.is_empty() {
            return Err(error("empty kind"));
        }
        Ok(Self {
            namespace: namespace.to_owned(),
            name: name.replace(COLON_ENCODING, ":"),
            group: group.to_owned(),
            kind: kind.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(namespace: &str, name: &str, group: &str, kind: &str) -> ObjectId {
        ObjectId {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            group: group.to_owned(),
            kind: kind.to_owned(),
        }
    }

    #[test]
    fn formats_and_parses_flux_examples() {
        let cases = [
            (
                id("default", "podinfo", "", "Service"),
                "default_podinfo__Service",
            ),
            (
                id("default", "podinfo", "apps", "Deployment"),
                "default_podinfo_apps_Deployment",
            ),
            (id("", "foo", "", "Namespace"), "_foo__Namespace"),
            (
                id(
                    "",
                    "system:controller:x",
                    "rbac.authorization.k8s.io",
                    "ClusterRole",
                ),
                "_system__controller__x_rbac.authorization.k8s.io_ClusterRole",
            ),
        ];
        for (object, text) in cases {
            assert_eq!(object.to_string(), text);
            assert_eq!(text.parse::<ObjectId>(), Ok(object));
        }
    }

    #[test]
    fn rejects_malformed_ids() {
        for input in [
            "",
            "default",
            "default_podinfo",
            "default__Service",
            "default_podinfo_apps_",
        ] {
            let error = input.parse::<ObjectId>().unwrap_err();
            assert!(error.to_string().contains(&format!("{input:?}")), "{error}");
        }
    }

    #[test]
    fn resource_ref_uses_v_for_the_version() {
        let entry = ResourceRef {
            id: "default_podinfo__Service".to_owned(),
            version: "v1".to_owned(),
        };
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "default_podinfo__Service", "v": "v1"})
        );
        assert_eq!(entry.object_id().unwrap().kind, "Service");
    }

    proptest! {
        #[test]
        fn round_trips(
            namespace in "([a-z0-9][a-z0-9-]{0,20})?",
            name in "[a-z0-9]([a-z0-9.:-]{0,30}[a-z0-9])?",
            group in "([a-z0-9][a-z0-9.-]{0,20})?",
            kind in "[A-Z][A-Za-z0-9]{0,20}",
        ) {
            let object = id(&namespace, &name, &group, &kind);
            prop_assert_eq!(object.to_string().parse::<ObjectId>(), Ok(object.clone()));
        }
    }
}
