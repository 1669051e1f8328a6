//! A small S3 client for the Bucket `generic` provider: requests are presigned (SigV4) with
//! rusty-s3 and sent with reqwest; listings are paginated, downloads stream to disk under a budget.

use std::path::Path;
use std::time::Duration;

use reqwest::Url;
use rusty_s3::actions::ListObjectsV2;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use tokio::io::AsyncWriteExt;

use crate::bucket_index::SizeBudget;

/// Largest listing page or error body read, in bytes.
const MAX_RESPONSE_BYTES: usize = 16 << 20;
/// Most listing pages read in one listing; a server whose listing never ends is refused.
const MAX_LIST_PAGES: usize = 10_000;
/// Region signed for when `spec.region` is unset, as minio-go does.
const DEFAULT_REGION: &str = "us-east-1";

/// How to reach one bucket.
#[derive(Clone, Default)]
pub struct S3Settings {
    /// `spec.endpoint`: `host[:port]`, or a URL with an `http`/`https` scheme.
    pub endpoint: String,
    /// `spec.insecure`: plain HTTP allowed (and used when the endpoint has no scheme).
    pub insecure: bool,
    pub bucket: String,
    pub region: Option<String>,
    /// Access key id and secret key; anonymous requests when `None`.
    pub credentials: Option<(String, String)>,
    /// PEM CA bundle trusted in addition to the system roots.
    pub ca: Option<Vec<u8>>,
    /// PEM client certificate followed by its key.
    pub client_identity: Option<Vec<u8>>,
    /// Proxy URL with credentials embedded.
    pub proxy: Option<String>,
    /// Bound on each request.
    pub timeout: Duration,
}

/// One entry of a bucket listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    /// The ETag without its quotes.
    pub etag: String,
    pub size: u64,
}

/// One page of a bucket listing: its objects and the token of the next page, if any.
#[derive(Debug, Default)]
pub struct ListingPage {
    pub objects: Vec<ListedObject>,
    pub next_token: Option<String>,
}

/// Parses a `ListObjectsV2` response body.
pub fn parse_listing(body: &str, operation: &str) -> Result<ListingPage, S3Error> {
    let page = ListObjectsV2::parse_response(body).map_err(|e| S3Error::InvalidResponse {
        operation: operation.to_owned(),
        message: e.to_string(),
    })?;
    let objects = page
        .contents
        .into_iter()
        .map(|object| ListedObject {
            etag: trim_etag(object.etag.as_deref().unwrap_or_default()),
            size: object.size.unwrap_or(0),
            key: object.key,
        })
        .collect();
    Ok(ListingPage {
        objects,
        next_token: page.next_continuation_token,
    })
}

/// Where a paginated listing stands; refuses a repeated token and listings past [`MAX_LIST_PAGES`].
#[derive(Debug, Default)]
struct ListingCursor {
    token: Option<String>,
    pages: usize,
}

impl ListingCursor {
    /// Moves to the page after the one just read; `false` once the listing is complete.
    fn advance(&mut self, next: Option<String>, operation: &str) -> Result<bool, S3Error> {
        let refuse = |message: String| S3Error::InvalidResponse {
            operation: operation.to_owned(),
            message,
        };
        self.pages += 1;
        let Some(next) = next else {
            return Ok(false);
        };
        if self.token.as_deref() == Some(next.as_str()) {
            return Err(refuse(
                "the server sent the same continuation token twice".to_owned(),
            ));
        }
        if self.pages >= MAX_LIST_PAGES {
            return Err(refuse(format!(
                "the listing did not end after {MAX_LIST_PAGES} pages"
            )));
        }
        self.token = Some(next);
        Ok(true)
    }
}

/// An S3 operation failed; messages never carry credentials or signed URLs.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("invalid endpoint '{endpoint}': {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    #[error("{0}")]
    Config(String),
    #[error("bucket '{0}' not found")]
    BucketNotFound(String),
    #[error("object '{0}' not found")]
    ObjectNotFound(String),
    #[error("{operation} failed: HTTP {status}{detail}")]
    Status {
        operation: String,
        status: u16,
        detail: String,
    },
    #[error("{operation} failed: {message}")]
    Request { operation: String, message: String },
    #[error("{operation} failed: invalid response: {message}")]
    InvalidResponse { operation: String, message: String },
    #[error(
        "the bucket holds more than {limit} objects after prefix and ignore rules, the cap; narrow spec.prefix or spec.ignore, or raise --bucket-max-objects"
    )]
    TooManyObjects { limit: usize },
    #[error(
        "the objects exceed the total size cap of {limit} bytes; narrow spec.prefix or spec.ignore, or raise --bucket-max-size"
    )]
    TooLarge { limit: u64 },
    #[error("writing object '{key}' failed: {source}")]
    Io { key: String, source: std::io::Error },
}

/// A client for one bucket.
pub struct S3Client {
    http: reqwest::Client,
    bucket: Bucket,
    credentials: Option<Credentials>,
    timeout: Duration,
}

impl S3Client {
    /// Builds the client; fails on an unusable endpoint, CA, client certificate or proxy.
    pub fn new(settings: &S3Settings) -> Result<Self, S3Error> {
        let endpoint = endpoint_url(&settings.endpoint, settings.insecure)?;
        let style = if endpoint
            .host_str()
            .is_some_and(|host| host.ends_with(".amazonaws.com"))
            && !settings.bucket.contains('.')
        {
            UrlStyle::VirtualHost
        } else {
            UrlStyle::Path
        };
        let region = settings
            .region
            .clone()
            .filter(|region| !region.is_empty())
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        let bucket =
            Bucket::new(endpoint, style, settings.bucket.clone(), region).map_err(|e| {
                S3Error::InvalidEndpoint {
                    endpoint: settings.endpoint.clone(),
                    reason: e.to_string(),
                }
            })?;
        let credentials = settings
            .credentials
            .as_ref()
            .map(|(key, secret)| Credentials::new(key.clone(), secret.clone()));
        Ok(Self {
            http: http_client(settings)?,
            bucket,
            credentials,
            timeout: settings.timeout,
        })
    }

    /// Lists every object under `prefix`, page by page, handing each to `visit`.
    pub async fn list(
        &self,
        prefix: Option<&str>,
        mut visit: impl FnMut(ListedObject) -> Result<(), S3Error>,
    ) -> Result<(), S3Error> {
        let operation = format!("listing objects of bucket '{}'", self.bucket.name());
        let mut cursor = ListingCursor::default();
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, self.credentials.as_ref());
            if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
                action.with_prefix(prefix);
            }
            if let Some(token) = cursor.token.as_deref() {
                action.with_continuation_token(token);
            }
            let url = action.sign(self.presign_ttl());
            let response = self.get(url, &operation, None).await?;
            let body = read_text(response, &operation).await?;
            let page = parse_listing(&body, &operation)?;
            for object in page.objects {
                visit(object)?;
            }
            if !cursor.advance(page.next_token, &operation)? {
                return Ok(());
            }
        }
    }

    /// The ETag of object `key` from a HEAD request, for listings that carry none.
    pub async fn etag_of(&self, key: &str) -> Result<String, S3Error> {
        let operation = format!("reading the ETag of object '{key}'");
        let url = self
            .bucket
            .head_object(self.credentials.as_ref(), key)
            .sign(self.presign_ttl());
        let response = self
            .send(reqwest::Method::HEAD, url, &operation, Some(key))
            .await?;
        Ok(etag_header(&response))
    }

    /// Reads a small object into memory; `None` when it does not exist.
    pub async fn read_small(&self, key: &str) -> Result<Option<String>, S3Error> {
        let operation = format!("getting object '{key}'");
        let url = self
            .bucket
            .get_object(self.credentials.as_ref(), key)
            .sign(self.presign_ttl());
        match self.get(url, &operation, Some(key)).await {
            Ok(response) => read_text(response, &operation).await.map(Some),
            Err(S3Error::ObjectNotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Streams object `key` into `target`, charging its bytes to `budget`; returns its ETag.
    pub async fn download(
        &self,
        key: &str,
        target: &Path,
        budget: &SizeBudget,
    ) -> Result<String, S3Error> {
        let operation = format!("getting object '{key}'");
        let url = self
            .bucket
            .get_object(self.credentials.as_ref(), key)
            .sign(self.presign_ttl());
        let mut response = self.get(url, &operation, Some(key)).await?;
        let etag = etag_header(&response);
        let io_error = |source| S3Error::Io {
            key: key.to_owned(),
            source,
        };
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io_error)?;
        }
        let mut file = tokio::fs::File::create(target).await.map_err(io_error)?;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| request_error(&operation, &e))?
        {
            budget.take(chunk.len() as u64)?;
            file.write_all(&chunk).await.map_err(io_error)?;
        }
        file.flush().await.map_err(io_error)?;
        Ok(etag)
    }

    /// Presigned URLs stay valid for the request timeout plus a margin for clock skew.
    fn presign_ttl(&self) -> Duration {
        self.timeout + Duration::from_secs(300)
    }

    async fn get(
        &self,
        url: Url,
        operation: &str,
        key: Option<&str>,
    ) -> Result<reqwest::Response, S3Error> {
        self.send(reqwest::Method::GET, url, operation, key).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: Url,
        operation: &str,
        key: Option<&str>,
    ) -> Result<reqwest::Response, S3Error> {
        let response = self
            .http
            .request(method, url)
            .send()
            .await
            .map_err(|e| request_error(operation, &e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = read_text(response, operation).await.unwrap_or_default();
        let code = xml_field(&body, "Code");
        match (status.as_u16(), code.as_deref(), key) {
            (404, Some("NoSuchBucket"), _) => {
                Err(S3Error::BucketNotFound(self.bucket.name().to_owned()))
            }
            (404, _, Some(key)) => Err(S3Error::ObjectNotFound(key.to_owned())),
            _ => Err(S3Error::Status {
                operation: operation.to_owned(),
                status: status.as_u16(),
                detail: error_detail(code.as_deref(), xml_field(&body, "Message").as_deref()),
            }),
        }
    }
}

/// The endpoint as a URL: `https://` unless `insecure`, a given scheme kept.
pub fn endpoint_url(endpoint: &str, insecure: bool) -> Result<Url, S3Error> {
    let invalid = |reason: &str| S3Error::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let text = if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        let scheme = if insecure { "http" } else { "https" };
        format!("{scheme}://{endpoint}")
    };
    let url = Url::parse(&text).map_err(|e| invalid(&e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if insecure => {}
        "http" => return Err(invalid("plain HTTP needs spec.insecure: true")),
        _ => return Err(invalid("the scheme must be http or https")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials belong in spec.secretRef, not the endpoint",
        ));
    }
    Ok(url)
}

fn http_client(settings: &S3Settings) -> Result<reqwest::Client, S3Error> {
    let mut builder = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .user_agent(concat!(
            "sluice-source-controller/",
            env!("CARGO_PKG_VERSION")
        ));
    if let Some(ca) = &settings.ca {
        let certs = reqwest::Certificate::from_pem_bundle(ca)
            .ok()
            .filter(|certs| !certs.is_empty())
            .ok_or_else(|| {
                S3Error::Config("the CA bundle (ca.crt) holds no valid PEM certificate".into())
            })?;
        builder = builder.tls_certs_merge(certs);
    }
    if let Some(identity) = &settings.client_identity {
        let identity = reqwest::Identity::from_pem(identity).map_err(|_| {
            S3Error::Config(
                "the client certificate and key (tls.crt, tls.key) are not a valid PEM pair".into(),
            )
        })?;
        builder = builder.identity(identity);
    }
    if let Some(proxy) = &settings.proxy {
        let proxy = reqwest::Proxy::all(proxy).map_err(|_| {
            S3Error::Config("the proxy address from spec.proxySecretRef is not a valid URL".into())
        })?;
        builder = builder.proxy(proxy);
    }
    builder
        .build()
        .map_err(|e| S3Error::Config(format!("cannot build the HTTP client: {}", chain(&e))))
}

/// Reads a response body as text, refusing bodies over [`MAX_RESPONSE_BYTES`].
async fn read_text(mut response: reqwest::Response, operation: &str) -> Result<String, S3Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| request_error(operation, &e))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(S3Error::InvalidResponse {
                operation: operation.to_owned(),
                message: format!("the response exceeds {MAX_RESPONSE_BYTES} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// A request error without its (signed) URL, with its causes.
fn request_error(operation: &str, error: &reqwest::Error) -> S3Error {
    let message = if error.is_timeout() {
        "the request timed out; raise spec.timeout or check the endpoint".to_owned()
    } else {
        chain(error)
    };
    S3Error::Request {
        operation: operation.to_owned(),
        message,
    }
}

/// The error and its sources, the URL left out.
fn chain(error: &reqwest::Error) -> String {
    let mut text = String::from(if error.is_connect() {
        "connecting to the endpoint failed"
    } else if error.is_body() || error.is_decode() {
        "reading the response failed"
    } else {
        "the request failed"
    });
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The text of the first `<field>` element of an S3 error body, capped in length.
fn xml_field(body: &str, field: &str) -> Option<String> {
    let start = body.find(&format!("<{field}>"))? + field.len() + 2;
    let end = start + body[start..].find(&format!("</{field}>"))?;
    Some(body[start..end].chars().take(300).collect())
}

fn error_detail(code: Option<&str>, message: Option<&str>) -> String {
    match (code, message) {
        (Some(code), Some(message)) => format!(" {code}: {message}"),
        (Some(code), None) => format!(" {code}"),
        (None, Some(message)) => format!(": {message}"),
        (None, None) => String::new(),
    }
}

/// The response's `ETag` header without quotes; empty when missing.
fn etag_header(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|value| value.to_str().ok())
        .map(trim_etag)
        .unwrap_or_default()
}

/// An ETag without surrounding quotes, as minio-go reports it.
fn trim_etag(etag: &str) -> String {
    etag.trim().trim_matches('"').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_schemes_follow_insecure() {
        assert_eq!(
            endpoint_url("minio.example.com:9000", false)
                .unwrap()
                .as_str(),
            "https://minio.example.com:9000/"
        );
        assert_eq!(
            endpoint_url("127.0.0.1:9000", true).unwrap().as_str(),
            "http://127.0.0.1:9000/"
        );
        assert!(endpoint_url("http://127.0.0.1:9000", false).is_err());
        assert!(endpoint_url("ftp://host", true).is_err());
        assert!(endpoint_url("https://user:pw@host", false).is_err());
    }

    #[test]
    fn error_bodies_and_etags_are_parsed() {
        let body = "<Error><Code>SignatureDoesNotMatch</Code><Message>bad</Message></Error>";
        assert_eq!(
            xml_field(body, "Code").as_deref(),
            Some("SignatureDoesNotMatch")
        );
        assert_eq!(xml_field(body, "Resource"), None);
        assert_eq!(trim_etag("\"abc\""), "abc");
        assert_eq!(trim_etag("abc"), "abc");
    }

    #[test]
    fn a_listing_ends_on_its_last_page_and_refuses_a_repeated_token() {
        let mut cursor = ListingCursor::default();
        assert!(cursor.advance(Some("a".into()), "listing").unwrap());
        assert!(cursor.advance(Some("b".into()), "listing").unwrap());
        assert!(!cursor.advance(None, "listing").unwrap());

        let mut looping = ListingCursor::default();
        assert!(looping.advance(Some("same".into()), "listing").unwrap());
        let error = looping.advance(Some("same".into()), "listing").unwrap_err();
        assert!(
            error.to_string().contains("same continuation token"),
            "{error}"
        );
    }

    #[test]
    fn a_listing_that_never_ends_is_refused() {
        let mut cursor = ListingCursor::default();
        let error = (0..)
            .map(|page| cursor.advance(Some(format!("token-{page}")), "listing"))
            .find_map(Result::err)
            .unwrap();
        assert_eq!(cursor.pages, MAX_LIST_PAGES);
        assert!(error.to_string().contains("did not end"), "{error}");
    }

    #[test]
    fn listing_pages_are_parsed_with_unquoted_etags() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>
  <Contents><Key>dir/a.yaml</Key><ETag>&quot;abc&quot;</ETag><Size>12</Size></Contents>
  <NextContinuationToken>next</NextContinuationToken>
</ListBucketResult>"#;
        let page = parse_listing(body, "listing").unwrap();
        assert_eq!(
            page.objects,
            vec![ListedObject {
                key: "dir/a.yaml".into(),
                etag: "abc".into(),
                size: 12
            }]
        );
        assert_eq!(page.next_token.as_deref(), Some("next"));
        assert!(parse_listing("<html>", "listing").is_err());
    }

    #[test]
    fn unusable_tls_and_proxy_settings_are_named() {
        let base = S3Settings {
            endpoint: "127.0.0.1:9000".into(),
            insecure: true,
            bucket: "apps".into(),
            timeout: Duration::from_secs(5),
            ..S3Settings::default()
        };
        let error = |settings: S3Settings| match S3Client::new(&settings) {
            Err(error) => error.to_string(),
            Ok(_) => "accepted".to_owned(),
        };
        let ca = S3Settings {
            ca: Some(b"not a certificate".to_vec()),
            ..base.clone()
        };
        assert!(error(ca).contains("ca.crt"));
        let identity = S3Settings {
            client_identity: Some(b"junk".to_vec()),
            ..base.clone()
        };
        assert!(error(identity).contains("tls.crt"));
        let proxy = S3Settings {
            proxy: Some("::not a url".into()),
            ..base.clone()
        };
        assert!(error(proxy).contains("proxySecretRef"));
        assert!(S3Client::new(&base).is_ok());
    }
}
