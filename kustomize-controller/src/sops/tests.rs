//! Round trips through a test-only SOPS encryptor, and a fixture written by the real `sops`.

use super::*;
use aes_gcm::aead::Aead;
use age::secrecy::ExposeSecret;
use serde_json::json;

const FIXTURE: &str = include_str!("../../testdata/sops/age-secret.yaml");
const FIXTURE_KEY: &str = include_str!("../../testdata/sops/age.agekey");
const LAST_MODIFIED: &str = "2026-01-01T00:00:00Z";

fn identities(text: &str) -> AgeIdentities {
    let data = BTreeMap::from([("identity.agekey".to_owned(), text.as_bytes().to_vec())]);
    AgeIdentities::from_secret_data(&data).unwrap()
}

/// A test-only SOPS encryptor following the format: a fixed data key age-encrypted to
/// `recipient`, leaves sealed with per-leaf nonces, and the MAC over plaintext leaves.
struct TestEncryptor {
    cipher: SopsCipher,
    rules: Rules,
    mac: Sha512,
    counter: u8,
}

impl TestEncryptor {
    fn seal(&mut self, plaintext: &[u8], aad: &str, kind: &str) -> String {
        self.counter += 1;
        let iv = sha2::Sha256::digest([self.counter]).to_vec();
        let nonce = Nonce::<U32>::try_from(iv.as_slice()).unwrap();
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .unwrap();
        let (data, tag) = sealed.split_at(sealed.len() - 16);
        format!(
            "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{kind}]",
            STANDARD.encode(data),
            STANDARD.encode(&iv),
            STANDARD.encode(tag)
        )
    }

    fn walk(&mut self, value: &mut Value, path: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    path.push(key.clone());
                    self.walk(child, path);
                    path.pop();
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.walk(item, path)),
            Value::Null => {}
            leaf => {
                let encrypted = self.rules.encrypts(path);
                if encrypted || !self.rules.mac_only_encrypted {
                    self.mac.update(mac_bytes(leaf));
                }
                if !encrypted || leaf.as_str() == Some("") {
                    return;
                }
                let kind = match leaf {
                    Value::String(_) => "str",
                    Value::Bool(_) => "bool",
                    Value::Number(number) if number.is_i64() => "int",
                    _ => "float",
                };
                let aad = format!("{}:", path.join(":"));
                *leaf = Value::String(self.seal(&mac_bytes(leaf), &aad, kind));
            }
        }
    }
}

fn encrypt(mut document: Value, recipient: &age::x25519::Recipient, rules: Value) -> Value {
    let key = sha2::Sha256::digest(b"test data key").to_vec();
    let Value::Object(rule_map) = rules.clone() else {
        panic!("rules must be a mapping");
    };
    let mut encryptor = TestEncryptor {
        cipher: SopsCipher::new_from_slice(&key).unwrap(),
        rules: Rules::from_metadata(&rule_map).unwrap(),
        mac: Sha512::new(),
        counter: 0,
    };
    if encryptor.rules.mac_only_encrypted {
        encryptor.mac.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    encryptor.walk(&mut document, &mut Vec::new());
    let mac = hex::encode_upper(encryptor.mac.clone().finalize());
    let mac = encryptor.seal(mac.as_bytes(), LAST_MODIFIED, "str");
    let mut metadata = json!({
        "age": [{"recipient": recipient.to_string(), "enc": age::encrypt_and_armor(recipient, &key).unwrap()}],
        "lastmodified": LAST_MODIFIED,
        "mac": mac,
        "version": "3.9.0",
    });
    if let (Some(metadata), Value::Object(rules)) = (metadata.as_object_mut(), rules) {
        metadata.extend(rules);
    }
    document["sops"] = metadata;
    document
}

fn secret() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "labels": {"tier": "db"}},
        "stringData": {"password": "hunter2", "empty": "", "port": 5432, "ratio": 0.25, "enabled": true},
        "list": [{"name": "a", "value": "x"}],
    })
}

#[test]
fn decrypts_a_fixture_written_by_the_real_sops_and_verifies_its_mac() {
    let mut document = sluice_kustomize::parse_yaml_stream(FIXTURE)
        .unwrap()
        .remove(0);
    assert!(is_encrypted(&document));
    decrypt(&mut document, &identities(FIXTURE_KEY), MacCheck::Verify).unwrap();
    assert_eq!(document["stringData"]["key"], "value");
    assert!(document.get("sops").is_none());
    assert_eq!(document["metadata"]["name"], "age");
}

#[test]
fn round_trips_every_leaf_type_with_the_default_suffix_rule() {
    let identity = age::x25519::Identity::generate();
    let mut document = encrypt(secret(), &identity.to_public(), json!({}));
    assert!(
        document["stringData"]["password"]
            .as_str()
            .unwrap()
            .starts_with("ENC[AES256_GCM,")
    );
    assert!(
        document["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("ENC[")
    );
    let key = identity.to_string();
    decrypt(
        &mut document,
        &identities(key.expose_secret()),
        MacCheck::Verify,
    )
    .unwrap();
    assert_eq!(document, secret());
}

#[test]
fn honours_encryption_rules_and_mac_only_encrypted() {
    let identity = age::x25519::Identity::generate();
    let key = identity.to_string();
    for rules in [
        json!({"encrypted_regex": "^(data|stringData)$"}),
        json!({"unencrypted_regex": "^(apiVersion|kind|metadata|list)$"}),
        json!({"encrypted_suffix": "Data"}),
        json!({"unencrypted_suffix": "_plain"}),
        json!({"encrypted_regex": "^stringData$", "mac_only_encrypted": true}),
    ] {
        let mut document = encrypt(secret(), &identity.to_public(), rules.clone());
        if rules.get("unencrypted_suffix").is_none() {
            assert_eq!(document["metadata"]["name"], "db", "{rules}");
        }
        decrypt(
            &mut document,
            &identities(key.expose_secret()),
            MacCheck::Verify,
        )
        .unwrap_or_else(|error| panic!("{rules}: {error}"));
        assert_eq!(document, secret(), "{rules}");
    }
}

#[test]
fn mac_covers_unencrypted_values_unless_mac_only_encrypted() {
    let identity = age::x25519::Identity::generate();
    let key = identity.to_string();
    let rules = json!({"encrypted_regex": "^stringData$"});
    let mut document = encrypt(secret(), &identity.to_public(), rules);
    document["metadata"]["name"] = json!("changed");
    let tampered = document.clone();
    let error = decrypt(
        &mut document,
        &identities(key.expose_secret()),
        MacCheck::Verify,
    )
    .unwrap_err();
    assert!(matches!(error, SopsError::MacMismatch), "{error}");
    let mut document = tampered;
    decrypt(
        &mut document,
        &identities(key.expose_secret()),
        MacCheck::Skip,
    )
    .unwrap();
    assert_eq!(document["stringData"]["password"], "hunter2");

    let rules = json!({"encrypted_regex": "^stringData$", "mac_only_encrypted": true});
    let mut document = encrypt(secret(), &identity.to_public(), rules);
    document["metadata"]["name"] = json!("changed");
    decrypt(
        &mut document,
        &identities(key.expose_secret()),
        MacCheck::Verify,
    )
    .unwrap();
}

#[test]
fn wrong_keys_and_moved_values_fail_without_leaking_secrets() {
    let identity = age::x25519::Identity::generate();
    let document = encrypt(secret(), &identity.to_public(), json!({}));
    let other = age::x25519::Identity::generate().to_string();
    let error = decrypt(
        &mut document.clone(),
        &identities(other.expose_secret()),
        MacCheck::Skip,
    )
    .unwrap_err();
    assert!(matches!(error, SopsError::NoMatchingIdentity(_)), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&identity.to_public().to_string()),
        "{message}"
    );
    assert!(!message.contains("AGE-SECRET-KEY"), "{message}");

    let mut moved = document.clone();
    let password = moved["stringData"]["password"].clone();
    moved["stringData"]["ratio"] = password;
    let key = identity.to_string();
    let error = decrypt(&mut moved, &identities(key.expose_secret()), MacCheck::Skip).unwrap_err();
    assert!(
        matches!(error, SopsError::Authentication(ref path) if path == "stringData.ratio"),
        "{error}"
    );
    assert!(!error.to_string().contains("hunter2"));

    let mut plain = document;
    plain["stringData"]["password"] = json!("hunter2");
    let error = decrypt(&mut plain, &identities(key.expose_secret()), MacCheck::Skip).unwrap_err();
    assert!(matches!(error, SopsError::NotEncrypted(_)), "{error}");
    assert!(!error.to_string().contains("hunter2"));
}

#[test]
fn identities_come_from_agekey_entries_only() {
    let data = BTreeMap::from([("token".to_owned(), b"x".to_vec())]);
    assert!(matches!(
        AgeIdentities::from_secret_data(&data),
        Err(SopsError::NoIdentities)
    ));
    let data = BTreeMap::from([("bad.agekey".to_owned(), b"AGE-SECRET-KEY-1NOPE".to_vec())]);
    let error = AgeIdentities::from_secret_data(&data).err().unwrap();
    assert!(!error.to_string().contains("NOPE"), "{error}");
}

#[test]
fn decrypt_objects_skips_opted_out_objects_and_names_failures() {
    let identity = age::x25519::Identity::generate();
    let key = identity.to_string();
    let mut skipped = encrypt(
        secret(),
        &identity.to_public(),
        json!({"encrypted_regex": "^stringData$"}),
    );
    skipped["metadata"]["annotations"] = json!({"kustomize.toolkit.fluxcd.io/decrypt": "Disabled"});
    let mut objects = vec![
        encrypt(
            secret(),
            &identity.to_public(),
            json!({"encrypted_regex": "^stringData$"}),
        ),
        skipped,
    ];
    decrypt_objects(&mut objects, &identities(key.expose_secret())).unwrap();
    assert_eq!(objects[0], secret());
    assert!(is_encrypted(&objects[1]));
    let other = age::x25519::Identity::generate().to_string();
    let mut objects = vec![encrypt(
        secret(),
        &identity.to_public(),
        json!({"encrypted_regex": "^stringData$"}),
    )];
    let error = decrypt_objects(&mut objects, &identities(other.expose_secret())).unwrap_err();
    assert!(error.to_string().contains("'Secret/db'"), "{error}");
}
