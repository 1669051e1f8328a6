//! The built-in transformers kustomize runs for a kustomization's fields.

pub(crate) mod images;
pub(crate) mod labels;
pub(crate) mod namespace;
pub(crate) mod prefix;
pub(crate) mod replicas;
