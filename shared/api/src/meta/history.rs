//! Reconciliation history recorded in `status.history`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Flux keeps at most this many snapshots, newest first.
pub const MAX_HISTORY_SIZE: usize = 5;

/// One distinct outcome (digest and status) of applying a set of resources.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Checksum of the applied resources as `<algorithm>:<hex>`.
    pub digest: String,
    /// When this digest was first reconciled.
    pub first_reconciled: Time,
    /// When this digest was last reconciled.
    pub last_reconciled: Time,
    /// How long the last reconciliation took, as a Go duration string.
    pub last_reconciled_duration: String,
    /// Ready reason of the last reconciliation, e.g. `ReconciliationSucceeded`.
    pub last_reconciled_status: String,
    /// Number of reconciliations that produced this digest and status.
    pub total_reconciliations: i64,
    /// Extra information such as `revision` and `originRevision`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}
