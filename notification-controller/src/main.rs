//! Sluice's notification-controller: accepts the common controller flags; its reconcilers for Provider, Alert and Receiver are not
//! built yet, so it exits with a clear message instead of running idle.

use clap::Parser;
use sluice_runtime::RuntimeFlags;

/// Command-line flags of the notification-controller.
#[derive(Parser, Debug)]
#[command(
    name = "notification-controller",
    version,
    about = "Sluice notification-controller (not implemented yet)"
)]
struct Flags {
    #[command(flatten)]
    runtime: RuntimeFlags,
}

fn main() -> std::process::ExitCode {
    let _flags = Flags::parse();
    eprintln!(
        "notification-controller: the Provider, Alert and Receiver reconcilers are not implemented in Sluice yet; run Flux's notification-controller instead"
    );
    std::process::ExitCode::from(2)
}
