//! Sluice kustomize-controller: applies Flux Kustomizations from source artifacts.
//!
//! Read top-down: [`reconcile`] runs each Kustomization's steps on the shared lifecycle, one
//! module per step. Beneath them, the machinery flows one way: [`objects`] and [`cluster`] →
//! [`cel`] expressions → [`health`] → [`apply`] (with [`ignore`] rules and the
//! managedFields [`cleanup`]) → [`inventory`] (prune) and [`drift`]; [`build`] with [`sops`] and
//! [`substitute`]; [`source`] for artifacts (fetched by `sluice_artifact::fetch`); [`dependson`]
//! and [`tenancy`] (with [`workload_identity`] for `kubeConfig.configMapRef`).

pub mod apply;
pub mod build;
pub mod cel;
pub mod cleanup;
pub mod cli;
pub mod cluster;
pub mod dependson;
pub mod drift;
pub mod health;
pub mod ignore;
pub mod inventory;
pub mod objects;
pub mod reconcile;
pub mod sops;
pub mod source;
pub mod substitute;
pub mod tenancy;
pub mod workload_identity;
