//! Flux's documented image examples, defaults and schema validation.

use serde_json::{Value, json};

use super::*;
use crate::crd;

/// Deserializes a YAML manifest and checks it serializes back unchanged.
fn round_trip<K: serde::Serialize + serde::de::DeserializeOwned>(yaml: &str) -> K {
    let document: Value = serde_saphyr::from_str(yaml).unwrap();
    let typed: K = serde_json::from_value(document.clone()).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), document);
    typed
}

fn spec_schema(kind: &str) -> Value {
    let crd = crd::all()
        .into_iter()
        .find(|crd| crd.spec.names.kind == kind)
        .unwrap();
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
    schema["openAPIV3Schema"]["properties"]["spec"].clone()
}

#[test]
fn documented_image_repository_example_round_trips() {
    let repository: ImageRepository = round_trip(
        "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: podinfo
  namespace: default
spec:
  image: stefanprodan/podinfo
  interval: 1h
  provider: generic
",
    );
    assert_eq!(repository.spec.image, "stefanprodan/podinfo");
    assert_eq!(repository.effective_provider(), ImageProvider::Generic);
    assert_eq!(
        repository.effective_timeout().unwrap(),
        std::time::Duration::from_secs(3600)
    );
    assert_eq!(repository.effective_exclusion_list(), vec![r"^.*\.sig$"]);
}

#[test]
fn documented_image_policy_examples_round_trip() {
    let semver: ImagePolicy = round_trip(
        "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: default
spec:
  imageRepositoryRef:
    name: podinfo
  policy:
    semver:
      range: 5.1.x
",
    );
    assert_eq!(semver.spec.policy.semver.as_ref().unwrap().range, "5.1.x");
    assert_eq!(
        semver.effective_digest_reflection_policy(),
        ReflectionPolicy::Never
    );

    let filtered: ImagePolicy = round_trip(
        "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: podinfo
spec:
  imageRepositoryRef:
    name: podinfo
  filterTags:
    pattern: '^main-[a-fA-F0-9]+-(?P<ts>.*)'
    extract: '$ts'
  policy:
    numerical:
      order: asc
",
    );
    assert_eq!(filtered.spec.filter_tags.unwrap().extract, "$ts");

    let digests: ImagePolicy = round_trip(
        "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: podinfo
spec:
  imageRepositoryRef:
    name: podinfo
    namespace: flux-system
  digestReflectionPolicy: Always
  interval: 1h
  policy:
    alphabetical:
      order: desc
",
    );
    assert_eq!(
        digests.digest_refresh_interval().unwrap(),
        Some(std::time::Duration::from_secs(3600))
    );
}

#[test]
fn tag_filter_fields_are_always_written_like_flux() {
    let filter = TagFilter {
        pattern: "^v".to_owned(),
        extract: String::new(),
    };
    assert_eq!(
        serde_json::to_value(&filter).unwrap(),
        json!({"pattern": "^v", "extract": ""})
    );
    let result = ScanResult::default();
    assert_eq!(
        serde_json::to_value(&result).unwrap(),
        json!({"revision": "", "tagCount": 0})
    );
}

#[test]
fn digest_refresh_interval_defaults_to_ten_minutes_only_with_always() {
    let mut policy = ImagePolicy::new(
        "p",
        ImagePolicySpec {
            image_repository_ref: crate::meta::NamespacedObjectReference {
                name: "r".to_owned(),
                namespace: None,
            },
            policy: ImagePolicyChoice::default(),
            filter_tags: None,
            digest_reflection_policy: Some(ReflectionPolicy::IfNotPresent),
            interval: None,
            suspend: false,
        },
    );
    assert_eq!(policy.digest_refresh_interval().unwrap(), None);
    policy.spec.digest_reflection_policy = Some(ReflectionPolicy::Always);
    assert_eq!(
        policy.digest_refresh_interval().unwrap(),
        Some(std::time::Duration::from_secs(600))
    );
}

#[test]
fn image_ref_displays_like_flux() {
    let mut reference = ImageRef {
        name: "ghcr.io/org/app".to_owned(),
        tag: "1.2.3".to_owned(),
        digest: String::new(),
    };
    assert_eq!(reference.to_string(), "ghcr.io/org/app:1.2.3");
    reference.digest = "sha256:abc".to_owned();
    assert_eq!(reference.to_string(), "ghcr.io/org/app:1.2.3@sha256:abc");
}

#[test]
fn timeout_has_a_one_second_floor() {
    let mut repository = ImageRepository::new(
        "r",
        ImageRepositorySpec {
            image: "alpine".to_owned(),
            interval: "500ms".to_owned(),
            timeout: None,
            secret_ref: None,
            proxy_secret_ref: None,
            service_account_name: None,
            cert_secret_ref: None,
            suspend: false,
            access_from: None,
            exclusion_list: vec![],
            provider: None,
            insecure: false,
        },
    );
    assert_eq!(
        repository.effective_timeout().unwrap(),
        std::time::Duration::from_secs(1)
    );
    repository.spec.timeout = Some("45s".to_owned());
    assert_eq!(
        repository.effective_timeout().unwrap(),
        std::time::Duration::from_secs(45)
    );
}

#[test]
fn image_repository_schema_has_flux_defaults_and_validation() {
    let spec = spec_schema("ImageRepository");
    assert_eq!(spec["required"], json!(["image", "interval"]));
    let properties = &spec["properties"];
    assert_eq!(
        properties["exclusionList"]["default"],
        json!(DEFAULT_EXCLUSION_LIST)
    );
    assert_eq!(
        properties["exclusionList"]["maxItems"],
        MAX_EXCLUSION_LIST_LENGTH
    );
    assert_eq!(properties["provider"]["default"], "generic");
    assert_eq!(
        properties["provider"]["enum"],
        json!(["generic", "aws", "azure", "gcp"])
    );
    assert_eq!(
        properties["interval"]["pattern"],
        crate::duration::INTERVAL_PATTERN
    );
    assert_eq!(
        properties["timeout"]["pattern"],
        crate::duration::TIMEOUT_PATTERN
    );
    assert_eq!(properties["serviceAccountName"]["maxLength"], 253);
    assert_eq!(
        properties["accessFrom"]["required"],
        json!(["namespaceSelectors"])
    );
}

#[test]
fn image_policy_schema_has_flux_defaults_and_cel_rules() {
    let spec = spec_schema("ImagePolicy");
    assert_eq!(spec["required"], json!(["imageRepositoryRef", "policy"]));
    let properties = &spec["properties"];
    assert_eq!(properties["digestReflectionPolicy"]["default"], "Never");
    assert_eq!(
        properties["digestReflectionPolicy"]["enum"],
        json!(["Always", "IfNotPresent", "Never"])
    );
    let policy = &properties["policy"]["properties"];
    assert_eq!(policy["semver"]["required"], json!(["range"]));
    assert_eq!(
        policy["alphabetical"]["properties"]["order"]["default"],
        "asc"
    );
    assert_eq!(
        policy["numerical"]["properties"]["order"]["enum"],
        json!(["asc", "desc"])
    );
    assert!(properties["filterTags"]["properties"]["pattern"]["default"].is_null());
    let rules: Vec<&str> = spec["x-kubernetes-validations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| rule["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules.len(), 2);
    assert!(
        rules
            .iter()
            .all(|rule| rule.contains("digestReflectionPolicy"))
    );
}
