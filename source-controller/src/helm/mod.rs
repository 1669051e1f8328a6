//! Helm-specific pieces: repository indexes, the repository HTTP client and chart packaging.

pub mod cache;
pub mod chart;
pub mod dependencies;
pub mod http;
pub mod index;
pub mod oci;
