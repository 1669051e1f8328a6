//! Client-side rate limiting with client-go's per-kind meaning: `--kube-api-qps`/`--kube-api-burst`
//! apply to each API resource separately, and a wait delays only requests for that resource.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::time::{Instant, Sleep};

/// At most this many resources get their own bucket; the rest share one.
const MAX_BUCKETS: usize = 256;

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

/// What one API request is: its verb (Kubernetes' meaning) and `group/resource`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: &'static str,
    pub resource: String,
}

/// The `resource` label of the throttle wait counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResourceLabels {
    resource: String,
}

/// Process-wide request and rate-limiter counters, like client-go's `rest_client_*` metrics.
#[derive(Clone, Default)]
pub struct ClientMetrics {
    requests: Family<RequestLabels, Counter>,
    throttled_seconds: Family<ResourceLabels, Counter<f64>>,
}

static CLIENT_METRICS: LazyLock<ClientMetrics> = LazyLock::new(ClientMetrics::default);

impl ClientMetrics {
    /// The counters every throttled client of this process updates.
    pub fn global() -> &'static Self {
        &CLIENT_METRICS
    }

    /// Adds the counters to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sluice_kube_client_requests",
            "Kubernetes API requests sent by this process, by verb and group/resource",
            self.requests.clone(),
        );
        registry.register(
            "sluice_kube_client_rate_limiter_wait_seconds",
            "Seconds requests waited in the client-side rate limiter, by group/resource",
            self.throttled_seconds.clone(),
        );
    }

    /// Requests counted so far for `verb` and `resource`.
    pub fn requests(&self, verb: &'static str, resource: &str) -> u64 {
        self.requests
            .get_or_create(&RequestLabels {
                verb,
                resource: resource.to_owned(),
            })
            .get()
    }

    fn record(&self, labels: RequestLabels, waited: Duration) {
        if !waited.is_zero() {
            self.throttled_seconds
                .get_or_create(&ResourceLabels {
                    resource: labels.resource.clone(),
                })
                .inc_by(waited.as_secs_f64());
        }
        self.requests.get_or_create(&labels).inc();
    }
}

/// Classifies a request by its path and method: `(verb, "group/resource")`.
pub fn classify(method: &http::Method, path: &str, query: Option<&str>) -> RequestLabels {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => {
            return RequestLabels {
                verb: verb_of(method, false, query),
                resource: String::new(),
            };
        }
    };
    let (resource, named) = match rest {
        ["namespaces", _ns, "status" | "finalize"] => ("namespaces", true),
        ["namespaces", _ns, resource, tail @ ..] => (*resource, !tail.is_empty()),
        [resource, tail @ ..] => (*resource, !tail.is_empty()),
        [] => ("", false),
    };
    RequestLabels {
        verb: verb_of(method, named, query),
        resource: format!("{group}/{resource}"),
    }
}

fn verb_of(method: &http::Method, named: bool, query: Option<&str>) -> &'static str {
    let watch = query.is_some_and(|q| q.split('&').any(|pair| pair == "watch=true"));
    match *method {
        http::Method::GET if watch => "watch",
        http::Method::GET if named => "get",
        http::Method::GET => "list",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE if named => "delete",
        http::Method::DELETE => "deletecollection",
        _ => "other",
    }
}

/// One bucket per `group/resource`, created on first use, bounded by [`MAX_BUCKETS`].
#[derive(Debug)]
struct Buckets {
    qps: f32,
    burst: u32,
    per_resource: HashMap<String, TokenBucket>,
    overflow: TokenBucket,
}

impl Buckets {
    fn take(&mut self, resource: &str, now: Instant) -> Duration {
        if let Some(bucket) = self.per_resource.get_mut(resource) {
            return bucket.take(now);
        }
        if self.per_resource.len() >= MAX_BUCKETS {
            return self.overflow.take(now);
        }
        let mut bucket = TokenBucket::new(self.qps, self.burst, now);
        let delay = bucket.take(now);
        self.per_resource.insert(resource.to_owned(), bucket);
        delay
    }
}

/// Tower layer applying per-resource token buckets to every request.
#[derive(Debug, Clone)]
pub struct ThrottleLayer {
    buckets: Arc<Mutex<Buckets>>,
}

impl ThrottleLayer {
    pub fn new(qps: f32, burst: u32) -> Self {
        Self {
            buckets: Arc::new(Mutex::new(Buckets {
                qps,
                burst,
                per_resource: HashMap::new(),
                overflow: TokenBucket::new(qps, burst, Instant::now()),
            })),
        }
    }
}

impl<S> tower::Layer<S> for ThrottleLayer {
    type Service = Throttle<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Throttle {
            inner,
            buckets: self.buckets.clone(),
        }
    }
}

/// Service that delays each request until its resource's bucket admits it; requests for other
/// resources are not held up.
#[derive(Debug)]
pub struct Throttle<S> {
    inner: S,
    buckets: Arc<Mutex<Buckets>>,
}

impl<S, B> tower::Service<http::Request<B>> for Throttle<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Delayed<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let labels = classify(
            request.method(),
            request.uri().path(),
            request.uri().query(),
        );
        let now = Instant::now();
        let delay = self
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(&labels.resource, now);
        ClientMetrics::global().record(labels, delay);
        Delayed {
            wait: (!delay.is_zero()).then(|| Box::pin(tokio::time::sleep_until(now + delay))),
            inner: Box::pin(self.inner.call(request)),
        }
    }
}

/// A response future that first waits out its rate-limiter delay; the request is sent only
/// when the inner future is first polled.
pub struct Delayed<F> {
    wait: Option<Pin<Box<Sleep>>>,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Delayed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(wait) = self.wait.as_mut() {
            ready!(wait.as_mut().poll(cx));
            self.wait = None;
        }
        self.inner.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn requests_are_classified_by_verb_and_resource() {
        let get = http::Method::GET;
        let cases = [
            (
                &get,
                "/api/v1/namespaces/ns/secrets/s",
                None,
                "get",
                "/secrets",
            ),
            (
                &get,
                "/api/v1/namespaces/ns/secrets",
                None,
                "list",
                "/secrets",
            ),
            (
                &get,
                "/api/v1/namespaces",
                Some("watch=true"),
                "watch",
                "/namespaces",
            ),
            (&get, "/api/v1/namespaces/ns", None, "get", "/namespaces"),
            (
                &http::Method::PUT,
                "/api/v1/namespaces/ns/finalize",
                None,
                "update",
                "/namespaces",
            ),
            (
                &http::Method::PATCH,
                "/apis/apps/v1/namespaces/ns/deployments/d/status",
                Some("fieldManager=x"),
                "patch",
                "apps/deployments",
            ),
            (
                &http::Method::POST,
                "/apis/apps/v1/namespaces/ns/deployments",
                None,
                "create",
                "apps/deployments",
            ),
            (
                &get,
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
                None,
                "get",
                "rbac.authorization.k8s.io/clusterroles",
            ),
            (
                &get,
                "/apis/apps/v1/deployments",
                Some("labelSelector=a&watch=true"),
                "watch",
                "apps/deployments",
            ),
            (&get, "/version", None, "list", ""),
        ];
        for (method, path, query, verb, resource) in cases {
            let labels = classify(method, path, query);
            assert_eq!(
                (labels.verb, labels.resource.as_str()),
                (verb, resource),
                "{path}"
            );
        }
    }

    #[test]
    fn each_resource_has_its_own_bucket() {
        let now = Instant::now();
        let mut buckets = Buckets {
            qps: 1.0,
            burst: 1,
            per_resource: HashMap::new(),
            overflow: TokenBucket::new(1.0, 1, now),
        };
        assert_eq!(buckets.take("apps/deployments", now), Duration::ZERO);
        assert_eq!(
            buckets.take("/services", now),
            Duration::ZERO,
            "a new resource starts full"
        );
        assert_eq!(
            buckets.take("apps/deployments", now),
            Duration::from_secs(1)
        );
        for index in 0..MAX_BUCKETS {
            buckets.take(&format!("g/r{index}"), now);
        }
        assert_eq!(buckets.per_resource.len(), MAX_BUCKETS, "bounded");
        assert!(
            buckets.take("beyond/bound", now) > Duration::ZERO,
            "overflow shares one bucket"
        );
    }

    struct Immediate;

    impl tower::Service<http::Request<()>> for Immediate {
        type Response = ();
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<(), Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            std::future::ready(Ok(()))
        }
    }

    fn request(path: &str) -> http::Request<()> {
        http::Request::get(path).body(()).expect("valid request")
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_resource_does_not_hold_up_others() {
        use tower::{Layer, Service};
        let mut service = ThrottleLayer::new(2.0, 1).layer(Immediate);
        let started = Instant::now();
        let mut waiting = Vec::new();
        for _ in 0..3 {
            waiting.push(service.call(request("/api/v1/namespaces/a/configmaps")));
        }
        service
            .call(request("/api/v1/namespaces/a/secrets"))
            .await
            .expect("call");
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "secrets have their own bucket"
        );
        for future in waiting {
            future.await.expect("call");
        }
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(1),
            "configmaps paced at 2 qps"
        );
        assert!(ClientMetrics::global().requests("list", "/configmaps") >= 3);
    }
}
