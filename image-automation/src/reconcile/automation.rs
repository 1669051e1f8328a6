//! ImageUpdateAutomation steps: read the source and the policies, then clone, apply the
//! setters, commit and push (again from a fresh clone when the remote moved meanwhile).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use sluice_api::image::{DEFAULT_COMMIT_MESSAGE, ImageUpdateAutomation};
use sluice_api::meta::reason;
use sluice_git::{CheckoutOptions, CommitAuthor, GitError, PushTarget};
use sluice_runtime::{Lifecycle, ObjectEvent, Outcome};

use super::policies::{Policies, policies_of};
use super::source::{Source, source_of};
use super::{AutomationContext, MAX_PUSH_ATTEMPTS, reasons};
use crate::setters::{TreeUpdate, update_tree};
use crate::template::{self, TemplateError};

/// A checkout to commit in: with its `.git` directory, which only the `git` CLI path writes.
const COMMITTABLE: CheckoutOptions = CheckoutOptions {
    sparse: Vec::new(),
    submodules: false,
    keep_git_dir: true,
};

/// What one run did.
struct Run {
    /// The checked-out revision, `<branch>@sha1:<commit>`.
    checkout_revision: String,
    /// The pushed commit and its message, if anything changed.
    pushed: Option<(String, String)>,
    update: TreeUpdate,
}

/// Runs the steps; `Ok` when the repository is up to date.
pub async fn reconcile(
    context: &AutomationContext,
    object: &mut ImageUpdateAutomation,
    lifecycle: &Lifecycle<'_, ImageUpdateAutomation>,
) -> Result<(), Outcome> {
    let status = object.status.get_or_insert_with(Default::default);
    status.last_automation_run_time = Some(Time(now()));
    validate(object)?;
    let source = lifecycle.step("source", source_of(context, object)).await?;
    let policies = Arc::new(
        lifecycle
            .step("policies", policies_of(context, object))
            .await?,
    );
    if lifecycle
        .step(
            "remote",
            unchanged_since_last_run(object, lifecycle, &source, &policies),
        )
        .await?
    {
        tracing::debug!(namespace = %object.namespace().unwrap_or_default(), name = %object.name_any(), "remote and policies unchanged; no clone");
        return Ok(());
    }
    let run = lifecycle
        .step("update", update_and_push(object, &source, policies.clone()))
        .await?;
    let status = object.status.get_or_insert_with(Default::default);
    status.observed_policies = policies.ready.clone();
    status.observed_source_revision = Some(run.checkout_revision.clone());
    if let Some((commit, message)) = &run.pushed {
        status.last_push_commit = Some(commit.clone());
        status.last_push_time = Some(Time(now()));
        if !source.switches_branch() {
            status.observed_source_revision = Some(format!("{}@sha1:{commit}", source.push_branch));
        }
        let event = ObjectEvent::info(
            reason::SUCCEEDED,
            push_summary(object, &source, commit, message),
        );
        lifecycle.publish_after_status(
            event.with_revision(format!("{}@sha1:{commit}", source.push_branch)),
        );
    } else {
        tracing::debug!(namespace = %object.namespace().unwrap_or_default(), name = %object.name_any(), "no change since last reconciliation");
    }
    let outcome = unresolved_outcome(&run.update);
    if let Err(Outcome::Waiting(failure)) = &outcome
        && !already_reported(object, &failure.message)
    {
        lifecycle.publish_after_status(ObjectEvent::error(
            reasons::UPDATE_FAILED,
            failure.message.clone(),
        ));
    }
    outcome
}

/// Whether the last run finished cleanly for this spec and these policies and the checkout ref
/// still points at the commit it left: then a clone would change nothing (one `ls-remote`).
async fn unchanged_since_last_run(
    object: &ImageUpdateAutomation,
    lifecycle: &Lifecycle<'_, ImageUpdateAutomation>,
    source: &Source,
    policies: &Policies,
) -> Result<bool, Outcome> {
    let Some(status) = &object.status else {
        return Ok(false);
    };
    let settled = !source.switches_branch()
        && push_spec(object)
            .and_then(|push| push.refspec.as_ref())
            .is_none()
        && object.metadata.generation.is_some()
        && status.observed_generation == object.metadata.generation
        && status.observed_policies == policies.ready
        && lifecycle
            .previous_ready()
            .is_some_and(|ready| ready.status == "True");
    let Some(observed) = status
        .observed_source_revision
        .as_deref()
        .filter(|_| settled)
    else {
        return Ok(false);
    };
    let resolved = source
        .remote
        .resolve(&source.checkout)
        .await
        .map_err(|e| git_failure("failed to list the remote's refs", &e))?;
    Ok(resolved
        .commit
        .as_deref()
        .is_some_and(|commit| resolved.revision(commit) == observed))
}

/// Whether Ready already carries `message`, so a repeated report raises no new event.
fn already_reported(object: &ImageUpdateAutomation, message: &str) -> bool {
    object
        .status
        .as_ref()
        .and_then(|status| status.conditions.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|ready| ready.message == message)
}

fn now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

/// Stalls on settings that cannot work whatever the repository holds.
fn validate(object: &ImageUpdateAutomation) -> Result<(), Outcome> {
    if let Some(update) = &object.spec.update
        && update.strategy != "Setters"
    {
        return Err(Outcome::stalled(
            reasons::INVALID_UPDATE_STRATEGY,
            format!(
                "update strategy '{}' is not supported; use Setters",
                update.strategy
            ),
        ));
    }
    let commit = object.spec.git.as_ref().map(|git| &git.commit);
    if let Some(template) = commit.and_then(|commit| commit.message_template.as_deref()) {
        template::validate(template).map_err(|e| template_failure(&e))?;
    }
    Ok(())
}

fn template_failure(error: &TemplateError) -> Outcome {
    let reason = match error {
        TemplateError::RemovedField(_) => reasons::REMOVED_TEMPLATE_FIELD,
        TemplateError::Parse(_) | TemplateError::Render(_) => reasons::INVALID_SOURCE_CONFIGURATION,
    };
    Outcome::stalled(reason, error.to_string())
}

/// Markers of this automation that could not be applied keep it not Ready, named one by one.
fn unresolved_outcome(update: &TreeUpdate) -> Result<(), Outcome> {
    if update.unresolved.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = update
        .unresolved
        .iter()
        .take(10)
        .map(|m| format!("{}:{} ({}): {}", m.file, m.line, m.marker, m.reason))
        .collect();
    Err(Outcome::waiting(
        reason::DEPENDENCY_NOT_READY,
        format!(
            "{} marker(s) left unchanged: {}",
            update.unresolved.len(),
            listed.join("; ")
        ),
    ))
}

/// Flux's push event: `pushed commit '<short>' to branch '<b>'[ and refspecs '<r>']\n<message>`.
fn push_summary(
    object: &ImageUpdateAutomation,
    source: &Source,
    commit: &str,
    message: &str,
) -> String {
    let refspec = push_spec(object).and_then(|push| push.refspec.clone());
    let mut summary = format!(
        "pushed commit '{}' to branch '{}'",
        &commit[..commit.len().min(7)],
        source.push_branch
    );
    if let Some(refspec) = refspec {
        summary.push_str(&format!(" and refspecs '{refspec}'"));
    }
    format!("{summary}\n{message}")
}

fn push_spec(object: &ImageUpdateAutomation) -> Option<&sluice_api::image::PushSpec> {
    object.spec.git.as_ref()?.push.as_ref()
}

/// Clones, applies and pushes; a push rejected because the remote moved is retried from a
/// fresh clone, at most [`MAX_PUSH_ATTEMPTS`] times.
async fn update_and_push(
    object: &ImageUpdateAutomation,
    source: &Source,
    policies: Arc<Policies>,
) -> Result<Run, Outcome> {
    let mut attempt = 1;
    loop {
        match attempt_run(object, source, policies.clone()).await {
            Err(AttemptError::Rejected(message)) if attempt < MAX_PUSH_ATTEMPTS => {
                tracing::info!(attempt, %message, "push rejected; the remote moved, retrying from a fresh clone");
                attempt += 1;
            }
            Err(AttemptError::Rejected(message)) => {
                return Err(Outcome::retry(
                    reason::GIT_OPERATION_FAILED,
                    format!("failed to push after {attempt} attempts: {message}"),
                ));
            }
            Err(AttemptError::Outcome(outcome)) => return Err(outcome),
            Ok(run) => return Ok(run),
        }
    }
}

enum AttemptError {
    /// The remote branch has commits the clone lacks.
    Rejected(String),
    Outcome(Outcome),
}

impl From<Outcome> for AttemptError {
    fn from(outcome: Outcome) -> Self {
        Self::Outcome(outcome)
    }
}

fn git_failure(what: &str, error: &GitError) -> Outcome {
    Outcome::retry(reason::GIT_OPERATION_FAILED, format!("{what}: {error}"))
}

async fn attempt_run(
    object: &ImageUpdateAutomation,
    source: &Source,
    policies: Arc<Policies>,
) -> Result<Run, AttemptError> {
    let workdir = tempfile::Builder::new()
        .prefix("image-automation-")
        .tempdir()
        .map_err(|e| {
            Outcome::retry(
                reason::GIT_OPERATION_FAILED,
                format!("creating a checkout directory failed: {e}"),
            )
        })?;
    let dir = workdir.path().join("checkout");
    let remote = &source.remote;
    let checked_out = remote
        .checkout_unresolved(&source.checkout, &dir, &COMMITTABLE)
        .await
        .map_err(|e| git_failure("failed to checkout source", &e))?;
    let update = apply_setters(dir.clone(), object.update_path().to_owned(), policies).await?;
    for (file, problem) in &update.problem_files {
        tracing::warn!(namespace = %object.namespace().unwrap_or_default(), name = %object.name_any(), %file, %problem, "file skipped by the setters");
    }
    let mut run = Run {
        checkout_revision: checked_out.revision,
        pushed: None,
        update,
    };
    if !run.update.files.is_empty() {
        run.pushed = commit_and_push(object, source, &dir, &run.update).await?;
    }
    Ok(run)
}

/// Commits the updated checkout `dir` with the rendered message and pushes it; the commit and
/// its message, `None` when git found nothing to commit.
async fn commit_and_push(
    object: &ImageUpdateAutomation,
    source: &Source,
    dir: &Path,
    update: &TreeUpdate,
) -> Result<Option<(String, String)>, AttemptError> {
    let git = object.spec.git.as_ref().ok_or_else(|| {
        Outcome::stalled(reasons::INVALID_SOURCE_CONFIGURATION, "spec.git is not set")
    })?;
    let commit_spec = &git.commit;
    let template = commit_spec
        .message_template
        .as_deref()
        .unwrap_or(DEFAULT_COMMIT_MESSAGE);
    let message = template::render(
        template,
        &object.namespace().unwrap_or_default(),
        &object.name_any(),
        &update.files,
        &commit_spec.message_template_values,
    )
    .map_err(|e| template_failure(&e))?;
    let author = CommitAuthor {
        name: commit_spec
            .author
            .name
            .clone()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| commit_spec.author.email.clone()),
        email: commit_spec.author.email.clone(),
    };
    let push = git.push.clone().unwrap_or_default();
    let remote = &source.remote;
    if source.switches_branch() || push.refspec.is_some() {
        remote
            .switch_to_branch(dir, &source.push_branch)
            .await
            .map_err(|e| git_failure("failed to switch branch", &e))?;
    }
    let committed = match &source.signer {
        Some(signer) => {
            remote
                .commit_all_signed(dir, &author, &message, signer)
                .await
        }
        None => remote.commit_all(dir, &author, &message).await,
    };
    let Some(commit) = committed.map_err(|e| git_failure("failed to commit", &e))? else {
        return Ok(None);
    };
    let mut targets = vec![if source.switches_branch() {
        PushTarget::Refspec(format!("+HEAD:refs/heads/{}", source.push_branch))
    } else {
        PushTarget::Branch(source.push_branch.clone())
    }];
    targets.extend(push.refspec.clone().map(PushTarget::Refspec));
    match remote.push(dir, &targets, &push.options).await {
        Ok(()) => Ok(Some((commit, message))),
        Err(GitError::Operation(text)) if is_rejection(&text) => Err(AttemptError::Rejected(text)),
        Err(error) => Err(git_failure("failed to push", &error).into()),
    }
}

fn is_rejection(text: &str) -> bool {
    [
        "[rejected]",
        "fetch first",
        "non-fast-forward",
        "cannot lock ref",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// Applies the setters under `path` off the async runtime (file I/O and parsing).
async fn apply_setters(
    dir: PathBuf,
    path: String,
    policies: Arc<Policies>,
) -> Result<TreeUpdate, Outcome> {
    tokio::task::spawn_blocking(move || {
        update_tree(&dir, &path, &|marker| policies.resolve(marker))
    })
    .await
    .map_err(|e| {
        Outcome::retry(
            reasons::UPDATE_FAILED,
            format!("applying the setters failed: {e}"),
        )
    })?
    .map_err(|e| match e {
        crate::setters::SetterError::InvalidPath(_) => {
            Outcome::stalled(reasons::UPDATE_FAILED, e.to_string())
        }
        _ => Outcome::retry(reasons::UPDATE_FAILED, e.to_string()),
    })
}
