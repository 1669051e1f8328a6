//! Receivers: the reconciler that publishes `status.webhookPath`, and the webhook server
//! (Flux's `--receiverAddr`, `:9292`) that authenticates each request as its sender signs it and
//! then asks the listed objects to reconcile.

mod gcr;
mod notify;
mod reconcile;
mod server;
pub mod verify;

use std::net::SocketAddr;

use sha2::{Digest, Sha256};
use sluice_api::notification::{Receiver, WEBHOOK_PATH_PREFIX};
use sluice_runtime::RuntimeContext;
use sluice_runtime::flags::parse_listen_addr;
use sluice_runtime::server::ServeError;
use tokio::net::TcpListener;

pub use gcr::GOOGLE_CERTS_URL;
pub use reconcile::{ReceiverReconciler, run_controller};
pub use server::{ReceiverServerOptions, router, serve};

/// The receiver flags of Flux's notification-controller; flatten into the binary's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ReceiverFlags {
    /// The address the webhook receiver binds to.
    #[arg(long = "receiverAddr", default_value = ":9292", value_parser = parse_listen_addr)]
    pub receiver_addr: SocketAddr,
}

/// Runs the Receiver reconciler and serves webhooks on `listener` until shutdown; the server
/// runs on every replica, the reconciler only while leading (as Flux).
pub async fn run(
    runtime: RuntimeContext,
    listener: TcpListener,
    options: ReceiverServerOptions,
) -> Result<(), ServeError> {
    let server = serve(
        listener,
        runtime.client.clone(),
        runtime.watched_api(),
        options,
        runtime.shutdown.token(),
    );
    let (served, ()) = tokio::join!(server, run_controller(runtime.clone()));
    served
}

/// Key of the token in the Receiver's Secret.
pub const TOKEN_KEY: &str = "token";

/// Flux's webhook path: `/hook/` + hex SHA-256 of token, name and namespace.
pub fn webhook_path(receiver: &Receiver, token: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(token);
    hasher.update(receiver.metadata.name.as_deref().unwrap_or_default());
    hasher.update(receiver.metadata.namespace.as_deref().unwrap_or_default());
    format!("{WEBHOOK_PATH_PREFIX}{}", hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_addr_flag_keeps_flux_name_and_default() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            receiver: ReceiverFlags,
        }
        let cli = <Cli as clap::Parser>::parse_from(["nc"]);
        assert_eq!(cli.receiver.receiver_addr, "0.0.0.0:9292".parse().unwrap());
        let cli = <Cli as clap::Parser>::parse_from(["nc", "--receiverAddr=127.0.0.1:9999"]);
        assert_eq!(
            cli.receiver.receiver_addr,
            "127.0.0.1:9999".parse().unwrap()
        );
    }

    #[test]
    fn webhook_path_is_the_sha256_of_token_name_and_namespace() {
        let mut receiver = Receiver::new(
            "github-receiver",
            serde_json::from_value(
                serde_json::json!({"type": "github", "resources": [], "secretRef": {"name": "t"}}),
            )
            .unwrap(),
        );
        receiver.metadata.namespace = Some("flux-system".to_owned());
        // printf 'tokengithub-receiverflux-system' | sha256sum
        assert_eq!(
            webhook_path(&receiver, b"token"),
            "/hook/8ed710969b945c0dc10d6d0b5084e120ec2228353d1fe42d56be5ba88500e684"
        );
    }
}
