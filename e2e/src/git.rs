//! A git server for tests: smart HTTP(S) through `git http-backend` and SSH through the system
//! sshd with a forced `git-shell`, plus git CLI helpers to create, commit to, tag and clone repos.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_rustls::TlsAcceptor;

use crate::net::{BackgroundRuntime, bind_loopback};
use crate::process::Supervised;
use crate::tarball::file_map;
use crate::tls::{CertPair, TestCa};
use crate::{Error, Result, net};

/// Seconds a git CLI command may run before it is killed.
const GIT_TIMEOUT_SECS: u64 = 60;
/// Largest request body the HTTP bridge accepts.
const MAX_BODY_BYTES: usize = 512 * 1024 * 1024;
/// How long one `git http-backend` run may take before it is killed.
const BACKEND_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a TLS client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const SSHD: &str = "/usr/sbin/sshd";
const REALM: &str = "Basic realm=\"sluice-e2e git\"";
/// `REMOTE_USER` given to `git http-backend` for requests carrying the right bearer token.
const BEARER_USER: &str = "bearer-token-user";

/// How HTTP(S) clients must authenticate; authenticated clients may also push.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum HttpAuth {
    /// No credentials; clone and fetch only.
    #[default]
    Anonymous,
    /// `Authorization: Basic` with this username and password.
    Basic { username: String, password: String },
    /// `Authorization: Bearer` with this token.
    Bearer { token: String },
}

impl HttpAuth {
    /// `Ok(Some(user))` when authenticated, `Ok(None)` for anonymous access, `Err` to refuse.
    fn check(&self, headers: &HeaderMap) -> Result<Option<String>, ()> {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match self {
            HttpAuth::Anonymous => Ok(None),
            HttpAuth::Basic { username, password } => {
                let encoded = given.and_then(|v| v.strip_prefix("Basic ")).ok_or(())?;
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|_| ())?;
                let expected = format!("{username}:{password}");
                if decoded == expected.as_bytes() {
                    Ok(Some(username.clone()))
                } else {
                    Err(())
                }
            }
            HttpAuth::Bearer { token } => match given.and_then(|v| v.strip_prefix("Bearer ")) {
                Some(t) if t.trim() == token => Ok(Some(BEARER_USER.to_string())),
                _ => Err(()),
            },
        }
    }
}

/// One request seen by the HTTP(S) bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitRequest {
    pub method: String,
    /// The URL path, e.g. `/app.git/git-upload-pack`.
    pub path: String,
    /// The raw query string, empty when there is none.
    pub query: String,
    pub status: u16,
    /// For `git-upload-pack` POSTs: the protocol-v2 command (`ls-refs`, `fetch`), or `fetch` for v0/v1.
    pub command: Option<String>,
}

impl GitRequest {
    /// Whether this request asked for a pack (a `git-upload-pack` fetch).
    pub fn is_fetch(&self) -> bool {
        self.command.as_deref() == Some("fetch")
    }
}

struct TlsSetup {
    server: CertPair,
    ca_pem: String,
}

/// Configures a [`GitServer`]: HTTP auth, HTTPS and SSH front ends.
#[derive(Default)]
pub struct GitServerBuilder {
    auth: HttpAuth,
    tls: Option<TlsSetup>,
    require_client_cert: bool,
    ssh: bool,
}

impl GitServerBuilder {
    /// Require HTTP basic auth with these credentials.
    pub fn basic_auth(mut self, username: &str, password: &str) -> Self {
        self.auth = HttpAuth::Basic {
            username: username.to_string(),
            password: password.to_string(),
        };
        self
    }

    /// Require `Authorization: Bearer <token>`.
    pub fn bearer_token(mut self, token: &str) -> Self {
        self.auth = HttpAuth::Bearer {
            token: token.to_string(),
        };
        self
    }

    /// Also serve HTTPS with a certificate for 127.0.0.1/localhost signed by `ca`.
    pub fn https(mut self, ca: &TestCa) -> Result<Self> {
        self.tls = Some(TlsSetup {
            server: ca.server_cert(&[])?,
            ca_pem: ca.cert_pem(),
        });
        Ok(self)
    }

    /// Make HTTPS clients present a certificate signed by the CA given to [`Self::https`].
    pub fn require_client_cert(mut self) -> Self {
        self.require_client_cert = true;
        self
    }

    /// Also run sshd with git-shell for `ssh://` URLs.
    pub fn ssh(mut self) -> Self {
        self.ssh = true;
        self
    }

    /// Starts the server: plain HTTP always, HTTPS and SSH when configured.
    pub fn start(self) -> Result<GitServer> {
        GitServer::launch(self)
    }
}

struct Shared {
    root: PathBuf,
    home: PathBuf,
    backend_log: PathBuf,
    auth: HttpAuth,
    requests: Mutex<Vec<GitRequest>>,
    /// Milliseconds every HTTP(S) response is held back (slow-server fault injection).
    delay_ms: AtomicU64,
}

/// A git server on 127.0.0.1 serving the bare repositories under one temporary root.
///
/// Its HTTP(S) front ends run on a runtime owned by this handle; everything stops on drop.
pub struct GitServer {
    /// Serves the HTTP(S) front ends; stops them when dropped.
    _runtime: BackgroundRuntime,
    shared: Arc<Shared>,
    http: SocketAddr,
    https: Option<SocketAddr>,
    ca_file: Option<PathBuf>,
    ssh: Option<GitSsh>,
    cli: GitCli,
    dir: TempDir,
}

impl GitServer {
    /// A builder; `GitServer::builder().start()` gives an anonymous HTTP server.
    pub fn builder() -> GitServerBuilder {
        GitServerBuilder::default()
    }

    fn launch(options: GitServerBuilder) -> Result<Self> {
        if options.require_client_cert && options.tls.is_none() {
            return Err(Error::Setup(
                "GitServerBuilder::require_client_cert() needs HTTPS: also call .https(&ca)".into(),
            ));
        }
        let dir = tempfile::Builder::new().prefix("sluice-git-").tempdir()?;
        let root = dir.path().join("repos");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&root)?;
        std::fs::create_dir_all(&home)?;
        let shared = Arc::new(Shared {
            root,
            home,
            backend_log: dir.path().join("http-backend.log"),
            auth: options.auth,
            requests: Mutex::new(Vec::new()),
            delay_ms: AtomicU64::new(0),
        });
        let built = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sluice-git-http")
            .enable_all()
            .build()
            .map_err(|e| {
                Error::Setup(format!("cannot start the git HTTP server's runtime: {e}"))
            })?;
        let runtime = BackgroundRuntime(Some(built));
        let rt = runtime.handle()?;
        let app = Router::new().fallback(handle).with_state(shared.clone());

        let (listener, http) = bind_loopback(rt)?;
        let plain = app.clone();
        rt.spawn(async move {
            let _ = axum::serve(listener, plain).await;
        });

        let mut https = None;
        let mut ca_file = None;
        if let Some(tls) = options.tls {
            let config = tls_config(&tls, options.require_client_cert)?;
            let acceptor = TlsAcceptor::from(Arc::new(config));
            let (listener, addr) = bind_loopback(rt)?;
            rt.spawn(serve_tls(listener, acceptor, app));
            let path = dir.path().join("ca.crt");
            std::fs::write(&path, &tls.ca_pem)?;
            https = Some(addr);
            ca_file = Some(path);
        }

        let ssh = if options.ssh {
            Some(GitSsh::start(&dir.path().join("ssh"))?)
        } else {
            None
        };
        let cli = GitCli::new()?;
        Ok(Self {
            _runtime: runtime,
            shared,
            http,
            https,
            ca_file,
            ssh,
            cli,
            dir,
        })
    }

    /// The directory holding the bare repositories (`GIT_PROJECT_ROOT`).
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// The bare repository `<root>/<name>.git`.
    pub fn repo_path(&self, name: &str) -> PathBuf {
        self.shared.root.join(format!("{name}.git"))
    }

    /// `http://127.0.0.1:PORT/<name>.git`.
    pub fn http_url(&self, name: &str) -> String {
        format!("http://{}/{name}.git", self.http)
    }

    /// `https://127.0.0.1:PORT/<name>.git`, when started with [`GitServerBuilder::https`].
    pub fn https_url(&self, name: &str) -> Option<String> {
        self.https.map(|addr| format!("https://{addr}/{name}.git"))
    }

    /// The CA certificate file HTTPS clients must trust, when HTTPS is on.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// `ssh://USER@127.0.0.1:PORT/<abs path>/<name>.git`, when started with [`GitServerBuilder::ssh`].
    pub fn ssh_url(&self, name: &str) -> Option<String> {
        let ssh = self.ssh.as_ref()?;
        Some(format!(
            "ssh://{}@127.0.0.1:{}{}",
            ssh.user,
            ssh.port,
            self.repo_path(name).display()
        ))
    }

    /// Keys, known_hosts and the client command for the SSH front end.
    pub fn ssh(&self) -> Option<&GitSsh> {
        self.ssh.as_ref()
    }

    /// Every request the HTTP(S) bridge has answered, oldest first (SSH is not logged).
    pub fn requests(&self) -> Vec<GitRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets the logged requests.
    pub fn clear_requests(&self) {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// How many `git-upload-pack` POSTs (ls-refs or fetch) arrived, refused ones included.
    pub fn upload_pack_posts(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/git-upload-pack"))
            .count()
    }

    /// How many of those asked for a pack; zero after a reconcile that found nothing new.
    pub fn fetches(&self) -> usize {
        self.requests().iter().filter(|r| r.is_fetch()).count()
    }

    /// Creates the empty bare repository `<name>.git` with default branch `main`.
    pub fn create_repo(&self, name: &str) -> Result<PathBuf> {
        let path = self.repo_path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let args = [
            OsStr::new("init"),
            OsStr::new("--quiet"),
            OsStr::new("--bare"),
            OsStr::new("-b"),
            OsStr::new("main"),
        ];
        self.cli
            .run(None, args.into_iter().chain([path.as_os_str()]))?;
        Ok(path)
    }

    /// Commits `files` (path → contents) on `branch` and returns the new commit SHA.
    /// A missing branch starts from `main`, or as a root commit when `main` does not exist.
    pub fn commit<K, V>(
        &self,
        repo: &str,
        branch: &str,
        files: impl IntoIterator<Item = (K, V)>,
        message: &str,
    ) -> Result<String>
    where
        K: AsRef<str>,
        V: AsRef<[u8]>,
    {
        self.change(repo, branch, &file_map(files), &[], message)
    }

    /// Holds back every later HTTP(S) response by `delay` (zero: answer at once), as a slow server.
    pub fn set_response_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Writes `writes` and deletes `deletes` on `branch` in one commit; returns its SHA.
    pub fn commit_changes(
        &self,
        repo: &str,
        branch: &str,
        writes: &BTreeMap<String, Vec<u8>>,
        deletes: &[String],
        message: &str,
    ) -> Result<String> {
        self.change(repo, branch, writes, deletes, message)
    }

    /// Deletes `paths` (files or directories) on `branch` and returns the new commit SHA.
    pub fn delete<P: AsRef<str>>(
        &self,
        repo: &str,
        branch: &str,
        paths: &[P],
        message: &str,
    ) -> Result<String> {
        let paths: Vec<String> = paths.iter().map(|p| p.as_ref().to_string()).collect();
        self.change(repo, branch, &BTreeMap::new(), &paths, message)
    }

    fn change(
        &self,
        repo: &str,
        branch: &str,
        writes: &BTreeMap<String, Vec<u8>>,
        deletes: &[String],
        message: &str,
    ) -> Result<String> {
        let bare = self.repo_path(repo);
        if !bare.is_dir() {
            return Err(Error::Setup(format!(
                "git repo {repo} does not exist; call create_repo(\"{repo}\") first"
            )));
        }
        let work = tempfile::Builder::new()
            .prefix("work-")
            .tempdir_in(self.dir.path())?;
        let wt = Some(work.path());
        self.cli.run(
            None,
            [
                OsStr::new("clone"),
                OsStr::new("--quiet"),
                bare.as_os_str(),
                work.path().as_os_str(),
            ],
        )?;
        let remote_branch = format!("origin/{branch}");
        if self
            .cli
            .run(wt, ["rev-parse", "--verify", "--quiet", &remote_branch])
            .is_ok()
        {
            self.cli
                .run(wt, ["checkout", "--quiet", "-B", branch, &remote_branch])?;
        } else if self
            .cli
            .run(wt, ["rev-parse", "--verify", "--quiet", "origin/main"])
            .is_ok()
        {
            self.cli
                .run(wt, ["checkout", "--quiet", "-B", branch, "origin/main"])?;
        } else {
            self.cli
                .run(wt, ["checkout", "--quiet", "--orphan", branch])?;
            self.cli
                .run(wt, ["rm", "-r", "-f", "--quiet", "--ignore-unmatch", "."])?;
        }
        for path in deletes {
            self.cli
                .run(wt, ["rm", "-r", "--quiet", "--", path.as_str()])?;
        }
        for (path, contents) in writes {
            let target = work.path().join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&target, contents)?;
        }
        let sha = self.cli.commit_all(work.path(), message)?;
        self.cli
            .push(work.path(), &format!("HEAD:refs/heads/{branch}"))?;
        Ok(sha)
    }

    /// Creates the lightweight tag `name` on `target` (a branch, tag or SHA); returns the commit SHA.
    pub fn tag(&self, repo: &str, name: &str, target: &str) -> Result<String> {
        let git_dir = self.repo_path(repo);
        self.cli.run(Some(&git_dir), ["tag", name, target])?;
        self.rev_parse(repo, &format!("refs/tags/{name}^{{commit}}"))
    }

    /// Creates the annotated tag `name` on `target`; returns the SHA of the tag object.
    pub fn annotated_tag(
        &self,
        repo: &str,
        name: &str,
        target: &str,
        message: &str,
    ) -> Result<String> {
        let git_dir = self.repo_path(repo);
        self.cli
            .run(Some(&git_dir), ["tag", "-a", "-m", message, name, target])?;
        self.rev_parse(repo, &format!("refs/tags/{name}"))
    }

    /// The commit SHA at the tip of `branch`.
    pub fn head(&self, repo: &str, branch: &str) -> Result<String> {
        self.rev_parse(repo, &format!("refs/heads/{branch}^{{commit}}"))
    }

    fn rev_parse(&self, repo: &str, rev: &str) -> Result<String> {
        let git_dir = self.repo_path(repo);
        Ok(self
            .cli
            .run(Some(&git_dir), ["rev-parse", "--verify", rev])?
            .trim()
            .to_string())
    }
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Setup(format!(
        "configuring HTTPS for the git server failed ({what}): {e}"
    ))
}

fn tls_config(tls: &TlsSetup, require_client_cert: bool) -> Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = CertificateDer::pem_slice_iter(tls.server.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error("server certificate", e))?;
    let key = PrivateKeyDer::from_pem_slice(tls.server.key_pem.as_bytes())
        .map_err(|e| tls_error("server key", e))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("protocol versions", e))?;
    let builder = if require_client_cert {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(tls.ca_pem.as_bytes()) {
            roots
                .add(cert.map_err(|e| tls_error("CA certificate", e))?)
                .map_err(|e| tls_error("CA certificate", e))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| tls_error("client certificate verifier", e))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| tls_error("server certificate", e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

async fn serve_tls(listener: tokio::net::TcpListener, acceptor: TlsAcceptor, app: Router) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
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

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let delay = shared.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let (parts, body) = request.into_parts();
    let method = parts.method.to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let (response, command) = match shared.auth.check(&parts.headers) {
        Err(()) => {
            let mut response =
                (StatusCode::UNAUTHORIZED, "authentication required\n").into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(REALM));
            (response, None)
        }
        Ok(user) => match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
            Err(e) => (
                (
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {e}\n"),
                )
                    .into_response(),
                None,
            ),
            Ok(body) => {
                let command = upload_pack_command(&method, &path, &parts.headers, &body);
                let response =
                    run_backend(&shared, &method, &path, &query, &parts.headers, user, body)
                        .await
                        .unwrap_or_else(|e| {
                            (StatusCode::BAD_GATEWAY, format!("{e}\n")).into_response()
                        });
                (response, command)
            }
        },
    };
    let record = GitRequest {
        method,
        path,
        query,
        status: response.status().as_u16(),
        command,
    };
    shared
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(record);
    response
}

/// The upload-pack command of a POST body: the first pkt-line's `command=` in v2, else `fetch`.
fn upload_pack_command(
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<String> {
    if method != "POST" || !path.ends_with("/git-upload-pack") {
        return None;
    }
    let gzipped = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let mut head = Vec::with_capacity(256);
    if gzipped {
        let _ = flate2::read::GzDecoder::new(body)
            .take(256)
            .read_to_end(&mut head);
    } else {
        head.extend_from_slice(&body[..body.len().min(256)]);
    }
    let length = std::str::from_utf8(head.get(..4)?)
        .ok()
        .and_then(|h| usize::from_str_radix(h, 16).ok())?;
    let first = head.get(4..length.clamp(4, head.len()))?;
    let command = match first.strip_prefix(b"command=") {
        Some(name) => String::from_utf8_lossy(name).trim_end().to_string(),
        None => "fetch".to_string(),
    };
    Some(command)
}

async fn run_backend(
    shared: &Shared,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    user: Option<String>,
    body: Bytes,
) -> Result<Response> {
    let header_str = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&shared.backend_log)?;
    let mut command = tokio::process::Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &shared.home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_PROJECT_ROOT", &shared.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REQUEST_METHOD", method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env(
            "CONTENT_TYPE",
            header_str("content-type").unwrap_or_default(),
        )
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    if let Some(protocol) = header_str("git-protocol") {
        command.env("GIT_PROTOCOL", protocol);
    }
    if let Some(encoding) = header_str("content-encoding") {
        command.env("HTTP_CONTENT_ENCODING", encoding);
    }
    if let Some(user) = user {
        command.env("REMOTE_USER", user);
    }
    let mut child = command.spawn().map_err(|e| {
        Error::Setup(format!(
            "cannot run `git http-backend`: {e}; install git (apt-get install -y git)"
        ))
    })?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(Error::Setup(
            "git http-backend started without stdin/stdout pipes".into(),
        ));
    };
    tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    tokio::spawn(async move {
        let _ = tokio::time::timeout(BACKEND_TIMEOUT, child.wait()).await;
    });

    let mut reader = BufReader::new(stdout);
    let mut status = StatusCode::OK;
    let mut response_headers = HeaderMap::new();
    let read_headers = async {
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Err(Error::Setup(format!(
                    "git http-backend ended before its CGI headers; see {}",
                    shared.backend_log.display()
                )));
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                return Ok(());
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("status") {
                let code = value.split_whitespace().next().and_then(|c| c.parse().ok());
                status = code
                    .and_then(|c| StatusCode::from_u16(c).ok())
                    .unwrap_or(StatusCode::BAD_GATEWAY);
            } else if let (Ok(name), Ok(value)) =
                (HeaderName::try_from(name), HeaderValue::try_from(value))
            {
                response_headers.append(name, value);
            }
        }
    };
    tokio::time::timeout(BACKEND_TIMEOUT, read_headers)
        .await
        .map_err(|_| Error::Setup("git http-backend sent no CGI headers in time".into()))??;
    let mut response = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(reader)));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    Ok(response)
}

/// The SSH front end: sshd on a loopback port whose only authorized key runs `git-shell`.
pub struct GitSsh {
    process: Supervised,
    port: u16,
    user: String,
    client_key: PathBuf,
    known_hosts_file: PathBuf,
    known_hosts: String,
}

impl GitSsh {
    fn start(dir: &Path) -> Result<Self> {
        let sshd = Path::new(SSHD);
        if !sshd.exists() {
            return Err(Error::Setup(format!(
                "{SSHD} is missing; install it: apt-get install -y openssh-server"
            )));
        }
        std::fs::create_dir_all("/run/sshd").map_err(|e| {
            Error::Setup(format!("cannot create /run/sshd, sshd's privilege-separation directory ({e}); run `mkdir -p /run/sshd` as root"))
        })?;
        std::fs::create_dir_all(dir)?;
        let host_key = dir.join("host_key");
        let client_key = dir.join("client_key");
        let host_public = generate_ssh_key(&host_key)?;
        let client_public = generate_ssh_key(&client_key)?;
        let authorized_keys = dir.join("authorized_keys");
        std::fs::write(
            &authorized_keys,
            format!(
                "command=\"git-shell -c \\\"$SSH_ORIGINAL_COMMAND\\\"\",restrict {}\n",
                client_public.trim()
            ),
        )?;
        let port = net::free_port()?;
        let config = dir.join("sshd_config");
        let lines = [
            format!("Port {port}"),
            "ListenAddress 127.0.0.1".to_string(),
            format!("HostKey {}", host_key.display()),
            format!("AuthorizedKeysFile {}", authorized_keys.display()),
            format!("PidFile {}", dir.join("sshd.pid").display()),
            "PasswordAuthentication no".to_string(),
            "KbdInteractiveAuthentication no".to_string(),
            "UsePAM no".to_string(),
            "StrictModes no".to_string(),
            "PermitRootLogin prohibit-password".to_string(),
            "AcceptEnv GIT_PROTOCOL".to_string(),
            "PrintMotd no".to_string(),
            "LogLevel VERBOSE".to_string(),
        ];
        std::fs::write(&config, lines.join("\n") + "\n")?;
        let check = Command::new(sshd)
            .arg("-t")
            .arg("-f")
            .arg(&config)
            .output()?;
        if !check.status.success() {
            return Err(Error::Setup(format!(
                "sshd rejected its test config {}: {}",
                config.display(),
                String::from_utf8_lossy(&check.stderr).trim()
            )));
        }
        let args = ["-D", "-e", "-f"]
            .into_iter()
            .map(String::from)
            .chain([config.display().to_string()])
            .collect::<Vec<_>>();
        let mut process = Supervised::spawn("sshd", sshd, &args, &[], &dir.join("sshd.log"), None)?;
        if !net::wait_for_port(port, Duration::from_secs(15)) || !process.is_running() {
            return Err(Error::NotReady {
                what: "sshd".into(),
                seconds: 15,
                log: process.log_tail(4000),
            });
        }
        let public_fields: Vec<&str> = host_public.split_whitespace().take(2).collect();
        let known_hosts = format!("[127.0.0.1]:{port} {}\n", public_fields.join(" "));
        let known_hosts_file = dir.join("known_hosts");
        std::fs::write(&known_hosts_file, &known_hosts)?;
        Ok(Self {
            process,
            port,
            user: current_user()?,
            client_key,
            known_hosts_file,
            known_hosts,
        })
    }

    /// The sshd port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The login user in `ssh://` URLs (the user running the tests, as sshd can only log in as it).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The authorized client's private key file (OpenSSH format, ed25519).
    pub fn client_key_path(&self) -> &Path {
        &self.client_key
    }

    /// The authorized client's private key, e.g. for a Flux `identity` secret key.
    pub fn client_private_key(&self) -> Result<String> {
        Ok(std::fs::read_to_string(&self.client_key)?)
    }

    /// The authorized client's public key line (`ssh-ed25519 AAAA… comment`).
    pub fn client_public_key(&self) -> Result<String> {
        Ok(std::fs::read_to_string(
            self.client_key.with_extension("pub"),
        )?)
    }

    /// `known_hosts` content: `[127.0.0.1]:PORT <type> <key>`.
    pub fn known_hosts(&self) -> &str {
        &self.known_hosts
    }

    /// Path of a file holding [`Self::known_hosts`].
    pub fn known_hosts_path(&self) -> &Path {
        &self.known_hosts_file
    }

    /// A `GIT_SSH_COMMAND` using the authorized key and strict host-key checking.
    pub fn git_ssh_command(&self) -> String {
        self.ssh_command(&self.client_key)
    }

    /// A `GIT_SSH_COMMAND` using `identity` (e.g. a wrong key) and strict host-key checking.
    pub fn ssh_command(&self, identity: &Path) -> String {
        format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes \
             -o BatchMode=yes -o ConnectTimeout=10",
            shell_quote(&identity.display().to_string()),
            shell_quote(&self.known_hosts_file.display().to_string())
        )
    }

    /// The last `max_bytes` of sshd's log.
    pub fn log_tail(&self, max_bytes: u64) -> String {
        self.process.log_tail(max_bytes)
    }
}

/// Generates an ed25519 key pair at `path` (+ `.pub`) with ssh-keygen; returns the public key line.
pub fn generate_ssh_key(path: &Path) -> Result<String> {
    let output = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "sluice-e2e", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::Setup(format!(
                "cannot run ssh-keygen: {e}; install it: apt-get install -y openssh-client"
            ))
        })?;
    if !output.status.success() {
        return Err(Error::Setup(format!(
            "ssh-keygen for {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(std::fs::read_to_string(path.with_extension("pub"))?)
}

fn current_user() -> Result<String> {
    let output = Command::new("id").arg("-un").output()?;
    let user = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if user.is_empty() {
        return Err(Error::Setup(
            "`id -un` printed no user name; the SSH URL needs the current user".into(),
        ));
    }
    Ok(user)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `scheme://user:password@rest` for an `http(s)://` URL.
pub fn url_with_credentials(url: &str, username: &str, password: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{username}:{password}@{rest}"),
        None => url.to_string(),
    }
}

/// A ref from `git ls-remote`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRef {
    pub sha: String,
    pub name: String,
}

/// The git CLI with a private empty HOME, no system config, no prompts, a fixed identity and a timeout.
pub struct GitCli {
    home: TempDir,
    configs: Vec<String>,
    envs: Vec<(String, String)>,
}

impl GitCli {
    /// A client with its own temporary HOME.
    pub fn new() -> Result<Self> {
        let home = tempfile::Builder::new()
            .prefix("sluice-git-home-")
            .tempdir()?;
        Ok(Self {
            home,
            configs: Vec::new(),
            envs: Vec::new(),
        })
    }

    /// Adds `-c key=value` to every command.
    pub fn with_config(mut self, key: &str, value: &str) -> Self {
        self.configs.push(format!("{key}={value}"));
        self
    }

    /// Sets an environment variable for every command, e.g. `GIT_SSH_COMMAND`.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs `git args…` in `dir` (or the temp HOME); returns stdout, or an error with stderr.
    pub fn run<I, S>(&self, dir: Option<&Path>, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let mut command = Command::new("timeout");
        command
            .arg("--kill-after=5")
            .arg(GIT_TIMEOUT_SECS.to_string())
            .arg("git");
        for config in &self.configs {
            command.arg("-c").arg(config);
        }
        command
            .args(&args)
            .current_dir(dir.unwrap_or(self.home.path()))
            .stdin(Stdio::null())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "Sluice Test")
            .env("GIT_AUTHOR_EMAIL", "test@sluice.invalid")
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_NAME", "Sluice Test")
            .env("GIT_COMMITTER_EMAIL", "test@sluice.invalid")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .env_remove("GIT_ASKPASS")
            .env_remove("SSH_ASKPASS")
            .env_remove("GIT_SSH")
            .env_remove("GIT_SSH_COMMAND")
            .env_remove("GIT_SSL_CAINFO")
            .env_remove("GIT_SSL_CAPATH")
            .env_remove("GIT_SSL_CERT")
            .env_remove("GIT_SSL_KEY")
            .env_remove("GIT_SSL_NO_VERIFY")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .envs(self.envs.iter().map(|(k, v)| (k, v)));
        let output = command.output().map_err(|e| {
            Error::Setup(format!(
                "cannot run git: {e}; install it: apt-get install -y git"
            ))
        })?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let shown = args
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let why = if output.status.code() == Some(124) {
            format!("timed out after {GIT_TIMEOUT_SECS}s")
        } else {
            format!("{}", output.status)
        };
        Err(Error::Setup(format!(
            "`git {shown}` failed ({why}): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }

    /// `git clone <url> <dest>`.
    pub fn clone_repo(&self, url: &str, dest: &Path) -> Result<()> {
        self.run(
            None,
            [
                OsStr::new("clone"),
                OsStr::new("--quiet"),
                OsStr::new(url),
                dest.as_os_str(),
            ],
        )?;
        Ok(())
    }

    /// `git ls-remote <url>`: every advertised ref.
    pub fn ls_remote(&self, url: &str) -> Result<Vec<RemoteRef>> {
        let out = self.run(None, ["ls-remote", url])?;
        Ok(out
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .map(|(sha, name)| RemoteRef {
                sha: sha.to_string(),
                name: name.to_string(),
            })
            .collect())
    }

    /// Stages everything in `worktree`, commits it and returns the commit SHA.
    pub fn commit_all(&self, worktree: &Path, message: &str) -> Result<String> {
        self.run(Some(worktree), ["add", "--all"])?;
        self.run(
            Some(worktree),
            ["commit", "--quiet", "--allow-empty", "-m", message],
        )?;
        Ok(self
            .run(Some(worktree), ["rev-parse", "HEAD"])?
            .trim()
            .to_string())
    }

    /// `git push origin <refspec>` from `worktree`.
    pub fn push(&self, worktree: &Path, refspec: &str) -> Result<()> {
        self.run(Some(worktree), ["push", "--quiet", "origin", refspec])?;
        Ok(())
    }
}
