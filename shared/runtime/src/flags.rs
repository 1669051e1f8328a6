//! Command-line flags shared by every controller, with Flux's names and defaults.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::{ArgAction, Args, ValueEnum};

use sluice_api::duration::parse_go_duration;

/// Flags every Sluice controller accepts; embed with `#[command(flatten)]`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct RuntimeFlags {
    /// The address the metrics endpoint binds to.
    #[arg(long, default_value = ":8080", value_parser = parse_listen_addr)]
    pub metrics_addr: SocketAddr,

    /// The address the health endpoints (/healthz, /readyz) bind to.
    #[arg(long, default_value = ":9440", value_parser = parse_listen_addr)]
    pub health_addr: SocketAddr,

    /// Enable leader election; only the leader reconciles.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_leader_election: bool,

    /// How long a leader holds the Lease without renewing it.
    #[arg(long, default_value = "35s", value_parser = parse_go_duration)]
    pub leader_election_lease_duration: Duration,

    /// How long the leader keeps trying to renew before giving up leadership.
    #[arg(long, default_value = "30s", value_parser = parse_go_duration)]
    pub leader_election_renew_deadline: Duration,

    /// How long to wait between attempts after a failed leader-election API call.
    #[arg(long, default_value = "5s", value_parser = parse_go_duration)]
    pub leader_election_retry_period: Duration,

    /// Release the Lease on shutdown so another replica takes over at once.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_election_release_on_cancel: bool,

    /// Namespace the controller runs in: holds the leader Lease and is the only namespace
    /// watched with --watch-all-namespaces=false. From `RUNTIME_NAMESPACE` as Flux's
    /// Deployments set it, else `POD_NAMESPACE`, else flux-system.
    #[arg(long, env = "RUNTIME_NAMESPACE", default_value_t = namespace_or_default(std::env::var("POD_NAMESPACE").ok()))]
    pub runtime_namespace: String,

    /// The notification-controller event endpoint; empty disables forwarding events.
    #[arg(long, default_value = "")]
    pub events_addr: String,

    /// The number of objects reconciled concurrently per controller.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrent: u16,

    /// The requeue interval when a dependency is not ready.
    #[arg(long, default_value = "30s", value_parser = parse_go_duration)]
    pub requeue_dependency: Duration,

    /// Percentage of jitter (±) applied to reconcile intervals; must be below 100.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(0..100))]
    pub interval_jitter_percentage: u8,

    /// The minimum delay before retrying a failed reconcile.
    #[arg(long, default_value = "750ms", value_parser = parse_go_duration)]
    pub min_retry_delay: Duration,

    /// The maximum delay before retrying a failed reconcile.
    #[arg(long, default_value = "15m", value_parser = parse_go_duration)]
    pub max_retry_delay: Duration,

    /// Watch objects in all namespaces; when false only --runtime-namespace is watched.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub watch_all_namespaces: bool,

    /// Only reconcile objects matching this label selector (sharding); empty matches all.
    #[arg(long, default_value = "")]
    pub watch_label_selector: String,

    /// The maximum sustained queries per second to the Kubernetes API.
    #[arg(long, default_value_t = 50.0)]
    pub kube_api_qps: f32,

    /// The maximum burst of queries to the Kubernetes API.
    #[arg(long, default_value_t = 300)]
    pub kube_api_burst: u32,

    /// The log level.
    #[arg(long, value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// The log encoding.
    #[arg(long, value_enum, default_value_t = LogEncoding::Json)]
    pub log_encoding: LogEncoding,
}

/// Log verbosity, as accepted by Flux's `--log-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Log output format, as accepted by Flux's `--log-encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogEncoding {
    Json,
    Console,
}

/// A combination of flags that cannot work together.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlagsError {
    #[error(
        "--min-retry-delay ({min:?}) is larger than --max-retry-delay ({max:?}); lower the minimum or raise the maximum"
    )]
    RetryDelays { min: Duration, max: Duration },
    #[error(
        "--leader-election-renew-deadline ({renew:?}) must be shorter than --leader-election-lease-duration ({lease:?}) by at least one second; adjust one of them"
    )]
    LeaseTimings { renew: Duration, lease: Duration },
    #[error("--kube-api-qps must be a positive number, got {0}; use e.g. 50")]
    Qps(f32),
}

impl RuntimeFlags {
    /// Checks the cross-flag constraints clap cannot express.
    pub fn validate(&self) -> Result<(), FlagsError> {
        if self.min_retry_delay > self.max_retry_delay {
            return Err(FlagsError::RetryDelays {
                min: self.min_retry_delay,
                max: self.max_retry_delay,
            });
        }
        if self.leader_election_renew_deadline + Duration::from_secs(1)
            > self.leader_election_lease_duration
        {
            return Err(FlagsError::LeaseTimings {
                renew: self.leader_election_renew_deadline,
                lease: self.leader_election_lease_duration,
            });
        }
        if !(self.kube_api_qps.is_finite() && self.kube_api_qps > 0.0) {
            return Err(FlagsError::Qps(self.kube_api_qps));
        }
        Ok(())
    }

    /// The notification-controller URL, or `None` when forwarding is disabled.
    pub fn events_url(&self) -> Option<&str> {
        Some(self.events_addr.trim()).filter(|addr| !addr.is_empty())
    }

    /// The label selector to watch with, or `None` to watch everything.
    pub fn label_selector(&self) -> Option<&str> {
        Some(self.watch_label_selector.trim()).filter(|selector| !selector.is_empty())
    }

    /// The single namespace to watch, or `None` to watch all namespaces.
    pub fn watch_namespace(&self) -> Option<&str> {
        (!self.watch_all_namespaces).then_some(self.runtime_namespace.as_str())
    }
}

/// A listen address that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid listen address {0:?}; use \":PORT\", \"IP:PORT\" or \"[IPv6]:PORT\", e.g. \":8080\""
)]
pub struct ListenAddrError(String);

/// The runtime namespace when `RUNTIME_NAMESPACE` is unset: `pod_namespace`, else flux-system.
fn namespace_or_default(pod_namespace: Option<String>) -> String {
    pod_namespace
        .filter(|namespace| !namespace.is_empty())
        .unwrap_or_else(|| "flux-system".to_owned())
}

/// Parses Go-style listen addresses: ":8080" binds all interfaces, "localhost:8080" loopback.
pub fn parse_listen_addr(input: &str) -> Result<SocketAddr, ListenAddrError> {
    let fail = || ListenAddrError(input.to_owned());
    let (host, port) = input.rsplit_once(':').ok_or_else(fail)?;
    let port: u16 = port.parse().map_err(|_| fail())?;
    let ip = match host.trim_start_matches('[').trim_end_matches(']') {
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        literal => literal.parse().map_err(|_| fail())?,
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct TestCommand {
        #[command(flatten)]
        runtime: RuntimeFlags,
    }

    fn parse(args: &[&str]) -> Result<RuntimeFlags, clap::Error> {
        let argv = std::iter::once("controller").chain(args.iter().copied());
        TestCommand::try_parse_from(argv).map(|command| command.runtime)
    }

    #[test]
    fn defaults_match_flux() {
        let flags = parse(&[]).expect("defaults parse");
        assert_eq!(flags.metrics_addr, "0.0.0.0:8080".parse().expect("addr"));
        assert_eq!(flags.health_addr, "0.0.0.0:9440".parse().expect("addr"));
        assert!(!flags.enable_leader_election);
        assert_eq!(
            flags.leader_election_lease_duration,
            Duration::from_secs(35)
        );
        assert_eq!(
            flags.leader_election_renew_deadline,
            Duration::from_secs(30)
        );
        assert_eq!(flags.leader_election_retry_period, Duration::from_secs(5));
        assert!(flags.leader_election_release_on_cancel);
        assert_eq!(flags.events_url(), None);
        assert_eq!(flags.concurrent, 4);
        assert_eq!(flags.requeue_dependency, Duration::from_secs(30));
        assert_eq!(flags.interval_jitter_percentage, 5);
        assert_eq!(flags.min_retry_delay, Duration::from_millis(750));
        assert_eq!(flags.max_retry_delay, Duration::from_secs(900));
        assert!(flags.watch_all_namespaces);
        assert_eq!(flags.watch_namespace(), None);
        assert_eq!(flags.label_selector(), None);
        assert_eq!(flags.kube_api_qps, 50.0);
        assert_eq!(flags.kube_api_burst, 300);
        assert_eq!(flags.log_level, LogLevel::Info);
        assert_eq!(flags.log_encoding, LogEncoding::Json);
        assert_eq!(flags.validate(), Ok(()));
    }

    #[test]
    fn accepts_go_style_values() {
        let flags = parse(&[
            "--enable-leader-election",
            "--watch-all-namespaces=false",
            "--runtime-namespace=sluice",
            "--leader-election-release-on-cancel=false",
            "--requeue-dependency=1m30s",
            "--min-retry-delay",
            "2s",
            "--events-addr=http://notification-controller.flux-system.svc/",
            "--watch-label-selector=sharding.fluxcd.io/key=shard1",
            "--metrics-addr=127.0.0.1:9090",
            "--log-encoding=console",
            "--log-level=debug",
        ])
        .expect("flags parse");
        assert!(flags.enable_leader_election);
        assert!(!flags.leader_election_release_on_cancel);
        assert_eq!(flags.watch_namespace(), Some("sluice"));
        assert_eq!(flags.requeue_dependency, Duration::from_secs(90));
        assert_eq!(flags.min_retry_delay, Duration::from_secs(2));
        assert_eq!(
            flags.events_url(),
            Some("http://notification-controller.flux-system.svc/")
        );
        assert_eq!(
            flags.label_selector(),
            Some("sharding.fluxcd.io/key=shard1")
        );
        assert_eq!(flags.metrics_addr, "127.0.0.1:9090".parse().expect("addr"));
        assert_eq!(flags.log_encoding, LogEncoding::Console);
        assert_eq!(flags.log_level, LogLevel::Debug);
    }

    #[test]
    fn rejects_out_of_range_values() {
        assert!(parse(&["--concurrent=0"]).is_err());
        assert!(parse(&["--interval-jitter-percentage=100"]).is_err());
        assert!(parse(&["--requeue-dependency=30"]).is_err());
        assert!(parse(&["--metrics-addr=8080"]).is_err());
    }

    #[test]
    fn validate_catches_inconsistent_combinations() {
        let flags = parse(&["--min-retry-delay=1h", "--max-retry-delay=1m"]).expect("parse");
        assert!(matches!(
            flags.validate(),
            Err(FlagsError::RetryDelays { .. })
        ));
        let flags = parse(&["--leader-election-renew-deadline=35s"]).expect("parse");
        assert!(matches!(
            flags.validate(),
            Err(FlagsError::LeaseTimings { .. })
        ));
        let flags = parse(&["--kube-api-qps=0"]).expect("parse");
        assert_eq!(flags.validate(), Err(FlagsError::Qps(0.0)));
    }

    #[test]
    fn parses_listen_addresses() {
        assert_eq!(
            parse_listen_addr(":9440"),
            Ok("0.0.0.0:9440".parse().expect("addr"))
        );
        assert_eq!(
            parse_listen_addr("localhost:1"),
            Ok("127.0.0.1:1".parse().expect("addr"))
        );
        assert_eq!(
            parse_listen_addr("[::1]:8080"),
            Ok("[::1]:8080".parse().expect("addr"))
        );
        assert!(parse_listen_addr("example.com:80").is_err());
        assert!(parse_listen_addr(":http").is_err());
    }

    #[test]
    fn runtime_namespace_falls_back_to_pod_namespace_then_flux_system() {
        assert_eq!(namespace_or_default(Some("apps".into())), "apps");
        assert_eq!(namespace_or_default(Some(String::new())), "flux-system");
        assert_eq!(namespace_or_default(None), "flux-system");
    }
}
