//! source-controller on the bulk shapes of Flux's HelmChart and Bucket sources, run as a process
//! against a local control plane:
//! - `helm N`: N HelmCharts from one HelmRepository whose index lists 2,000 chart versions;
//! - `bucket N`: one Bucket holding N objects on a real S3-compatible server (s3s-fs).
//!
//! Round "first" runs until every artifact is stored; round "unchanged" after a `requestedAt`
//! annotation on each object, until handled.
//!
//! `cargo build --release --bins -p source-controller &&
//!  cargo run --release -p source-controller --example kinds-bench -- helm 1000`

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, anyhow};
use clap::{Parser, Subcommand};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sluice_api::meta::RECONCILE_REQUESTED_AT_ANNOTATION;
use sluice_api::source::{Bucket, HelmChart, HelmRepository};
use sluice_e2e::ControlPlane;
use sluice_e2e::bench::procfs::{CpuTimes, Proc, mib, reset_peak_rss};
use sluice_e2e::bench::prometheus::ApiRequests;
use sluice_e2e::bench::{
    ControllerProcess, PassthroughArgs, Percentiles, first_seen, print_step_summary, profile_of,
    secs, sibling_binary,
};
use sluice_e2e::chart_repo::{
    ChartRepoOptions, ChartRepository, IndexEntry, chart_archive, index_yaml,
};
use sluice_e2e::net::free_port;
use sluice_e2e::s3::S3Server;

/// The whole run must finish within this.
const OVERALL_TIMEOUT: Duration = Duration::from_secs(40 * 60);
/// How long one round may take.
const ROUND_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// API calls (and S3 uploads) made in parallel while setting up or annotating.
const CLIENT_CONCURRENCY: usize = 16;

/// Benchmark source-controller on many HelmCharts or one large Bucket.
#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    shape: Shape,

    /// The controller's --concurrent.
    #[arg(long, default_value_t = 10, global = true)]
    concurrent: u16,

    #[command(flatten)]
    passthrough: PassthroughArgs,
}

#[derive(Debug, Subcommand)]
enum Shape {
    /// N HelmCharts from one HelmRepository.
    Helm {
        #[arg(default_value_t = 1000)]
        charts: usize,
        /// Chart versions listed in the repository's index.
        #[arg(long, default_value_t = 2000)]
        versions: usize,
        /// Distinct chart names in the index (the versions are spread over them).
        #[arg(long, default_value_t = 100)]
        names: usize,
    },
    /// One Bucket holding N objects.
    Bucket {
        #[arg(default_value_t = 10_000)]
        objects: usize,
    },
}

/// What one round cost.
struct Round {
    name: &'static str,
    wall: Duration,
    per_object: Percentiles,
    controller_cpu: CpuTimes,
    peak_rss_kib: u64,
    api: ApiRequests,
    server: String,
}

/// The servers a shape runs against; they stop when dropped.
enum Servers {
    Helm(ChartRepository),
    Bucket(S3Server),
}

impl Servers {
    /// What the servers were asked so far, for the round report.
    fn counts(&self) -> BTreeMap<&'static str, usize> {
        match self {
            Self::Helm(repository) => {
                let requests = repository.requests();
                let index = requests.iter().filter(|r| r.path == "index.yaml").count();
                BTreeMap::from([
                    ("index.yaml downloads", index),
                    ("chart downloads", requests.len() - index),
                ])
            }
            Self::Bucket(server) => BTreeMap::from([
                ("object downloads", server.requests("GetObject", None)),
                ("listing pages", server.requests("ListObjectsV2", None)),
            ]),
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut controller = None;
    let outcome = tokio::time::timeout(OVERALL_TIMEOUT, run(&args, &mut controller))
        .await
        .unwrap_or_else(|_| {
            Err(anyhow!(
                "the benchmark did not finish in {OVERALL_TIMEOUT:?}"
            ))
        });
    if outcome.is_err()
        && let Some(controller) = controller.as_mut()
    {
        eprintln!("source-controller log: {}", controller.keep_log().display());
    }
    outcome
}

async fn run(args: &Args, slot: &mut Option<ControllerProcess>) -> Result<()> {
    let binary = sibling_binary("source-controller")?;
    eprintln!("using {}", binary.display());
    let plane = ControlPlane::shared().await?;
    args.passthrough.apply_crds(plane).await?;
    let namespace = plane.namespace("bench").await?;
    let client = plane.client().await?;
    let servers = match args.shape {
        Shape::Helm {
            charts,
            versions,
            names,
        } => set_up_helm(&client, &namespace, charts, versions, names).await?,
        Shape::Bucket { objects } => set_up_bucket(&client, &namespace, objects).await?,
    };
    let storage = tempfile::tempdir()?;
    let storage_port = free_port()?;
    let mut flags = vec![
        format!("--concurrent={}", args.concurrent),
        format!("--storage-path={}", storage.path().display()),
        format!("--storage-addr=127.0.0.1:{storage_port}"),
        format!("--storage-adv-addr=127.0.0.1:{storage_port}"),
    ];
    flags.extend(args.passthrough.to_flags());
    let bench = Bench {
        client: client.clone(),
        namespace,
        servers,
    };
    let spawn =
        || ControllerProcess::spawn(&binary, plane.kubeconfig_path(), &bench.namespace, &flags);
    let rounds = match args.shape {
        Shape::Helm { charts, .. } => bench.rounds::<HelmChart>(slot, spawn, charts).await?,
        Shape::Bucket { .. } => bench.rounds::<Bucket>(slot, spawn, 1).await?,
    };
    let metrics = match slot.as_mut() {
        Some(controller) => {
            let metrics = controller.metrics().await?;
            controller.stop();
            metrics
        }
        None => String::new(),
    };
    let profile = profile_of(&binary);
    for round in &rounds {
        print_round(args, &profile, round);
    }
    print_step_summary(&metrics);
    Ok(())
}

/// A chart repository whose index lists `versions` versions spread over `names` charts, one
/// HelmRepository on it, and `charts` HelmCharts (`chart-<i>`, chart `app-<i mod names>`, `*`).
async fn set_up_helm(
    client: &kube::Client,
    namespace: &str,
    charts: usize,
    versions: usize,
    names: usize,
) -> Result<Servers> {
    let names = names.clamp(1, versions.max(1));
    let repository = ChartRepository::start(ChartRepoOptions::default()).await?;
    let listed: Vec<(String, String, String)> = (0..versions)
        .map(|index| {
            let name = format!("app-{}", index % names);
            let version = format!("1.{}.0", index / names);
            let url = format!("charts/{name}-{version}.tgz");
            (name, version, url)
        })
        .collect();
    let values = "replicas: 1\n";
    let template = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n";
    for (name, version, url) in &listed {
        let archive = chart_archive(
            name,
            version,
            &[("values.yaml", values), ("templates/cm.yaml", template)],
        )?;
        repository.put(url, archive);
    }
    let entries: Vec<IndexEntry<'_>> = listed
        .iter()
        .map(|(name, version, url)| IndexEntry { name, version, url })
        .collect();
    repository.put("index.yaml", index_yaml(&entries));
    let repository_spec = json!({"url": repository.url(), "interval": "1h"});
    create_all::<HelmRepository>(client, namespace, &["charts".to_owned()], |_| {
        repository_spec.clone()
    })
    .await?;
    let chart_names: Vec<String> = (0..charts).map(|index| format!("chart-{index}")).collect();
    create_all::<HelmChart>(client, namespace, &chart_names, |index| {
        json!({"chart": format!("app-{}", index % names), "version": "*", "interval": "1h",
               "sourceRef": {"kind": "HelmRepository", "name": "charts"}})
    })
    .await?;
    Ok(Servers::Helm(repository))
}

/// An S3 server with bucket `bench` holding `objects` small manifests under 100 prefixes, its
/// credentials in Secret `s3-creds`, and Bucket `bucket-0` on it.
async fn set_up_bucket(client: &kube::Client, namespace: &str, objects: usize) -> Result<Servers> {
    let server = S3Server::start()?;
    server.create_bucket("bench").await?;
    eprintln!("uploading {objects} objects...");
    stream::iter(0..objects)
        .map(|index| {
            let server = &server;
            async move {
                let key = format!("apps/{}/cm-{index}.yaml", index % 100);
                let body = format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{index}\ndata:\n  index: \"{index}\"\n"
                );
                server.put_object("bench", &key, body).await.map(drop)
            }
        })
        .buffer_unordered(CLIENT_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    let (access, secret) = server.credentials();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), namespace);
    let secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3-creds"},
        "stringData": {"accesskey": access, "secretkey": secret},
    }))?;
    secrets.create(&PostParams::default(), &secret).await?;
    let spec = json!({"bucketName": "bench", "endpoint": server.endpoint(), "insecure": true,
                      "interval": "1h", "timeout": "5m", "secretRef": {"name": "s3-creds"}});
    create_all::<Bucket>(client, namespace, &["bucket-0".to_owned()], |_| {
        spec.clone()
    })
    .await?;
    Ok(Servers::Bucket(server))
}

/// Creates one `kind` object per name, with the spec `spec(index)`.
async fn create_all<K>(
    client: &kube::Client,
    namespace: &str,
    names: &[String],
    spec: impl Fn(usize) -> Value,
) -> Result<()>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let kind = K::kind(&());
    stream::iter(names.iter().enumerate())
        .map(|(index, name)| {
            let object = serde_json::from_value::<K>(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": kind,
                "metadata": {"name": name}, "spec": spec(index),
            }));
            let api = &api;
            async move {
                api.create(&PostParams::default(), &object?).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CLIENT_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// The benchmark's cluster side and servers.
struct Bench {
    client: kube::Client,
    namespace: String,
    servers: Servers,
}

impl Bench {
    /// Starts the controller, then runs round "first" and round "unchanged" on `count` objects.
    async fn rounds<K>(
        &self,
        slot: &mut Option<ControllerProcess>,
        spawn: impl FnOnce() -> sluice_e2e::Result<ControllerProcess>,
        count: usize,
    ) -> Result<Vec<Round>>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug
            + Send
            + 'static,
        K: HasStatus,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        let start = self.round_start(None).await?;
        let watch = tokio::spawn(first_seen(
            api.clone(),
            count,
            start.clock,
            ROUND_TIMEOUT,
            |object: &K| object.has_current_artifact(),
        ));
        let controller = slot.insert(spawn()?);
        eprintln!(
            "controller started (pid {}), round first...",
            controller.pid()
        );
        let done = controller.supervise(watch).await?;
        let first = self.finish_round("first", start, &done, controller).await?;

        reset_peak_rss(Proc::Pid(controller.pid()));
        let token = format!("bench-{}", unix_nanos());
        let start = self.round_start(Some(controller)).await?;
        let handled = {
            let token = token.clone();
            move |object: &K| object.last_handled() == Some(token.as_str())
        };
        let watch = tokio::spawn(first_seen(
            api.clone(),
            count,
            start.clock,
            ROUND_TIMEOUT,
            handled,
        ));
        eprintln!("round unchanged: annotating with requestedAt={token}...");
        request_reconciles(&api, &token).await?;
        let done = controller.supervise(watch).await?;
        let unchanged = self
            .finish_round("unchanged", start, &done, controller)
            .await?;
        Ok(vec![first, unchanged])
    }

    async fn round_start(&self, controller: Option<&ControllerProcess>) -> Result<RoundStart> {
        Ok(RoundStart {
            api: ApiRequests::scrape(&self.client).await?,
            controller_cpu: controller.map(|c| c.cpu()).transpose()?.unwrap_or_default(),
            server: self.servers.counts(),
            clock: Instant::now(),
        })
    }

    async fn finish_round(
        &self,
        name: &'static str,
        start: RoundStart,
        done: &BTreeMap<String, Duration>,
        controller: &ControllerProcess,
    ) -> Result<Round> {
        let wall = start.clock.elapsed();
        let server = self
            .servers
            .counts()
            .into_iter()
            .map(|(what, count)| {
                format!(
                    "{what} {}",
                    count - start.server.get(what).copied().unwrap_or(0)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Round {
            name,
            wall,
            per_object: Percentiles::of(done.values().copied()),
            controller_cpu: controller.cpu()?.since(&start.controller_cpu),
            peak_rss_kib: controller.memory_kib("VmHWM")?,
            api: ApiRequests::scrape(&self.client).await?.since(&start.api),
            server,
        })
    }
}

/// Readings taken when a round starts.
struct RoundStart {
    clock: Instant,
    controller_cpu: CpuTimes,
    api: ApiRequests,
    server: BTreeMap<&'static str, usize>,
}

/// The status fields a round waits on, for the source kinds this bench drives.
trait HasStatus {
    fn has_current_artifact(&self) -> bool;
    fn last_handled(&self) -> Option<&str>;
}

macro_rules! has_status {
    ($kind:ty) => {
        impl HasStatus for $kind {
            fn has_current_artifact(&self) -> bool {
                self.status.as_ref().is_some_and(|status| {
                    status.artifact.is_some()
                        && status.observed_generation == self.metadata.generation
                        && status
                            .conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                })
            }
            fn last_handled(&self) -> Option<&str> {
                self.status
                    .as_ref()
                    .and_then(|status| status.last_handled_reconcile_at.as_deref())
            }
        }
    };
}
has_status!(HelmChart);
has_status!(Bucket);

/// Annotates every object of `api` with `requestedAt=token`.
async fn request_reconciles<K>(api: &Api<K>, token: &str) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT_ANNOTATION: token}}});
    let names: Vec<String> = api
        .list(&Default::default())
        .await?
        .iter()
        .map(|o| o.name_any())
        .collect();
    stream::iter(names)
        .map(|name| {
            let patch = &patch;
            async move {
                api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CLIENT_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos())
}

fn print_round(args: &Args, profile: &str, round: &Round) {
    let shape = match args.shape {
        Shape::Helm {
            charts,
            versions,
            names,
        } => format!("{charts} HelmCharts, index of {versions} versions over {names} charts"),
        Shape::Bucket { objects } => format!("1 Bucket of {objects} objects"),
    };
    println!(
        "RESULT | source-controller {profile}, {shape}, --concurrent={}, round {} | all done {} s | per object p50 {} / p90 {} / max {} s | controller CPU {:.1} s | peak RSS {:.1} MiB | {} | {} API requests |",
        args.concurrent,
        round.name,
        secs(round.wall),
        secs(round.per_object.p50),
        secs(round.per_object.p90),
        secs(round.per_object.max),
        round.controller_cpu.total(),
        mib(round.peak_rss_kib),
        round.server,
        round.api.total_requests(),
    );
}
