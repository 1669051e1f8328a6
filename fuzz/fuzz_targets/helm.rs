//! Helm repository indexes and chart archives from a chart repository (the first byte chooses
//! which): never panic; a normalised index normalises to itself; a loaded chart holds only
//! relative paths within the caps and survives packaging and loading unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use source_controller::helm::chart::{Chart, ChartLimits};
use source_controller::helm::index::RepositoryIndex;

const LIMITS: ChartLimits = ChartLimits {
    max_size: 1 << 20,
    max_file_size: 256 << 10,
};

fuzz_target!(|data: &[u8]| {
    let Some((kind, rest)) = data.split_first() else {
        return;
    };
    if kind % 2 == 0 {
        check_index(rest);
    } else {
        check_chart(rest);
    }
});

fn check_index(bytes: &[u8]) {
    let Ok(index) = RepositoryIndex::parse(bytes) else {
        return;
    };
    let normalised = index.to_json();
    let again = RepositoryIndex::parse(&normalised).expect("a normalised index parses");
    assert_eq!(again.to_json(), normalised, "normalising is not idempotent");
    let _ = index.select("app", "*");
    let _ = index.select("app", ">=1.0.0, <2.0.0");
}

fn check_chart(bytes: &[u8]) {
    let Ok(chart) = Chart::from_archive(bytes, LIMITS) else {
        return;
    };
    let mut total = 0_u64;
    for (path, contents) in &chart.files {
        assert!(
            !path.is_empty()
                && !path.starts_with('/')
                && path.split('/').all(|part| !matches!(part, "" | "." | "..")),
            "unsafe chart path {path:?}"
        );
        assert!(contents.len() as u64 <= LIMITS.max_file_size);
        total += contents.len() as u64;
    }
    assert!(total <= LIMITS.max_size, "{total} bytes unpacked");
    let packaged = chart.package().expect("a loaded chart packages");
    let reloaded = Chart::from_archive(
        &packaged,
        ChartLimits {
            max_size: u64::MAX,
            ..LIMITS
        },
    )
    .expect("a packaged chart loads");
    assert_eq!(reloaded.name, chart.name);
    assert_eq!(reloaded.version, chart.version);
    assert_eq!(reloaded.files, chart.files);
}
