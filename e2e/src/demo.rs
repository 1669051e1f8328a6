//! The local demo behind `sluice-dev`: the embedded control plane in nodes mode, a git server
//! with the demo repository from `e2e/testdata/demo/`, both controllers as processes, and a
//! GitRepository with dev and prod Kustomizations.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::Api;
use serde_json::json;
use sluice_api::kustomize::Kustomization;
use sluice_api::source::GitRepository;

use crate::git::GitServer;
use crate::gitops::{self, Controllers, Scope};
use crate::poll::eventually;
use crate::{ControlPlane, Error, Mode, Result, tools};

/// Namespace of the GitRepository and the Kustomizations.
pub const NAMESPACE: &str = "flux-system";
/// Name of the demo repository and of its GitRepository.
pub const REPOSITORY: &str = "demo";
/// Credentials the git server requires; pushing needs them too.
const GIT_USER: &str = "sluice";
const GIT_PASSWORD: &str = "demo";
/// The Secret holding [`GIT_USER`] and [`GIT_PASSWORD`] for the GitRepository.
const GIT_SECRET: &str = "demo-git-auth";
/// Environments: (Kustomization name, path in the repository, target namespace).
const ENVIRONMENTS: [(&str, &str, &str); 2] = [
    ("demo-dev", "./apps/dev", "dev"),
    ("demo-prod", "./apps/prod", "prod"),
];
/// How long the Kustomizations may take to become Ready after start-up.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// The directory whose files make up the demo repository.
pub fn repository_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/demo")
}

/// Every file under `dir` as (relative path with `/`, contents), sorted by path.
pub fn files_under(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path
                    .strip_prefix(dir)
                    .map_err(|e| Error::Setup(format!("{}: {e}", path.display())))?;
                let name = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                files.push((name, std::fs::read(&path)?));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Everything the demo runs; dropping it stops the controllers, the git server and the control
/// plane, in that order.
pub struct Demo {
    controllers: Controllers,
    git: GitServer,
    plane: ControlPlane,
}

impl Demo {
    /// Starts everything and applies the GitRepository and Kustomizations; `progress` receives
    /// one line per step.
    pub async fn start(progress: impl Fn(&str)) -> Result<Demo> {
        for controller in gitops::Controller::ALL {
            gitops::controller_binary(controller)?;
        }
        progress(
            "starting the embedded control plane in nodes mode (the first run builds the Kubernetes binaries, ~25 min)",
        );
        let plane = ControlPlane::start(Mode::Nodes).await?;
        plane.install_crds().await?;

        progress("starting the git server and committing the demo repository");
        let git = GitServer::builder()
            .basic_auth(GIT_USER, GIT_PASSWORD)
            .start()?;
        git.create_repo(REPOSITORY)?;
        git.commit(
            REPOSITORY,
            "main",
            files_under(&repository_dir())?,
            "Demo app: base with dev and prod overlays",
        )?;

        progress("starting source-controller and kustomize-controller");
        let kubeconfig = plane.kubeconfig_path().to_path_buf();
        let dir = plane.dir().join("controllers");
        let controllers = tokio::task::spawn_blocking(move || {
            Controllers::start(&kubeconfig, &dir, Scope::AllNamespaces)
        })
        .await
        .map_err(|e| Error::Setup(format!("starting the controllers panicked: {e}")))??;

        let demo = Demo {
            controllers,
            git,
            plane,
        };
        progress("applying the GitRepository and the dev and prod Kustomizations");
        demo.apply_objects().await?;
        Ok(demo)
    }

    async fn apply_objects(&self) -> Result<()> {
        let client = self.plane.client().await?;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let targets = ENVIRONMENTS.iter().map(|(_, _, ns)| *ns);
        for name in std::iter::once(NAMESPACE).chain(targets) {
            let mut namespace = Namespace::default();
            namespace.metadata.name = Some(name.to_string());
            gitops::apply(&namespaces, &namespace).await?;
        }
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": GIT_SECRET, "namespace": NAMESPACE},
            "stringData": {"username": GIT_USER, "password": GIT_PASSWORD},
        }))
        .map_err(|e| Error::Setup(format!("invalid Secret: {e}")))?;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
        gitops::apply(&secrets, &secret).await?;
        let repositories: Api<GitRepository> = Api::namespaced(client.clone(), NAMESPACE);
        let repository = gitops::git_repository(
            REPOSITORY,
            NAMESPACE,
            &self.git.http_url(REPOSITORY),
            "1m",
            Some(GIT_SECRET),
        )?;
        gitops::apply(&repositories, &repository).await?;
        let kustomizations: Api<Kustomization> = Api::namespaced(client, NAMESPACE);
        for (name, path, target) in ENVIRONMENTS {
            let ks = gitops::kustomization(name, NAMESPACE, REPOSITORY, path, "10m", Some(target))?;
            gitops::apply(&kustomizations, &ks).await?;
        }
        Ok(())
    }

    /// Waits until every Kustomization applied the current head of the demo repository.
    pub async fn wait_until_ready(&self) -> Result<()> {
        let revision = gitops::main_revision(&self.git.head(REPOSITORY, "main")?);
        let client = self.plane.client().await?;
        let kustomizations: Api<Kustomization> = Api::namespaced(client, NAMESPACE);
        let what = format!("the Kustomizations to apply {revision}");
        eventually(&what, READY_TIMEOUT, Duration::from_millis(500), || async {
            let mut waiting = Vec::new();
            for (name, _, _) in ENVIRONMENTS {
                let ks = kustomizations.get(name).await.map_err(|e| e.to_string())?;
                if !gitops::kustomization_ready_at(&ks, &revision) {
                    waiting.push(gitops::describe_kustomization(&ks));
                }
            }
            if waiting.is_empty() {
                Ok(())
            } else {
                Err(waiting.join("; "))
            }
        })
        .await
        .map_err(|timeout| {
            Error::Setup(format!(
                "{timeout}\ncontroller logs:\n{}",
                self.controllers.log_tails()
            ))
        })
    }

    /// A table of the GitRepository and Kustomizations: name, ready, revision, message.
    pub async fn status_table(&self) -> Result<String> {
        let client = self.plane.client().await?;
        let mut rows = vec![[
            "NAME".to_string(),
            "READY".to_string(),
            "REVISION".to_string(),
            "MESSAGE".to_string(),
        ]];
        let repositories: Api<GitRepository> = Api::namespaced(client.clone(), NAMESPACE);
        let status = repositories
            .get(REPOSITORY)
            .await?
            .status
            .unwrap_or_default();
        rows.push(row(
            &format!("gitrepository/{REPOSITORY}"),
            &status.conditions,
            status.artifact.map(|a| a.revision),
        ));
        let kustomizations: Api<Kustomization> = Api::namespaced(client, NAMESPACE);
        for (name, _, _) in ENVIRONMENTS {
            let status = kustomizations.get(name).await?.status.unwrap_or_default();
            rows.push(row(
                &format!("kustomization/{name}"),
                &status.conditions,
                status.last_applied_revision,
            ));
        }
        let widths: Vec<usize> = (0..3)
            .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
            .collect();
        Ok(rows
            .iter()
            .map(|r| {
                format!(
                    "  {:w0$}  {:w1$}  {:w2$}  {}\n",
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    w0 = widths[0],
                    w1 = widths[1],
                    w2 = widths[2]
                )
            })
            .collect())
    }

    /// How to reach the cluster, push a change to the demo repository and watch it roll out.
    pub fn instructions(&self) -> Result<String> {
        let kubeconfig = self.plane.kubeconfig_path().display().to_string();
        let kubectl = tools::binary("kubectl")?.display().to_string();
        let clone_url = crate::git::url_with_credentials(
            &self.git.http_url(REPOSITORY),
            GIT_USER,
            GIT_PASSWORD,
        );
        Ok(format!(
            "Use the cluster:
  export KUBECONFIG={kubeconfig}
  alias kubectl={kubectl}
  kubectl -n {NAMESPACE} get gitrepositories,kustomizations
  kubectl -n prod get deployments,services,configmaps

Push a change and watch it roll out (prod goes from 2 to 3 replicas):
  cd \"$(mktemp -d)\" && git clone {clone_url} && cd {REPOSITORY}
  sed -i 's/replicas: 2/replicas: 3/' apps/prod/kustomization.yaml
  git -c user.name=demo -c user.email=demo@example.com commit -qam 'prod: 3 replicas' && git push -q
  kubectl -n {NAMESPACE} annotate --overwrite gitrepository/{REPOSITORY} reconcile.fluxcd.io/requestedAt=\"$(date +%s)\"   # else within 1m
  kubectl -n {NAMESPACE} get kustomizations -w
  kubectl -n prod get deployment podinfo -w

Logs: {logs} (controllers in controllers/)
Press Ctrl-C to stop everything.",
            logs = self.plane.dir().display(),
        ))
    }
}

fn row(
    name: &str,
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    revision: Option<String>,
) -> [String; 4] {
    let ready = gitops::ready_condition(conditions);
    [
        name.to_string(),
        ready
            .map(|c| c.status.clone())
            .unwrap_or_else(|| "Unknown".to_string()),
        revision.unwrap_or_else(|| "-".to_string()),
        ready
            .map(|c| c.message.replace('\n', " "))
            .unwrap_or_default(),
    ]
}
