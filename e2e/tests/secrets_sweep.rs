//! Secrets never leak: every failure path with a credential in a Secret, driven end to end with
//! all five controllers as processes against real git, registry and apiserver. Each Secret holds a
//! distinctive canary; no event, status or controller log may contain one, raw, base64 or
//! URL-encoded. Needs the binaries: `cargo build --workspace --bins`.

use std::path::Path;
use std::time::Duration;

use age::secrecy::ExposeSecret;
use anyhow::{Context, Result, ensure};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kube::api::{DynamicObject, ListParams};
use serde_json::{Value, json};
use sluice_e2e::ControlPlane;
use sluice_e2e::git::GitServer;
use sluice_e2e::leak::Canaries;
use sluice_e2e::net::free_port;
use sluice_e2e::poll::eventually;
use sluice_e2e::registry::{Artifact, Registry};
use sluice_e2e::tls::TestCa;
use sluice_e2e::toolkit::{Toolkit, apply_manifest, dynamic_api};

const REPO: &str = "fleet";
const SOPS_DOCUMENT: &str =
    include_str!("../../kustomize-controller/testdata/sops/age-secret.yaml");
const FAILURE_TIMEOUT: Duration = Duration::from_secs(150);

/// Server-side applies a manifest of any kind in `ns`.
async fn apply(client: &kube::Client, ns: &str, manifest: Value) -> Result<()> {
    Ok(apply_manifest(client, ns, &manifest).await?)
}

fn secret(name: &str, type_: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": type_, "stringData": data})
}

fn object(api_version: &str, kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec})
}

const GIT: &str = "source.toolkit.fluxcd.io/v1";
const IMAGE: &str = "image.toolkit.fluxcd.io/v1";
const KUSTOMIZE: &str = "kustomize.toolkit.fluxcd.io/v1";
const NOTIFICATION: &str = "notification.toolkit.fluxcd.io/v1beta3";

/// A key file copied from `source` and encrypted with `passphrase` by ssh-keygen.
fn encrypted_key(source: &Path, dir: &Path, passphrase: &str) -> Result<String> {
    let path = dir.join(format!("key-{}", passphrase.len()));
    std::fs::copy(source, &path)?;
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "", "-N", passphrase, "-f"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .status()?;
    ensure!(status.success(), "ssh-keygen -p failed");
    Ok(std::fs::read_to_string(&path)?)
}

/// The real servers the objects talk to.
struct Servers {
    git: GitServer,
    bearer: GitServer,
    registry: Registry,
    /// A registry behind a token service.
    token_registry: Registry,
    git_password: String,
    keys: tempfile::TempDir,
}

async fn start_servers(canaries: &mut Canaries) -> Result<Servers> {
    let git_password = canaries.make("git-right-password");
    let git = GitServer::builder()
        .basic_auth("flux", &git_password)
        .ssh()
        .start()?;
    git.create_repo(REPO)?;
    let service = "apiVersion: v1\nkind: Service\nmetadata:\n  name: subst\nspec:\n  type: ${svc_type}\n  ports:\n    - port: 80\n";
    let broken = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: expr\ndata:\n  a: \"${token}-${unclosed\"\n  b: \"${unclosed ${token}\"\n";
    git.commit(
        REPO,
        "main",
        [
            ("sops/secret.yaml", SOPS_DOCUMENT),
            ("subst-apply/service.yaml", service),
            ("subst-expr/configmap.yaml", broken),
        ],
        "fixtures",
    )?;
    let bearer = GitServer::builder()
        .bearer_token("the-right-token")
        .start()?;
    bearer.create_repo(REPO)?;
    bearer.commit(REPO, "main", [("a.yaml", "kind: ConfigMap\n")], "first")?;
    let registry = Registry::builder()
        .basic_auth("robot", &canaries.make("registry-right-password"))
        .start()?;
    let artifact = Artifact::from_files([("app.yaml", "kind: ConfigMap\n")], "test", "v1")?;
    let ca = TestCa::new("secrets-sweep")?;
    let token_password = canaries.make("token-registry-right-password");
    let token_registry = Registry::builder()
        .token_auth(&ca, "robot", &token_password)?
        .start()?;
    for registry in [&registry, &token_registry] {
        registry
            .client()?
            .push_artifact("apps/app", "1.0.0", &artifact)
            .await?;
    }
    Ok(Servers {
        git,
        bearer,
        registry,
        token_registry,
        git_password,
        keys: tempfile::tempdir()?,
    })
}

/// GitRepositories: basic, bearer, SSH passphrase wrong, SSH key refused, proxy credentials.
async fn git_objects(
    client: &kube::Client,
    ns: &str,
    s: &Servers,
    canaries: &mut Canaries,
) -> Result<Vec<Value>> {
    let ssh = s.git.ssh().context("ssh enabled")?;
    let known_hosts = ssh.known_hosts().to_owned();
    let right_passphrase = canaries.make("ssh-right-passphrase");
    let authorized = encrypted_key(ssh.client_key_path(), s.keys.path(), &right_passphrase)?;
    let stranger_path = s.keys.path().join("stranger");
    sluice_e2e::git::generate_ssh_key(&stranger_path)?;
    let stranger_passphrase = canaries.make("ssh-refused-key-passphrase");
    let stranger = encrypted_key(&stranger_path, s.keys.path(), &stranger_passphrase)?;
    let dead = free_port()?;
    let basic = |what: &str, canaries: &mut Canaries| json!({"username": "flux", "password": canaries.make(what)});
    let secrets = [
        (
            "git-right",
            json!({"username": "flux", "password": s.git_password}),
        ),
        ("git-basic", basic("git-basic-password", canaries)),
        (
            "git-bearer",
            json!({"bearerToken": canaries.make("git-bearer-token")}),
        ),
        (
            "git-ssh-pass",
            json!({"identity": authorized, "known_hosts": known_hosts, "password": canaries.make("ssh-wrong-passphrase")}),
        ),
        (
            "git-ssh-refused",
            json!({"identity": stranger, "known_hosts": known_hosts, "password": stranger_passphrase}),
        ),
        (
            "git-proxy",
            json!({"address": format!("http://127.0.0.1:{dead}"), "username": "proxy-user", "password": canaries.make("proxy-password")}),
        ),
        ("auto-git", basic("automation-git-password", canaries)),
    ];
    for (name, data) in secrets {
        apply(client, ns, secret(name, "Opaque", data)).await?;
    }
    let (http, bearer) = (s.git.http_url(REPO), s.bearer.http_url(REPO));
    let ssh_url = s.git.ssh_url(REPO).context("ssh url")?;
    let spec = |url: &str, secret: &str| json!({"url": url, "interval": "1m", "timeout": "10s", "ref": {"branch": "main"}, "secretRef": {"name": secret}});
    let mut proxied = spec(&http, "git-right");
    proxied["proxySecretRef"] = json!({"name": "git-proxy"});
    let mut repositories = vec![object(GIT, "GitRepository", "git-proxy", proxied)];
    for (name, url, secret) in [
        ("fleet", &http, "git-right"),
        ("git-basic", &http, "git-basic"),
        ("git-bearer", &bearer, "git-bearer"),
        ("git-ssh-pass", &ssh_url, "git-ssh-pass"),
        ("git-ssh-refused", &ssh_url, "git-ssh-refused"),
        ("auto-git", &http, "auto-git"),
    ] {
        repositories.push(object(GIT, "GitRepository", name, spec(url, secret)));
    }
    Ok(repositories)
}

/// A docker-config Secret for `robot` with `password` at `host`.
fn docker_secret(name: &str, host: &str, password: &str) -> Value {
    let auth = STANDARD.encode(format!("robot:{password}"));
    let config = json!({"auths": {host: {"auth": auth}}}).to_string();
    secret(
        name,
        "kubernetes.io/dockerconfigjson",
        json!({".dockerconfigjson": config}),
    )
}

/// OCIRepositories, the ImageRepository and the automation of `auto-git`.
async fn registry_objects(
    client: &kube::Client,
    ns: &str,
    s: &Servers,
    canaries: &mut Canaries,
) -> Result<Vec<Value>> {
    let host = s.registry.host();
    let token_host = s.token_registry.host();
    let secrets = [
        docker_secret("oci-docker", &host, &canaries.make("oci-docker-password")),
        docker_secret(
            "oci-token",
            &token_host,
            &canaries.make("oci-token-password"),
        ),
        docker_secret(
            "image-token",
            &token_host,
            &canaries.make("image-token-password"),
        ),
        docker_secret(
            "image-docker",
            &host,
            &canaries.make("image-docker-password"),
        ),
        secret(
            "oci-cert-key",
            "Opaque",
            json!({
                "tls.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                "tls.key": format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", canaries.make("oci-tls-key")),
            }),
        ),
        secret(
            "oci-cert-ca",
            "Opaque",
            json!({
                "ca.crt": format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", canaries.make("oci-ca-cert")),
            }),
        ),
    ];
    for manifest in secrets {
        apply(client, ns, manifest).await?;
    }
    let oci = |name: &str, registry: &Registry, field: &str| {
        let mut spec = json!({"url": registry.oci_url("apps/app"), "interval": "1m", "timeout": "10s", "insecure": true, "ref": {"tag": "1.0.0"}});
        spec[field] = json!({"name": name});
        object(GIT, "OCIRepository", name, spec)
    };
    let image = |name: &str, host: &str| {
        let spec = json!({"image": format!("{host}/apps/app"), "interval": "1m", "timeout": "10s", "insecure": true, "secretRef": {"name": name}});
        object(IMAGE, "ImageRepository", name, spec)
    };
    let automation = json!({
        "sourceRef": {"kind": "GitRepository", "name": "auto-git"},
        "interval": "1m",
        "git": {"commit": {"author": {"name": "bot", "email": "bot@example.com"}}},
        "update": {"path": "./"},
    });
    Ok(vec![
        oci("oci-docker", &s.registry, "secretRef"),
        oci("oci-token", &s.token_registry, "secretRef"),
        oci("oci-cert-key", &s.registry, "certSecretRef"),
        oci("oci-cert-ca", &s.registry, "certSecretRef"),
        image("image-docker", &host),
        image("image-token", &token_host),
        object(IMAGE, "ImageUpdateAutomation", "auto", automation),
    ])
}

/// Kustomizations of `fleet`: SOPS with a wrong and a malformed age key, substitutions.
async fn kustomize_objects(
    client: &kube::Client,
    ns: &str,
    canaries: &mut Canaries,
) -> Result<Vec<Value>> {
    let identity = age::x25519::Identity::generate();
    let key = canaries.add("age-key", identity.to_string().expose_secret());
    let malformed = format!("AGE-SECRET-KEY-1{}", canaries.make("malformed-age-key"));
    let secrets = [
        secret("sops-key", "Opaque", json!({"identity.agekey": key})),
        secret(
            "sops-malformed",
            "Opaque",
            json!({"identity.agekey": malformed}),
        ),
        secret(
            "subst-apply",
            "Opaque",
            json!({"svc_type": canaries.make("substituted-invalid-value")}),
        ),
        secret(
            "subst-expr",
            "Opaque",
            json!({"token": canaries.make("substituted-next-to-bad-expression")}),
        ),
    ];
    for manifest in secrets {
        apply(client, ns, manifest).await?;
    }
    let ks = |name: &str, path: &str, extra: Value| {
        let mut spec = json!({"interval": "1m", "timeout": "30s", "path": path, "prune": true, "targetNamespace": ns,
            "sourceRef": {"kind": "GitRepository", "name": "fleet"}});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        object(KUSTOMIZE, "Kustomization", name, spec)
    };
    let decryption =
        |secret: &str| json!({"decryption": {"provider": "sops", "secretRef": {"name": secret}}});
    let substitution = |secret: &str| json!({"postBuild": {"substituteFrom": [{"kind": "Secret", "name": secret}]}});
    Ok(vec![
        ks("ks-sops", "./sops", decryption("sops-key")),
        ks("ks-sops-malformed", "./sops", decryption("sops-malformed")),
        ks(
            "ks-subst-apply",
            "./subst-apply",
            substitution("subst-apply"),
        ),
        ks("ks-subst-expr", "./subst-expr", substitution("subst-expr")),
    ])
}

/// A Slack Provider whose Secret address and token are canaries, at a port that refuses, and an
/// Alert forwarding every event of the test's objects to it.
async fn notification_objects(
    client: &kube::Client,
    ns: &str,
    canaries: &mut Canaries,
) -> Result<()> {
    let dead = free_port()?;
    let user = canaries.make("provider-address-userinfo");
    let path = canaries.make("provider-address-path");
    let address = format!("http://u:{user}@127.0.0.1:{dead}/hook/{path}");
    apply(
        client,
        ns,
        secret(
            "provider",
            "Opaque",
            json!({"address": address, "token": canaries.make("provider-token")}),
        ),
    )
    .await?;
    apply(
        client,
        ns,
        object(
            NOTIFICATION,
            "Provider",
            "refused",
            json!({"type": "slack", "secretRef": {"name": "provider"}}),
        ),
    )
    .await?;
    let sources: Vec<Value> = [
        "GitRepository",
        "OCIRepository",
        "Kustomization",
        "ImageRepository",
        "ImageUpdateAutomation",
    ]
    .into_iter()
    .map(|kind| json!({"kind": kind, "name": "*"}))
    .collect();
    apply(
        client,
        ns,
        object(
            NOTIFICATION,
            "Alert",
            "all",
            json!({"providerRef": {"name": "refused"}, "eventSources": sources}),
        ),
    )
    .await
}

const PENDING_REASONS: [&str; 3] = ["Progressing", "ArtifactFailed", "DependencyNotReady"];

/// `Kind name: Ready <status>/<reason>` of `object`, and whether that reports its failure
/// (Ready=False, not merely waiting for its source). Never the message, which might leak.
fn failure_state(kind: &str, object: &DynamicObject) -> (String, bool) {
    let name = object.metadata.name.clone().unwrap_or_default();
    let conditions = object.data["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ready = conditions.iter().find(|c| c["type"] == "Ready");
    let (status, reason) = ready.map_or(("none", "none"), |c| {
        (
            c["status"].as_str().unwrap_or("?"),
            c["reason"].as_str().unwrap_or("?"),
        )
    });
    let failed = status == "False" && !PENDING_REASONS.contains(&reason);
    (format!("{kind} {name}: Ready {status}/{reason}"), failed)
}

/// Waits until every object in `failing` reports its failure; returns their Ready reasons.
async fn wait_failures(client: &kube::Client, ns: &str, failing: &[Value]) -> Result<Vec<String>> {
    let reasons = eventually(
        "every object to report its failure",
        FAILURE_TIMEOUT,
        Duration::from_millis(500),
        || async {
            let (mut reached, mut pending) = (Vec::new(), Vec::new());
            for manifest in failing {
                let api_version = manifest["apiVersion"].as_str().unwrap_or_default();
                let kind = manifest["kind"].as_str().unwrap_or_default();
                let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
                match dynamic_api(client, ns, api_version, kind).get(name).await {
                    Ok(object) => match failure_state(kind, &object) {
                        (state, true) => reached.push(state),
                        (state, false) => pending.push(state),
                    },
                    Err(e) => pending.push(format!("{kind} {name}: {e}")),
                }
            }
            if pending.is_empty() {
                Ok(reached)
            } else {
                Err(pending.join("; "))
            }
        },
    )
    .await?;
    Ok(reasons)
}

/// Every place a canary could surface: `(where, text)` for statuses, events and logs.
async fn collect(
    client: &kube::Client,
    ns: &str,
    running: &Toolkit,
) -> Result<Vec<(String, String)>> {
    let mut texts = Vec::new();
    let kinds = [
        (GIT, "GitRepository"),
        (GIT, "OCIRepository"),
        (KUSTOMIZE, "Kustomization"),
        (IMAGE, "ImageRepository"),
        (IMAGE, "ImageUpdateAutomation"),
        (NOTIFICATION, "Provider"),
        (NOTIFICATION, "Alert"),
    ];
    for (api_version, kind) in kinds {
        for object in dynamic_api(client, ns, api_version, kind)
            .list(&ListParams::default())
            .await?
            .items
        {
            let name = object.metadata.name.clone().unwrap_or_default();
            texts.push((
                format!("status of {kind}/{name}"),
                serde_json::to_string(&object.data["status"])?,
            ));
        }
    }
    for (api_version, kind) in [("v1", "Event"), ("events.k8s.io/v1", "Event")] {
        for event in dynamic_api(client, ns, api_version, kind)
            .list(&ListParams::default())
            .await?
            .items
        {
            let name = event.metadata.name.clone().unwrap_or_default();
            texts.push((
                format!("{api_version} Event {name}"),
                serde_json::to_string(&event)?,
            ));
        }
    }
    for (binary, path) in running.logs() {
        let log = String::from_utf8_lossy(&std::fs::read(&path)?).into_owned();
        for (number, line) in log.lines().enumerate() {
            texts.push((format!("{binary} log line {}", number + 1), line.to_owned()));
        }
    }
    Ok(texts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_from_a_secret_reaches_events_status_or_logs() -> Result<()> {
    let plane = ControlPlane::shared().await?;
    let ns = plane.namespace("secrets-sweep").await?;
    let client = plane.client().await?;
    let mut canaries = Canaries::default();
    let servers = start_servers(&mut canaries).await?;
    notification_objects(&client, &ns, &mut canaries).await?;
    let (kubeconfig, dir, scope_ns) = (
        plane.kubeconfig_path().to_path_buf(),
        plane.dir().join(format!("{ns}-controllers")),
        ns.clone(),
    );
    let running =
        tokio::task::spawn_blocking(move || Toolkit::start(&kubeconfig, &dir, &scope_ns)).await??;

    let mut objects = git_objects(&client, &ns, &servers, &mut canaries).await?;
    objects.extend(registry_objects(&client, &ns, &servers, &mut canaries).await?);
    objects.extend(kustomize_objects(&client, &ns, &mut canaries).await?);
    for manifest in &objects {
        apply(&client, &ns, manifest.clone()).await?;
    }
    let failing: Vec<Value> = objects
        .into_iter()
        .filter(|o| o["metadata"]["name"] != "fleet")
        .collect();
    let reasons = wait_failures(&client, &ns, &failing).await?;
    eprintln!("failures reported:\n{}", reasons.join("\n"));
    let nc_log = running
        .logs()
        .into_iter()
        .find(|(binary, _)| binary == "notification-controller")
        .map(|(_, path)| path)
        .context("notification-controller's log")?;
    eventually(
        "the Provider's delivery failure in the log",
        FAILURE_TIMEOUT,
        Duration::from_millis(500),
        || async {
            let log = std::fs::read_to_string(&nc_log).unwrap_or_default();
            if log.contains("notification dispatch failed") {
                Ok(())
            } else {
                Err("not yet")
            }
        },
    )
    .await?;
    // Let the last events and log lines of the failures land.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let leaks: Vec<String> = collect(&client, &ns, &running)
        .await?
        .iter()
        .flat_map(|(place, text)| {
            canaries
                .found_in(text)
                .into_iter()
                .map(move |(what, form)| format!("canary {what} ({form}) in {place}"))
        })
        .collect();
    ensure!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
    Ok(())
}
