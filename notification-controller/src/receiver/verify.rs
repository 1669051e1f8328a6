//! Authenticating a webhook request exactly as its sender signs it, and the `events` filter.
//!
//! Messages name what is wrong, never a token, a signature or a payload.

use aws_lc_rs::hmac;
use axum::http::HeaderMap;
use base64::Engine;
use serde::Deserialize;
use sluice_api::notification::ReceiverType;

/// What the webhook carried, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A change: request the reconciles. `event` is the sender's event type, when it names one.
    Accept { event: Option<String> },
    /// A sender checking the hook (GitHub `ping`, Bitbucket `diagnostics:ping`): answered 200,
    /// nothing is touched.
    Ping,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Signature or token missing or wrong: HTTP 401.
    #[error("{0}")]
    Unauthenticated(String),
    /// Payload unreadable, or an event type not in `spec.events`: HTTP 400.
    #[error("{0}")]
    BadRequest(String),
}

/// The Secret values a receiver type may need.
pub struct Credentials {
    pub token: Vec<u8>,
}

/// Checks a request against a receiver of `type_` whose `spec.events` is `events`; `gcr` and
/// `generic-oidc` are authenticated elsewhere and only their payloads are checked here.
pub fn verify(
    type_: ReceiverType,
    events: &[String],
    credentials: &Credentials,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Verdict, Rejection> {
    let token = credentials.token.as_slice();
    match type_ {
        ReceiverType::Generic | ReceiverType::GenericOidc => Ok(accept(None)),
        ReceiverType::GenericHmac => {
            let signature = header(headers, "x-signature")
                .ok_or_else(|| unauthenticated("the X-Signature header is missing"))?;
            check_signature(signature, body, token)?;
            Ok(accept(None))
        }
        ReceiverType::Github => {
            check_hub_signature(headers, body, token)?;
            check_content_type(headers)?;
            filtered(events, header(headers, "x-github-event"), &["ping"])
        }
        ReceiverType::Bitbucket => {
            check_hub_signature(headers, body, token)?;
            filtered(
                events,
                header(headers, "x-event-key"),
                &["diagnostics:ping"],
            )
        }
        ReceiverType::Gitlab => {
            let given = header(headers, "x-gitlab-token").unwrap_or_default();
            if !constant_time_eq(given.as_bytes(), token) {
                return Err(unauthenticated(
                    "the X-Gitlab-Token header does not match the receiver token",
                ));
            }
            filtered(events, header(headers, "x-gitlab-event"), &[])
        }
        ReceiverType::Harbor => {
            let given = header(headers, "authorization").unwrap_or_default();
            if !constant_time_eq(given.as_bytes(), token) {
                return Err(unauthenticated(
                    "the Authorization header does not match the receiver token",
                ));
            }
            Ok(accept(None))
        }
        ReceiverType::Nexus => {
            let signature = header(headers, "x-nexus-webhook-signature").ok_or_else(|| {
                unauthenticated("the X-Nexus-Webhook-Signature header is missing")
            })?;
            check_hex_hmac(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, signature, body, token)
                .map_err(|()| unauthenticated("invalid Nexus signature"))?;
            decode::<NexusPayload>("Nexus", body)?;
            Ok(accept(None))
        }
        ReceiverType::Dockerhub => {
            decode::<DockerHubPayload>("DockerHub", body).map(|_| accept(None))
        }
        ReceiverType::Quay => decode::<QuayPayload>("Quay", body).map(|_| accept(None)),
        ReceiverType::Acr => decode::<AcrPayload>("ACR", body).map(|_| accept(None)),
        ReceiverType::Gcr => gcr_payload(body).map(|_| accept(None)),
        ReceiverType::Cdevents => {
            check_cdevent(body)?;
            filtered(events, header(headers, "ce-type"), &[])
        }
    }
}

fn accept(event: Option<String>) -> Verdict {
    Verdict::Accept { event }
}

fn unauthenticated(message: &str) -> Rejection {
    Rejection::Unauthenticated(message.to_owned())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Pings pass; other events must be in `events` (case-insensitive) when it is not empty.
fn filtered(events: &[String], event: Option<&str>, pings: &[&str]) -> Result<Verdict, Rejection> {
    let event = event.unwrap_or_default();
    if pings.iter().any(|ping| ping.eq_ignore_ascii_case(event)) {
        return Ok(Verdict::Ping);
    }
    if !events.is_empty() && !events.iter().any(|e| e.eq_ignore_ascii_case(event)) {
        // The event name is the sender's text: not repeated, as nothing a request holds is.
        return Err(Rejection::BadRequest(
            "the webhook's event type is not in spec.events".to_owned(),
        ));
    }
    Ok(accept((!event.is_empty()).then(|| event.to_owned())))
}

/// GitHub-style signature: `X-Hub-Signature-256`, else `X-Hub-Signature`, over the raw body.
fn check_hub_signature(headers: &HeaderMap, body: &[u8], token: &[u8]) -> Result<(), Rejection> {
    let signature = header(headers, "x-hub-signature-256")
        .or_else(|| header(headers, "x-hub-signature"))
        .ok_or_else(|| unauthenticated("the X-Hub-Signature-256 header is missing"))?;
    check_signature(signature, body, token)
}

/// `<algorithm>=<hex HMAC>` with algorithm `sha1`, `sha256` or `sha512`.
fn check_signature(signature: &str, body: &[u8], token: &[u8]) -> Result<(), Rejection> {
    let (algorithm, mac) = signature
        .split_once('=')
        .ok_or_else(|| unauthenticated("the signature is not of the form <algorithm>=<hex>"))?;
    let algorithm = match algorithm {
        "sha1" => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        "sha256" => hmac::HMAC_SHA256,
        "sha512" => hmac::HMAC_SHA512,
        _ => {
            return Err(unauthenticated(
                "the signature algorithm is not sha1, sha256 or sha512",
            ));
        }
    };
    check_hex_hmac(algorithm, mac, body, token)
        .map_err(|()| unauthenticated("the HMAC signature does not match the payload"))
}

fn check_hex_hmac(
    algorithm: hmac::Algorithm,
    mac: &str,
    body: &[u8],
    token: &[u8],
) -> Result<(), ()> {
    let mac = hex::decode(mac.trim()).map_err(|_| ())?;
    let key = hmac::Key::new(algorithm, token);
    hmac::verify(&key, body, &mac).map_err(|_| ())
}

/// GitHub sends JSON or form-encoded payloads; anything else is refused as go-github does.
fn check_content_type(headers: &HeaderMap) -> Result<(), Rejection> {
    let content_type = header(headers, "content-type").unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    match media {
        "application/json" | "application/x-www-form-urlencoded" => Ok(()),
        _ => Err(Rejection::BadRequest(
            "the Content-Type is not application/json or application/x-www-form-urlencoded"
                .to_owned(),
        )),
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// Decodes a payload; a refusal names the kind of error and its place, never the body's text
/// (serde's messages quote input strings, which may hold anything the sender put there).
fn decode<'a, T: Deserialize<'a>>(sender: &str, body: &'a [u8]) -> Result<T, Rejection> {
    serde_json::from_slice(body).map_err(|error| {
        let kind = match error.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not valid JSON",
            serde_json::error::Category::Data => "not the expected shape",
            serde_json::error::Category::Eof => "truncated JSON",
        };
        Rejection::BadRequest(format!(
            "cannot decode {sender} webhook payload: {kind} at line {} column {}",
            error.line(),
            error.column()
        ))
    })
}

#[derive(Deserialize)]
struct NexusPayload {
    #[serde(default, rename = "action")]
    _action: String,
    #[serde(default, rename = "repositoryName")]
    _repository_name: String,
}

#[derive(Deserialize)]
struct DockerHubPayload {
    #[serde(default, rename = "push_data")]
    _push_data: DockerHubPush,
    #[serde(default, rename = "repository")]
    _repository: DockerHubRepository,
}

#[derive(Deserialize, Default)]
struct DockerHubPush {
    #[serde(default, rename = "tag")]
    _tag: String,
}

#[derive(Deserialize, Default)]
struct DockerHubRepository {
    #[serde(default, rename = "repo_url")]
    _repo_url: String,
}

#[derive(Deserialize)]
struct QuayPayload {
    #[serde(default, rename = "docker_url")]
    _docker_url: String,
    #[serde(default, rename = "updated_tags")]
    _updated_tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct AcrPayload {
    #[serde(default, rename = "action")]
    _action: String,
    #[serde(default, rename = "target")]
    _target: AcrTarget,
}

#[derive(Deserialize, Default)]
struct AcrTarget {
    #[serde(default, rename = "repository")]
    _repository: String,
    #[serde(default, rename = "tag")]
    _tag: String,
}

#[derive(Deserialize)]
struct PubSubPush {
    message: PubSubMessage,
}

#[derive(Deserialize)]
struct PubSubMessage {
    #[serde(default)]
    data: String,
}

#[derive(Deserialize)]
struct GcrEvent {
    #[serde(default, rename = "action")]
    _action: String,
    #[serde(default, rename = "digest")]
    _digest: String,
    #[serde(default, rename = "tag")]
    _tag: String,
}

/// A Pub/Sub push whose base64 `message.data` is a registry event.
fn gcr_payload(body: &[u8]) -> Result<(), Rejection> {
    let push: PubSubPush = decode("GCR", body)?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(push.message.data.as_bytes())
        .map_err(|_| Rejection::BadRequest("GCR message.data is not base64".to_owned()))?;
    decode::<GcrEvent>("GCR", &data).map(|_| ())
}

/// A CDEvents v0.4 event: `context` with version, id, source, type and timestamp; `subject` with content.
fn check_cdevent(body: &[u8]) -> Result<(), Rejection> {
    let event: serde_json::Value = decode("CDEvent", body)?;
    let invalid = |problem: &str| Rejection::BadRequest(format!("invalid CDEvent: {problem}"));
    let context = event.get("context").ok_or_else(|| invalid("no context"))?;
    let text = |field: &str| {
        context
            .get(field)
            .and_then(serde_json::Value::as_str)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| invalid(&format!("context.{field} is missing")))
    };
    if !text("version")?.starts_with("0.4") {
        return Err(invalid("context.version is not 0.4.x"));
    }
    text("id")?;
    text("source")?;
    text("timestamp")?;
    let type_ = text("type")?;
    let parts: Vec<&str> = type_.split('.').collect();
    if parts.len() < 7 || parts[0] != "dev" || parts[1] != "cdevents" {
        return Err(invalid(
            "context.type is not dev.cdevents.<subject>.<predicate>.<version>",
        ));
    }
    let subject = event.get("subject").ok_or_else(|| invalid("no subject"))?;
    if !subject
        .get("content")
        .is_some_and(serde_json::Value::is_object)
    {
        return Err(invalid("subject.content is missing"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
