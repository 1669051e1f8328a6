//! Native SOPS decryption of age-encrypted objects, as Flux's kustomize-controller does it.
//!
//! Every encrypted leaf is `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`, sealed with the document's
//! data key (AES-256-GCM, 32-byte nonce, AAD = the leaf's map keys joined and ended with `:`);
//! the data key is age-encrypted to each recipient in `sops.age[].enc`.

use std::collections::BTreeMap;
use std::io::Read;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::aes::cipher::consts::U32;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use regex::Regex;
use serde_json::{Map, Number, Value};
use sha2::{Digest as _, Sha512};
use sluice_api::kustomize::annotations::{DECRYPT, DISABLED};

use crate::objects::{has_flag, subject};

/// SOPS's value cipher: AES-256-GCM with a 32-byte nonce.
type SopsCipher = AesGcm<Aes256, U32>;

/// Suffix SOPS uses when a document names no other encryption rule.
const DEFAULT_UNENCRYPTED_SUFFIX: &str = "_unencrypted";
/// Extension of decryption Secret entries that hold age identities.
const AGE_KEY_EXTENSION: &str = ".agekey";
/// SHA-256 of `sops`, hashed first into MACs computed over encrypted values only.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// Decryption failed; messages never contain plaintext, ciphertext or key material.
#[derive(Debug, thiserror::Error)]
pub enum SopsError {
    #[error("decryption Secret entry {0:?} does not hold valid age identities")]
    InvalidIdentity(String),
    #[error("the decryption Secret has no *.agekey entry; add the age identity under such a key")]
    NoIdentities,
    #[error("the sops metadata is invalid: {0}")]
    InvalidMetadata(String),
    #[error("only age master keys are supported, the document has none")]
    NoAgeRecipients,
    #[error(
        "no age identity in the decryption Secret decrypts the data key (recipients: {0}); check the Secret holds the right key"
    )]
    NoMatchingIdentity(String),
    #[error("the value at {0:?} is not a SOPS-encrypted value")]
    NotEncrypted(String),
    #[error(
        "the value at {0:?} failed authentication; it was encrypted with another data key or modified"
    )]
    Authentication(String),
    #[error(
        "the MAC does not match the decrypted values; the document was modified after encryption"
    )]
    MacMismatch,
}

/// The age identities of a decryption Secret.
pub struct AgeIdentities(Vec<age::x25519::Identity>);

impl AgeIdentities {
    /// Reads every `*.agekey` entry (identity lines; `#` comments and blank lines ignored).
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<Self, SopsError> {
        let mut identities = Vec::new();
        for (name, value) in data {
            if !name.ends_with(AGE_KEY_EXTENSION) {
                continue;
            }
            let text =
                std::str::from_utf8(value).map_err(|_| SopsError::InvalidIdentity(name.clone()))?;
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let identity = line
                    .parse::<age::x25519::Identity>()
                    .map_err(|_| SopsError::InvalidIdentity(name.clone()))?;
                identities.push(identity);
            }
        }
        if identities.is_empty() {
            return Err(SopsError::NoIdentities);
        }
        Ok(Self(identities))
    }
}

/// Whether the object carries SOPS metadata (a top-level `sops` mapping).
pub fn is_encrypted(object: &Value) -> bool {
    object.get("sops").is_some_and(Value::is_object)
}

/// Whether to check the document's MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacCheck {
    /// Compare the MAC over the values in the document's key order.
    Verify,
    /// Skip it, as Flux does for built objects (kustomize adds fields and reorders keys).
    Skip,
}

/// Which leaves SOPS encrypted, from the document's metadata.
struct Rules {
    unencrypted_suffix: Option<String>,
    encrypted_suffix: Option<String>,
    unencrypted_regex: Option<Regex>,
    encrypted_regex: Option<Regex>,
    mac_only_encrypted: bool,
}

impl Rules {
    fn from_metadata(metadata: &Map<String, Value>) -> Result<Self, SopsError> {
        let text = |field: &str| {
            metadata
                .get(field)
                .and_then(Value::as_str)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        let regex = |field: &str| {
            text(field)
                .map(|pattern| {
                    Regex::new(&pattern)
                        .map_err(|_| SopsError::InvalidMetadata(format!("{field} is not a regex")))
                })
                .transpose()
        };
        let mut rules = Rules {
            unencrypted_suffix: text("unencrypted_suffix"),
            encrypted_suffix: text("encrypted_suffix"),
            unencrypted_regex: regex("unencrypted_regex")?,
            encrypted_regex: regex("encrypted_regex")?,
            mac_only_encrypted: metadata
                .get("mac_only_encrypted")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        };
        let has_rule = rules.unencrypted_suffix.is_some()
            || rules.encrypted_suffix.is_some()
            || rules.unencrypted_regex.is_some()
            || rules.encrypted_regex.is_some()
            || text("unencrypted_comment_regex").is_some()
            || text("encrypted_comment_regex").is_some();
        if !has_rule {
            rules.unencrypted_suffix = Some(DEFAULT_UNENCRYPTED_SUFFIX.to_owned());
        }
        Ok(rules)
    }

    /// SOPS's `shouldBeEncrypted`: later rules override earlier ones.
    fn encrypts(&self, path: &[String]) -> bool {
        let mut encrypted = true;
        if let Some(suffix) = &self.unencrypted_suffix
            && path.iter().any(|key| key.ends_with(suffix.as_str()))
        {
            encrypted = false;
        }
        if let Some(suffix) = &self.encrypted_suffix {
            encrypted = path.iter().any(|key| key.ends_with(suffix.as_str()));
        }
        if let Some(regex) = &self.unencrypted_regex
            && path.iter().any(|key| regex.is_match(key))
        {
            encrypted = false;
        }
        if let Some(regex) = &self.encrypted_regex {
            encrypted = path.iter().any(|key| regex.is_match(key));
        }
        encrypted
    }
}

/// Decrypts a SOPS document in place and removes its `sops` metadata.
pub fn decrypt(
    document: &mut Value,
    identities: &AgeIdentities,
    mac_check: MacCheck,
) -> Result<(), SopsError> {
    let Some(Value::Object(metadata)) = document.as_object_mut().and_then(|map| map.remove("sops"))
    else {
        return Err(SopsError::InvalidMetadata("no sops mapping".to_owned()));
    };
    let rules = Rules::from_metadata(&metadata)?;
    let key = data_key(&metadata, identities)?;
    let cipher = SopsCipher::new_from_slice(&key)
        .map_err(|_| SopsError::InvalidMetadata("the data key is not 32 bytes".to_owned()))?;
    let mut mac = Sha512::new();
    if rules.mac_only_encrypted {
        mac.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    let mut walker = Walker {
        cipher: &cipher,
        rules: &rules,
        mac: &mut mac,
    };
    walker.walk(document, &mut Vec::new())?;
    if mac_check == MacCheck::Skip {
        return Ok(());
    }
    let computed = hex::encode_upper(mac.finalize());
    let stored = metadata
        .get("mac")
        .and_then(Value::as_str)
        .ok_or_else(|| SopsError::InvalidMetadata("no mac".to_owned()))?;
    let last_modified = metadata
        .get("lastmodified")
        .and_then(Value::as_str)
        .ok_or_else(|| SopsError::InvalidMetadata("no lastmodified".to_owned()))?;
    let stored = decrypt_value(&cipher, stored, last_modified)
        .map_err(|_| SopsError::Authentication("sops.mac".to_owned()))?;
    if stored != Value::String(computed) {
        return Err(SopsError::MacMismatch);
    }
    Ok(())
}

/// The data key, from the first `sops.age` entry one of the identities opens.
fn data_key(
    metadata: &Map<String, Value>,
    identities: &AgeIdentities,
) -> Result<Vec<u8>, SopsError> {
    let entries = metadata
        .get("age")
        .and_then(Value::as_array)
        .filter(|entries| !entries.is_empty())
        .ok_or(SopsError::NoAgeRecipients)?;
    let mut recipients = Vec::new();
    for entry in entries {
        recipients.push(entry["recipient"].as_str().unwrap_or("?").to_owned());
        let Some(armored) = entry["enc"].as_str() else {
            continue;
        };
        let reader = age::armor::ArmoredReader::new(armored.as_bytes());
        let Ok(decryptor) = age::Decryptor::new(reader) else {
            continue;
        };
        let candidates = identities
            .0
            .iter()
            .map(|identity| identity as &dyn age::Identity);
        let Ok(mut stream) = decryptor.decrypt(candidates) else {
            continue;
        };
        let mut key = Vec::new();
        if stream.read_to_end(&mut key).is_ok() {
            return Ok(key);
        }
    }
    Err(SopsError::NoMatchingIdentity(recipients.join(", ")))
}

/// Decrypts leaves and feeds the MAC in document order.
struct Walker<'a> {
    cipher: &'a SopsCipher,
    rules: &'a Rules,
    mac: &'a mut Sha512,
}

impl Walker<'_> {
    fn walk(&mut self, value: &mut Value, path: &mut Vec<String>) -> Result<(), SopsError> {
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    path.push(key.clone());
                    let result = self.walk(child, path);
                    path.pop();
                    result?;
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.walk(item, path)?;
                }
            }
            Value::Null => {}
            leaf => {
                let encrypted = self.rules.encrypts(path);
                if encrypted {
                    let Value::String(text) = &*leaf else {
                        return Err(SopsError::NotEncrypted(path.join(".")));
                    };
                    let aad = format!("{}:", path.join(":"));
                    *leaf =
                        decrypt_value(self.cipher, text, &aad).map_err(|error| error.at(path))?;
                }
                if encrypted || !self.rules.mac_only_encrypted {
                    self.mac.update(mac_bytes(leaf));
                }
            }
        }
        Ok(())
    }
}

/// Why one value did not decrypt.
enum ValueError {
    Format,
    Authentication,
}

impl ValueError {
    fn at(self, path: &[String]) -> SopsError {
        match self {
            ValueError::Format => SopsError::NotEncrypted(path.join(".")),
            ValueError::Authentication => SopsError::Authentication(path.join(".")),
        }
    }
}

/// Decrypts one `ENC[AES256_GCM,…]` value into its typed plaintext (an empty string stays empty).
fn decrypt_value(cipher: &SopsCipher, text: &str, aad: &str) -> Result<Value, ValueError> {
    if text.is_empty() {
        return Ok(Value::String(String::new()));
    }
    let body = text
        .strip_prefix("ENC[AES256_GCM,")
        .and_then(|rest| rest.strip_suffix(']'))
        .ok_or(ValueError::Format)?;
    let mut fields = BTreeMap::new();
    for part in body.split(',') {
        let (name, value) = part.split_once(':').ok_or(ValueError::Format)?;
        fields.insert(name, value);
    }
    let decode = |name: &str| {
        fields
            .get(name)
            .and_then(|value| STANDARD.decode(value).ok())
            .ok_or(ValueError::Format)
    };
    let mut message = decode("data")?;
    message.extend(decode("tag")?);
    let iv = decode("iv")?;
    let nonce = Nonce::<U32>::try_from(iv.as_slice()).map_err(|_| ValueError::Format)?;
    let plaintext = cipher
        .decrypt(
            &nonce,
            Payload {
                msg: &message,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| ValueError::Authentication)?;
    let text = String::from_utf8(plaintext).map_err(|_| ValueError::Format)?;
    let value = match fields.get("type").copied().ok_or(ValueError::Format)? {
        "str" | "bytes" => Value::String(text),
        "int" | "int64" => {
            Value::Number(text.parse::<i64>().map_err(|_| ValueError::Format)?.into())
        }
        "float" => text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or(ValueError::Format)?,
        "bool" => Value::Bool(match text.as_str() {
            "True" | "true" | "TRUE" | "1" | "t" | "T" => true,
            "False" | "false" | "FALSE" | "0" | "f" | "F" => false,
            _ => return Err(ValueError::Format),
        }),
        _ => return Err(ValueError::Format),
    };
    Ok(value)
}

/// SOPS's `ToBytes` of a plaintext leaf, as hashed into the MAC.
fn mac_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::String(text) => text.as_bytes().to_vec(),
        Value::Bool(true) => b"True".to_vec(),
        Value::Bool(false) => b"False".to_vec(),
        Value::Number(number) => match number.as_i64() {
            Some(integer) => integer.to_string().into_bytes(),
            None => number.as_f64().unwrap_or_default().to_string().into_bytes(),
        },
        _ => Vec::new(),
    }
}

/// Decrypting one object of a build failed; names the object, never its content.
#[derive(Debug, thiserror::Error)]
#[error("decryption failed for '{subject}': {source}")]
pub struct DecryptError {
    pub subject: String,
    pub source: SopsError,
}

/// Decrypts every SOPS-encrypted object of a build (not those annotated
/// `kustomize.toolkit.fluxcd.io/decrypt: disabled`), naming the object on failure.
pub fn decrypt_objects(
    objects: &mut [Value],
    identities: &AgeIdentities,
) -> Result<(), DecryptError> {
    for object in objects {
        if !is_encrypted(object) || has_flag(object, DECRYPT, DISABLED) {
            continue;
        }
        let subject = subject(object);
        decrypt(object, identities, MacCheck::Skip)
            .map_err(|source| DecryptError { subject, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
