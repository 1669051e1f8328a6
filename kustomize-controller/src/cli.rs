//! Command-line flags: Flux's common runtime flags plus kustomize-controller's own.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};
use sluice_api::duration::parse_go_duration;
use sluice_artifact::fetch::FetchHints;
use sluice_runtime::RuntimeFlags;

/// Artifact fetch errors name source-controller and this controller's flags.
pub const ARTIFACT_FETCH_HINTS: FetchHints = FetchHints {
    server: "source-controller",
    raise_limit: "raise --artifact-max-size",
    after_not_found: "retrying after --requeue-dependency",
    allowed_hosts: "add it to --artifact-allowed-hosts if it is a source-controller",
};

/// kustomize-controller: builds Kustomizations from source artifacts and applies them.
#[derive(Debug, Clone, Parser)]
#[command(name = "kustomize-controller", version)]
pub struct Cli {
    #[command(flatten)]
    pub runtime: RuntimeFlags,

    #[command(flatten)]
    pub controller: ControllerFlags,
}

/// Flags specific to kustomize-controller, named as in Flux.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct ControllerFlags {
    /// Deny Kustomizations from referencing sources or dependencies in other namespaces.
    /// On by default (Flux's default is off): `--no-cross-namespace-refs=false` allows them.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub no_cross_namespace_refs: bool,

    /// ServiceAccount impersonated for Kustomizations that do not set spec.serviceAccountName.
    #[arg(long, default_value = "")]
    pub default_service_account: String,

    /// Refuse remote bases in kustomizations (kept for Flux compatibility; plain builds have none).
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub no_remote_bases: bool,

    /// Objects applied concurrently within one Kustomization.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrent_ssa: u16,

    /// Retries of an artifact download after transport errors or 5xx responses.
    #[arg(long, default_value_t = 9)]
    pub http_retry: u32,

    /// Largest artifact, compressed and unpacked, in bytes.
    #[arg(long, default_value_t = 512 * 1024 * 1024)]
    pub artifact_max_size: u64,

    /// Directory for unpacked artifacts, cached by digest.
    #[arg(long, default_value = "/tmp/kustomize-controller")]
    pub artifact_cache_dir: PathBuf,

    /// Unpacked artifacts kept in the cache.
    #[arg(long, default_value_t = 2048)]
    pub artifact_cache_size: usize,

    /// Hosts (`host` or `host:port`) whose artifact URLs are fetched; `*` allows any host, as Flux
    /// does. Set it to the source-controller service (`source-controller.flux-system.svc.cluster.local.`)
    /// so a hand-written `status.artifact.url` cannot point the controller elsewhere.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub artifact_allowed_hosts: Vec<String>,

    /// Unpacked bytes kept in the artifact cache; least recently used artifacts not in use go first.
    #[arg(long, default_value_t = 4 << 30)]
    pub artifact_cache_max_bytes: u64,

    /// How often pending health checks are re-evaluated (the reconcile worker is released meanwhile).
    #[arg(long, default_value = "5s", value_parser = parse_go_duration)]
    pub health_check_interval: Duration,

    /// Watch applied objects and correct out-of-band changes at once, not only every interval.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub watch_drift: bool,

    /// Fail on undefined postBuild variables without a default (Flux's StrictPostBuildSubstitutions gate).
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub strict_substitution: bool,

    /// Check a dependency's built-in readiness as well as its `readyExpr` (Flux's
    /// AdditiveCELDependencyCheck gate); by default a `readyExpr` replaces the built-in check.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub additive_cel_dependency_check: bool,

    /// Field managers whose fields on applied objects are taken over (Apply and Update), on top
    /// of Flux's list (kubectl, before-first-apply, this controller's pre-SSA updates). Repeatable.
    #[arg(long)]
    pub override_manager: Vec<String>,

    /// GroupKinds (`group/Kind`, e.g. `rbac.authorization.k8s.io/Role`; `Kind` for the core
    /// group) applied in a stage of their own after CRDs, Namespaces and classes and before
    /// everything else, without waiting.
    #[arg(long, value_delimiter = ',')]
    pub custom_apply_stage_kinds: Vec<String>,

    /// Secret in the runtime namespace whose `*.agekey` entries decrypt every Kustomization
    /// without `spec.decryption.secretRef`.
    #[arg(long, default_value = "")]
    pub sops_age_secret: String,

    /// Label selector of the ConfigMaps and Secrets whose changes re-reconcile the
    /// Kustomizations that reference them (substituteFrom, decryption, kubeConfig).
    #[arg(long, default_value = "reconcile.fluxcd.io/watch=Enabled")]
    pub watch_configs_label_selector: String,

    /// Flux's feature gates (`Name=true|false`, comma-separated): `StrictPostBuildSubstitutions`
    /// and `AdditiveCELDependencyCheck` set the flags of the same meaning, `ExternalArtifact`
    /// allows ExternalArtifact sources, `ObjectLevelWorkloadIdentity` a ServiceAccount named by a
    /// `kubeConfig.configMapRef`; any other gate is accepted and logged as not
    /// implemented, so a Flux Deployment's arguments start this one.
    #[arg(long, value_delimiter = ',', value_parser = parse_feature_gate)]
    pub feature_gates: Vec<FeatureGate>,

    /// Flux's `ExternalArtifact` gate (off by default): ExternalArtifact sources are watched and
    /// read; set only through `--feature-gates`.
    #[arg(skip)]
    pub external_artifact: bool,

    /// Flux's `ObjectLevelWorkloadIdentity` gate (off by default): a `kubeConfig.configMapRef`
    /// may name the ServiceAccount whose token is used; set only through `--feature-gates`.
    #[arg(skip)]
    pub object_level_workload_identity: bool,

    /// ServiceAccount (in the Kustomization's namespace) whose token a `kubeConfig.configMapRef`
    /// uses when its ConfigMap names none, instead of the controller's own (Flux's lockdown;
    /// needs the ObjectLevelWorkloadIdentity gate).
    #[arg(long, default_value = "")]
    pub default_kubeconfig_service_account: String,

    /// Allow exec credential plugins in kubeConfig Secrets.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub insecure_kubeconfig_exec: bool,

    /// Allow kubeConfig Secrets that disable TLS verification.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub insecure_kubeconfig_tls: bool,
}

/// One `--feature-gates` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureGate {
    pub name: String,
    pub enabled: bool,
}

/// Parses `Name=true|false`, as Flux's feature-gate flag does.
fn parse_feature_gate(entry: &str) -> Result<FeatureGate, String> {
    let (name, value) = entry
        .trim()
        .split_once('=')
        .ok_or_else(|| format!("'{entry}' is not Name=true|false"))?;
    let enabled = value
        .trim()
        .parse()
        .map_err(|_| format!("the value of feature gate '{name}' must be true or false"))?;
    Ok(FeatureGate {
        name: name.trim().to_owned(),
        enabled,
    })
}

impl ControllerFlags {
    /// Applies `--feature-gates` to the flags they stand for; returns the gates not implemented.
    pub fn apply_feature_gates(&mut self) -> Vec<FeatureGate> {
        let mut unknown = Vec::new();
        for gate in std::mem::take(&mut self.feature_gates) {
            match gate.name.as_str() {
                "StrictPostBuildSubstitutions" => self.strict_substitution = gate.enabled,
                "AdditiveCELDependencyCheck" => self.additive_cel_dependency_check = gate.enabled,
                "ExternalArtifact" => self.external_artifact = gate.enabled,
                "ObjectLevelWorkloadIdentity" => {
                    self.object_level_workload_identity = gate.enabled;
                }
                _ => unknown.push(gate),
            }
        }
        unknown
    }

    /// `--default-kubeconfig-service-account`, if set.
    pub fn default_kubeconfig_service_account(&self) -> Option<&str> {
        Some(self.default_kubeconfig_service_account.as_str()).filter(|name| !name.is_empty())
    }

    /// Flux refuses to start with a default workload-identity ServiceAccount but without the
    /// ObjectLevelWorkloadIdentity gate; the message says what to change.
    pub fn object_level_inconsistency(&self) -> Option<&'static str> {
        (self.default_kubeconfig_service_account().is_some()
            && !self.object_level_workload_identity)
            .then_some(
                "--default-kubeconfig-service-account needs --feature-gates=ObjectLevelWorkloadIdentity=true; enable the gate or remove the flag",
            )
    }

    /// `--default-service-account`, if set.
    pub fn default_service_account(&self) -> Option<&str> {
        Some(self.default_service_account.as_str()).filter(|name| !name.is_empty())
    }

    /// `--custom-apply-stage-kinds` as (group, kind), from Flux's `group/Kind` form.
    pub fn custom_stage_kinds(&self) -> Vec<(String, String)> {
        self.custom_apply_stage_kinds
            .iter()
            .map(|entry| entry.trim())
            .filter(|entry| !entry.is_empty())
            .map(|entry| match entry.rsplit_once('/') {
                Some((group, kind)) => (group.to_owned(), kind.to_owned()),
                None => (String::new(), entry.to_owned()),
            })
            .collect()
    }

    /// `--sops-age-secret`, if set.
    pub fn sops_age_secret(&self) -> Option<&str> {
        Some(self.sops_age_secret.as_str()).filter(|name| !name.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_gates_set_their_flags_and_report_the_rest() {
        let mut cli = Cli::parse_from([
            "kustomize-controller",
            "--feature-gates=StrictPostBuildSubstitutions=false,AdditiveCELDependencyCheck=true,CacheSecretsAndConfigMaps=true,ExternalArtifact=true",
        ]);
        assert!(!cli.controller.external_artifact);
        let unknown = cli.controller.apply_feature_gates();
        assert!(cli.controller.external_artifact);
        assert!(!cli.controller.strict_substitution);
        assert!(cli.controller.additive_cel_dependency_check);
        assert_eq!(
            unknown,
            [FeatureGate {
                name: "CacheSecretsAndConfigMaps".into(),
                enabled: true
            }]
        );
        let refused = Cli::try_parse_from(["kustomize-controller", "--feature-gates=Nope"]);
        assert!(refused.is_err());
        let refused = Cli::try_parse_from(["kustomize-controller", "--feature-gates=A=maybe"]);
        assert!(refused.is_err());
    }

    #[test]
    fn a_default_kubeconfig_service_account_needs_the_object_level_gate() {
        let flag = "--default-kubeconfig-service-account=deployer";
        let mut cli = Cli::parse_from(["kustomize-controller", flag]);
        cli.controller.apply_feature_gates();
        let problem = cli.controller.object_level_inconsistency();
        assert!(problem.is_some_and(|p| p.contains("ObjectLevelWorkloadIdentity=true")));
        let gate = "--feature-gates=ObjectLevelWorkloadIdentity=true";
        let mut cli = Cli::parse_from(["kustomize-controller", flag, gate]);
        cli.controller.apply_feature_gates();
        assert_eq!(cli.controller.object_level_inconsistency(), None);
        assert_eq!(
            cli.controller.default_kubeconfig_service_account(),
            Some("deployer")
        );
    }

    #[test]
    fn custom_stage_kinds_read_flux_s_group_kind_form() {
        let cli = Cli::parse_from([
            "kustomize-controller",
            "--custom-apply-stage-kinds=rbac.authorization.k8s.io/Role, ConfigMap",
        ]);
        assert_eq!(
            cli.controller.custom_stage_kinds(),
            [
                ("rbac.authorization.k8s.io".to_owned(), "Role".to_owned()),
                (String::new(), "ConfigMap".to_owned())
            ]
        );
    }
}
