//! Resources, their identities (group/version/kind, name, namespace) and the build metadata
//! kustomize tracks for each: previous names, name prefixes and suffixes, generator behavior.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::schema;

/// The text of a scalar the way kustomize reads it; `""` for null, mappings and sequences.
pub(crate) fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// A group, version and kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub fn new(api_version: &str, kind: &str) -> Gvk {
        let (group, version) = match api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", api_version),
        };
        Gvk {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// True when every non-empty part of `selector` equals the same part here.
    pub fn is_selected_by(&self, selector: &Gvk) -> bool {
        (selector.group.is_empty() || selector.group == self.group)
            && (selector.version.is_empty() || selector.version == self.version)
            && (selector.kind.is_empty() || selector.kind == self.kind)
    }

    /// True for kinds the built-in API knows to be cluster-scoped; unknown kinds are not.
    pub fn is_cluster_scoped(&self) -> bool {
        schema::is_cluster_scoped(&self.api_version(), &self.kind)
    }
}

impl fmt::Display for Gvk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or = |s: &str, empty: &'static str| {
            if s.is_empty() {
                empty.to_string()
            } else {
                s.to_string()
            }
        };
        write!(
            f,
            "{}.{}.{}",
            or(&self.kind, "[noKind]"),
            or(&self.version, "[noVer]"),
            or(&self.group, "[noGrp]")
        )
    }
}

/// The identity of a resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct ResId {
    pub gvk: Gvk,
    pub name: String,
    pub namespace: String,
}

/// The namespace kustomize uses for cluster-scoped ids.
const NOT_A_NAMESPACE: &str = "_non_namespaceable_";

impl ResId {
    /// The namespace used to compare ids: `default` for an empty namespace, a marker for
    /// cluster-scoped kinds.
    pub fn effective_namespace(&self) -> &str {
        if self.gvk.is_cluster_scoped() {
            NOT_A_NAMESPACE
        } else if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }

    pub fn is_ns_equal(&self, other: &ResId) -> bool {
        self.effective_namespace() == other.effective_namespace()
    }

    pub fn equals(&self, other: &ResId) -> bool {
        self.name == other.name && self.gvk == other.gvk && self.is_ns_equal(other)
    }
}

impl fmt::Display for ResId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let namespace = if self.namespace.is_empty() {
            "[noNs]"
        } else {
            &self.namespace
        };
        let name = if self.name.is_empty() {
            "[noName]"
        } else {
            &self.name
        };
        write!(f, "{}/{}.{}", self.gvk, name, namespace)
    }
}

/// How a generated resource combines with an existing one of the same id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Behavior {
    /// Not generated.
    #[default]
    Unspecified,
    Create,
    Merge,
    Replace,
}

/// A previous identity, recorded before a rename or a namespace change.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PreviousId {
    namespace: String,
    name: String,
    kind: String,
}

/// An object being built, with the bookkeeping kustomize keeps in build annotations.
#[derive(Clone, Debug)]
pub(crate) struct Resource {
    pub object: Value,
    /// The file the resource (or the kustomization that generated it) came from.
    pub source: PathBuf,
    previous: Vec<PreviousId>,
    pub prefixes: Vec<String>,
    pub suffixes: Vec<String>,
    pub behavior: Behavior,
    pub needs_hash_suffix: bool,
    pub allow_name_change: bool,
    pub allow_kind_change: bool,
    /// Names of the `vars` whose object this resource is.
    pub var_names: Vec<String>,
    /// Fields sharing one value node in kustomize (see [`crate::linked`]).
    pub linked: Vec<crate::linked::Linked>,
}

impl Resource {
    pub fn new(object: Value, source: PathBuf) -> Resource {
        Resource {
            object,
            source,
            previous: Vec::new(),
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            behavior: Behavior::Unspecified,
            needs_hash_suffix: false,
            allow_name_change: false,
            allow_kind_change: false,
            var_names: Vec::new(),
            linked: Vec::new(),
        }
    }

    fn field(&self, name: &str) -> String {
        self.object.get(name).map(scalar_text).unwrap_or_default()
    }

    fn metadata_field(&self, name: &str) -> String {
        self.object
            .get("metadata")
            .and_then(|m| m.get(name))
            .map(scalar_text)
            .unwrap_or_default()
    }

    pub fn api_version(&self) -> String {
        self.field("apiVersion")
    }

    pub fn kind(&self) -> String {
        self.field("kind")
    }

    pub fn name(&self) -> String {
        self.metadata_field("name")
    }

    pub fn namespace(&self) -> String {
        self.metadata_field("namespace")
    }

    pub fn gvk(&self) -> Gvk {
        Gvk::new(&self.api_version(), &self.kind())
    }

    pub fn cur_id(&self) -> ResId {
        ResId {
            gvk: self.gvk(),
            name: self.name(),
            namespace: self.namespace(),
        }
    }

    /// Earlier identities, oldest first, with the current group and version.
    pub fn prev_ids(&self) -> Vec<ResId> {
        let gvk = self.gvk();
        self.previous
            .iter()
            .map(|p| ResId {
                gvk: Gvk {
                    kind: p.kind.clone(),
                    ..gvk.clone()
                },
                name: p.name.clone(),
                namespace: p.namespace.clone(),
            })
            .collect()
    }

    /// The identity the resource had when first loaded or generated.
    pub fn org_id(&self) -> ResId {
        self.prev_ids()
            .into_iter()
            .next()
            .unwrap_or_else(|| self.cur_id())
    }

    /// The current identity followed by all earlier ones.
    pub fn all_ids(&self) -> Vec<ResId> {
        let mut ids = self.prev_ids();
        ids.push(self.cur_id());
        ids
    }

    /// Records the current identity (with its effective namespace) as a previous one.
    pub fn store_previous_id(&mut self) {
        let id = self.cur_id();
        self.previous.push(PreviousId {
            namespace: id.effective_namespace().to_string(),
            name: id.name,
            kind: id.gvk.kind,
        });
    }

    fn metadata_mut(&mut self) -> &mut Map<String, Value> {
        let object = ensure_object(&mut self.object);
        ensure_object(
            object
                .entry("metadata")
                .or_insert_with(|| Value::Object(Map::new())),
        )
    }

    pub fn set_name(&mut self, name: &str) {
        self.metadata_mut()
            .insert("name".to_string(), Value::String(name.to_string()));
    }

    /// Sets the namespace; an empty namespace removes the field.
    pub fn set_namespace(&mut self, namespace: &str) {
        let metadata = self.metadata_mut();
        if namespace.is_empty() {
            metadata.remove("namespace");
        } else {
            metadata.insert(
                "namespace".to_string(),
                Value::String(namespace.to_string()),
            );
        }
    }

    pub fn set_kind(&mut self, kind: &str) {
        ensure_object(&mut self.object).insert("kind".to_string(), Value::String(kind.to_string()));
    }

    /// A string map under `metadata` (labels or annotations), values as scalar text.
    pub fn metadata_map(&self, field: &str) -> BTreeMap<String, String> {
        self.object
            .get("metadata")
            .and_then(|m| m.get(field))
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), scalar_text(v))).collect())
            .unwrap_or_default()
    }

    /// Replaces a string map under `metadata`; an empty map removes the field.
    pub fn set_metadata_map(&mut self, field: &str, values: BTreeMap<String, String>) {
        let metadata = self.metadata_mut();
        if values.is_empty() {
            metadata.remove(field);
        } else {
            let map = values
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            metadata.insert(field.to_string(), Value::Object(map));
        }
    }

    /// Copies kustomize's bookkeeping and identity from `old`, as a generator's merge or
    /// replace does; labels and annotations are merged with this resource's winning (but for
    /// the origin annotation).
    pub fn take_metadata_from(&mut self, old: &Resource) {
        let mut labels = old.metadata_map("labels");
        labels.extend(self.metadata_map("labels"));
        self.set_metadata_map("labels", labels);
        let mut annotations = old.metadata_map("annotations");
        let origin = annotations.get(crate::metadata::ORIGIN).cloned();
        annotations.extend(self.metadata_map("annotations"));
        // The object keeps the origin of the one it was first generated as, as in kustomize.
        if let Some(origin) = origin {
            annotations.insert(crate::metadata::ORIGIN.to_owned(), origin);
        }
        self.set_metadata_map("annotations", annotations);
        self.set_name(&old.name());
        self.set_namespace(&old.namespace());
        self.previous = old.previous.clone();
        self.prefixes = old.prefixes.clone();
        self.suffixes = old.suffixes.clone();
        self.behavior = old.behavior;
        self.needs_hash_suffix = old.needs_hash_suffix && self.needs_hash_suffix;
        self.var_names = old.var_names.clone();
    }

    /// True when this resource's prefixes and suffixes end like `other`'s; with `allow_empty`,
    /// an empty list on either side matches anything.
    pub fn affixes_match(&self, other: &Resource, allow_empty: bool) -> bool {
        let matches = |mine: &[String], theirs: &[String]| {
            (allow_empty && (mine.is_empty() || theirs.is_empty())) || same_ending(mine, theirs)
        };
        matches(&self.prefixes, &other.prefixes) && matches(&self.suffixes, &other.suffixes)
    }
}

/// True when the shorter list equals the end of the longer one (an empty list only matches
/// another empty list).
fn same_ending(a: &[String], b: &[String]) -> bool {
    let n = a.len().min(b.len());
    if n == 0 {
        return a.len() == b.len();
    }
    a[a.len() - n..] == b[b.len() - n..]
}

/// Makes `value` an object if it is not one, and returns its map.
pub(crate) fn ensure_object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        // The value was made an object just above.
        _ => unreachable!(),
    }
}
