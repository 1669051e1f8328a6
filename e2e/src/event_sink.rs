//! An HTTP server on 127.0.0.1 that records the Flux event JSON controllers post to
//! `--events-addr`, by request path, so two controllers can share one sink.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::Result;

type Received = Arc<Mutex<BTreeMap<String, Vec<Value>>>>;

/// Records every JSON body posted to it; stops when dropped.
pub struct EventSink {
    base: String,
    received: Received,
    server: JoinHandle<()>,
}

impl EventSink {
    /// Starts the sink on a free loopback port.
    pub async fn start() -> Result<Self> {
        let received = Received::default();
        let router = Router::new().fallback(record).with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            base,
            received,
            server,
        })
    }

    /// The `--events-addr` value whose events [`EventSink::events`] returns for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    /// The events posted to `path` so far, in arrival order.
    pub fn events(&self, path: &str) -> Vec<Value> {
        let key = format!("/{}", path.trim_start_matches('/'));
        let received = self.received.lock().unwrap_or_else(PoisonError::into_inner);
        received.get(&key).cloned().unwrap_or_default()
    }
}

impl Drop for EventSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn record(State(received): State<Received>, uri: Uri, body: Bytes) -> StatusCode {
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut received = received.lock().unwrap_or_else(PoisonError::into_inner);
    received
        .entry(uri.path().to_owned())
        .or_default()
        .push(event);
    StatusCode::ACCEPTED
}
