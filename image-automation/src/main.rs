//! Sluice's image-automation-controller: accepts the common controller flags; its reconcilers for ImageUpdateAutomation are not
//! built yet, so it exits with a clear message instead of running idle.

use clap::Parser;
use sluice_runtime::RuntimeFlags;

/// Command-line flags of the image-automation-controller.
#[derive(Parser, Debug)]
#[command(
    name = "image-automation-controller",
    version,
    about = "Sluice image-automation-controller (not implemented yet)"
)]
struct Flags {
    #[command(flatten)]
    runtime: RuntimeFlags,
}

fn main() -> std::process::ExitCode {
    let _flags = Flags::parse();
    eprintln!(
        "image-automation-controller: the ImageUpdateAutomation reconcilers are not implemented in Sluice yet; run Flux's image-automation-controller instead"
    );
    std::process::ExitCode::from(2)
}
