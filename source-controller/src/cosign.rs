//! cosign signature verification with public keys, as Flux's OCIRepository `spec.verify` (provider
//! `cosign`, `secretRef`) does it for cosign's tag scheme: the signatures of manifest
//! `sha256:<hex>` are the layers of the manifest tagged `sha256-<hex>.sig` in the same repository,
//! each a simple-signing JSON payload naming the digest, signed in a layer annotation.
//!
//! Keys are checked with aws-lc-rs (rustls' provider, already in the tree): ECDSA (P-256,
//! P-384, P-521) with SHA-256 or the curve's hash, RSA PKCS#1 v1.5 with SHA-256, Ed25519; and
//! Ed25519ph (cosign's default for Ed25519 keys) with ed25519-dalek.

use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use ed25519_dalek::{Digest as _, Sha512, VerifyingKey};
use serde::Deserialize;
use sluice_registry::{Descriptor, ImageManifest};
use sluice_secrets::SecretData;

/// Media type of a layer holding a simple-signing payload.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer annotation holding the base64 signature of the payload.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Secret keys with this suffix hold trusted public keys (PEM).
pub const PUBLIC_KEY_SUFFIX: &str = ".pub";
/// Largest payload read; cosign's are a few hundred bytes.
pub const MAX_PAYLOAD_BYTES: u64 = 64 * 1024;
/// Most signature layers read for one artifact.
pub const MAX_SIGNATURES: usize = 32;

/// Per key type, the algorithms its signatures are checked with: SHA-256 for every type, as
/// Flux's verifier loads keys, and the curve's own hash, which cosign 2.6 signs P-384 and P-521
/// keys with.
const KEY_TYPES: [&[&'static dyn VerificationAlgorithm]; 5] = [
    &[&signature::ECDSA_P256_SHA256_ASN1],
    &[
        &signature::ECDSA_P384_SHA256_ASN1,
        &signature::ECDSA_P384_SHA384_ASN1,
    ],
    &[
        &signature::ECDSA_P521_SHA256_ASN1,
        &signature::ECDSA_P521_SHA512_ASN1,
    ],
    &[&signature::RSA_PKCS1_2048_8192_SHA256],
    &[&signature::ED25519],
];

/// Verification could not succeed; messages name keys and tags, never key or signature bytes.
#[derive(Debug, thiserror::Error)]
pub enum CosignError {
    #[error(
        "secret '{secret}' has no key ending in '.pub'; add the cosign public key (e.g. cosign.pub) to it"
    )]
    NoPublicKeys { secret: String },
    #[error(
        "key '{key}' of secret '{secret}' is not a usable cosign public key ({problem}); store the PEM \
         'PUBLIC KEY' that cosign generate-key-pair wrote (ECDSA P-256/P-384/P-521, RSA 2048-8192 bits or Ed25519)"
    )]
    InvalidPublicKey {
        secret: String,
        key: String,
        problem: &'static str,
    },
    #[error(
        "'{digest}' is not a sha256 manifest digest; cosign signatures are looked up by sha256"
    )]
    UnsupportedDigest { digest: String },
    #[error(
        "no matching signatures were found for '{reference}': {detail}; sign it with \
         `cosign sign --key <key> {reference}` using a key whose public half is in secret '{secret}'"
    )]
    NoMatch {
        reference: String,
        secret: String,
        detail: String,
    },
}

/// One signature as read from the registry: the payload bytes and the base64 signature.
#[derive(Debug, Clone)]
pub struct Signature {
    pub payload: Vec<u8>,
    pub signature: String,
}

/// DER prefix of an Ed25519 SubjectPublicKeyInfo, followed by the 32-byte key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// One public key, with every signature scheme accepted for its type.
struct PublicKey {
    schemes: Vec<ParsedPublicKey>,
    /// Ed25519 keys also verify Ed25519ph (SHA-512 pre-hashed, empty context).
    prehashed: Option<VerifyingKey>,
}

impl PublicKey {
    fn verifies(&self, payload: &[u8], signature: &[u8]) -> bool {
        self.schemes
            .iter()
            .any(|key| key.verify_sig(payload, signature).is_ok())
            || self.prehashed.as_ref().is_some_and(|key| {
                ed25519_dalek::Signature::from_slice(signature).is_ok_and(|signature| {
                    key.verify_prehashed(Sha512::new().chain_update(payload), None, &signature)
                        .is_ok()
                })
            })
    }
}

/// The trusted keys of a `verify.secretRef` Secret, by key name.
pub struct TrustedKeys {
    secret: String,
    keys: Vec<(String, PublicKey)>,
}

impl TrustedKeys {
    /// Every key ending in `.pub`; one that is not a supported PEM public key fails, as in Flux.
    pub fn from_secret(secret: &SecretData) -> Result<Self, CosignError> {
        let mut keys = Vec::new();
        for (name, value) in secret.entries() {
            if !name.ends_with(PUBLIC_KEY_SUFFIX) {
                continue;
            }
            let invalid = |problem| CosignError::InvalidPublicKey {
                secret: secret.name.clone(),
                key: name.to_owned(),
                problem,
            };
            let der = pem_public_key(value).map_err(invalid)?;
            keys.push((name.to_owned(), parse_public_key(&der).map_err(invalid)?));
        }
        if keys.is_empty() {
            return Err(CosignError::NoPublicKeys {
                secret: secret.name.clone(),
            });
        }
        Ok(Self {
            secret: secret.name.clone(),
            keys,
        })
    }

    /// The name of the first key whose signature of `payload` is `signature`.
    fn signer(&self, payload: &[u8], signature: &[u8]) -> Option<&str> {
        self.keys
            .iter()
            .find(|(_, key)| key.verifies(payload, signature))
            .map(|(name, _)| name.as_str())
    }

    /// The key that signed a payload naming `digest`, else why none did.
    pub fn verify(
        &self,
        reference: &str,
        digest: &str,
        signatures: &[Signature],
    ) -> Result<&str, CosignError> {
        let mut other_digest = 0;
        let mut unverified = 0;
        for candidate in signatures {
            let Some(bytes) = decode_signature(&candidate.signature) else {
                unverified += 1;
                continue;
            };
            let Some(key) = self.signer(&candidate.payload, &bytes) else {
                unverified += 1;
                continue;
            };
            if signed_digest(&candidate.payload).as_deref() == Some(digest) {
                return Ok(key);
            }
            other_digest += 1;
        }
        Err(CosignError::NoMatch {
            reference: reference.to_owned(),
            secret: self.secret.clone(),
            detail: mismatch_detail(signatures.len(), unverified, other_digest, &self.keys),
        })
    }
}

/// Why no signature matched, in counts.
fn mismatch_detail(
    total: usize,
    unverified: usize,
    other_digest: usize,
    keys: &[(String, PublicKey)],
) -> String {
    if total == 0 {
        return "the artifact has no cosign signature (no signature manifest tagged \
                'sha256-<hex>.sig'; Sigstore bundles from cosign sign --new-bundle-format are \
                not read)"
            .to_owned();
    }
    let names: Vec<&str> = keys.iter().map(|(name, _)| name.as_str()).collect();
    let mut detail = format!("{total} signature(s) checked");
    if unverified > 0 {
        detail.push_str(&format!(
            ", {unverified} not made by the trusted key(s) {names:?}"
        ));
    }
    if other_digest > 0 {
        detail.push_str(&format!(
            ", {other_digest} made by a trusted key for another digest"
        ));
    }
    detail
}

/// The tag cosign stores the signatures of manifest `digest` under: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &str) -> Result<String, CosignError> {
    digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|hex| format!("sha256-{hex}.sig"))
        .ok_or_else(|| CosignError::UnsupportedDigest {
            digest: digest.to_owned(),
        })
}

/// The simple-signing layers of a signature manifest with their base64 signatures, at most
/// [`MAX_SIGNATURES`]; layers of other media types or without the annotation are skipped.
pub fn signature_layers(manifest: &ImageManifest) -> Vec<(&Descriptor, &str)> {
    manifest
        .layers
        .iter()
        .filter(|layer| layer.media_type == SIMPLE_SIGNING_MEDIA_TYPE)
        .filter_map(|layer| {
            let signature = layer.annotations.get(SIGNATURE_ANNOTATION)?;
            Some((layer, signature.as_str()))
        })
        .take(MAX_SIGNATURES)
        .collect()
}

#[derive(Deserialize)]
struct SimpleSigning {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    image: SignedImage,
}

#[derive(Deserialize)]
struct SignedImage {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// The manifest digest a simple-signing payload names (`critical.image.docker-manifest-digest`).
pub fn signed_digest(payload: &[u8]) -> Option<String> {
    serde_json::from_slice::<SimpleSigning>(payload)
        .ok()
        .map(|signing| signing.critical.image.docker_manifest_digest)
}

fn decode_signature(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
}

/// The DER of the first `PUBLIC KEY` (or `RSA PUBLIC KEY`) PEM block.
fn pem_public_key(pem: &[u8]) -> Result<Vec<u8>, &'static str> {
    let text = std::str::from_utf8(pem).map_err(|_| "not PEM text")?;
    let (label, rest) = ["PUBLIC KEY", "RSA PUBLIC KEY"]
        .iter()
        .find_map(|label| {
            let begin = format!("-----BEGIN {label}-----");
            text.split_once(&begin).map(|(_, rest)| (*label, rest))
        })
        .ok_or("no PEM 'PUBLIC KEY' block")?;
    let (body, _) = rest
        .split_once(&format!("-----END {label}-----"))
        .ok_or("the PEM block is not terminated")?;
    let base64: String = body.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(base64)
        .map_err(|_| "the PEM block is not valid base64")
}

/// The key parsed for each algorithm of its type (the first type whose algorithms accept it).
fn parse_public_key(der: &[u8]) -> Result<PublicKey, &'static str> {
    let schemes = KEY_TYPES
        .iter()
        .find_map(|algorithms| {
            algorithms
                .iter()
                .map(|algorithm| ParsedPublicKey::new(*algorithm, der))
                .collect::<Result<Vec<_>, _>>()
                .ok()
        })
        .ok_or("unsupported key type or size, or malformed key")?;
    let prehashed = der
        .strip_prefix(&ED25519_SPKI_PREFIX)
        .and_then(|raw| <[u8; 32]>::try_from(raw).ok())
        .and_then(|raw| VerifyingKey::from_bytes(&raw).ok());
    Ok(PublicKey { schemes, prehashed })
}

#[cfg(test)]
#[path = "cosign_tests.rs"]
mod tests;
