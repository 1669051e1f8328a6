//! Downloading an artifact over HTTP(S) with retries, a size cap and digest verification.

use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{FetchError, FetchHints};
use crate::digest::{self, Verifier};

/// Parses an `http`/`https` artifact URL, replacing its host (and port) with `host_override`
/// when given (Flux's `SOURCE_CONTROLLER_LOCALHOST`, read by the caller).
pub fn resolve_url(url: &str, host_override: Option<&str>) -> Result<reqwest::Url, FetchError> {
    resolve_url_with(url, host_override, "host override")
}

/// [`resolve_url`], naming the override's origin (e.g. an environment variable) in errors.
pub fn resolve_url_with(
    url: &str,
    host_override: Option<&str>,
    override_name: &str,
) -> Result<reqwest::Url, FetchError> {
    let invalid = |reason: String| FetchError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let mut parsed = reqwest::Url::parse(url).map_err(|error| invalid(error.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("only http and https are supported".to_owned()));
    }
    if let Some(host) = host_override.filter(|host| !host.is_empty()) {
        let replacement = reqwest::Url::parse(&format!("{}://{host}", parsed.scheme()))
            .map_err(|error| invalid(format!("{override_name}: {error}")))?;
        parsed
            .set_host(replacement.host_str())
            .map_err(|error| invalid(format!("{override_name}: {error}")))?;
        parsed
            .set_port(replacement.port())
            .map_err(|()| invalid(format!("{override_name}: cannot set port")))?;
    }
    Ok(parsed)
}

/// Downloads artifacts with a shared HTTP client.
#[derive(Debug, Clone)]
pub struct Downloader {
    http: reqwest::Client,
    max_size: u64,
    retries: u32,
    hints: &'static FetchHints,
}

impl Downloader {
    /// Downloads of at most `max_size` bytes, retrying `retries` times after transport errors
    /// and 5xx responses (exponential backoff from 500 ms, at most 5 s).
    pub fn new(http: reqwest::Client, max_size: u64, retries: u32) -> Self {
        Self {
            http,
            max_size,
            retries,
            hints: &FetchHints::GENERIC,
        }
    }

    /// Names `hints` (the caller's server and flags) in download errors.
    pub fn with_hints(self, hints: &'static FetchHints) -> Self {
        Self { hints, ..self }
    }

    /// The size limit in bytes.
    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    /// Streams `url` into `out`, failing past the size limit or when the bytes do not match
    /// `expected_digest` (a Flux digest string). Returns the byte count.
    pub async fn download(
        &self,
        url: &reqwest::Url,
        expected_digest: &str,
        out: &mut (impl AsyncWrite + Unpin),
    ) -> Result<u64, FetchError> {
        let expected = digest::parse_expected(expected_digest)?;
        let mut verifier = Verifier::new(&expected)?;
        let transport = |error: reqwest::Error| FetchError::Transport {
            url: url.to_string(),
            reason: error.without_url().to_string(),
            hints: self.hints,
        };
        let mut attempt = 0;
        let mut response = loop {
            let outcome = self.http.get(url.clone()).send().await;
            let retryable = match &outcome {
                Ok(response) => response.status().is_server_error(),
                Err(_) => true,
            };
            if retryable && attempt < self.retries {
                attempt += 1;
                let delay = Duration::from_millis(250u64.saturating_mul(1 << attempt.min(5)));
                tokio::time::sleep(delay.min(Duration::from_secs(5))).await;
                continue;
            }
            break outcome.map_err(transport)?;
        };
        match response.status() {
            status if status.is_success() => {}
            reqwest::StatusCode::NOT_FOUND => {
                return Err(FetchError::NotFound {
                    url: url.to_string(),
                    hints: self.hints,
                });
            }
            status => {
                return Err(FetchError::HttpStatus {
                    url: url.to_string(),
                    status: status.as_u16(),
                    hints: self.hints,
                });
            }
        }
        let too_large = || FetchError::TooLarge {
            url: url.to_string(),
            limit: self.max_size,
            hints: self.hints,
        };
        if response
            .content_length()
            .is_some_and(|length| length > self.max_size)
        {
            return Err(too_large());
        }
        let write_error = |source| FetchError::Write {
            url: url.to_string(),
            source,
        };
        let mut received: u64 = 0;
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            received = received.saturating_add(chunk.len() as u64);
            if received > self.max_size {
                return Err(too_large());
            }
            verifier.update(&chunk);
            out.write_all(&chunk).await.map_err(write_error)?;
        }
        out.flush().await.map_err(write_error)?;
        verifier
            .finish()
            .map_err(|(expected, actual)| FetchError::DigestMismatch {
                url: url.to_string(),
                expected,
                actual,
            })?;
        Ok(received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_and_overrides_hosts() {
        let url = resolve_url("http://source.flux-system.svc/a.tar.gz", None).unwrap();
        assert_eq!(url.host_str(), Some("source.flux-system.svc"));
        let url = resolve_url(
            "http://source.flux-system.svc/a.tar.gz",
            Some("127.0.0.1:9090"),
        )
        .unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9090/a.tar.gz");
        assert!(resolve_url("file:///etc/passwd", None).is_err());
        assert!(resolve_url("not a url", None).is_err());
    }
}
