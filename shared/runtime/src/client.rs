//! Kubernetes client construction with client-go style rate limiting (`--kube-api-qps`, `--kube-api-burst`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use kube::client::ClientBuilder;
use kube::{Client, Config};
use tokio::time::{Instant, Sleep};

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

/// A client for `config`, throttled to `qps` requests per second with bursts of `burst`.
pub fn throttled_client(config: Config, qps: f32, burst: u32) -> Result<Client, ClientError> {
    let builder = ClientBuilder::try_from(config).map_err(ClientError::Build)?;
    Ok(builder.with_layer(&ThrottleLayer::new(qps, burst)).build())
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

/// A token bucket: `rate` tokens per second, holding at most `capacity`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket; a non-positive `rate` disables throttling.
    pub fn new(rate: f32, capacity: u32, now: Instant) -> Self {
        let capacity = f64::from(capacity.max(1));
        Self {
            rate: f64::from(rate),
            capacity,
            tokens: capacity,
            updated: now,
        }
    }

    /// Takes one token and returns how long the caller must wait before using it.
    pub fn take(&mut self, now: Instant) -> Duration {
        if self.rate <= 0.0 || !self.rate.is_finite() {
            return Duration::ZERO;
        }
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.updated = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// Tower layer applying a shared [`TokenBucket`] to every request.
#[derive(Debug, Clone)]
pub struct ThrottleLayer {
    bucket: Arc<Mutex<TokenBucket>>,
}

impl ThrottleLayer {
    pub fn new(qps: f32, burst: u32) -> Self {
        Self {
            bucket: Arc::new(Mutex::new(TokenBucket::new(qps, burst, Instant::now()))),
        }
    }
}

impl<S> tower::Layer<S> for ThrottleLayer {
    type Service = Throttle<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Throttle {
            inner,
            bucket: self.bucket.clone(),
            wait: None,
            admitted: false,
        }
    }
}

/// Service that waits in `poll_ready` until the bucket admits the next request.
#[derive(Debug)]
pub struct Throttle<S> {
    inner: S,
    bucket: Arc<Mutex<TokenBucket>>,
    wait: Option<Pin<Box<Sleep>>>,
    admitted: bool,
}

impl<S, Request> tower::Service<Request> for Throttle<S>
where
    S: tower::Service<Request>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !self.admitted {
            if self.wait.is_none() {
                let now = Instant::now();
                let delay = self
                    .bucket
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take(now);
                if !delay.is_zero() {
                    self.wait = Some(Box::pin(tokio::time::sleep_until(now + delay)));
                }
            }
            if let Some(wait) = self.wait.as_mut() {
                ready!(wait.as_mut().poll(cx));
                self.wait = None;
            }
            self.admitted = true;
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.admitted = false;
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn bucket_allows_burst_then_paces_at_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 3, start);
        for _ in 0..3 {
            assert_eq!(bucket.take(start), Duration::ZERO);
        }
        assert_eq!(bucket.take(start), Duration::from_millis(100));
        assert_eq!(bucket.take(start), Duration::from_millis(200));
        let later = start + Duration::from_secs(10);
        assert_eq!(bucket.take(later), Duration::ZERO, "refills up to capacity");
        assert_eq!(bucket.take(later), Duration::ZERO);
        assert_eq!(bucket.take(later), Duration::ZERO);
        assert!(bucket.take(later) > Duration::ZERO);
    }

    #[test]
    fn zero_rate_disables_throttling() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(0.0, 1, now);
        for _ in 0..10 {
            assert_eq!(bucket.take(now), Duration::ZERO);
        }
    }

    struct Immediate;

    impl tower::Service<()> for Immediate {
        type Response = ();
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<(), Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, (): ()) -> Self::Future {
            std::future::ready(Ok(()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn service_waits_for_tokens() {
        use tower::{Layer, Service};
        let mut service = ThrottleLayer::new(2.0, 1).layer(Immediate);
        let started = Instant::now();
        for _ in 0..3 {
            std::future::poll_fn(|cx| service.poll_ready(cx))
                .await
                .expect("ready");
            service.call(()).await.expect("call");
        }
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }
}
