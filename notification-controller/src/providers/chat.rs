//! `rocket`: Rocket.Chat incoming webhooks take Slack's message shape.

use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::{Notifier, OutgoingRequest, ProviderError, Target, address_url, slack};

/// Rocket.Chat incoming webhook.
pub struct Rocket;

impl Notifier for Rocket {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let url = address_url(ProviderType::Rocket, &target.address)?;
        slack::request(url, target, event).map(Some)
    }
}
