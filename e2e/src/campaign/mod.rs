//! The randomized fault campaign (issue 14): per seeded run, a GitRepository and Kustomization
//! in a fresh namespace, our controllers as processes, a random sequence of pushes and faults,
//! then a check that the cluster holds exactly the last good revision's objects.

pub mod check;
pub mod model;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube::api::Api;
use sluice_api::kustomize::Kustomization;
use sluice_api::source::GitRepository;

use crate::git::GitServer;
use crate::gitops::{self, Controller, Controllers, Scope, main_revision};
use crate::{ControlPlane, Error, Result};
use check::NAME;
use model::{Kind, RepoModel, Rng, Step};

/// How long a run may take to settle after its last step.
const SETTLE: Duration = Duration::from_secs(90);

/// Timing of a run: reconcile intervals and the number of steps.
#[derive(Clone, Debug)]
pub struct Settings {
    /// GitRepository `spec.interval`.
    pub source_interval: String,
    /// Kustomization `spec.interval` and `spec.retryInterval`.
    pub apply_interval: String,
    /// Steps per run are drawn from `min_steps..=max_steps`.
    pub min_steps: usize,
    pub max_steps: usize,
    /// Longest pause between two steps.
    pub max_pause: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            source_interval: "1s".to_string(),
            apply_interval: "2s".to_string(),
            min_steps: 5,
            max_steps: 10,
            max_pause: Duration::from_millis(1200),
        }
    }
}

/// What one run did and found.
#[derive(Debug)]
pub struct RunReport {
    pub seed: u64,
    pub namespace: String,
    pub elapsed: Duration,
    pub steps: BTreeMap<Kind, usize>,
    /// Broken invariants (and failures to settle), one line each.
    pub violations: Vec<String>,
    /// The controllers' log tails when a violation was found, else empty.
    pub logs: String,
    /// The controllers' log directory (kept when a violation was found).
    pub dir: PathBuf,
}

/// One run's moving parts.
struct Run<'a> {
    plane: &'a ControlPlane,
    git: &'a GitServer,
    repo: String,
    controllers: Controllers,
    client: kube::Client,
    namespace: String,
    repositories: Api<GitRepository>,
    kustomizations: Api<Kustomization>,
    /// Good revisions pushed → their ConfigMaps.
    good: BTreeMap<String, BTreeMap<String, String>>,
    head: String,
    model: RepoModel,
}

/// Runs the campaign's run with `seed` on `plane`, its repository on `git`; needs a
/// multi-threaded runtime (controller kills and restarts block).
pub async fn run_one(
    plane: &ControlPlane,
    git: &GitServer,
    seed: u64,
    settings: &Settings,
) -> Result<RunReport> {
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let namespace = plane.namespace("fault").await?;
    // Outside the control plane's directory, which is removed when it stops.
    let dir = std::env::temp_dir()
        .join("sluice-fault-campaign")
        .join(&namespace);
    let (files, model) = model::initial(&mut rng);
    let repo = namespace.clone();
    git.create_repo(&repo)?;
    let sha = git.commit_changes(&repo, "main", &files, &[], "initial")?;
    let kubeconfig = plane.kubeconfig_path().to_path_buf();
    let scope = Scope::Namespace(namespace.clone());
    let controllers_dir = dir.clone();
    let controllers = tokio::task::spawn_blocking(move || {
        Controllers::start(&kubeconfig, &controllers_dir, scope)
    })
    .await
    .map_err(|e| Error::Setup(format!("starting the controllers panicked: {e}")))??;
    let client = plane.client().await?;
    let mut run = Run {
        plane,
        git,
        repo,
        controllers,
        repositories: Api::namespaced(client.clone(), &namespace),
        kustomizations: Api::namespaced(client.clone(), &namespace),
        client,
        namespace: namespace.clone(),
        good: BTreeMap::new(),
        head: main_revision(&sha),
        model,
    };
    run.record();
    run.create_objects(settings).await?;
    let mut violations = Vec::new();
    if let Err(e) = run.settle().await {
        violations.push(format!("initial revision: {e}"));
    }
    let len = settings.min_steps
        + rng.below((settings.max_steps - settings.min_steps + 1) as u64) as usize;
    let steps = model::plan(&mut rng, run.model.clone(), len);
    let mut counts = BTreeMap::new();
    for step in steps {
        *counts.entry(step.kind()).or_insert(0) += 1;
        tokio::time::sleep(rng.millis(0, settings.max_pause.as_millis() as u64)).await;
        run.step(step).await?;
    }
    violations.extend(run.settle_and_check("after the steps").await?);
    if let Some(deletes) = model::repair(&run.model) {
        run.model.broken = false;
        run.model.failing = false;
        run.push(&BTreeMap::new(), &deletes)?;
        violations.extend(run.settle_and_check("after the repair").await?);
    }
    let mut logs = String::new();
    if violations.is_empty() {
        run.controllers.stop();
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        logs = run.controllers.log_tails();
        run.controllers.stop();
    }
    Ok(RunReport {
        seed,
        namespace,
        elapsed: started.elapsed(),
        steps: counts,
        violations,
        logs,
        dir,
    })
}

impl Run<'_> {
    /// Records the head as good when the model is.
    fn record(&mut self) {
        if self.model.is_good() {
            self.good
                .insert(self.head.clone(), self.model.objects.clone());
        }
    }

    /// Commits a change and records the new head.
    fn push(&mut self, writes: &BTreeMap<String, Vec<u8>>, deletes: &[String]) -> Result<()> {
        let sha = self
            .git
            .commit_changes(&self.repo, "main", writes, deletes, "campaign step")?;
        self.head = main_revision(&sha);
        self.record();
        Ok(())
    }

    async fn create_objects(&self, settings: &Settings) -> Result<()> {
        let url = self.git.http_url(&self.repo);
        let repository =
            gitops::git_repository(NAME, &self.namespace, &url, &settings.source_interval, None)?;
        gitops::apply(&self.repositories, &repository).await?;
        let mut ks = gitops::kustomization(
            NAME,
            &self.namespace,
            NAME,
            &format!("./{}", model::DIR),
            &settings.apply_interval,
            Some(&self.namespace),
        )?;
        ks.spec.retry_interval = Some(settings.apply_interval.clone());
        gitops::apply(&self.kustomizations, &ks).await?;
        Ok(())
    }

    async fn step(&mut self, step: Step) -> Result<()> {
        match step {
            Step::Push {
                writes,
                deletes,
                model,
                ..
            } => {
                self.model = model;
                self.push(&writes, &deletes)?;
            }
            Step::Kill { controller, down } => {
                tokio::task::block_in_place(|| self.controllers.kill(controller))?;
                tokio::time::sleep(down).await;
                tokio::task::block_in_place(|| self.controllers.restart(controller))?;
            }
            Step::GitOutage { down } => {
                let path = self.git.repo_path(&self.repo);
                let away = path.with_extension("offline");
                std::fs::rename(&path, &away)?;
                tokio::time::sleep(down).await;
                std::fs::rename(&away, &path)?;
            }
            Step::ArtifactOutage { down } => {
                tokio::task::block_in_place(|| self.controllers.kill(Controller::Source))?;
                gitops::request_reconcile(&self.kustomizations, NAME).await?;
                tokio::time::sleep(down).await;
                tokio::task::block_in_place(|| self.controllers.restart(Controller::Source))?;
            }
            Step::SlowGit { delay, duration } => {
                self.git.set_response_delay(delay);
                tokio::time::sleep(duration).await;
                self.git.set_response_delay(Duration::ZERO);
            }
            Step::ApiserverRestart { down } => self.plane.restart_apiserver(down).await?,
        }
        Ok(())
    }

    async fn settle(&self) -> std::result::Result<(), String> {
        let good = self.model.is_good();
        check::settle(
            &self.repositories,
            &self.kustomizations,
            &self.head,
            good,
            SETTLE,
        )
        .await
    }

    /// Settles, then checks every invariant; `when` prefixes each violation.
    async fn settle_and_check(&self, when: &str) -> Result<Vec<String>> {
        if let Err(e) = self.settle().await {
            return Ok(vec![format!("{when}: did not settle: {e}")]);
        }
        let found =
            check::violations(&self.client, &self.namespace, &self.good, &self.head).await?;
        Ok(found.into_iter().map(|v| format!("{when}: {v}")).collect())
    }
}
