//! Registry access for an ImageRepository: credentials from `secretRef` or the ServiceAccount's
//! imagePullSecrets, `certSecretRef`, `proxySecretRef`, `insecure` and the timeout.

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::{Api, Client, ResourceExt};
use sluice_api::image::ImageRepository;
use sluice_registry::{DOCKER_HUB, ImageName, RegistryAccess};
use sluice_secrets::{
    ProxySettings, SecretData, SecretError, docker_credentials, read_secret, redact,
};

/// Other names a docker config may use for Docker Hub.
const DOCKER_HUB_ALIASES: &[&str] = &["docker.io", "registry-1.docker.io"];

/// The access could not be configured; reported as Flux's `AuthenticationFailed`.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("failed to configure authentication options: {0}")]
    Secret(#[from] SecretError),
    #[error(
        "failed to configure authentication options: reading ServiceAccount '{namespace}/{name}' failed: {detail}"
    )]
    ServiceAccount {
        namespace: String,
        name: String,
        detail: String,
    },
}

/// Registry settings plus the secret values to keep out of any message.
pub struct Access {
    pub settings: RegistryAccess,
    pub secrets: Vec<String>,
}

impl Access {
    /// `message` with every credential value replaced by `***`.
    pub fn redact(&self, message: &str) -> String {
        redact(message, &self.secrets)
    }
}

/// Builds the access for `object`'s registry, reading its Secrets and ServiceAccount.
pub async fn access_for(
    client: &Client,
    object: &ImageRepository,
    image: &ImageName,
    timeout: std::time::Duration,
) -> Result<Access, AccessError> {
    let spec = &object.spec;
    let namespace = object.namespace().unwrap_or_default();
    let mut access = Access {
        settings: RegistryAccess {
            insecure: spec.insecure,
            timeout,
            ..RegistryAccess::default()
        },
        secrets: Vec::new(),
    };
    if let Some(reference) = &spec.secret_ref {
        let secret = read_secret(client, &namespace, &reference.name).await?;
        access.settings.auth = credentials_for(&secret, image)?;
    }
    if access.settings.auth.is_none()
        && let Some(account) = &spec.service_account_name
    {
        access.settings.auth = pull_secret_credentials(client, &namespace, account, image).await?;
    }
    if let Some((_, password)) = &access.settings.auth {
        access.secrets.push(password.clone());
    }
    if let Some(reference) = &spec.cert_secret_ref {
        let secret = read_secret(client, &namespace, &reference.name).await?;
        access.settings.apply_cert_secret(&secret)?;
    }
    if let Some(reference) = &spec.proxy_secret_ref {
        let secret = read_secret(client, &namespace, &reference.name).await?;
        let proxy = ProxySettings::from_secret(&secret)?;
        access.secrets.extend(proxy.secrets);
        access.settings.proxy = Some(proxy.url);
    }
    Ok(access)
}

/// The credentials for `image`'s registry in a docker-config Secret; Docker Hub under any of
/// its names.
fn credentials_for(
    secret: &SecretData,
    image: &ImageName,
) -> Result<Option<(String, String)>, SecretError> {
    if let Some(credentials) = docker_credentials(secret, &image.registry)? {
        return Ok(Some(credentials));
    }
    if image.registry != DOCKER_HUB {
        return Ok(None);
    }
    for alias in DOCKER_HUB_ALIASES {
        if let Some(credentials) = docker_credentials(secret, alias)? {
            return Ok(Some(credentials));
        }
    }
    Ok(None)
}

/// The first credentials for `image`'s registry among the ServiceAccount's imagePullSecrets.
async fn pull_secret_credentials(
    client: &Client,
    namespace: &str,
    account: &str,
    image: &ImageName,
) -> Result<Option<(String, String)>, AccessError> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let service_account =
        accounts
            .get(account)
            .await
            .map_err(|error| AccessError::ServiceAccount {
                namespace: namespace.to_owned(),
                name: account.to_owned(),
                detail: sluice_runtime::describe_kube_error(&error),
            })?;
    let names = service_account
        .image_pull_secrets
        .unwrap_or_default()
        .into_iter()
        .map(|reference| reference.name);
    for name in names {
        let secret = read_secret(client, namespace, &name).await?;
        if let Some(credentials) = credentials_for(&secret, image)? {
            return Ok(Some(credentials));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker_config(key: &str) -> SecretData {
        let config = serde_json::json!({"auths": {key: {"username": "u", "password": "p"}}});
        SecretData::from_entries(
            "ns",
            "regcred",
            [(
                ".dockerconfigjson".to_owned(),
                config.to_string().into_bytes(),
            )],
        )
    }

    #[test]
    fn docker_hub_credentials_match_any_of_its_names() -> Result<(), Box<dyn std::error::Error>> {
        let hub = ImageName::parse("stefanprodan/podinfo")?;
        let expected = Some(("u".to_owned(), "p".to_owned()));
        for key in [
            "https://index.docker.io/v1/",
            "docker.io",
            "registry-1.docker.io",
        ] {
            assert_eq!(
                credentials_for(&docker_config(key), &hub)?,
                expected,
                "{key}"
            );
        }
        let ghcr = ImageName::parse("ghcr.io/org/app")?;
        assert_eq!(credentials_for(&docker_config("docker.io"), &ghcr)?, None);
        Ok(())
    }
}
