//! Leader election on a `coordination.k8s.io/v1` Lease (via kube-lease-manager).
//!
//! Each leadership term is a [`CancellationToken`]: controllers reconcile while it is live and
//! stop when it is cancelled (leadership lost, an API error, or shutdown).

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseParams};
use rand::distr::{Alphanumeric, SampleString};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::flags::RuntimeFlags;

/// How to elect a leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderElectionConfig {
    pub lease_name: String,
    pub namespace: String,
    /// Unique per replica.
    pub identity: String,
    /// How long the Lease stays valid after a renewal.
    pub lease_duration: Duration,
    /// The leader renews once this much time has passed since its last renewal.
    pub renew_deadline: Duration,
    /// Wait after a failed Lease API call before trying again.
    pub retry_period: Duration,
    /// Release the Lease on shutdown instead of letting it expire.
    pub release_on_cancel: bool,
}

impl LeaderElectionConfig {
    /// Flux's naming: Lease `<controller>-leader-election` in the runtime namespace.
    pub fn from_flags(controller_name: &str, flags: &RuntimeFlags) -> Self {
        Self {
            lease_name: format!("{controller_name}-leader-election"),
            namespace: flags.runtime_namespace.clone(),
            identity: replica_identity(),
            lease_duration: flags.leader_election_lease_duration,
            renew_deadline: flags.leader_election_renew_deadline,
            retry_period: flags.leader_election_retry_period,
            release_on_cancel: flags.leader_election_release_on_cancel,
        }
    }

    /// Whole-second lease duration and renewal grace, clamped to what the Lease manager accepts.
    pub fn lease_seconds(&self) -> (u64, u64) {
        let duration = self.lease_duration.as_secs().max(2);
        let grace = duration.saturating_sub(self.renew_deadline.as_secs());
        (duration, grace.clamp(1, duration - 1))
    }
}

/// `<pod name or hostname>_<random suffix>`, unique per process.
pub fn replica_identity() -> String {
    let suffix = Alphanumeric.sample_string(&mut rand::rng(), 10);
    format!("{}_{suffix}", instance_name())
}

/// File holding the machine's host name on Linux.
const KERNEL_HOSTNAME: &str = "/proc/sys/kernel/hostname";

/// The pod name (`POD_NAME`, else `HOSTNAME`), else the host name as Flux reports it out of
/// cluster, else "unknown".
pub fn instance_name() -> String {
    let host = std::fs::read_to_string(KERNEL_HOSTNAME).ok();
    choose_instance_name(|name| std::env::var(name).ok(), host)
}

fn choose_instance_name(env: impl Fn(&str) -> Option<String>, host: Option<String>) -> String {
    ["POD_NAME", "HOSTNAME"]
        .iter()
        .filter_map(|name| env(name))
        .chain(host)
        .map(|value| value.trim().to_owned())
        .find(|value| !value.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A view of the election: which term, if any, this replica currently leads.
#[derive(Debug, Clone)]
pub struct Leadership {
    term: watch::Receiver<Option<CancellationToken>>,
}

impl Leadership {
    /// Leadership without election: one term that lasts until `shutdown`.
    pub fn unconditional(shutdown: &CancellationToken) -> Self {
        let (_, term) = watch::channel(Some(shutdown.child_token()));
        Self { term }
    }

    /// True while this replica leads.
    pub fn is_leader(&self) -> bool {
        self.term
            .borrow()
            .as_ref()
            .is_some_and(|term| !term.is_cancelled())
    }

    /// Waits for the next term; `None` once the election has stopped for good.
    pub async fn acquired(&mut self) -> Option<CancellationToken> {
        self.term
            .wait_for(|term| term.as_ref().is_some_and(|term| !term.is_cancelled()))
            .await
            .ok()
            .and_then(|term| term.clone())
    }
}

/// Runs the election in the background until `shutdown`; the task releases the Lease on exit if configured.
pub fn spawn_leader_election(
    client: Client,
    config: LeaderElectionConfig,
    shutdown: CancellationToken,
) -> (Leadership, JoinHandle<()>) {
    let (sender, term) = watch::channel(None);
    let task = tokio::spawn(run_election(client, config, shutdown, sender));
    (Leadership { term }, task)
}

async fn run_election(
    client: Client,
    config: LeaderElectionConfig,
    shutdown: CancellationToken,
    sender: watch::Sender<Option<CancellationToken>>,
) {
    let (duration, grace) = config.lease_seconds();
    while !shutdown.is_cancelled() {
        let params = LeaseParams::new(config.identity.clone(), duration, grace);
        let manager = tokio::select! {
            () = shutdown.cancelled() => break,
            built = LeaseManager::new(client.clone(), &config.lease_name, &config.namespace, params, LeaseCreateMode::AutoCreate) => built,
        };
        let manager = match manager {
            Ok(manager) => manager,
            Err(error) => {
                tracing::warn!(lease = %config.lease_name, namespace = %config.namespace, %error, "preparing the leader-election Lease failed; retrying");
                sleep_unless_cancelled(config.retry_period, &shutdown).await;
                continue;
            }
        };
        let outcome = follow_lease(&manager, &config, &shutdown, &sender).await;
        end_term(&sender);
        if shutdown.is_cancelled() {
            if config.release_on_cancel {
                match manager.release().await {
                    Ok(()) => tracing::info!(
                        lease = %config.lease_name,
                        identity = %config.identity,
                        "released leadership"
                    ),
                    Err(error) => {
                        tracing::warn!(lease = %config.lease_name, %error, "releasing the Lease on shutdown failed; it expires on its own")
                    }
                }
            }
            break;
        }
        if let Err(error) = outcome {
            tracing::warn!(lease = %config.lease_name, namespace = %config.namespace, %error, "leader election failed; stepped down and retrying");
            sleep_unless_cancelled(config.retry_period, &shutdown).await;
        }
    }
    sender.send_replace(None);
}

/// Tracks the Lease until shutdown or an API error, publishing terms as leadership changes.
async fn follow_lease(
    manager: &LeaseManager,
    config: &LeaderElectionConfig,
    shutdown: &CancellationToken,
    sender: &watch::Sender<Option<CancellationToken>>,
) -> Result<(), kube_lease_manager::LeaseManagerError> {
    loop {
        let leading = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            changed = manager.changed() => changed?,
        };
        if leading {
            tracing::info!(lease = %config.lease_name, identity = %config.identity, "acquired leadership");
            sender.send_replace(Some(shutdown.child_token()));
        } else {
            tracing::info!(lease = %config.lease_name, identity = %config.identity, "lost leadership");
            end_term(sender);
        }
    }
}

fn end_term(sender: &watch::Sender<Option<CancellationToken>>) {
    if let Some(term) = sender.send_replace(None) {
        term.cancel();
    }
}

async fn sleep_unless_cancelled(period: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(period) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_name_falls_back_to_the_host_name_out_of_cluster() {
        let no_env = |_: &str| None;
        assert_eq!(
            choose_instance_name(no_env, Some("build-host\n".into())),
            "build-host"
        );
        assert_eq!(choose_instance_name(no_env, None), "unknown");
        let pod = |name: &str| (name == "POD_NAME").then(|| "kc-7f9".to_owned());
        assert_eq!(choose_instance_name(pod, Some("node".into())), "kc-7f9");
    }

    fn config(lease: u64, renew: u64) -> LeaderElectionConfig {
        LeaderElectionConfig {
            lease_name: "test".into(),
            namespace: "default".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(lease),
            renew_deadline: Duration::from_secs(renew),
            retry_period: Duration::from_secs(1),
            release_on_cancel: true,
        }
    }

    #[test]
    fn lease_seconds_map_flux_timings() {
        assert_eq!(config(35, 30).lease_seconds(), (35, 5));
        assert_eq!(config(15, 10).lease_seconds(), (15, 5));
        assert_eq!(config(1, 5).lease_seconds(), (2, 1));
        assert_eq!(config(10, 10).lease_seconds(), (10, 1));
    }

    #[test]
    fn identities_are_unique() {
        assert_ne!(replica_identity(), replica_identity());
    }

    #[tokio::test]
    async fn unconditional_leadership_ends_with_shutdown() {
        let shutdown = CancellationToken::new();
        let mut leadership = Leadership::unconditional(&shutdown);
        assert!(leadership.is_leader());
        let term = leadership.acquired().await.expect("leads at once");
        shutdown.cancel();
        term.cancelled().await;
        assert!(!leadership.is_leader());
        assert!(leadership.acquired().await.is_none());
    }
}
