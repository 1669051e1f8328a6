//! A real S3-compatible server on 127.0.0.1: `s3s-fs` from crates.io (installed once into the
//! tools cache by `e2e/tools/build.sh`), with SigV4 access-key authentication, and a small
//! client that creates buckets and puts or deletes objects through the S3 API.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use tempfile::TempDir;
use tokio_rustls::TlsAcceptor;

use crate::net::{BackgroundRuntime, bind_loopback};
use crate::process::Supervised;
use crate::tls::TestCa;
use crate::{Error, Result, net, tools};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const SIGNED_URL_TTL: Duration = Duration::from_secs(600);

/// A running `s3s-fs` on `127.0.0.1:PORT` storing objects under a temporary directory.
pub struct S3Server {
    process: Supervised,
    port: u16,
    access_key: String,
    secret_key: String,
    http: reqwest::Client,
    _dir: TempDir,
}

impl S3Server {
    /// Installs `s3s-fs` if needed, starts it with fresh credentials and waits until it listens.
    pub fn start() -> Result<Self> {
        let binary = tools::binary("s3s-fs")?;
        let dir = tempfile::Builder::new().prefix("sluice-s3-").tempdir()?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)?;
        let port = net::free_port()?;
        let access_key = format!("sluice-{port}");
        let secret_key = format!("s3-secret-{}-{}", std::process::id(), port);
        let args = vec![
            "--host".to_string(),
            "127.0.0.1".to_string(),
            "--port".to_string(),
            port.to_string(),
            "--access-key".to_string(),
            access_key.clone(),
            "--secret-key".to_string(),
            secret_key.clone(),
            data.display().to_string(),
        ];
        // `s3s=debug` logs each resolved operation, which `requests` counts.
        let envs = vec![
            ("RUST_LOG".to_string(), "s3s=debug".to_string()),
            ("NO_COLOR".to_string(), "1".to_string()),
        ];
        let mut process = Supervised::spawn(
            "s3s-fs",
            &binary,
            &args,
            &envs,
            &dir.path().join("s3s-fs.log"),
            None,
        )?;
        if !net::wait_for_port(port, READY_TIMEOUT) || !process.is_running() {
            return Err(Error::NotReady {
                what: format!("s3s-fs ({})", binary.display()),
                seconds: READY_TIMEOUT.as_secs(),
                log: process.log_tail(4000),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Setup(format!("building the S3 test client failed: {e}")))?;
        Ok(Self {
            process,
            port,
            access_key,
            secret_key,
            http,
            _dir: dir,
        })
    }

    /// `127.0.0.1:PORT`, a Bucket `spec.endpoint` (with `insecure: true`).
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// An HTTPS front end on another port that forwards raw TCP to the server, with a
    /// certificate for 127.0.0.1 issued by `ca`; `s3s-fs` itself speaks only HTTP.
    pub fn https_front(&self, ca: &TestCa) -> Result<HttpsFront> {
        let pair = ca.server_cert(&[])?;
        let tls_error = |e: &dyn std::fmt::Display| {
            Error::Setup(format!("configuring the S3 HTTPS front failed: {e}"))
        };
        let certs = CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls_error(&e))?;
        let key =
            PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes()).map_err(|e| tls_error(&e))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(&e))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| tls_error(&e))?;
        let built = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let runtime = BackgroundRuntime(Some(built));
        let (listener, addr) = bind_loopback(runtime.handle()?)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let backend = format!("127.0.0.1:{}", self.port);
        runtime.handle()?.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, backend) = (acceptor.clone(), backend.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if let Ok(mut upstream) = tokio::net::TcpStream::connect(&backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                    }
                });
            }
        });
        Ok(HttpsFront {
            _runtime: runtime,
            port: addr.port(),
        })
    }

    /// The access key id and secret key the server accepts.
    pub fn credentials(&self) -> (&str, &str) {
        (&self.access_key, &self.secret_key)
    }

    /// Stops the server (its data stays until drop); requests then fail to connect.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// How many `op` requests (e.g. `GetObject`, `ListObjectsV2`) the server has resolved so
    /// far, only those for object `key` when given.
    pub fn requests(&self, op: &str, key: Option<&str>) -> usize {
        let log = std::fs::read_to_string(self.process.log_path()).unwrap_or_default();
        let op = format!("op: {op},");
        let key = key.map(|key| format!("key: {key:?}"));
        log.split("resolved route")
            .skip(1)
            .filter(|entry| {
                let entry = entry.split("\n\n").next().unwrap_or(entry);
                entry.contains(&op) && key.as_ref().is_none_or(|key| entry.contains(key))
            })
            .count()
    }

    /// The last `max_bytes` of the server's log.
    pub fn log_tail(&self, max_bytes: u64) -> String {
        self.process.log_tail(max_bytes)
    }

    /// Creates bucket `name`.
    pub async fn create_bucket(&self, name: &str) -> Result<()> {
        let bucket = self.bucket(name)?;
        let credentials = self.signing_credentials();
        let url = bucket.create_bucket(&credentials).sign(SIGNED_URL_TTL);
        self.send(self.http.put(url), &format!("creating bucket {name}"))
            .await
            .map(drop)
    }

    /// Puts object `key` with `content` into bucket `name`; returns the ETag the server gave it.
    pub async fn put_object(
        &self,
        name: &str,
        key: &str,
        content: impl Into<Vec<u8>>,
    ) -> Result<String> {
        let bucket = self.bucket(name)?;
        let credentials = self.signing_credentials();
        let url = bucket
            .put_object(Some(&credentials), key)
            .sign(SIGNED_URL_TTL);
        let request = self.http.put(url).body(content.into());
        let response = self.send(request, &format!("putting {name}/{key}")).await?;
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| Error::Setup(format!("putting {name}/{key} returned no ETag")))?;
        Ok(etag.trim_matches('"').to_owned())
    }

    /// Deletes object `key` from bucket `name`.
    pub async fn delete_object(&self, name: &str, key: &str) -> Result<()> {
        let bucket = self.bucket(name)?;
        let credentials = self.signing_credentials();
        let url = bucket
            .delete_object(Some(&credentials), key)
            .sign(SIGNED_URL_TTL);
        self.send(self.http.delete(url), &format!("deleting {name}/{key}"))
            .await
            .map(drop)
    }

    fn bucket(&self, name: &str) -> Result<Bucket> {
        let endpoint = format!("http://127.0.0.1:{}", self.port)
            .parse()
            .map_err(|e| Error::Setup(format!("S3 endpoint URL: {e}")))?;
        Bucket::new(endpoint, UrlStyle::Path, name.to_owned(), "us-east-1")
            .map_err(|e| Error::Setup(format!("S3 bucket {name}: {e}")))
    }

    fn signing_credentials(&self) -> Credentials {
        Credentials::new(self.access_key.clone(), self.secret_key.clone())
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<reqwest::Response> {
        let response = request
            .send()
            .await
            .map_err(|e| Error::Setup(format!("{what} failed: {}", e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(Error::Setup(format!("{what} answered {status}: {body}")))
    }
}

/// A TLS front end for an [`S3Server`]; stopped when dropped.
pub struct HttpsFront {
    _runtime: BackgroundRuntime,
    port: u16,
}

impl HttpsFront {
    /// `127.0.0.1:PORT`, a Bucket `spec.endpoint` served over HTTPS.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
