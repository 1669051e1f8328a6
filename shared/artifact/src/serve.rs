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
    match respond(store.root(), &path, &method, request.headers()).await {
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

/// The size of `path` when it is a regular file reached from `root` through real directories
/// only: a symbolic link at any level is not followed (NotFound).
async fn regular_file_size(root: &Path, path: &Path) -> std::io::Result<u64> {
    let relative = path
        .strip_prefix(root)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::NotFound))?;
    let mut current = root.to_path_buf();
    let mut components = relative.components().peekable();
    while let Some(component) = components.next() {
        current.push(component);
        let meta = tokio::fs::symlink_metadata(&current).await?;
        let last = components.peek().is_none();
        if (last && !meta.is_file()) || (!last && !meta.is_dir()) {
            return Err(std::io::ErrorKind::NotFound.into());
        }
        if last {
            return Ok(meta.len());
        }
    }
    Err(std::io::ErrorKind::NotFound.into())
}

async fn respond(
    root: &Path,
    path: &Path,
    method: &Method,
    headers: &HeaderMap,
) -> std::io::Result<Response> {
    let size = regular_file_size(root, path).await?;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(value) => match parse_range(value, size) {
            RangeRequest::Satisfiable(start, end) => Some((start, end)),
            RangeRequest::Ignored => None,
            RangeRequest::Unsatisfiable => {
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

/// What a `Range` header asks of a file.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// One `bytes=` range, as inclusive `(start, end)`.
    Satisfiable(u64, u64),
    /// Nothing that can be served from this file (416).
    Unsatisfiable,
    /// Another unit, several ranges or a malformed value: the whole file is served (RFC 9110 14.2).
    Ignored,
}

fn parse_range(value: &str, size: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Ignored;
    };
    if spec.contains(',') {
        return RangeRequest::Ignored;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeRequest::Ignored;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |text: &str| text.parse::<u64>().ok();
    let range = match (first.is_empty(), last.is_empty()) {
        (true, true) => return RangeRequest::Ignored,
        (true, false) => match parse(last) {
            None => return RangeRequest::Ignored,
            Some(0) => None,
            Some(suffix) => (size > 0).then(|| (size.saturating_sub(suffix), size - 1)),
        },
        (false, _) => {
            let Some(start) = parse(first) else {
                return RangeRequest::Ignored;
            };
            let end = if last.is_empty() {
                Some(u64::MAX)
            } else {
                parse(last)
            };
            let Some(end) = end else {
                return RangeRequest::Ignored;
            };
            if start > end {
                return RangeRequest::Ignored;
            }
            (start < size).then(|| (start, end.min(size - 1)))
        }
    };
    match range {
        Some((start, end)) => RangeRequest::Satisfiable(start, end),
        None => RangeRequest::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::{Ignored, Satisfiable, Unsatisfiable};
        assert_eq!(parse_range("bytes=0-9", 100), Satisfiable(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), Satisfiable(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Satisfiable(90, 99));
        assert_eq!(parse_range("bytes=50-500", 100), Satisfiable(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 100), Ignored);
        assert_eq!(parse_range("bytes=0-1,3-4", 100), Ignored);
        assert_eq!(parse_range("bytes=x-1", 100), Ignored);
    }

    #[test]
    fn other_range_units_are_ignored() {
        assert_eq!(parse_range("items=0-1", 100), RangeRequest::Ignored);
        assert_eq!(parse_range("items=500-", 100), RangeRequest::Ignored);
    }

    #[tokio::test]
    async fn symlinked_directories_inside_the_root_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("x.tar.gz"), b"secret").unwrap();
        std::fs::write(root.join("real/x.tar.gz"), b"artifact").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let linked = regular_file_size(&root, &root.join("link/x.tar.gz")).await;
        assert_eq!(linked.unwrap_err().kind(), std::io::ErrorKind::NotFound);
        assert_eq!(
            regular_file_size(&root, &root.join("real/x.tar.gz"))
                .await
                .unwrap(),
            8
        );
        let headers = HeaderMap::new();
        let response = respond(&root, &root.join("link/x.tar.gz"), &Method::GET, &headers).await;
        assert!(response.is_err());
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
