//! The event server (Flux's `--events-addr`, `POST /`): validates each event, refuses repeats,
//! shows it to the observers, matches Alerts and queues one job per matched Alert.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kube::runtime::reflector::Store;
use sluice_api::notification::Alert;
use sluice_runtime::events::{EventSink, NotificationEvent, ObjectEvent};
use tokio::sync::Semaphore;

use crate::dispatch::{Dispatcher, Job};
use crate::matching::{Matcher, matching_alerts};
use crate::metadata;
use crate::observe::EventObserver;
use crate::ratelimit::RateLimiter;

/// Largest accepted request body (Flux: 3 MiB; larger bodies get 413).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// Requests handled at once; more wait for a slot before their body is read.
pub const MAX_CONCURRENT_REQUESTS: usize = 64;
/// Longest a request may hold a slot, body upload included (Flux's read timeout); then 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Reason of the Warning event on an Alert whose configuration is invalid (as Flux).
pub const INVALID_CONFIG: &str = "InvalidConfig";

/// Everything the event handler needs.
pub struct EventServer {
    pub alerts: Store<Alert>,
    pub matcher: Matcher,
    pub limiter: RateLimiter,
    pub dispatcher: Dispatcher,
    pub observers: Vec<Arc<dyn EventObserver>>,
    pub events: EventSink,
    /// Refuse Alerts selecting objects outside their own namespace.
    pub no_cross_namespace_refs: bool,
}

impl EventServer {
    /// The router: `POST /` with the body limit and the concurrency bound.
    pub fn router(self: Arc<Self>) -> Router {
        let slots = Arc::new(Semaphore::new(MAX_CONCURRENT_REQUESTS));
        Router::new()
            .route("/", post(receive))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(middleware::from_fn_with_state(slots, bounded))
            .with_state(self)
    }
}

/// An event the server refuses with 400.
#[derive(Debug, thiserror::Error)]
pub enum InvalidEvent {
    #[error("the body is not a Flux event: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the event lacks {0}")]
    Missing(&'static str),
}

/// Parses and checks an event body.
pub fn parse_event(body: &[u8]) -> Result<NotificationEvent, InvalidEvent> {
    let event: NotificationEvent = serde_json::from_slice(body)?;
    let object = &event.involved_object;
    let missing = |value: &Option<String>| value.as_deref().is_none_or(str::is_empty);
    if missing(&object.kind) {
        return Err(InvalidEvent::Missing("involvedObject.kind"));
    }
    if missing(&object.name) {
        return Err(InvalidEvent::Missing("involvedObject.name"));
    }
    if missing(&object.namespace) {
        return Err(InvalidEvent::Missing("involvedObject.namespace"));
    }
    if event.reason.is_empty() {
        return Err(InvalidEvent::Missing("reason"));
    }
    if event.reporting_controller.is_empty() {
        return Err(InvalidEvent::Missing("reportingController"));
    }
    Ok(event)
}

/// Holds one of the server's slots while a request is handled, for at most [`REQUEST_TIMEOUT`].
async fn bounded(State(slots): State<Arc<Semaphore>>, request: Request, next: Next) -> Response {
    let Ok(_slot) = slots.acquire().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request took too long\n").into_response(),
    }
}

async fn receive(State(server): State<Arc<EventServer>>, body: Bytes) -> Response {
    let mut event = match parse_event(&body) {
        Ok(event) => event,
        Err(error) => return (StatusCode::BAD_REQUEST, format!("{error}\n")).into_response(),
    };
    metadata::clean_up(&mut event);
    if !server.limiter.admit(metadata::dedupe_key(&event)) {
        tracing::debug!(reason = %event.reason, "discarding event, rate limiting duplicate events");
        return (StatusCode::TOO_MANY_REQUESTS, "duplicate event\n").into_response();
    }
    metadata::strip_token(&mut event);
    for observer in &server.observers {
        observer.observe(&event);
    }
    server.route(event).await;
    StatusCode::ACCEPTED.into_response()
}

impl EventServer {
    async fn route(&self, event: NotificationEvent) {
        let alerts = self.alerts.state();
        let (matched, invalid) = matching_alerts(&self.matcher, alerts, &event).await;
        for (alert, error) in invalid {
            self.events
                .publish(
                    alert.as_ref(),
                    ObjectEvent::error(INVALID_CONFIG, error.to_string()),
                )
                .await;
        }
        let object = &event.involved_object;
        if matched.is_empty() {
            tracing::debug!(kind = ?object.kind, name = ?object.name, namespace = ?object.namespace, "discarding event, no alerts found");
            return;
        }
        for alert in matched {
            if self.no_cross_namespace_refs && alert.metadata.namespace != object.namespace {
                tracing::debug!(alert = ?alert.metadata.name, "skipping a cross-namespace event source (--no-cross-namespace-refs)");
                continue;
            }
            let mut routed = event.clone();
            routed.metadata = metadata::combine(&event, &alert);
            self.dispatcher
                .enqueue(Job {
                    alert,
                    event: routed,
                })
                .await;
        }
    }
}
