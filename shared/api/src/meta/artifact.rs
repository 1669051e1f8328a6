//! The artifact a source publishes in its status and kustomize-controller downloads.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::revision::{Digest, Revision, RevisionError};

/// CRD pattern for [`Artifact::digest`]: `<algorithm>:<encoded checksum>`.
pub const ARTIFACT_DIGEST_PATTERN: &str = r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$";

/// A tarball stored by source-controller and served over HTTP.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Checksum of the file as `<algorithm>:<checksum>`.
    #[schemars(regex(pattern = ARTIFACT_DIGEST_PATTERN))]
    pub digest: String,
    /// When the artifact was last written.
    pub last_update_time: Time,
    /// Upstream metadata such as OCI annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Path of the file relative to the storage root.
    pub path: String,
    /// Upstream revision, e.g. `main@sha1:<hex>` or `sha256:<hex>`.
    pub revision: String,
    /// Size of the file in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// HTTP address the file can be downloaded from.
    pub url: String,
}

impl Artifact {
    /// Parses [`Artifact::digest`].
    pub fn parse_digest(&self) -> Result<Digest, RevisionError> {
        self.digest.parse()
    }

    /// Parses [`Artifact::revision`].
    pub fn parse_revision(&self) -> Result<Revision, RevisionError> {
        self.revision.parse()
    }

    /// Whether the artifact was produced from `revision`.
    pub fn has_revision(&self, revision: &str) -> bool {
        self.revision == revision
    }
}
