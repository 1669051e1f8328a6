//! image-reflector-controller binary: Flux's flags, the tag store and the ImageRepository and
//! ImagePolicy reconcilers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgAction, Parser};
use image_reflector::CONTROLLER_NAME;
use image_reflector::reconcile::{FailedScans, ImageContext, ImageFlags, run_controllers};
use image_reflector::storage::TagStore;
use sluice_registry::RegistryClient;
use sluice_runtime::{RuntimeContext, RuntimeFlags, init_logging};

/// Flux-compatible image-reflector-controller.
#[derive(Debug, Parser)]
#[command(name = "image-reflector-controller", version)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeFlags,

    /// Where tags are stored (one file per ImageRepository).
    #[arg(long, env = "STORAGE_PATH", default_value = "/data")]
    storage_path: PathBuf,

    /// Accepted for Flux compatibility (Badger's value-log size); unused by the file storage.
    #[arg(long, default_value_t = 1 << 28)]
    storage_value_log_file_size: i64,

    /// Minutes between deletions of tags of ImageRepositories that no longer exist; 0 disables.
    #[arg(long, default_value_t = 10)]
    gc_interval: u64,

    /// Deny ImagePolicies referring to ImageRepositories in other namespaces. On by default
    /// (Flux's default is off), as in Sluice's kustomize-controller.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    no_cross_namespace_refs: bool,

    /// Bytes of tags kept in memory (least recently used evicted first; files stay on disk).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    tag_cache_bytes: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.runtime.log_level, cli.runtime.log_encoding).context("setting up logging")?;
    let store = TagStore::new(&cli.storage_path, cli.tag_cache_bytes)
        .with_context(|| format!("opening the tag storage at {}", cli.storage_path.display()))?;
    let (runtime, tasks) = RuntimeContext::start(CONTROLLER_NAME, cli.runtime)
        .await
        .context("starting the controller runtime")?;
    tracing::info!(controller = CONTROLLER_NAME, storage = %cli.storage_path.display(), "starting");
    let context = Arc::new(ImageContext {
        runtime: runtime.clone(),
        store: Arc::new(store),
        registry: RegistryClient::default(),
        failed_scans: FailedScans::default(),
        flags: ImageFlags {
            no_cross_namespace_refs: cli.no_cross_namespace_refs,
            gc_interval: Duration::from_secs(cli.gc_interval.saturating_mul(60)),
        },
    });
    run_controllers(context).await;
    runtime.shutdown.trigger();
    runtime.events.flush().await;
    tasks.finished().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_match_flux_names_and_defaults() {
        let cli = Cli::parse_from(["image-reflector-controller"]);
        assert_eq!(cli.storage_path, PathBuf::from("/data"));
        assert_eq!(cli.gc_interval, 10);
        assert_eq!(cli.storage_value_log_file_size, 1 << 28);
        assert!(cli.no_cross_namespace_refs);
        assert_eq!(cli.runtime.concurrent, 4);
        assert_eq!(cli.runtime.requeue_dependency, Duration::from_secs(30));
        let cli = Cli::parse_from([
            "image-reflector-controller",
            "--storage-path=/tmp/tags",
            "--gc-interval=0",
            "--no-cross-namespace-refs=false",
            "--concurrent=10",
            "--events-addr=http://notification-controller.flux-system.svc.cluster.local./",
        ]);
        assert_eq!(cli.storage_path, PathBuf::from("/tmp/tags"));
        assert_eq!(cli.gc_interval, 0);
        assert!(!cli.no_cross_namespace_refs);
        assert_eq!(cli.runtime.concurrent, 10);
    }
}
