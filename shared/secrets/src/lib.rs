//! Credential Secrets shared by Sluice controllers:
//!
//! - [`SecretData`] and [`read_secret`]: a Secret's decoded data, read from the referring
//!   object's namespace only; its `Debug` shows keys, never values;
//! - [`ProxySettings`]: a `proxySecretRef` Secret as a proxy URL;
//! - [`docker_credentials`] and [`RegistryAccess`]: registry credentials from a
//!   `kubernetes.io/dockerconfigjson` Secret;
//! - [`redact`]: keeps secret values out of logs, errors and status.

mod proxy;
mod registry;
mod secret;

pub use proxy::{ProxySettings, percent_encode};
pub use registry::{RegistryAccess, docker_credentials};
pub use secret::{SecretData, SecretError, read_secret, redact};
