//! Registries that misbehave, served in-process on 127.0.0.1: next-page links to another origin,
//! endless pagination, oversized pages, a missing digest header and error bodies that echo secrets.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_registry::{Limits, RegistryAccess, RegistryClient, RegistryError};

/// Serves `app` on a free loopback port until the test ends; returns `127.0.0.1:PORT`.
async fn serve(app: Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let host = listener.local_addr()?.to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(host)
}

fn access() -> RegistryAccess {
    RegistryAccess {
        insecure: true,
        timeout: Duration::from_secs(5),
        ..RegistryAccess::default()
    }
}

fn page(tags: &[&str], next: Option<String>) -> Response {
    let mut headers = HeaderMap::new();
    if let Some(Ok(value)) = next.map(|next| format!("<{next}>; rel=\"next\"").parse()) {
        headers.insert(header::LINK, value);
    }
    (headers, axum::Json(json!({"name": "app", "tags": tags}))).into_response()
}

#[tokio::test]
async fn next_links_to_another_origin_are_refused_not_followed() -> anyhow::Result<()> {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let elsewhere = serve(Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { page(&["stolen"], None) }
    }))
    .await?;
    for next in [
        format!("http://{elsewhere}/v2/app/tags/list?last=a"),
        "https://127.0.0.1:1/v2/app/tags/list?last=a".to_owned(),
    ] {
        let registry = serve(Router::new().route(
            "/v2/app/tags/list",
            get(move || async move { page(&["a"], Some(next)) }),
        ))
        .await?;
        let error = sluice_registry::list_tags(&format!("{registry}/app"), &access())
            .await
            .unwrap_err();
        assert!(
            matches!(error, RegistryError::InvalidResponse { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("refusing to follow"), "{error}");
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the foreign host was contacted"
    );
    Ok(())
}

#[tokio::test]
async fn endless_and_oversized_pages_stop_at_the_limits() -> anyhow::Result<()> {
    let endless = serve(Router::new().route(
        "/v2/app/tags/list",
        get(|| async { page(&["same"], Some("/v2/app/tags/list?last=same".into())) }),
    ))
    .await?;
    let client = RegistryClient::new(Limits {
        max_pages: 5,
        ..Limits::default()
    });
    let error = client
        .list_tags(&format!("{endless}/app"), &access())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("more than 5 pages"), "{error}");

    let huge = serve(Router::new().route(
        "/v2/app/tags/list",
        get(|| async { page(&[&"x".repeat(2 * 1024 * 1024)], None) }),
    ))
    .await?;
    let error = sluice_registry::list_tags(&format!("{huge}/app"), &access())
        .await
        .map(|_| ())
        .err();
    let client = RegistryClient::new(Limits {
        max_page_bytes: 1024 * 1024,
        ..Limits::default()
    });
    assert!(
        error.is_none(),
        "2 MiB is within the default limit: {error:?}"
    );
    let error = client
        .list_tags(&format!("{huge}/app"), &access())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("larger than 1048576 bytes"),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn digest_falls_back_to_hashing_the_manifest() -> anyhow::Result<()> {
    let manifest =
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
    let registry =
        serve(Router::new().route("/v2/app/manifests/v1", get(move || async move { manifest })))
            .await?;
    let digest =
        sluice_registry::manifest_digest(&format!("{registry}/app"), "v1", &access()).await?;
    assert_eq!(
        digest,
        format!("sha256:{}", hex::encode(Sha256::digest(manifest)))
    );
    let error = sluice_registry::manifest_digest(&format!("{registry}/app"), "../x", &access())
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::InvalidImage { .. }),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn secrets_echoed_by_a_registry_are_redacted() -> anyhow::Result<()> {
    const TOKEN: &str = "TOKEN-abc123-very-secret";
    let token_service = serve(Router::new().route(
        "/token",
        get(|| async { axum::Json(json!({"access_token": TOKEN, "expires_in": 120})) }),
    ))
    .await?;
    let realm = format!("http://{token_service}/token");
    let registry = serve(Router::new().route(
        "/v2/app/tags/list",
        get(move |headers: HeaderMap| async move {
            let authorization = headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            if authorization.is_empty() {
                let challenge =
                    format!(r#"Bearer realm="{realm}",service="fake",scope="repository:app:pull""#);
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, challenge)],
                )
                    .into_response();
            }
            let message = format!("denied: Authorization: {authorization}; password was pw-9876");
            let body = json!({"errors": [{"code": "DENIED", "message": message}]});
            (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
        }),
    ))
    .await?;
    let with_credentials = RegistryAccess {
        auth: Some(("robot".into(), "pw-9876".into())),
        ..access()
    };
    let error = sluice_registry::list_tags(&format!("{registry}/app"), &with_credentials)
        .await
        .unwrap_err();
    assert!(error.is_authentication_failure(), "{error}");
    let message = format!("{error} {error:?}");
    assert!(message.contains("DENIED"), "{message}");
    assert!(!message.contains(TOKEN), "token leaked: {message}");
    assert!(!message.contains("pw-9876"), "password leaked: {message}");
    Ok(())
}

/// A registry serving fixed bytes for every manifest and blob.
async fn serving(manifest: Vec<u8>, blob: Vec<u8>) -> anyhow::Result<String> {
    serve(
        Router::new()
            .route(
                "/v2/app/manifests/{reference}",
                get(move || async move { manifest }),
            )
            .route("/v2/app/blobs/{digest}", get(move || async move { blob })),
    )
    .await
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[tokio::test]
async fn manifests_over_the_cap_or_not_matching_their_digest_are_refused() -> anyhow::Result<()> {
    let client = RegistryClient::default();
    let huge = vec![b' '; sluice_registry::MAX_MANIFEST_BYTES + 1];
    let registry = serving(huge, Vec::new()).await?;
    let error = client
        .manifest(&format!("{registry}/app"), "v1", &access())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("larger than"), "{error}");

    let served = br#"{"schemaVersion":2,"layers":[]}"#.to_vec();
    let registry = serving(served, Vec::new()).await?;
    let asked = sha256(b"something else");
    let error = client
        .manifest(&format!("{registry}/app"), &asked, &access())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("not the one asked for"),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn blobs_longer_shorter_or_other_than_declared_are_refused() -> anyhow::Result<()> {
    let client = RegistryClient::default();
    let content = b"layer bytes".to_vec();
    let descriptor = |size: u64, digest: String| sluice_registry::Descriptor {
        size,
        digest,
        ..sluice_registry::Descriptor::default()
    };
    let declared = content.len() as u64;
    let cases = [
        (
            vec![b'x'; 64 << 20],
            descriptor(declared, sha256(&content)),
            "longer than",
        ),
        (
            content[..4].to_vec(),
            descriptor(declared, sha256(&content)),
            "ended after 4",
        ),
        (
            b"other bytes".to_vec(),
            descriptor(declared, sha256(&content)),
            "has the digest",
        ),
    ];
    for (served, descriptor, expected) in cases {
        let registry = serving(Vec::new(), served).await?;
        let mut sink = Vec::new();
        let error = client
            .blob(
                &format!("{registry}/app"),
                &descriptor,
                &access(),
                &mut sink,
            )
            .await
            .unwrap_err();
        assert!(error.to_string().contains(expected), "{error}");
        assert!(
            sink.len() as u64 <= declared,
            "{} bytes written",
            sink.len()
        );
    }
    Ok(())
}
