//! A Helm chart repository on 127.0.0.1: a static file server for `index.yaml` and chart
//! archives (what a chart repository is), with optional basic auth and HTTPS, recording every
//! request; and builders for charts in Helm's layout and for index files.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::tls::TestCa;
use crate::{Error, Result};

/// Bound on one TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// One request the repository received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartRequest {
    pub path: String,
    /// Whether the request carried an `Authorization` header.
    pub authorized: bool,
}

#[derive(Default)]
struct Shared {
    files: Mutex<BTreeMap<String, Vec<u8>>>,
    requests: Mutex<Vec<ChartRequest>>,
    basic_auth: Option<String>,
}

/// How to start a [`ChartRepository`].
#[derive(Default)]
pub struct ChartRepoOptions<'a> {
    /// Require these credentials (HTTP basic auth) on every request.
    pub basic_auth: Option<(&'a str, &'a str)>,
    /// Serve HTTPS with a certificate of this CA instead of plain HTTP.
    pub tls: Option<&'a TestCa>,
}

/// A running chart repository; stops when dropped.
pub struct ChartRepository {
    url: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl ChartRepository {
    /// Starts a repository on a free loopback port.
    pub async fn start(options: ChartRepoOptions<'_>) -> Result<Self> {
        let basic_auth = options.basic_auth.map(|(user, password)| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {token}")
        });
        let shared = Arc::new(Shared {
            basic_auth,
            ..Shared::default()
        });
        let app = Router::new().fallback(serve).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (scheme, server) = match options.tls {
            None => (
                "http",
                tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                }),
            ),
            Some(ca) => {
                let acceptor = TlsAcceptor::from(Arc::new(tls_config(ca)?));
                ("https", tokio::spawn(serve_tls(listener, acceptor, app)))
            }
        };
        Ok(Self {
            url: format!("{scheme}://{address}"),
            shared,
            server,
        })
    }

    /// The repository URL (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Publishes `contents` at `path` (e.g. `index.yaml`, `charts/app-1.0.0.tgz`).
    pub fn put(&self, path: &str, contents: impl Into<Vec<u8>>) {
        self.shared
            .files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.trim_start_matches('/').to_owned(), contents.into());
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<ChartRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for ChartRepository {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().trim_start_matches('/').to_owned();
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    shared
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(ChartRequest {
            path: path.clone(),
            authorized: authorization.is_some(),
        });
    if let Some(expected) = &shared.basic_auth
        && authorization.as_ref() != Some(expected)
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"charts\"")],
        )
            .into_response();
    }
    let files = shared.files.lock().unwrap_or_else(PoisonError::into_inner);
    match files.get(&path) {
        Some(contents) => contents.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn tls_config(ca: &TestCa) -> Result<rustls::ServerConfig> {
    let pair = ca.server_cert(&[])?;
    let failed = |e: &dyn std::fmt::Display| {
        Error::Setup(format!(
            "configuring the chart repository's TLS failed: {e}"
        ))
    };
    let certs = CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(&e))?;
    let key = PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes()).map_err(|e| failed(&e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| failed(&e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| failed(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

async fn serve_tls(listener: tokio::net::TcpListener, acceptor: TlsAcceptor, app: Router) {
    while let Ok((tcp, _)) = listener.accept().await {
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        });
    }
}

/// A chart archive in Helm's layout: `<name>/Chart.yaml` (apiVersion v2) plus `files` (paths
/// relative to the chart root, e.g. `values.yaml`, `templates/cm.yaml`).
pub fn chart_archive(name: &str, version: &str, files: &[(&str, &str)]) -> Result<Vec<u8>> {
    let chart_yaml =
        format!("apiVersion: v2\nname: {name}\nversion: {version}\ntype: application\n");
    let mut entries = vec![(format!("{name}/Chart.yaml"), chart_yaml)];
    entries.extend(
        files
            .iter()
            .map(|(path, contents)| (format!("{name}/{path}"), (*contents).to_owned())),
    );
    crate::tarball::tar_gz(entries)
}

/// One chart version listed in an index.
pub struct IndexEntry<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// Download URL, absolute or relative to the repository URL.
    pub url: &'a str,
}

/// A Helm `index.yaml` listing `entries` (in the given order, as a repository may).
pub fn index_yaml(entries: &[IndexEntry<'_>]) -> String {
    let mut by_chart: BTreeMap<&str, Vec<&IndexEntry<'_>>> = BTreeMap::new();
    for entry in entries {
        by_chart.entry(entry.name).or_default().push(entry);
    }
    let mut text = String::from("apiVersion: v1\nentries:\n");
    for (name, versions) in by_chart {
        text.push_str(&format!("  {name}:\n"));
        for entry in versions {
            text.push_str(&format!(
                "  - apiVersion: v2\n    name: {name}\n    version: {}\n    urls:\n    - {}\n    created: \"2026-01-01T00:00:00Z\"\n",
                entry.version, entry.url
            ));
        }
    }
    text.push_str("generated: \"2026-01-01T00:00:00Z\"\n");
    text
}
