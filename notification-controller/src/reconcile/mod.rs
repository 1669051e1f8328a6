//! The Provider, Alert and Receiver reconcilers, on `sluice_runtime::lifecycle` (not built yet).
