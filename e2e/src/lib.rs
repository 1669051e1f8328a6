//! Real test environment for Sluice: etcd + kube-apiserver (and a "nodes" mode with
//! kube-controller-manager, kube-scheduler and kwok), git servers, an OCI registry, an S3 server and kustomize,
//! all built from pinned Go modules or Debian packages and run as local processes on 127.0.0.1.

pub mod bench;
pub mod campaign;
pub mod chart_repo;
pub mod cluster;
pub mod cosign;
pub mod demo;
pub mod event_sink;
pub mod flux;
pub mod git;
pub mod gitops;
pub mod kustomize;
pub mod leak;
pub mod net;
pub mod poll;
pub mod process;
pub mod registry;
pub mod s3;
pub mod tarball;
pub mod tls;
pub mod toolkit;
pub mod tools;

/// Errors from the test environment; each says what failed and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("building the test tools failed: {0}")]
    ToolBuild(String),
    #[error("{what} did not become ready within {seconds}s; its log: {log}")]
    NotReady {
        what: String,
        seconds: u64,
        log: String,
    },
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
pub use cluster::{ControlPlane, Mode};
