//! `discord`: the webhook's Slack-compatible endpoint (`<webhook>/slack`).

use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::{Notifier, OutgoingRequest, ProviderError, Target, address_url, slack};

/// Discord webhook, addressed through its `/slack` endpoint as Flux does.
pub struct Discord;

impl Notifier for Discord {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let mut url = address_url(ProviderType::Discord, &target.address)?;
        if !url.path().trim_end_matches('/').ends_with("/slack") {
            let path = format!("{}/slack", url.path().trim_end_matches('/'));
            url.set_path(&path);
        }
        let mut request = slack::request(url, target, event)?;
        request.headers.retain(|(name, _)| name != "Authorization");
        Ok(Some(request))
    }
}
