//! Webhook requests for every Receiver type (headers `name: value` lines, `\0`, then the body):
//! never panic, a refusal never names the token, and an HMAC-signed type accepts only a request
//! carrying the body's true signature.
#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use notification_controller::receiver::verify::{Credentials, verify};
use sluice_api::notification::ReceiverType;

const TOKEN: &[u8] = b"fuzz-receiver-token";
const TYPES: [ReceiverType; 13] = [
    ReceiverType::Generic,
    ReceiverType::GenericHmac,
    ReceiverType::GenericOidc,
    ReceiverType::Github,
    ReceiverType::Gitlab,
    ReceiverType::Bitbucket,
    ReceiverType::Harbor,
    ReceiverType::Dockerhub,
    ReceiverType::Quay,
    ReceiverType::Gcr,
    ReceiverType::Nexus,
    ReceiverType::Acr,
    ReceiverType::Cdevents,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (head, body) = match rest.iter().position(|b| *b == 0) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    let type_ = TYPES[usize::from(selector) % TYPES.len()];
    let credentials = Credentials {
        token: TOKEN.to_vec(),
    };
    let events = vec!["push".to_owned()];
    match verify(type_, &events, &credentials, &headers, body) {
        Err(rejection) => {
            assert!(
                !rejection.to_string().contains("fuzz-receiver-token"),
                "token in {rejection}"
            );
        }
        Ok(_) if matches!(type_, ReceiverType::GenericHmac | ReceiverType::Github) => {
            use aws_lc_rs::hmac;
            let expected: Vec<String> = [
                hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                hmac::HMAC_SHA256,
                hmac::HMAC_SHA512,
            ]
            .into_iter()
            .map(|algorithm| {
                hex::encode(hmac::sign(&hmac::Key::new(algorithm, TOKEN), body).as_ref())
            })
            .collect();
            let signed = headers.values().any(|value| {
                value.to_str().is_ok_and(|v| {
                    let v = v.to_ascii_lowercase();
                    expected.iter().any(|mac| v.contains(mac.as_str()))
                })
            });
            assert!(
                signed,
                "{} accepted a request without the body's signature",
                type_.as_str()
            );
        }
        Ok(_) => {}
    }
});
