//! `dependsOn`: a Kustomization waits until the ones it depends on are ready.

use kube::{Api, Client};
use sluice_api::FluxObject;
use sluice_api::kustomize::Kustomization;
use sluice_api::meta::condition_type::READY;
use sluice_runtime::conditions::is_true;

use crate::cel::{EvaluationError, Expression, InvalidExpression};
use crate::source::source_namespace;

/// Why a dependency is not ready, in Flux's words.
#[derive(Debug, thiserror::Error)]
pub enum DependencyError {
    #[error("dependency '{0}' not found")]
    NotFound(String),
    #[error("dependency '{0}' is not ready")]
    NotReady(String),
    #[error("dependency '{0}' revision is not up to date")]
    Outdated(String),
    #[error("dependency '{0}' is not ready according to readyExpr eval")]
    ExprNotReady(String),
    #[error("reading dependency '{name}' failed: {reason}")]
    Read { name: String, reason: String },
    #[error(transparent)]
    InvalidExpr(#[from] InvalidExpression),
    #[error("dependency '{name}': {error}")]
    Evaluation {
        name: String,
        error: EvaluationError,
    },
}

/// The compiled `readyExpr` of `spec.dependsOn[index]`, if it has one.
pub fn ready_expr(
    ks: &Kustomization,
    index: usize,
) -> Result<Option<Expression>, InvalidExpression> {
    ks.spec
        .depends_on
        .get(index)
        .and_then(|dependency| dependency.ready_expr.as_deref())
        .map(|source| Expression::compile(format!("spec.dependsOn[{index}].readyExpr"), source))
        .transpose()
}

/// Checks every `dependsOn` entry: it exists, its `readyExpr` (over `dep` and `self`) is true,
/// and, unless a `readyExpr` replaces them (`additive` keeps them), its status is for its
/// current generation, it is Ready, and when it reads the same source it has applied `revision`.
pub async fn check_dependencies(
    client: &Client,
    kustomization: &Kustomization,
    revision: &str,
    additive: bool,
) -> Result<(), DependencyError> {
    let own_namespace = kustomization.metadata.namespace.clone().unwrap_or_default();
    for (index, dependency) in kustomization.spec.depends_on.iter().enumerate() {
        let namespace = dependency.namespace.as_deref().unwrap_or(&own_namespace);
        let qualified = format!("{namespace}/{}", dependency.name);
        let api: Api<Kustomization> = Api::namespaced(client.clone(), namespace);
        let found = api
            .get_opt(&dependency.name)
            .await
            .map_err(|error| DependencyError::Read {
                name: qualified.clone(),
                reason: error.to_string(),
            })?
            .ok_or_else(|| DependencyError::NotFound(qualified.clone()))?;
        if let Some(expression) = ready_expr(kustomization, index)? {
            let (dep, own) = (to_json(&found), to_json(kustomization));
            let ready = expression
                .evaluate(&[("dep", &dep), ("self", &own)])
                .map_err(|error| DependencyError::Evaluation {
                    name: qualified.clone(),
                    error,
                })?;
            if !ready {
                return Err(DependencyError::ExprNotReady(qualified));
            }
            if !additive {
                continue;
            }
        }
        let current = found.metadata.generation == found.observed_generation();
        if !current || !is_true(found.conditions(), READY) {
            return Err(DependencyError::NotReady(qualified));
        }
        let same_source = found.spec.source_ref.kind == kustomization.spec.source_ref.kind
            && found.spec.source_ref.name == kustomization.spec.source_ref.name
            && source_namespace(&found) == source_namespace(kustomization);
        let applied = found
            .status
            .as_ref()
            .and_then(|status| status.last_applied_revision.as_deref());
        if same_source && applied != Some(revision) {
            return Err(DependencyError::Outdated(qualified));
        }
    }
    Ok(())
}

fn to_json(ks: &Kustomization) -> serde_json::Value {
    serde_json::to_value(ks).unwrap_or_default()
}
