//! An ordered set of resources with kustomize's id rules: appending refuses duplicate ids,
//! generated resources merge into or replace existing ones, and selectors pick targets.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use crate::error::{Error, Result};
use crate::fieldspecs::TransformerConfig;
use crate::kustomization::{Selector, Var};
use crate::resource::{Behavior, ResId, Resource};
use crate::selector::{AnchoredRegex, LabelSelector};

/// What makes two ids equal: group, version, kind, name and effective namespace.
#[derive(PartialEq, Eq, Hash)]
struct IdKey(String, String, String, String, String);

impl IdKey {
    fn of(id: &ResId) -> IdKey {
        IdKey(
            id.gvk.group.clone(),
            id.gvk.version.clone(),
            id.gvk.kind.clone(),
            id.name.clone(),
            id.effective_namespace().to_string(),
        )
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ResMap {
    pub resources: Vec<Resource>,
    /// The `vars` declared so far, by name.
    pub vars: BTreeMap<String, Var>,
    /// The transformer config of the kustomizations accumulated so far.
    pub config: TransformerConfig,
}

impl ResMap {
    /// Adds a resource; its current id must not be taken.
    pub fn append(&mut self, resource: Resource, file: &Path) -> Result<()> {
        self.append_all(
            ResMap {
                resources: vec![resource],
                ..ResMap::default()
            },
            file,
        )
    }

    /// Adds resources in order (no current id may be taken, by earlier or new resources) and
    /// their vars (no name may repeat).
    pub fn append_all(&mut self, other: ResMap, file: &Path) -> Result<()> {
        self.merge_vars(other.vars.into_values(), file)?;
        self.config
            .merge(&other.config)
            .map_err(|e| Error::invalid(file, "configurations", e))?;
        let mut taken: HashSet<IdKey> = self
            .resources
            .iter()
            .map(|r| IdKey::of(&r.cur_id()))
            .collect();
        for resource in other.resources {
            let id = resource.cur_id();
            if !taken.insert(IdKey::of(&id)) {
                return Err(Error::invalid(
                    file,
                    "resources",
                    format!("may not add resource with an already registered id: {id}"),
                ));
            }
            self.resources.push(resource);
        }
        Ok(())
    }

    /// The id of some resource that shares its current id with another, if any.
    pub fn duplicate_id(&self) -> Option<ResId> {
        let mut taken = HashSet::new();
        self.resources
            .iter()
            .map(Resource::cur_id)
            .find(|id| !taken.insert(IdKey::of(id)))
    }

    /// Indices of resources with any (current or previous) id equal to `id`.
    pub fn matching_any_id(&self, id: &ResId) -> Vec<usize> {
        (0..self.resources.len())
            .filter(|&i| {
                self.resources[i]
                    .all_ids()
                    .iter()
                    .any(|other| other.equals(id))
            })
            .collect()
    }

    /// Adds a generated resource, merging into or replacing a resource of the same id when its
    /// behavior asks for that.
    pub fn absorb(&mut self, mut resource: Resource, file: &Path, field: &str) -> Result<()> {
        let id = resource.cur_id();
        let matches = self.matching_any_id(&id);
        match (matches.as_slice(), resource.behavior) {
            ([], Behavior::Merge | Behavior::Replace) => Err(Error::invalid(
                file,
                field,
                format!("id {id} does not exist; cannot merge or replace"),
            )),
            ([], _) => self.append(resource, file),
            ([index], Behavior::Merge | Behavior::Replace) => {
                let old = &self.resources[*index];
                if resource.behavior == Behavior::Merge {
                    merge_generated_data(&mut resource, old);
                }
                resource.take_metadata_from(old);
                self.resources[*index] = resource;
                Ok(())
            }
            ([_], _) => Err(Error::invalid(
                file,
                field,
                format!("id {id} exists; behavior must be merge or replace"),
            )),
            _ => Err(Error::invalid(
                file,
                field,
                format!("found multiple objects that could accept merge of {id}"),
            )),
        }
    }

    /// The resources a selector picks, as indices in order.
    pub fn select(&self, selector: &Selector, file: &Path, field: &str) -> Result<Vec<usize>> {
        let invalid = |e: String| Error::invalid(file, field, e);
        let group = AnchoredRegex::new(&selector.gvk.group).map_err(invalid)?;
        let version = AnchoredRegex::new(&selector.gvk.version).map_err(invalid)?;
        let kind = AnchoredRegex::new(&selector.gvk.kind).map_err(invalid)?;
        let name = AnchoredRegex::new(&selector.name).map_err(invalid)?;
        let namespace = AnchoredRegex::new(&selector.namespace).map_err(invalid)?;
        let labels = LabelSelector::parse(&selector.label_selector).map_err(invalid)?;
        let annotations = LabelSelector::parse(&selector.annotation_selector).map_err(invalid)?;
        let mut selected = Vec::new();
        for (i, r) in self.resources.iter().enumerate() {
            let cur = r.cur_id();
            let org = r.org_id();
            if !namespace.matches(org.effective_namespace())
                && !namespace.matches(cur.effective_namespace())
            {
                continue;
            }
            if !name.matches(&org.name) && !name.matches(&cur.name) {
                continue;
            }
            let gvk = r.gvk();
            if !(group.matches(&gvk.group)
                && version.matches(&gvk.version)
                && kind.matches(&gvk.kind))
            {
                continue;
            }
            if labels.matches(&r.metadata_map("labels"))
                && annotations.matches(&r.metadata_map("annotations"))
            {
                selected.push(i);
            }
        }
        Ok(selected)
    }
}

/// Folds the old resource's data into a generated resource with `behavior: merge`.
fn merge_generated_data(resource: &mut Resource, old: &Resource) {
    let is_secret = resource.kind() == "Secret" && resource.api_version() == "v1";
    let mut old_object = old.object.clone();
    if is_secret {
        normalize_secret_string_data(&mut old_object);
    }
    for field in ["data", "binaryData"] {
        let source = if field == "data" {
            &old_object
        } else {
            &old.object
        };
        let mut merged = source
            .get(field)
            .and_then(|v| v.as_object())
            .cloned()
            .unwrap_or_default();
        if let Some(mine) = resource.object.get(field).and_then(|v| v.as_object()) {
            merged.extend(mine.clone());
        }
        if let Some(object) = resource.object.as_object_mut() {
            if merged.is_empty() {
                object.remove(field);
            } else {
                object.insert(field.to_string(), serde_json::Value::Object(merged));
            }
        }
    }
}

/// Moves a Secret's `stringData` into `data`, base64-encoded.
fn normalize_secret_string_data(object: &mut serde_json::Value) {
    use base64::Engine as _;
    let Some(map) = object.as_object_mut() else {
        return;
    };
    let Some(serde_json::Value::Object(string_data)) = map.remove("stringData") else {
        return;
    };
    let data =
        crate::resource::ensure_object(map.entry("data").or_insert_with(|| serde_json::json!({})));
    for (key, value) in string_data {
        let text = crate::resource::scalar_text(&value);
        data.insert(
            key,
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(text)),
        );
    }
}
