//! Serving the metrics and probe routers until shutdown.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// An HTTP endpoint could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "binding the {what} endpoint to {address} failed: {source}; pick a free address with the corresponding --*-addr flag"
    )]
    Bind {
        what: &'static str,
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving the {what} endpoint failed: {source}")]
    Serve {
        what: &'static str,
        source: std::io::Error,
    },
}

/// Binds `address` for the endpoint named `what` ("metrics", "health").
pub async fn bind(what: &'static str, address: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Bind {
            what,
            address,
            source,
        })
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then drains open requests.
pub async fn serve(
    what: &'static str,
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(endpoint = what, %address, "serving");
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(|source| ServeError::Serve { what, source })
}
