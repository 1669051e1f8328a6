//! All five Sluice controllers as processes watching one namespace, the others posting their
//! events to notification-controller, and untyped access to objects of any kind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::Value;

use crate::bench::sibling_binary;
use crate::gitops::{Controller, Controllers, FIELD_MANAGER, Scope};
use crate::net::{free_port, wait_for_port};
use crate::process::Supervised;
use crate::{Error, Result};

/// How long a controller may take to open its port.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// source-, kustomize-, notification-controller, image-reflector and image-automation; stopped
/// on drop.
pub struct Toolkit {
    gitops: Controllers,
    /// notification-controller first, then image-reflector and image-automation.
    others: Vec<Supervised>,
}

impl Toolkit {
    /// Starts every controller watching only `namespace`, with logs and storage under `dir`;
    /// waits until each listens. Blocks for up to a few seconds per controller.
    pub fn start(kubeconfig: &Path, dir: &Path, namespace: &str) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let events = free_port()?;
        let events_addr = format!("--events-addr=http://127.0.0.1:{events}/");
        let nc_args = vec![
            format!("--events-addr=127.0.0.1:{events}"),
            format!("--receiverAddr=127.0.0.1:{}", free_port()?),
            format!("--health-addr=127.0.0.1:{}", free_port()?),
        ];
        let mut others = vec![spawn(
            "notification-controller",
            (dir, kubeconfig, namespace),
            events,
            nc_args,
        )?];
        for binary in ["image-reflector", "image-automation"] {
            let health = free_port()?;
            let mut args = vec![
                events_addr.clone(),
                format!("--health-addr=127.0.0.1:{health}"),
            ];
            if binary == "image-reflector" {
                args.push(format!("--storage-path={}", dir.join("tags").display()));
            }
            others.push(spawn(binary, (dir, kubeconfig, namespace), health, args)?);
        }
        let gitops = Controllers::start_with_args(
            kubeconfig,
            &dir.join("gitops"),
            Scope::Namespace(namespace.to_owned()),
            &Controller::ALL,
            &[events_addr],
        )?;
        Ok(Self { gitops, others })
    }

    /// Every controller's log file (stdout and stderr), named by binary.
    pub fn logs(&self) -> Vec<(String, PathBuf)> {
        let gitops = Controller::ALL
            .iter()
            .map(|&c| (c.binary_name().to_owned(), self.gitops.log_path(c)));
        let others = self
            .others
            .iter()
            .map(|p| (p.name().to_owned(), p.log_path().to_path_buf()));
        gitops.chain(others).collect()
    }
}

/// Starts `binary` with the common flags plus `extra`; waits until `port` accepts connections.
fn spawn(
    binary: &str,
    (dir, kubeconfig, namespace): (&Path, &Path, &str),
    port: u16,
    extra: Vec<String>,
) -> Result<Supervised> {
    let mut args = vec![
        "--watch-all-namespaces=false".to_owned(),
        format!("--runtime-namespace={namespace}"),
        "--enable-leader-election=false".to_owned(),
        "--log-encoding=console".to_owned(),
        format!("--metrics-addr=127.0.0.1:{}", free_port()?),
    ];
    args.extend(extra);
    let env = [("KUBECONFIG".to_owned(), kubeconfig.display().to_string())];
    let log = dir.join(format!("{binary}.log"));
    let mut process = Supervised::spawn(binary, &sibling_binary(binary)?, &args, &env, &log, None)?;
    if !wait_for_port(port, START_TIMEOUT) || !process.is_running() {
        return Err(Error::NotReady {
            what: binary.to_owned(),
            seconds: START_TIMEOUT.as_secs(),
            log: process.log_tail(3000),
        });
    }
    Ok(process)
}

/// An `Api` for objects of `kind` in `api_version` (`v1`, `group/version`) in `namespace`.
pub fn dynamic_api(
    client: &kube::Client,
    namespace: &str,
    api_version: &str,
    kind: &str,
) -> Api<DynamicObject> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// Server-side applies a manifest of any kind in `namespace` (forced, [`FIELD_MANAGER`]).
pub async fn apply_manifest(
    client: &kube::Client,
    namespace: &str,
    manifest: &Value,
) -> Result<()> {
    let field = |key: &str| {
        manifest
            .pointer(key)
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Setup(format!("the manifest has no {key}: {manifest}")))
    };
    let (api_version, kind, name) = (
        field("/apiVersion")?,
        field("/kind")?,
        field("/metadata/name")?,
    );
    let params = PatchParams::apply(FIELD_MANAGER).force();
    dynamic_api(client, namespace, api_version, kind)
        .patch(name, &params, &Patch::Apply(manifest))
        .await?;
    Ok(())
}
