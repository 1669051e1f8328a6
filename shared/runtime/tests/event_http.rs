//! The notification-controller event client against a tiny local HTTP server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::ObjectMeta;
use serde_json::Value;
use sluice_runtime::events::{DeliveryPolicy, EventError};
use sluice_runtime::{NotificationClient, NotificationEvent, ObjectEvent};
use tokio::sync::mpsc;

/// Serves `POST /` answering with `statuses` in turn (then 202), forwarding each body.
async fn event_server(
    statuses: Vec<StatusCode>,
) -> (String, mpsc::UnboundedReceiver<Value>, Arc<AtomicUsize>) {
    let (bodies, received) = mpsc::unbounded_channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let router = Router::new().route(
        "/",
        post(move |body: axum::body::Bytes| {
            let call = counter.fetch_add(1, Ordering::SeqCst);
            let status = statuses.get(call).copied().unwrap_or(StatusCode::ACCEPTED);
            let value: Value = serde_json::from_slice(&body).expect("body is JSON");
            bodies.send(value).expect("test still listening");
            async move { status }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    (format!("http://{address}/"), received, calls)
}

fn quick_policy() -> DeliveryPolicy {
    DeliveryPolicy {
        attempts: 3,
        timeout: Duration::from_secs(2),
        first_backoff: Duration::from_millis(10),
    }
}

fn deployment() -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("apps".into()),
            uid: Some("0f0e".into()),
            resource_version: Some("7".into()),
            ..ObjectMeta::default()
        },
        ..Deployment::default()
    }
}

#[tokio::test]
async fn posts_flux_event_json() {
    let (url, mut received, _) = event_server(Vec::new()).await;
    let client = NotificationClient::new(&url, quick_policy()).expect("valid url");
    let event = ObjectEvent::info("Progressing", "Deployment rolled out")
        .with_revision("main@sha1:0123")
        .with_token("abc");
    let notification = NotificationEvent::for_object(&deployment(), &event, "sluice-test", "pod-0");
    client.send(&notification).await.expect("delivered");

    let body = received.recv().await.expect("one body");
    assert_eq!(body["involvedObject"]["kind"], "Deployment");
    assert_eq!(body["involvedObject"]["apiVersion"], "apps/v1");
    assert_eq!(body["involvedObject"]["namespace"], "apps");
    assert_eq!(body["involvedObject"]["name"], "web");
    assert_eq!(body["involvedObject"]["uid"], "0f0e");
    assert_eq!(body["involvedObject"]["resourceVersion"], "7");
    assert_eq!(body["severity"], "info");
    assert_eq!(body["reason"], "Progressing");
    assert_eq!(body["message"], "Deployment rolled out");
    assert_eq!(body["metadata"]["apps/revision"], "main@sha1:0123");
    assert_eq!(body["metadata"]["apps/token"], "abc");
    assert_eq!(body["reportingController"], "sluice-test");
    assert_eq!(body["reportingInstance"], "pod-0");
    let timestamp = body["timestamp"].as_str().expect("timestamp string");
    assert!(
        timestamp.parse::<k8s_openapi::jiff::Timestamp>().is_ok(),
        "{timestamp}"
    );
}

#[tokio::test]
async fn retries_server_errors_then_succeeds() {
    let (url, _received, calls) = event_server(vec![
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::BAD_GATEWAY,
    ])
    .await;
    let client = NotificationClient::new(&url, quick_policy()).expect("valid url");
    let notification =
        NotificationEvent::for_object(&deployment(), &ObjectEvent::error("Failed", "x"), "c", "i");
    client
        .send(&notification)
        .await
        .expect("third attempt succeeds");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn gives_up_after_bounded_attempts() {
    let (url, _received, calls) = event_server(vec![StatusCode::SERVICE_UNAVAILABLE; 10]).await;
    let client = NotificationClient::new(&url, quick_policy()).expect("valid url");
    let notification =
        NotificationEvent::for_object(&deployment(), &ObjectEvent::info("R", "m"), "c", "i");
    let error = client
        .send(&notification)
        .await
        .expect_err("never succeeds");
    assert!(
        matches!(error, EventError::Unreachable { attempts: 3, .. }),
        "{error}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn does_not_retry_rate_limited_events() {
    let (url, _received, calls) = event_server(vec![StatusCode::TOO_MANY_REQUESTS]).await;
    let client = NotificationClient::new(&url, quick_policy()).expect("valid url");
    let notification =
        NotificationEvent::for_object(&deployment(), &ObjectEvent::info("R", "m"), "c", "i");
    let error = client.send(&notification).await.expect_err("rejected");
    assert!(
        matches!(error, EventError::Rejected { status: 429 }),
        "{error}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unreachable_endpoint_fails_quickly() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("addr");
    drop(listener);
    let client =
        NotificationClient::new(&format!("http://{address}/"), quick_policy()).expect("valid url");
    let notification =
        NotificationEvent::for_object(&deployment(), &ObjectEvent::info("R", "m"), "c", "i");
    let started = std::time::Instant::now();
    let error = client
        .send(&notification)
        .await
        .expect_err("nothing listens");
    assert!(matches!(error, EventError::Unreachable { .. }), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
