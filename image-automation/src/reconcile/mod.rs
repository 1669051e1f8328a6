//! The ImageUpdateAutomation reconciler.
