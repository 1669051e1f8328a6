//! The real `kustomize` CLI, built from the pinned Go module, as the reference for kustomize output.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::{Error, Result, tools};

/// Seconds one `kustomize build` may run before it is killed.
const BUILD_TIMEOUT_SECS: u64 = 120;

/// `kustomize build --load-restrictor LoadRestrictionsRootOnly <dir>` (no plugins, exec or helm);
/// returns the multi-document YAML.
pub fn build(dir: &Path) -> Result<String> {
    let binary = tools::binary("kustomize")?;
    let plugin_home = tempfile::Builder::new()
        .prefix("sluice-kustomize-plugins-")
        .tempdir()?;
    let output = Command::new("timeout")
        .arg("--kill-after=5")
        .arg(BUILD_TIMEOUT_SECS.to_string())
        .arg(&binary)
        .args(["build", "--load-restrictor", "LoadRestrictionsRootOnly"])
        .arg(dir)
        .env("KUSTOMIZE_PLUGIN_HOME", plugin_home.path())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Setup(format!("cannot run {}: {e}", binary.display())))?;
    if output.status.success() {
        return String::from_utf8(output.stdout).map_err(|e| {
            Error::Setup(format!(
                "kustomize build {} printed invalid UTF-8: {e}",
                dir.display()
            ))
        });
    }
    let why = if output.status.code() == Some(124) {
        format!("timed out after {BUILD_TIMEOUT_SECS}s")
    } else {
        output.status.to_string()
    };
    Err(Error::Setup(format!(
        "kustomize build {} failed ({why}); fix the kustomization (files must stay under the directory): {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}
