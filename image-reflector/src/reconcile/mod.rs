//! The ImageRepository and ImagePolicy reconcilers, on `sluice_runtime::lifecycle` (not built yet).
