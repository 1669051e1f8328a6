//! The artifact HTTP server: files only, no traversal, HEAD and Range with correct lengths.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use source_controller::ignore::IgnoreRules;
use source_controller::{Storage, StorageConfig};

/// Sends a raw request (so the path is not normalised by a client) and returns status and body.
fn raw_request(address: &str, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn get(address: &str, path: &str, extra: &str) -> (u16, String) {
    raw_request(
        address,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_archives_only_with_head_and_range() {
    let root = tempfile::tempdir().unwrap();
    let secret_dir = tempfile::tempdir().unwrap();
    std::fs::write(secret_dir.path().join("secret.tar.gz"), "outside").unwrap();
    let storage = Arc::new(
        Storage::new(StorageConfig {
            root: root.path().join("data"),
            advertised_address: "localhost".into(),
            retention_ttl: Duration::from_secs(60),
            retention_records: 2,
            max_artifact_size: 1 << 20,
        })
        .unwrap(),
    );
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("a.yaml"), "a: 1\n").unwrap();
    let stored = storage
        .archive_dir(
            source.path(),
            &IgnoreRules::default(),
            "gitrepository/ns/app",
        )
        .unwrap();
    std::fs::write(
        root.path().join("data/gitrepository/ns/app/notes.txt"),
        "not an archive",
    )
    .unwrap();
    std::fs::write(
        root.path().join("data/gitrepository/ns/app/.tmp-x.tar.gz"),
        "partial",
    )
    .unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        secret_dir.path().join("secret.tar.gz"),
        root.path().join("data/gitrepository/ns/app/link.tar.gz"),
    )
    .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let token = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(source_controller::server::serve(
        listener,
        storage.clone(),
        token.clone(),
    ));

    let bytes = std::fs::read(storage.resolve(&stored.path).unwrap()).unwrap();
    let size = bytes.len();
    let path = format!("/{}", stored.path);
    let address_for_blocking = address.clone();
    let results = tokio::task::spawn_blocking(move || {
        let address = address_for_blocking;
        let ok = get(&address, &path, "");
        let head = raw_request(
            &address,
            &format!("HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        let range = get(&address, &path, "Range: bytes=0-9\r\n");
        let unsatisfiable = get(&address, &path, &format!("Range: bytes={size}-\r\n"));
        let refused: Vec<(String, u16)> = [
            "/../../etc/passwd",
            "/gitrepository/../../secret.tar.gz",
            "/gitrepository/ns/app/%2e%2e/%2e%2e/x.tar.gz",
            "/gitrepository/ns/app/",
            "/gitrepository/ns/",
            "/",
            "/gitrepository/ns/app/notes.txt",
            "/gitrepository/ns/app/.tmp-x.tar.gz",
            "/gitrepository/ns/app/link.tar.gz",
            "/gitrepository/ns/app/missing.tar.gz",
        ]
        .into_iter()
        .map(|p| (p.to_owned(), get(&address, p, "").0))
        .collect();
        let post = raw_request(
            &address,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        );
        (ok, head, range, unsatisfiable, refused, post)
    })
    .await
    .unwrap();
    let (ok, head, range, unsatisfiable, refused, post) = results;
    assert_eq!(ok.0, 200);
    assert!(
        ok.1.to_lowercase()
            .contains(&format!("content-length: {size}")),
        "{}",
        ok.1
    );
    assert_eq!(head.0, 200);
    assert!(
        head.1
            .to_lowercase()
            .contains(&format!("content-length: {size}")),
        "{}",
        head.1
    );
    assert_eq!(range.0, 206);
    assert!(range.1.to_lowercase().contains("content-length: 10"));
    assert!(
        range
            .1
            .to_lowercase()
            .contains(&format!("content-range: bytes 0-9/{size}"))
    );
    assert_eq!(unsatisfiable.0, 416);
    for (path, status) in refused {
        assert!(status == 404 || status == 400, "{path} answered {status}");
    }
    assert_eq!(post.0, 405);
    token.cancel();
    server.await.unwrap().unwrap();
}
