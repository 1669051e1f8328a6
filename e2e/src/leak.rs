//! Canaries for secret-leak tests: distinctive secret strings and a search for them (raw,
//! URL-encoded and base64 at any alignment) in events, statuses and logs.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// Named canaries: the secret strings that must never show up anywhere.
#[derive(Debug, Default)]
pub struct Canaries(Vec<(String, String)>);

impl Canaries {
    /// A new canary `leak-canary-<what>-<unique>+x`; the `+` makes its URL-encoded form differ.
    pub fn make(&mut self, what: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let value = format!(
            "leak-canary-{what}-{nanos:08x}{:04x}{:06x}+x",
            self.0.len(),
            std::process::id()
        );
        self.add(what, &value)
    }

    /// Registers a secret value that was not made here (e.g. a generated key); returns it.
    pub fn add(&mut self, what: &str, value: &str) -> String {
        self.0.push((what.to_owned(), value.to_owned()));
        value.to_owned()
    }

    /// `(what, form)` of each canary found in `text`, never the canary itself.
    pub fn found_in(&self, text: &str) -> Vec<(String, &'static str)> {
        self.0
            .iter()
            .filter_map(|(what, value)| {
                forms(value)
                    .into_iter()
                    .find(|(_, form)| text.contains(form.as_str()))
                    .map(|(form, _)| (what.clone(), form))
            })
            .collect()
    }
}

/// `value` raw, percent-encoded, and the part of its base64 encodings that does not depend on
/// the bytes around it, at each of the three alignments.
pub fn forms(value: &str) -> Vec<(&'static str, String)> {
    let encoded: String = value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let mut forms = vec![
        ("raw", value.to_owned()),
        ("lowercase URL-encoded", encoded.to_lowercase()),
        ("URL-encoded", encoded),
    ];
    for shift in 0..3 {
        let mut bytes = vec![0u8; shift];
        bytes.extend_from_slice(value.as_bytes());
        let start = if shift > 0 { 4 } else { 0 };
        let end = bytes.len() / 3 * 4;
        for (form, engine) in [("base64", STANDARD_NO_PAD), ("base64url", URL_SAFE_NO_PAD)] {
            if let Some(stable) = engine.encode(&bytes).get(start..end) {
                forms.push((form, stable.to_owned()));
            }
        }
    }
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_form_inside_other_text_and_names_only_the_canary() {
        let mut canaries = Canaries::default();
        let secret = canaries.make("pw");
        for prefix in ["", "u:", "ab:"] {
            let basic = STANDARD_NO_PAD.encode(format!("{prefix}{secret}"));
            assert_eq!(canaries.found_in(&format!("Basic {basic}=")).len(), 1);
        }
        let url = format!("http://u:{}@h/", secret.replace('+', "%2B"));
        assert_eq!(
            canaries.found_in(&url),
            vec![("pw".to_owned(), "URL-encoded")]
        );
        assert!(canaries.found_in("leak-canary-pw").is_empty());
    }
}
