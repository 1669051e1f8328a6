//! The built-in kinds' strategic-merge list keys and scopes, read from the generated
//! `merge_keys.tsv` (see `e2e/examples/gen_merge_keys.rs`).

use std::collections::HashMap;
use std::sync::OnceLock;

const TABLE: &str = include_str!("merge_keys.tsv");

#[derive(Default)]
struct Table {
    /// By apiVersion, then kind.
    kinds: HashMap<String, HashMap<String, KindEntry>>,
    /// For each group and kind, the last (highest-sorting) apiVersion serving it.
    latest: HashMap<(String, String), String>,
    definitions: HashMap<String, Definition>,
}

struct KindEntry {
    definition: Option<String>,
    cluster_scoped: bool,
}

#[derive(Default)]
pub(crate) struct Definition {
    fields: HashMap<String, Field>,
}

struct Field {
    target: Option<String>,
    merge_keys: Option<Vec<String>>,
}

fn table() -> &'static Table {
    static TABLE_CELL: OnceLock<Table> = OnceLock::new();
    TABLE_CELL.get_or_init(|| parse(TABLE))
}

fn parse(text: &str) -> Table {
    let dash = |s: &str| (s != "-").then(|| s.to_string());
    let mut table = Table::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let columns: Vec<&str> = line.split('\t').collect();
        match columns.as_slice() {
            ["kind", api_version, kind, definition, scope] => {
                let entry = KindEntry {
                    definition: dash(definition),
                    cluster_scoped: *scope == "cluster",
                };
                table
                    .kinds
                    .entry(api_version.to_string())
                    .or_default()
                    .insert(kind.to_string(), entry);
                table.latest.insert(
                    (group_of(api_version).to_string(), kind.to_string()),
                    api_version.to_string(),
                );
            }
            ["field", definition, name, target, strategy, keys] => {
                let merge_keys = (*strategy != "-").then(|| match *keys {
                    "-" => Vec::new(),
                    keys => keys.split(',').map(String::from).collect(),
                });
                let field = Field {
                    target: dash(target),
                    merge_keys,
                };
                table
                    .definitions
                    .entry(definition.to_string())
                    .or_default()
                    .fields
                    .insert(name.to_string(), field);
            }
            _ => {}
        }
    }
    table
}

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(group, _)| group)
}

/// A kind's entry for this apiVersion, or else for the newest version of its group that the
/// API server serves (so `rbac.authorization.k8s.io/v1beta1` ClusterRoles, which kustomize's
/// older built-in schema knows, stay cluster-scoped).
fn kind_entry(api_version: &str, kind: &str) -> Option<&'static KindEntry> {
    let table = table();
    let exact = table
        .kinds
        .get(api_version)
        .and_then(|kinds| kinds.get(kind));
    exact.or_else(|| {
        let latest = table
            .latest
            .get(&(group_of(api_version).to_string(), kind.to_string()))?;
        table.kinds.get(latest)?.get(kind)
    })
}

/// True for kinds the API server serves cluster-scoped.
pub(crate) fn is_cluster_scoped(api_version: &str, kind: &str) -> bool {
    kind_entry(api_version, kind).is_some_and(|k| k.cluster_scoped)
}

/// A position in a built-in kind's schema, as far as strategic merge needs it.
#[derive(Clone, Copy)]
pub(crate) enum Schema {
    Object(&'static Definition),
    /// A known built-in field with no merge lists below it.
    Opaque,
    /// A list merged element by element on these keys (empty for lists of scalars).
    MergeList {
        keys: &'static [String],
        items: Option<&'static Definition>,
    },
}

impl Schema {
    /// The schema of a built-in kind's object, if the table knows it.
    pub fn for_kind(api_version: &str, kind: &str) -> Option<Schema> {
        let table = table();
        let entry = kind_entry(api_version, kind)?;
        Some(
            match entry
                .definition
                .as_deref()
                .and_then(|d| table.definitions.get(d))
            {
                Some(definition) => Schema::Object(definition),
                None => Schema::Opaque,
            },
        )
    }

    /// The schema of a field of this object (a named property, else the map-value schema).
    pub fn field(self, name: &str) -> Option<Schema> {
        let Schema::Object(definition) = self else {
            return Some(Schema::Opaque);
        };
        let Some(field) = definition
            .fields
            .get(name)
            .or_else(|| definition.fields.get("*"))
        else {
            return Some(Schema::Opaque);
        };
        let target = field
            .target
            .as_deref()
            .and_then(|t| table().definitions.get(t));
        Some(match (&field.merge_keys, target) {
            (Some(keys), items) => Schema::MergeList { keys, items },
            (None, Some(definition)) => Schema::Object(definition),
            (None, None) => Schema::Opaque,
        })
    }

    /// The schema of this list's elements.
    pub fn elements(self) -> Option<Schema> {
        match self {
            Schema::MergeList {
                items: Some(definition),
                ..
            } => Some(Schema::Object(definition)),
            _ => Some(Schema::Opaque),
        }
    }

    /// The merge keys when this is a list merged element by element.
    pub fn merge_keys(self) -> Option<&'static [String]> {
        match self {
            Schema::MergeList { keys, .. } => Some(keys),
            Schema::Object(_) | Schema::Opaque => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_containers_merge_by_name() {
        let deployment = Schema::for_kind("apps/v1", "Deployment").unwrap();
        let containers = ["spec", "template", "spec", "containers"]
            .iter()
            .try_fold(deployment, |s, f| s.field(f))
            .unwrap();
        assert_eq!(containers.merge_keys().unwrap(), ["name"]);
        let ports = containers.elements().unwrap().field("ports").unwrap();
        assert_eq!(ports.merge_keys().unwrap(), ["containerPort", "protocol"]);
    }

    #[test]
    fn scopes_come_from_the_api_server() {
        assert!(is_cluster_scoped("v1", "Namespace"));
        assert!(is_cluster_scoped(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole"
        ));
        assert!(!is_cluster_scoped("apps/v1", "Deployment"));
        assert!(!is_cluster_scoped("example.com/v1", "Widget"));
    }
}
