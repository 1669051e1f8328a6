//! Git failures, classified from git's stderr into the Flux condition reasons they map to.

use std::time::Duration;

use sluice_secrets::SecretError;

/// A Git operation failed; each variant maps to a Flux condition reason.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{0}")]
    Authentication(String),
    #[error("remote repository '{0}' is empty; push a commit to it")]
    EmptyRepository(String),
    #[error("{0}")]
    Operation(String),
    #[error(
        "git operation timed out after {0:?}; raise spec.timeout or check the remote is reachable"
    )]
    Timeout(Duration),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

pub(crate) fn classify(stderr: &str) -> GitError {
    let lower = stderr.to_lowercase();
    let authentication = [
        "authentication failed",
        "could not read username",
        "could not read password",
        "permission denied",
        "host key verification failed",
        "http 401",
        "http 403",
        "returned error: 401",
        "returned error: 403",
        "ssl certificate problem",
        "server certificate verification failed",
        "certificate verify failed",
    ];
    if authentication.iter().any(|needle| lower.contains(needle)) {
        return GitError::Authentication(format!(
            "{stderr}; check the credentials in spec.secretRef"
        ));
    }
    GitError::Operation(stderr.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert!(matches!(
            classify("fatal: Authentication failed for 'x'"),
            GitError::Authentication(_)
        ));
        assert!(matches!(
            classify("git@x: Permission denied (publickey)."),
            GitError::Authentication(_)
        ));
        assert!(matches!(
            classify("fatal: couldn't find remote ref x"),
            GitError::Operation(_)
        ));
    }
}
