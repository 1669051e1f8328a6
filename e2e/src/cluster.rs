//! A real Kubernetes control plane as local processes: etcd and kube-apiserver on free loopback
//! ports with a generated PKI, and in "nodes" mode kube-controller-manager, kube-scheduler and
//! kwok with one fake node, so that Deployments become Available.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config};
use tokio::sync::OnceCell;

use crate::net::{free_port, restartable_port, wait_for_port};
use crate::process::Supervised;
use crate::tls::{TestCa, key_pair_pem};
use crate::{Error, Result, tools};

/// How long a component may take to become ready; kube-apiserver's RBAC bootstrap can take
/// half a minute on a loaded 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Name of the fake node that kwok manages in nodes mode.
pub const FAKE_NODE: &str = "kwok-node-0";

/// Which components to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// etcd and kube-apiserver only: enough for CRDs, SSA, finalizers and status.
    ApiOnly,
    /// Also kube-controller-manager, kube-scheduler and kwok with a fake node.
    Nodes,
}

/// A running control plane. Its processes stop when it is dropped or the test process exits.
pub struct ControlPlane {
    mode: Mode,
    dir: PathBuf,
    kubeconfig: PathBuf,
    server: String,
    ca: TestCa,
    processes: Mutex<Vec<Supervised>>,
    /// kube-apiserver's flags, to start it again after [`ControlPlane::restart_apiserver`].
    apiserver_args: Vec<String>,
    namespaces: AtomicU64,
}

static SHARED: OnceCell<Result<ControlPlane, String>> = OnceCell::const_new();
static SHARED_NODES: OnceCell<Result<ControlPlane, String>> = OnceCell::const_new();

impl ControlPlane {
    /// The control plane shared by all tests of this test binary (API only), with Sluice's CRDs
    /// installed. Started on first use; isolate tests with [`ControlPlane::namespace`].
    pub async fn shared() -> Result<&'static ControlPlane> {
        Self::shared_in(&SHARED, Mode::ApiOnly).await
    }

    /// Like [`ControlPlane::shared`], in nodes mode (Deployments become Available).
    pub async fn shared_with_nodes() -> Result<&'static ControlPlane> {
        Self::shared_in(&SHARED_NODES, Mode::Nodes).await
    }

    async fn shared_in(
        cell: &'static OnceCell<Result<ControlPlane, String>>,
        mode: Mode,
    ) -> Result<&'static ControlPlane> {
        let started = cell
            .get_or_init(|| async move {
                let plane = ControlPlane::start(mode).await.map_err(|e| e.to_string())?;
                plane.install_crds().await.map_err(|e| e.to_string())?;
                Ok(plane)
            })
            .await;
        started
            .as_ref()
            .map_err(|e| Error::Setup(format!("the shared control plane did not start: {e}")))
    }

    /// Starts a new control plane in its own temporary directory.
    pub async fn start(mode: Mode) -> Result<ControlPlane> {
        let dir = tempfile::Builder::new()
            .prefix("sluice-cp-")
            .tempdir()?
            .keep();
        let plane = tokio::task::spawn_blocking(move || Self::start_processes(mode, dir))
            .await
            .map_err(|e| Error::Setup(format!("control plane start-up panicked: {e}")))??;
        plane.wait_until_serving().await?;
        if mode == Mode::Nodes {
            plane.start_nodes().await?;
        }
        Ok(plane)
    }

    fn start_processes(mode: Mode, dir: PathBuf) -> Result<ControlPlane> {
        let pki = dir.join("pki");
        std::fs::create_dir_all(&pki)?;
        let ca = TestCa::new("sluice-e2e-ca")?;
        std::fs::write(pki.join("ca.crt"), ca.cert_pem())?;
        ca.server_cert(&["kubernetes", "kubernetes.default", "kubernetes.default.svc"])?
            .write(&pki, "apiserver")?;
        ca.client_cert("sluice-e2e-admin", &["system:masters"])?
            .write(&pki, "admin")?;
        let (sa_key, sa_pub) = key_pair_pem()?;
        std::fs::write(pki.join("sa.key"), sa_key)?;
        std::fs::write(pki.join("sa.pub"), sa_pub)?;

        let etcd_port = free_port()?;
        let peer_port = free_port()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd = Supervised::spawn(
            "etcd",
            &tools::binary("etcd")?,
            &args(&[
                "--name=e2e",
                &format!("--data-dir={}", dir.join("etcd").display()),
                &format!("--listen-client-urls={etcd_url}"),
                &format!("--advertise-client-urls={etcd_url}"),
                &format!("--listen-peer-urls={peer_url}"),
                &format!("--initial-advertise-peer-urls={peer_url}"),
                &format!("--initial-cluster=e2e={peer_url}"),
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ]),
            &[],
            &dir.join("etcd.log"),
            Some(&dir),
        )?;
        if !wait_for_port(etcd_port, START_TIMEOUT) {
            return Err(not_ready("etcd", &etcd));
        }

        let api_port = restartable_port()?;
        let server = format!("https://127.0.0.1:{api_port}");
        let p = |name: &str| pki.join(name).display().to_string();
        let apiserver_args = args(&[
            &format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            &format!("--secure-port={api_port}"),
            &format!("--cert-dir={}", pki.display()),
            &format!("--tls-cert-file={}", p("apiserver.crt")),
            &format!("--tls-private-key-file={}", p("apiserver.key")),
            &format!("--client-ca-file={}", p("ca.crt")),
            "--authorization-mode=RBAC",
            &format!("--service-account-issuer={server}"),
            &format!("--service-account-key-file={}", p("sa.pub")),
            &format!("--service-account-signing-key-file={}", p("sa.key")),
            "--service-cluster-ip-range=10.96.0.0/16",
            "--allow-privileged=true",
            // Pods need no token volumes here: nothing runs in them.
            "--disable-admission-plugins=ServiceAccount",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
        ]);
        let apiserver = spawn_apiserver(&dir, &apiserver_args)?;

        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            kubeconfig_yaml(&server, &p("ca.crt"), &p("admin.crt"), &p("admin.key")),
        )?;
        Ok(ControlPlane {
            mode,
            dir,
            kubeconfig,
            server,
            ca,
            processes: Mutex::new(vec![etcd, apiserver]),
            apiserver_args,
            namespaces: AtomicU64::new(0),
        })
    }

    /// SIGKILLs kube-apiserver (a crash), waits `down`, starts it again with the same flags and
    /// port and waits until it serves; etcd keeps the data. Needs a multi-threaded runtime.
    pub async fn restart_apiserver(&self, down: Duration) -> Result<()> {
        tokio::task::block_in_place(|| {
            let mut processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
            let at = processes
                .iter()
                .position(|p| p.name() == "kube-apiserver")
                .ok_or_else(|| Error::Setup("kube-apiserver is not running".to_string()))?;
            processes.remove(at).kill()
        })?;
        tokio::time::sleep(down).await;
        let apiserver = spawn_apiserver(&self.dir, &self.apiserver_args)?;
        self.processes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(apiserver);
        self.wait_until_serving().await
    }

    async fn wait_until_serving(&self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let client = self.client().await?;
        let namespaces: Api<Namespace> = Api::all(client);
        loop {
            match namespaces.get_opt("default").await {
                Ok(Some(_)) => return Ok(()),
                Ok(None) | Err(_) if Instant::now() < deadline => {
                    if let Some(dead) = self.first_stopped_process() {
                        return Err(dead);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(None) | Err(_) => return Err(self.not_ready_error("kube-apiserver")),
            }
        }
    }

    async fn start_nodes(&self) -> Result<()> {
        let kubeconfig = self.kubeconfig.display().to_string();
        let ca = self.dir.join("pki/ca.crt").display().to_string();
        let sa_key = self.dir.join("pki/sa.key").display().to_string();
        let controllers = [
            "deployment-controller",
            "replicaset-controller",
            "statefulset-controller",
            "daemonset-controller",
            "job-controller",
            "cronjob-controller",
            "garbage-collector-controller",
            "namespace-controller",
            "serviceaccount-controller",
            "serviceaccount-token-controller",
            "node-lifecycle-controller",
            "endpointslice-controller",
            "pod-garbage-collector-controller",
        ]
        .join(",");
        let controller_manager = Supervised::spawn(
            "kube-controller-manager",
            &tools::binary("kube-controller-manager")?,
            &args(&[
                &format!("--kubeconfig={kubeconfig}"),
                &format!("--authentication-kubeconfig={kubeconfig}"),
                &format!("--authorization-kubeconfig={kubeconfig}"),
                "--leader-elect=false",
                "--secure-port=0",
                &format!("--root-ca-file={ca}"),
                &format!("--service-account-private-key-file={sa_key}"),
                &format!("--controllers={controllers}"),
                "--kube-api-qps=1000",
                "--kube-api-burst=2000",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
            ]),
            &[],
            &self.dir.join("kube-controller-manager.log"),
            None,
        )?;
        let scheduler_port = free_port()?;
        let scheduler = Supervised::spawn(
            "kube-scheduler",
            &tools::binary("kube-scheduler")?,
            &args(&[
                &format!("--kubeconfig={kubeconfig}"),
                &format!("--authentication-kubeconfig={kubeconfig}"),
                &format!("--authorization-kubeconfig={kubeconfig}"),
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                &format!("--secure-port={scheduler_port}"),
            ]),
            &[],
            &self.dir.join("kube-scheduler.log"),
            None,
        )?;
        let kwok_config = self.dir.join("kwok.yaml");
        std::fs::write(&kwok_config, kwok_stages(&tools::binary("kwok-stages")?)?)?;
        let kwok = Supervised::spawn(
            "kwok",
            &tools::binary("kwok")?,
            &args(&[
                &format!("--kubeconfig={kubeconfig}"),
                &format!("--config={}", kwok_config.display()),
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--manage-nodes-with-label-selector=",
                "--manage-single-node=",
                "--cidr=10.244.0.0/16",
                "--node-ip=10.244.0.1",
                "--node-lease-duration-seconds=40",
            ]),
            &[],
            &self.dir.join("kwok.log"),
            None,
        )?;
        {
            let mut processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
            // Stop order on drop is reverse: kwok before kcm, so node-lifecycle never taints the node.
            processes.extend([controller_manager, scheduler, kwok]);
        }
        self.create_fake_node().await
    }

    async fn create_fake_node(&self) -> Result<()> {
        let nodes: Api<Node> = Api::all(self.client().await?);
        let node: Node = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": FAKE_NODE,
                "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
                "labels": {
                    "beta.kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "kubernetes.io/hostname": FAKE_NODE,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/role": "agent",
                    "node-role.kubernetes.io/agent": "",
                    "type": "kwok"
                }
            },
            "status": {
                "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}
            }
        }))
        .map_err(|e| Error::Setup(format!("fake node manifest is invalid: {e}")))?;
        nodes.create(&PostParams::default(), &node).await?;
        let ready = await_condition(nodes, FAKE_NODE, |node: Option<&Node>| {
            let conditions = node
                .and_then(|n| n.status.as_ref())
                .and_then(|s| s.conditions.as_ref());
            let ready = conditions
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let tainted = node
                .and_then(|n| n.spec.as_ref())
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|t| !t.is_empty());
            ready && !tainted
        });
        match tokio::time::timeout(START_TIMEOUT, ready).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(self.not_ready_error("kwok fake node (Ready and untainted)")),
        }
    }

    /// Applies every CRD in the workspace's `deploy/crds/` and waits until each is Established.
    pub async fn install_crds(&self) -> Result<()> {
        let crds_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds");
        self.apply_crds_from(&crds_dir).await
    }

    /// Applies every `*.yaml` CRD in `dir` and waits until each is Established.
    pub async fn apply_crds_from(&self, dir: &Path) -> Result<()> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client().await?);
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| Error::Setup(format!("cannot read CRD directory {}: {e}", dir.display())))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::Setup(format!(
                "no CRD YAML in {}; run `cargo crds` to generate it",
                dir.display()
            )));
        }
        for file in files {
            let text = std::fs::read_to_string(&file)?;
            let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).map_err(|e| {
                Error::Setup(format!(
                    "{} is not a CustomResourceDefinition: {e}",
                    file.display()
                ))
            })?;
            let name = crd.metadata.name.clone().unwrap_or_default();
            let params = kube::api::PatchParams::apply("sluice-e2e").force();
            api.patch(&name, &params, &kube::api::Patch::Apply(&crd))
                .await
                .map_err(|e| {
                    Error::Setup(format!(
                        "the apiserver rejected CRD {} from {}: {e}",
                        name,
                        file.display()
                    ))
                })?;
            let established = await_condition(api.clone(), &name, conditions::is_crd_established());
            tokio::time::timeout(Duration::from_secs(30), established)
                .await
                .map_err(|_| Error::Setup(format!("CRD {name} was not Established within 30s")))?
                .map_err(|e| Error::Setup(format!("waiting for CRD {name}: {e}")))?;
        }
        Ok(())
    }

    /// A new client (admin, `system:masters`) bound to the calling tokio runtime.
    pub async fn client(&self) -> Result<Client> {
        self.client_from(&self.kubeconfig).await
    }

    /// A client that authenticates as `user` in `groups` with a client certificate from the
    /// control plane's CA, for RBAC and impersonation tests.
    pub async fn client_as(&self, user: &str, groups: &[&str]) -> Result<Client> {
        let stem = format!("user-{}", self.namespaces.fetch_add(1, Ordering::Relaxed));
        let pki = self.dir.join("pki");
        let (cert, key) = self.ca.client_cert(user, groups)?.write(&pki, &stem)?;
        let path = self.dir.join(format!("{stem}.kubeconfig"));
        let ca = pki.join("ca.crt");
        std::fs::write(
            &path,
            kubeconfig_yaml(
                &self.server,
                &ca.display().to_string(),
                &cert.display().to_string(),
                &key.display().to_string(),
            ),
        )?;
        self.client_from(&path).await
    }

    async fn client_from(&self, path: &Path) -> Result<Client> {
        let kubeconfig = Kubeconfig::read_from(path)
            .map_err(|e| Error::Setup(format!("cannot read kubeconfig {}: {e}", path.display())))?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Setup(format!("invalid kubeconfig {}: {e}", path.display())))?;
        Ok(Client::try_from(config)?)
    }

    /// Creates a fresh namespace named `<prefix>-<n>-<random>` and returns its name.
    pub async fn namespace(&self, prefix: &str) -> Result<String> {
        let name = format!(
            "{prefix}-{}-{:06x}",
            self.namespaces.fetch_add(1, Ordering::Relaxed),
            rand_suffix()
        );
        let namespaces: Api<Namespace> = Api::all(self.client().await?);
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.clone());
        namespaces.create(&PostParams::default(), &ns).await?;
        Ok(name)
    }

    /// Path of the admin kubeconfig, for processes under test.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The apiserver URL (`https://127.0.0.1:<port>`).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The mode this control plane runs in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The working directory with PKI, kubeconfig and component logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// PIDs of the running components, by name.
    pub fn pids(&self) -> Vec<(String, Option<u32>)> {
        let processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        processes
            .iter()
            .map(|p| (p.name().to_string(), p.pid()))
            .collect()
    }

    fn first_stopped_process(&self) -> Option<Error> {
        let mut processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        processes
            .iter_mut()
            .find_map(|p| (!p.is_running()).then(|| not_ready(p.name(), p)))
    }

    fn not_ready_error(&self, what: &str) -> Error {
        let processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        let log = processes
            .iter()
            .map(|p| format!("--- {} ---\n{}", p.name(), p.log_tail(1500)))
            .collect();
        Error::NotReady {
            what: what.to_string(),
            seconds: START_TIMEOUT.as_secs(),
            log,
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let mut processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(mut process) = processes.pop() {
            process.stop();
        }
    }
}

fn spawn_apiserver(dir: &Path, args: &[String]) -> Result<Supervised> {
    Supervised::spawn(
        "kube-apiserver",
        &tools::binary("kube-apiserver")?,
        args,
        &[],
        &dir.join("kube-apiserver.log"),
        None,
    )
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn not_ready(what: &str, process: &Supervised) -> Error {
    Error::NotReady {
        what: what.to_string(),
        seconds: START_TIMEOUT.as_secs(),
        log: process.log_tail(3000),
    }
}

fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ std::process::id().rotate_left(12)) & 0xff_ffff
}

fn kubeconfig_yaml(server: &str, ca: &str, cert: &str, key: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sluice-e2e\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: admin\n  user:\n    client-certificate: {cert}\n    client-key: {key}\ncontexts:\n- name: sluice-e2e\n  context:\n    cluster: sluice-e2e\n    user: admin\ncurrent-context: sluice-e2e\n"
    )
}

/// kwok's own fast node and pod lifecycle stages, read from its module in the Go module cache.
fn kwok_stages(stage_dir: &Path) -> Result<String> {
    let files = [
        "node/fast/node-initialize.yaml",
        "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
        "pod/fast/pod-ready.yaml",
        "pod/fast/pod-complete.yaml",
        "pod/fast/pod-delete.yaml",
    ];
    let mut config = String::new();
    for file in files {
        let path = stage_dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::Setup(format!(
                "kwok stage {} is missing ({e}); rerun e2e/tools/build.sh kwok",
                path.display()
            ))
        })?;
        config.push_str(&text);
        config.push_str("\n---\n");
    }
    Ok(config)
}
