//! `gcr` receivers: a Pub/Sub push ID token signed by the key a local JWKS server publishes is
//! accepted; one signed by another key, for another audience or email, is refused.

mod receiver_common;

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::Router;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use notification_controller::receiver::ReceiverServerOptions;
use receiver_common::Harness;
use serde_json::json;

const EMAIL: &str = "pusher@project.iam.gserviceaccount.com";
const AUDIENCE: &str = "https://flux.example.com/hook";

/// Serves `{"keys": [...]}` with the public half of `key` as key id `kid-1`.
async fn jwks_server(key: &KeyPair) -> Result<String> {
    let public = PublicKeyComponents::<Vec<u8>>::from(key.public_key());
    let document = json!({"keys": [{
        "kid": "kid-1", "kty": "RSA", "alg": "RS256", "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e),
    }]});
    let router = Router::new().route(
        "/certs",
        axum::routing::get(move || {
            let document = document.clone();
            async move { axum::Json(document) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/certs", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

fn id_token(key: &KeyPair, audience: &str, email: &str) -> Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "kid": "kid-1", "typ": "JWT"}).to_string());
    let claims = URL_SAFE_NO_PAD.encode(
        json!({
            "iss": "https://accounts.google.com", "aud": audience, "email": email,
            "email_verified": true, "iat": now, "exp": now + 3600, "sub": "1234",
        })
        .to_string(),
    );
    let signing_input = format!("{header}.{claims}");
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .ok()
    .context("signing the token")?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

#[tokio::test]
async fn gcr_accepts_only_google_signed_tokens_for_the_secret_identity() -> Result<()> {
    let google = KeyPair::generate(KeySize::Rsa2048).ok().context("key")?;
    let attacker = KeyPair::generate(KeySize::Rsa2048).ok().context("key")?;
    let options = ReceiverServerOptions {
        google_certs_url: jwks_server(&google).await?,
        ..ReceiverServerOptions::default()
    };
    let harness = Harness::start_with("recv-gcr", options).await?;
    harness
        .secret(
            "token",
            &[
                ("token", "gcr-token"),
                ("email", EMAIL),
                ("audience", AUDIENCE),
            ],
        )
        .await?;
    harness.git_repository("target", &[]).await?;
    let path = harness
        .receiver(
            "gcr",
            json!({
                "type": "gcr",
                "secretRef": {"name": "token"},
                "resources": [{"kind": "GitRepository", "name": "target"}],
            }),
        )
        .await?;
    let data = STANDARD.encode(
        br#"{"action":"INSERT","digest":"gcr.io/p/app@sha256:00","tag":"gcr.io/p/app:v1"}"#,
    );
    let body = json!({"message": {"data": data, "messageId": "1", "publishTime": "2024-01-01T00:00:00Z"}, "subscription": "projects/p/subscriptions/s"}).to_string();
    for (token, what) in [
        (id_token(&attacker, AUDIENCE, EMAIL)?, "another key"),
        (
            id_token(&google, "https://other.example.com", EMAIL)?,
            "another audience",
        ),
        (
            id_token(&google, AUDIENCE, "someone@else.com")?,
            "another email",
        ),
    ] {
        let bearer = format!("Bearer {token}");
        let status = harness
            .post(&path, &[("Authorization", &bearer)], body.as_bytes())
            .await?;
        assert_eq!(status, 401, "{what}");
        assert_eq!(harness.requested_at("target").await?, None, "{what}");
    }
    assert_eq!(
        harness.post(&path, &[], body.as_bytes()).await?,
        401,
        "no token"
    );
    let bearer = format!("Bearer {}", id_token(&google, AUDIENCE, EMAIL)?);
    assert_eq!(
        harness
            .post(&path, &[("Authorization", &bearer)], body.as_bytes())
            .await?,
        200
    );
    assert!(harness.requested_at("target").await?.is_some());
    Ok(())
}
