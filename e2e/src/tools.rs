//! Paths to the Go-built test binaries, built (once per version) by `e2e/tools/build.sh`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::{Error, Result};

static TOOLS: OnceLock<Result<HashMap<String, PathBuf>, String>> = OnceLock::new();

/// Absolute path of a test binary: `etcd`, `kube-apiserver`, `kube-controller-manager`,
/// `kube-scheduler`, `kwok`, `registry` or `kustomize`. Builds them on first use.
pub fn binary(name: &str) -> Result<PathBuf> {
    let tools = TOOLS.get_or_init(build_all).as_ref().map_err(|e| Error::ToolBuild(e.clone()))?;
    tools.get(name).cloned().ok_or_else(|| Error::ToolBuild(format!("no test binary named {name}")))
}

/// The `e2e/tools/build.sh` script of this checkout.
pub fn build_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/build.sh")
}

fn build_all() -> Result<HashMap<String, PathBuf>, String> {
    let output = Command::new("bash")
        .arg(build_script())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", build_script().display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} exited with {}; run it by hand to see why (it needs Go >= 1.26 and the Go module proxy)",
            build_script().display(),
            output.status
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, path)| (name.to_string(), PathBuf::from(path)))
        .collect())
}
