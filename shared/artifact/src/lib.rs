//! Artifact machinery shared by Sluice controllers, free of Kubernetes client code:
//!
//! - [`archive`]: one safe tar.gz extractor and one deterministic tar.gz builder;
//! - [`digest`]: `sha256:<hex>` digests and verification against Flux digest strings;
//! - [`serve`]: the artifact HTTP file server (GET/HEAD, Range, no traversal);
//! - [`fetch`]: artifact downloads with a size cap and digest verification.

pub mod archive;
pub mod digest;
pub mod fetch;
pub mod serve;
