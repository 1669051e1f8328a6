//! The error type: every error names the file and, where there is one, the field.

use std::path::PathBuf;

use crate::yaml::YamlError;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML (or not valid UTF-8).
    #[error("{file}: {source}")]
    Yaml {
        file: PathBuf,
        #[source]
        source: YamlError,
    },
    /// A field holds a value the build cannot use.
    #[error("{file}: {field}: {message}")]
    Invalid {
        file: PathBuf,
        field: String,
        message: String,
    },
    /// The input uses a kustomize feature this engine does not implement.
    #[error("unsupported: {feature} in {file}")]
    Unsupported { feature: String, file: PathBuf },
    /// A path points outside the directory it may be loaded from.
    #[error("{file}: {field}: `{path}` is outside `{allowed}`")]
    OutsideRoot {
        file: PathBuf,
        field: String,
        path: PathBuf,
        allowed: PathBuf,
    },
    /// The build went past one of its [`crate::BuildLimits`].
    #[error("the build exceeds {limit}; split it into smaller builds")]
    LimitExceeded { limit: String },
    /// A directory used as a kustomization has no kustomization file.
    #[error("{dir}: no kustomization.yaml, kustomization.yml or Kustomization file")]
    MissingKustomization { dir: PathBuf },
}

impl Error {
    pub(crate) fn invalid(
        file: impl Into<PathBuf>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            file: file.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn unsupported(feature: impl Into<String>, file: impl Into<PathBuf>) -> Self {
        Error::Unsupported {
            feature: feature.into(),
            file: file.into(),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
