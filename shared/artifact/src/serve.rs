//! The artifact file server: GET and HEAD of stored archives with Range support; no listings,
//! no paths outside the storage root, no temporary (dot-prefixed) or non-archive files.

use std::io::SeekFrom;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;
use tokio_util::sync::CancellationToken;

use crate::archive::ARCHIVE_SUFFIX;

/// A directory of artifacts to serve.
pub trait ArtifactRoot: Send + Sync + 'static {
    /// The directory; only archives below it are served.
    fn root(&self) -> &Path;
}

impl ArtifactRoot for PathBuf {
    fn root(&self) -> &Path {
        self
    }
}

/// `root/relative` when `relative` is a non-empty, `/`-separated path of normal components
/// (no `..`, `.`, absolute or `\\` parts); `None` otherwise.
pub fn resolve_within(root: &Path, relative: &str) -> Option<PathBuf> {
    let path = Path::new(relative);
    let clean = !relative.is_empty()
        && !relative.contains('\\')
        && path
            .components()
            .all(|component| matches!(component, Component::Normal(_)));
    clean.then(|| root.join(path))
}

/// The router serving `store`.
pub fn router<S: ArtifactRoot>(store: Arc<S>) -> Router {
    Router::new().fallback(serve_file::<S>).with_state(store)
}

/// Serves `store` on `listener` until `shutdown` is cancelled.
pub async fn serve<S: ArtifactRoot>(
    listener: tokio::net::TcpListener,
    store: Arc<S>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(store))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn serve_file<S: ArtifactRoot>(State(store): State<Arc<S>>, request: Request) -> Response {
    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
    }
    let Some(path) = servable_path(store.root(), request.uri().path()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match respond(&path, &method, request.headers()).await {
        Ok(response) => response,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            StatusCode::NOT_FOUND.into_response()
        }
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "serving an artifact failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The file behind a request path, when it names an archive inside the storage root.
fn servable_path(root: &Path, uri_path: &str) -> Option<PathBuf> {
    let relative = uri_path.strip_prefix('/')?;
    if relative.contains('%') || !relative.ends_with(ARCHIVE_SUFFIX) {
        return None;
    }
    let file_name = relative.rsplit('/').next()?;
    if file_name.starts_with('.') {
        return None;
    }
    resolve_within(root, relative)
}

async fn respond(
    path: &std::path::Path,
    method: &Method,
    headers: &HeaderMap,
) -> std::io::Result<Response> {
    let meta = tokio::fs::symlink_metadata(path).await?;
    if !meta.is_file() {
        return Err(std::io::ErrorKind::NotFound.into());
    }
    let size = meta.len();
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(value) => match parse_range(value, size) {
            Some(range) => Some(range),
            None => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{size}"))],
                )
                    .into_response());
            }
        },
    };
    let (status, start, length) = match range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        None => (StatusCode::OK, 0, size),
    };
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/gzip")
        .header(header::CONTENT_LENGTH, length)
        .header(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if range.is_some() {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", start + length - 1),
        );
    }
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        let mut file = tokio::fs::File::open(path).await?;
        file.seek(SeekFrom::Start(start)).await?;
        Body::from_stream(ReaderStream::new(file.take(length)))
    };
    builder
        .body(body)
        .map_err(|error| std::io::Error::other(error.to_string()))
}

/// One satisfiable `bytes=` range as inclusive `(start, end)`; `None` when unsatisfiable.
fn parse_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let suffix: u64 = last.parse().ok()?;
        if suffix == 0 {
            return None;
        }
        return Some((size.saturating_sub(suffix), size - 1));
    }
    let start: u64 = first.parse().ok()?;
    let end = if last.is_empty() {
        size - 1
    } else {
        last.parse::<u64>().ok()?.min(size - 1)
    };
    (start <= end && start < size).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,3-4", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }

    #[test]
    fn refuses_traversal() {
        let root = Path::new("/srv");
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "a/../../b",
            "",
            "a\\..\\b",
            "./a",
        ] {
            assert_eq!(resolve_within(root, bad), None, "{bad}");
        }
        assert_eq!(
            resolve_within(root, "gitrepository/ns/n/x.tar.gz"),
            Some(PathBuf::from("/srv/gitrepository/ns/n/x.tar.gz"))
        );
        for bad in [
            "/a/%2e%2e/x.tar.gz",
            "/a/notes.txt",
            "/a/.tmp-x.tar.gz",
            "/a/",
        ] {
            assert_eq!(servable_path(root, bad), None, "{bad}");
        }
    }
}
