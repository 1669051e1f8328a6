//! `github`: commit statuses through the REST API (`POST /repos/{owner}/{repo}/statuses/{sha}`).

use reqwest::{Method, Url};
use serde_json::json;
use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::commit::{Repository, commit_status};
use super::{Notifier, OutgoingRequest, ProviderError, Target, token};

/// GitHub and GitHub Enterprise (`https://<host>/api/v3`).
pub struct GitHub;

impl Notifier for GitHub {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let kind = ProviderType::GitHub;
        let repository = Repository::parse(kind, &target.address)?;
        let token = token(kind, target)?;
        let Some(status) = commit_status(target, event) else {
            return Ok(None);
        };
        let api = if repository.host == "github.com" {
            "https://api.github.com".to_owned()
        } else {
            format!("{}/api/v3", repository.origin)
        };
        let (owner, name) = repository.owner_and_name();
        let url = api_url(
            kind,
            &format!("{api}/repos/{owner}/{name}/statuses/{}", status.sha),
        )?;
        let description: String = status.description.chars().take(140).collect();
        let body = json!({
            "state": if status.success { "success" } else { "failure" },
            "context": status.context,
            "description": description,
        });
        Ok(Some(
            OutgoingRequest::json(Method::POST, url, &body)?
                .header("Accept", "application/vnd.github+json")
                .header("User-Agent", "sluice-notification-controller")
                .bearer(Some(token)),
        ))
    }
}

/// Parses an API URL built from a repository address.
pub(super) fn api_url(kind: ProviderType, url: &str) -> Result<Url, ProviderError> {
    Url::parse(url).map_err(|error| ProviderError::InvalidAddress {
        kind,
        reason: error.to_string(),
    })
}
