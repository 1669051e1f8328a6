//! Receivers: the reconciler that publishes `status.webhookPath`, and the webhook server
//! (Flux's `--receiverAddr`, `:9292`) that authenticates each request as its sender signs it and
//! then asks the listed objects to reconcile.

mod gcr;
mod notify;
mod reconcile;
mod server;
mod verify;

use sha2::{Digest, Sha256};
use sluice_api::notification::{Receiver, WEBHOOK_PATH_PREFIX};

pub use gcr::GOOGLE_CERTS_URL;
pub use reconcile::{ReceiverReconciler, run_controller};
pub use server::{ReceiverServerOptions, router, serve};

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
