//! Flux-compatible API types shared by every Sluice controller.
