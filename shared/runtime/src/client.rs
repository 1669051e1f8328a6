//! Kubernetes client construction with client-go style rate limiting (`--kube-api-qps`,
//! `--kube-api-burst`, one bucket per resource; see [`crate::throttle`]).

use kube::client::ClientBuilder;
use kube::{Client, Config};

use crate::throttle::ThrottleLayer;

/// The Kubernetes client could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no Kubernetes configuration found: {0}; run in a pod with a service account or set KUBECONFIG"
    )]
    Config(#[source] kube::config::InferConfigError),
    #[error("building the Kubernetes client failed: {0}; check the kubeconfig's TLS settings")]
    Build(#[source] kube::Error),
}

/// A client from the in-cluster or kubeconfig configuration, throttled to `qps` with `burst`.
pub async fn kube_client(qps: f32, burst: u32) -> Result<Client, ClientError> {
    let config = Config::infer().await.map_err(ClientError::Config)?;
    throttled_client(config, qps, burst)
}

/// A client for `config`, throttled to `qps` requests per second with bursts of `burst` for
/// each API resource.
pub fn throttled_client(config: Config, qps: f32, burst: u32) -> Result<Client, ClientError> {
    client_with_throttle(config, &ThrottleLayer::new(qps, burst))
}

/// A client for `config` drawing on the buckets of `throttle`, which other clients may share
/// (impersonating and remote clients, so tenants cannot multiply the request rate).
pub fn client_with_throttle(
    config: Config,
    throttle: &ThrottleLayer,
) -> Result<Client, ClientError> {
    let builder = ClientBuilder::try_from(config).map_err(ClientError::Build)?;
    Ok(builder.with_layer(throttle).build())
}

/// A kube client error as a message for conditions and events, withholding what credential
/// plugins printed (their output may hold tokens or anything a command read).
pub fn describe_kube_error(error: &kube::Error) -> String {
    use kube::client::AuthError;
    match error {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.reason),
        kube::Error::Auth(AuthError::AuthExecRun { out, .. }) => format!(
            "the kubeconfig's credential command failed with {}; its output is not reported",
            out.status
        ),
        kube::Error::Auth(AuthError::AuthExecStart(source)) => {
            format!("the kubeconfig's credential command could not start: {source}")
        }
        kube::Error::Auth(_) => "obtaining the kubeconfig's credentials failed; details are not \
             reported because they may hold command output or secrets"
            .to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two clients on one throttle against a real HTTP server on 127.0.0.1: the second waits
    /// for the budget the first used.
    #[tokio::test]
    async fn clients_sharing_a_throttle_share_its_budget() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(|| async {
            axum::Json(serde_json::json!({"kind": "ConfigMap", "apiVersion": "v1",
                "metadata": {"name": "a", "namespace": "ns"}}))
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        let config = Config::new(format!("http://{address}").parse().unwrap());
        let throttle = ThrottleLayer::new(2.0, 1);
        let clients = [
            client_with_throttle(config.clone(), &throttle).unwrap(),
            client_with_throttle(config, &throttle).unwrap(),
        ];
        let started = std::time::Instant::now();
        for client in clients.iter().cycle().take(4) {
            let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
                kube::Api::namespaced(client.clone(), "ns");
            api.get("a").await.unwrap();
        }
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(1_400),
            "4 requests at 2/s with a burst of 1 took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn credential_command_output_is_withheld() {
        use std::os::unix::process::ExitStatusExt;
        let output = std::process::Output {
            status: std::process::ExitStatus::from_raw(256),
            stdout: b"eyJhbGciOi-service-account-token".to_vec(),
            stderr: b"stolen secret".to_vec(),
        };
        let error = kube::Error::Auth(kube::client::AuthError::AuthExecRun {
            cmd: "/bin/sh".to_owned(),
            out: Box::new(output),
        });
        let message = describe_kube_error(&error);
        assert!(message.contains("credential command failed"), "{message}");
        assert!(!message.contains("service-account-token"), "{message}");
        assert!(!message.contains("stolen secret"), "{message}");
        let parse = kube::Error::Auth(kube::client::AuthError::AuthExec(
            "Result is not a string secret-value".to_owned(),
        ));
        assert!(!describe_kube_error(&parse).contains("secret-value"));
    }
}
