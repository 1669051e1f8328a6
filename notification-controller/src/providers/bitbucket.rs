//! `bitbucket` (Cloud) and `bitbucketserver` (Data Center): build statuses on a commit.

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::commit::{CommitStatus, Repository, commit_status};
use super::github::api_url;
use super::{Notifier, OutgoingRequest, ProviderError, Target, token};

/// Bitbucket Cloud: the token is `<username>:<app password>`; API at `api.bitbucket.org`
/// (for another host, `<origin>/api/2.0`).
pub struct Bitbucket;

/// Bitbucket Server: bearer token, or basic auth with `username`/`password`.
pub struct BitbucketServer;

/// The status body both editions take; `key` is at most 40 characters.
fn body(status: &CommitStatus, address: &str) -> Value {
    let key = hex::encode(&Sha256::digest(status.context.as_bytes())[..20]);
    json!({
        "state": if status.success { "SUCCESSFUL" } else { "FAILED" },
        "key": key,
        "name": status.context,
        "description": status.description,
        "url": address,
    })
}

fn basic(credentials: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

impl Notifier for Bitbucket {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let kind = ProviderType::Bitbucket;
        let repository = Repository::parse(kind, &target.address)?;
        let token = token(kind, target)?;
        let Some(status) = commit_status(target, event) else {
            return Ok(None);
        };
        let api = if repository.host == "bitbucket.org" {
            "https://api.bitbucket.org/2.0".to_owned()
        } else {
            format!("{}/api/2.0", repository.origin)
        };
        let (owner, name) = repository.owner_and_name();
        let url = api_url(
            kind,
            &format!(
                "{api}/repositories/{owner}/{name}/commit/{}/statuses/build",
                status.sha
            ),
        )?;
        let body = body(&status, &target.address);
        Ok(Some(
            OutgoingRequest::json(Method::POST, url, &body)?.header("Authorization", basic(token)),
        ))
    }
}

impl Notifier for BitbucketServer {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let kind = ProviderType::BitbucketServer;
        let repository = Repository::parse(kind, &target.address)?;
        let Some(status) = commit_status(target, event) else {
            return Ok(None);
        };
        let path: Vec<&str> = repository
            .path
            .iter()
            .map(String::as_str)
            .filter(|segment| *segment != "scm")
            .collect();
        let (project, name) = match path.as_slice() {
            [.., project, name] => (*project, *name),
            _ => return Err(ProviderError::MissingAddress { kind }),
        };
        let url = api_url(
            kind,
            &format!(
                "{}/rest/api/latest/projects/{project}/repos/{name}/commits/{}/builds",
                repository.origin, status.sha
            ),
        )?;
        let request = OutgoingRequest::json(Method::POST, url, &body(&status, &target.address))?;
        Ok(Some(match (&target.token, &target.password) {
            (Some(token), _) if !token.is_empty() => request.bearer(Some(token)),
            (_, Some(password)) => request.header(
                "Authorization",
                basic(&format!("{}:{password}", target.username)),
            ),
            _ => return Err(ProviderError::MissingToken { kind }),
        }))
    }
}
