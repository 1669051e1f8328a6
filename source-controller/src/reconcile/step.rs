//! The outcomes a source step fails with, in the vocabulary of the shared lifecycle.

use sluice_api::meta::condition_type::STORAGE_OPERATION_FAILED;
use sluice_runtime::{Failure, Outcome};

use crate::storage::StorageError;

/// A retryable failure recorded as `condition=True` with `reason`.
pub fn failed(condition: &'static str, reason: &str, message: impl Into<String>) -> Outcome {
    Outcome::Retry(Failure::new(reason, message).in_condition(condition))
}

/// A retryable failure whose condition the step has already set (e.g. `SourceVerified=False`).
pub fn recorded(reason: &str, message: impl Into<String>) -> Outcome {
    Outcome::retry(reason, message)
}

/// A missing dependency recorded as `condition=True`, retried after `--requeue-dependency`.
pub fn waiting(condition: &'static str, reason: &str, message: impl Into<String>) -> Outcome {
    Outcome::Waiting(Failure::new(reason, message).in_condition(condition))
}

/// A spec that cannot work: `Stalled=True` with this reason.
pub fn stalled(reason: &str, message: impl Into<String>) -> Outcome {
    Outcome::stalled(reason, message)
}

/// A storage failure (`StorageOperationFailed`).
pub fn storage(reason: &str, error: &StorageError) -> Outcome {
    failed(STORAGE_OPERATION_FAILED, reason, error.to_string())
}

/// A blocking storage task that panicked or was cancelled.
pub fn storage_task(reason: &str, error: &tokio::task::JoinError) -> Outcome {
    failed(
        STORAGE_OPERATION_FAILED,
        reason,
        format!("a blocking storage task failed: {error}"),
    )
}
