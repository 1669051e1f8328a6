//! Artifact revisions and digests (Flux RFC-0005).
//!
//! A revision is `[<named pointer>@]<algorithm>:<hex>`, e.g. `main@sha1:<40 hex>`,
//! `refs/heads/main@sha1:<40 hex>`, `sha1:<40 hex>`, `v1.2.3@sha256:<64 hex>` or `sha256:<64 hex>`.
//! A digest is `<algorithm>:<hex>`; a bare hex string is read as sha256.

use std::fmt;
use std::str::FromStr;

/// Algorithm assumed for a digest written without an `<algorithm>:` prefix.
pub const DEFAULT_ALGORITHM: &str = "sha256";

/// A content digest such as `sha256:<64 hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    /// Lowercase algorithm name, e.g. `sha1`, `sha256`, `sha512`, `blake3`.
    pub algorithm: String,
    /// Lowercase hexadecimal checksum.
    pub hex: String,
}

/// A named pointer (branch, tag, ref) pinned to a digest, e.g. `main@sha1:<hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Revision {
    /// Branch, tag or reference name before the `@`; `None` for a bare digest revision.
    pub name: Option<String>,
    /// The checksum after the `@` (or the whole revision when there is no name).
    pub digest: Digest,
}

/// Why a revision or digest string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionError {
    input: String,
    reason: String,
}

impl RevisionError {
    fn new(input: &str, reason: impl Into<String>) -> Self {
        Self {
            input: input.to_owned(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for RevisionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid revision {:?}: {}", self.input, self.reason)
    }
}

impl std::error::Error for RevisionError {}

impl Digest {
    /// Builds a digest after validating the algorithm name and checksum.
    pub fn new(algorithm: &str, hex: &str) -> Result<Self, RevisionError> {
        let input = format!("{algorithm}:{hex}");
        validate_digest(&input, algorithm, hex)?;
        Ok(Self {
            algorithm: algorithm.to_owned(),
            hex: hex.to_owned(),
        })
    }

    /// Parses `<algorithm>:<hex>` only, rejecting the bare-hex shorthand.
    pub fn parse_qualified(input: &str) -> Result<Self, RevisionError> {
        let Some((algorithm, hex)) = input.split_once(':') else {
            return Err(RevisionError::new(
                input,
                "missing '<algorithm>:' prefix (e.g. \"sha256:...\")",
            ));
        };
        validate_digest(input, algorithm, hex)?;
        Ok(Self {
            algorithm: algorithm.to_owned(),
            hex: hex.to_owned(),
        })
    }
}

impl FromStr for Digest {
    type Err = RevisionError;

    /// Parses `<algorithm>:<hex>`, or a bare hex string as sha256.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.contains(':') {
            return Self::parse_qualified(input);
        }
        validate_digest(input, DEFAULT_ALGORITHM, input)?;
        Ok(Self {
            algorithm: DEFAULT_ALGORITHM.to_owned(),
            hex: input.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl Revision {
    /// A revision without a named pointer, e.g. `sha256:<hex>`.
    pub fn from_digest(digest: Digest) -> Self {
        Self { name: None, digest }
    }

    /// A revision with a named pointer, e.g. `main@sha1:<hex>`.
    pub fn named(name: impl Into<String>, digest: Digest) -> Self {
        Self {
            name: Some(name.into()),
            digest,
        }
    }
}

impl FromStr for Revision {
    type Err = RevisionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (name, digest) = match input.rsplit_once('@') {
            Some((name, digest)) => (Some(name), digest),
            None => (None, input),
        };
        if let Some(name) = name {
            validate_name(input, name)?;
        }
        let digest = Digest::parse_qualified(digest)
            .map_err(|error| RevisionError::new(input, error.reason))?;
        Ok(Self {
            name: name.map(str::to_owned),
            digest,
        })
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name}@{}", self.digest),
            None => write!(f, "{}", self.digest),
        }
    }
}

fn validate_name(input: &str, name: &str) -> Result<(), RevisionError> {
    if name.is_empty() {
        return Err(RevisionError::new(input, "empty name before '@'"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(RevisionError::new(
            input,
            "name contains whitespace or control characters",
        ));
    }
    Ok(())
}

/// Checks `<algorithm>` against the OCI algorithm grammar and `<hex>` against the algorithm's length.
fn validate_digest(input: &str, algorithm: &str, hex: &str) -> Result<(), RevisionError> {
    let algorithm_is_valid = !algorithm.is_empty()
        && algorithm.split(['.', '+', '_', '-']).all(|component| {
            !component.is_empty()
                && component
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if !algorithm_is_valid {
        return Err(RevisionError::new(
            input,
            format!("invalid algorithm {algorithm:?} (expected lowercase, e.g. \"sha256\")"),
        ));
    }
    if hex.is_empty() {
        return Err(RevisionError::new(input, "empty checksum"));
    }
    if !hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(RevisionError::new(
            input,
            "checksum must be lowercase hexadecimal",
        ));
    }
    let expected_length = match algorithm {
        "sha1" => Some(40),
        "sha256" | "blake3" => Some(64),
        "sha384" => Some(96),
        "sha512" => Some(128),
        _ => None,
    };
    match expected_length {
        Some(length) if hex.len() != length => Err(RevisionError::new(
            input,
            format!(
                "{algorithm} checksum must have {length} hex characters, got {}",
                hex.len()
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SHA1: &str = "0123456789abcdef0123456789abcdef01234567";
    const SHA256: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_every_flux_revision_form() {
        let cases = [
            (format!("main@sha1:{SHA1}"), Some("main"), "sha1", SHA1),
            (
                format!("refs/heads/main@sha1:{SHA1}"),
                Some("refs/heads/main"),
                "sha1",
                SHA1,
            ),
            (format!("sha1:{SHA1}"), None, "sha1", SHA1),
            (
                format!("v1.2.3@sha256:{SHA256}"),
                Some("v1.2.3"),
                "sha256",
                SHA256,
            ),
            (format!("sha256:{SHA256}"), None, "sha256", SHA256),
        ];
        for (input, name, algorithm, hex) in cases {
            let revision: Revision = input.parse().unwrap();
            assert_eq!(revision.name.as_deref(), name, "{input}");
            assert_eq!(revision.digest.algorithm, algorithm);
            assert_eq!(revision.digest.hex, hex);
            assert_eq!(revision.to_string(), input);
        }
    }

    #[test]
    fn name_may_contain_at_signs() {
        let revision: Revision = format!("feature@x@sha1:{SHA1}").parse().unwrap();
        assert_eq!(revision.name.as_deref(), Some("feature@x"));
    }

    #[test]
    fn rejects_malformed_revisions() {
        let bad = [
            String::new(),
            "main".to_owned(),
            format!("@sha1:{SHA1}"),
            format!("main@{SHA1}"),
            format!("main/{SHA1}"),
            format!("main@sha1:{}", &SHA1[1..]),
            format!("main@sha1:{}", SHA1.to_uppercase()),
            format!("main@SHA1:{SHA1}"),
            "sha256:".to_owned(),
            format!("sha256:{SHA1}"),
            format!("my branch@sha1:{SHA1}"),
            "6.0.3".to_owned(),
            "sha1:xyz".to_owned(),
            format!(":{SHA256}"),
        ];
        for input in bad {
            let error = input.parse::<Revision>().unwrap_err();
            assert!(error.to_string().contains(&format!("{input:?}")), "{error}");
        }
    }

    #[test]
    fn digest_accepts_bare_hex_as_sha256() {
        let digest: Digest = SHA256.parse().unwrap();
        assert_eq!(digest.algorithm, "sha256");
        assert_eq!(digest.to_string(), format!("sha256:{SHA256}"));
        assert!(Digest::parse_qualified(SHA256).is_err());
        assert!(SHA1.parse::<Digest>().is_err());
    }

    #[test]
    fn digest_accepts_other_algorithms() {
        let digest: Digest = format!("sha512:{}", "a".repeat(128)).parse().unwrap();
        assert_eq!(digest.algorithm, "sha512");
        assert!("blake3:abc".parse::<Digest>().is_err());
        assert!("custom.algo+v2:abc".parse::<Digest>().is_ok());
        assert!(Digest::new("sha256", SHA256).is_ok());
        assert!(Digest::new("Sha256", SHA256).is_err());
    }

    fn digest_strategy() -> impl Strategy<Value = Digest> {
        prop_oneof![
            "[0-9a-f]{40}".prop_map(|hex| ("sha1", hex)),
            "[0-9a-f]{64}".prop_map(|hex| ("sha256", hex)),
            "[0-9a-f]{128}".prop_map(|hex| ("sha512", hex)),
            "[0-9a-f]{1,80}".prop_map(|hex| ("xxh3", hex)),
        ]
        .prop_map(|(algorithm, hex)| Digest {
            algorithm: algorithm.to_owned(),
            hex,
        })
    }

    fn revision_strategy() -> impl Strategy<Value = Revision> {
        (
            proptest::option::of("[a-zA-Z0-9._/@+-]{1,40}"),
            digest_strategy(),
        )
            .prop_map(|(name, digest)| Revision { name, digest })
    }

    proptest! {
        #[test]
        fn parse_of_format_is_identity(revision in revision_strategy()) {
            prop_assert_eq!(revision.to_string().parse::<Revision>(), Ok(revision));
        }

        #[test]
        fn format_of_parse_is_identity(revision in revision_strategy()) {
            let text = revision.to_string();
            let parsed: Revision = text.parse().unwrap();
            prop_assert_eq!(parsed.to_string(), text);
        }

        #[test]
        fn digest_round_trips(digest in digest_strategy()) {
            prop_assert_eq!(digest.to_string().parse::<Digest>(), Ok(digest));
        }

        #[test]
        fn arbitrary_input_never_panics(input in "\\PC{0,80}") {
            let _ = input.parse::<Revision>();
            let _ = input.parse::<Digest>();
        }
    }
}
