//! Real test environment for Sluice.
