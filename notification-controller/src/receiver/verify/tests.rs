//! Each type's authentication with right and wrong credentials, and the events filter.

use aws_lc_rs::hmac;
use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::*;

const TOKEN: &[u8] = b"s3cr3t-token";

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(name, value)| {
            (
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            )
        })
        .collect()
}

fn sign(algorithm: hmac::Algorithm, body: &[u8], key: &[u8]) -> String {
    hex::encode(hmac::sign(&hmac::Key::new(algorithm, key), body).as_ref())
}

fn check(
    type_: ReceiverType,
    events: &[&str],
    pairs: &[(&str, &str)],
    body: &[u8],
) -> Result<Verdict, Rejection> {
    let events: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
    let credentials = Credentials {
        token: TOKEN.to_vec(),
    };
    verify(type_, &events, &credentials, &headers(pairs), body)
}

fn accepted(event: Option<&str>) -> Result<Verdict, Rejection> {
    Ok(Verdict::Accept {
        event: event.map(str::to_owned),
    })
}

#[test]
fn github_checks_the_sha256_signature_and_the_event() {
    let body = br#"{"ref":"refs/heads/main"}"#;
    let good = format!("sha256={}", sign(hmac::HMAC_SHA256, body, TOKEN));
    let json = ("content-type", "application/json");
    assert_eq!(
        check(
            ReceiverType::Github,
            &["push"],
            &[
                json,
                ("x-hub-signature-256", &good),
                ("x-github-event", "push")
            ],
            body
        ),
        accepted(Some("push"))
    );
    let forged = format!("sha256={}", sign(hmac::HMAC_SHA256, body, b"other"));
    assert!(matches!(
        check(
            ReceiverType::Github,
            &[],
            &[
                json,
                ("x-hub-signature-256", &forged),
                ("x-github-event", "push")
            ],
            body
        ),
        Err(Rejection::Unauthenticated(_))
    ));
    assert!(matches!(
        check(
            ReceiverType::Github,
            &[],
            &[json, ("x-github-event", "push")],
            body
        ),
        Err(Rejection::Unauthenticated(_))
    ));
    assert!(matches!(
        check(
            ReceiverType::Github,
            &["push"],
            &[
                json,
                ("x-hub-signature-256", &good),
                ("x-github-event", "issues")
            ],
            body
        ),
        Err(Rejection::BadRequest(_))
    ));
    assert_eq!(
        check(
            ReceiverType::Github,
            &["push"],
            &[
                json,
                ("x-hub-signature-256", &good),
                ("x-github-event", "ping")
            ],
            body
        ),
        Ok(Verdict::Ping)
    );
}

#[test]
fn github_ping_still_needs_a_valid_signature() {
    let body = br#"{"zen":"hi"}"#;
    let forged = format!("sha256={}", sign(hmac::HMAC_SHA256, body, b"other"));
    assert!(matches!(
        check(
            ReceiverType::Github,
            &[],
            &[
                ("content-type", "application/json"),
                ("x-hub-signature-256", &forged),
                ("x-github-event", "ping")
            ],
            body
        ),
        Err(Rejection::Unauthenticated(_))
    ));
}

#[test]
fn generic_hmac_accepts_sha1_sha256_and_sha512() {
    let body = b"payload";
    for (name, algorithm) in [
        ("sha1", hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        ("sha256", hmac::HMAC_SHA256),
        ("sha512", hmac::HMAC_SHA512),
    ] {
        let signature = format!("{name}={}", sign(algorithm, body, TOKEN));
        assert_eq!(
            check(
                ReceiverType::GenericHmac,
                &[],
                &[("x-signature", &signature)],
                body
            ),
            accepted(None)
        );
        assert!(
            check(
                ReceiverType::GenericHmac,
                &[],
                &[("x-signature", &signature)],
                b"tampered"
            )
            .is_err()
        );
    }
    assert!(
        check(
            ReceiverType::GenericHmac,
            &[],
            &[("x-signature", "md5=00")],
            body
        )
        .is_err()
    );
}

#[test]
fn gitlab_and_harbor_compare_the_token() {
    let token = std::str::from_utf8(TOKEN).unwrap();
    assert_eq!(
        check(
            ReceiverType::Gitlab,
            &["Push Hook"],
            &[("x-gitlab-token", token), ("x-gitlab-event", "push hook")],
            b"{}"
        ),
        accepted(Some("push hook"))
    );
    assert!(matches!(
        check(
            ReceiverType::Gitlab,
            &[],
            &[("x-gitlab-token", "wrong"), ("x-gitlab-event", "Push Hook")],
            b"{}"
        ),
        Err(Rejection::Unauthenticated(_))
    ));
    assert_eq!(
        check(
            ReceiverType::Harbor,
            &[],
            &[("authorization", token)],
            b"{}"
        ),
        accepted(None)
    );
    assert!(
        check(
            ReceiverType::Harbor,
            &[],
            &[("authorization", "Bearer x")],
            b"{}"
        )
        .is_err()
    );
}

#[test]
fn bitbucket_uses_hub_signature_and_event_key() {
    let body = b"{}";
    let good = format!("sha256={}", sign(hmac::HMAC_SHA256, body, TOKEN));
    assert_eq!(
        check(
            ReceiverType::Bitbucket,
            &["repo:refs_changed"],
            &[
                ("x-hub-signature", &good),
                ("x-event-key", "repo:refs_changed")
            ],
            body
        ),
        accepted(Some("repo:refs_changed"))
    );
    assert_eq!(
        check(
            ReceiverType::Bitbucket,
            &["repo:refs_changed"],
            &[
                ("x-hub-signature", &good),
                ("x-event-key", "diagnostics:ping")
            ],
            body
        ),
        Ok(Verdict::Ping)
    );
    assert!(
        check(
            ReceiverType::Bitbucket,
            &[],
            &[
                ("x-hub-signature", "sha256=00"),
                ("x-event-key", "repo:refs_changed")
            ],
            body
        )
        .is_err()
    );
}

#[test]
fn nexus_checks_the_sha1_hmac_then_the_payload() {
    let body = br#"{"action":"CREATED","repositoryName":"docker"}"#;
    let good = sign(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, body, TOKEN);
    assert_eq!(
        check(
            ReceiverType::Nexus,
            &[],
            &[("x-nexus-webhook-signature", &good)],
            body
        ),
        accepted(None)
    );
    assert!(
        check(
            ReceiverType::Nexus,
            &[],
            &[("x-nexus-webhook-signature", &"0".repeat(40))],
            body
        )
        .is_err()
    );
    assert!(check(ReceiverType::Nexus, &[], &[], body).is_err());
}

#[test]
fn registry_payloads_must_decode() {
    let dockerhub = br#"{"push_data":{"tag":"latest"},"repository":{"repo_url":"https://hub.docker.com/r/org/app"}}"#;
    assert_eq!(
        check(ReceiverType::Dockerhub, &[], &[], dockerhub),
        accepted(None)
    );
    assert!(check(ReceiverType::Dockerhub, &[], &[], b"not json").is_err());
    assert!(check(ReceiverType::Dockerhub, &[], &[], br#"{"push_data":"x"}"#).is_err());
    let quay = br#"{"docker_url":"quay.io/org/app","updated_tags":["v1"]}"#;
    assert_eq!(check(ReceiverType::Quay, &[], &[], quay), accepted(None));
    assert!(check(ReceiverType::Quay, &[], &[], br#"{"updated_tags":"v1"}"#).is_err());
    let acr = br#"{"action":"push","target":{"repository":"app","tag":"v1"}}"#;
    assert_eq!(check(ReceiverType::Acr, &[], &[], acr), accepted(None));
    assert!(check(ReceiverType::Acr, &[], &[], b"[").is_err());
}

#[test]
fn gcr_payload_is_a_pubsub_push_with_a_base64_event() {
    let data = base64::engine::general_purpose::STANDARD.encode(
        br#"{"action":"INSERT","digest":"gcr.io/p/app@sha256:00","tag":"gcr.io/p/app:v1"}"#,
    );
    let body = format!(r#"{{"message":{{"data":"{data}","messageId":"1"}},"subscription":"s"}}"#);
    assert_eq!(
        check(ReceiverType::Gcr, &[], &[], body.as_bytes()),
        accepted(None)
    );
    assert!(check(ReceiverType::Gcr, &[], &[], br#"{"message":{"data":"!!"}}"#).is_err());
}

#[test]
fn cdevents_are_validated_and_filtered_by_ce_type() {
    let body = br#"{"context":{"version":"0.4.1","id":"1","source":"ci","type":"dev.cdevents.artifact.published.0.2.0","timestamp":"2024-01-01T00:00:00Z"},"subject":{"id":"app","content":{}}}"#;
    let ce_type = ("ce-type", "dev.cdevents.artifact.published.0.2.0");
    assert_eq!(
        check(
            ReceiverType::Cdevents,
            &["dev.cdevents.artifact.published.0.2.0"],
            &[ce_type],
            body
        ),
        accepted(Some("dev.cdevents.artifact.published.0.2.0"))
    );
    assert!(
        check(
            ReceiverType::Cdevents,
            &["dev.cdevents.build.started.0.2.0"],
            &[ce_type],
            body
        )
        .is_err()
    );
    assert!(
        check(
            ReceiverType::Cdevents,
            &[],
            &[ce_type],
            br#"{"context":{"version":"0.3.0"}}"#
        )
        .is_err()
    );
}

#[test]
fn rejections_never_carry_the_token() {
    let token = std::str::from_utf8(TOKEN).unwrap();
    let body = b"{}";
    let cases = [
        check(
            ReceiverType::Gitlab,
            &[],
            &[("x-gitlab-token", "s3cr3t-tokeX")],
            body,
        ),
        check(
            ReceiverType::Harbor,
            &[],
            &[("authorization", "s3cr3t")],
            body,
        ),
        check(
            ReceiverType::GenericHmac,
            &[],
            &[("x-signature", "sha256=zz")],
            body,
        ),
    ];
    for case in cases {
        let message = case.unwrap_err().to_string();
        assert!(!message.contains(token), "{message}");
    }
}

#[test]
fn a_payload_refusal_never_quotes_the_body() {
    let body = br#""s3cr3t-token pasted into the body""#;
    let rejection = check(ReceiverType::Acr, &[], &[], body).unwrap_err();
    let message = rejection.to_string();
    assert!(
        message.contains("not the expected shape at line 1"),
        "{message}"
    );
    assert!(!message.contains("s3cr3t-token"), "{message}");
    let truncated = check(ReceiverType::Acr, &[], &[], br#"{"target": "#).unwrap_err();
    assert!(
        truncated.to_string().contains("truncated JSON"),
        "{truncated}"
    );
}

#[test]
fn header_values_are_not_repeated_in_refusals() {
    let body = br#"{"ref":"refs/heads/main"}"#;
    let signature = format!("sha256={}", sign(hmac::HMAC_SHA256, body, TOKEN));
    let planted = "s3cr3t-token";
    let content_type = format!("text/{planted}");
    let wrong_type = check(
        ReceiverType::Github,
        &[],
        &[
            ("x-hub-signature-256", &signature),
            ("x-github-event", "push"),
            ("content-type", &content_type),
        ],
        body,
    )
    .unwrap_err();
    assert!(!wrong_type.to_string().contains(planted), "{wrong_type}");
    let unlisted = check(
        ReceiverType::Github,
        &["push"],
        &[
            ("x-hub-signature-256", &signature),
            ("x-github-event", planted),
            ("content-type", "application/json"),
        ],
        body,
    )
    .unwrap_err();
    assert!(
        unlisted.to_string().contains("not in spec.events"),
        "{unlisted}"
    );
    assert!(!unlisted.to_string().contains(planted), "{unlisted}");
}
