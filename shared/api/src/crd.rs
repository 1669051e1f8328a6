//! CustomResourceDefinitions for every kind, shaped like Flux's published CRDs.
//!
//! Use [`all`] rather than `Kind::crd()`: it drops kube-derive's `nullable` markers (and `null` enum
//! values) and adds the root `apiVersion`/`kind`/`metadata` properties.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube_core::CustomResourceExt;

use crate::image::{ImagePolicy, ImageRepository, ImageUpdateAutomation};
use crate::kustomize::Kustomization;
use crate::notification::{Alert, Provider, Receiver};
use crate::source::{
    Bucket, ExternalArtifact, GitRepository, HelmChart, HelmRepository, OCIRepository,
};

/// The CRDs of GitRepository, OCIRepository, Bucket, HelmRepository, HelmChart, ExternalArtifact,
/// Kustomization, ImageRepository, ImagePolicy,
/// ImageUpdateAutomation, Provider, Alert and Receiver.
pub fn all() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        GitRepository::crd(),
        OCIRepository::crd(),
        Bucket::crd(),
        HelmRepository::crd(),
        HelmChart::crd(),
        ExternalArtifact::crd(),
        Kustomization::crd(),
        ImageRepository::crd(),
        ImagePolicy::crd(),
        ImageUpdateAutomation::crd(),
        Provider::crd(),
        Alert::crd(),
        Receiver::crd(),
    ];
    for crd in &mut crds {
        crd.spec.names.list_kind = Some(format!("{}List", crd.spec.names.kind));
        for version in &mut crd.spec.versions {
            if let Some(schema) = version
                .schema
                .as_mut()
                .and_then(|validation| validation.open_api_v3_schema.as_mut())
            {
                remove_nullable(schema);
                schema.title = None;
                add_root_type_meta(schema);
            }
        }
    }
    crds
}

/// Flux's file name for a CRD, e.g. `source.toolkit.fluxcd.io_gitrepositories.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// Ways in which a CRD's schemas break the apiserver's structural schema rules.
///
/// Returns one message per offending schema node, naming its path; empty when the CRD is valid.
pub fn structural_violations(crd: &CustomResourceDefinition) -> Vec<String> {
    let mut violations = Vec::new();
    for version in &crd.spec.versions {
        match version
            .schema
            .as_ref()
            .and_then(|validation| validation.open_api_v3_schema.as_ref())
        {
            Some(schema) => check_structural(schema, &version.name, &mut violations),
            None => violations.push(format!("{}: no schema", version.name)),
        }
    }
    violations
}

fn remove_nullable(schema: &mut JSONSchemaProps) {
    schema.nullable = None;
    if let Some(values) = schema.enum_.as_mut() {
        values.retain(|value| !value.0.is_null());
    }
    for child in children_mut(schema) {
        remove_nullable(child);
    }
}

fn add_root_type_meta(schema: &mut JSONSchemaProps) {
    let typed = |type_: &str| JSONSchemaProps {
        type_: Some(type_.to_owned()),
        ..JSONSchemaProps::default()
    };
    let properties = schema.properties.get_or_insert_with(BTreeMap::new);
    properties.insert("apiVersion".to_owned(), typed("string"));
    properties.insert("kind".to_owned(), typed("string"));
    properties.insert("metadata".to_owned(), typed("object"));
}

fn children_mut(schema: &mut JSONSchemaProps) -> Vec<&mut JSONSchemaProps> {
    let mut children: Vec<&mut JSONSchemaProps> = Vec::new();
    if let Some(properties) = schema.properties.as_mut() {
        children.extend(properties.values_mut());
    }
    match schema.items.as_mut() {
        Some(JSONSchemaPropsOrArray::Schema(items)) => children.push(items),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => children.extend(items.iter_mut()),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(additional)) = schema.additional_properties.as_mut() {
        children.push(additional);
    }
    children
}

fn check_structural(schema: &JSONSchemaProps, path: &str, violations: &mut Vec<String>) {
    let mut fail = |problem: &str| violations.push(format!("{path}: {problem}"));
    let free_form = schema.x_kubernetes_preserve_unknown_fields == Some(true)
        || schema.x_kubernetes_int_or_string == Some(true);
    if schema.type_.as_deref().is_none_or(str::is_empty) && !free_form {
        fail("missing type");
    }
    if schema.any_of.is_some() || schema.one_of.is_some() || schema.all_of.is_some() {
        fail("uses anyOf/oneOf/allOf");
    }
    if schema.not.is_some() {
        fail("uses not");
    }
    if schema.ref_path.is_some() || schema.definitions.is_some() {
        fail("uses $ref or definitions");
    }
    if schema.pattern_properties.is_some() || schema.dependencies.is_some() {
        fail("uses patternProperties or dependencies");
    }
    if schema.additional_items.is_some() || schema.unique_items == Some(true) {
        fail("uses additionalItems or uniqueItems");
    }
    if schema.properties.is_some() && schema.additional_properties.is_some() {
        fail("sets both properties and additionalProperties");
    }
    if matches!(schema.items, Some(JSONSchemaPropsOrArray::Schemas(_))) {
        fail("items must be a single schema");
    }
    if schema.type_.as_deref() == Some("array") && schema.items.is_none() && !free_form {
        fail("array without items");
    }
    if schema
        .enum_
        .as_ref()
        .is_some_and(|values| values.iter().any(|value| value.0.is_null()))
    {
        fail("null enum value");
    }
    if let Some(properties) = &schema.properties {
        for (name, child) in properties {
            check_structural(child, &format!("{path}.{name}"), violations);
        }
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = &schema.items {
        check_structural(items, &format!("{path}[]"), violations);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(additional)) = &schema.additional_properties {
        check_structural(additional, &format!("{path}{{}}"), violations);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(kind: &str) -> CustomResourceDefinition {
        all()
            .into_iter()
            .find(|crd| crd.spec.names.kind == kind)
            .unwrap()
    }

    fn schema(kind: &str) -> serde_json::Value {
        let crd = crd(kind);
        serde_json::to_value(&crd.spec.versions[0].schema).unwrap()["openAPIV3Schema"].clone()
    }

    #[test]
    fn every_crd_is_structural() {
        for crd in all() {
            assert_eq!(
                structural_violations(&crd),
                Vec::<String>::new(),
                "{}",
                crd.spec.names.kind
            );
        }
    }

    #[test]
    fn structural_check_reports_offending_paths() {
        let mut crd = crd("Bucket");
        let schema = crd.spec.versions[0]
            .schema
            .as_mut()
            .unwrap()
            .open_api_v3_schema
            .as_mut()
            .unwrap();
        let spec = schema.properties.as_mut().unwrap().get_mut("spec").unwrap();
        let endpoint = spec
            .properties
            .as_mut()
            .unwrap()
            .get_mut("endpoint")
            .unwrap();
        endpoint.type_ = None;
        endpoint.any_of = Some(vec![JSONSchemaProps::default()]);
        let violations = structural_violations(&crd);
        assert_eq!(
            violations,
            vec![
                "v1.spec.endpoint: missing type".to_owned(),
                "v1.spec.endpoint: uses anyOf/oneOf/allOf".to_owned(),
            ]
        );
    }

    #[test]
    fn no_nullable_or_null_enum_values_remain() {
        for crd in all() {
            let text = serde_json::to_string(&crd).unwrap();
            assert!(!text.contains("nullable"), "{}", crd.spec.names.kind);
            assert!(
                !text.contains("null,") && !text.contains("null]"),
                "{}",
                crd.spec.names.kind
            );
        }
    }

    #[test]
    fn names_match_flux() {
        let names: Vec<_> = all()
            .iter()
            .map(|crd| {
                (
                    file_name(crd),
                    crd.metadata.name.clone().unwrap(),
                    crd.spec.names.short_names.clone().unwrap_or_default(),
                    crd.spec.names.categories.clone().unwrap_or_default(),
                )
            })
            .collect();
        let sources = vec![
            "all".to_owned(),
            "fluxcd".to_owned(),
            "fluxcd-sources".to_owned(),
        ];
        let images = vec![
            "all".to_owned(),
            "fluxcd".to_owned(),
            "fluxcd-images".to_owned(),
        ];
        let notifications = vec![
            "all".to_owned(),
            "fluxcd".to_owned(),
            "fluxcd-notifications".to_owned(),
        ];
        assert_eq!(
            names,
            vec![
                (
                    "source.toolkit.fluxcd.io_gitrepositories.yaml".to_owned(),
                    "gitrepositories.source.toolkit.fluxcd.io".to_owned(),
                    vec!["gitrepo".to_owned()],
                    sources.clone(),
                ),
                (
                    "source.toolkit.fluxcd.io_ocirepositories.yaml".to_owned(),
                    "ocirepositories.source.toolkit.fluxcd.io".to_owned(),
                    vec!["ocirepo".to_owned()],
                    sources.clone(),
                ),
                (
                    "source.toolkit.fluxcd.io_buckets.yaml".to_owned(),
                    "buckets.source.toolkit.fluxcd.io".to_owned(),
                    vec![],
                    sources.clone(),
                ),
                (
                    "source.toolkit.fluxcd.io_helmrepositories.yaml".to_owned(),
                    "helmrepositories.source.toolkit.fluxcd.io".to_owned(),
                    vec!["helmrepo".to_owned()],
                    sources.clone(),
                ),
                (
                    "source.toolkit.fluxcd.io_helmcharts.yaml".to_owned(),
                    "helmcharts.source.toolkit.fluxcd.io".to_owned(),
                    vec!["hc".to_owned()],
                    sources.clone(),
                ),
                (
                    "source.toolkit.fluxcd.io_externalartifacts.yaml".to_owned(),
                    "externalartifacts.source.toolkit.fluxcd.io".to_owned(),
                    vec!["ea".to_owned()],
                    sources,
                ),
                (
                    "kustomize.toolkit.fluxcd.io_kustomizations.yaml".to_owned(),
                    "kustomizations.kustomize.toolkit.fluxcd.io".to_owned(),
                    vec!["ks".to_owned()],
                    vec![
                        "all".to_owned(),
                        "fluxcd".to_owned(),
                        "fluxcd-appliers".to_owned(),
                    ],
                ),
                (
                    "image.toolkit.fluxcd.io_imagerepositories.yaml".to_owned(),
                    "imagerepositories.image.toolkit.fluxcd.io".to_owned(),
                    vec!["imgrepo".to_owned(), "imagerepo".to_owned()],
                    images.clone(),
                ),
                (
                    "image.toolkit.fluxcd.io_imagepolicies.yaml".to_owned(),
                    "imagepolicies.image.toolkit.fluxcd.io".to_owned(),
                    vec!["imgpol".to_owned(), "imagepol".to_owned()],
                    images.clone(),
                ),
                (
                    "image.toolkit.fluxcd.io_imageupdateautomations.yaml".to_owned(),
                    "imageupdateautomations.image.toolkit.fluxcd.io".to_owned(),
                    vec!["iua".to_owned(), "imgupd".to_owned(), "imgauto".to_owned()],
                    images,
                ),
                (
                    "notification.toolkit.fluxcd.io_providers.yaml".to_owned(),
                    "providers.notification.toolkit.fluxcd.io".to_owned(),
                    vec![],
                    notifications.clone(),
                ),
                (
                    "notification.toolkit.fluxcd.io_alerts.yaml".to_owned(),
                    "alerts.notification.toolkit.fluxcd.io".to_owned(),
                    vec![],
                    notifications.clone(),
                ),
                (
                    "notification.toolkit.fluxcd.io_receivers.yaml".to_owned(),
                    "receivers.notification.toolkit.fluxcd.io".to_owned(),
                    vec![],
                    notifications,
                ),
            ]
        );
    }

    /// Flux's `v1beta3` kinds: no status, only the Age column.
    const STATIC_KINDS: [&str; 2] = ["Provider", "Alert"];

    #[test]
    fn status_subresource_and_printer_columns() {
        for crd in all() {
            let version = &crd.spec.versions[0];
            if STATIC_KINDS.contains(&crd.spec.names.kind.as_str()) {
                assert_eq!(version.name, "v1beta3");
                assert!(version.served && version.storage);
                assert!(version.subresources.is_none(), "{}", crd.spec.names.kind);
                continue;
            }
            assert_eq!(version.name, "v1");
            assert!(version.served && version.storage);
            assert!(version.subresources.as_ref().unwrap().status.is_some());
            let mut columns: Vec<_> = version
                .additional_printer_columns
                .as_ref()
                .unwrap()
                .iter()
                .map(|column| column.name.as_str())
                .collect();
            columns.sort_unstable();
            let mut expected = vec!["Age", "Ready", "Status"];
            match crd.spec.names.kind.as_str() {
                "GitRepository" | "OCIRepository" | "HelmRepository" => expected.push("URL"),
                "HelmChart" => expected.extend(["Chart", "Version", "Source Kind", "Source Name"]),
                "ExternalArtifact" => expected.push("Source"),
                "Bucket" => expected.push("Endpoint"),
                "ImageRepository" => expected.extend(["Image", "Tags", "Last scan"]),
                "ImagePolicy" => expected.extend(["Image", "Tag"]),
                "ImageUpdateAutomation" => expected.push("Last run"),
                _ => {}
            }
            expected.sort_unstable();
            assert_eq!(columns, expected, "{}", crd.spec.names.kind);
        }
    }

    #[test]
    fn flux_defaults_and_validation_are_present() {
        let git = schema("GitRepository");
        let spec = &git["properties"]["spec"]["properties"];
        assert_eq!(spec["timeout"]["default"], "60s");
        assert_eq!(spec["verify"]["properties"]["mode"]["default"], "HEAD");
        assert_eq!(
            spec["provider"]["enum"],
            serde_json::json!(["generic", "aws", "azure", "github"])
        );
        assert_eq!(
            git["properties"]["status"]["default"]["observedGeneration"],
            -1
        );
        assert_eq!(git["properties"]["metadata"]["type"], "object");

        let oci = schema("OCIRepository");
        let spec = &oci["properties"]["spec"]["properties"];
        assert_eq!(spec["provider"]["default"], "generic");
        assert_eq!(
            spec["verify"]["properties"]["provider"]["default"],
            "cosign"
        );
        assert_eq!(spec["verify"]["required"], serde_json::json!(["provider"]));

        let bucket = schema("Bucket");
        let spec = &bucket["properties"]["spec"];
        assert_eq!(
            spec["x-kubernetes-validations"].as_array().unwrap().len(),
            7
        );
        assert_eq!(
            spec["required"],
            serde_json::json!(["bucketName", "endpoint", "interval"])
        );

        let helm_repository = schema("HelmRepository");
        let spec = &helm_repository["properties"]["spec"];
        assert_eq!(spec["required"], serde_json::json!(["url"]));
        assert_eq!(spec["properties"]["provider"]["default"], "generic");
        assert_eq!(
            spec["properties"]["type"]["enum"],
            serde_json::json!(["default", "oci"])
        );

        let chart = schema("HelmChart");
        let spec = &chart["properties"]["spec"];
        assert_eq!(
            spec["required"],
            serde_json::json!(["chart", "interval", "sourceRef"])
        );
        assert_eq!(spec["properties"]["version"]["default"], "*");
        assert_eq!(
            spec["properties"]["reconcileStrategy"]["default"],
            "ChartVersion"
        );
        assert_eq!(
            spec["properties"]["sourceRef"]["properties"]["kind"]["enum"],
            serde_json::json!(["HelmRepository", "GitRepository", "Bucket"])
        );

        let kustomization = schema("Kustomization");
        let spec = &kustomization["properties"]["spec"];
        assert_eq!(
            spec["required"],
            serde_json::json!(["interval", "prune", "sourceRef"])
        );
        let properties = &spec["properties"];
        assert_eq!(properties["force"]["default"], false);
        assert_eq!(properties["targetNamespace"]["maxLength"], 63);
        assert_eq!(
            properties["patches"]["items"]["properties"]["patch"]["type"],
            "string"
        );
        assert_eq!(
            properties["postBuild"]["properties"]["substitute"]["additionalProperties"]["type"],
            "string"
        );
        assert_eq!(
            properties["sourceRef"]["properties"]["kind"]["enum"],
            serde_json::json!([
                "OCIRepository",
                "GitRepository",
                "Bucket",
                "ExternalArtifact"
            ])
        );
        let inventory = &kustomization["properties"]["status"]["properties"]["inventory"];
        assert_eq!(
            inventory["properties"]["entries"]["items"]["required"],
            serde_json::json!(["id", "v"])
        );
    }
}
