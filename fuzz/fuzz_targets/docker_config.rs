//! docker-config JSON Secrets: never panic, and an error never carries anything the Secret holds:
//! every error message is one of those the same registry gets for fixed, credential-free input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_secrets::SecretData;

const REGISTRIES: [&str; 4] = ["ghcr.io", "docker.io", "index.docker.io", "localhost:5000"];

fn pull_secret(data: &[u8]) -> SecretData {
    SecretData::from_entries(
        "ns",
        "pull",
        [(".dockerconfigjson".to_owned(), data.to_vec())],
    )
}

/// The messages `registry` gets for input holding no credential: JSON that does not parse and
/// an `auth` entry that is not base64.
fn data_free_messages(registry: &str) -> Vec<String> {
    let bad_auth = format!(r#"{{"auths":{{"{registry}":{{"auth":"!"}}}}}}"#);
    [b"{".as_slice(), bad_auth.as_bytes()]
        .into_iter()
        .filter_map(|data| sluice_secrets::docker_credentials(&pull_secret(data), registry).err())
        .map(|error| error.to_string())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let secret = pull_secret(data);
    for registry in REGISTRIES {
        if let Err(error) = sluice_secrets::docker_credentials(&secret, registry) {
            let message = error.to_string();
            assert!(
                data_free_messages(registry).contains(&message),
                "an error that depends on the Secret's contents: {message}"
            );
        }
    }
});
