//! Drift phase: out-of-band edits of applied Deployments, timed until the controller undoes them.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use sluice_e2e::bench::Percentiles;
use sluice_e2e::poll::eventually;

use crate::workload::{PODINFO_IMAGE, app_name};

/// Out-of-band edits made.
pub const EDITS: usize = 20;
/// How long one correction may take.
const CORRECTION_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(10);

/// Scales `EDITS` Deployments (round-robin over `apps`) to 3 replicas with another field manager
/// and returns the correction latencies.
pub async fn measure(client: &Client, namespace: &str, apps: usize) -> Result<Percentiles> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let mut latencies = Vec::with_capacity(EDITS);
    for edit in 0..EDITS {
        let name = app_name(edit % apps.max(1));
        let intruder = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "podinfo", "image": PODINFO_IMAGE}]}}}});
        let edited = Instant::now();
        deployments
            .patch(
                &name,
                &PatchParams::apply("bench-intruder").force(),
                &Patch::Apply(&intruder),
            )
            .await?;
        let what = format!("drift on Deployment {name} corrected");
        eventually(&what, CORRECTION_TIMEOUT, POLL, || async {
            let replicas = deployments
                .get(&name)
                .await
                .map_err(|e| e.to_string())?
                .spec
                .and_then(|spec| spec.replicas);
            match replicas {
                Some(0) => Ok(()),
                other => Err(format!("replicas {other:?}")),
            }
        })
        .await
        .map_err(|timeout| anyhow!("{timeout}"))?;
        latencies.push(edited.elapsed());
    }
    Ok(Percentiles::of(latencies))
}
