//! The random half of the fault campaign: a seeded RNG, the repository model and the step plan.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::gitops::Controller;

/// Directory of the applied manifests in each run's repository (the Kustomization's path).
pub const DIR: &str = "app";
/// File holding YAML that does not parse while the repository is broken.
const BROKEN_FILE: &str = "app/zz-broken.yaml";
/// File holding an object the apiserver refuses while the repository fails to apply.
const FAILING_FILE: &str = "app/zz-failing.yaml";
/// Names the ConfigMaps are drawn from; small so that renames and re-adds collide.
const NAMES: u64 = 12;

/// SplitMix64: tiny and stable across crate versions, so a seed always replays the same plan.
pub struct Rng(u64);

impl Rng {
    /// An RNG starting at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64().checked_rem(n).unwrap_or(0)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A duration between `min_ms` and `max_ms` milliseconds.
    pub fn millis(&mut self, min_ms: u64, max_ms: u64) -> Duration {
        Duration::from_millis(min_ms + self.below(max_ms.saturating_sub(min_ms) + 1))
    }
}

/// The seed of run `index` of a campaign started with `seed`.
pub fn run_seed(seed: u64, index: u64) -> u64 {
    Rng::new(seed ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93)).next_u64()
}

/// What a step does, for the per-kind counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Push: a ConfigMap added or its data changed.
    PushEdit,
    /// Push: a ConfigMap removed.
    PushDelete,
    /// Push: a ConfigMap renamed (same data, new name).
    PushRename,
    /// Push: YAML that does not parse.
    PushBrokenYaml,
    /// Push: an object the apiserver refuses (unknown kind or invalid name).
    PushFailingApply,
    /// source-controller SIGKILLed, restarted shortly after.
    KillSource,
    /// kustomize-controller SIGKILLed, restarted shortly after.
    KillKustomize,
    /// The repository unreachable on the git server for a while.
    GitOutage,
    /// source-controller (the artifact server) down while kustomize-controller reconciles.
    ArtifactOutage,
    /// Every git HTTP response held back for a while.
    SlowGit,
    /// kube-apiserver SIGKILLed, started again shortly after.
    ApiserverRestart,
}

/// One step of a run.
#[derive(Clone, Debug)]
pub enum Step {
    /// Commit `writes` and `deletes`; `model` is the repository afterwards.
    Push {
        kind: Kind,
        writes: BTreeMap<String, Vec<u8>>,
        deletes: Vec<String>,
        model: RepoModel,
    },
    /// SIGKILL a controller, wait `down`, start it again.
    Kill {
        controller: Controller,
        down: Duration,
    },
    /// The repository unreachable for `down`.
    GitOutage { down: Duration },
    /// source-controller stopped for `down`; the Kustomization is asked to reconcile meanwhile.
    ArtifactOutage { down: Duration },
    /// Git responses delayed by `delay` for `duration`.
    SlowGit { delay: Duration, duration: Duration },
    /// kube-apiserver killed, started again after `down`.
    ApiserverRestart { down: Duration },
}

impl Step {
    /// The kind of this step.
    pub fn kind(&self) -> Kind {
        match self {
            Step::Push { kind, .. } => *kind,
            Step::Kill {
                controller: Controller::Source,
                ..
            } => Kind::KillSource,
            Step::Kill { .. } => Kind::KillKustomize,
            Step::GitOutage { .. } => Kind::GitOutage,
            Step::ArtifactOutage { .. } => Kind::ArtifactOutage,
            Step::SlowGit { .. } => Kind::SlowGit,
            Step::ApiserverRestart { .. } => Kind::ApiserverRestart,
        }
    }
}

/// The repository's content: ConfigMap name → `data.v`, and whether a bad file is present.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepoModel {
    pub objects: BTreeMap<String, String>,
    pub broken: bool,
    pub failing: bool,
}

impl RepoModel {
    /// Whether the revision builds and applies.
    pub fn is_good(&self) -> bool {
        !self.broken && !self.failing
    }
}

/// Path of the manifest of ConfigMap `name`.
pub fn manifest_path(name: &str) -> String {
    format!("{DIR}/{name}.yaml")
}

/// The manifest of ConfigMap `name` with `data.v: value`.
pub fn manifest(name: &str, value: &str) -> Vec<u8> {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: {value:?}\n")
        .into_bytes()
}

/// The first revision: two to four ConfigMaps.
pub fn initial(rng: &mut Rng) -> (BTreeMap<String, Vec<u8>>, RepoModel) {
    let mut model = RepoModel::default();
    let mut writes = BTreeMap::new();
    while model.objects.len() < 2 + rng.below(3) as usize {
        let name = format!("cm-{}", rng.below(NAMES));
        let value = format!("v{}", rng.below(1000));
        writes.insert(manifest_path(&name), manifest(&name, &value));
        model.objects.insert(name, value);
    }
    (writes, model)
}

/// A plan of `len` steps starting from `model`.
pub fn plan(rng: &mut Rng, mut model: RepoModel, len: usize) -> Vec<Step> {
    let mut steps = Vec::with_capacity(len);
    for _ in 0..len {
        let step = match rng.below(100) {
            0..42 => push(rng, &mut model),
            42..52 => Step::Kill {
                controller: Controller::Source,
                down: rng.millis(0, 1500),
            },
            52..63 => Step::Kill {
                controller: Controller::Kustomize,
                down: rng.millis(0, 1500),
            },
            63..72 => Step::GitOutage {
                down: rng.millis(500, 3000),
            },
            72..82 => Step::ArtifactOutage {
                down: rng.millis(500, 3000),
            },
            82..91 => Step::SlowGit {
                delay: rng.millis(200, 1500),
                duration: rng.millis(500, 3000),
            },
            _ => Step::ApiserverRestart {
                down: rng.millis(0, 3000),
            },
        };
        steps.push(step);
    }
    steps
}

/// A random push from `model`; updates `model` to the repository after it.
fn push(rng: &mut Rng, model: &mut RepoModel) -> Step {
    let mut writes = BTreeMap::new();
    let mut deletes = Vec::new();
    let kind = match rng.below(100) {
        0..15 => Kind::PushBrokenYaml,
        15..28 => Kind::PushFailingApply,
        28..40 if model.objects.len() > 1 => Kind::PushDelete,
        40..55 if model.objects.len() > 1 => Kind::PushRename,
        _ => Kind::PushEdit,
    };
    // A good change repairs a bad repository most of the time; otherwise it stays bad.
    if !matches!(kind, Kind::PushBrokenYaml | Kind::PushFailingApply) && rng.chance(70) {
        if std::mem::take(&mut model.broken) {
            deletes.push(BROKEN_FILE.to_string());
        }
        if std::mem::take(&mut model.failing) {
            deletes.push(FAILING_FILE.to_string());
        }
    }
    match kind {
        Kind::PushBrokenYaml => {
            let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\ndata: {v: ";
            writes.insert(BROKEN_FILE.to_string(), yaml.as_bytes().to_vec());
            model.broken = true;
        }
        Kind::PushFailingApply => {
            let yaml = if rng.chance(50) {
                "apiVersion: faults.example.com/v1\nkind: Widget\nmetadata:\n  name: widget\n"
            } else {
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Valid_Name\n"
            };
            writes.insert(FAILING_FILE.to_string(), yaml.as_bytes().to_vec());
            model.failing = true;
        }
        Kind::PushDelete => {
            let name = pick(rng, model);
            model.objects.remove(&name);
            deletes.push(manifest_path(&name));
        }
        Kind::PushRename => {
            let old = pick(rng, model);
            let start = rng.below(NAMES);
            let free = (0..NAMES)
                .map(|i| format!("cm-{}", (start + i) % NAMES))
                .find(|name| !model.objects.contains_key(name));
            if let Some(new) = free {
                let value = model.objects.remove(&old).unwrap_or_default();
                deletes.push(manifest_path(&old));
                writes.insert(manifest_path(&new), manifest(&new, &value));
                model.objects.insert(new, value);
            }
        }
        _ => {
            let name = format!("cm-{}", rng.below(NAMES));
            let mut value = format!("v{}", rng.below(1000));
            if model.objects.get(&name) == Some(&value) {
                value.push('x');
            }
            writes.insert(manifest_path(&name), manifest(&name, &value));
            model.objects.insert(name, value);
        }
    }
    Step::Push {
        kind,
        writes,
        deletes,
        model: model.clone(),
    }
}

/// A random existing ConfigMap name.
fn pick(rng: &mut Rng, model: &RepoModel) -> String {
    let index = rng.below(model.objects.len() as u64) as usize;
    model.objects.keys().nth(index).cloned().unwrap_or_default()
}

/// The commit that repairs `model` (removes its bad files), if it is bad.
pub fn repair(model: &RepoModel) -> Option<Vec<String>> {
    let mut deletes = Vec::new();
    if model.broken {
        deletes.push(BROKEN_FILE.to_string());
    }
    if model.failing {
        deletes.push(FAILING_FILE.to_string());
    }
    (!deletes.is_empty()).then_some(deletes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_the_same_plan() {
        let plan_of = |seed| {
            let mut rng = Rng::new(seed);
            let (_, model) = initial(&mut rng);
            format!("{:?}", plan(&mut rng, model, 20))
        };
        assert_eq!(plan_of(7), plan_of(7));
        assert_ne!(plan_of(7), plan_of(8));
    }
}
