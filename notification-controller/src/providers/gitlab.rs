//! `gitlab`: commit statuses through `POST /api/v4/projects/{id}/statuses/{sha}`.

use reqwest::Method;
use serde_json::json;
use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::commit::{Repository, commit_status};
use super::github::api_url;
use super::{Notifier, OutgoingRequest, ProviderError, Target, token};

/// GitLab (any host); the project is addressed by its URL-encoded full path.
pub struct GitLab;

impl Notifier for GitLab {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let kind = ProviderType::GitLab;
        let repository = Repository::parse(kind, &target.address)?;
        let token = token(kind, target)?;
        let Some(status) = commit_status(target, event) else {
            return Ok(None);
        };
        let project = repository.path.join("%2F");
        let url = api_url(
            kind,
            &format!(
                "{}/api/v4/projects/{project}/statuses/{}",
                repository.origin, status.sha
            ),
        )?;
        let body = json!({
            "state": if status.success { "success" } else { "failed" },
            "name": status.context,
            "description": status.description,
        });
        Ok(Some(
            OutgoingRequest::json(Method::POST, url, &body)?.header("PRIVATE-TOKEN", token),
        ))
    }
}
