//! Paths to the Go-built test binaries, built once per version by `e2e/tools/build.sh`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use crate::{Error, Result};

/// Go module (a directory under `e2e/tools/`) that provides each binary.
const MODULE_OF: &[(&str, &str)] = &[
    ("etcd", "etcd"),
    ("kube-apiserver", "kubernetes"),
    ("kube-controller-manager", "kubernetes"),
    ("kube-scheduler", "kubernetes"),
    ("kubectl", "kubernetes"),
    ("kwok", "kwok"),
    ("kwok-stages", "kwok"),
    ("registry", "registry"),
    ("s3s-fs", "s3s-fs"),
    ("kustomize", "kustomize"),
    ("jsontoyaml", "jsontoyaml"),
    ("flux-source-controller", "flux-source-controller"),
    ("flux-source-controller-module", "flux-source-controller"),
    ("flux-kustomize-controller", "flux-kustomize-controller"),
    (
        "flux-kustomize-controller-module",
        "flux-kustomize-controller",
    ),
    ("flux-helm-controller", "flux-helm-controller"),
    ("flux-helm-controller-module", "flux-helm-controller"),
    ("flux", "flux"),
    ("cosign", "cosign"),
    (
        "flux-image-reflector-controller-module",
        "flux-image-reflector-controller",
    ),
    (
        "flux-image-automation-controller-module",
        "flux-image-automation-controller",
    ),
    (
        "flux-notification-controller-module",
        "flux-notification-controller",
    ),
];

type Built = HashMap<&'static str, Result<HashMap<String, PathBuf>, String>>;
static BUILT: OnceLock<Mutex<Built>> = OnceLock::new();

/// Absolute path of a test binary: `etcd`, `kube-apiserver`, `kube-controller-manager`,
/// `kube-scheduler`, `kubectl`, `kwok`, `registry`, `s3s-fs` (crates.io), `kustomize`, `jsontoyaml` (kustomize's `AsYaml` of JSON objects), Flux's `flux-source-controller`,
/// `flux-kustomize-controller`, `flux-helm-controller` and `flux` CLI, sigstore's `cosign`; or a directory: `kwok-stages` (kwok's
/// stage manifests), `flux-<controller>-module` (the unpacked Go modules: CRDs, samples, docs). Builds its Go
/// module on first use.
pub fn binary(name: &str) -> Result<PathBuf> {
    let module = MODULE_OF
        .iter()
        .find(|(binary, _)| *binary == name)
        .map(|(_, module)| *module)
        .ok_or_else(|| Error::ToolBuild(format!("no test binary named {name}")))?;
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let paths = built.entry(module).or_insert_with(|| build(module));
    let paths = paths.as_ref().map_err(|e| Error::ToolBuild(e.clone()))?;
    paths
        .get(name)
        .cloned()
        .ok_or_else(|| Error::ToolBuild(format!("build.sh did not report {name}")))
}

/// The `e2e/tools/build.sh` script of this checkout.
pub fn build_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/build.sh")
}

fn build(module: &str) -> Result<HashMap<String, PathBuf>, String> {
    let output = Command::new("bash")
        .arg(build_script())
        .arg(module)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", build_script().display()))?;
    if !output.status.success() {
        return Err(format!(
            "`{} {module}` exited with {}; run it by hand to see why (it needs Go >= 1.26 and the Go module proxy)",
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
