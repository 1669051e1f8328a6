//! docker-config JSON Secrets: never panic, and an error never carries a credential the Secret
//! holds (`auth`, `password`, `identitytoken`, `registrytoken` values).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sluice_secrets::SecretData;

const CREDENTIAL_KEYS: [&str; 4] = ["auth", "password", "identitytoken", "registrytoken"];

/// String values of credential keys anywhere in `value`, six bytes or longer.
fn credentials(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match inner {
                    Value::String(text)
                        if text.len() >= 6
                            && CREDENTIAL_KEYS.contains(&key.to_ascii_lowercase().as_str()) =>
                    {
                        found.push(text.clone());
                    }
                    other => credentials(other, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| credentials(item, found)),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let secret = SecretData::from_entries(
        "ns",
        "pull",
        [(".dockerconfigjson".to_owned(), data.to_vec())],
    );
    let mut secrets = Vec::new();
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        credentials(&value, &mut secrets);
    }
    for registry in ["ghcr.io", "docker.io", "index.docker.io", "localhost:5000"] {
        if let Err(error) = sluice_secrets::docker_credentials(&secret, registry) {
            let message = error.to_string();
            for credential in &secrets {
                assert!(
                    !message.contains(credential.as_str()),
                    "a credential in: {message}"
                );
            }
        }
    }
});
