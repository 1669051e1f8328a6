//! The webhook server: `/hook/<digest>` → the Receiver with that `status.webhookPath` →
//! authentication as its type demands → `requestedAt` on each resource.
//!
//! Bounded everywhere: the body (3 MiB, as Flux), the time per request, and the requests in
//! flight (beyond the limit new ones get 503 at once instead of queueing).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};
use sluice_api::meta::condition_type::READY;
use sluice_api::notification::{Receiver, ReceiverType, WEBHOOK_PATH_PREFIX};
use sluice_runtime::server::ServeError;
use sluice_secrets::read_secret;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::gcr::{GOOGLE_CERTS_URL, GoogleTokens};
use super::notify::{KindCache, Notifier};
use super::verify::{Credentials, Rejection, Verdict, verify};
use super::{TOKEN_KEY, webhook_path};

/// Settings of the webhook server.
#[derive(Debug, Clone)]
pub struct ReceiverServerOptions {
    /// Field manager of the `requestedAt` patches.
    pub field_manager: String,
    /// Refuse resources in namespaces other than the Receiver's.
    pub no_cross_namespace_refs: bool,
    /// Largest accepted body; larger ones get 413.
    pub body_limit: usize,
    /// Time allowed for reading, checking and handling one request.
    pub request_timeout: Duration,
    /// Requests handled at once.
    pub max_concurrent: usize,
    /// Where Google's ID-token keys are fetched (`gcr` receivers).
    pub google_certs_url: String,
}

impl Default for ReceiverServerOptions {
    fn default() -> Self {
        Self {
            field_manager: crate::CONTROLLER_NAME.to_owned(),
            no_cross_namespace_refs: false,
            body_limit: 3 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            max_concurrent: 64,
            google_certs_url: GOOGLE_CERTS_URL.to_owned(),
        }
    }
}

struct ServerState {
    client: Client,
    receivers: reflector::Store<Receiver>,
    options: ReceiverServerOptions,
    permits: Semaphore,
    google: GoogleTokens,
    kinds: KindCache,
}

/// Serves webhooks on `listener` for the Receivers `receivers` lists until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    client: Client,
    receivers: Api<Receiver>,
    options: ReceiverServerOptions,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let (store, writer) = reflector::store();
    let watch = reflector(writer, watcher(receivers, watcher::Config::default()))
        .default_backoff()
        .applied_objects()
        .for_each(|_| async {});
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = watch => {}
            () = stop.cancelled() => {}
        }
    });
    let router = router(client, store, options);
    sluice_runtime::server::serve("webhook receiver", listener, router, shutdown).await
}

/// The webhook routes over a Receiver store kept current by the caller.
pub fn router(
    client: Client,
    receivers: reflector::Store<Receiver>,
    options: ReceiverServerOptions,
) -> Router {
    let state = Arc::new(ServerState {
        client,
        receivers,
        permits: Semaphore::new(options.max_concurrent),
        google: GoogleTokens::new(&options.google_certs_url),
        kinds: KindCache::default(),
        options,
    });
    Router::new()
        .route("/hook/{digest}", axum::routing::any(handle))
        .with_state(state)
}

async fn handle(
    State(state): State<Arc<ServerState>>,
    Path(digest): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(_permit) = state.permits.try_acquire() else {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many webhook requests in flight",
        );
    };
    let path = format!("{WEBHOOK_PATH_PREFIX}{digest}");
    let work = handle_webhook(&state, &path, &headers, body);
    match tokio::time::timeout(state.options.request_timeout, work).await {
        Ok(response) => response,
        Err(_) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "handling the webhook timed out",
        ),
    }
}

fn reply(status: StatusCode, message: &str) -> Response {
    (status, format!("{message}\n")).into_response()
}

async fn handle_webhook(
    state: &ServerState,
    path: &str,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let Some(body) = read_body(body, state.options.body_limit).await else {
        return reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        );
    };
    if tokio::time::timeout(Duration::from_secs(5), state.receivers.wait_until_ready())
        .await
        .is_err()
    {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "receivers are not loaded yet",
        );
    }
    let Some(receiver) = state
        .receivers
        .find(|r| r.status.as_ref().and_then(|s| s.webhook_path.as_deref()) == Some(path))
    else {
        return reply(StatusCode::NOT_FOUND, "no receiver for this path");
    };
    let namespace = receiver.metadata.namespace.as_deref().unwrap_or_default();
    let name = receiver.metadata.name.as_deref().unwrap_or_default();
    let type_ = receiver.spec.type_.as_str();
    let ready = receiver
        .status
        .as_ref()
        .and_then(|status| status.conditions.iter().find(|c| c.type_ == READY))
        .is_some_and(|ready| ready.status == "True");
    if receiver.spec.suspend || !ready {
        tracing::warn!(
            namespace,
            name,
            receiver_type = type_,
            suspended = receiver.spec.suspend,
            "webhook refused: receiver suspended or not ready"
        );
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "the receiver is suspended or not ready",
        );
    }
    match authenticate(state, &receiver, path, headers, &body).await {
        Err((status, message)) => {
            tracing::warn!(namespace, name, receiver_type = type_, status = status.as_u16(), reason = %message, "webhook refused");
            reply(status, &message)
        }
        Ok(Verdict::Ping) => {
            tracing::info!(
                namespace,
                name,
                receiver_type = type_,
                "webhook ping answered"
            );
            reply(StatusCode::OK, "pong")
        }
        Ok(Verdict::Accept { event }) => notify(state, &receiver, event.as_deref()).await,
    }
}

async fn notify(state: &ServerState, receiver: &Receiver, event: Option<&str>) -> Response {
    let notifier = Notifier {
        client: &state.client,
        kinds: &state.kinds,
        field_manager: &state.options.field_manager,
        no_cross_namespace_refs: state.options.no_cross_namespace_refs,
    };
    let namespace = receiver.metadata.namespace.as_deref().unwrap_or_default();
    let name = receiver.metadata.name.as_deref().unwrap_or_default();
    match notifier.notify_all(receiver).await {
        Ok(annotated) => {
            tracing::info!(
                namespace,
                name,
                event = event.unwrap_or_default(),
                annotated,
                "reconciliation requested"
            );
            reply(StatusCode::OK, "ok")
        }
        Err(errors) => {
            tracing::error!(namespace, name, errors = ?errors, "requesting reconciliation failed");
            reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "requesting reconciliation failed; see the controller logs",
            )
        }
    }
}

/// Reads the token Secret and checks the request; errors carry the status to answer.
async fn authenticate(
    state: &ServerState,
    receiver: &Receiver,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Verdict, (StatusCode, String)> {
    let bad_request = |message: String| (StatusCode::BAD_REQUEST, message);
    let namespace = receiver.metadata.namespace.as_deref().unwrap_or_default();
    let secret_name = receiver
        .spec
        .secret_ref
        .as_ref()
        .map(|r| r.name.as_str())
        .ok_or_else(|| bad_request("spec.secretRef is not set".to_owned()))?;
    let secret = read_secret(&state.client, namespace, secret_name)
        .await
        .map_err(|error| bad_request(format!("unable to read the receiver secret: {error}")))?;
    let token = secret
        .bytes(TOKEN_KEY)
        .ok_or_else(|| bad_request("the receiver secret has no 'token'".to_owned()))?;
    if webhook_path(receiver, token) != path {
        return Err((
            StatusCode::NOT_FOUND,
            "no receiver for this path".to_owned(),
        ));
    }
    if receiver.spec.type_ == ReceiverType::Gcr {
        let text = |key: &str| secret.text(key).ok().flatten().unwrap_or_default();
        let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
        state
            .google
            .authenticate(authorization, &text("email"), &text("audience"))
            .await
            .map_err(to_status)?;
    }
    let credentials = Credentials {
        token: token.to_vec(),
    };
    verify(
        receiver.spec.type_,
        &receiver.spec.events,
        &credentials,
        headers,
        body,
    )
    .map_err(to_status)
}

fn to_status(rejection: Rejection) -> (StatusCode, String) {
    match rejection {
        Rejection::Unauthenticated(message) => (StatusCode::UNAUTHORIZED, message),
        Rejection::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
    }
}

/// The whole body, or `None` once it grows past `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Option<Vec<u8>> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.ok()?;
        if bytes.len() + chunk.len() > limit {
            return None;
        }
        bytes.extend_from_slice(&chunk);
    }
    Some(bytes)
}
