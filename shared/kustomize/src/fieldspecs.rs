//! Field specs: which fields of which kinds each transformer touches, with kustomize's defaults.
//!
//! Tables use one spec per line: `kind group version path [create]`, with `-` for "any".

use std::sync::OnceLock;

use serde_json::Value;

use crate::kustomization::Fields;
use crate::resource::Gvk;

/// A field path (slash-separated, `\/` for a literal slash, `name[]` for a list) on kinds
/// matching `gvk`; `create` adds missing fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldSpec {
    pub gvk: Gvk,
    pub path: String,
    pub create: bool,
}

/// A kind that can be referred to by name, and the fields that refer to it.
#[derive(Clone, Debug)]
pub(crate) struct NameReference {
    pub target: Gvk,
    pub referrers: Vec<FieldSpec>,
}

const METADATA_LABELS: &str = "
- - - metadata/labels create
ReplicationController - v1 spec/template/metadata/labels create
Deployment - - spec/template/metadata/labels create
ReplicaSet - - spec/template/metadata/labels create
DaemonSet - - spec/template/metadata/labels create
StatefulSet apps - spec/template/metadata/labels create
Job batch - spec/template/metadata/labels create
CronJob batch - spec/jobTemplate/metadata/labels create
CronJob batch - spec/jobTemplate/spec/template/metadata/labels create
";

const SELECTOR_LABELS: &str = "
Service - v1 spec/selector create
ReplicationController - v1 spec/selector create
Deployment - - spec/selector/matchLabels create
Deployment apps - spec/template/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels
Deployment apps - spec/template/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels
Deployment apps - spec/template/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels
Deployment apps - spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels
Deployment apps - spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels
ReplicaSet - - spec/selector/matchLabels create
DaemonSet - - spec/selector/matchLabels create
StatefulSet apps - spec/selector/matchLabels create
StatefulSet apps - spec/template/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels
StatefulSet apps - spec/template/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels
StatefulSet apps - spec/template/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels
StatefulSet apps - spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels
StatefulSet apps - spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels
Job batch - spec/selector/matchLabels
CronJob batch - spec/jobTemplate/spec/selector/matchLabels
PodDisruptionBudget policy - spec/selector/matchLabels
NetworkPolicy networking.k8s.io - spec/podSelector/matchLabels
NetworkPolicy networking.k8s.io - spec/ingress/from/podSelector/matchLabels
NetworkPolicy networking.k8s.io - spec/egress/to/podSelector/matchLabels
";

const VOLUME_CLAIM_TEMPLATE_LABELS: &str = "
StatefulSet apps - spec/volumeClaimTemplates[]/metadata/labels create
";

const ANNOTATIONS: &str = "
- - - metadata/annotations create
ReplicationController - v1 spec/template/metadata/annotations create
Deployment - - spec/template/metadata/annotations create
ReplicaSet - - spec/template/metadata/annotations create
DaemonSet - - spec/template/metadata/annotations create
StatefulSet - - spec/template/metadata/annotations create
Job batch - spec/template/metadata/annotations create
CronJob batch - spec/jobTemplate/metadata/annotations create
CronJob batch - spec/jobTemplate/spec/template/metadata/annotations create
";

const NAMESPACE: &str = "
Namespace - - metadata/name create
APIService apiregistration.k8s.io - spec/service/namespace create
CustomResourceDefinition apiextensions.k8s.io - spec/conversion/webhook/clientConfig/service/namespace
";

const IMAGES: &str = "
- - - spec/containers[]/image create
- - - spec/initContainers[]/image create
- - - spec/volumes[]/image/reference create
- - - spec/template/spec/containers[]/image create
- - - spec/template/spec/initContainers[]/image create
- - - spec/template/spec/volumes[]/image/reference create
- - - spec/jobTemplate/spec/template/spec/volumes[]/image/reference create
";

const REPLICAS: &str = "
Deployment - - spec/replicas create
ReplicationController - - spec/replicas create
ReplicaSet - - spec/replicas create
StatefulSet - - spec/replicas create
";

const VAR_REFERENCES: &str = "
CronJob - - spec/jobTemplate/spec/template/spec/containers/args
CronJob - - spec/jobTemplate/spec/template/spec/containers/command
CronJob - - spec/jobTemplate/spec/template/spec/containers/env/value
CronJob - - spec/jobTemplate/spec/template/spec/containers/volumeMounts/mountPath
CronJob - - spec/jobTemplate/spec/template/spec/initContainers/args
CronJob - - spec/jobTemplate/spec/template/spec/initContainers/command
CronJob - - spec/jobTemplate/spec/template/spec/initContainers/env/value
CronJob - - spec/jobTemplate/spec/template/spec/initContainers/volumeMounts/mountPath
CronJob - - spec/jobTemplate/spec/template/volumes/nfs/server
DaemonSet - - spec/template/spec/containers/args
DaemonSet - - spec/template/spec/containers/command
DaemonSet - - spec/template/spec/containers/env/value
DaemonSet - - spec/template/spec/containers/volumeMounts/mountPath
DaemonSet - - spec/template/spec/initContainers/args
DaemonSet - - spec/template/spec/initContainers/command
DaemonSet - - spec/template/spec/initContainers/env/value
DaemonSet - - spec/template/spec/initContainers/volumeMounts/mountPath
DaemonSet - - spec/template/spec/volumes/nfs/server
Deployment - - spec/template/spec/containers/args
Deployment - - spec/template/spec/containers/command
Deployment - - spec/template/spec/containers/env/value
Deployment - - spec/template/spec/containers/volumeMounts/mountPath
Deployment - - spec/template/spec/initContainers/args
Deployment - - spec/template/spec/initContainers/command
Deployment - - spec/template/spec/initContainers/env/value
Deployment - - spec/template/spec/initContainers/volumeMounts/mountPath
Deployment - - spec/template/spec/volumes/nfs/server
Deployment - - spec/template/metadata/annotations
Ingress - - spec/rules/host
Ingress - - spec/tls/hosts
Ingress - - spec/tls/secretName
Job - - spec/template/spec/containers/args
Job - - spec/template/spec/containers/command
Job - - spec/template/spec/containers/env/value
Job - - spec/template/spec/containers/volumeMounts/mountPath
Job - - spec/template/spec/initContainers/args
Job - - spec/template/spec/initContainers/command
Job - - spec/template/spec/initContainers/env/value
Job - - spec/template/spec/initContainers/volumeMounts/mountPath
Job - - spec/template/spec/volumes/nfs/server
Pod - - spec/containers/args
Pod - - spec/containers/command
Pod - - spec/containers/env/value
Pod - - spec/containers/volumeMounts/mountPath
Pod - - spec/initContainers/args
Pod - - spec/initContainers/command
Pod - - spec/initContainers/env/value
Pod - - spec/initContainers/volumeMounts/mountPath
Pod - - spec/volumes/nfs/server
ReplicaSet - - spec/template/spec/containers/args
ReplicaSet - - spec/template/spec/containers/command
ReplicaSet - - spec/template/spec/containers/env/value
ReplicaSet - - spec/template/spec/containers/volumeMounts/mountPath
ReplicaSet - - spec/template/spec/initContainers/args
ReplicaSet - - spec/template/spec/initContainers/command
ReplicaSet - - spec/template/spec/initContainers/env/value
ReplicaSet - - spec/template/spec/initContainers/volumeMounts/mountPath
ReplicaSet - - spec/template/spec/volumes/nfs/server
Service - - spec/ports/port
Service - - spec/ports/targetPort
StatefulSet - - spec/template/spec/containers/args
StatefulSet - - spec/template/spec/containers/command
StatefulSet - - spec/template/spec/containers/env/value
StatefulSet - - spec/template/spec/containers/volumeMounts/mountPath
StatefulSet - - spec/template/spec/initContainers/args
StatefulSet - - spec/template/spec/initContainers/command
StatefulSet - - spec/template/spec/initContainers/env/value
StatefulSet - - spec/template/spec/initContainers/volumeMounts/mountPath
StatefulSet - - spec/volumeClaimTemplates/spec/nfs/server
PersistentVolume - - spec/nfs/server
- - - metadata/labels
- - - metadata/annotations
";

/// Referenced kinds end with `:`; the indented lines below each are its referrers.
const NAME_REFERENCES: &str = r"
Deployment - -:
  HorizontalPodAutoscaler - - spec/scaleTargetRef/name
ReplicationController - -:
  HorizontalPodAutoscaler - - spec/scaleTargetRef/name
ReplicaSet - -:
  HorizontalPodAutoscaler - - spec/scaleTargetRef/name
StatefulSet - -:
  HorizontalPodAutoscaler - - spec/scaleTargetRef/name
ConfigMap - v1:
  Pod - v1 spec/volumes/configMap/name
  Pod - v1 spec/containers/env/valueFrom/configMapKeyRef/name
  Pod - v1 spec/initContainers/env/valueFrom/configMapKeyRef/name
  Pod - v1 spec/containers/envFrom/configMapRef/name
  Pod - v1 spec/initContainers/envFrom/configMapRef/name
  Pod - v1 spec/volumes/projected/sources/configMap/name
  PodTemplate - - template/spec/volumes/configMap/name
  PodTemplate - - template/spec/containers/env/valueFrom/configMapKeyRef/name
  PodTemplate - - template/spec/initContainers/env/valueFrom/configMapKeyRef/name
  PodTemplate - - template/spec/containers/envFrom/configMapRef/name
  PodTemplate - - template/spec/initContainers/envFrom/configMapRef/name
  PodTemplate - - template/spec/volumes/projected/sources/configMap/name
  Deployment - - spec/template/spec/volumes/configMap/name
  Deployment - - spec/template/spec/containers/env/valueFrom/configMapKeyRef/name
  Deployment - - spec/template/spec/initContainers/env/valueFrom/configMapKeyRef/name
  Deployment - - spec/template/spec/containers/envFrom/configMapRef/name
  Deployment - - spec/template/spec/initContainers/envFrom/configMapRef/name
  Deployment - - spec/template/spec/volumes/projected/sources/configMap/name
  ReplicaSet - - spec/template/spec/volumes/configMap/name
  ReplicaSet - - spec/template/spec/containers/env/valueFrom/configMapKeyRef/name
  ReplicaSet - - spec/template/spec/initContainers/env/valueFrom/configMapKeyRef/name
  ReplicaSet - - spec/template/spec/containers/envFrom/configMapRef/name
  ReplicaSet - - spec/template/spec/initContainers/envFrom/configMapRef/name
  ReplicaSet - - spec/template/spec/volumes/projected/sources/configMap/name
  DaemonSet - - spec/template/spec/volumes/configMap/name
  DaemonSet - - spec/template/spec/containers/env/valueFrom/configMapKeyRef/name
  DaemonSet - - spec/template/spec/initContainers/env/valueFrom/configMapKeyRef/name
  DaemonSet - - spec/template/spec/containers/envFrom/configMapRef/name
  DaemonSet - - spec/template/spec/initContainers/envFrom/configMapRef/name
  DaemonSet - - spec/template/spec/volumes/projected/sources/configMap/name
  StatefulSet - - spec/template/spec/volumes/configMap/name
  StatefulSet - - spec/template/spec/containers/env/valueFrom/configMapKeyRef/name
  StatefulSet - - spec/template/spec/initContainers/env/valueFrom/configMapKeyRef/name
  StatefulSet - - spec/template/spec/containers/envFrom/configMapRef/name
  StatefulSet - - spec/template/spec/initContainers/envFrom/configMapRef/name
  StatefulSet - - spec/template/spec/volumes/projected/sources/configMap/name
  Job - - spec/template/spec/volumes/configMap/name
  Job - - spec/template/spec/containers/env/valueFrom/configMapKeyRef/name
  Job - - spec/template/spec/initContainers/env/valueFrom/configMapKeyRef/name
  Job - - spec/template/spec/containers/envFrom/configMapRef/name
  Job - - spec/template/spec/initContainers/envFrom/configMapRef/name
  Job - - spec/template/spec/volumes/projected/sources/configMap/name
  CronJob - - spec/jobTemplate/spec/template/spec/volumes/configMap/name
  CronJob - - spec/jobTemplate/spec/template/spec/volumes/projected/sources/configMap/name
  CronJob - - spec/jobTemplate/spec/template/spec/containers/env/valueFrom/configMapKeyRef/name
  CronJob - - spec/jobTemplate/spec/template/spec/initContainers/env/valueFrom/configMapKeyRef/name
  CronJob - - spec/jobTemplate/spec/template/spec/containers/envFrom/configMapRef/name
  CronJob - - spec/jobTemplate/spec/template/spec/initContainers/envFrom/configMapRef/name
  Node - - spec/configSource/configMap
  Role - - rules/resourceNames
  ClusterRole - - rules/resourceNames
  Ingress - - metadata/annotations/nginx.ingress.kubernetes.io\/fastcgi-params-configmap
Secret - v1:
  Pod - v1 spec/volumes/secret/secretName
  Pod - v1 spec/containers/env/valueFrom/secretKeyRef/name
  Pod - v1 spec/initContainers/env/valueFrom/secretKeyRef/name
  Pod - v1 spec/containers/envFrom/secretRef/name
  Pod - v1 spec/initContainers/envFrom/secretRef/name
  Pod - v1 spec/imagePullSecrets/name
  Pod - v1 spec/volumes/projected/sources/secret/name
  PodTemplate - - template/spec/volumes/secret/secretName
  PodTemplate - - template/spec/containers/env/valueFrom/secretKeyRef/name
  PodTemplate - - template/spec/initContainers/env/valueFrom/secretKeyRef/name
  PodTemplate - - template/spec/containers/envFrom/secretRef/name
  PodTemplate - - template/spec/initContainers/envFrom/secretRef/name
  PodTemplate - - template/spec/imagePullSecrets/name
  PodTemplate - - template/spec/volumes/projected/sources/secret/name
  Deployment - - spec/template/spec/volumes/secret/secretName
  Deployment - - spec/template/spec/containers/env/valueFrom/secretKeyRef/name
  Deployment - - spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name
  Deployment - - spec/template/spec/containers/envFrom/secretRef/name
  Deployment - - spec/template/spec/initContainers/envFrom/secretRef/name
  Deployment - - spec/template/spec/imagePullSecrets/name
  Deployment - - spec/template/spec/volumes/projected/sources/secret/name
  ReplicaSet - - spec/template/spec/volumes/secret/secretName
  ReplicaSet - - spec/template/spec/containers/env/valueFrom/secretKeyRef/name
  ReplicaSet - - spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name
  ReplicaSet - - spec/template/spec/containers/envFrom/secretRef/name
  ReplicaSet - - spec/template/spec/initContainers/envFrom/secretRef/name
  ReplicaSet - - spec/template/spec/imagePullSecrets/name
  ReplicaSet - - spec/template/spec/volumes/projected/sources/secret/name
  DaemonSet - - spec/template/spec/volumes/secret/secretName
  DaemonSet - - spec/template/spec/containers/env/valueFrom/secretKeyRef/name
  DaemonSet - - spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name
  DaemonSet - - spec/template/spec/containers/envFrom/secretRef/name
  DaemonSet - - spec/template/spec/initContainers/envFrom/secretRef/name
  DaemonSet - - spec/template/spec/imagePullSecrets/name
  DaemonSet - - spec/template/spec/volumes/projected/sources/secret/name
  StatefulSet - - spec/template/spec/volumes/secret/secretName
  StatefulSet - - spec/template/spec/containers/env/valueFrom/secretKeyRef/name
  StatefulSet - - spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name
  StatefulSet - - spec/template/spec/containers/envFrom/secretRef/name
  StatefulSet - - spec/template/spec/initContainers/envFrom/secretRef/name
  StatefulSet - - spec/template/spec/imagePullSecrets/name
  StatefulSet - - spec/template/spec/volumes/projected/sources/secret/name
  Job - - spec/template/spec/volumes/secret/secretName
  Job - - spec/template/spec/containers/env/valueFrom/secretKeyRef/name
  Job - - spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name
  Job - - spec/template/spec/containers/envFrom/secretRef/name
  Job - - spec/template/spec/initContainers/envFrom/secretRef/name
  Job - - spec/template/spec/imagePullSecrets/name
  Job - - spec/template/spec/volumes/projected/sources/secret/name
  CronJob - - spec/jobTemplate/spec/template/spec/volumes/secret/secretName
  CronJob - - spec/jobTemplate/spec/template/spec/volumes/projected/sources/secret/name
  CronJob - - spec/jobTemplate/spec/template/spec/containers/env/valueFrom/secretKeyRef/name
  CronJob - - spec/jobTemplate/spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name
  CronJob - - spec/jobTemplate/spec/template/spec/containers/envFrom/secretRef/name
  CronJob - - spec/jobTemplate/spec/template/spec/initContainers/envFrom/secretRef/name
  CronJob - - spec/jobTemplate/spec/template/spec/imagePullSecrets/name
  Ingress - - spec/tls/secretName
  Ingress - - metadata/annotations/ingress.kubernetes.io\/auth-secret
  Ingress - - metadata/annotations/nginx.ingress.kubernetes.io\/auth-secret
  Ingress - - metadata/annotations/nginx.ingress.kubernetes.io\/auth-tls-secret
  ServiceAccount - - imagePullSecrets/name
  StorageClass - - parameters/secretName
  StorageClass - - parameters/adminSecretName
  StorageClass - - parameters/userSecretName
  StorageClass - - parameters/secretRef
  Role - - rules/resourceNames
  ClusterRole - - rules/resourceNames
  Service serving.knative.dev v1 spec/template/spec/containers/env/valueFrom/secretKeyRef/name
  PersistentVolume - - spec/azureFile/secretName
Service - v1:
  StatefulSet apps - spec/serviceName
  Ingress - - spec/rules/http/paths/backend/serviceName
  Ingress - - spec/backend/serviceName
  Ingress - - spec/rules/http/paths/backend/service/name
  Ingress - - spec/defaultBackend/service/name
  APIService apiregistration.k8s.io - spec/service/name
  ValidatingWebhookConfiguration admissionregistration.k8s.io - webhooks/clientConfig/service
  MutatingWebhookConfiguration admissionregistration.k8s.io - webhooks/clientConfig/service
Role rbac.authorization.k8s.io -:
  RoleBinding rbac.authorization.k8s.io - roleRef/name
ClusterRole rbac.authorization.k8s.io -:
  RoleBinding rbac.authorization.k8s.io - roleRef/name
  ClusterRoleBinding rbac.authorization.k8s.io - roleRef/name
ServiceAccount - v1:
  RoleBinding rbac.authorization.k8s.io - subjects
  ClusterRoleBinding rbac.authorization.k8s.io - subjects
  Pod - - spec/serviceAccountName
  StatefulSet - - spec/template/spec/serviceAccountName
  Deployment - - spec/template/spec/serviceAccountName
  ReplicationController - - spec/template/spec/serviceAccountName
  CronJob - - spec/jobTemplate/spec/template/spec/serviceAccountName
  Job - - spec/template/spec/serviceAccountName
  DaemonSet - - spec/template/spec/serviceAccountName
PersistentVolumeClaim - v1:
  Pod - - spec/volumes/persistentVolumeClaim/claimName
  StatefulSet - - spec/template/spec/volumes/persistentVolumeClaim/claimName
  Deployment - - spec/template/spec/volumes/persistentVolumeClaim/claimName
  ReplicationController - - spec/template/spec/volumes/persistentVolumeClaim/claimName
  CronJob - - spec/jobTemplate/spec/template/spec/volumes/persistentVolumeClaim/claimName
  Job - - spec/template/spec/volumes/persistentVolumeClaim/claimName
  DaemonSet - - spec/template/spec/volumes/persistentVolumeClaim/claimName
PersistentVolume - v1:
  PersistentVolumeClaim - - spec/volumeName
  ClusterRole - - rules/resourceNames
StorageClass storage.k8s.io v1:
  PersistentVolume - - spec/storageClassName
  PersistentVolumeClaim - - spec/storageClassName
  StatefulSet - - spec/volumeClaimTemplates/spec/storageClassName
PriorityClass scheduling.k8s.io v1:
  Pod - - spec/priorityClassName
  StatefulSet - - spec/template/spec/priorityClassName
  Deployment - - spec/template/spec/priorityClassName
  ReplicationController - - spec/template/spec/priorityClassName
  CronJob - - spec/jobTemplate/spec/template/spec/priorityClassName
  Job - - spec/template/spec/priorityClassName
  DaemonSet - - spec/template/spec/priorityClassName
IngressClass networking.k8s.io/v1 v1:
  Ingress - - spec/ingressClassName
ValidatingAdmissionPolicy admissionregistration.k8s.io -:
  ValidatingAdmissionPolicyBinding admissionregistration.k8s.io - spec/policyName
";

/// The field specs each transformer uses: kustomize's built-in ones, extended by
/// `configurations` files (which also apply to the kustomizations that include this one).
#[derive(Clone, Debug, Default)]
pub(crate) struct TransformerConfig {
    pub name_prefix: Vec<FieldSpec>,
    pub name_suffix: Vec<FieldSpec>,
    pub namespace: Vec<FieldSpec>,
    pub common_labels: Vec<FieldSpec>,
    pub labels: Vec<FieldSpec>,
    pub template_labels: Vec<FieldSpec>,
    pub volume_claim_template_labels: Vec<FieldSpec>,
    pub annotations: Vec<FieldSpec>,
    pub images: Vec<FieldSpec>,
    pub replicas: Vec<FieldSpec>,
    pub var_references: Vec<FieldSpec>,
    pub name_references: Vec<NameReference>,
}

/// kustomize's built-in transformer config.
pub(crate) fn builtin() -> &'static TransformerConfig {
    static BUILTIN: OnceLock<TransformerConfig> = OnceLock::new();
    BUILTIN.get_or_init(|| {
        let metadata_labels = parse_specs(METADATA_LABELS);
        let volume_claim_template_labels = parse_specs(VOLUME_CLAIM_TEMPLATE_LABELS);
        let mut common_labels = parse_specs(SELECTOR_LABELS);
        common_labels.extend(metadata_labels.iter().cloned());
        common_labels.extend(volume_claim_template_labels.iter().cloned());
        let name = FieldSpec {
            gvk: Gvk::default(),
            path: "metadata/name".to_string(),
            create: false,
        };
        TransformerConfig {
            name_prefix: vec![name.clone()],
            name_suffix: vec![name],
            namespace: parse_specs(NAMESPACE),
            common_labels,
            labels: Vec::new(),
            template_labels: metadata_labels,
            volume_claim_template_labels,
            annotations: parse_specs(ANNOTATIONS),
            images: parse_specs(IMAGES),
            replicas: parse_specs(REPLICAS),
            var_references: parse_specs(VAR_REFERENCES),
            name_references: parse_name_references(NAME_REFERENCES),
        }
    })
}

impl TransformerConfig {
    /// Adds `other`'s specs; the same spec with a different `create` is a conflict.
    pub fn merge(&mut self, other: &TransformerConfig) -> Result<(), String> {
        let lists = [
            (&mut self.name_prefix, &other.name_prefix),
            (&mut self.name_suffix, &other.name_suffix),
            (&mut self.namespace, &other.namespace),
            (&mut self.common_labels, &other.common_labels),
            (&mut self.labels, &other.labels),
            (&mut self.template_labels, &other.template_labels),
            (
                &mut self.volume_claim_template_labels,
                &other.volume_claim_template_labels,
            ),
            (&mut self.annotations, &other.annotations),
            (&mut self.images, &other.images),
            (&mut self.replicas, &other.replicas),
            (&mut self.var_references, &other.var_references),
        ];
        for (mine, theirs) in lists {
            for spec in theirs {
                merge_spec(mine, spec.clone())?;
            }
        }
        for reference in &other.name_references {
            match self
                .name_references
                .iter_mut()
                .find(|r| r.target == reference.target)
            {
                Some(existing) => {
                    for spec in &reference.referrers {
                        merge_spec(&mut existing.referrers, spec.clone())?;
                    }
                }
                None => self.name_references.push(reference.clone()),
            }
        }
        Ok(())
    }

    /// Reads a `configurations` file's content (already parsed).
    pub fn from_value(value: &Value, fields: &Fields) -> crate::error::Result<TransformerConfig> {
        if value.is_null() {
            return Ok(TransformerConfig::default());
        }
        let map = &*fields.object(value, "", &CONFIG_FIELDS)?;
        let specs = |key: &str| -> crate::error::Result<Vec<FieldSpec>> {
            fields
                .list(map, "", key)?
                .iter()
                .enumerate()
                .map(|(i, v)| fields.field_spec(v, &format!("{key}[{i}]")))
                .collect()
        };
        let mut name_references = Vec::new();
        for (i, item) in fields.list(map, "", "nameReference")?.iter().enumerate() {
            let field = format!("nameReference[{i}]");
            let reference =
                &*fields.object(item, &field, &["group", "version", "kind", "fieldSpecs"])?;
            let referrers = fields
                .list(reference, &field, "fieldSpecs")?
                .iter()
                .enumerate()
                .map(|(j, v)| fields.field_spec(v, &format!("{field}.fieldSpecs[{j}]")))
                .collect::<crate::error::Result<_>>()?;
            let target = Gvk {
                group: fields.string(reference, &field, "group")?,
                version: fields.string(reference, &field, "version")?,
                kind: fields.string(reference, &field, "kind")?,
            };
            name_references.push(NameReference { target, referrers });
        }
        Ok(TransformerConfig {
            name_prefix: specs("namePrefix")?,
            name_suffix: specs("nameSuffix")?,
            namespace: specs("namespace")?,
            common_labels: specs("commonLabels")?,
            labels: specs("labels")?,
            template_labels: specs("templateLabels")?,
            volume_claim_template_labels: specs("volumeClaimTemplateLabels")?,
            annotations: specs("commonAnnotations")?,
            images: specs("images")?,
            replicas: specs("replicas")?,
            var_references: specs("varReference")?,
            name_references,
        })
    }
}

const CONFIG_FIELDS: [&str; 12] = [
    "namePrefix",
    "nameSuffix",
    "namespace",
    "commonLabels",
    "labels",
    "templateLabels",
    "volumeClaimTemplateLabels",
    "commonAnnotations",
    "nameReference",
    "varReference",
    "images",
    "replicas",
];

fn parse_spec(line: &str) -> Option<FieldSpec> {
    let mut parts = line.split_whitespace();
    let any = |s: &str| {
        if s == "-" {
            String::new()
        } else {
            s.to_string()
        }
    };
    let kind = any(parts.next()?);
    let group = any(parts.next()?);
    let version = any(parts.next()?);
    let path = parts.next()?.to_string();
    let create = parts.next() == Some("create");
    Some(FieldSpec {
        gvk: Gvk {
            group,
            version,
            kind,
        },
        path,
        create,
    })
}

fn parse_specs(table: &str) -> Vec<FieldSpec> {
    table.lines().filter_map(parse_spec).collect()
}

fn parse_name_references(table: &str) -> Vec<NameReference> {
    let mut references: Vec<NameReference> = Vec::new();
    for line in table.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(target) = line.strip_suffix(':') {
            let mut parts = target.split_whitespace().map(|s| {
                if s == "-" {
                    String::new()
                } else {
                    s.to_string()
                }
            });
            let kind = parts.next().unwrap_or_default();
            let group = parts.next().unwrap_or_default();
            let version = parts.next().unwrap_or_default();
            references.push(NameReference {
                target: Gvk {
                    group,
                    version,
                    kind,
                },
                referrers: Vec::new(),
            });
        } else if let (Some(reference), Some(spec)) = (references.last_mut(), parse_spec(line)) {
            reference.referrers.push(spec);
        }
    }
    references
}

/// Adds `spec` unless an equivalent one (same path, selecting the same kinds) is present; an
/// equivalent spec with a different `create` is a conflict.
pub(crate) fn merge_spec(specs: &mut Vec<FieldSpec>, spec: FieldSpec) -> Result<(), String> {
    match specs
        .iter()
        .find(|s| s.path == spec.path && s.gvk.is_selected_by(&spec.gvk))
    {
        Some(existing) if existing.create != spec.create => Err(format!(
            "conflicting field specs for `{}` on {}",
            spec.path, spec.gvk
        )),
        Some(_) => Ok(()),
        None => {
            specs.push(spec);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_parse() {
        let d = builtin();
        assert_eq!(d.template_labels.len(), 9);
        assert_eq!(d.common_labels.len(), 22 + 9 + 1);
        assert!(
            d.name_references
                .iter()
                .any(|r| r.target.kind == "ConfigMap" && r.referrers.len() > 40)
        );
        let ingress = d
            .name_references
            .iter()
            .find(|r| r.target.kind == "IngressClass")
            .unwrap();
        assert_eq!(ingress.target.group, "networking.k8s.io/v1");
    }
}
