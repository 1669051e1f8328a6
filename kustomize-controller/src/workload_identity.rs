//! `spec.kubeConfig.configMapRef`: a remote cluster reached with a Kubernetes ServiceAccount
//! token, Flux's `generic` workload-identity provider. The cloud providers (`aws`, `azure`,
//! `gcp`) need cloud workload identity and are refused. Tokens never leave the kubeconfig
//! built here: no message, log or status carries one.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::api::PostParams;
use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};
use kube::{Api, Client};
use sluice_runtime::describe_kube_error;

/// The controller's own ServiceAccount token, used when the ConfigMap names no ServiceAccount.
const OWN_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Bound on each API call made to get a token.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const CLOUD_PROVIDERS: [&str; 3] = ["aws", "azure", "gcp"];

/// The remote cluster of a `configMapRef` could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "kubeConfig ConfigMap {namespace}/{name} could not be read: {reason}; create it in the Kustomization's namespace or fix spec.kubeConfig.configMapRef.name"
    )]
    ConfigMapRead {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error(
        "spec.kubeConfig.configMapRef: ConfigMap {config_map} sets provider {provider:?}, which needs cloud workload identity and is not supported by this controller; use provider `generic` or kubeConfig.secretRef"
    )]
    CloudProvider {
        config_map: String,
        provider: String,
    },
    #[error(
        "spec.kubeConfig.configMapRef: ConfigMap {config_map} has provider {provider:?}; set data.provider to `generic` (or one of aws, azure, gcp)"
    )]
    UnknownProvider {
        config_map: String,
        provider: String,
    },
    #[error("spec.kubeConfig.configMapRef: ConfigMap {config_map}: {problem}")]
    Invalid { config_map: String, problem: String },
    #[error(
        "spec.kubeConfig.configMapRef: ConfigMap {config_map} sets serviceAccountName, which needs the ObjectLevelWorkloadIdentity feature gate; start the controller with --feature-gates=ObjectLevelWorkloadIdentity=true or remove serviceAccountName"
    )]
    ObjectLevelGate { config_map: String },
    #[error(
        "reading the controller's own ServiceAccount token ({OWN_TOKEN_FILE}) failed: {reason}; set data.serviceAccountName in the kubeConfig ConfigMap"
    )]
    OwnToken { reason: String },
    #[error(
        "requesting a token for ServiceAccount {namespace}/{name} failed: {reason}; check that it exists and that the controller may create serviceaccounts/token"
    )]
    TokenRequest {
        namespace: String,
        name: String,
        reason: String,
    },
}

impl IdentityError {
    /// Whether only a change to the ConfigMap or the spec can fix this (a stall, not a retry).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::CloudProvider { .. } | Self::UnknownProvider { .. }
        )
    }
}

/// The `generic` provider's settings, read from the ConfigMap's data as Flux reads them.
#[derive(Debug, PartialEq)]
struct GenericSettings {
    /// `https://host:port`, normalized as Flux does.
    server: String,
    ca_pem: Option<String>,
    audiences: Vec<String>,
    service_account: Option<String>,
}

/// The settings in the data of ConfigMap `config_map`; cloud and unknown providers are refused.
fn settings(
    config_map: &str,
    data: &BTreeMap<String, String>,
) -> Result<GenericSettings, IdentityError> {
    let provider = data.get("provider").map(String::as_str).unwrap_or_default();
    if CLOUD_PROVIDERS.contains(&provider) {
        return Err(IdentityError::CloudProvider {
            config_map: config_map.to_owned(),
            provider: provider.to_owned(),
        });
    }
    if provider != "generic" {
        return Err(IdentityError::UnknownProvider {
            config_map: config_map.to_owned(),
            provider: provider.to_owned(),
        });
    }
    let invalid = |problem: String| IdentityError::Invalid {
        config_map: config_map.to_owned(),
        problem,
    };
    let address = data
        .get("address")
        .filter(|address| !address.is_empty())
        .ok_or_else(|| {
            invalid(
                "data.address (the remote API server) is required for provider generic".to_owned(),
            )
        })?;
    let server = normalize_address(address).map_err(invalid)?;
    let mut audiences: Vec<String> = data
        .get("audiences")
        .map(|text| {
            text.lines()
                .map(str::trim)
                .filter(|audience| !audience.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if audiences.is_empty() {
        audiences.push(address.clone());
    }
    Ok(GenericSettings {
        server,
        ca_pem: data.get("ca.crt").filter(|ca| !ca.is_empty()).cloned(),
        audiences,
        service_account: data
            .get("serviceAccountName")
            .filter(|name| !name.is_empty())
            .cloned(),
    })
}

/// Flux's address rule: `https://` when no scheme is given, https only, port 443 by default,
/// the host in lower case; no path.
fn normalize_address(address: &str) -> Result<String, String> {
    let with_scheme = if address.starts_with("http") {
        address.to_owned()
    } else {
        format!("https://{address}")
    };
    let rest = with_scheme
        .strip_prefix("https://")
        .ok_or_else(|| format!("data.address {address:?} must use the https scheme"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(format!(
            "data.address {address:?} is not a host[:port] address"
        ));
    }
    let has_port = authority.rsplit_once(':').is_some_and(|(host, port)| {
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(':')
    });
    let host_port = if has_port {
        authority.to_lowercase()
    } else {
        format!("{}:443", authority.to_lowercase())
    };
    Ok(format!("https://{host_port}"))
}

/// Object-level workload identity: Flux's ObjectLevelWorkloadIdentity gate and its lockdown
/// flag `--default-kubeconfig-service-account`.
#[derive(Debug, Clone, Default)]
pub struct ObjectLevel {
    /// A ConfigMap may name the ServiceAccount whose token is used.
    pub enabled: bool,
    /// The ServiceAccount (in the Kustomization's namespace) used when the ConfigMap names none,
    /// instead of the controller's own.
    pub default_service_account: Option<String>,
}

/// The kubeconfig of the remote cluster described by ConfigMap `namespace/name`, holding a
/// fresh ServiceAccount token.
pub async fn remote_kubeconfig(
    client: &Client,
    namespace: &str,
    name: &str,
    object_level: &ObjectLevel,
) -> Result<Kubeconfig, IdentityError> {
    let config_map_id = format!("{namespace}/{name}");
    let read_failed = |reason: String| IdentityError::ConfigMapRead {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        reason,
    };
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let config_map = tokio::time::timeout(CALL_TIMEOUT, config_maps.get(name))
        .await
        .map_err(|_| read_failed(format!("no answer within {}s", CALL_TIMEOUT.as_secs())))?
        .map_err(|error| read_failed(describe_kube_error(&error)))?;
    let settings = settings(&config_map_id, &config_map.data.unwrap_or_default())?;
    let named = settings
        .service_account
        .as_ref()
        .or(object_level.default_service_account.as_ref());
    let (account_namespace, account) = match named {
        Some(_) if !object_level.enabled => {
            return Err(IdentityError::ObjectLevelGate {
                config_map: config_map_id,
            });
        }
        Some(account) => (namespace.to_owned(), account.clone()),
        None => own_service_account()?,
    };
    let token = request_token(client, &account_namespace, &account, &settings.audiences).await?;
    Ok(kubeconfig(&settings, token))
}

/// The namespace and name of the controller's own ServiceAccount, from its token's subject.
fn own_service_account() -> Result<(String, String), IdentityError> {
    let own = |reason: String| IdentityError::OwnToken { reason };
    let token = std::fs::read_to_string(OWN_TOKEN_FILE).map_err(|error| own(error.to_string()))?;
    service_account_of(token.trim()).ok_or_else(|| {
        own("its subject is not system:serviceaccount:<namespace>:<name>".to_owned())
    })
}

/// `(namespace, name)` from a ServiceAccount JWT's `sub` claim (read, not verified).
fn service_account_of(token: &str) -> Option<(String, String)> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let subject = claims.get("sub")?.as_str()?;
    let mut parts = subject.split(':');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("system"), Some("serviceaccount"), Some(namespace), Some(name), None) => {
            Some((namespace.to_owned(), name.to_owned()))
        }
        _ => None,
    }
}

/// A token for ServiceAccount `namespace/name` with `audiences` (TokenRequest API).
async fn request_token(
    client: &Client,
    namespace: &str,
    name: &str,
    audiences: &[String],
) -> Result<String, IdentityError> {
    let failed = |reason: String| IdentityError::TokenRequest {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        reason,
    };
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: audiences.to_vec(),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let answer = tokio::time::timeout(
        CALL_TIMEOUT,
        accounts.create_token_request(name, &PostParams::default(), &request),
    )
    .await
    .map_err(|_| failed(format!("no answer within {}s", CALL_TIMEOUT.as_secs())))?
    .map_err(|error| failed(describe_kube_error(&error)))?;
    answer
        .status
        .map(|status| status.token)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| failed("the answer holds no token".to_owned()))
}

/// A kubeconfig for `settings.server` authenticating with `token` (kept in a secret string).
fn kubeconfig(settings: &GenericSettings, token: String) -> Kubeconfig {
    const NAME: &str = "workload-identity";
    let auth = AuthInfo {
        token: Some(token.into()),
        ..AuthInfo::default()
    };
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: NAME.to_owned(),
            cluster: Some(Cluster {
                server: Some(settings.server.clone()),
                certificate_authority_data: settings
                    .ca_pem
                    .as_ref()
                    .map(|pem| base64::engine::general_purpose::STANDARD.encode(pem)),
                ..Cluster::default()
            }),
            ..NamedCluster::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: NAME.to_owned(),
            auth_info: Some(auth),
            ..NamedAuthInfo::default()
        }],
        contexts: vec![NamedContext {
            name: NAME.to_owned(),
            context: Some(Context {
                cluster: NAME.to_owned(),
                user: Some(NAME.to_owned()),
                ..Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some(NAME.to_owned()),
        ..Kubeconfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn generic_settings_follow_flux_s_keys_and_defaults() {
        let read = settings(
            "apps/remote",
            &data(&[
                ("provider", "generic"),
                ("address", "API.example.com"),
                ("serviceAccountName", "deployer"),
            ]),
        )
        .unwrap();
        assert_eq!(read.server, "https://api.example.com:443");
        assert_eq!(
            read.audiences,
            ["API.example.com"],
            "the address as written is the default audience"
        );
        assert_eq!(read.service_account.as_deref(), Some("deployer"));
        let read = settings(
            "apps/remote",
            &data(&[
                ("provider", "generic"),
                ("address", "https://10.0.0.1:6443"),
                ("audiences", "one\n\n two \n"),
                ("ca.crt", "PEM"),
            ]),
        )
        .unwrap();
        assert_eq!(read.server, "https://10.0.0.1:6443");
        assert_eq!(read.audiences, ["one", "two"]);
        assert_eq!(read.ca_pem.as_deref(), Some("PEM"));
    }

    #[test]
    fn cloud_providers_and_bad_settings_are_refused_naming_what_to_fix() {
        let error = settings(
            "apps/eks",
            &data(&[("provider", "aws"), ("cluster", "arn")]),
        )
        .unwrap_err();
        assert!(error.is_permanent());
        let message = error.to_string();
        assert!(
            message.contains("spec.kubeConfig.configMapRef") && message.contains("\"aws\""),
            "{message}"
        );
        assert!(
            settings("apps/x", &data(&[("provider", "vault")]))
                .unwrap_err()
                .is_permanent()
        );
        let missing = settings("apps/x", &data(&[("provider", "generic")])).unwrap_err();
        assert!(missing.to_string().contains("data.address"), "{missing}");
        let plain = settings(
            "apps/x",
            &data(&[("provider", "generic"), ("address", "http://h:80")]),
        );
        assert!(plain.unwrap_err().to_string().contains("https"));
    }

    #[test]
    fn the_service_account_is_read_from_a_token_subject() {
        let encode = |claims: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims);
        let token = format!(
            "{}.{}.sig",
            encode("{}"),
            encode(r#"{"sub":"system:serviceaccount:flux-system:kustomize-controller"}"#)
        );
        assert_eq!(
            service_account_of(&token),
            Some(("flux-system".to_owned(), "kustomize-controller".to_owned()))
        );
        let user = format!("{}.{}.sig", encode("{}"), encode(r#"{"sub":"alice"}"#));
        assert_eq!(service_account_of(&user), None);
    }
}
