//! Reading a credential Secret from the referring object's namespace, and keeping its values
//! out of output.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

/// A Secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret '{namespace}/{name}' not found; create it in the object's namespace")]
    NotFound { namespace: String, name: String },
    #[error(
        "reading secret '{namespace}/{name}' failed: {source}; check RBAC allows get on secrets"
    )]
    Read {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error("invalid secret '{namespace}/{name}': {problem}")]
    Invalid {
        namespace: String,
        name: String,
        problem: String,
    },
}

/// The decoded `data` of a Secret (`stringData` is merged into `data` by the API server).
#[derive(Clone, Default)]
pub struct SecretData {
    pub namespace: String,
    pub name: String,
    entries: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for SecretData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretData")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("keys", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SecretData {
    /// A Secret built from key/value pairs (tests and callers that already hold the data).
    pub fn from_entries(
        namespace: &str,
        name: &str,
        entries: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            entries: entries.into_iter().collect(),
        }
    }

    /// The raw value of `key`.
    pub fn bytes(&self, key: &str) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
    }

    /// Every key with its raw value, in key order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// The value of `key` as UTF-8 text, trimmed of surrounding whitespace.
    pub fn text(&self, key: &str) -> Result<Option<String>, SecretError> {
        self.bytes(key)
            .map(|value| {
                std::str::from_utf8(value)
                    .map(|text| text.trim().to_owned())
                    .map_err(|_| self.invalid(format!("key '{key}' is not UTF-8 text")))
            })
            .transpose()
    }

    /// An [`SecretError::Invalid`] for this Secret.
    pub fn invalid(&self, problem: impl Into<String>) -> SecretError {
        SecretError::Invalid {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            problem: problem.into(),
        }
    }
}

/// Reads Secret `name` from `namespace`.
pub async fn read_secret(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<SecretData, SecretError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = api
        .get_opt(name)
        .await
        .map_err(|source| SecretError::Read {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source,
        })?;
    let secret = secret.ok_or_else(|| SecretError::NotFound {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    })?;
    let entries = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| (key, value.0));
    Ok(SecretData::from_entries(namespace, name, entries))
}

/// Replaces every non-trivial secret value in `text` with `***`, longest first (so a value that
/// contains another is hidden whole).
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut secrets: Vec<&String> = secrets.iter().filter(|secret| secret.len() >= 3).collect();
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    secrets.into_iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret.as_str(), "***")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_values_and_debug_hides_data() {
        assert_eq!(
            redact("token abc123 refused", &["abc123".to_owned()]),
            "token *** refused"
        );
        let data = SecretData::from_entries(
            "ns",
            "proxy",
            [("password".to_owned(), b"hunter2".to_vec())],
        );
        assert!(!format!("{data:?}").contains("hunter2"));
    }
}
