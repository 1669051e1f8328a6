//! `matrix`: an `m.room.message` sent to a room on the homeserver at `address`.

use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::{Notifier, OutgoingRequest, ProviderError, Target, address_url, plain_text, token};

/// Matrix: `spec.channel` is the room ID, the Secret's token the access token.
pub struct Matrix;

impl Notifier for Matrix {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let kind = ProviderType::Matrix;
        let mut url = address_url(kind, &target.address)?;
        let token = token(kind, target)?;
        if target.channel.is_empty() {
            return Err(ProviderError::MissingChannel {
                kind,
                what: "the room ID",
            });
        }
        let body = json!({"msgtype": "m.text", "body": plain_text(event)});
        let encoded = serde_json::to_vec(&body).map_err(ProviderError::Encode)?;
        let transaction = hex::encode(Sha256::digest(&encoded));
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend([
                "_matrix",
                "client",
                "v3",
                "rooms",
                target.channel.as_str(),
                "send",
                "m.room.message",
                transaction.as_str(),
            ]);
        }
        Ok(Some(
            OutgoingRequest::json(Method::PUT, url, &body)?.bearer(Some(token)),
        ))
    }
}
