//! `generic` and `generic-hmac`: the event JSON posted as is, optionally signed.

use aws_lc_rs::hmac;
use reqwest::Method;
use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::{Notifier, OutgoingRequest, ProviderError, Target, address_url, token};

/// Posts the event JSON with `Gotk-Component`; with `hmac`, adds `X-Signature: sha256=<hex>`.
pub struct Generic {
    pub hmac: bool,
}

impl Notifier for Generic {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let kind = if self.hmac {
            ProviderType::GenericHmac
        } else {
            ProviderType::Generic
        };
        let url = address_url(kind, &target.address)?;
        let mut request = OutgoingRequest::json(Method::POST, url, event)?
            .header("Gotk-Component", event.reporting_controller.clone());
        for (name, value) in &target.headers {
            request = request.header(name, value.clone());
        }
        if self.hmac {
            let key = token(kind, target)?;
            let signed = signature(key.as_bytes(), &request.body);
            request = request.header("X-Signature", signed);
        }
        Ok(Some(request))
    }
}

/// `sha256=<hex HMAC-SHA256 of body keyed with key>`, Flux's `X-Signature` value.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    format!("sha256={}", hex::encode(hmac::sign(&key, body).as_ref()))
}
