use std::collections::BTreeMap;

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{self, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, ECDSA_P521_SHA256_ASN1_SIGNING,
    ECDSA_P521_SHA512_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
};

use super::*;

const DIGEST: &str = "sha256:0b1e5b3c8f9a2d4e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";

/// A payload as cosign v2 writes it for `reference@digest`.
fn payload(digest: &str) -> Vec<u8> {
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1:5000/apps/app"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    )
    .into_bytes()
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// A signing function and the PEM of its public key.
type Signer = (Box<dyn Fn(&[u8]) -> Vec<u8>>, String);

fn ecdsa(algorithm: &'static signature::EcdsaSigningAlgorithm) -> Signer {
    let pair = EcdsaKeyPair::generate(algorithm).unwrap();
    let der: PublicKeyX509Der = pair.public_key().as_der().unwrap();
    let public = pem("PUBLIC KEY", der.as_ref());
    let sign = move |message: &[u8]| {
        pair.sign(&SystemRandom::new(), message)
            .unwrap()
            .as_ref()
            .to_vec()
    };
    (Box::new(sign), public)
}

fn rsa_key() -> Signer {
    let pair = rsa::KeyPair::generate(KeySize::Rsa2048).unwrap();
    let der: PublicKeyX509Der = pair.public_key().as_der().unwrap();
    let public = pem("PUBLIC KEY", der.as_ref());
    let sign = move |message: &[u8]| {
        let mut out = vec![0; pair.public_modulus_len()];
        pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut out)
            .unwrap();
        out
    };
    (Box::new(sign), public)
}

fn ed25519() -> Signer {
    let pair = Ed25519KeyPair::generate().unwrap();
    let der: PublicKeyX509Der = pair.public_key().as_der().unwrap();
    let public = pem("PUBLIC KEY", der.as_ref());
    let sign = move |message: &[u8]| pair.sign(message).as_ref().to_vec();
    (Box::new(sign), public)
}

fn secret(entries: &[(&str, &str)]) -> SecretData {
    SecretData::from_entries(
        "ns",
        "cosign-keys",
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec())),
    )
}

fn signed(sign: &dyn Fn(&[u8]) -> Vec<u8>, payload: Vec<u8>) -> Signature {
    let signature = base64::engine::general_purpose::STANDARD.encode(sign(&payload));
    Signature { payload, signature }
}

#[test]
fn every_key_type_cosign_produces_verifies_its_signature() {
    let signers = [
        ("p256.pub", ecdsa(&ECDSA_P256_SHA256_ASN1_SIGNING)),
        ("p384-sha384.pub", ecdsa(&ECDSA_P384_SHA384_ASN1_SIGNING)),
        ("p521.pub", ecdsa(&ECDSA_P521_SHA256_ASN1_SIGNING)),
        ("p521-sha512.pub", ecdsa(&ECDSA_P521_SHA512_ASN1_SIGNING)),
        ("rsa.pub", rsa_key()),
        ("ed25519.pub", ed25519()),
    ];
    let entries: Vec<(&str, &str)> = signers
        .iter()
        .map(|(name, (_, public))| (*name, public.as_str()))
        .collect();
    let keys = TrustedKeys::from_secret(&secret(&entries)).unwrap();
    for (name, (sign, _)) in &signers {
        let signatures = [signed(sign.as_ref(), payload(DIGEST))];
        assert_eq!(
            keys.verify("reg/app@x", DIGEST, &signatures).unwrap(),
            *name
        );
    }
}

#[test]
fn a_pkcs1_rsa_public_key_is_accepted() {
    let pair = rsa::KeyPair::generate(KeySize::Rsa2048).unwrap();
    let public = pem("RSA PUBLIC KEY", pair.public_key().as_ref());
    let keys = TrustedKeys::from_secret(&secret(&[("rsa.pub", &public)])).unwrap();
    let mut out = vec![0; pair.public_modulus_len()];
    let message = payload(DIGEST);
    pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), &message, &mut out)
        .unwrap();
    let signature = Signature {
        payload: message,
        signature: base64::engine::general_purpose::STANDARD.encode(&out),
    };
    assert_eq!(keys.verify("r", DIGEST, &[signature]).unwrap(), "rsa.pub");
}

#[test]
fn a_signature_by_another_key_does_not_verify() {
    let (_, trusted) = ecdsa(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let (sign_other, _) = ecdsa(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let keys = TrustedKeys::from_secret(&secret(&[("cosign.pub", &trusted)])).unwrap();
    let signature = signed(sign_other.as_ref(), payload(DIGEST));
    let error = keys
        .verify("reg/app@sha256:x", DIGEST, std::slice::from_ref(&signature))
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("no matching signatures were found for 'reg/app@sha256:x'"),
        "{error}"
    );
    assert!(
        error.contains("1 not made by the trusted key(s) [\"cosign.pub\"]"),
        "{error}"
    );
    assert!(!error.contains(&signature.signature), "{error}");
    assert!(!error.contains(trusted.lines().nth(1).unwrap()), "{error}");
}

#[test]
fn a_trusted_signature_of_another_digest_does_not_verify() {
    let (sign, public) = ecdsa(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let keys = TrustedKeys::from_secret(&secret(&[("cosign.pub", &public)])).unwrap();
    let other = format!("sha256:{}", "f".repeat(64));
    let error = keys
        .verify("r", DIGEST, &[signed(sign.as_ref(), payload(&other))])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("1 made by a trusted key for another digest"),
        "{error}"
    );
}

#[test]
fn any_matching_signature_among_several_verifies() {
    let (sign, public) = ed25519();
    let (sign_other, _) = ed25519();
    let keys = TrustedKeys::from_secret(&secret(&[("a.pub", &public)])).unwrap();
    let signatures = [
        signed(sign_other.as_ref(), payload(DIGEST)),
        Signature {
            payload: payload(DIGEST),
            signature: "not base64!".to_owned(),
        },
        signed(sign.as_ref(), payload(DIGEST)),
    ];
    assert_eq!(keys.verify("r", DIGEST, &signatures).unwrap(), "a.pub");
    let none = keys.verify("r", DIGEST, &[]).unwrap_err().to_string();
    assert!(
        none.contains("the artifact has no cosign signature"),
        "{none}"
    );
}

#[test]
fn only_keys_ending_in_pub_are_trusted_and_must_parse() {
    let (_, public) = ecdsa(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let none = TrustedKeys::from_secret(&secret(&[("cosign.key", &public)]))
        .err()
        .unwrap();
    assert!(matches!(none, CosignError::NoPublicKeys { .. }), "{none}");
    assert!(none.to_string().contains("'.pub'"), "{none}");

    let garbage = "-----BEGIN PUBLIC KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PUBLIC KEY-----\n";
    for (value, problem) in [
        ("plain text", "no PEM 'PUBLIC KEY' block"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA", "not terminated"),
        (garbage, "unsupported key type"),
    ] {
        let error = TrustedKeys::from_secret(&secret(&[("ok.pub", &public), ("bad.pub", value)]))
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("key 'bad.pub' of secret 'cosign-keys'"),
            "{error}"
        );
        assert!(error.contains(problem), "{error}");
        assert!(!error.contains("c2VjcmV0LWJ5dGVz"), "{error}");
    }
}

#[test]
fn the_signature_tag_names_the_digest() {
    let hex = "a".repeat(64);
    assert_eq!(
        signature_tag(&format!("sha256:{hex}")).unwrap(),
        format!("sha256-{hex}.sig")
    );
    for digest in [
        "sha512:aa",
        "sha256:zz",
        "latest",
        &format!("sha256:{hex}0"),
    ] {
        assert!(signature_tag(digest).is_err(), "{digest}");
    }
}

#[test]
fn the_payload_names_the_signed_digest() {
    assert_eq!(signed_digest(&payload(DIGEST)).as_deref(), Some(DIGEST));
    assert_eq!(signed_digest(b"{\"critical\":{}}"), None);
    assert_eq!(signed_digest(b"not json"), None);
}

#[test]
fn signature_layers_are_simple_signing_layers_with_the_annotation() {
    let layer = |media_type: &str, signature: Option<&str>| Descriptor {
        media_type: media_type.to_owned(),
        digest: format!("sha256:{}", "1".repeat(64)),
        size: 10,
        annotations: signature
            .map(|s| BTreeMap::from([(SIGNATURE_ANNOTATION.to_owned(), s.to_owned())]))
            .unwrap_or_default(),
    };
    let mut layers = vec![
        layer(SIMPLE_SIGNING_MEDIA_TYPE, Some("c2ln")),
        layer("application/vnd.oci.image.layer.v1.tar+gzip", Some("eA==")),
        layer(SIMPLE_SIGNING_MEDIA_TYPE, None),
    ];
    let manifest = ImageManifest {
        layers: layers.clone(),
        ..ImageManifest::default()
    };
    let found = signature_layers(&manifest);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1, "c2ln");

    layers.extend((0..100).map(|_| layer(SIMPLE_SIGNING_MEDIA_TYPE, Some("c2ln"))));
    let many = ImageManifest {
        layers,
        ..ImageManifest::default()
    };
    assert_eq!(signature_layers(&many).len(), MAX_SIGNATURES);
}

#[test]
fn an_ed25519ph_signature_as_cosign_makes_it_verifies() {
    let signing = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(signing.verifying_key().as_bytes());
    let keys =
        TrustedKeys::from_secret(&secret(&[("ed25519.pub", &pem("PUBLIC KEY", &der))])).unwrap();
    let message = payload(DIGEST);
    let prehashed = signing
        .sign_prehashed(Sha512::new().chain_update(&message), None)
        .unwrap();
    let signature = Signature {
        payload: message.clone(),
        signature: base64::engine::general_purpose::STANDARD.encode(prehashed.to_bytes()),
    };
    assert_eq!(
        keys.verify("r", DIGEST, &[signature]).unwrap(),
        "ed25519.pub"
    );
    let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32])
        .sign_prehashed(Sha512::new().chain_update(&message), None)
        .unwrap();
    let foreign = Signature {
        payload: message,
        signature: base64::engine::general_purpose::STANDARD.encode(other.to_bytes()),
    };
    assert!(keys.verify("r", DIGEST, &[foreign]).is_err());
}
