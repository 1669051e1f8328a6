//! `azuredevops`: Git commit statuses through the Azure DevOps REST API (PAT in the Secret).

use base64::Engine;
use reqwest::Method;
use serde_json::json;
use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::commit::{Repository, commit_status};
use super::github::api_url;
use super::{Notifier, OutgoingRequest, ProviderError, Target, token};

/// Azure DevOps: `address` is `https://dev.azure.com/<org>/<project>/_git/<repo>`.
pub struct AzureDevOps;

impl Notifier for AzureDevOps {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let kind = ProviderType::AzureDevOps;
        let repository = Repository::parse(kind, &target.address)?;
        let token = token(kind, target)?;
        let Some(status) = commit_status(target, event) else {
            return Ok(None);
        };
        let (org, project, name) = match repository.path.as_slice() {
            [org, project, git, name] if git == "_git" => (org, project, name),
            _ => {
                return Err(ProviderError::InvalidAddress {
                    kind,
                    reason: "expected https://dev.azure.com/<org>/<project>/_git/<repo>".into(),
                });
            }
        };
        let url = api_url(
            kind,
            &format!(
                "{}/{org}/{project}/_apis/git/repositories/{name}/commits/{}/statuses?api-version=6.0",
                repository.origin, status.sha
            ),
        )?;
        let body = json!({
            "state": if status.success { "succeeded" } else { "failed" },
            "description": status.description,
            "context": {"genre": "fluxcd", "name": status.context},
        });
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!(":{token}"));
        Ok(Some(
            OutgoingRequest::json(Method::POST, url, &body)?
                .header("Authorization", format!("Basic {credentials}")),
        ))
    }
}
