//! Sluice kustomize-controller: applies Flux Kustomizations from source artifacts.
//!
//! The pipeline per Kustomization is fetch ([`sluice_artifact::fetch`]) → [`build`] → [`substitute`] → [`apply`] →
//! [`inventory`] (prune) → [`health`], driven by [`reconcile`], with [`drift`] watching applied
//! objects between intervals.

pub mod apply;
pub mod build;
pub mod cli;
pub mod dependson;
pub mod drift;
pub mod health;
pub mod inventory;
pub mod reconcile;
pub mod sops;
pub mod source;
pub mod status;
pub mod substitute;
pub mod tenancy;
