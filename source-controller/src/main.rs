//! source-controller binary: Flux's flags, the artifact server and the source reconcilers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sluice_api::duration::parse_go_duration;
use sluice_runtime::flags::parse_listen_addr;
use sluice_runtime::{RuntimeContext, RuntimeFlags, init_logging};
use source_controller::helm::cache::IndexCache;
use source_controller::{
    BucketLimits, HelmLimits, SourceContext, Storage, StorageConfig, run_controllers,
};

/// Flux-compatible source-controller.
#[derive(Debug, Parser)]
#[command(name = "source-controller", version)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeFlags,

    /// The local storage path.
    #[arg(long, env = "STORAGE_PATH", default_value = "/data")]
    storage_path: PathBuf,

    /// The address the artifact file server binds to.
    #[arg(long, env = "STORAGE_ADDRESS", default_value = ":9090", value_parser = parse_listen_addr)]
    storage_addr: SocketAddr,

    /// The advertised address of the artifact server; derived from --storage-addr when empty.
    #[arg(long, env = "STORAGE_ADV_ADDR", default_value = "")]
    storage_adv_addr: String,

    /// How long superseded artifacts are kept at most.
    #[arg(long, default_value = "1m", value_parser = parse_go_duration)]
    artifact_retention_ttl: Duration,

    /// How many artifacts (the current one included) are kept per object.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    artifact_retention_records: u32,

    /// The largest artifact (compressed) or OCI layer accepted, in bytes.
    #[arg(long, default_value_t = 100 * 1024 * 1024)]
    max_artifact_size: u64,

    /// Refuse source URLs whose host resolves to a loopback, link-local or private address
    /// (the cloud metadata endpoint, cluster services); off by default, as in Flux.
    #[arg(long, default_value_t = false)]
    deny_private_source_urls: bool,

    /// The most objects one Bucket artifact may hold (after prefix and ignore rules).
    #[arg(long, default_value_t = BucketLimits::default().max_objects)]
    bucket_max_objects: usize,

    /// The most bytes of objects one Bucket fetch may download.
    #[arg(long, default_value_t = BucketLimits::default().max_size)]
    bucket_max_size: u64,

    /// How many objects one Bucket fetch downloads at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    bucket_parallel_downloads: u16,

    /// The largest Helm repository index accepted, in bytes.
    #[arg(long, default_value_t = HelmLimits::default().max_index_size)]
    helm_index_max_size: u64,

    /// The largest Helm chart archive accepted, in bytes.
    #[arg(long, default_value_t = HelmLimits::default().max_chart_size)]
    helm_chart_max_size: u64,

    /// The largest single file inside a Helm chart, in bytes.
    #[arg(long, default_value_t = HelmLimits::default().max_chart_file_size)]
    helm_chart_file_max_size: u64,

    /// Most parsed Helm repository indexes kept in memory; 0 disables the cache.
    #[arg(long, default_value_t = 0)]
    helm_cache_max_size: usize,

    /// How long a cached index is kept after its last use.
    #[arg(long, default_value = "15m", value_parser = parse_go_duration)]
    helm_cache_ttl: Duration,

    /// Accepted for Flux compatibility; expired indexes are dropped whenever one is cached.
    #[arg(long, default_value = "1m", value_parser = parse_go_duration)]
    helm_cache_purge_interval: Duration,
}

/// Flux's fallback for an empty --storage-adv-addr: the bind host, `localhost` when unset,
/// `$HOSTNAME` when bound to all interfaces.
fn advertised_address(flag: &str, bind: SocketAddr) -> String {
    if !flag.trim().is_empty() {
        return flag.trim().to_owned();
    }
    let host = if bind.ip().is_unspecified() {
        std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_owned())
    } else {
        bind.ip().to_string()
    };
    format!("{host}:{}", bind.port())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.runtime.log_level, cli.runtime.log_encoding)?;
    let storage = Storage::new(StorageConfig {
        root: cli.storage_path.clone(),
        advertised_address: advertised_address(&cli.storage_adv_addr, cli.storage_addr),
        retention_ttl: cli.artifact_retention_ttl,
        retention_records: usize::try_from(cli.artifact_retention_records).unwrap_or(2),
        max_artifact_size: cli.max_artifact_size,
    })?;
    let storage = Arc::new(storage);
    let (runtime, tasks) = RuntimeContext::start("source-controller", cli.runtime)
        .await
        .context("starting the controller runtime")?;
    let listener = tokio::net::TcpListener::bind(cli.storage_addr)
        .await
        .with_context(|| format!("binding the artifact server to {}", cli.storage_addr))?;
    tracing::info!(address = %cli.storage_addr, path = %cli.storage_path.display(), "serving artifacts");
    let server = tokio::spawn(source_controller::server::serve(
        listener,
        storage.clone(),
        runtime.shutdown.token(),
    ));
    let context = Arc::new(SourceContext {
        runtime: runtime.clone(),
        storage,
        deny_private_urls: cli.deny_private_source_urls,
        bucket_limits: BucketLimits {
            max_objects: cli.bucket_max_objects,
            max_size: cli.bucket_max_size,
            parallel_downloads: usize::from(cli.bucket_parallel_downloads),
        },
        helm_limits: HelmLimits {
            max_index_size: cli.helm_index_max_size,
            max_chart_size: cli.helm_chart_max_size,
            max_chart_file_size: cli.helm_chart_file_max_size,
        },
        helm_index_cache: IndexCache::new(cli.helm_cache_max_size, cli.helm_cache_ttl),
    });
    run_controllers(context).await;
    runtime.shutdown.trigger();
    runtime.events.flush().await;
    match server.await {
        Ok(Err(error)) => tracing::error!(%error, "artifact server failed"),
        Err(error) => tracing::error!(%error, "artifact server task panicked"),
        Ok(Ok(())) => {}
    }
    tasks.finished().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_match_flux_names_and_defaults() {
        let cli = Cli::parse_from(["source-controller"]);
        assert_eq!(cli.storage_path, PathBuf::from("/data"));
        assert_eq!(cli.storage_addr.port(), 9090);
        assert_eq!(cli.artifact_retention_ttl, Duration::from_secs(60));
        assert_eq!(cli.artifact_retention_records, 2);
        assert_eq!(cli.max_artifact_size, 100 * 1024 * 1024);
        assert_eq!(cli.helm_index_max_size, 50 << 20);
        assert_eq!(cli.helm_chart_max_size, 10 << 20);
        assert_eq!(cli.helm_chart_file_max_size, 5 << 20);
        let cli = Cli::parse_from([
            "source-controller",
            "--storage-adv-addr=source-controller.flux-system.svc.cluster.local.",
            "--artifact-retention-ttl=5m",
            "--concurrent=10",
            "--watch-label-selector=sharding.fluxcd.io/key=shard1",
        ]);
        assert_eq!(cli.runtime.concurrent, 10);
        assert_eq!(
            advertised_address(&cli.storage_adv_addr, cli.storage_addr),
            "source-controller.flux-system.svc.cluster.local."
        );
    }

    #[test]
    fn advertised_address_fallbacks() {
        let local: SocketAddr = "127.0.0.1:9090".parse().unwrap();
        assert_eq!(advertised_address("", local), "127.0.0.1:9090");
    }
}
