//! Sluice's image-reflector-controller: accepts the common controller flags; its reconcilers for ImageRepository and ImagePolicy are not
//! built yet, so it exits with a clear message instead of running idle.

use clap::Parser;
use sluice_runtime::RuntimeFlags;

/// Command-line flags of the image-reflector-controller.
#[derive(Parser, Debug)]
#[command(
    name = "image-reflector-controller",
    version,
    about = "Sluice image-reflector-controller (not implemented yet)"
)]
struct Flags {
    #[command(flatten)]
    runtime: RuntimeFlags,
}

fn main() -> std::process::ExitCode {
    let _flags = Flags::parse();
    eprintln!(
        "image-reflector-controller: the ImageRepository and ImagePolicy reconcilers are not implemented in Sluice yet; run Flux's image-reflector-controller instead"
    );
    std::process::ExitCode::from(2)
}
