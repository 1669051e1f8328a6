//! The cluster a Kustomization applies to: impersonation and remote kubeconfigs.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Secret;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use sluice_api::kustomize::Kustomization;
use sluice_runtime::throttle::ThrottleLayer;
use sluice_runtime::{ClientError, client_with_throttle, describe_kube_error};

use crate::cluster::Cluster;
use crate::workload_identity::{IdentityError, ObjectLevel, remote_kubeconfig};

/// Keys tried, in order, when `kubeConfig.secretRef.key` is unset.
const DEFAULT_KUBECONFIG_KEYS: [&str; 2] = ["value", "value.yaml"];

/// Building the client for a Kustomization failed.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("kubeconfig Secret {namespace}/{name} could not be read: {reason}")]
    SecretRead {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error(
        "kubeconfig Secret {namespace}/{name} has no key {keys}; put the kubeconfig under `value` or set kubeConfig.secretRef.key"
    )]
    MissingKey {
        namespace: String,
        name: String,
        keys: String,
    },
    #[error("kubeconfig in Secret {namespace}/{name} is invalid: {reason}")]
    InvalidKubeconfig {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error("building a client for {what} failed: {reason}")]
    Client { what: String, reason: String },
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

impl TenancyError {
    /// Whether only a change to the spec or the referenced ConfigMap can fix this.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Identity(error) if error.is_permanent())
    }
}

/// Options that gate what kubeconfig Secrets may do.
#[derive(Debug, Clone, Default)]
pub struct KubeconfigPolicy {
    pub allow_exec: bool,
    pub allow_insecure_tls: bool,
    /// Which ServiceAccount's token a `kubeConfig.configMapRef` may use.
    pub workload_identity: ObjectLevel,
}

/// A client construction error as a message, withholding credential command output.
fn client_error(error: &ClientError) -> String {
    match error {
        ClientError::Build(source) => describe_kube_error(source),
        other => other.to_string(),
    }
}

/// A kubeconfig error as a message: its kind only, as the kubeconfig built from a ConfigMap
/// holds a token.
fn describe_kube_config_error(error: &kube::config::KubeconfigError) -> String {
    match error {
        kube::config::KubeconfigError::ParseCertificates(_) => {
            "data[\"ca.crt\"] is not a PEM certificate bundle".to_owned()
        }
        kube::config::KubeconfigError::ParseClusterUrl(_) => {
            "data.address is not a valid URL".to_owned()
        }
        _ => "the kubeconfig built from it is invalid".to_owned(),
    }
}

/// Builds (and caches) clients for Kustomizations.
pub struct Tenancy {
    base_config: Config,
    local: Cluster,
    default_service_account: Option<String>,
    policy: KubeconfigPolicy,
    impersonating: Mutex<HashMap<String, Client>>,
    /// One rate limit (`--kube-api-qps`/`--kube-api-burst`) for every impersonating and remote client.
    throttle: ThrottleLayer,
}

impl Tenancy {
    /// `base_config` is the controller's own configuration; `local` its cluster handle.
    pub fn new(
        base_config: Config,
        local: Cluster,
        default_service_account: Option<String>,
        policy: KubeconfigPolicy,
        throttle: ThrottleLayer,
    ) -> Self {
        Self {
            base_config,
            local,
            default_service_account,
            policy,
            impersonating: Mutex::default(),
            throttle,
        }
    }

    /// The ServiceAccount a Kustomization applies as: its own, else `--default-service-account`.
    pub fn service_account<'a>(&'a self, kustomization: &'a Kustomization) -> Option<&'a str> {
        kustomization
            .spec
            .service_account_name
            .as_deref()
            .or(self.default_service_account.as_deref())
            .filter(|name| !name.is_empty())
    }

    /// The cluster handle to apply, prune and health-check with.
    pub async fn cluster_for(
        &self,
        kustomization: &Kustomization,
    ) -> Result<Cluster, TenancyError> {
        let namespace = kustomization.metadata.namespace.clone().unwrap_or_default();
        let impersonate = self
            .service_account(kustomization)
            .map(|account| format!("system:serviceaccount:{namespace}:{account}"));
        if let Some((what, mut config)) = self.remote_config_of(kustomization, &namespace).await? {
            config.auth_info.impersonate = impersonate;
            let client = client_with_throttle(config, &self.throttle).map_err(|error| {
                TenancyError::Client {
                    what,
                    reason: client_error(&error),
                }
            })?;
            return Ok(Cluster::new(client));
        }
        let Some(user) = impersonate else {
            return Ok(self.local.clone());
        };
        let cached = self
            .impersonating
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&user)
            .cloned();
        let client = match cached {
            Some(client) => client,
            None => {
                let mut config = self.base_config.clone();
                config.auth_info.impersonate = Some(user.clone());
                let client = client_with_throttle(config, &self.throttle).map_err(|error| {
                    TenancyError::Client {
                        what: format!("impersonating {user}"),
                        reason: client_error(&error),
                    }
                })?;
                self.impersonating
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(user, client.clone());
                client
            }
        };
        Ok(self.local.with_client(client))
    }

    /// The remote cluster's configuration and what describes it: `kubeConfig.secretRef` first,
    /// else `kubeConfig.configMapRef` (workload identity); `None` for the local cluster.
    async fn remote_config_of(
        &self,
        kustomization: &Kustomization,
        namespace: &str,
    ) -> Result<Option<(String, Config)>, TenancyError> {
        let Some(kube_config) = kustomization.spec.kube_config.as_ref() else {
            return Ok(None);
        };
        if let Some(reference) = &kube_config.secret_ref {
            let config = self
                .remote_config(namespace, &reference.name, reference.key.as_deref())
                .await?;
            let what = format!("kubeconfig Secret {namespace}/{}", reference.name);
            return Ok(Some((what, config)));
        }
        let Some(reference) = &kube_config.config_map_ref else {
            return Ok(None);
        };
        let kubeconfig = remote_kubeconfig(
            &self.local.client,
            namespace,
            &reference.name,
            &self.policy.workload_identity,
        )
        .await?;
        let what = format!("kubeConfig ConfigMap {namespace}/{}", reference.name);
        let invalid = |reason: String| TenancyError::Client {
            what: what.clone(),
            reason,
        };
        self.check_policy(&kubeconfig).map_err(invalid)?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|error| invalid(describe_kube_config_error(&error)))?;
        Ok(Some((what, config)))
    }

    async fn remote_config(
        &self,
        namespace: &str,
        name: &str,
        key: Option<&str>,
    ) -> Result<Config, TenancyError> {
        let secrets: Api<Secret> = Api::namespaced(self.local.client.clone(), namespace);
        let secret = secrets
            .get(name)
            .await
            .map_err(|error| TenancyError::SecretRead {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                reason: describe_kube_error(&error),
            })?;
        let data = secret.data.unwrap_or_default();
        let keys: Vec<&str> = match key {
            Some(key) => vec![key],
            None => DEFAULT_KUBECONFIG_KEYS.to_vec(),
        };
        let bytes =
            keys.iter()
                .find_map(|key| data.get(*key))
                .ok_or_else(|| TenancyError::MissingKey {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    keys: keys.join(" or "),
                })?;
        let invalid = |reason: String| TenancyError::InvalidKubeconfig {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            reason,
        };
        let text =
            std::str::from_utf8(&bytes.0).map_err(|_| invalid("not UTF-8 text".to_owned()))?;
        let kubeconfig = Kubeconfig::from_yaml(text).map_err(|error| invalid(error.to_string()))?;
        self.check_policy(&kubeconfig).map_err(invalid)?;
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|error| invalid(error.to_string()))
    }

    /// Admits only the credential kinds Sluice allows: tokens, basic auth and embedded client
    /// certificates; exec plugins and auth-providers (which run commands) need `--insecure-kubeconfig-exec`.
    fn check_policy(&self, kubeconfig: &Kubeconfig) -> Result<(), String> {
        for named in &kubeconfig.auth_infos {
            let Some(auth) = &named.auth_info else {
                continue;
            };
            if auth.exec.is_some() && !self.policy.allow_exec {
                return Err(format!(
                    "user {:?} uses an exec credential plugin; start the controller with --insecure-kubeconfig-exec to allow it",
                    named.name
                ));
            }
            if let Some(provider) = &auth.auth_provider
                && !self.policy.allow_exec
            {
                return Err(format!(
                    "user {:?} uses the auth-provider {:?}, which can run commands on the controller; use a token or client certificate, or start the controller with --insecure-kubeconfig-exec to allow it",
                    named.name, provider.name
                ));
            }
            if auth.client_certificate.is_some()
                || auth.client_key.is_some()
                || auth.token_file.is_some()
            {
                return Err(format!(
                    "user {:?} references files on the controller's disk; embed the credentials with the *-data fields",
                    named.name
                ));
            }
        }
        for named in &kubeconfig.clusters {
            let Some(cluster) = &named.cluster else {
                continue;
            };
            if cluster.insecure_skip_tls_verify == Some(true) && !self.policy.allow_insecure_tls {
                return Err(format!(
                    "cluster {:?} disables TLS verification; start the controller with --insecure-kubeconfig-tls to allow it",
                    named.name
                ));
            }
            if cluster.certificate_authority.is_some() {
                return Err(format!(
                    "cluster {:?} references a CA file on the controller's disk; use certificate-authority-data",
                    named.name
                ));
            }
        }
        Ok(())
    }
}
