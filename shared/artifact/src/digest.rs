//! Content digests: `sha256:<hex>` of bytes, readers and files, and streaming verification
//! against a Flux digest string (`<algorithm>:<hex>`, bare hex meaning sha256).

use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest as _, Sha256, Sha384, Sha512};
use sluice_api::revision::Digest;

/// A digest string cannot be used for verification.
#[derive(Debug, thiserror::Error)]
#[error("artifact digest {digest:?} is invalid: {reason}")]
pub struct DigestError {
    /// The rejected input.
    pub digest: String,
    /// Why it was rejected.
    pub reason: String,
}

/// `sha256:<hex>` of `data`.
pub fn sha256_bytes(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// `sha256:<hex>` of everything `reader` yields, with the byte count.
pub fn sha256_reader(mut reader: impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        total += read as u64;
        hasher.update(&buffer[..read]);
    }
    Ok((format!("sha256:{}", hex::encode(hasher.finalize())), total))
}

/// `sha256:<hex>` of the file at `path`. Blocking.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let file = std::fs::File::open(path)?;
    sha256_reader(io::BufReader::new(file)).map(|(digest, _)| digest)
}

/// Parses a Flux artifact digest for verification: `sha256`, `sha384` or `sha512` with a checksum
/// of the algorithm's length; bare hex means sha256 and hex case is ignored.
pub fn parse_expected(digest: &str) -> Result<Digest, DigestError> {
    let invalid = |reason: String| DigestError {
        digest: digest.to_owned(),
        reason,
    };
    let normalized = match digest.split_once(':') {
        Some((algorithm, hex)) => format!("{algorithm}:{}", hex.to_ascii_lowercase()),
        None => digest.to_ascii_lowercase(),
    };
    let parsed: Digest = normalized
        .parse()
        .map_err(|error: sluice_api::revision::RevisionError| invalid(error.to_string()))?;
    let Some(algorithm) = Algorithm::of(&parsed.algorithm) else {
        return Err(invalid(
            "unsupported algorithm; expected sha256, sha384 or sha512".to_owned(),
        ));
    };
    if parsed.hex.len() != algorithm.hex_len() {
        return Err(invalid(
            "the checksum is not hex of the algorithm's length".to_owned(),
        ));
    }
    Ok(parsed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    fn of(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Self::Sha256),
            "sha384" => Some(Self::Sha384),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha384 => 96,
            Self::Sha512 => 128,
        }
    }
}

enum Hasher {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

/// Hashes a stream with the algorithm of an expected digest, then compares.
pub struct Verifier {
    hasher: Hasher,
    expected: Digest,
}

impl Verifier {
    /// A verifier for `expected` (from [`parse_expected`]).
    pub fn new(expected: &Digest) -> Result<Self, DigestError> {
        let hasher = match Algorithm::of(&expected.algorithm) {
            Some(Algorithm::Sha256) => Hasher::Sha256(Sha256::new()),
            Some(Algorithm::Sha384) => Hasher::Sha384(Sha384::new()),
            Some(Algorithm::Sha512) => Hasher::Sha512(Sha512::new()),
            None => {
                return Err(DigestError {
                    digest: expected.to_string(),
                    reason: "unsupported algorithm; expected sha256, sha384 or sha512".to_owned(),
                });
            }
        };
        Ok(Self {
            hasher,
            expected: expected.clone(),
        })
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.hasher {
            Hasher::Sha256(hasher) => hasher.update(bytes),
            Hasher::Sha384(hasher) => hasher.update(bytes),
            Hasher::Sha512(hasher) => hasher.update(bytes),
        }
    }

    /// `Ok(())` when the bytes match; otherwise `Err((expected_hex, actual_hex))`.
    pub fn finish(self) -> Result<(), (String, String)> {
        let actual = match self.hasher {
            Hasher::Sha256(hasher) => hex::encode(hasher.finalize()),
            Hasher::Sha384(hasher) => hex::encode(hasher.finalize()),
            Hasher::Sha512(hasher) => hex::encode(hasher.finalize()),
        };
        if actual == self.expected.hex {
            Ok(())
        } else {
            Err((self.expected.hex, actual))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_digests() {
        let hex = "a".repeat(64);
        let bare = parse_expected(&hex).unwrap();
        assert_eq!(bare.algorithm, "sha256");
        assert_eq!(parse_expected(&format!("sha256:{hex}")).unwrap(), bare);
        assert_eq!(
            parse_expected(&format!("sha256:{}", hex.to_uppercase())).unwrap(),
            bare
        );
        assert!(parse_expected("md5:abc").is_err());
        assert!(parse_expected("sha256:xyz").is_err());
        assert!(parse_expected("sha256:abc").is_err());
        assert_eq!(
            parse_expected(&format!("sha512:{}", "b".repeat(128)))
                .unwrap()
                .algorithm,
            "sha512"
        );
    }

    #[test]
    fn digests_and_verifies() {
        let digest = sha256_bytes(b"hello");
        assert_eq!(sha256_reader(&b"hello"[..]).unwrap(), (digest.clone(), 5));
        let mut verifier = Verifier::new(&parse_expected(&digest).unwrap()).unwrap();
        verifier.update(b"hel");
        verifier.update(b"lo");
        assert!(verifier.finish().is_ok());
        let mut verifier = Verifier::new(&parse_expected(&digest).unwrap()).unwrap();
        verifier.update(b"other");
        assert!(verifier.finish().is_err());
    }
}
