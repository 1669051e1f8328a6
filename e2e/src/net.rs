//! Loopback addresses for test servers.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, Runtime};

use crate::{Error, Result};

/// A free TCP port on 127.0.0.1, picked by the kernel.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
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
