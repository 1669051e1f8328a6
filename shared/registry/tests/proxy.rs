//! `proxySecretRef`: requests go through the proxy (with its credentials), and a dead proxy's
//! error names the problem without its password.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::header;
use serde_json::json;
use sluice_registry::{RegistryAccess, RegistryError};

fn access(proxy: String) -> RegistryAccess {
    RegistryAccess {
        insecure: true,
        proxy: Some(proxy),
        timeout: Duration::from_secs(5),
        ..RegistryAccess::default()
    }
}

#[tokio::test]
async fn requests_go_through_the_proxy_with_its_credentials() -> anyhow::Result<()> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let proxy = Router::new().fallback(move |request: Request| {
        let authorization = request
            .headers()
            .get(header::PROXY_AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        if let Ok(mut seen) = record.lock() {
            seen.push((request.uri().to_string(), authorization));
        }
        async { axum::Json(json!({"name": "app", "tags": ["v1"]})) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, proxy).await });

    let proxy_url = format!("http://user:proxy-pw@{address}");
    let tags = sluice_registry::list_tags("registry.invalid:5000/app", &access(proxy_url)).await?;
    assert_eq!(tags, ["v1"]);
    let seen = seen
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].0,
        "http://registry.invalid:5000/v2/app/tags/list?n=1000"
    );
    assert!(
        seen[0]
            .1
            .as_deref()
            .is_some_and(|auth| auth.starts_with("Basic "))
    );
    Ok(())
}

#[tokio::test]
async fn an_unreachable_proxy_is_reported_without_its_password() -> anyhow::Result<()> {
    let port = sluice_e2e::net::free_port()?;
    let proxy_url = format!("http://user:proxy-pw-4321@127.0.0.1:{port}");
    let error = sluice_registry::list_tags("registry.invalid:5000/app", &access(proxy_url))
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::Unreachable { .. }),
        "{error}"
    );
    let message = format!("{error} {error:?}");
    assert!(message.contains("spec.proxySecretRef"), "{message}");
    assert!(!message.contains("proxy-pw-4321"), "{message}");
    Ok(())
}
