//! Deterministic tar.gz fixtures for tests, built with the controllers' own `ArchiveBuilder`.

use std::collections::BTreeMap;

use sluice_artifact::archive::{ArchiveBuilder, ArchiveError, ExtractOptions, read_tar_gz};

use crate::{Error, Result};

/// `files` (path → contents) as a map, the last contents winning for a repeated path.
pub(crate) fn file_map<K, V>(files: impl IntoIterator<Item = (K, V)>) -> BTreeMap<String, Vec<u8>>
where
    K: AsRef<str>,
    V: AsRef<[u8]>,
{
    files
        .into_iter()
        .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_vec()))
        .collect()
}

fn archive_error(what: &str, error: ArchiveError) -> Error {
    Error::Setup(format!("{what} failed: {error}"))
}

/// A tar.gz of `files` (path → contents): sorted by path, mode 0644, owners and times zeroed, so
/// the same files always give the same bytes, as in a Flux artifact.
pub fn tar_gz<K, V>(files: impl IntoIterator<Item = (K, V)>) -> Result<Vec<u8>>
where
    K: AsRef<str>,
    V: AsRef<[u8]>,
{
    let mut builder = ArchiveBuilder::new(Vec::new());
    for (path, contents) in &file_map(files) {
        builder
            .append_bytes(path, contents, 0o644)
            .map_err(|e| archive_error("building a test archive", e))?;
    }
    builder
        .finish()
        .map_err(|e| archive_error("building a test archive", e))
}

/// The regular files of a tar.gz (path → contents); entries escaping the root are an error.
pub fn untar_gz(data: &[u8]) -> Result<BTreeMap<String, Vec<u8>>> {
    read_tar_gz(data, &ExtractOptions::default())
        .map_err(|e| archive_error("reading a tar+gzip archive", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_files_in_any_order_give_the_same_bytes_and_round_trip() {
        let forward = tar_gz([("b/c.yaml", "c"), ("a.yaml", "a")]).unwrap();
        let backward = tar_gz([("a.yaml", "a"), ("b/c.yaml", "c")]).unwrap();
        assert_eq!(forward, backward);
        let files = untar_gz(&forward).unwrap();
        assert_eq!(files, file_map([("a.yaml", "a"), ("b/c.yaml", "c")]));
    }
}
