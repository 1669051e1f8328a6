//! Measurement helpers for the benchmark examples: controller binaries as guarded child
//! processes, `/proc` CPU and memory readers, Prometheus scraping, percentiles and ready timings.

pub mod controller;
pub mod procfs;
pub mod prometheus;

pub use controller::{ControllerProcess, PassthroughArgs};

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use kube::Resource;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tempfile::TempDir;

use crate::process::Supervised;
use crate::{Error, Result};

/// Overrides the directory the controller binaries are taken from.
pub const BIN_DIR_ENV: &str = "SLUICE_BENCH_BIN_DIR";

/// The binary `name` from `$SLUICE_BENCH_BIN_DIR`, else from the running example's profile
/// directory (`target/<profile>/`, the parent of `examples/` or `deps/`).
pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let dir = match std::env::var_os(BIN_DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => profile_dir()?,
    };
    let path = dir.join(name);
    if path.is_file() {
        return Ok(path);
    }
    let build = if dir.file_name().is_some_and(|n| n == "release") {
        "cargo build --release --bins"
    } else {
        "cargo build --workspace --bins"
    };
    Err(Error::Setup(format!(
        "{name} is not built: {} is missing; run `{build}` first (or set {BIN_DIR_ENV})",
        path.display()
    )))
}

fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe
        .parent()
        .ok_or_else(|| Error::Setup(format!("{} has no parent directory", exe.display())))?;
    if dir
        .file_name()
        .is_some_and(|n| n == "examples" || n == "deps")
    {
        dir = dir.parent().unwrap_or(dir);
    }
    Ok(dir.to_path_buf())
}

/// A child process whose output goes to a log file in its own temporary directory; stopped
/// (SIGTERM, then SIGKILL) when dropped or when this process exits.
pub struct ChildGuard {
    process: Supervised,
    pid: u32,
    log: PathBuf,
    log_dir: Option<TempDir>,
}

impl ChildGuard {
    /// Starts `program args…` with `envs` added and waits until its PID is known.
    pub fn spawn(program: &Path, args: &[String], envs: &[(String, String)]) -> Result<Self> {
        let name = program
            .file_name()
            .map_or_else(|| "child".into(), |n| n.to_string_lossy().into_owned());
        let log_dir = tempfile::Builder::new()
            .prefix(&format!("sluice-bench-{name}-"))
            .tempdir()?;
        let log = log_dir.path().join(format!("{name}.log"));
        let mut process = Supervised::spawn(&name, program, args, envs, &log, None)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            if let Some(pid) = process.pid() {
                break pid;
            }
            if !process.is_running() || Instant::now() > deadline {
                return Err(Error::Setup(format!(
                    "{name} did not start; its log:\n{}",
                    process.log_tail(3000)
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Ok(Self {
            process,
            pid,
            log,
            log_dir: Some(log_dir),
        })
    }

    /// The PID of the program itself.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the program is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// The last `max_bytes` of the program's output.
    pub fn log_tail(&self, max_bytes: u64) -> String {
        self.process.log_tail(max_bytes)
    }

    /// Keeps the log file after the guard is dropped (for a failed run) and returns its path.
    pub fn keep_log(&mut self) -> PathBuf {
        if let Some(dir) = self.log_dir.take() {
            let _kept = dir.keep();
        }
        self.log.clone()
    }

    /// Stops the program (SIGTERM, SIGKILL after five seconds) and waits for it.
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.process.stop();
    }
}

/// Nearest-rank percentile of sorted durations; zero for an empty slice.
pub fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let rank = (fraction.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1))
        .copied()
        .unwrap_or_default()
}

/// p50, p90, p95 and max of a set of durations.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    pub p50: Duration,
    pub p90: Duration,
    pub p95: Duration,
    pub max: Duration,
}

impl Percentiles {
    /// Sorts `durations` and takes the percentiles.
    pub fn of(durations: impl IntoIterator<Item = Duration>) -> Self {
        let mut sorted: Vec<Duration> = durations.into_iter().collect();
        sorted.sort();
        Self {
            p50: percentile(&sorted, 0.50),
            p90: percentile(&sorted, 0.90),
            p95: percentile(&sorted, 0.95),
            max: sorted.last().copied().unwrap_or_default(),
        }
    }
}

impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {:.2}s p90 {:.2}s p95 {:.2}s max {:.2}s",
            self.p50.as_secs_f64(),
            self.p90.as_secs_f64(),
            self.p95.as_secs_f64(),
            self.max.as_secs_f64()
        )
    }
}

/// Watches `api` until `count` objects have satisfied `done`; returns, per object name, when
/// it was first seen done, measured from `clock`. Fails after `timeout` (counted from `clock`).
pub async fn first_seen<K>(
    api: Api<K>,
    count: usize,
    clock: Instant,
    timeout: Duration,
    done: impl Fn(&K) -> bool,
) -> Result<BTreeMap<String, Duration>>
where
    K: Resource + Clone + DeserializeOwned + fmt::Debug + Send + 'static,
{
    let mut seen = BTreeMap::new();
    let mut objects = pin!(
        watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects()
    );
    let deadline = tokio::time::Instant::from_std(clock + timeout);
    while seen.len() < count {
        let next = tokio::time::timeout_at(deadline, objects.try_next()).await;
        let Ok(next) = next else {
            return Err(Error::Setup(format!(
                "only {}/{count} objects were done after {timeout:?}",
                seen.len()
            )));
        };
        match next {
            Ok(Some(object)) if done(&object) => {
                let name = object.meta().name.clone().unwrap_or_default();
                seen.entry(name).or_insert_with(|| clock.elapsed());
            }
            Ok(Some(_)) => {}
            Ok(None) => return Err(Error::Setup("the watch ended unexpectedly".into())),
            Err(error) => tracing::warn!(%error, "watch error, retrying"),
        }
    }
    Ok(seen)
}

/// A block of `key: value` figures, printed together.
#[derive(Clone, Debug, Default)]
pub struct Report {
    lines: Vec<(String, String)>,
}

impl Report {
    /// Adds one figure.
    pub fn add(&mut self, key: impl Into<String>, value: impl fmt::Display) {
        self.lines.push((key.into(), value.to_string()));
    }

    /// Adds several figures.
    pub fn extend(&mut self, lines: impl IntoIterator<Item = (String, String)>) {
        self.lines.extend(lines);
    }

    /// Prints the figures under a `== title ==` header.
    pub fn print(&self, title: &str) {
        println!("== {title} ==");
        for (key, value) in &self.lines {
            println!("{key}: {value}");
        }
    }
}

/// `debug` or `release`: the name of the directory `binary` was taken from.
pub fn profile_of(binary: &Path) -> String {
    binary
        .parent()
        .and_then(Path::file_name)
        .map_or_else(|| "?".into(), |name| name.to_string_lossy().into_owned())
}

/// Prints the samples of a controller's `/metrics` whose names mention its API client or
/// throttling; prints nothing when there are none.
pub fn print_client_metrics(metrics: &str) {
    let lines = prometheus::lines_with_name_containing(metrics, &["kube_client", "throttle"]);
    if !lines.is_empty() {
        println!("== controller client metrics at the end ==");
        for line in lines {
            println!("{line}");
        }
    }
}

/// Prints where reconciles spent their time, from `sluice_reconcile_step_duration_seconds`:
/// per step, how often it ran, its total and its mean.
pub fn print_step_summary(metrics: &str) {
    let name = "sluice_reconcile_step_duration_seconds";
    let totals = prometheus::sum_by_label(metrics, &format!("{name}_sum"), "step");
    let counts = prometheus::sum_by_label(metrics, &format!("{name}_count"), "step");
    if totals.is_empty() {
        return;
    }
    println!("== time per reconcile step (controller /metrics) ==");
    for (step, total) in &totals {
        let count = counts.get(step).copied().unwrap_or(0.0);
        let mean_ms = if count > 0.0 {
            total / count * 1000.0
        } else {
            0.0
        };
        println!("step {step}: {count:.0} runs, total {total:.2}s, mean {mean_ms:.0}ms");
    }
}

/// Seconds with two decimals, for `key: value` lines.
pub fn secs(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted = ms(&[10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
        assert_eq!(percentile(&sorted, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 0.9), Duration::from_millis(90));
        assert_eq!(percentile(&sorted, 0.95), Duration::from_millis(100));
        assert_eq!(percentile(&sorted, 0.0), Duration::from_millis(10));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
        let single = Percentiles::of(ms(&[7]));
        assert_eq!((single.p50, single.max), (ms(&[7])[0], ms(&[7])[0]));
    }

    #[test]
    fn percentiles_sort_their_input() {
        let stats = Percentiles::of(ms(&[300, 100, 200]));
        assert_eq!(stats.p50, Duration::from_millis(200));
        assert_eq!(stats.max, Duration::from_millis(300));
        assert_eq!(stats.to_string(), "p50 0.20s p90 0.30s p95 0.30s max 0.30s");
    }

    #[test]
    fn missing_binary_says_how_to_build() {
        let error = sibling_binary("surely-not-a-sluice-binary").unwrap_err();
        assert!(error.to_string().contains("cargo build"), "{error}");
    }
}
