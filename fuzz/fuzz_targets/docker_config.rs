//! docker-config JSON Secrets: never panic, and an error never carries the Secret's bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_secrets::SecretData;

fuzz_target!(|data: &[u8]| {
    let secret = SecretData::from_entries("ns", "pull", [(".dockerconfigjson".to_owned(), data.to_vec())]);
    for registry in ["ghcr.io", "docker.io", "index.docker.io", "localhost:5000"] {
        match sluice_secrets::docker_credentials(&secret, registry) {
            Ok(_) => {}
            Err(error) => {
                let message = error.to_string();
                if let Ok(text) = std::str::from_utf8(data)
                    && text.trim().len() >= 8
                {
                    assert!(!message.contains(text.trim()), "the Secret's contents in: {message}");
                }
            }
        }
    }
});
