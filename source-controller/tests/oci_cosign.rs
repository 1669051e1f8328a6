//! OCIRepository `spec.verify` against artifacts signed by the real cosign CLI (v2.6, key pairs,
//! no transparency log) in a real distribution registry, and next to Flux's source-controller.

mod common;

use anyhow::{Context, Result};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{self, KeySize};
use aws_lc_rs::signature::{ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use common::{Harness, condition, has, oci_conditions};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use sluice_api::source::OCIRepository;
use sluice_e2e::ControlPlane;
use sluice_e2e::cosign::Cosign;
use sluice_e2e::flux::{FluxController, FluxProcess};
use sluice_e2e::poll::wait_object;
use sluice_e2e::registry::{Artifact, Registry};

fn content(version: &str) -> Result<Artifact> {
    Ok(Artifact::from_files(
        [("deploy/app.yaml", format!("version: {version}\n"))],
        "https://github.com/example/app",
        &format!("main@sha1:{}", "c".repeat(40)),
    )?)
}

fn source_verified(object: &OCIRepository) -> Option<&Condition> {
    condition(oci_conditions(object), "SourceVerified")
}

fn verified_ready(object: &OCIRepository) -> bool {
    has(oci_conditions(object), "Ready", "True", "Succeeded")
        && has(
            oci_conditions(object),
            "SourceVerified",
            "True",
            "Succeeded",
        )
        && object.status.as_ref().and_then(|s| s.observed_generation) == object.metadata.generation
}

fn verification_failed(object: &OCIRepository) -> bool {
    has(
        oci_conditions(object),
        "Ready",
        "False",
        "VerificationError",
    ) && has(
        oci_conditions(object),
        "SourceVerified",
        "False",
        "VerificationError",
    )
}

fn revision_of(object: &OCIRepository) -> Option<String> {
    object
        .status
        .as_ref()
        .and_then(|s| s.artifact.as_ref())
        .map(|a| a.revision.clone())
}

/// Files in the object's storage directory (each a stored artifact).
fn stored_files(harness: &Harness, name: &str) -> usize {
    let dir = harness
        .storage_root()
        .join("ocirepository")
        .join(&harness.namespace)
        .join(name);
    std::fs::read_dir(dir).map_or(0, |entries| entries.count())
}

fn verify_spec(registry: &Registry, repo: &str, secret: &str) -> serde_json::Value {
    json!({"url": registry.oci_url(repo), "interval": "1h", "insecure": true, "ref": {"tag": "v1"},
           "verify": {"provider": "cosign", "secretRef": {"name": secret}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosign_signed_artifacts_verify_and_unsigned_or_foreign_ones_do_not() -> Result<()> {
    let harness = Harness::start("oci-cosign").await?;
    let registry = Registry::builder().start()?;
    let client = registry.client()?;
    let cosign = Cosign::new()?;
    let trusted = cosign.generate_key_pair("trusted").await?;
    let other = cosign.generate_key_pair("other").await?;
    harness
        .create_secret("trusted", &[("cosign.pub", &trusted), ("README", "keys")])
        .await?;
    harness
        .create_secret("other", &[("other.pub", &other)])
        .await?;
    let signed = client
        .push_artifact("apps/signed", "v1", &content("signed")?)
        .await?;
    let unsigned = client
        .push_artifact("apps/unsigned", "v1", &content("unsigned")?)
        .await?;
    let signed_ref = format!("{}/apps/signed@{}", registry.host(), signed.manifest_digest);
    cosign.sign("trusted", &signed_ref).await?;

    harness
        .create_oci("signed", verify_spec(&registry, "apps/signed", "trusted"))
        .await?;
    harness
        .create_oci(
            "unsigned",
            verify_spec(&registry, "apps/unsigned", "trusted"),
        )
        .await?;
    harness
        .create_oci("wrong-key", verify_spec(&registry, "apps/signed", "other"))
        .await?;

    let ready = harness
        .wait_oci("signed", "Ready and verified", verified_ready)
        .await?;
    let revision = format!("v1@{}", signed.manifest_digest);
    assert_eq!(revision_of(&ready).as_deref(), Some(revision.as_str()));
    assert_eq!(
        source_verified(&ready).map(|c| c.message.as_str()),
        Some(format!("verified signature of revision {revision}").as_str())
    );

    let failed = harness
        .wait_oci("unsigned", "VerificationError", verification_failed)
        .await?;
    let message = &source_verified(&failed).context("SourceVerified")?.message;
    let unsigned_ref = format!(
        "{}/apps/unsigned@{}",
        registry.host(),
        unsigned.manifest_digest
    );
    assert!(
        message.starts_with(&format!(
            "failed to verify the signature using provider 'cosign': no matching signatures were found for '{unsigned_ref}'"
        )),
        "{message}"
    );
    assert!(message.contains("no cosign signature"), "{message}");
    assert_eq!(
        revision_of(&failed),
        None,
        "no artifact for an unsigned one"
    );
    assert_eq!(stored_files(&harness, "unsigned"), 0);

    let foreign = harness
        .wait_oci("wrong-key", "VerificationError", verification_failed)
        .await?;
    let message = &source_verified(&foreign).context("SourceVerified")?.message;
    assert!(
        message.contains("not made by the trusted key(s) [\"other.pub\"]"),
        "{message}"
    );
    assert!(message.contains("secret 'other'"), "{message}");
    assert_eq!(revision_of(&foreign), None);
    let status = serde_json::to_string(&foreign.status)?;
    let key_body = other.lines().nth(1).context("PEM body")?;
    assert!(!status.contains(key_body), "no key material in the status");

    // Dropping spec.verify drops the verification and lets the artifact through.
    harness
        .oci_api()
        .patch(
            "wrong-key",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"verify": null}})),
        )
        .await?;
    let unverified = harness
        .wait_oci("wrong-key", "Ready without verify", |o| {
            has(oci_conditions(o), "Ready", "True", "Succeeded")
                && o.status.as_ref().and_then(|s| s.observed_generation) == o.metadata.generation
        })
        .await?;
    assert!(source_verified(&unverified).is_none());
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_new_revision_keeps_the_last_verified_artifact() -> Result<()> {
    let harness = Harness::start("oci-cosign-keep").await?;
    let registry = Registry::builder().start()?;
    let client = registry.client()?;
    let cosign = Cosign::new()?;
    let public = cosign.generate_key_pair("cosign").await?;
    harness
        .create_secret("keys", &[("cosign.pub", &public)])
        .await?;
    let first = client
        .push_artifact("apps/app", "v1", &content("1")?)
        .await?;
    let reference = |digest: &str| format!("{}/apps/app@{digest}", registry.host());
    cosign
        .sign("cosign", &reference(&first.manifest_digest))
        .await?;
    harness
        .create_oci("app", verify_spec(&registry, "apps/app", "keys"))
        .await?;
    let ready = harness.wait_oci("app", "verified", verified_ready).await?;
    let good = format!("v1@{}", first.manifest_digest);
    assert_eq!(revision_of(&ready).as_deref(), Some(good.as_str()));

    let second = client
        .push_artifact("apps/app", "v1", &content("2")?)
        .await?;
    harness.request_oci_reconcile("app", "unsigned").await?;
    let failed = harness
        .wait_oci("app", "VerificationError", verification_failed)
        .await?;
    assert_eq!(
        revision_of(&failed).as_deref(),
        Some(good.as_str()),
        "the verified artifact stays"
    );
    assert_eq!(stored_files(&harness, "app"), 1, "nothing new is stored");

    cosign
        .sign("cosign", &reference(&second.manifest_digest))
        .await?;
    harness.request_oci_reconcile("app", "signed").await?;
    let recovered = harness
        .wait_oci("app", "second revision verified", |o| {
            verified_ready(o) && revision_of(o) == Some(format!("v1@{}", second.manifest_digest))
        })
        .await?;
    assert!(
        source_verified(&recovered).is_some_and(|c| c.message.ends_with(&second.manifest_digest))
    );
    harness.stop().await;
    Ok(())
}

/// cosign's signature tag for a manifest digest.
fn sig_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_copied_to_another_artifact_does_not_verify_it() -> Result<()> {
    let harness = Harness::start("oci-cosign-copy").await?;
    let registry = Registry::builder().start()?;
    let client = registry.client()?;
    let cosign = Cosign::new()?;
    let public = cosign.generate_key_pair("cosign").await?;
    harness
        .create_secret("keys", &[("cosign.pub", &public)])
        .await?;
    let signed = client
        .push_artifact("apps/app", "v0", &content("signed")?)
        .await?;
    let reference = format!("{}/apps/app@{}", registry.host(), signed.manifest_digest);
    cosign.sign("cosign", &reference).await?;
    let other = client
        .push_artifact("apps/app", "v1", &content("tampered")?)
        .await?;
    let signatures = client
        .get_manifest("apps/app", &sig_tag(&signed.manifest_digest))
        .await?;
    client
        .put_manifest(
            "apps/app",
            &sig_tag(&other.manifest_digest),
            &signatures.media_type,
            &signatures.bytes,
        )
        .await?;
    harness
        .create_oci("copied", verify_spec(&registry, "apps/app", "keys"))
        .await?;
    let failed = harness
        .wait_oci("copied", "VerificationError", verification_failed)
        .await?;
    let message = &source_verified(&failed).context("SourceVerified")?.message;
    assert!(
        message.contains("1 made by a trusted key for another digest"),
        "{message}"
    );
    assert_eq!(revision_of(&failed), None);
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_p384_rsa_and_ed25519_keys_verify() -> Result<()> {
    let harness = Harness::start("oci-cosign-keys").await?;
    let registry = Registry::builder().start()?;
    let cosign = Cosign::new()?;
    let rng = SystemRandom::new();
    let p384 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, &rng)?;
    let rsa_pair = rsa::KeyPair::generate(KeySize::Rsa2048)?;
    let rsa: Pkcs8V1Der = rsa_pair.as_der()?;
    let ed25519 = Ed25519KeyPair::generate()?.to_pkcs8v1()?;
    let keys = [
        ("p384", p384.as_ref().to_vec()),
        ("rsa", rsa.as_ref().to_vec()),
        ("ed25519", ed25519.as_ref().to_vec()),
    ];
    let pushed = registry
        .client()?
        .push_artifact("apps/app", "v1", &content("keys")?)
        .await?;
    let reference = format!("{}/apps/app@{}", registry.host(), pushed.manifest_digest);
    for (name, pkcs8) in &keys {
        let public = cosign.import_key_pair(name, pkcs8).await?;
        cosign.sign(name, &reference).await?;
        let pub_key = format!("{name}.pub");
        harness.create_secret(name, &[(&pub_key, &public)]).await?;
        harness
            .create_oci(name, verify_spec(&registry, "apps/app", name))
            .await?;
    }
    let mut failures = Vec::new();
    for (name, _) in &keys {
        if let Err(error) = harness.wait_oci(name, "verified", verified_ready).await {
            failures.push(format!("{name}: {error}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_and_notation_stall_naming_the_field() -> Result<()> {
    let harness = Harness::start("oci-cosign-stall").await?;
    let url = "oci://127.0.0.1:9/apps/app";
    harness
        .create_oci(
            "keyless",
            json!({"url": url, "interval": "1h", "insecure": true,
                   "verify": {"provider": "cosign", "matchOIDCIdentity": [{"issuer": ".*", "subject": ".*"}]}}),
        )
        .await?;
    harness
        .create_oci(
            "notation",
            json!({"url": url, "interval": "1h", "insecure": true,
                   "verify": {"provider": "notation", "secretRef": {"name": "trust"}}}),
        )
        .await?;
    for (name, field) in [
        ("keyless", "spec.verify.secretRef"),
        ("notation", "spec.verify.provider 'notation'"),
    ] {
        let stalled = harness
            .wait_oci(name, "Stalled", |o| {
                has(oci_conditions(o), "Stalled", "True", "VerifyNotSupported")
            })
            .await?;
        let verified = source_verified(&stalled).context("SourceVerified")?;
        assert_eq!(verified.status, "False");
        assert_eq!(verified.reason, "VerificationError");
        assert!(verified.message.contains(field), "{}", verified.message);
    }
    harness.stop().await;
    Ok(())
}

/// Creates OCIRepository `name` in `namespace` (one Flux's own controller watches).
async fn create_in(
    harness: &Harness,
    namespace: &str,
    name: &str,
    spec: serde_json::Value,
) -> Result<()> {
    let object: OCIRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
        "metadata": {"name": name}, "spec": spec,
    }))?;
    Api::<OCIRepository>::namespaced(harness.client.clone(), namespace)
        .create(&PostParams::default(), &object)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_to_flux_p256_signatures_verify_alike_and_cosign_p384_ed25519_ones_only_here()
-> Result<()> {
    let harness = Harness::start("oci-cosign-flux").await?;
    let registry = Registry::builder().start()?;
    let client = registry.client()?;
    let cosign = Cosign::new()?;
    let public = cosign.generate_key_pair("cosign").await?;
    let signed = client
        .push_artifact("apps/signed", "v1", &content("signed")?)
        .await?;
    client
        .push_artifact("apps/unsigned", "v1", &content("unsigned")?)
        .await?;
    let signed_ref = format!("{}/apps/signed@{}", registry.host(), signed.manifest_digest);
    cosign.sign("cosign", &signed_ref).await?;

    let plane = ControlPlane::shared().await?;
    let (namespace, flux) =
        FluxProcess::start_in_new_namespace(plane, FluxController::Source, "oci-cosign-flux")
            .await?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "keys"}, "stringData": {"cosign.pub": public},
    }))?;
    Api::<Secret>::namespaced(harness.client.clone(), &namespace)
        .create(&PostParams::default(), &secret)
        .await?;
    harness
        .create_secret("keys", &[("cosign.pub", &public)])
        .await?;
    for repo in ["signed", "unsigned"] {
        let spec = verify_spec(&registry, &format!("apps/{repo}"), "keys");
        create_in(&harness, &namespace, repo, spec.clone()).await?;
        harness.create_oci(repo, spec).await?;
    }

    let flux_api = Api::<OCIRepository>::namespaced(harness.client.clone(), &namespace);
    let flux_signed = wait_object(&flux_api, "signed", "verified by Flux", verified_ready)
        .await
        .with_context(|| flux.log_tail())?;
    let sluice_signed = harness
        .wait_oci("signed", "verified", verified_ready)
        .await?;
    assert_eq!(
        source_verified(&sluice_signed).map(|c| &c.message),
        source_verified(&flux_signed).map(|c| &c.message)
    );
    assert_eq!(revision_of(&sluice_signed), revision_of(&flux_signed));

    let flux_unsigned = wait_object(
        &flux_api,
        "unsigned",
        "refused by Flux",
        verification_failed,
    )
    .await
    .with_context(|| flux.log_tail())?;
    let sluice_unsigned = harness
        .wait_oci("unsigned", "VerificationError", verification_failed)
        .await?;
    let flux_message = &source_verified(&flux_unsigned)
        .context("Flux's SourceVerified")?
        .message;
    let sluice_message = &source_verified(&sluice_unsigned)
        .context("SourceVerified")?
        .message;
    assert!(
        sluice_message.starts_with(flux_message.as_str()),
        "Flux: {flux_message}\nSluice: {sluice_message}"
    );
    assert_eq!(revision_of(&flux_unsigned), None);

    // cosign 2.6 signs P-384 keys with SHA-384 and Ed25519 keys with Ed25519ph; Flux loads every
    // key for SHA-256 or pure Ed25519 and refuses those signatures, Sluice verifies them.
    let rng = SystemRandom::new();
    let p384 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, &rng)?;
    let ed25519 = Ed25519KeyPair::generate()?.to_pkcs8v1()?;
    let keys = [("p384", p384.as_ref()), ("ed25519", ed25519.as_ref())];
    for (name, pkcs8) in keys {
        let public = cosign.import_key_pair(name, pkcs8).await?;
        cosign.sign(name, &signed_ref).await?;
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name}, "stringData": {format!("{name}.pub"): public},
        }))?;
        Api::<Secret>::namespaced(harness.client.clone(), &namespace)
            .create(&PostParams::default(), &secret)
            .await?;
        harness
            .create_secret(name, &[(&format!("{name}.pub"), &public)])
            .await?;
        let spec = verify_spec(&registry, "apps/signed", name);
        create_in(&harness, &namespace, name, spec.clone()).await?;
        harness.create_oci(name, spec).await?;
    }
    for (name, _) in keys {
        wait_object(&flux_api, name, "refused by Flux", verification_failed)
            .await
            .with_context(|| flux.log_tail())?;
        harness.wait_oci(name, "verified", verified_ready).await?;
    }
    flux.stop();
    harness.stop().await;
    Ok(())
}
