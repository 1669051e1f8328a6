//! Step 3: the build output: kustomize build of `spec.path`, SOPS decryption, post-build
//! substitution, and the digest of the result (recorded in `status.history`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client, ResourceExt};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use sluice_api::kustomize::{Kustomization, SubstituteKind, SubstituteStrategy};
use sluice_api::meta::reason;
use sluice_runtime::Outcome;

use super::Context;
use crate::build::{BuildError, build};
use crate::objects::subject;
use crate::sops::{self, AgeIdentities, DecryptError, SopsError};
use crate::substitute::{SubstituteError, substitute_all, validate_names};

/// The objects to apply and their digest.
#[derive(Debug)]
pub struct BuildOutput {
    pub objects: Vec<Value>,
    /// `sha256:<hex>` of the objects, as Flux records in history.
    pub digest: String,
    /// The values substituted from `substituteFrom` Secrets, to redact from apply errors.
    pub secret_values: Vec<String>,
}

/// Why the build step failed; every message names what to fix.
#[derive(Debug, thiserror::Error)]
enum BuildStepError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("build task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("reading {what} {namespace}/{name} failed: {reason}")]
    Read {
        what: &'static str,
        namespace: String,
        name: String,
        reason: String,
    },
    #[error(
        "decryption Secret {namespace}/{name} not found; create it with the age identity under a *.agekey key"
    )]
    DecryptionSecretMissing { namespace: String, name: String },
    #[error("decryption Secret {namespace}/{name}: {source}")]
    Identities {
        namespace: String,
        name: String,
        source: SopsError,
    },
    #[error(transparent)]
    Decryption(#[from] DecryptError),
    #[error(
        "{0} is SOPS-encrypted but spec.decryption is not set; configure decryption or commit it unencrypted"
    )]
    Encrypted(String),
    #[error(
        "substituteFrom {kind:?} {namespace}/{name} not found; create it or mark the reference optional"
    )]
    VariablesMissing {
        kind: SubstituteKind,
        namespace: String,
        name: String,
    },
    #[error("{0}")]
    VariableNames(SubstituteError),
    #[error("post-build substitution failed: {0}")]
    Substitution(SubstituteError),
}

impl BuildStepError {
    /// `ArtifactFailed` for a missing path, a stall for what only a spec change fixes, else `BuildFailed`.
    fn into_outcome(self, revision: &str) -> Outcome {
        match self {
            Self::Build(BuildError::PathNotFound(path)) => Outcome::retry(
                reason::ARTIFACT_FAILED,
                format!(
                    "kustomization path not found: {path:?} does not exist in revision {revision}"
                ),
            ),
            Self::Build(error @ BuildError::RemoteComponent(_)) => {
                Outcome::stalled(reason::BUILD_FAILED, error.to_string())
            }
            error => Outcome::retry(reason::BUILD_FAILED, error.to_string()),
        }
    }
}

/// Builds, decrypts and substitutes the manifests of `revision` unpacked at `root`.
pub async fn build_manifests(
    context: &Context,
    ks: &Kustomization,
    root: PathBuf,
    revision: &str,
) -> Result<BuildOutput, Outcome> {
    let steps = async {
        let client = &context.runtime.client;
        let fallback = context
            .flags
            .sops_age_secret()
            .map(|name| (context.runtime.flags.runtime_namespace.as_str(), name));
        let identities = age_identities(client, ks, fallback).await?;
        let mut objects = render(ks, root, identities).await?;
        refuse_encrypted(ks, &objects)?;
        let secret_values =
            substitute(client, ks, &mut objects, context.flags.strict_substitution).await?;
        let digest = history_digest(&objects);
        Ok(BuildOutput {
            objects,
            digest,
            secret_values,
        })
    };
    steps
        .await
        .map_err(|error: BuildStepError| error.into_outcome(revision))
}

/// Flux's history digest: `sha256:` and the hex SHA-256 of the YAML stream kustomize prints.
pub fn history_digest(objects: &[Value]) -> String {
    let stream = sluice_kustomize::go_yaml_v2_stream(objects);
    format!("sha256:{}", hex::encode(Sha256::digest(stream.as_bytes())))
}

/// Runs the kustomize build and the decryption on a blocking thread.
async fn render(
    ks: &Kustomization,
    root: PathBuf,
    identities: Option<AgeIdentities>,
) -> Result<Vec<Value>, BuildStepError> {
    let path = ks.spec.path.clone().unwrap_or_default();
    let spec = ks.spec.clone();
    tokio::task::spawn_blocking(move || {
        let mut objects = build(&root, &path, &spec)?;
        if let Some(identities) = identities {
            sops::decrypt_objects(&mut objects, &identities)?;
        }
        Ok(objects)
    })
    .await?
}

/// The age identities of `spec.decryption.secretRef` when decryption is configured; without a
/// `secretRef`, those of `fallback` (the `--sops-age-secret` namespace and name).
async fn age_identities(
    client: &Client,
    ks: &Kustomization,
    fallback: Option<(&str, &str)>,
) -> Result<Option<AgeIdentities>, BuildStepError> {
    let Some(decryption) = ks.spec.decryption.as_ref() else {
        return Ok(None);
    };
    let (namespace, name) = match (&decryption.secret_ref, fallback) {
        (Some(reference), _) => (ks.namespace().unwrap_or_default(), reference.name.clone()),
        (None, Some((namespace, name))) => (namespace.to_owned(), name.to_owned()),
        (None, None) => return Ok(None),
    };
    let secret = read_secret(client, &namespace, &name, "decryption Secret")
        .await?
        .ok_or_else(|| BuildStepError::DecryptionSecretMissing {
            namespace: namespace.clone(),
            name: name.clone(),
        })?;
    let data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| (key, value.0))
        .collect();
    AgeIdentities::from_secret_data(&data)
        .map(Some)
        .map_err(|source| BuildStepError::Identities {
            namespace,
            name,
            source,
        })
}

/// An encrypted Secret with no decryption configured is an error, as in Flux.
fn refuse_encrypted(ks: &Kustomization, objects: &[Value]) -> Result<(), BuildStepError> {
    if ks.spec.decryption.is_some() {
        return Ok(());
    }
    match objects
        .iter()
        .find(|object| object["kind"] == "Secret" && sops::is_encrypted(object))
    {
        Some(encrypted) => Err(BuildStepError::Encrypted(subject(encrypted))),
        None => Ok(()),
    }
}

/// Substitutes `postBuild` variables: `substituteFrom` in order, then the inline `substitute`;
/// returns the values that came from Secrets.
async fn substitute(
    client: &Client,
    ks: &Kustomization,
    objects: &mut [Value],
    strict: bool,
) -> Result<Vec<String>, BuildStepError> {
    let Some(post_build) = &ks.spec.post_build else {
        return Ok(Vec::new());
    };
    let always = post_build.substitute_strategy == Some(SubstituteStrategy::Always);
    if !always && post_build.substitute.is_empty() && post_build.substitute_from.is_empty() {
        return Ok(Vec::new());
    }
    let namespace = ks.namespace().unwrap_or_default();
    let mut variables = BTreeMap::new();
    let mut secret_values = Vec::new();
    for reference in &post_build.substitute_from {
        let data = match reference.kind {
            SubstituteKind::ConfigMap => config_map_data(client, &namespace, &reference.name).await,
            SubstituteKind::Secret => secret_data(client, &namespace, &reference.name).await,
        }?;
        match data {
            Some(data) => {
                if reference.kind == SubstituteKind::Secret {
                    secret_values.extend(data.values().cloned());
                }
                variables.extend(data);
            }
            None if reference.optional => {}
            None => {
                return Err(BuildStepError::VariablesMissing {
                    kind: reference.kind,
                    namespace,
                    name: reference.name.clone(),
                });
            }
        }
    }
    variables.extend(post_build.substitute.clone());
    validate_names(&variables).map_err(BuildStepError::VariableNames)?;
    substitute_all(objects, &variables, strict).map_err(BuildStepError::Substitution)?;
    Ok(secret_values)
}

async fn config_map_data(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, String>>, BuildStepError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let found = api
        .get_opt(name)
        .await
        .map_err(|error| BuildStepError::Read {
            what: "substituteFrom ConfigMap",
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            reason: error.to_string(),
        })?;
    Ok(found.map(|config| config.data.unwrap_or_default()))
}

async fn secret_data(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, String>>, BuildStepError> {
    let found = read_secret(client, namespace, name, "substituteFrom Secret").await?;
    Ok(found.map(|secret| {
        secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| (key, String::from_utf8_lossy(&value.0).into_owned()))
            .collect()
    }))
}

/// Reads a Secret; `what` names it in the error.
async fn read_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    what: &'static str,
) -> Result<Option<Secret>, BuildStepError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name)
        .await
        .map_err(|error| BuildStepError::Read {
            what,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            reason: error.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_path_is_an_artifact_failure_naming_the_revision() {
        let outcome = BuildStepError::Build(BuildError::PathNotFound("./apps".into()))
            .into_outcome("main@sha1:abc");
        assert_eq!(
            outcome,
            Outcome::retry(
                reason::ARTIFACT_FAILED,
                "kustomization path not found: \"./apps\" does not exist in revision main@sha1:abc"
            )
        );
    }

    #[test]
    fn unsupported_build_fields_stall_and_other_errors_retry() {
        let stalled = BuildStepError::Build(BuildError::RemoteComponent("https://x".into()))
            .into_outcome("r");
        assert!(matches!(stalled, Outcome::Stalled(f) if f.reason == reason::BUILD_FAILED));
        let retried = BuildStepError::Encrypted("Secret/apps/db".into()).into_outcome("r");
        assert_eq!(
            retried,
            Outcome::retry(
                reason::BUILD_FAILED,
                "Secret/apps/db is SOPS-encrypted but spec.decryption is not set; configure decryption or commit it unencrypted"
            )
        );
    }

    #[test]
    fn the_history_digest_is_flux_s_sha256_of_the_kustomize_yaml_stream() {
        let objects = vec![
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "app", "namespace": "default"},
                "data": {"enabled": "true", "replicas": "3", "script": "echo hi\nexit 0\n"}}),
            serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "app"}, "spec": {"replicas": 2}}),
        ];
        // `sha256sum` of what kustomize's AsYaml prints for these objects (the jsontoyaml oracle).
        assert_eq!(
            history_digest(&objects),
            "sha256:667392065a1773105384f86c092a9508c9589ef6cdd0479a94d2eda841056ef3"
        );
    }
}
