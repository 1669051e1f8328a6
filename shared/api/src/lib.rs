//! Flux-compatible API types shared by every Sluice controller.
//!
//! The kinds mirror Flux's v1 APIs field for field, so existing Flux manifests and CRDs work
//! unchanged: [`source::GitRepository`], [`source::OCIRepository`], [`source::Bucket`] and
//! [`kustomize::Kustomization`], [`image::ImageRepository`] and [`image::ImagePolicy`].

pub mod crd;
pub mod duration;
pub mod image;
pub mod kustomize;
pub mod meta;
pub mod notification;
pub mod object;
pub mod revision;
mod schema;
pub mod source;

pub use object::{FluxObject, SourceObject};
