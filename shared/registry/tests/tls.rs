//! HTTPS registries: a test CA from `certSecretRef`'s `ca.crt`, and client certificates (mTLS)
//! against the real distribution registry's `http.tls.clientcas`.

mod common;

use common::{plain_access, push_tags, semver_tags, sorted};
use sluice_e2e::registry::Registry;
use sluice_e2e::tls::TestCa;
use sluice_registry::{RegistryAccess, RegistryError};

fn tls_access(ca: Option<&str>, identity: Option<String>) -> RegistryAccess {
    RegistryAccess {
        ca: ca.map(|pem| pem.as_bytes().to_vec()),
        client_identity: identity.map(String::into_bytes),
        insecure: false,
        ..plain_access()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_test_ca() -> anyhow::Result<()> {
    let ca = TestCa::new("sluice-registry-test-ca")?;
    let registry = Registry::builder().https(&ca)?.start()?;
    let tags = semver_tags(2);
    let digest = push_tags(&registry.client()?, "secure/app", &tags).await?;
    let image = format!("{}/secure/app", registry.host());
    let trusted = tls_access(Some(&ca.cert_pem()), None);

    let listed = sluice_registry::list_tags(&image, &trusted).await?;
    assert_eq!(sorted(listed), sorted(tags));
    assert_eq!(
        sluice_registry::manifest_digest(&image, "v1.0.1", &trusted).await?,
        digest
    );

    let error = sluice_registry::list_tags(&image, &tls_access(None, None))
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::Tls { .. }), "{error}");
    assert!(error.to_string().contains("certSecretRef"), "{error}");

    let bad_ca = tls_access(Some("not a certificate"), None);
    let error = sluice_registry::list_tags(&image, &bad_ca)
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::Config(_)), "{error}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_required_by_the_registry() -> anyhow::Result<()> {
    let ca = TestCa::new("sluice-registry-mtls-ca")?;
    let registry = Registry::builder()
        .https(&ca)?
        .require_client_cert(&ca)?
        .start()?;
    let tags = semver_tags(2);
    push_tags(&registry.client()?, "mtls/app", &tags).await?;
    let image = format!("{}/mtls/app", registry.host());
    let client = ca.client_cert("image-reflector", &[])?;
    let identity = format!("{}{}", client.cert_pem, client.key_pem);

    let with_cert = tls_access(Some(&ca.cert_pem()), Some(identity));
    let listed = sluice_registry::list_tags(&image, &with_cert).await?;
    assert_eq!(sorted(listed), sorted(tags));

    let without_cert = tls_access(Some(&ca.cert_pem()), None);
    let error = sluice_registry::list_tags(&image, &without_cert)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            RegistryError::Tls { .. } | RegistryError::Unreachable { .. }
        ),
        "{error}"
    );
    eprintln!("without a client certificate: {error}");
    Ok(())
}
