//! Name references: after renames (prefix, suffix, hash, namespace), fields that refer to a
//! renamed object by name (volumes, env sources, role refs, subjects, ...) follow it.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::fieldpath::{self, Create};
use crate::fieldspecs::FieldSpec;
use crate::resmap::ResMap;
use crate::resource::{Gvk, ResId, Resource, ensure_object, scalar_text};

/// Updates every name reference in `resources`.
pub(crate) fn fix_references(resources: &mut ResMap, file: &Path) -> Result<()> {
    let mut work: Vec<Vec<(FieldSpec, Gvk)>> = vec![Vec::new(); resources.resources.len()];
    let original_kinds: Vec<Gvk> = resources.resources.iter().map(|r| r.org_id().gvk).collect();
    let config = resources.config.clone();
    for reference in &config.name_references {
        for referrer in &reference.referrers {
            for (i, gvk) in original_kinds.iter().enumerate() {
                if gvk.is_selected_by(&referrer.gvk) {
                    work[i].push((referrer.clone(), reference.target.clone()));
                }
            }
        }
    }
    let all = &resources.resources;
    let known: Vec<Known> = all.iter().map(Known::new).collect();
    let mut updated = Vec::new();
    for (index, filters) in work.into_iter().enumerate() {
        if filters.is_empty() {
            continue;
        }
        let referrer = &known[index];
        let candidates = candidates_for(referrer, &known);
        let mut object = referrer.resource.object.clone();
        for (spec, target) in filters {
            let path = spec.path.clone();
            let spec = FieldSpec {
                gvk: Gvk::default(),
                ..spec
            };
            let lookup = Lookup {
                referrer,
                target: &target,
                path: &path,
            };
            fieldpath::apply(&mut object, &spec, Create::Nothing, &mut |node| {
                lookup.update(node, &candidates)
            })
            .map_err(|e| {
                Error::invalid(
                    file,
                    "(name references)",
                    format!("updating `{path}` of {}: {e}", referrer.cur),
                )
            })?;
        }
        updated.push((index, object));
    }
    for (index, object) in updated {
        resources.resources[index].object = object;
    }
    Ok(())
}

/// A resource with its identities computed once.
struct Known<'a> {
    resource: &'a Resource,
    cur: ResId,
    prev: Vec<ResId>,
    cluster_scoped: bool,
    effective_namespace: String,
}

impl<'a> Known<'a> {
    fn new(resource: &'a Resource) -> Known<'a> {
        let cur = resource.cur_id();
        Known {
            resource,
            cluster_scoped: cur.gvk.is_cluster_scoped(),
            effective_namespace: cur.effective_namespace().to_string(),
            cur,
            prev: resource.prev_ids(),
        }
    }

    fn same_namespace(&self, other: &Known) -> bool {
        self.effective_namespace == other.effective_namespace
    }

    /// The original or current effective namespace, `None` for cluster-scoped resources.
    fn grouped_namespace(&self, original: bool) -> Option<&str> {
        let id = if original {
            self.prev.first().unwrap_or(&self.cur)
        } else {
            &self.cur
        };
        (!id.gvk.is_cluster_scoped()).then(|| id.effective_namespace())
    }
}

/// The resources a referrer may point at: cluster-scoped ones, those in its namespace, and for a
/// RoleBinding those in its ServiceAccount subjects' namespaces.
fn candidates_for<'k, 'a>(referrer: &Known, all: &'k [Known<'a>]) -> Vec<&'k Known<'a>> {
    if referrer.cluster_scoped {
        return all.iter().collect();
    }
    let mut subject_namespaces = BTreeSet::new();
    if referrer.cur.gvk.kind == "RoleBinding"
        && let Some(Value::Array(subjects)) = referrer.resource.object.get("subjects")
    {
        for subject in subjects {
            if subject.get("kind").map(scalar_text).as_deref() == Some("ServiceAccount")
                && let Some(Value::String(namespace)) = subject.get("namespace")
            {
                subject_namespaces.insert(namespace.clone());
            }
        }
    }
    all.iter()
        .filter(|k| {
            k.cluster_scoped
                || k.same_namespace(referrer)
                || subject_namespaces.contains(&k.cur.namespace)
        })
        .collect()
}

struct Lookup<'a> {
    referrer: &'a Known<'a>,
    target: &'a Gvk,
    path: &'a str,
}

impl Lookup<'_> {
    fn update(&self, node: &mut Value, candidates: &[&Known]) -> Result<(), String> {
        match node {
            Value::Null => Ok(()),
            Value::Array(items) => items.iter_mut().try_for_each(|item| match item {
                Value::Null => Ok(()),
                Value::Object(_) => self.update_mapping(item, candidates),
                Value::Array(_) => Err("expected a string or a mapping".to_string()),
                _ => self.update_scalar(item, candidates),
            }),
            Value::Object(_) => self.update_mapping(node, candidates),
            _ => self.update_scalar(node, candidates),
        }
    }

    fn update_scalar(&self, node: &mut Value, candidates: &[&Known]) -> Result<(), String> {
        let old = scalar_text(node);
        let Some(referral) = self.select(&old, candidates.to_vec(), false)? else {
            return Ok(());
        };
        let name = referral.resource.name();
        if name != old {
            *node = Value::String(name);
        }
        Ok(())
    }

    fn update_mapping(&self, node: &mut Value, candidates: &[&Known]) -> Result<(), String> {
        let Some(old) = node.get("name").map(scalar_text) else {
            return Err("no `name` field in the reference".to_string());
        };
        let candidates: Vec<&Known> = match node.get("namespace") {
            None => candidates.to_vec(),
            Some(namespace) => {
                let namespace = scalar_text(namespace);
                let in_namespace = |original: bool| -> Vec<&Known> {
                    candidates
                        .iter()
                        .copied()
                        .filter(|k| k.grouped_namespace(original) == Some(namespace.as_str()))
                        .collect()
                };
                let by_original = in_namespace(true);
                if by_original.is_empty() {
                    in_namespace(false)
                } else {
                    by_original
                }
            }
        };
        let Some(referral) = self.select(&old, candidates, true)? else {
            return Ok(());
        };
        let (name, namespace) = (referral.resource.name(), referral.resource.namespace());
        if name == old && namespace.is_empty() {
            return Ok(());
        }
        let map = ensure_object(node);
        map.insert("name".to_string(), Value::String(name));
        if !namespace.is_empty() {
            map.insert("namespace".to_string(), Value::String(namespace));
        }
        Ok(())
    }

    /// Narrows candidates the way kustomize does; an ambiguous reference is an error.
    fn select<'k, 'r>(
        &self,
        old: &str,
        candidates: Vec<&'k Known<'r>>,
        with_namespace: bool,
    ) -> Result<Option<&'k Known<'r>>, String> {
        let role_ref = self.role_ref_gvk();
        let referrer = self.referrer;
        let mut candidates: Vec<&Known> = candidates
            .into_iter()
            .filter(|k| k.prev.iter().any(|id| id.name == old))
            .filter(|k| k.prev.iter().any(|id| id.gvk.is_selected_by(self.target)))
            .filter(|k| {
                role_ref
                    .as_ref()
                    .is_none_or(|g| k.prev.iter().any(|id| id.gvk.is_selected_by(g)))
            })
            .filter(|k| {
                referrer.cluster_scoped
                    || k.cluster_scoped
                    || k.cur.gvk.kind == "ServiceAccount"
                    || referrer.same_namespace(k)
            })
            .collect();
        if candidates.len() == 1 {
            return Ok(candidates.pop());
        }
        candidates.retain(|k| k.resource.affixes_match(self.referrer.resource, true));
        if candidates.len() > 1 {
            candidates.retain(|k| k.resource.affixes_match(self.referrer.resource, false));
        }
        match candidates.as_slice() {
            [] => Ok(None),
            [only] => Ok(Some(only)),
            [first, rest @ ..] => {
                let same = rest.iter().all(|k| {
                    k.cur.name == first.cur.name
                        && (!with_namespace || k.cur.namespace == first.cur.namespace)
                });
                if same {
                    Ok(Some(first))
                } else {
                    let ids: Vec<String> = candidates.iter().map(|k| k.cur.to_string()).collect();
                    Err(format!(
                        "found multiple possible referrals: {}",
                        ids.join(", ")
                    ))
                }
            }
        }
    }

    /// For `roleRef/name` fields, the group and kind the role reference names.
    fn role_ref_gvk(&self) -> Option<Gvk> {
        if !self.path.ends_with("roleRef/name") {
            return None;
        }
        let role_ref = self.referrer.resource.object.get("roleRef")?;
        let group = role_ref.get("apiGroup")?;
        let kind = role_ref.get("kind")?;
        Some(Gvk {
            group: scalar_text(group),
            version: String::new(),
            kind: scalar_text(kind),
        })
    }
}
