//! Secrets never leak from the notification-controller: Providers whose Secrets hold tokens,
//! addresses with tokens, headers, HMAC keys, proxy and TLS credentials fail to deliver in every
//! way (refused, 5xx, 4xx, timeout, bad address, bad PEM), and Receivers get wrong and right
//! tokens and signatures. The controller runs as a process at debug level; no status, event,
//! log line or webhook answer may contain a canary. Needs `cargo build -p notification-controller`.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use aws_lc_rs::hmac;
use axum::Router;
use axum::http::StatusCode;
use kube::api::ListParams;
use serde_json::{Value, json};
use sluice_e2e::ControlPlane;
use sluice_e2e::bench::sibling_binary;
use sluice_e2e::leak::Canaries;
use sluice_e2e::net::{free_port, wait_for_port};
use sluice_e2e::poll::eventually;
use sluice_e2e::process::Supervised;
use sluice_e2e::toolkit::{apply_manifest, dynamic_api};

const NOTIFICATION: &str = "notification.toolkit.fluxcd.io/v1beta3";
const RECEIVER: &str = "notification.toolkit.fluxcd.io/v1";
const DISPATCH_FAILED: &str = "NotificationDispatchFailed";
/// Five attempts with 2+4+8+16 s between them, plus the per-attempt timeouts.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);

fn secret(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque", "stringData": data})
}

fn object(api_version: &str, kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec})
}

/// An HTTP server on 127.0.0.1 answering every request with `status` after `delay`.
async fn stub(status: StatusCode, delay: Duration) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    let app = Router::new().fallback(move || async move {
        tokio::time::sleep(delay).await;
        (status, "no\n")
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(address)
}

/// Where Providers deliver: a refused port, and servers answering 500, 403, or too slowly.
struct Targets {
    dead: String,
    failing: String,
    refusing: String,
    slow: String,
}

async fn targets() -> Result<Targets> {
    Ok(Targets {
        dead: format!("http://127.0.0.1:{}", free_port()?),
        failing: stub(StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO).await?,
        refusing: stub(StatusCode::FORBIDDEN, Duration::ZERO).await?,
        slow: stub(StatusCode::OK, Duration::from_secs(10)).await?,
    })
}

/// `(name, Provider spec, Secret data for its secretRef)`; each Secret value is a canary.
#[rustfmt::skip]
fn providers(t: &Targets, c: &mut Canaries) -> Vec<(&'static str, Value, Option<Value>)> {
    let host = |url: &str| url.trim_start_matches("http://").to_owned();
    let slack_hook = format!("{}/services/T0/B0/{}", t.dead, c.make("slack-webhook-path"));
    let headers = format!("Authorization: Bearer {}\nX-Api-Key: {}\n", c.make("header-bearer"), c.make("header-api-key"));
    let sentry_dsn = format!("http://{}@{}/42", c.make("sentry-dsn-key"), host(&t.refusing));
    let legacy_proxy = format!("http://proxy-user:{}@{}", c.make("legacy-proxy-password"), host(&t.dead));
    let hook = format!("{}/hooks/{}", t.refusing, c.make("generic-address-path"));
    let ref_to = |field: &str, name: &str| json!({"type": "generic", "address": t.failing, field: {"name": name}});
    vec![
        ("slack-webhook", json!({"type": "slack"}), Some(json!({"address": slack_hook}))),
        ("slack-bot", json!({"type": "slack", "channel": "general", "address": format!("{}/api/chat.postMessage", t.failing)}),
            Some(json!({"token": c.make("slack-bot-token")}))),
        ("generic-headers", json!({"type": "generic"}), Some(json!({"address": hook, "headers": headers}))),
        ("generic-hmac", json!({"type": "generic-hmac", "address": t.refusing}), Some(json!({"token": c.make("generic-hmac-key")}))),
        ("hmac-slow", json!({"type": "generic-hmac", "address": t.slow, "timeout": "1s"}), Some(json!({"token": c.make("slow-hmac-key")}))),
        ("telegram", json!({"type": "telegram", "channel": "-100", "address": t.failing}), Some(json!({"token": c.make("telegram-bot-token")}))),
        ("github-status", json!({"type": "github"}),
            Some(json!({"address": format!("{}/org/app", t.refusing), "token": c.make("github-token")}))),
        ("sentry", json!({"type": "sentry"}), Some(json!({"address": sentry_dsn}))),
        ("bad-address", json!({"type": "generic"}), Some(json!({"address": format!("127.0.0.1/{}", c.make("schemeless-address-token"))}))),
        ("legacy-proxy", json!({"type": "generic", "address": t.failing}), Some(json!({"proxy": legacy_proxy}))),
        ("proxy-dead", ref_to("proxySecretRef", "proxy-dead-proxy"), None),
        ("proxy-refusing", ref_to("proxySecretRef", "proxy-refusing-proxy"), None),
        ("bad-cert", ref_to("certSecretRef", "bad-cert-tls"), None),
    ]
}

/// The Secrets referenced by `proxySecretRef` and `certSecretRef`.
fn side_secrets(t: &Targets, c: &mut Canaries) -> Vec<Value> {
    let pem = |label: &str, body: String| {
        format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
    };
    vec![
        secret(
            "proxy-dead-proxy",
            json!({"address": t.dead, "username": "proxy-user", "password": c.make("proxy-password")}),
        ),
        secret(
            "proxy-refusing-proxy",
            json!({"address": t.refusing, "username": "proxy-user", "password": c.make("refused-proxy-password")}),
        ),
        secret(
            "bad-cert-tls",
            json!({
                "ca.crt": pem("CERTIFICATE", c.make("ca-cert")),
                "tls.crt": pem("CERTIFICATE", c.make("client-cert")),
                "tls.key": pem("PRIVATE KEY", c.make("client-key")),
            }),
        ),
    ]
}

/// Creates every Provider with its Secrets and one Alert per Provider; returns the Alert names.
async fn notification_objects(
    client: &kube::Client,
    ns: &str,
    t: &Targets,
    c: &mut Canaries,
) -> Result<Vec<String>> {
    for manifest in side_secrets(t, c) {
        apply_manifest(client, ns, &manifest).await?;
    }
    let mut alerts = Vec::new();
    for (name, mut spec, data) in providers(t, c) {
        if let Some(data) = data {
            let secret_name = format!("{name}-secret");
            apply_manifest(client, ns, &secret(&secret_name, data)).await?;
            spec["secretRef"] = json!({"name": secret_name});
        }
        apply_manifest(client, ns, &object(NOTIFICATION, "Provider", name, spec)).await?;
        let alert = format!("to-{name}");
        let spec = json!({"providerRef": {"name": name}, "eventSources": [{"kind": "GitRepository", "name": "*"}]});
        apply_manifest(client, ns, &object(NOTIFICATION, "Alert", &alert, spec)).await?;
        alerts.push(alert);
    }
    Ok(alerts)
}

/// Receiver types and the token in their Secret (a canary), all annotating GitRepository `app`.
async fn receivers(
    client: &kube::Client,
    ns: &str,
    c: &mut Canaries,
) -> Result<Vec<(String, String)>> {
    let repository = json!({"url": "https://example.com/app.git", "interval": "10m"});
    apply_manifest(
        client,
        ns,
        &object(
            "source.toolkit.fluxcd.io/v1",
            "GitRepository",
            "app",
            repository,
        ),
    )
    .await?;
    let mut tokens = Vec::new();
    for type_ in ["github", "gitlab", "generic-hmac", "harbor"] {
        let token = c.make(&format!("{type_}-receiver-token"));
        apply_manifest(
            client,
            ns,
            &secret(&format!("{type_}-token"), json!({"token": token})),
        )
        .await?;
        let spec = json!({"type": type_, "secretRef": {"name": format!("{type_}-token")},
            "resources": [{"kind": "GitRepository", "name": "app"}]});
        apply_manifest(client, ns, &object(RECEIVER, "Receiver", type_, spec)).await?;
        tokens.push((type_.to_owned(), token));
    }
    Ok(tokens)
}

/// `sha256=<hex HMAC-SHA256 of body keyed with key>`.
fn signature(key: &str, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes());
    format!("sha256={}", hex::encode(hmac::sign(&key, body.as_bytes())))
}

/// The controller binary watching `ns`, at debug level; returns it, its event URL and webhook URL.
fn start_controller(plane: &ControlPlane, ns: &str) -> Result<(Supervised, String, String)> {
    let (events, receiver) = (free_port()?, free_port()?);
    let args = vec![
        "--watch-all-namespaces=false".to_owned(),
        format!("--runtime-namespace={ns}"),
        "--enable-leader-election=false".to_owned(),
        "--log-encoding=console".to_owned(),
        "--log-level=debug".to_owned(),
        format!("--events-addr=127.0.0.1:{events}"),
        format!("--receiverAddr=127.0.0.1:{receiver}"),
        format!("--metrics-addr=127.0.0.1:{}", free_port()?),
        format!("--health-addr=127.0.0.1:{}", free_port()?),
    ];
    let env = [(
        "KUBECONFIG".to_owned(),
        plane.kubeconfig_path().display().to_string(),
    )];
    let log = plane
        .dir()
        .join(format!("{ns}-notification-controller.log"));
    let binary = sibling_binary("notification-controller")?;
    let mut process =
        Supervised::spawn("notification-controller", &binary, &args, &env, &log, None)?;
    let timeout = Duration::from_secs(60);
    ensure!(
        wait_for_port(receiver, timeout) && wait_for_port(events, timeout) && process.is_running(),
        "notification-controller did not start:\n{}",
        process.log_tail(3000)
    );
    Ok((
        process,
        format!("http://127.0.0.1:{events}/"),
        format!("http://127.0.0.1:{receiver}"),
    ))
}

/// Waits until every Receiver has its webhook path; returns `(type, path)`.
async fn webhook_paths(
    client: &kube::Client,
    ns: &str,
    types: &[String],
) -> Result<Vec<(String, String)>> {
    let api = dynamic_api(client, ns, RECEIVER, "Receiver");
    let paths = eventually(
        "every Receiver to be Ready",
        DELIVERY_TIMEOUT,
        Duration::from_millis(200),
        || async {
            let mut paths = Vec::new();
            for type_ in types {
                let receiver = api.get(type_).await.map_err(|e| e.to_string())?;
                match receiver.data["status"]["webhookPath"].as_str() {
                    Some(path) => paths.push((type_.clone(), path.to_owned())),
                    None => return Err(format!("{type_} has no webhookPath yet")),
                }
            }
            Ok(paths)
        },
    )
    .await?;
    Ok(paths)
}

/// One wrong and one right request per Receiver, each answered as expected; returns the answers.
async fn send_webhooks(
    url: &str,
    paths: &[(String, String)],
    tokens: &[(String, String)],
    c: &mut Canaries,
) -> Result<Vec<(String, String)>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let body =
        json!({"ref": "refs/heads/main", "after": "0123456789abcdef0123456789abcdef01234567"})
            .to_string();
    let mut answers = Vec::new();
    for ((type_, path), (_, token)) in paths.iter().zip(tokens) {
        let wrong = c.make(&format!("{type_}-wrong-token"));
        for (right, secret) in [(false, &wrong), (true, token)] {
            let headers: Vec<(&str, String)> = match type_.as_str() {
                "github" => vec![
                    ("X-GitHub-Event", "push".to_owned()),
                    ("X-Hub-Signature-256", signature(secret, &body)),
                ],
                "gitlab" => vec![
                    ("X-Gitlab-Event", "Push Hook".to_owned()),
                    ("X-Gitlab-Token", secret.clone()),
                ],
                "generic-hmac" => vec![("X-Signature", signature(secret, &body))],
                _ => vec![("Authorization", secret.clone())],
            };
            if !right
                && let Some((_, signed)) = headers.iter().find(|(_, v)| v.starts_with("sha256="))
            {
                c.add(
                    &format!("{type_}-wrong-signature"),
                    signed.trim_start_matches("sha256="),
                );
            }
            let mut request = http
                .post(format!("{url}{path}"))
                .header("Content-Type", "application/json")
                .body(body.clone());
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let response = request.send().await?;
            let status = response.status().as_u16();
            let text = response.text().await?;
            let expected = if right { 200 } else { 401 };
            ensure!(
                status == expected,
                "{type_} receiver answered {status} ({text}) to a {} request",
                if right { "right" } else { "wrong" }
            );
            answers.push((format!("{type_} webhook answer ({status})"), text));
        }
    }
    Ok(answers)
}

/// Posts an error event for GitRepository `app` with a commit, as source-controller does.
async fn post_event(events_url: &str, ns: &str) -> Result<()> {
    let event = json!({
        "involvedObject": {"kind": "GitRepository", "namespace": ns, "name": "app", "apiVersion": "source.toolkit.fluxcd.io/v1"},
        "severity": "error",
        "timestamp": "2026-01-01T00:00:00Z",
        "message": "failed to checkout and determine revision",
        "reason": "GitOperationFailed",
        "reportingController": "source-controller",
        "metadata": {"source.toolkit.fluxcd.io/revision": "main@sha1:0123456789abcdef0123456789abcdef01234567"},
    });
    let status = reqwest::Client::new()
        .post(events_url)
        .json(&event)
        .timeout(Duration::from_secs(30))
        .send()
        .await?
        .status();
    ensure!(
        status == StatusCode::ACCEPTED,
        "the event server answered {status}"
    );
    Ok(())
}

/// How each Provider's delivery fails, as its Alert's `NotificationDispatchFailed` Event says.
const EXPECTED_FAILURES: [(&str, &str); 13] = [
    ("slack-webhook", "connection failed"),
    ("slack-bot", "HTTP 500"),
    ("generic-headers", "HTTP 403"),
    ("generic-hmac", "HTTP 403"),
    ("hmac-slow", "timed out"),
    ("telegram", "HTTP 500"),
    ("github-status", "HTTP 403"),
    ("sentry", "HTTP 403"),
    ("bad-address", "not a valid URL"),
    ("legacy-proxy", "connection failed"),
    ("proxy-dead", "connection failed"),
    ("proxy-refusing", "HTTP 403"),
    ("bad-cert", "not valid PEM"),
];

/// Waits until every Alert has a `NotificationDispatchFailed` Event; returns `(alert, message)`.
async fn wait_dispatch_failures(
    client: &kube::Client,
    ns: &str,
    alerts: &[String],
) -> Result<Vec<(String, String)>> {
    let api = dynamic_api(client, ns, "v1", "Event");
    let failures = eventually(
        "every Alert to report its delivery failure",
        DELIVERY_TIMEOUT,
        Duration::from_millis(500),
        || async {
            let events = api
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items;
            let failed: Vec<(String, String)> = events
                .iter()
                .filter(|e| e.data["reason"] == DISPATCH_FAILED)
                .map(|e| {
                    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                    (
                        text(&e.data["involvedObject"]["name"]),
                        text(&e.data["message"]),
                    )
                })
                .collect();
            let pending: Vec<&String> = alerts
                .iter()
                .filter(|a| !failed.iter().any(|(name, _)| name == *a))
                .collect();
            if pending.is_empty() {
                Ok(failed)
            } else {
                Err(format!("no failure yet for {pending:?}"))
            }
        },
    )
    .await?;
    Ok(failures)
}

/// `(where, text)` of every status, Event and log line in `ns`.
async fn collect(client: &kube::Client, ns: &str, log: &Path) -> Result<Vec<(String, String)>> {
    let mut texts = Vec::new();
    for (api_version, kind) in [
        (NOTIFICATION, "Provider"),
        (NOTIFICATION, "Alert"),
        (RECEIVER, "Receiver"),
    ] {
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
    for api_version in ["v1", "events.k8s.io/v1"] {
        for event in dynamic_api(client, ns, api_version, "Event")
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
    let log = String::from_utf8_lossy(&std::fs::read(log)?).into_owned();
    for (number, line) in log.lines().enumerate() {
        texts.push((format!("log line {}", number + 1), line.to_owned()));
    }
    Ok(texts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_notification_secret_reaches_events_status_logs_or_answers() -> Result<()> {
    let plane = ControlPlane::shared().await?;
    let ns = plane.namespace("nc-secrets-sweep").await?;
    let client = plane.client().await?;
    let mut canaries = Canaries::default();
    let targets = targets().await?;
    let alerts = notification_objects(&client, &ns, &targets, &mut canaries).await?;
    let tokens = receivers(&client, &ns, &mut canaries).await?;
    let (controller, events_url, webhook_url) = start_controller(plane, &ns)?;

    post_event(&events_url, &ns).await?;
    let types: Vec<String> = tokens.iter().map(|(type_, _)| type_.clone()).collect();
    let paths = webhook_paths(&client, &ns, &types).await?;
    let mut texts = send_webhooks(&webhook_url, &paths, &tokens, &mut canaries).await?;
    let failures = wait_dispatch_failures(&client, &ns, &alerts).await?;
    // Let the last events and log lines land.
    tokio::time::sleep(Duration::from_secs(2)).await;

    texts.extend(collect(&client, &ns, controller.log_path()).await?);
    let leaks: Vec<String> = texts
        .iter()
        .flat_map(|(place, text)| {
            canaries
                .found_in(text)
                .into_iter()
                .map(move |(what, form)| format!("canary {what} ({form}) in {place}"))
        })
        .collect();
    ensure!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
    for (provider, expected) in EXPECTED_FAILURES {
        let alert = format!("to-{provider}");
        let messages: Vec<&String> = failures
            .iter()
            .filter(|(a, _)| *a == alert)
            .map(|(_, m)| m)
            .collect();
        eprintln!("{alert}: {messages:?}");
        ensure!(
            messages.iter().any(|m| m.contains(expected)),
            "{alert} did not fail with {expected:?}: {messages:?}"
        );
    }
    let log = std::fs::read_to_string(controller.log_path()).context("the controller's log")?;
    ensure!(
        log.contains("webhook refused") && log.contains("notification dispatch failed"),
        "the log shows no refused webhook or failed delivery"
    );
    Ok(())
}
