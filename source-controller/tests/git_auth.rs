//! Every GitRepository authentication strategy, with right and wrong credentials.

mod common;

use anyhow::Result;
use common::{Harness, condition, git_artifact, git_conditions, git_failed_with, git_ready, has};
use serde_json::json;
use sluice_e2e::git::GitServer;
use sluice_e2e::tls::TestCa;

fn seed(server: &GitServer) -> String {
    server.create_repo("app").unwrap();
    server
        .commit("app", "main", [("app.yaml", "kind: ConfigMap\n")], "first")
        .unwrap()
}

fn spec(url: &str, secret: &str) -> serde_json::Value {
    json!({"url": url, "interval": "1h", "ref": {"branch": "main"}, "timeout": "20s", "secretRef": {"name": secret}})
}

/// The Ready message and every event of `name` must not contain `secret`.
async fn assert_not_leaked(harness: &Harness, name: &str, secret: &str) -> Result<()> {
    let object = harness.git_api().get(name).await?;
    let text = serde_json::to_string(&object.status)?;
    assert!(!text.contains(secret), "status leaks the secret: {text}");
    let events: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(harness.client.clone(), &harness.namespace);
    for event in events.list(&Default::default()).await?.items {
        let note = event.note.unwrap_or_default();
        assert!(!note.contains(secret), "event leaks the secret: {note}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_right_and_wrong() -> Result<()> {
    let harness = Harness::start("git-basic").await?;
    let server = GitServer::builder()
        .basic_auth("flux", "s3cret-pw")
        .start()?;
    let sha = seed(&server);
    harness
        .create_secret("good", &[("username", "flux"), ("password", "s3cret-pw")])
        .await?;
    harness
        .create_secret("bad", &[("username", "flux"), ("password", "wrong-pw-123")])
        .await?;
    harness
        .create_git("good", spec(&server.http_url("app"), "good"))
        .await?;
    harness
        .create_git("bad", spec(&server.http_url("app"), "bad"))
        .await?;
    harness
        .create_git("missing", spec(&server.http_url("app"), "absent"))
        .await?;
    let good = harness.wait_git("good", "Ready", git_ready).await?;
    assert_eq!(git_artifact(&good)?.revision, format!("main@sha1:{sha}"));
    let bad = harness
        .wait_git(
            "bad",
            "AuthenticationFailed",
            git_failed_with("AuthenticationFailed"),
        )
        .await?;
    assert!(has(
        git_conditions(&bad),
        "FetchFailed",
        "True",
        "AuthenticationFailed"
    ));
    let missing = harness
        .wait_git(
            "missing",
            "AuthenticationFailed",
            git_failed_with("AuthenticationFailed"),
        )
        .await?;
    let message = &condition(git_conditions(&missing), "Ready")
        .unwrap()
        .message;
    assert!(
        message.contains("secret") && message.contains("absent") && message.contains("not found"),
        "{message}"
    );
    assert_not_leaked(&harness, "bad", "wrong-pw-123").await?;
    assert_not_leaked(&harness, "good", "s3cret-pw").await?;
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_right_and_wrong() -> Result<()> {
    let harness = Harness::start("git-bearer").await?;
    let server = GitServer::builder().bearer_token("tok-12345").start()?;
    seed(&server);
    harness
        .create_secret("good", &[("bearerToken", "tok-12345")])
        .await?;
    harness
        .create_secret("bad", &[("bearerToken", "tok-wrong")])
        .await?;
    harness
        .create_git("good", spec(&server.http_url("app"), "good"))
        .await?;
    harness
        .create_git("bad", spec(&server.http_url("app"), "bad"))
        .await?;
    harness.wait_git("good", "Ready", git_ready).await?;
    harness
        .wait_git(
            "bad",
            "AuthenticationFailed",
            git_failed_with("AuthenticationFailed"),
        )
        .await?;
    assert_not_leaked(&harness, "bad", "tok-wrong").await?;
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_ca_and_client_certificate() -> Result<()> {
    let harness = Harness::start("git-tls").await?;
    let ca = TestCa::new("git-ca")?;
    let server = GitServer::builder()
        .https(&ca)?
        .require_client_cert()
        .start()?;
    seed(&server);
    let url = server.https_url("app").expect("https enabled");
    let client = ca.client_cert("flux", &[])?;
    let ca_pem = ca.cert_pem();
    harness
        .create_secret(
            "mtls",
            &[
                ("ca.crt", &ca_pem),
                ("tls.crt", &client.cert_pem),
                ("tls.key", &client.key_pem),
            ],
        )
        .await?;
    harness
        .create_secret("ca-only", &[("ca.crt", &ca_pem)])
        .await?;
    let other_ca = TestCa::new("other")?.cert_pem();
    harness
        .create_secret("wrong-ca", &[("ca.crt", &other_ca)])
        .await?;
    harness.create_git("mtls", spec(&url, "mtls")).await?;
    harness
        .create_git("no-client-cert", spec(&url, "ca-only"))
        .await?;
    harness
        .create_git("wrong-ca", spec(&url, "wrong-ca"))
        .await?;
    harness.wait_git("mtls", "Ready", git_ready).await?;
    let no_cert = harness
        .wait_git("no-client-cert", "a failure", |o| {
            has(git_conditions(o), "Ready", "False", "AuthenticationFailed")
                || has(git_conditions(o), "Ready", "False", "GitOperationFailed")
        })
        .await?;
    assert!(git_artifact(&no_cert).is_err());
    harness
        .wait_git(
            "wrong-ca",
            "AuthenticationFailed",
            git_failed_with("AuthenticationFailed"),
        )
        .await?;
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_identity_known_hosts_and_encrypted_key() -> Result<()> {
    let harness = Harness::start("git-ssh").await?;
    let server = GitServer::builder().ssh().start()?;
    seed(&server);
    let ssh = server.ssh().expect("ssh enabled");
    let url = server.ssh_url("app").expect("ssh url");
    let identity = ssh.client_private_key()?;
    let known_hosts = ssh.known_hosts().to_owned();
    harness
        .create_secret(
            "ssh",
            &[("identity", &identity), ("known_hosts", &known_hosts)],
        )
        .await?;

    let keys = tempfile::tempdir()?;
    let encrypted = keys.path().join("encrypted");
    std::fs::copy(ssh.client_key_path(), &encrypted)?;
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "", "-N", "key-pass-77", "-f"])
        .arg(&encrypted)
        .status()?;
    assert!(status.success());
    let encrypted_key = std::fs::read_to_string(&encrypted)?;
    harness
        .create_secret(
            "ssh-pass",
            &[
                ("identity", &encrypted_key),
                ("known_hosts", &known_hosts),
                ("password", "key-pass-77"),
            ],
        )
        .await?;
    harness
        .create_secret(
            "ssh-nopass",
            &[("identity", &encrypted_key), ("known_hosts", &known_hosts)],
        )
        .await?;
    let stranger = keys.path().join("stranger");
    sluice_e2e::git::generate_ssh_key(&stranger)?;
    let stranger_key = std::fs::read_to_string(&stranger)?;
    harness
        .create_secret(
            "ssh-wrong",
            &[("identity", &stranger_key), ("known_hosts", &known_hosts)],
        )
        .await?;
    let other_host = "[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n";
    harness
        .create_secret(
            "ssh-unknown-host",
            &[("identity", &identity), ("known_hosts", other_host)],
        )
        .await?;

    for name in [
        "ssh",
        "ssh-pass",
        "ssh-nopass",
        "ssh-wrong",
        "ssh-unknown-host",
    ] {
        harness.create_git(name, spec(&url, name)).await?;
    }
    harness.wait_git("ssh", "Ready", git_ready).await?;
    harness.wait_git("ssh-pass", "Ready", git_ready).await?;
    for name in ["ssh-nopass", "ssh-wrong", "ssh-unknown-host"] {
        harness
            .wait_git(
                name,
                "AuthenticationFailed",
                git_failed_with("AuthenticationFailed"),
            )
            .await?;
    }
    assert_not_leaked(&harness, "ssh-pass", "key-pass-77").await?;
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_secret_is_used_for_http() -> Result<()> {
    let harness = Harness::start("git-proxy").await?;
    let server = GitServer::builder().start()?;
    seed(&server);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = closed.local_addr()?.port();
    drop(closed);
    harness
        .create_secret(
            "proxy",
            &[
                ("address", &format!("http://127.0.0.1:{port}")),
                ("username", "u"),
                ("password", "proxy-pw-9"),
            ],
        )
        .await?;
    harness
        .create_git(
            "via-proxy",
            json!({"url": server.http_url("app"), "interval": "1h", "ref": {"branch": "main"}, "timeout": "10s", "proxySecretRef": {"name": "proxy"}}),
        )
        .await?;
    let failed = harness
        .wait_git(
            "via-proxy",
            "GitOperationFailed",
            git_failed_with("GitOperationFailed"),
        )
        .await?;
    let message = &condition(git_conditions(&failed), "Ready").unwrap().message;
    assert!(
        message.contains(&port.to_string()),
        "the error names the proxy: {message}"
    );
    assert_eq!(
        server.upload_pack_posts(),
        0,
        "nothing reached the server directly"
    );
    assert_not_leaked(&harness, "via-proxy", "proxy-pw-9").await?;
    harness.stop().await;
    Ok(())
}
