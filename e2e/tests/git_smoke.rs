//! Smoke tests for the git test server, with the git CLI as the client.

use std::path::Path;

use sluice_e2e::git::{GitCli, GitServer, generate_ssh_key, url_with_credentials};
use sluice_e2e::tls::TestCa;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `len` pseudo-random bytes (xorshift), the same on every call.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A server with repo `app` holding one commit on `main`; returns the commit SHA.
fn seeded(server: &GitServer) -> String {
    server.create_repo("app").unwrap();
    server
        .commit(
            "app",
            "main",
            [
                ("deploy/app.yaml", "kind: ConfigMap\n"),
                ("README.md", "hello\n"),
            ],
            "first",
        )
        .unwrap()
}

#[test]
fn http_anonymous_clone_and_request_log() {
    let server = GitServer::builder().start().unwrap();
    let sha = seeded(&server);
    let cli = GitCli::new().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let work = dest.path().join("app");

    cli.clone_repo(&server.http_url("app"), &work).unwrap();
    assert_eq!(read(&work.join("deploy/app.yaml")), "kind: ConfigMap\n");
    assert_eq!(
        cli.run(Some(&work), ["rev-parse", "HEAD"]).unwrap().trim(),
        sha
    );
    assert_eq!(
        server.fetches(),
        1,
        "one clone fetches one pack: {:#?}",
        server.requests()
    );
    assert!(
        server.upload_pack_posts() >= 2,
        "v2 clone = ls-refs + fetch: {:#?}",
        server.requests()
    );
    assert!(
        server.requests().iter().all(|r| r.status == 200),
        "{:#?}",
        server.requests()
    );

    server.clear_requests();
    let refs = cli.ls_remote(&server.http_url("app")).unwrap();
    assert!(
        refs.iter()
            .any(|r| r.name == "refs/heads/main" && r.sha == sha),
        "{refs:?}"
    );
    assert_eq!(
        server.fetches(),
        0,
        "ls-remote fetches no pack: {:#?}",
        server.requests()
    );
    assert_eq!(
        server.upload_pack_posts(),
        1,
        "ls-remote is one ls-refs: {:#?}",
        server.requests()
    );

    std::fs::write(work.join("new.txt"), "x").unwrap();
    cli.commit_all(&work, "anonymous change").unwrap();
    let err = cli
        .push(&work, "HEAD:refs/heads/main")
        .expect_err("anonymous push must be refused");
    assert!(
        err.to_string().contains("403") || err.to_string().contains("denied"),
        "{err}"
    );
    assert_eq!(server.head("app", "main").unwrap(), sha);
}

#[test]
fn http_basic_auth_accepts_right_and_refuses_wrong_credentials() {
    let server = GitServer::builder()
        .basic_auth("flux", "s3cret")
        .start()
        .unwrap();
    seeded(&server);
    let cli = GitCli::new().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let url = server.http_url("app");

    cli.clone_repo(
        &url_with_credentials(&url, "flux", "s3cret"),
        &dest.path().join("ok"),
    )
    .unwrap();
    assert!(dest.path().join("ok/README.md").exists());

    let wrong = cli.clone_repo(
        &url_with_credentials(&url, "flux", "nope"),
        &dest.path().join("wrong"),
    );
    assert!(
        wrong
            .unwrap_err()
            .to_string()
            .contains("Authentication failed")
    );
    let none = cli.clone_repo(&url, &dest.path().join("none"));
    assert!(none.is_err(), "clone without credentials must fail");
    assert!(
        server.requests().iter().any(|r| r.status == 401),
        "{:#?}",
        server.requests()
    );
}

#[test]
fn http_bearer_token() {
    let server = GitServer::builder()
        .bearer_token("tok-123")
        .start()
        .unwrap();
    let sha = seeded(&server);
    let url = server.http_url("app");

    let right = GitCli::new()
        .unwrap()
        .with_config("http.extraHeader", "Authorization: Bearer tok-123");
    let refs = right.ls_remote(&url).unwrap();
    assert!(
        refs.iter()
            .any(|r| r.name == "refs/heads/main" && r.sha == sha),
        "{refs:?}"
    );

    let wrong = GitCli::new()
        .unwrap()
        .with_config("http.extraHeader", "Authorization: Bearer other");
    assert!(
        wrong.ls_remote(&url).is_err(),
        "a wrong token must be refused"
    );
    assert!(
        GitCli::new().unwrap().ls_remote(&url).is_err(),
        "no token must be refused"
    );
}

#[test]
fn http_push_then_clone_sees_the_new_commit() {
    let server = GitServer::builder()
        .basic_auth("flux", "s3cret")
        .start()
        .unwrap();
    seeded(&server);
    let url = url_with_credentials(&server.http_url("app"), "flux", "s3cret");
    let cli = GitCli::new().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let work = dest.path().join("work");

    cli.clone_repo(&url, &work).unwrap();
    std::fs::write(work.join("deploy/app.yaml"), "kind: Secret\n").unwrap();
    // Incompressible and above git's 1 MiB http.postBuffer, so the push is a chunked POST.
    std::fs::write(work.join("blob.bin"), noise(2 * 1024 * 1024)).unwrap();
    let pushed = cli.commit_all(&work, "change kind").unwrap();
    cli.push(&work, "HEAD:refs/heads/main").unwrap();
    assert_eq!(server.head("app", "main").unwrap(), pushed);

    let again = dest.path().join("again");
    cli.clone_repo(&url, &again).unwrap();
    assert_eq!(read(&again.join("deploy/app.yaml")), "kind: Secret\n");
    assert_eq!(
        std::fs::read(again.join("blob.bin")).unwrap(),
        noise(2 * 1024 * 1024)
    );
    assert_eq!(
        cli.run(Some(&again), ["rev-parse", "HEAD"]).unwrap().trim(),
        pushed
    );
}

#[test]
fn tags_branches_and_deletes_are_visible_via_ls_remote() {
    let server = GitServer::builder().start().unwrap();
    let first = seeded(&server);
    let light = server.tag("app", "v1.0.0", "main").unwrap();
    assert_eq!(light, first);
    let second = server
        .delete("app", "main", &["README.md"], "drop readme")
        .unwrap();
    let annotated = server
        .annotated_tag("app", "v2.0.0", "main", "release 2")
        .unwrap();
    assert_ne!(annotated, second, "an annotated tag is its own object");
    let feature = server
        .commit("app", "feature", [("extra.txt", "more")], "on a branch")
        .unwrap();

    let refs = GitCli::new()
        .unwrap()
        .ls_remote(&server.http_url("app"))
        .unwrap();
    let sha_of = |name: &str| refs.iter().find(|r| r.name == name).map(|r| r.sha.clone());
    assert_eq!(sha_of("refs/heads/main"), Some(second.clone()));
    assert_eq!(sha_of("refs/heads/feature"), Some(feature.clone()));
    assert_eq!(sha_of("refs/tags/v1.0.0"), Some(first));
    assert_eq!(sha_of("refs/tags/v2.0.0"), Some(annotated));
    assert_eq!(
        sha_of("refs/tags/v2.0.0^{}"),
        Some(second),
        "annotated tag peels to the commit"
    );

    let cli = GitCli::new().unwrap();
    let dest = tempfile::tempdir().unwrap();
    cli.clone_repo(&server.http_url("app"), dest.path())
        .unwrap();
    assert!(!dest.path().join("README.md").exists(), "deleted on main");
    cli.run(Some(dest.path()), ["checkout", "--quiet", "feature"])
        .unwrap();
    assert_eq!(read(&dest.path().join("extra.txt")), "more");
    assert!(
        dest.path().join("deploy/app.yaml").exists(),
        "feature branched from main"
    );
}

#[test]
fn https_needs_the_test_ca() {
    let ca = TestCa::new("sluice-e2e-git-ca").unwrap();
    let server = GitServer::builder().https(&ca).unwrap().start().unwrap();
    let sha = seeded(&server);
    let url = server.https_url("app").unwrap();
    let ca_file = server.ca_file().unwrap().to_str().unwrap().to_string();

    let trusted = GitCli::new()
        .unwrap()
        .with_config("http.sslCAInfo", &ca_file);
    let refs = trusted.ls_remote(&url).unwrap();
    assert!(refs.iter().any(|r| r.sha == sha), "{refs:?}");
    let dest = tempfile::tempdir().unwrap();
    trusted.clone_repo(&url, &dest.path().join("app")).unwrap();

    let err = GitCli::new()
        .unwrap()
        .ls_remote(&url)
        .expect_err("the test CA is not trusted by default");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
}

#[test]
fn https_mtls_requires_a_client_certificate() {
    let ca = TestCa::new("sluice-e2e-git-ca").unwrap();
    let server = GitServer::builder()
        .https(&ca)
        .unwrap()
        .require_client_cert()
        .start()
        .unwrap();
    let sha = seeded(&server);
    let url = server.https_url("app").unwrap();
    let ca_file = server.ca_file().unwrap().to_str().unwrap().to_string();
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = ca
        .client_cert("flux", &[])
        .unwrap()
        .write(certs.path(), "client")
        .unwrap();

    let with_cert = GitCli::new()
        .unwrap()
        .with_config("http.sslCAInfo", &ca_file)
        .with_config("http.sslCert", cert.to_str().unwrap())
        .with_config("http.sslKey", key.to_str().unwrap());
    let refs = with_cert.ls_remote(&url).unwrap();
    assert!(refs.iter().any(|r| r.sha == sha), "{refs:?}");

    let without = GitCli::new()
        .unwrap()
        .with_config("http.sslCAInfo", &ca_file);
    assert!(
        without.ls_remote(&url).is_err(),
        "no client certificate must be refused"
    );

    let other_ca = TestCa::new("someone-else").unwrap();
    let (cert, key) = other_ca
        .client_cert("flux", &[])
        .unwrap()
        .write(certs.path(), "foreign")
        .unwrap();
    let foreign = GitCli::new()
        .unwrap()
        .with_config("http.sslCAInfo", &ca_file)
        .with_config("http.sslCert", cert.to_str().unwrap())
        .with_config("http.sslKey", key.to_str().unwrap());
    assert!(
        foreign.ls_remote(&url).is_err(),
        "a certificate from another CA must be refused"
    );
}

#[test]
fn ssh_with_the_right_key_and_known_hosts() {
    let server = GitServer::builder().ssh().start().unwrap();
    let sha = seeded(&server);
    let ssh = server.ssh().unwrap();
    let url = server.ssh_url("app").unwrap();
    let port = ssh.port();
    assert!(
        ssh.known_hosts()
            .starts_with(&format!("[127.0.0.1]:{port} ssh-ed25519 ")),
        "{}",
        ssh.known_hosts()
    );
    assert!(
        ssh.client_private_key()
            .unwrap()
            .contains("OPENSSH PRIVATE KEY")
    );

    let cli = GitCli::new()
        .unwrap()
        .with_env("GIT_SSH_COMMAND", &ssh.git_ssh_command());
    let refs = cli.ls_remote(&url).unwrap();
    assert!(
        refs.iter()
            .any(|r| r.name == "refs/heads/main" && r.sha == sha),
        "{refs:?}"
    );
    let dest = tempfile::tempdir().unwrap();
    let work = dest.path().join("app");
    cli.clone_repo(&url, &work).unwrap();
    std::fs::write(work.join("over-ssh.txt"), "pushed").unwrap();
    let pushed = cli.commit_all(&work, "push over ssh").unwrap();
    cli.push(&work, "HEAD:refs/heads/main").unwrap();
    assert_eq!(server.head("app", "main").unwrap(), pushed);

    let wrong_key = dest.path().join("wrong_key");
    generate_ssh_key(&wrong_key).unwrap();
    let wrong = GitCli::new()
        .unwrap()
        .with_env("GIT_SSH_COMMAND", &ssh.ssh_command(&wrong_key));
    let err = wrong
        .ls_remote(&url)
        .expect_err("an unknown key must be refused");
    assert!(err.to_string().contains("Permission denied"), "{err}");

    let empty_known_hosts = dest.path().join("empty_known_hosts");
    std::fs::write(&empty_known_hosts, "").unwrap();
    let command = ssh.git_ssh_command().replace(
        ssh.known_hosts_path().to_str().unwrap(),
        empty_known_hosts.to_str().unwrap(),
    );
    let err = GitCli::new()
        .unwrap()
        .with_env("GIT_SSH_COMMAND", &command)
        .ls_remote(&url)
        .unwrap_err();
    assert!(
        err.to_string().contains("Host key verification failed"),
        "{err}"
    );
}

#[tokio::test]
async fn works_and_drops_inside_a_tokio_runtime() {
    let server = GitServer::builder().start().unwrap();
    seeded(&server);
    let url = format!(
        "{}/info/refs?service=git-upload-pack",
        server.http_url("app")
    );
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        content_type, "application/x-git-upload-pack-advertisement",
        "CGI headers are forwarded"
    );
    assert!(
        response.text().await.unwrap().contains("refs/heads/main"),
        "v0 advertisement lists main"
    );

    let missing = reqwest::get(format!("{}/info/refs", server.http_url("nope")))
        .await
        .unwrap();
    assert_eq!(
        missing.status(),
        404,
        "CGI Status: line sets the HTTP status"
    );
    drop(server);

    let misuse = GitServer::builder().require_client_cert().start();
    assert!(misuse.is_err(), "mTLS without HTTPS is a setup error");
}
