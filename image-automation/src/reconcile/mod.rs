//! The ImageUpdateAutomation reconciler, on `sluice_runtime::lifecycle` (not built yet).
