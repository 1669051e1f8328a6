//! Loopback addresses for test servers.

use std::hash::BuildHasher;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, Runtime};

use crate::{Error, Result};

/// A free TCP port on 127.0.0.1, picked by the kernel.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Lowest port [`restartable_port`] picks.
const RESTARTABLE_FLOOR: u16 = 10_000;

/// A free TCP port on 127.0.0.1 below the kernel's ephemeral range, for a server restarted on
/// the same port: while it is down, an outgoing connection may take an ephemeral port as its
/// source port (then the restart fails with "address in use"), never one below the range.
pub fn restartable_port() -> Result<u16> {
    let ceiling = ephemeral_range_start().unwrap_or(32_768);
    if ceiling <= RESTARTABLE_FLOOR {
        return free_port();
    }
    let span = u64::from(ceiling - RESTARTABLE_FLOOR);
    let random = std::collections::hash_map::RandomState::new();
    for attempt in 0..200u64 {
        let offset = u16::try_from(random.hash_one(attempt) % span).unwrap_or(0);
        let port = RESTARTABLE_FLOOR + offset;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(Error::Setup(format!(
        "no free port between {RESTARTABLE_FLOOR} and {ceiling} after 200 tries"
    )))
}

/// The first port of the kernel's ephemeral range (`net.ipv4.ip_local_port_range`).
fn ephemeral_range_start() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    while Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A runtime that shuts down without blocking when dropped, so it may be dropped in async code.
pub(crate) struct BackgroundRuntime(pub(crate) Option<Runtime>);

impl BackgroundRuntime {
    pub(crate) fn handle(&self) -> Result<&Handle> {
        self.0
            .as_ref()
            .map(Runtime::handle)
            .ok_or_else(|| Error::Setup("a test server's runtime is gone".into()))
    }
}

impl Drop for BackgroundRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A non-blocking listener on a free 127.0.0.1 port, registered with `runtime`.
pub(crate) fn bind_loopback(runtime: &Handle) -> Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let _guard = runtime.enter();
    Ok((tokio::net::TcpListener::from_std(listener)?, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restartable_ports_lie_below_the_ephemeral_range() {
        let ceiling = ephemeral_range_start().unwrap_or(32_768);
        for _ in 0..20 {
            let port = restartable_port().unwrap();
            assert!((RESTARTABLE_FLOOR..ceiling).contains(&port), "{port}");
        }
    }
}
