//! An in-process Receiver reconciler and webhook server against the shared test control plane,
//! each harness in a namespace of its own, and a log capture to prove secrets stay out of logs.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DynamicObject, ObjectMeta, PostParams};
use kube::core::GroupVersionKind;
use kube::{Api, Client};
use notification_controller::receiver::{self, ReceiverServerOptions};
use serde_json::json;
use sluice_api::meta::RECONCILE_REQUESTED_AT_ANNOTATION;
use sluice_api::notification::Receiver;
use sluice_e2e::ControlPlane;
use sluice_e2e::poll::wait_object;
use sluice_runtime::{RuntimeContext, RuntimeFlags, Shutdown};

#[derive(Parser)]
struct TestFlags {
    #[command(flatten)]
    flags: RuntimeFlags,
}

/// Everything the controller logged in this test binary.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once) a debug-level subscriber that writes into the returned capture.
pub fn logs() -> LogCapture {
    static CAPTURE: OnceLock<LogCapture> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = LogCapture::default();
            let writer = capture.clone();
            let _ = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_writer(move || writer.clone())
                .try_init();
            capture
        })
        .clone()
}

/// A running reconciler and webhook server watching one fresh namespace.
pub struct Harness {
    pub client: Client,
    pub namespace: String,
    pub url: String,
    pub http: reqwest::Client,
    shutdown: Shutdown,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

impl Harness {
    pub async fn start(prefix: &str) -> Result<Self> {
        Self::start_with(prefix, ReceiverServerOptions::default()).await
    }

    pub async fn start_with(prefix: &str, options: ReceiverServerOptions) -> Result<Self> {
        let namespace = ControlPlane::shared().await?.namespace(prefix).await?;
        Self::start_in(&namespace, options).await
    }

    /// A harness on an existing namespace of the shared control plane.
    pub async fn start_in(namespace: &str, options: ReceiverServerOptions) -> Result<Self> {
        logs();
        let namespace = namespace.to_owned();
        let client = ControlPlane::shared().await?.client().await?;
        let flags = TestFlags::parse_from([
            "test",
            "--watch-all-namespaces=false",
            &format!("--runtime-namespace={namespace}"),
            "--min-retry-delay=300ms",
            "--max-retry-delay=2s",
        ])
        .flags;
        let shutdown = Shutdown::new();
        let (runtime, _tasks) = RuntimeContext::with_client(
            notification_controller::CONTROLLER_NAME,
            client.clone(),
            flags,
            shutdown.clone(),
        )?;
        tokio::spawn(receiver::run_controller(runtime));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let receivers: Api<Receiver> = Api::namespaced(client.clone(), &namespace);
        tokio::spawn(receiver::serve(
            listener,
            client.clone(),
            receivers,
            options,
            shutdown.token(),
        ));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            client,
            namespace,
            url,
            http,
            shutdown,
        })
    }

    pub fn receivers(&self) -> Api<Receiver> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Creates a Secret from string pairs.
    pub async fn secret(&self, name: &str, data: &[(&str, &str)]) -> Result<()> {
        let data: BTreeMap<String, ByteString> = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
            .collect();
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            data: Some(data),
            ..Secret::default()
        };
        Api::<Secret>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &secret)
            .await?;
        Ok(())
    }

    fn git_repositories(&self, namespace: &str) -> Result<Api<DynamicObject>> {
        let gvk = GroupVersionKind::gvk("source.toolkit.fluxcd.io", "v1", "GitRepository");
        let resource = kube::api::ApiResource::from_gvk_with_plural(&gvk, "gitrepositories");
        Ok(Api::namespaced_with(
            self.client.clone(),
            namespace,
            &resource,
        ))
    }

    /// Creates a GitRepository (no source-controller runs; only its annotations matter).
    pub async fn git_repository(&self, name: &str, labels: &[(&str, &str)]) -> Result<()> {
        self.git_repository_in(&self.namespace, name, labels).await
    }

    pub async fn git_repository_in(
        &self,
        namespace: &str,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Result<()> {
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": name, "labels": labels},
            "spec": {"url": "https://example.com/repo.git", "interval": "10m"},
        }))?;
        self.git_repositories(namespace)?
            .create(&PostParams::default(), &object)
            .await?;
        Ok(())
    }

    /// The `requestedAt` annotation of a GitRepository, if set.
    pub async fn requested_at(&self, name: &str) -> Result<Option<String>> {
        self.requested_at_in(&self.namespace, name).await
    }

    pub async fn requested_at_in(&self, namespace: &str, name: &str) -> Result<Option<String>> {
        let object = self.git_repositories(namespace)?.get(name).await?;
        Ok(object
            .metadata
            .annotations
            .and_then(|a| a.get(RECONCILE_REQUESTED_AT_ANNOTATION).cloned()))
    }

    /// Creates a Receiver from `spec` and waits until it is Ready with a webhook path.
    pub async fn receiver(&self, name: &str, spec: serde_json::Value) -> Result<String> {
        let object: Receiver = serde_json::from_value(json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1",
            "kind": "Receiver",
            "metadata": {"name": name},
            "spec": spec,
        }))?;
        let api = self.receivers();
        api.create(&PostParams::default(), &object).await?;
        let ready = wait_object(&api, name, "Ready with a webhook path", |r: &Receiver| {
            r.status.as_ref().is_some_and(|s| {
                s.webhook_path.is_some()
                    && s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        })
        .await?;
        ready
            .status
            .and_then(|s| s.webhook_path)
            .context("webhook path")
    }

    /// Posts `body` with `headers` to `path`; returns the status code.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<u16> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.url))
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Ok(request.send().await?.status().as_u16())
    }
}
