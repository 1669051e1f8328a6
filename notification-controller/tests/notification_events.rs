//! The event server against the real apiserver and local recording provider servers: matching,
//! payloads on the wire, signatures, duplicates, bad requests, slow and dead providers, and
//! secrets kept out of Kubernetes Events.

mod common;

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use common::{Harness, Recorder};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use sluice_api::kustomize::Kustomization;
use sluice_api::source::GitRepository;
use sluice_runtime::events::{NotificationClient, NotificationEvent, ObjectEvent};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A real Kustomization created in the namespace (so label lookups find it).
async fn kustomization(
    harness: &Harness,
    name: &str,
    labels: serde_json::Value,
) -> Result<Kustomization> {
    let object: Kustomization = serde_json::from_value(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": harness.namespace, "labels": labels},
        "spec": {"interval": "5m", "prune": true, "sourceRef": {"kind": "GitRepository", "name": "app"}},
    }))?;
    let api: Api<Kustomization> = Api::namespaced(harness.client.clone(), &harness.namespace);
    Ok(api.create(&PostParams::default(), &object).await?)
}

/// The event kustomize-controller sends after applying a revision.
fn applied(object: &Kustomization, message: &str) -> NotificationEvent {
    let event = ObjectEvent::info("ReconciliationSucceeded", message)
        .with_revision(format!("main@sha1:{SHA}"));
    NotificationEvent::for_object(object, &event, "kustomize-controller", "kc-0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_and_hmac_providers_receive_events_from_our_client() -> Result<()> {
    let harness = Harness::start("nc-generic").await?;
    let recorder = Recorder::start().await?;
    harness
        .secret(
            "hmac",
            &[("token", "hmac-key-1"), ("headers", "X-Team: web\n")],
        )
        .await?;
    let sources = json!([{"kind": "Kustomization", "name": "*"}]);
    harness
        .provider_and_alert(
            "plain",
            json!({"type": "generic", "address": format!("{}/plain", recorder.url)}),
            json!({"providerRef": {"name": "plain"}, "eventSources": sources,
                   "eventMetadata": {"env": "prod"}, "summary": "apps in eu-1"}),
        )
        .await?;
    harness
        .provider_and_alert(
            "signed",
            json!({"type": "generic-hmac", "address": format!("{}/signed", recorder.url),
                   "secretRef": {"name": "hmac"}}),
            json!({"providerRef": {"name": "signed"}, "eventSources": sources}),
        )
        .await?;
    let object = kustomization(&harness, "web", json!({})).await?;
    // The client every Sluice controller posts with (--events-addr).
    let client = NotificationClient::new(&harness.events_url, Default::default())?;
    client.send(&applied(&object, "Applied revision")).await?;

    let plain = recorder.wait("/plain", 1).await?.remove(0);
    ensure!(plain.method == "POST");
    ensure!(plain.headers["gotk-component"] == "kustomize-controller");
    ensure!(plain.headers["content-type"] == "application/json");
    let body = plain.json();
    ensure!(body["involvedObject"]["kind"] == "Kustomization", "{body}");
    ensure!(body["reason"] == "ReconciliationSucceeded", "{body}");
    ensure!(
        body["metadata"]["revision"] == format!("main@sha1:{SHA}"),
        "{body}"
    );
    ensure!(
        body["metadata"]["env"] == "prod" && body["metadata"]["summary"] == "apps in eu-1",
        "{body}"
    );

    let signed = recorder.wait("/signed", 1).await?.remove(0);
    let expected =
        notification_controller::providers::generic_signature(b"hmac-key-1", &signed.body);
    ensure!(
        signed.headers["x-signature"] == expected,
        "{:?}",
        signed.headers
    );
    ensure!(signed.headers["x-team"] == "web");
    ensure!(harness.seen.0.lock().map(|s| s.len()).unwrap_or(0) == 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn severity_lists_and_labels_select_events() -> Result<()> {
    let harness = Harness::start("nc-filter").await?;
    let recorder = Recorder::start().await?;
    let generic =
        |path: &str| json!({"type": "generic", "address": format!("{}/{path}", recorder.url)});
    harness
        .provider_and_alert(
            "errors",
            generic("errors"),
            json!({"providerRef": {"name": "errors"}, "eventSeverity": "error",
                   "eventSources": [{"kind": "Kustomization", "name": "web"}]}),
        )
        .await?;
    harness
        .provider_and_alert(
            "lists",
            generic("lists"),
            json!({"providerRef": {"name": "lists"},
                   "eventSources": [{"kind": "Kustomization", "name": "*"}],
                   "inclusionList": ["^Applied"], "exclusionList": ["skip-me"]}),
        )
        .await?;
    harness
        .provider_and_alert(
            "labels",
            generic("labels"),
            json!({"providerRef": {"name": "labels"},
                   "eventSources": [{"kind": "Kustomization", "name": "*", "matchLabels": {"team": "web"}}]}),
        )
        .await?;
    let web = kustomization(&harness, "web", json!({"team": "web"})).await?;
    let other = kustomization(&harness, "other", json!({"team": "data"})).await?;
    for (object, message) in [
        (&web, "Applied revision one"),
        (&web, "Applied revision skip-me"),
        (&other, "Applied revision two"),
        (&other, "Health check passed"),
    ] {
        ensure!(harness.post(&applied(object, message)).await? == 202);
    }
    let failed = NotificationEvent::for_object(
        &web,
        &ObjectEvent::error("HealthCheckFailed", "web not ready"),
        "kustomize-controller",
        "",
    );
    ensure!(harness.post(&failed).await? == 202);

    let errors = recorder.wait("/errors", 1).await?;
    let lists = recorder.wait("/lists", 2).await?;
    let labels = recorder.wait("/labels", 3).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let count = |prefix: &str| {
        recorder
            .requests()
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    };
    ensure!(count("/errors") == 1 && errors[0].json()["reason"] == "HealthCheckFailed");
    let messages: Vec<String> = lists
        .iter()
        .map(|r| r.json()["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    ensure!(count("/lists") == 2, "{messages:?}");
    ensure!(
        messages.contains(&"Applied revision one".to_owned())
            && messages.contains(&"Applied revision two".to_owned())
    );
    ensure!(
        count("/labels") == 3,
        "only web's three events: {:?}",
        labels
            .iter()
            .map(|r| r.json()["message"].clone())
            .collect::<Vec<_>>()
    );
    ensure!(
        labels
            .iter()
            .all(|r| r.json()["involvedObject"]["name"] == "web")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_get_429_and_bad_requests_a_clear_400_or_413() -> Result<()> {
    let harness = Harness::start("nc-limits").await?;
    let object = kustomization(&harness, "web", json!({})).await?;
    let event = applied(&object, "Applied revision");
    ensure!(harness.post(&event).await? == 202);
    ensure!(harness.post(&event).await? == 429);
    let mut other_revision = event.clone();
    other_revision.metadata.insert(
        "kustomize.toolkit.fluxcd.io/revision".into(),
        "main@sha1:ff".into(),
    );
    ensure!(harness.post(&other_revision).await? == 202);

    let http = reqwest::Client::new();
    let response = http
        .post(&harness.events_url)
        .body("{not json")
        .send()
        .await?;
    ensure!(response.status() == 400);
    ensure!(response.text().await?.contains("not a Flux event"));
    let mut nameless = serde_json::to_value(&event)?;
    nameless["involvedObject"]["kind"] = json!("");
    let response = http
        .post(&harness.events_url)
        .json(&nameless)
        .send()
        .await?;
    ensure!(response.status() == 400);
    ensure!(response.text().await?.contains("involvedObject.kind"));
    // The server may answer 413 and close before the client has sent the whole body; the client
    // then sees the connection closed. Either way the body is refused. A client of its own, so
    // the connection the server closes is not reused for the request after it.
    let huge = vec![b' '; 4 * 1024 * 1024];
    let oversized = reqwest::Client::new();
    match oversized.post(&harness.events_url).body(huge).send().await {
        Ok(response) => ensure!(response.status() == 413, "{}", response.status()),
        Err(error) => ensure!(
            error.is_request() && !error.is_timeout(),
            "oversized body: {error}"
        ),
    }
    ensure!(http.get(&harness.events_url).send().await?.status() == 405);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_dead_providers_do_not_delay_the_others() -> Result<()> {
    let harness = Harness::start("nc-isolation").await?;
    let recorder = Recorder::start().await?;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let sources = json!([{"kind": "Kustomization", "name": "*"}]);
    for (name, address) in [
        ("slow", format!("{}/slow", recorder.url)),
        ("dead", format!("http://{dead}/")),
        ("failing", format!("{}/fail", recorder.url)),
        ("fast", format!("{}/fast", recorder.url)),
    ] {
        harness
            .provider_and_alert(
                name,
                json!({"type": "generic", "address": address, "timeout": "30s"}),
                json!({"providerRef": {"name": name}, "eventSources": sources}),
            )
            .await?;
    }
    let object = kustomization(&harness, "web", json!({})).await?;
    let started = Instant::now();
    for index in 0..3 {
        let status = harness
            .post(&applied(&object, &format!("Applied revision {index}")))
            .await?;
        ensure!(status == 202);
    }
    ensure!(
        started.elapsed() < Duration::from_secs(2),
        "the server answered in {:?}",
        started.elapsed()
    );
    let fast = recorder.wait("/fast", 3).await?;
    let last = fast.iter().map(|r| r.at).max().unwrap_or(started);
    ensure!(
        last.duration_since(started) < Duration::from_secs(3),
        "fast provider waited {:?}",
        last.duration_since(started)
    );
    // The failing provider is retried (2 retries in this harness).
    recorder.wait("/fail", 3).await?;
    let events = harness
        .wait_events("dead", "NotificationDispatchFailed")
        .await?;
    let message = events[0].message.clone().unwrap_or_default();
    ensure!(message.contains("connection failed"), "{message}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_events_and_unsupported_types_stall() -> Result<()> {
    let harness = Harness::start("nc-secrets").await?;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let address = format!("http://user:pa55word-xyz@{dead}/hook/tok-abcdef123");
    harness
        .secret(
            "hook",
            &[("address", address.as_str()), ("token", "tok-abcdef123")],
        )
        .await?;
    let sources = json!([{"kind": "Kustomization", "name": "*"}]);
    harness
        .provider_and_alert(
            "hidden",
            json!({"type": "slack", "secretRef": {"name": "hook"}}),
            json!({"providerRef": {"name": "hidden"}, "eventSources": sources}),
        )
        .await?;
    harness
        .provider_and_alert(
            "bus",
            json!({"type": "nats", "address": "nats://127.0.0.1:4222", "channel": "flux"}),
            json!({"providerRef": {"name": "bus"}, "eventSources": sources}),
        )
        .await?;
    let object = kustomization(&harness, "web", json!({})).await?;
    ensure!(harness.post(&applied(&object, "Applied revision")).await? == 202);

    let failed = harness
        .wait_events("hidden", "NotificationDispatchFailed")
        .await?;
    for event in &failed {
        let message = event.message.clone().unwrap_or_default();
        ensure!(
            !message.contains("pa55word") && !message.contains("tok-abcdef123"),
            "{message}"
        );
        ensure!(!message.contains(&dead.to_string()), "{message}");
    }
    let stalled = harness.wait_events("bus", "Stalled").await?;
    let message = stalled[0].message.clone().unwrap_or_default();
    ensure!(
        message.contains("\"nats\"") && message.contains("not supported"),
        "{message}"
    );
    let alert = harness
        .wait_events("bus", "NotificationDispatchFailed")
        .await?;
    ensure!(alert.iter().any(|e| {
        e.involved_object.kind.as_deref() == Some("Alert")
            && e.message
                .as_deref()
                .unwrap_or_default()
                .contains("\"nats\"")
    }));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_controller_events_reach_slack_and_github_shaped_servers() -> Result<()> {
    let harness = Harness::start("nc-shapes").await?;
    let recorder = Recorder::start().await?;
    harness.secret("gh", &[("token", "ghp-test-token")]).await?;
    let sources = json!([{"kind": "GitRepository", "name": "app"}]);
    harness
        .provider_and_alert(
            "slack",
            json!({"type": "slack", "channel": "ops", "username": "flux", "address": format!("{}/slack", recorder.url)}),
            json!({"providerRef": {"name": "slack"}, "eventSources": sources}),
        )
        .await?;
    harness
        .provider_and_alert(
            "github",
            json!({"type": "github", "address": format!("{}/org/app", recorder.url), "secretRef": {"name": "gh"}}),
            json!({"providerRef": {"name": "github"}, "eventSources": sources}),
        )
        .await?;
    let repository: GitRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "app", "namespace": harness.namespace, "uid": "u-1"},
        "spec": {"interval": "1m", "url": "https://example.com/org/app"},
    }))?;
    let event = ObjectEvent::info("NewArtifact", "stored artifact for commit 'fix'")
        .with_revision(format!("main@sha1:{SHA}"));
    let event = NotificationEvent::for_object(&repository, &event, "source-controller", "sc-0");
    ensure!(harness.post(&event).await? == 202);

    let slack = recorder.wait("/slack", 1).await?.remove(0);
    let body = slack.json();
    ensure!(
        body["channel"] == "ops" && body["username"] == "flux",
        "{body}"
    );
    ensure!(
        body["attachments"][0]["author_name"] == format!("GitRepository/app.{}", harness.namespace),
        "{body}"
    );
    let github = recorder
        .wait("/api/v3/repos/org/app/statuses/", 1)
        .await?
        .remove(0);
    ensure!(
        github.path == format!("/api/v3/repos/org/app/statuses/{SHA}"),
        "{}",
        github.path
    );
    ensure!(github.headers["authorization"] == "Bearer ghp-test-token");
    let status = github.json();
    ensure!(
        status["state"] == "success" && status["description"] == "new artifact",
        "{status}"
    );
    ensure!(
        status["context"]
            .as_str()
            .unwrap_or_default()
            .starts_with("gitrepository/app/"),
        "{status}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_provider_queue_is_reported_once_not_per_dropped_event() -> Result<()> {
    let harness = Harness::start_with_queue("nc-full-queue", 1).await?;
    // Accepts connections into its backlog and never answers: the first delivery hangs.
    let stuck = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = format!("http://{}/", stuck.local_addr()?);
    harness
        .provider_and_alert(
            "stuck",
            json!({"type": "generic", "address": address, "timeout": "60s"}),
            json!({"providerRef": {"name": "stuck"}, "eventSources": [{"kind": "Kustomization", "name": "*"}]}),
        )
        .await?;
    let object = kustomization(&harness, "web", json!({})).await?;
    for index in 0..30 {
        let status = harness
            .post(&applied(&object, &format!("Applied revision {index}")))
            .await?;
        ensure!(status == 202, "event {index} answered {status}");
    }
    harness
        .wait_events("stuck", "NotificationDispatchFailed")
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let warnings = harness
        .events("stuck", "NotificationDispatchFailed")
        .await?;
    let writes: i32 = warnings.iter().map(|e| e.count.unwrap_or(1)).sum();
    ensure!(
        writes == 1,
        "{writes} Warning writes for the dropped events: {warnings:?}"
    );
    let message = warnings[0].message.clone().unwrap_or_default();
    ensure!(
        message.contains("dropped 1 event(s) for Provider stuck: its queue is full"),
        "{message}"
    );
    drop(stuck);
    Ok(())
}
