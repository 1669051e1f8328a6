//! The CNCF distribution registry on 127.0.0.1: plain HTTP or HTTPS with a test CA (optionally
//! requiring client certificates), anonymous, htpasswd basic auth or token auth through
//! [`TokenIssuer`]; and [`OciClient`], a small client that pushes and pulls Flux-style artifacts.

mod client;
mod token;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub use client::*;
pub use token::{TOKEN_ISSUER, TOKEN_LIFETIME_SECS, TOKEN_SERVICE, TokenIssuer};

use crate::process::Supervised;
use crate::tls::{CertPair, TestCa};
use crate::{Error, Result, net, tools};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the registry keeps blobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Storage {
    /// In memory; gone when the registry stops.
    #[default]
    InMemory,
    /// A per-run directory on disk.
    Filesystem,
}

/// How the registry authenticates clients.
#[derive(Default)]
enum Auth {
    #[default]
    Anonymous,
    Basic(String, String),
    Token(Arc<TokenIssuer>, String),
}

/// HTTPS material: the CA's PEM, the serving certificate and, for mTLS, a client certificate.
struct Https {
    ca_pem: String,
    server: CertPair,
    client: Option<CertPair>,
}

/// Configures a [`Registry`].
#[derive(Default)]
pub struct RegistryBuilder {
    auth: Auth,
    storage: Storage,
    https: Option<Https>,
}

impl RegistryBuilder {
    /// Require htpasswd basic auth (bcrypt) for every request.
    pub fn basic_auth(mut self, username: &str, password: &str) -> Self {
        self.auth = Auth::Basic(username.to_string(), password.to_string());
        self
    }

    /// Require tokens from a [`TokenIssuer`] that accepts `username`/`password` (signed via `ca`).
    pub fn token_auth(mut self, ca: &TestCa, username: &str, password: &str) -> Result<Self> {
        let issuer = TokenIssuer::start(ca, username, password)?;
        self.auth = Auth::Token(Arc::new(issuer), ca.cert_pem());
        Ok(self)
    }

    /// Serve HTTPS with a certificate for 127.0.0.1 issued by `ca`.
    pub fn https(mut self, ca: &TestCa) -> Result<Self> {
        self.https = Some(Https {
            ca_pem: ca.cert_pem(),
            server: ca.server_cert(&[])?,
            client: None,
        });
        Ok(self)
    }

    /// Require a client certificate from the same CA (`http.tls.clientcas`); needs [`Self::https`].
    pub fn require_client_cert(mut self, ca: &TestCa) -> Result<Self> {
        let https = self.https.as_mut().ok_or_else(|| {
            Error::Setup("RegistryBuilder::require_client_cert() needs .https(&ca) first".into())
        })?;
        https.client = Some(ca.client_cert("sluice-registry-client", &[])?);
        Ok(self)
    }

    /// Choose the storage driver.
    pub fn storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }

    /// Builds the registry binary if needed, starts it and waits until it answers.
    pub fn start(self) -> Result<Registry> {
        Registry::launch(self)
    }
}

/// A running distribution registry on `127.0.0.1:PORT`; stopped on drop.
pub struct Registry {
    process: Supervised,
    port: u16,
    auth: Auth,
    tls: Option<ClientTls>,
    _dir: TempDir,
}

impl Registry {
    /// A builder; `Registry::builder().start()` gives an anonymous in-memory plain-HTTP registry.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    fn launch(options: RegistryBuilder) -> Result<Self> {
        let binary = tools::binary("registry")?;
        let dir = tempfile::Builder::new()
            .prefix("sluice-registry-")
            .tempdir()?;
        let port = net::free_port()?;
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n{}  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: sluice-e2e-secret\n{}\
             health:\n  storagedriver:\n    enabled: false\n{}",
            storage_config(options.storage, dir.path())?,
            tls_config(options.https.as_ref(), dir.path())?,
            auth_config(&options.auth, dir.path())?,
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let args = vec!["serve".to_string(), config_path.display().to_string()];
        let envs = vec![("OTEL_TRACES_EXPORTER".to_string(), "none".to_string())];
        let mut process = Supervised::spawn(
            "registry",
            &binary,
            &args,
            &envs,
            &dir.path().join("registry.log"),
            None,
        )?;
        let expected = match options.auth {
            Auth::Anonymous => 200,
            _ => 401,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let ready = match options.https {
                None => probe_v2(port) == Some(expected),
                Some(_) => net::wait_for_port(port, Duration::from_millis(100)),
            };
            if ready {
                break;
            }
            if Instant::now() > deadline || !process.is_running() {
                return Err(Error::NotReady {
                    what: format!("registry ({})", binary.display()),
                    seconds: READY_TIMEOUT.as_secs(),
                    log: process.log_tail(4000),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let tls = options.https.map(|https| ClientTls {
            ca_pem: https.ca_pem,
            identity: https.client,
        });
        Ok(Self {
            process,
            port,
            auth: options.auth,
            tls,
            _dir: dir,
        })
    }

    /// `127.0.0.1:PORT`, the registry host in image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`, or `https://…` when serving HTTPS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// `oci://127.0.0.1:PORT/<repo>`, as a Flux `OCIRepository` URL (needs `insecure: true`).
    pub fn oci_url(&self, repo: &str) -> String {
        format!("oci://127.0.0.1:{}/{repo}", self.port)
    }

    /// The username and password clients authenticate with (basic or token auth).
    pub fn credentials(&self) -> Option<(&str, &str)> {
        match &self.auth {
            Auth::Anonymous => None,
            Auth::Basic(username, password) => Some((username, password)),
            Auth::Token(issuer, _) => Some(issuer.credentials()),
        }
    }

    /// The token service when started with token auth.
    pub fn token_issuer(&self) -> Option<&TokenIssuer> {
        match &self.auth {
            Auth::Token(issuer, _) => Some(issuer),
            _ => None,
        }
    }

    /// The CA (PEM) and client certificate clients need when serving HTTPS.
    pub fn client_tls(&self) -> Option<&ClientTls> {
        self.tls.as_ref()
    }

    /// A client with push rights (credentials or minted tokens) and this registry's TLS settings.
    pub fn client(&self) -> Result<OciClient> {
        let auth = match &self.auth {
            Auth::Anonymous => ClientAuth::Anonymous,
            Auth::Basic(username, password) => {
                ClientAuth::Basic(username.clone(), password.clone())
            }
            Auth::Token(issuer, _) => ClientAuth::Token(issuer.clone()),
        };
        OciClient::configured(&self.url(), auth, self.tls.as_ref())
    }

    /// A client sending no credentials.
    pub fn anonymous_client(&self) -> Result<OciClient> {
        OciClient::configured(&self.url(), ClientAuth::Anonymous, self.tls.as_ref())
    }

    /// The last `max_bytes` of the registry's log.
    pub fn log_tail(&self, max_bytes: u64) -> String {
        self.process.log_tail(max_bytes)
    }
}

fn storage_config(storage: Storage, dir: &Path) -> Result<String> {
    Ok(match storage {
        Storage::InMemory => "  inmemory: {}\n".to_string(),
        Storage::Filesystem => {
            let root = dir.join("storage");
            std::fs::create_dir_all(&root)?;
            format!("  filesystem:\n    rootdirectory: {}\n", yaml_path(&root))
        }
    })
}

/// The `http.tls` section (indented under `http:`), writing the PEM files into `dir`.
fn tls_config(https: Option<&Https>, dir: &Path) -> Result<String> {
    let Some(https) = https else {
        return Ok(String::new());
    };
    let (cert, key) = https.server.write(dir, "server")?;
    let mut section = format!(
        "  tls:\n    certificate: {}\n    key: {}\n",
        yaml_path(&cert),
        yaml_path(&key)
    );
    if https.client.is_some() {
        let ca = dir.join("client-ca.crt");
        std::fs::write(&ca, &https.ca_pem)?;
        section.push_str(&format!(
            "    clientcas:\n      - {}\n    clientauth: require-and-verify-client-cert\n",
            yaml_path(&ca)
        ));
    }
    Ok(section)
}

/// The `auth` section, writing htpasswd or the token root bundle into `dir`.
fn auth_config(auth: &Auth, dir: &Path) -> Result<String> {
    Ok(match auth {
        Auth::Anonymous => String::new(),
        Auth::Basic(username, password) => {
            let file = dir.join("htpasswd");
            std::fs::write(&file, htpasswd_line(username, password)?)?;
            format!(
                "auth:\n  htpasswd:\n    realm: sluice-e2e\n    path: {}\n",
                yaml_path(&file)
            )
        }
        Auth::Token(issuer, ca_pem) => {
            let bundle = dir.join("token-ca.crt");
            std::fs::write(&bundle, ca_pem)?;
            format!(
                "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                yaml_string(&issuer.realm()),
                yaml_path(&bundle)
            )
        }
    })
}

fn yaml_path(path: &Path) -> String {
    yaml_string(&path.display().to_string())
}

/// The HTTP status of `GET /v2/`, or `None` when nothing answers yet.
fn probe_v2(port: u16) -> Option<u16> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
            .ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request =
        format!("GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).ok()?;
    let line = String::from_utf8_lossy(&head[..n]).into_owned();
    line.split_whitespace().nth(1)?.parse().ok()
}

fn yaml_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// One htpasswd line with a bcrypt (`$2y$`) hash, as the registry's htpasswd auth expects.
pub fn htpasswd_line(username: &str, password: &str) -> Result<String> {
    let hash = bcrypt::hash_with_result(password, 5).map_err(|e| {
        Error::Setup(format!(
            "bcrypt hashing of the registry password failed: {e}"
        ))
    })?;
    Ok(format!(
        "{username}:{}\n",
        hash.format_for_version(bcrypt::Version::TwoY)
    ))
}
