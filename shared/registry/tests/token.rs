//! Bearer token auth end to end: the real distribution registry in `auth: token` mode verifies
//! JWTs from the e2e token service against the test CA; tokens are cached per credentials.

mod common;

use common::{plain_access, push_tags, semver_tags, sorted};
use sluice_e2e::registry::Registry;
use sluice_e2e::tls::TestCa;
use sluice_registry::{RegistryAccess, RegistryClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_flow_cache_and_bad_credentials() -> anyhow::Result<()> {
    let ca = TestCa::new("sluice-token-ca")?;
    let password = "t0ken-Pa55word";
    let registry = Registry::builder()
        .token_auth(&ca, "robot", password)?
        .start()?;
    let tags = semver_tags(3);
    let digest = push_tags(&registry.client()?, "org/app", &tags).await?;
    let issuer = registry
        .token_issuer()
        .ok_or_else(|| anyhow::anyhow!("no token issuer"))?;
    let image = format!("{}/org/app", registry.host());
    let client = RegistryClient::default();
    let with = |password: &str| RegistryAccess {
        auth: Some(("robot".to_owned(), password.to_owned())),
        ..plain_access()
    };

    let listed = client.list_tags(&image, &with(password)).await?;
    assert_eq!(sorted(listed), sorted(tags));
    assert_eq!(issuer.served(), 1);
    assert_eq!(
        client
            .manifest_digest(&image, "v1.0.2", &with(password))
            .await?,
        digest
    );
    client.list_tags(&image, &with(password)).await?;
    assert_eq!(issuer.served(), 1, "the cached token is reused");

    let wrong_password = "wr0ng-t0ken-Pa55word";
    let error = client
        .list_tags(&image, &with(wrong_password))
        .await
        .unwrap_err();
    assert!(error.is_authentication_failure(), "{error}");
    let message = format!("{error} {error:?}");
    assert!(message.contains("token service"), "{message}");
    let valid_token = issuer.mint("org/app", &["pull"])?;
    for secret in [wrong_password, password, valid_token.as_str()] {
        assert!(!message.contains(secret), "leaked {secret}: {message}");
    }

    let anonymous = client.list_tags(&image, &plain_access()).await.unwrap_err();
    assert!(anonymous.is_authentication_failure(), "{anonymous}");
    Ok(())
}
