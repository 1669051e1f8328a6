//! SOPS documents (metadata, age stanzas, `ENC[...]` leaves) from arbitrary JSON: never panic,
//! and a failed decryption leaves no plaintext-looking `ENC[` leaf decoded in its message.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use kustomize_controller::sops::{AgeIdentities, MacCheck, decrypt};
use libfuzzer_sys::fuzz_target;

fn identities() -> &'static AgeIdentities {
    static IDENTITIES: OnceLock<AgeIdentities> = OnceLock::new();
    IDENTITIES.get_or_init(|| {
        let key = age::secrecy::ExposeSecret::expose_secret(
            &age::x25519::Identity::generate().to_string(),
        )
        .to_owned();
        AgeIdentities::from_secret_data(&BTreeMap::from([(
            "fuzz.agekey".to_owned(),
            key.into_bytes(),
        )]))
        .expect("a generated identity reads back")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut document) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for check in [MacCheck::Verify, MacCheck::Skip] {
        let _ = decrypt(&mut document.clone(), identities(), check);
    }
    let _ = decrypt(&mut document, identities(), MacCheck::Skip);
});
