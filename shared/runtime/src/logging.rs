//! Process-wide tracing setup from `--log-level` and `--log-encoding`.

use tracing_subscriber::EnvFilter;

use crate::flags::{LogEncoding, LogLevel};

/// Logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("the RUST_LOG filter {filter:?} is invalid: {source}; fix or unset RUST_LOG")]
    Filter {
        filter: String,
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("a global logger is already installed: {0}; call init_logging once, at startup")]
    AlreadyInstalled(String),
}

/// Installs the global subscriber; `RUST_LOG`, when set, overrides `level`.
pub fn init_logging(level: LogLevel, encoding: LogEncoding) -> Result<(), LoggingError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .map_err(|source| LoggingError::Filter {
                filter: directives.clone(),
                source,
            })?,
        _ => EnvFilter::new(filter_directives(level)),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let installed = match encoding {
        LogEncoding::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogEncoding::Console => builder.try_init(),
    };
    installed.map_err(|error| LoggingError::AlreadyInstalled(error.to_string()))
}

/// Filter directives for a level; HTTP and TLS internals stay at info unless tracing.
pub fn filter_directives(level: LogLevel) -> String {
    let level = match level {
        LogLevel::Trace => return "trace".to_owned(),
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    let quiet_crates = ["hyper", "hyper_util", "h2", "rustls", "tower", "reqwest"];
    let mut directives = level.to_owned();
    if level == "debug" {
        for name in quiet_crates {
            directives.push_str(&format!(",{name}=info"));
        }
    }
    directives
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_parse_for_every_level() {
        for level in [
            LogLevel::Trace,
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error,
        ] {
            let directives = filter_directives(level);
            assert!(EnvFilter::try_new(&directives).is_ok(), "{directives}");
        }
        assert_eq!(filter_directives(LogLevel::Info), "info");
        assert!(filter_directives(LogLevel::Debug).contains("hyper=info"));
    }
}
