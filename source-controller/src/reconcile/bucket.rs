//! Bucket steps (`generic` provider): list keys and ETags, stop when the index revision equals
//! the artifact's, otherwise download the indexed objects with bounded parallelism and archive them.

use std::path::Path;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::{Resource, ResourceExt};
use sluice_api::duration::parse_duration;
use sluice_api::meta::condition_type::{ARTIFACT_OUTDATED, FETCH_FAILED};
use sluice_api::meta::reason;
use sluice_api::source::{Bucket, BucketProvider};
use sluice_api::{FluxObject, SourceObject};
use sluice_runtime::Outcome;
use sluice_runtime::conditions;
use sluice_secrets::{ProxySettings, RegistryAccess, read_secret, redact};

use super::artifact::{Publication, object_dir, publish_artifact};
use super::{SourceContext, SourceKind, step};
use crate::bucket_index::{EtagIndex, SizeBudget, is_key_excluded, is_safe_key, key_rules};
use crate::ignore::{IgnoreRules, SOURCE_IGNORE_FILE};
use crate::s3::{S3Client, S3Error, S3Settings, endpoint_url};
use crate::status;
use crate::storage::StoredFile;

/// Default of `spec.timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Bounds on one Bucket fetch: `--bucket-max-objects`, `--bucket-max-size` and the number of
/// objects downloaded at once.
#[derive(Debug, Clone, Copy)]
pub struct BucketLimits {
    pub max_objects: usize,
    pub max_size: u64,
    pub parallel_downloads: usize,
}

impl Default for BucketLimits {
    fn default() -> Self {
        Self {
            max_objects: 100_000,
            max_size: 1 << 30,
            parallel_downloads: 16,
        }
    }
}

impl SourceKind for Bucket {
    const KIND: &'static str = "Bucket";

    async fn run(context: &SourceContext, object: &mut Bucket) -> Result<(), Outcome> {
        unsupported_fields(object)?;
        let (settings, secrets) = settings_for(context, object).await?;
        let endpoint = endpoint_url(&settings.endpoint, settings.insecure)
            .map_err(|e| step::stalled(reason::URL_INVALID, e.to_string()))?;
        context.check_url(endpoint.as_str()).await?;
        let client = S3Client::new(&settings).map_err(|e| match e {
            S3Error::InvalidEndpoint { .. } => step::stalled(reason::URL_INVALID, e.to_string()),
            _ => auth_failure(&e),
        })?;
        let timeout = settings.timeout;
        let fail = |e: S3Error| bucket_failure(&e, &secrets);
        let index = with_timeout(timeout, "listing", fetch_index(context, object, &client))
            .await
            .map_err(fail)??;
        if !needs_fetch(object, &index) {
            return Ok(());
        }
        let scratch = tempfile::Builder::new()
            .prefix("bucket-")
            .tempdir()
            .map_err(|e| {
                step::failed(
                    sluice_api::meta::condition_type::STORAGE_OPERATION_FAILED,
                    reason::DIRECTORY_CREATION_FAILED,
                    format!("creating a download directory failed: {e}"),
                )
            })?;
        let limits = context.bucket_limits;
        let index = with_timeout(
            timeout,
            "downloading",
            fetch_objects(&client, index, scratch.path(), limits),
        )
        .await
        .map_err(fail)?;
        conditions::remove(object.conditions_mut(), FETCH_FAILED);
        let stored = archive(context, object, scratch).await?;
        let revision = index.revision();
        let publication = Publication {
            stored,
            stored_message: format!("stored artifact: revision '{revision}'"),
            new_artifact_message: format!(
                "fetched {} files from '{}'",
                index.len(),
                object.spec.bucket_name
            ),
            revision,
            metadata: Default::default(),
            committed_at: None,
        };
        let artifact = publish_artifact(context, object, Bucket::KIND, publication).await;
        let ignore = object.spec.ignore.clone();
        let status = object.status.get_or_insert_with(Default::default);
        status.url = Some(artifact.url);
        status.observed_ignore = ignore;
        Ok(())
    }
}

/// Cloud providers, STS and workload identity stall with the field named.
fn unsupported_fields(object: &Bucket) -> Result<(), Outcome> {
    let spec = &object.spec;
    if spec.sts.is_some() {
        return Err(step::stalled(
            "InvalidSTSConfiguration",
            "spec.sts (temporary credentials from a token service) is not supported by this source-controller; use access keys in spec.secretRef",
        ));
    }
    if spec.service_account_name.is_some() {
        return Err(step::stalled(
            reason::INVALID_PROVIDER_CONFIGURATION,
            "spec.serviceAccountName (workload identity) is not supported by this source-controller; use access keys in spec.secretRef",
        ));
    }
    if let Some(provider) = spec.provider.filter(|p| *p != BucketProvider::Generic) {
        let name = serde_json::to_value(provider)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        return Err(step::stalled(
            reason::INVALID_PROVIDER_CONFIGURATION,
            format!(
                "spec.provider '{name}' is not supported by this source-controller; use provider 'generic' with access keys in spec.secretRef"
            ),
        ));
    }
    Ok(())
}

fn auth_failure(error: &dyn std::fmt::Display) -> Outcome {
    step::failed(
        FETCH_FAILED,
        reason::AUTHENTICATION_FAILED,
        error.to_string(),
    )
}

/// A listing or download failure: `FetchFailed` with `BucketOperationFailed`, secrets redacted.
fn bucket_failure(error: &S3Error, secrets: &[String]) -> Outcome {
    step::failed(
        FETCH_FAILED,
        reason::BUCKET_OPERATION_FAILED,
        redact(&error.to_string(), secrets),
    )
}

/// Settings from the spec and its Secrets, and the values to keep out of messages.
async fn settings_for(
    context: &SourceContext,
    object: &Bucket,
) -> Result<(S3Settings, Vec<String>), Outcome> {
    let spec = &object.spec;
    let namespace = object.namespace().unwrap_or_default();
    let client = &context.runtime.client;
    let mut secrets = Vec::new();
    let mut settings = S3Settings {
        endpoint: spec.endpoint.clone(),
        insecure: spec.insecure,
        bucket: spec.bucket_name.clone(),
        region: spec.region.clone(),
        timeout: spec
            .timeout
            .as_deref()
            .and_then(|t| parse_duration(t).ok())
            .unwrap_or(DEFAULT_TIMEOUT),
        ..S3Settings::default()
    };
    if let Some(reference) = &spec.secret_ref {
        let secret = read_secret(client, &namespace, &reference.name)
            .await
            .map_err(|e| auth_failure(&e))?;
        let (Some(key), Some(secret_key)) = (
            secret.text("accesskey").map_err(|e| auth_failure(&e))?,
            secret.text("secretkey").map_err(|e| auth_failure(&e))?,
        ) else {
            return Err(auth_failure(&secret.invalid(
                "required fields 'accesskey' and 'secretkey' are missing",
            )));
        };
        secrets.push(secret_key.clone());
        settings.credentials = Some((key, secret_key));
    }
    if let Some(reference) = &spec.cert_secret_ref {
        let secret = read_secret(client, &namespace, &reference.name)
            .await
            .map_err(|e| auth_failure(&e))?;
        let mut access = RegistryAccess::default();
        access
            .apply_cert_secret(&secret)
            .map_err(|e| auth_failure(&e))?;
        if access.ca.is_none() && access.client_identity.is_none() {
            return Err(auth_failure(&secret.invalid(
                "the certificate secret holds none of 'ca.crt', 'tls.crt' and 'tls.key'",
            )));
        }
        settings.ca = access.ca;
        settings.client_identity = access.client_identity;
    }
    if let Some(reference) = &spec.proxy_secret_ref {
        let secret = read_secret(client, &namespace, &reference.name)
            .await
            .map_err(|e| auth_failure(&e))?;
        let proxy = ProxySettings::from_secret(&secret).map_err(|e| auth_failure(&e))?;
        secrets.extend(proxy.secrets);
        settings.proxy = Some(proxy.url);
    }
    Ok((settings, secrets))
}

/// Runs `work` within `timeout`; an expiry is a failure naming the phase.
async fn with_timeout<T>(
    timeout: Duration,
    phase: &str,
    work: impl Future<Output = Result<T, S3Error>>,
) -> Result<T, S3Error> {
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| {
            Err(S3Error::Request {
                operation: phase.to_owned(),
                message: format!(
                    "timed out after {}s; raise spec.timeout",
                    timeout.as_secs_f64()
                ),
            })
        })
}

/// Lists the bucket into an index: the root `.sourceignore` and `spec.ignore` applied, unsafe
/// keys skipped, the object-count and size caps enforced.
async fn fetch_index(
    context: &SourceContext,
    object: &Bucket,
    client: &S3Client,
) -> Result<Result<EtagIndex, Outcome>, S3Error> {
    let spec = &object.spec;
    let limits = context.bucket_limits;
    let source_ignore = client.read_small(SOURCE_IGNORE_FILE).await?;
    let rules = match key_rules(source_ignore.as_deref(), spec.ignore.as_deref()) {
        Ok(rules) => rules,
        Err(error) => {
            return Ok(Err(step::failed(
                FETCH_FAILED,
                reason::BUCKET_OPERATION_FAILED,
                format!("invalid ignore rules (.sourceignore or spec.ignore): {error}"),
            )));
        }
    };
    let mut index = EtagIndex::default();
    let (mut total, mut unsafe_keys) = (0_u64, 0_usize);
    client
        .list(spec.prefix.as_deref(), |listed| {
            if is_key_excluded(&rules, &listed.key) {
                return Ok(());
            }
            if !is_safe_key(&listed.key) {
                unsafe_keys += 1;
                return Ok(());
            }
            index.insert(listed.key, listed.etag);
            total = total.saturating_add(listed.size);
            if index.len() > limits.max_objects {
                return Err(S3Error::TooManyObjects {
                    limit: limits.max_objects,
                });
            }
            if total > limits.max_size {
                return Err(S3Error::TooLarge {
                    limit: limits.max_size,
                });
            }
            Ok(())
        })
        .await?;
    complete_etags(client, &mut index, limits).await?;
    if unsafe_keys > 0 {
        tracing::warn!(
            bucket = %spec.bucket_name,
            count = unsafe_keys,
            "skipped object keys that are not safe relative paths"
        );
    }
    Ok(Ok(index))
}

/// Fills in the ETags a listing left out (some S3-compatible servers omit them) with HEAD
/// requests, so the revision stays stable without downloading objects.
async fn complete_etags(
    client: &S3Client,
    index: &mut EtagIndex,
    limits: BucketLimits,
) -> Result<(), S3Error> {
    let missing: Vec<String> = index
        .entries()
        .filter(|(_, etag)| etag.is_empty())
        .map(|(key, _)| key.to_owned())
        .collect();
    let heads: Vec<(String, Result<String, S3Error>)> = futures::stream::iter(missing)
        .map(|key| async move {
            let etag = client.etag_of(&key).await;
            (key, etag)
        })
        .buffer_unordered(limits.parallel_downloads.max(1))
        .collect()
        .await;
    for (key, etag) in heads {
        match etag {
            Ok(etag) => index.insert(key, etag),
            Err(S3Error::ObjectNotFound(_)) => index.remove(&key),
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Whether the index differs from the artifact; when it does, marks the new revision.
fn needs_fetch(object: &mut Bucket, index: &EtagIndex) -> bool {
    let revision = index.revision();
    let generation = object.meta().generation;
    if object.artifact().is_some_and(|a| a.revision == revision) {
        conditions::remove(object.conditions_mut(), FETCH_FAILED);
        conditions::remove(object.conditions_mut(), ARTIFACT_OUTDATED);
        let ignore = object.spec.ignore.clone();
        object
            .status
            .get_or_insert_with(Default::default)
            .observed_ignore = ignore;
        return false;
    }
    let message = format!("new upstream revision '{revision}'");
    if object.artifact().is_some() {
        status::mark_true(
            object.conditions_mut(),
            ARTIFACT_OUTDATED,
            reason::NEW_REVISION,
            &message,
            generation,
        );
    }
    status::mark_progressing(
        object.conditions_mut(),
        &format!("building artifact: {message}"),
        generation,
    );
    true
}

/// Downloads every indexed object into `dir`, a bounded number at once; objects gone since the
/// listing leave the index and changed ETags are recorded, as Flux does.
async fn fetch_objects(
    client: &S3Client,
    mut index: EtagIndex,
    dir: &Path,
    limits: BucketLimits,
) -> Result<EtagIndex, S3Error> {
    let budget = SizeBudget::new(limits.max_size);
    let keys: Vec<(String, String)> = index
        .entries()
        .map(|(key, etag)| (key.to_owned(), etag.to_owned()))
        .collect();
    let budget = &budget;
    let fetched: Vec<(String, String, Option<String>)> = futures::stream::iter(keys)
        .map(|(key, etag)| async move {
            match client.download(&key, &dir.join(&key), budget).await {
                Ok(current) => Ok((key, etag, Some(current))),
                Err(S3Error::ObjectNotFound(_)) => Ok((key, etag, None)),
                Err(error) => Err(error),
            }
        })
        .buffer_unordered(limits.parallel_downloads.max(1))
        .try_collect()
        .await?;
    for (key, listed, current) in fetched {
        match current {
            None => {
                tracing::info!(%key, "indexed object disappeared from the bucket");
                index.remove(&key);
            }
            Some(current) if !current.is_empty() && current != listed => {
                index.insert(key, current);
            }
            Some(_) => {}
        }
    }
    Ok(index)
}

/// Archives the downloaded objects (already filtered by the index) into storage.
async fn archive(
    context: &SourceContext,
    object: &Bucket,
    scratch: tempfile::TempDir,
) -> Result<StoredFile, Outcome> {
    let storage = context.storage.clone();
    let target_dir = object_dir(Bucket::KIND, object);
    tokio::task::spawn_blocking(move || {
        let everything = IgnoreRules::default();
        storage
            .archive_dir(scratch.path(), &everything, &target_dir)
            .map_err(|e| step::storage(reason::ARCHIVE_OPERATION_FAILED, &e))
    })
    .await
    .map_err(|e| step::storage_task(reason::ARCHIVE_OPERATION_FAILED, &e))?
}
