//! Step 1: refuse a spec this controller cannot honour (it stalls until the spec changes) and
//! work out the timeout of the whole reconcile.

use std::time::Duration;

use kube::ResourceExt;
use sluice_api::kustomize::{Kustomization, SourceKind};
use sluice_api::meta::reason;
use sluice_runtime::Outcome;

use crate::cel::{HealthRules, InvalidExpression};
use crate::cli::ControllerFlags;
use crate::dependson::ready_expr;
use crate::ignore::IgnoreRules;
use crate::source::source_namespace;

/// The reconcile timeout (`spec.timeout`, else `spec.interval`), or a stall naming the problem.
pub fn validate(ks: &Kustomization, flags: &ControllerFlags) -> Result<Duration, Outcome> {
    unsupported_fields(ks, flags)?;
    expressions(ks)?;
    if flags.no_cross_namespace_refs {
        cross_namespace_refs(ks)?;
    }
    external_artifact_gate(ks, flags)?;
    ks.effective_timeout().map_err(|error| {
        Outcome::stalled(
            reason::RECONCILIATION_FAILED,
            format!("spec.timeout or spec.interval is invalid: {error}"),
        )
    })
}

/// Spec fields this controller does not implement stall with a message naming them.
fn unsupported_fields(ks: &Kustomization, flags: &ControllerFlags) -> Result<(), Outcome> {
    let spec = &ks.spec;
    let unsupported = |field: &str, what: &str| {
        Err(Outcome::stalled(
            reason::RECONCILIATION_FAILED,
            format!(
                "{field} is not supported by this controller: {what}; remove it from the Kustomization"
            ),
        ))
    };
    if spec
        .decryption
        .as_ref()
        .is_some_and(|decryption| decryption.secret_ref.is_none())
        && flags.sops_age_secret().is_none()
    {
        return unsupported(
            "spec.decryption without secretRef",
            "only age identities are implemented, from decryption.secretRef or the Secret of --sops-age-secret (no KMS, Vault or PGP)",
        );
    }
    Ok(())
}

/// Every CEL expression and ignore rule of the spec compiles; the first that does not stalls.
fn expressions(ks: &Kustomization) -> Result<(), Outcome> {
    let invalid = |error: InvalidExpression| {
        Outcome::stalled(reason::INVALID_CEL_EXPRESSION, error.to_string())
    };
    HealthRules::compile(&ks.spec.health_check_exprs).map_err(invalid)?;
    for index in 0..ks.spec.depends_on.len() {
        ready_expr(ks, index).map_err(invalid)?;
    }
    IgnoreRules::compile(&ks.spec.ignore)
        .map_err(|error| Outcome::stalled(reason::RECONCILIATION_FAILED, error.to_string()))?;
    Ok(())
}

/// With `--no-cross-namespace-refs`, dependencies and the source must be in the object's namespace.
fn cross_namespace_refs(ks: &Kustomization) -> Result<(), Outcome> {
    let own = ks.namespace().unwrap_or_default();
    let denied = |reference: String| {
        Err(Outcome::stalled(
            reason::ACCESS_DENIED,
            format!("can't access '{reference}', cross-namespace references have been blocked"),
        ))
    };
    if let Some(dependency) = ks
        .spec
        .depends_on
        .iter()
        .find(|dependency| dependency.namespace.as_deref().is_some_and(|ns| ns != own))
    {
        return denied(format!(
            "Kustomization/{}/{}",
            dependency.namespace.as_deref().unwrap_or_default(),
            dependency.name
        ));
    }
    let source_ns = source_namespace(ks);
    if source_ns != own {
        return denied(format!(
            "{}/{source_ns}/{}",
            ks.spec.source_ref.kind.as_str(),
            ks.spec.source_ref.name
        ));
    }
    Ok(())
}

/// An ExternalArtifact source needs Flux's `ExternalArtifact` gate; without it the reference is
/// denied, as in Flux.
fn external_artifact_gate(ks: &Kustomization, flags: &ControllerFlags) -> Result<(), Outcome> {
    let reference = &ks.spec.source_ref;
    if reference.kind != SourceKind::ExternalArtifact || flags.external_artifact {
        return Ok(());
    }
    Err(Outcome::stalled(
        reason::ACCESS_DENIED,
        format!(
            "can't access 'ExternalArtifact/{}/{}', ExternalArtifact feature gate is disabled; start the controller with --feature-gates=ExternalArtifact=true to allow it",
            source_namespace(ks),
            reference.name
        ),
    ))
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::json;
    use sluice_runtime::Failure;

    use super::*;
    use crate::cli::Cli;

    fn kustomization(spec: serde_json::Value) -> Kustomization {
        let mut base = json!({"interval": "5m", "prune": true,
                              "sourceRef": {"kind": "GitRepository", "name": "repo"}});
        if let (Some(base), Some(extra)) = (base.as_object_mut(), spec.as_object()) {
            base.extend(extra.clone());
        }
        serde_json::from_value(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "app", "namespace": "apps"}, "spec": base
        }))
        .unwrap()
    }

    fn flags() -> ControllerFlags {
        Cli::parse_from(["kustomize-controller"]).controller
    }

    fn stall(outcome: Result<Duration, Outcome>) -> Failure {
        match outcome {
            Err(Outcome::Stalled(failure)) => failure,
            other => panic!("expected a stall, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_spec_gives_the_effective_timeout() {
        let ks = kustomization(json!({"timeout": "2m"}));
        assert_eq!(validate(&ks, &flags()), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn unsupported_fields_stall_naming_the_field() {
        let ks = kustomization(json!({"decryption": {"provider": "sops"}}));
        let failure = stall(validate(&ks, &flags()));
        assert_eq!(failure.reason, reason::RECONCILIATION_FAILED);
        assert!(
            failure
                .message
                .starts_with("spec.decryption without secretRef is not supported"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn invalid_cel_stalls_naming_the_expression() {
        let ks = kustomization(json!({"dependsOn": [{"name": "a"},
            {"name": "b", "readyExpr": "dep.status.(("}]}));
        let failure = stall(validate(&ks, &flags()));
        assert_eq!(failure.reason, reason::INVALID_CEL_EXPRESSION);
        assert!(
            failure
                .message
                .starts_with("spec.dependsOn[1].readyExpr 'dep.status.((' is not a valid CEL"),
            "{}",
            failure.message
        );
        let valid = kustomization(json!({"healthCheckExprs": [{"apiVersion": "example.com/v1",
            "kind": "Widget", "current": "status.ready == true"}]}));
        assert!(validate(&valid, &flags()).is_ok());
    }

    #[test]
    fn external_artifact_sources_need_the_feature_gate() {
        let ks = kustomization(json!({"sourceRef": {"kind": "ExternalArtifact", "name": "ea"}}));
        let failure = stall(validate(&ks, &flags()));
        assert_eq!(failure.reason, reason::ACCESS_DENIED);
        assert!(
            failure.message.starts_with(
                "can't access 'ExternalArtifact/apps/ea', ExternalArtifact feature gate is disabled"
            ),
            "{}",
            failure.message
        );
        let mut gated = flags();
        gated.external_artifact = true;
        assert!(validate(&ks, &gated).is_ok());
    }

    #[test]
    fn cross_namespace_references_are_denied_by_default() {
        let ks = kustomization(
            json!({"sourceRef": {"kind": "GitRepository", "name": "repo",
                                                    "namespace": "flux-system"}}),
        );
        let failure = stall(validate(&ks, &flags()));
        assert_eq!(failure.reason, reason::ACCESS_DENIED);
        assert_eq!(
            failure.message,
            "can't access 'GitRepository/flux-system/repo', cross-namespace references have been blocked"
        );
        let mut allowing = flags();
        allowing.no_cross_namespace_refs = false;
        assert!(validate(&ks, &allowing).is_ok());
    }
}
