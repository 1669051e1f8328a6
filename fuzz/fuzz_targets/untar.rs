//! tar.gz extraction: whatever the archive holds, nothing is written outside the target, no link
//! is created, and the regular files written stay within the size cap.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sluice_artifact::archive::{ExtractOptions, UnsafeEntries, extract_tar_gz};

const MAX_SIZE: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Ok(scratch) = tempfile::tempdir() else {
        return;
    };
    let target = scratch.path().join("root");
    for unsafe_entries in [UnsafeEntries::Error, UnsafeEntries::Skip] {
        let options = ExtractOptions {
            subdir: None,
            max_size: Some(MAX_SIZE),
            unsafe_entries,
        };
        let _ = extract_tar_gz(
            flate2::read::GzEncoder::new(data, flate2::Compression::fast()),
            &target,
            &options,
        );
        let _ = extract_tar_gz(data, &target, &options);
        let outside: Vec<_> = std::fs::read_dir(scratch.path())
            .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            outside.iter().all(|name| name == "root"),
            "wrote beside the target: {outside:?}"
        );
        assert!(
            written_bytes(&target) <= 2 * MAX_SIZE,
            "more than the cap written"
        );
        let _ = std::fs::remove_dir_all(&target);
    }
});

/// Bytes of the regular files under `dir`; panics on a symbolic link.
fn written_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(metadata) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        assert!(
            !metadata.file_type().is_symlink(),
            "link created: {}",
            entry.path().display()
        );
        total += if metadata.is_dir() {
            written_bytes(&entry.path())
        } else {
            metadata.len()
        };
    }
    total
}
