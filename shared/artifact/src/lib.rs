//! Artifact machinery shared by Sluice controllers:
//!
//! - [`archive`]: one safe tar.gz extractor and one deterministic tar.gz builder;
//! - [`digest`]: `sha256:<hex>` digests and verification against Flux digest strings;
//! - [`serve`]: the artifact HTTP file server (GET/HEAD, Range, no traversal);
//! - [`fetch`]: artifact downloads with a size cap and digest verification, and a digest-keyed
//!   cache of unpacked artifacts;
//! - [`source`]: a source object's `status.artifact` (the only module using the Kubernetes API).

pub mod archive;
pub mod digest;
pub mod fetch;
pub mod serve;
pub mod source;
