//! Property: the same tree always archives to the same digest, whatever order it was written in.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use source_controller::ignore::IgnoreRules;
use source_controller::{Storage, StorageConfig};

fn storage(root: &std::path::Path) -> Storage {
    Storage::new(StorageConfig {
        root: root.to_owned(),
        advertised_address: "localhost".into(),
        retention_ttl: Duration::from_secs(60),
        retention_records: 10,
        max_artifact_size: 1 << 24,
    })
    .unwrap()
}

fn write_tree(files: &BTreeMap<String, Vec<u8>>, reverse: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut entries: Vec<_> = files.iter().collect();
    if reverse {
        entries.reverse();
    }
    for (path, contents) in entries {
        let target = dir.path().join(path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, contents).unwrap();
    }
    dir
}

fn tree_strategy() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
    let path =
        prop::collection::vec("[a-z]{1,6}", 1..4).prop_map(|parts| parts.join("/") + ".yaml");
    prop::collection::btree_map(path, prop::collection::vec(any::<u8>(), 0..256), 1..12)
        .prop_filter("no file may also be a directory", |files| {
            files.keys().all(|a| {
                let dir = a.trim_end_matches(".yaml").to_owned() + "/";
                !files.keys().any(|b| b.starts_with(&dir))
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn same_tree_same_digest(files in tree_strategy()) {
        let root = tempfile::tempdir().unwrap();
        let storage = storage(root.path());
        let first = write_tree(&files, false);
        std::thread::sleep(Duration::from_millis(5));
        let second = write_tree(&files, true);
        let a = storage.archive_dir(first.path(), &IgnoreRules::default(), "k/ns/a").unwrap();
        let b = storage.archive_dir(second.path(), &IgnoreRules::default(), "k/ns/b").unwrap();
        prop_assert_eq!(&a.digest, &b.digest);
        prop_assert_eq!(a.size, b.size);
    }
}
