//! The GitRepository an automation updates: namespace rules, URL and credentials as
//! source-controller uses them, the checkout reference and the push branch.

use kube::{Api, ResourceExt};
use sluice_api::image::ImageUpdateAutomation;
use sluice_api::meta::reason;
use sluice_api::source::{GitProvider, GitRepository};
use sluice_git::{CommitSigner, GitRemote, OpenPgpSigner, RefSelector, SshSigner};
use sluice_runtime::{Outcome, describe_kube_error};
use sluice_secrets::read_secret;

use super::{AutomationContext, reasons};

/// Where an automation clones from and pushes to.
pub struct Source {
    pub remote: GitRemote,
    pub checkout: RefSelector,
    /// The branch checked out, when the reference is a branch.
    pub checkout_branch: Option<String>,
    pub push_branch: String,
    /// The key commits are signed with, from `spec.git.commit.signingKey`.
    pub signer: Option<CommitSigner>,
}

impl Source {
    /// Pushing to another branch than the one checked out (Flux force-pushes then).
    pub fn switches_branch(&self) -> bool {
        self.checkout_branch.as_deref() != Some(self.push_branch.as_str())
    }
}

/// Reads the GitRepository and its Secrets and decides the checkout and push references.
pub async fn source_of(
    context: &AutomationContext,
    object: &ImageUpdateAutomation,
) -> Result<Source, Outcome> {
    let repository = repository_of(context, object).await?;
    let git = object.spec.git.as_ref().ok_or_else(|| {
        Outcome::stalled(
            reasons::INVALID_SOURCE_CONFIGURATION,
            "spec.git is not set; set at least spec.git.commit.author.email",
        )
    })?;
    let reference = git
        .checkout
        .as_ref()
        .map(|checkout| &checkout.reference)
        .or(repository.spec.reference.as_ref());
    let checkout = RefSelector::from_spec(reference);
    let checkout_branch = match &checkout {
        RefSelector::Branch(branch) => Some(branch.clone()),
        _ => None,
    };
    let push_branch = git
        .push
        .as_ref()
        .and_then(|push| push.branch.clone())
        .filter(|branch| !branch.is_empty())
        .or_else(|| checkout_branch.clone())
        .ok_or_else(|| {
            Outcome::stalled(
                reasons::INVALID_SOURCE_CONFIGURATION,
                "push spec not provided, and cannot be inferred from .spec.git.checkout.ref or GitRepository .spec.ref; set spec.git.push.branch",
            )
        })?;
    Ok(Source {
        remote: remote_for(context, &repository).await?,
        checkout,
        checkout_branch,
        push_branch,
        signer: signer_of(context, object).await?,
    })
}

/// The key of `spec.git.commit.signingKey` (OpenPGP, or SSH for `type: ssh`), in the
/// automation's namespace.
async fn signer_of(
    context: &AutomationContext,
    object: &ImageUpdateAutomation,
) -> Result<Option<CommitSigner>, Outcome> {
    let signing_key = object
        .spec
        .git
        .as_ref()
        .and_then(|git| git.commit.signing_key.as_ref());
    let Some((reference, key_type)) = signing_key.and_then(|key| {
        key.secret_ref
            .as_ref()
            .map(|reference| (reference, key.key_type.as_deref()))
    }) else {
        return Ok(None);
    };
    let namespace = object.namespace().unwrap_or_default();
    let failure = |error: &dyn std::fmt::Display| {
        Outcome::retry(
            reasons::INVALID_SOURCE_CONFIGURATION,
            format!("failed to read spec.git.commit.signingKey: {error}"),
        )
    };
    let secret = read_secret(&context.runtime.client, &namespace, &reference.name)
        .await
        .map_err(|e| failure(&e))?;
    if key_type != Some("ssh") {
        return OpenPgpSigner::from_secret(&secret)
            .map(|signer| Some(CommitSigner::OpenPgp(signer)))
            .map_err(|e| failure(&e));
    }
    tokio::task::spawn_blocking(move || SshSigner::from_secret(&secret))
        .await
        .map_err(|e| failure(&e))?
        .map(|signer| Some(CommitSigner::Ssh(signer)))
        .map_err(|e| failure(&e))
}

async fn repository_of(
    context: &AutomationContext,
    object: &ImageUpdateAutomation,
) -> Result<GitRepository, Outcome> {
    let own = object.namespace().unwrap_or_default();
    let reference = &object.spec.source_ref;
    let namespace = object.source_namespace().unwrap_or_else(|| own.clone());
    if reference.kind != "GitRepository" {
        return Err(Outcome::stalled(
            reasons::INVALID_SOURCE_CONFIGURATION,
            format!(
                "source kind '{}' is not supported; spec.sourceRef.kind must be GitRepository",
                reference.kind
            ),
        ));
    }
    if namespace != own && context.flags.no_cross_namespace_refs {
        return Err(Outcome::stalled(
            reason::ACCESS_DENIED,
            format!(
                "cannot access GitRepository '{namespace}/{}': cross-namespace references are not allowed (--no-cross-namespace-refs)",
                reference.name
            ),
        ));
    }
    let api: Api<GitRepository> = Api::namespaced(context.runtime.client.clone(), &namespace);
    api.get_opt(&reference.name)
        .await
        .map_err(|e| {
            Outcome::retry(
                reasons::SOURCE_MANAGER_FAILED,
                format!(
                    "failed to get GitRepository '{namespace}/{}': {}",
                    reference.name,
                    describe_kube_error(&e)
                ),
            )
        })?
        .ok_or_else(|| {
            Outcome::waiting(
                reasons::SOURCE_MANAGER_FAILED,
                format!(
                    "GitRepository '{namespace}/{}' not found; create it or fix spec.sourceRef",
                    reference.name
                ),
            )
        })
}

/// URL, credentials, proxy and timeout of `repository`, as source-controller reads them.
async fn remote_for(
    context: &AutomationContext,
    repository: &GitRepository,
) -> Result<GitRemote, Outcome> {
    let spec = &repository.spec;
    if spec
        .provider
        .as_ref()
        .is_some_and(|p| *p != GitProvider::Generic)
    {
        return Err(Outcome::stalled(
            reasons::INVALID_SOURCE_CONFIGURATION,
            "GitRepository spec.provider other than 'generic' is not supported by this controller; use spec.secretRef",
        ));
    }
    GitRemote::for_repository(&context.runtime.client, repository)
        .await
        .map_err(|error| {
            Outcome::retry(
                reason::AUTHENTICATION_FAILED,
                format!("failed to configure authentication options: {error}"),
            )
        })
}
