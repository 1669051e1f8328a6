//! Tag listing and digests against the real CNCF distribution registry over plain HTTP:
//! anonymous, basic auth (right and wrong credentials), pagination past 1,000 tags, errors.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::{plain_access, push_tags, semver_tags, sorted};
use sluice_e2e::registry::Registry;
use sluice_registry::{Limits, RegistryAccess, RegistryClient, RegistryError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_listing_digest_and_not_found() -> anyhow::Result<()> {
    let registry = Registry::builder().start()?;
    let tags: Vec<String> = ["v1.0.0", "v1.1.0", "latest"].map(String::from).into();
    let digest = push_tags(&registry.client()?, "team/app", &tags).await?;
    let image = format!("{}/team/app", registry.host());
    let access = plain_access();

    let listed = sluice_registry::list_tags(&image, &access).await?;
    assert_eq!(sorted(listed), sorted(tags));
    let resolved = sluice_registry::manifest_digest(&image, "v1.1.0", &access).await?;
    assert_eq!(resolved, digest);

    let missing_tag = sluice_registry::manifest_digest(&image, "v9", &access).await;
    assert!(
        matches!(missing_tag, Err(RegistryError::NotFound { .. })),
        "{missing_tag:?}"
    );
    let missing_repo = format!("{}/team/none", registry.host());
    let error = sluice_registry::list_tags(&missing_repo, &access)
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::NotFound { .. }), "{error}");
    assert!(error.to_string().contains("NAME_UNKNOWN"), "{error}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_right_and_wrong_credentials() -> anyhow::Result<()> {
    let password = "s3cret-Pa55word";
    let registry = Registry::builder().basic_auth("flux", password).start()?;
    let tags = semver_tags(3);
    push_tags(&registry.client()?, "app", &tags).await?;
    let image = format!("{}/app", registry.host());
    let client = RegistryClient::default();
    let with = |username: &str, password: &str| RegistryAccess {
        auth: Some((username.to_owned(), password.to_owned())),
        ..plain_access()
    };

    let listed = client.list_tags(&image, &with("flux", password)).await?;
    assert_eq!(sorted(listed), sorted(tags));

    let anonymous = client.list_tags(&image, &plain_access()).await.unwrap_err();
    assert!(anonymous.is_authentication_failure(), "{anonymous}");
    assert!(
        anonymous.to_string().contains("none were given"),
        "{anonymous}"
    );

    let wrong_password = "wr0ng-Pa55word";
    let wrong = client
        .list_tags(&image, &with("flux", wrong_password))
        .await
        .unwrap_err();
    assert!(wrong.is_authentication_failure(), "{wrong}");
    let message = format!("{wrong} {wrong:?}");
    let header = base64::engine::general_purpose::STANDARD.encode(format!("flux:{wrong_password}"));
    for secret in [wrong_password, password, header.as_str()] {
        assert!(!message.contains(secret), "leaked {secret}: {message}");
    }
    assert!(message.contains("spec.secretRef"), "{message}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_past_1000_tags_and_tag_limit() -> anyhow::Result<()> {
    let registry = Registry::builder().start()?;
    let tags = semver_tags(1_200);
    let started = Instant::now();
    push_tags(&registry.client()?, "many", &tags).await?;
    let pushed_in = started.elapsed();
    let image = format!("{}/many", registry.host());

    let started = Instant::now();
    let listed = sluice_registry::list_tags(&image, &plain_access()).await?;
    let listed_in = started.elapsed();
    eprintln!("1,200 tags: pushed in {pushed_in:?}, listed (2 pages of 1,000) in {listed_in:?}");
    assert_eq!(sorted(listed), sorted(tags.clone()));

    let small_pages = RegistryClient::new(Limits {
        page_size: 100,
        ..Limits::default()
    });
    let listed = small_pages.list_tags(&image, &plain_access()).await?;
    assert_eq!(sorted(listed), sorted(tags));

    let bounded = RegistryClient::new(Limits {
        max_tags: 1_000,
        ..Limits::default()
    });
    let error = bounded
        .list_tags(&image, &plain_access())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("more than 1000 tags"), "{error}");
    let few_pages = RegistryClient::new(Limits {
        page_size: 100,
        max_pages: 3,
        ..Limits::default()
    });
    let error = few_pages
        .list_tags(&image, &plain_access())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("more than 3 pages"), "{error}");
    Ok(())
}

#[tokio::test]
async fn unreachable_registry_fails_fast_with_a_clear_error() -> anyhow::Result<()> {
    let port = sluice_e2e::net::free_port()?;
    let image = format!("127.0.0.1:{port}/app");
    let started = Instant::now();
    let error = sluice_registry::list_tags(&image, &plain_access())
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(error, RegistryError::Unreachable { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!("127.0.0.1:{port} is unreachable")),
        "{message}"
    );
    assert!(message.to_lowercase().contains("connect"), "{message}");
    Ok(())
}

#[tokio::test]
async fn a_silent_registry_times_out() -> anyhow::Result<()> {
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let image = format!("{}/app", silent.local_addr()?);
    let access = RegistryAccess {
        timeout: Duration::from_millis(300),
        ..plain_access()
    };
    let started = Instant::now();
    let error = sluice_registry::list_tags(&image, &access)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(error, RegistryError::Timeout { .. }), "{error}");
    assert!(error.to_string().contains("spec.timeout"), "{error}");
    Ok(())
}
