//! S3 `ListObjectsV2` bodies a Bucket endpoint returns: never panic; every key taken as safe maps
//! to a path strictly inside the download directory; the revision ignores listing order.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use source_controller::bucket_index::{EtagIndex, is_key_excluded, is_safe_key, key_rules};
use source_controller::s3::parse_listing;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(page) = parse_listing(body, "listing") else {
        return;
    };
    let rules = key_rules(None, None).expect("the default rules compile");
    let (mut forward, mut backward) = (EtagIndex::default(), EtagIndex::default());
    for object in &page.objects {
        let _ = is_key_excluded(&rules, &object.key);
        if !is_safe_key(&object.key) {
            continue;
        }
        let joined = Path::new("/download").join(&object.key);
        assert!(
            joined.starts_with("/download")
                && joined
                    .components()
                    .skip(2)
                    .all(|c| matches!(c, Component::Normal(_))),
            "key {:?} escapes the download directory",
            object.key
        );
        forward.insert(object.key.clone(), object.etag.clone());
    }
    for object in page.objects.iter().rev() {
        if is_safe_key(&object.key) {
            backward.insert(object.key.clone(), object.etag.clone());
        }
    }
    if page.objects.iter().all(|o| {
        page.objects
            .iter()
            .filter(|other| other.key == o.key)
            .all(|other| other.etag == o.etag)
    }) {
        assert_eq!(forward.revision(), backward.revision());
    }
});
