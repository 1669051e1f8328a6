//! The committed `deploy/crds/` must match the sluice-api types.

use std::process::Command;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

#[test]
fn committed_crds_are_up_to_date() {
    let stale = sluice_crdgen::stale_files(&sluice_crdgen::default_output_dir()).unwrap();
    assert!(
        stale.is_empty(),
        "deploy/crds is stale ({}): run `cargo crds` and commit the result",
        stale.join(", ")
    );
}

#[test]
fn check_flag_passes_on_the_committed_files() {
    let status = Command::new(env!("CARGO_BIN_EXE_sluice-crdgen"))
        .arg("--check")
        .status()
        .unwrap();
    assert!(
        status.success(),
        "deploy/crds is stale: run `cargo crds` and commit the result"
    );
}

#[test]
fn rendered_yaml_parses_back_to_the_same_crds() {
    let expected = sluice_api::crd::all();
    let rendered = sluice_crdgen::render().unwrap();
    assert_eq!(rendered.len(), expected.len());
    for (crd, file) in expected.iter().zip(&rendered) {
        assert_eq!(file.file_name, sluice_api::crd::file_name(crd));
        let parsed: CustomResourceDefinition = serde_saphyr::from_str(&file.yaml).unwrap();
        assert_eq!(&parsed, crd, "{}", file.file_name);
    }
}

#[test]
fn rendering_is_deterministic() {
    let first: Vec<String> = sluice_crdgen::render()
        .unwrap()
        .into_iter()
        .map(|crd| crd.yaml)
        .collect();
    let second: Vec<String> = sluice_crdgen::render()
        .unwrap()
        .into_iter()
        .map(|crd| crd.yaml)
        .collect();
    assert_eq!(first, second);
}

#[test]
fn stale_files_lists_missing_and_edited_files() {
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<String> = sluice_crdgen::render()
        .unwrap()
        .into_iter()
        .map(|crd| crd.file_name)
        .collect();
    assert_eq!(sluice_crdgen::stale_files(dir.path()).unwrap(), all);

    assert_eq!(sluice_crdgen::write(dir.path()).unwrap(), all);
    assert!(sluice_crdgen::stale_files(dir.path()).unwrap().is_empty());

    let edited = dir.path().join(&all[0]);
    let contents = std::fs::read_to_string(&edited).unwrap();
    std::fs::write(&edited, contents.replace("gitrepo", "gitrepository")).unwrap();
    assert_eq!(
        sluice_crdgen::stale_files(dir.path()).unwrap(),
        vec![all[0].clone()]
    );
}
