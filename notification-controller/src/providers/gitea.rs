//! `gitea`: commit statuses through `POST /api/v1/repos/{owner}/{repo}/statuses/{sha}`.

use reqwest::Method;
use serde_json::json;
use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::commit::{Repository, commit_status};
use super::github::api_url;
use super::{Notifier, OutgoingRequest, ProviderError, Target, token};

/// Gitea and Forgejo.
pub struct Gitea;

impl Notifier for Gitea {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let kind = ProviderType::Gitea;
        let repository = Repository::parse(kind, &target.address)?;
        let token = token(kind, target)?;
        let Some(status) = commit_status(target, event) else {
            return Ok(None);
        };
        let (owner, name) = repository.owner_and_name();
        let url = api_url(
            kind,
            &format!(
                "{}/api/v1/repos/{owner}/{name}/statuses/{}",
                repository.origin, status.sha
            ),
        )?;
        let body = json!({
            "state": if status.success { "success" } else { "failure" },
            "context": status.context,
            "description": status.description,
        });
        Ok(Some(
            OutgoingRequest::json(Method::POST, url, &body)?
                .header("Authorization", format!("token {token}")),
        ))
    }
}
