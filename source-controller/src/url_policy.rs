//! `--deny-private-source-urls`: source URLs whose host resolves to a loopback, link-local,
//! private, shared or unspecified address are refused, so a tenant's `spec.url` cannot reach the
//! cloud metadata endpoint or services inside the cluster. Checked before every fetch; DNS that
//! changes between the check and the fetch is not covered.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// A source URL was refused by the policy.
#[derive(Debug, thiserror::Error)]
pub enum UrlPolicyError {
    #[error("spec.url has no host to check against --deny-private-source-urls")]
    NoHost,
    #[error("resolving the host of spec.url failed: {0}")]
    Resolve(String),
    #[error(
        "spec.url resolves to {0}, a loopback, link-local or private address, which --deny-private-source-urls refuses"
    )]
    Denied(IpAddr),
}

/// Whether `address` is in a range the policy refuses.
pub fn is_denied(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => denied_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => denied_v4(v4),
            None => denied_v6(v6),
        },
    }
}

fn denied_v4(address: Ipv4Addr) -> bool {
    let [first, second, ..] = address.octets();
    address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_unspecified()
        || address.is_broadcast()
        || address.is_multicast()
        || first == 0
        || (first == 100 && (64..128).contains(&second))
        || (first == 198 && (18..20).contains(&second))
}

fn denied_v6(address: Ipv6Addr) -> bool {
    let first = address.segments()[0];
    address.is_loopback()
        || address.is_unspecified()
        || address.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
}

/// The host and port a source URL connects to (`ssh://`, `http(s)://`, `oci://`).
fn host_and_port(url: &str) -> Option<(String, u16)> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let default_port = match parsed.scheme() {
        "http" => 80,
        "ssh" => 22,
        _ => 443,
    };
    let host = parsed
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_owned(), parsed.port().unwrap_or(default_port)))
}

/// Refuses `url` when any address its host resolves to is denied.
pub async fn check_source_url(url: &str, timeout: Duration) -> Result<(), UrlPolicyError> {
    let (host, port) = host_and_port(url).ok_or(UrlPolicyError::NoHost)?;
    let addresses = tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), port)))
        .await
        .map_err(|_| UrlPolicyError::Resolve(format!("no answer within {timeout:?}")))?
        .map_err(|error| UrlPolicyError::Resolve(error.to_string()))?;
    for address in addresses {
        if is_denied(address.ip()) {
            return Err(UrlPolicyError::Denied(address.ip()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_local_ranges_are_denied() {
        for denied in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_denied(denied.parse().unwrap()), "{denied}");
        }
        for allowed in ["140.82.112.3", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_denied(allowed.parse().unwrap()), "{allowed}");
        }
    }

    #[tokio::test]
    async fn urls_reaching_local_hosts_are_refused() {
        let timeout = Duration::from_secs(5);
        for url in [
            "http://127.0.0.1:8080/org/repo",
            "https://localhost/org/repo",
            "ssh://git@[::1]:2222/repo",
            "oci://169.254.169.254/latest",
            "http://user:pw@10.0.0.1/repo",
        ] {
            let error = check_source_url(url, timeout).await.unwrap_err();
            assert!(matches!(error, UrlPolicyError::Denied(_)), "{url}: {error}");
        }
        assert!(matches!(
            check_source_url("not a url", timeout).await,
            Err(UrlPolicyError::NoHost)
        ));
        assert!(
            check_source_url("https://140.82.112.3/org/repo", timeout)
                .await
                .is_ok()
        );
    }
}
