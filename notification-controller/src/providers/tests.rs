//! Request shapes per provider type, built from one event.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;
use sluice_runtime::events::EventSeverity;

use super::*;

fn event(severity: EventSeverity) -> NotificationEvent {
    NotificationEvent {
        involved_object: ObjectReference {
            api_version: Some("kustomize.toolkit.fluxcd.io/v1".into()),
            kind: Some("Kustomization".into()),
            name: Some("webapp".into()),
            namespace: Some("apps".into()),
            uid: Some("0c1d".into()),
            ..ObjectReference::default()
        },
        severity,
        timestamp: Time("2026-01-02T03:04:05Z".parse().unwrap()),
        message: "Applied revision: main@sha1:0123456789abcdef0123456789abcdef01234567".into(),
        reason: "ReconciliationSucceeded".into(),
        metadata: BTreeMap::from([(
            "revision".to_owned(),
            "main@sha1:0123456789abcdef0123456789abcdef01234567".to_owned(),
        )]),
        reporting_controller: "kustomize-controller".into(),
        reporting_instance: String::new(),
    }
}

fn target(address: &str) -> Target {
    Target {
        address: address.to_owned(),
        channel: "general".to_owned(),
        username: "flux".to_owned(),
        token: Some("s3cr3t-token".to_owned()),
        provider_uid: "8a7f1c2e-1111-2222".to_owned(),
        ..Target::default()
    }
}

fn build(kind: ProviderType, target: &Target, severity: EventSeverity) -> OutgoingRequest {
    notifier(kind)
        .unwrap()
        .build(target, &event(severity))
        .unwrap()
        .unwrap()
}

fn body(request: &OutgoingRequest) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

fn header<'a>(request: &'a OutgoingRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

#[test]
fn hmac_signature_matches_rfc_4231() {
    assert_eq!(
        generic::signature(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn generic_posts_the_event_with_headers_and_signature() {
    let mut target = target("https://hooks.example.com/flux");
    target.headers.insert("X-Team".into(), "web".into());
    let plain = build(ProviderType::Generic, &target, EventSeverity::Info);
    assert_eq!(plain.method, Method::POST);
    assert_eq!(
        header(&plain, "Gotk-Component"),
        Some("kustomize-controller")
    );
    assert_eq!(header(&plain, "X-Team"), Some("web"));
    assert_eq!(header(&plain, "X-Signature"), None);
    assert_eq!(body(&plain)["involvedObject"]["name"], "webapp");
    let signed = build(ProviderType::GenericHmac, &target, EventSeverity::Info);
    assert_eq!(
        header(&signed, "X-Signature").unwrap(),
        generic::signature(b"s3cr3t-token", &signed.body)
    );
}

#[test]
fn slack_discord_and_rocket_share_the_slack_shape() {
    let hook = target("https://hooks.slack.com/services/x");
    let slack = build(ProviderType::Slack, &hook, EventSeverity::Error);
    let value = body(&slack);
    assert_eq!(value["channel"], "general");
    assert_eq!(value["username"], "flux");
    assert_eq!(value["attachments"][0]["color"], "danger");
    assert_eq!(
        value["attachments"][0]["author_name"],
        "Kustomization/webapp.apps"
    );
    assert_eq!(header(&slack, "Authorization"), Some("Bearer s3cr3t-token"));
    let discord = build(
        ProviderType::Discord,
        &target("https://discord.com/api/webhooks/1/abc"),
        EventSeverity::Info,
    );
    assert_eq!(discord.url.path(), "/api/webhooks/1/abc/slack");
    assert_eq!(header(&discord, "Authorization"), None);
    let rocket = build(ProviderType::Rocket, &hook, EventSeverity::Info);
    assert_eq!(body(&rocket)["attachments"][0]["color"], "good");
}

#[test]
fn chat_and_incident_types_have_their_documented_shapes() {
    let teams = body(&build(
        ProviderType::MsTeams,
        &target("https://x.example/teams"),
        EventSeverity::Info,
    ));
    assert_eq!(
        teams["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let chat = body(&build(
        ProviderType::GoogleChat,
        &target("https://chat.example/v1"),
        EventSeverity::Info,
    ));
    assert_eq!(
        chat["cardsV2"][0]["card"]["header"]["title"],
        "Kustomization/webapp.apps"
    );
    let webex = build(ProviderType::Webex, &target(""), EventSeverity::Info);
    assert_eq!(webex.url.as_str(), "https://webexapis.com/v1/messages");
    assert_eq!(body(&webex)["roomId"], "general");
    let telegram = build(ProviderType::Telegram, &target(""), EventSeverity::Info);
    assert_eq!(telegram.url.path(), "/bots3cr3t-token/sendMessage");
    assert_eq!(body(&telegram)["chat_id"], "general");
    let matrix = build(
        ProviderType::Matrix,
        &target("https://matrix.example"),
        EventSeverity::Info,
    );
    assert_eq!(matrix.method, Method::PUT);
    assert!(
        matrix
            .url
            .path()
            .starts_with("/_matrix/client/v3/rooms/general/send/m.room.message/")
    );
    let opsgenie = build(ProviderType::Opsgenie, &target(""), EventSeverity::Error);
    assert_eq!(
        header(&opsgenie, "Authorization"),
        Some("GenieKey s3cr3t-token")
    );
    assert_eq!(body(&opsgenie)["details"]["severity"], "error");
    let pagerduty = body(&build(
        ProviderType::PagerDuty,
        &target(""),
        EventSeverity::Error,
    ));
    assert_eq!(pagerduty["routing_key"], "general");
    assert_eq!(pagerduty["event_action"], "trigger");
    let alertmanager = body(&build(
        ProviderType::AlertManager,
        &target("http://am:9093/api/v2/alerts"),
        EventSeverity::Error,
    ));
    assert_eq!(
        alertmanager[0]["labels"]["alertname"],
        "FluxKustomizationReconciliationSucceeded"
    );
    assert_eq!(
        alertmanager[0]["annotations"]["message"],
        event(EventSeverity::Error).message
    );
    let grafana = body(&build(
        ProviderType::Grafana,
        &target("http://grafana/api/annotations"),
        EventSeverity::Info,
    ));
    assert_eq!(grafana["tags"][0], "flux");
    let sentry = build(
        ProviderType::Sentry,
        &target("https://key1@sentry.example/42"),
        EventSeverity::Error,
    );
    assert_eq!(sentry.url.as_str(), "https://sentry.example/api/42/store/");
    assert!(
        header(&sentry, "X-Sentry-Auth")
            .unwrap()
            .contains("sentry_key=key1")
    );
}

#[test]
fn commit_status_types_post_to_their_apis() {
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let github = build(
        ProviderType::GitHub,
        &target("https://github.com/org/app"),
        EventSeverity::Info,
    );
    assert_eq!(
        github.url.as_str(),
        format!("https://api.github.com/repos/org/app/statuses/{sha}")
    );
    let value = body(&github);
    assert_eq!(value["state"], "success");
    assert_eq!(value["context"], "kustomization/webapp/8a7f1c2e");
    assert_eq!(value["description"], "reconciliation succeeded");
    let enterprise = build(
        ProviderType::GitHub,
        &target("http://127.0.0.1:8080/org/app.git"),
        EventSeverity::Error,
    );
    assert_eq!(
        enterprise.url.path(),
        format!("/api/v3/repos/org/app/statuses/{sha}")
    );
    assert_eq!(body(&enterprise)["state"], "failure");
    let gitlab = build(
        ProviderType::GitLab,
        &target("https://gitlab.com/group/sub/app"),
        EventSeverity::Error,
    );
    assert_eq!(
        gitlab.url.as_str(),
        format!("https://gitlab.com/api/v4/projects/group%2Fsub%2Fapp/statuses/{sha}")
    );
    assert_eq!(header(&gitlab, "PRIVATE-TOKEN"), Some("s3cr3t-token"));
    assert_eq!(body(&gitlab)["state"], "failed");
    let gitea = build(
        ProviderType::Gitea,
        &target("git@gitea.example:org/app.git"),
        EventSeverity::Info,
    );
    assert_eq!(
        gitea.url.as_str(),
        format!("https://gitea.example/api/v1/repos/org/app/statuses/{sha}")
    );
    let bitbucket = build(
        ProviderType::Bitbucket,
        &target("https://bitbucket.org/org/app"),
        EventSeverity::Info,
    );
    assert_eq!(
        bitbucket.url.as_str(),
        format!("https://api.bitbucket.org/2.0/repositories/org/app/commit/{sha}/statuses/build")
    );
    assert_eq!(body(&bitbucket)["state"], "SUCCESSFUL");
    let server = build(
        ProviderType::BitbucketServer,
        &target("https://bb.example/scm/proj/app.git"),
        EventSeverity::Info,
    );
    assert_eq!(
        server.url.path(),
        format!("/rest/api/latest/projects/proj/repos/app/commits/{sha}/builds")
    );
    let azure = build(
        ProviderType::AzureDevOps,
        &target("https://dev.azure.com/org/proj/_git/app"),
        EventSeverity::Info,
    );
    assert_eq!(
        azure.url.path(),
        format!("/org/proj/_apis/git/repositories/app/commits/{sha}/statuses")
    );
    assert_eq!(body(&azure)["context"]["genre"], "fluxcd");
}

#[test]
fn commit_status_skips_progressing_and_revisionless_events() {
    let target = target("https://github.com/org/app");
    let mut progressing = event(EventSeverity::Info);
    progressing.reason = "Progressing".into();
    assert!(
        notifier(ProviderType::GitHub)
            .unwrap()
            .build(&target, &progressing)
            .unwrap()
            .is_none()
    );
    let mut bare = event(EventSeverity::Info);
    bare.metadata.clear();
    assert!(
        notifier(ProviderType::GitHub)
            .unwrap()
            .build(&target, &bare)
            .unwrap()
            .is_none()
    );
    assert_eq!(
        commit::commit_hash("main/0123abcd"),
        Some("0123abcd".into())
    );
    assert_eq!(commit::commit_hash("v1.0.0@sha256:zz"), None);
}

#[test]
fn errors_never_carry_the_address_or_token() {
    let mut target = target("ftp://user:s3cr3t-token@example.com/");
    target.token = Some("s3cr3t-token".into());
    let error = notifier(ProviderType::Slack)
        .unwrap()
        .build(&target, &event(EventSeverity::Info))
        .unwrap_err()
        .to_string();
    assert!(
        !error.contains("s3cr3t") && error.contains("slack"),
        "{error}"
    );
    assert!(!format!("{target:?}").contains("s3cr3t"));
    let request = build(
        ProviderType::Telegram,
        &target_with_token(),
        EventSeverity::Info,
    );
    assert!(!format!("{request:?}").contains("s3cr3t"));
    assert!(notifier(ProviderType::Nats).is_none());
}

fn target_with_token() -> Target {
    target("")
}
